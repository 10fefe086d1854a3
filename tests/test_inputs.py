"""Reading photos and videos: real example files plus files made broken on purpose."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import ALOE, BOX, EXAMPLES, WHALE, write_frameless_video
from PIL import Image

from dvlt import (
    EmptyInputError,
    ImageTooLargeError,
    MixedSizesError,
    TooManyFramesError,
    UnsupportedFileError,
    load_sequence,
    preprocess_images,
)
from dvlt.inputs import open_image, read_video


def box_frame_times() -> list[Fraction]:
    with av.open(str(BOX)) as container:
        stream = container.streams.video[0]
        return [Fraction(frame.pts * stream.time_base) for frame in container.decode(stream)]


@pytest.mark.parametrize("fps", [1.0, 2.0, 5.0])
def test_video_sampled_by_fps(fps):
    times = box_frame_times()
    duration = times[-1] - times[0]
    expected = int(duration * Fraction(fps).limit_denominator()) + 1  # samples at 0, 1/fps, ... <= duration
    name, frames = load_sequence(BOX, fps=fps)
    assert name == "box"
    assert len(frames) == expected
    assert all(frame.size == (640, 480) and frame.mode == "RGB" for frame in frames)


def test_video_every_frame_and_evenly_spaced_count():
    assert len(load_sequence(BOX, fps=None)[1]) == len(box_frame_times())
    for count in (1, 2, 7, 30):
        assert len(read_video(BOX, num_frames=count)) == count


def test_video_capped_evenly_by_max_frames():
    frames = read_video(BOX, fps=None, max_frames=5)
    everything = read_video(BOX, fps=None)
    assert len(frames) == 5
    assert np.array_equal(np.asarray(frames[0]), np.asarray(everything[0]))
    assert np.array_equal(np.asarray(frames[-1]), np.asarray(everything[-1]))


def test_directory_list_and_single_image():
    name, frames = load_sequence(ALOE)
    assert name == "aloe" and len(frames) == 2
    assert [f.info["dvlt_name"] for f in frames] == ["aloeL.jpg", "aloeR.jpg"]
    _, listed = load_sequence([ALOE / "aloeR.jpg", ALOE / "aloeL.jpg"])
    assert [f.info["dvlt_name"] for f in listed] == ["aloeR.jpg", "aloeL.jpg"]  # order is the caller's
    assert len(load_sequence(ALOE / "aloeL.jpg")[1]) == 1


def test_directory_of_mixed_sizes_and_orientations(tmp_path):
    """Landscape photos of two sizes plus a portrait one (EXIF-rotated) are padded onto one canvas."""
    Image.open(ALOE / "aloeL.jpg").save(tmp_path / "a.jpg")
    Image.open(WHALE / "rubberwhale1.png").save(tmp_path / "b.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    Image.open(WHALE / "rubberwhale2.png").convert("RGB").save(tmp_path / "c.jpg", exif=exif)
    _, frames = load_sequence(tmp_path)
    assert [f.size for f in frames] == [Image.open(ALOE / "aloeL.jpg").size, (584, 388), (388, 584)]
    batch = preprocess_images(frames, img_size=252)
    assert batch["images"].shape == (1, 3, 3, 252, 252)
    valid = batch["valid_pixels"][0]
    assert valid[2].sum(dim=1).max() < 252 and valid[2].sum(dim=0).max() == 252  # portrait: padded left/right
    assert not valid.all() and valid.any(dim=(1, 2)).all()
    with pytest.raises(MixedSizesError, match="different sizes"):
        preprocess_images(frames, img_size=252, allow_mixed_sizes=False)


def test_pixel_formats_become_8bit_rgb(tmp_path):
    rgb = np.asarray(Image.open(ALOE / "aloeL.jpg").convert("RGB"))
    rgba = np.dstack((rgb, np.zeros(rgb.shape[:2], np.uint8)))  # fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    grey16 = rgb[..., 1].astype(np.uint16) * 257
    Image.fromarray(grey16).save(tmp_path / "deep.png")
    assert np.all(np.asarray(open_image(tmp_path / "alpha.png")) == 255)  # transparent over white
    grey = np.asarray(open_image(tmp_path / "grey.png"))
    assert grey.shape == rgb.shape and np.array_equal(grey[..., 2], rgb[..., 0])
    deep = np.asarray(open_image(tmp_path / "deep.png"))
    assert deep.dtype == np.uint8 and np.abs(deep[..., 0].astype(int) - rgb[..., 1]).max() <= 1


def test_heic_photo(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    image = Image.open(ALOE / "aloeL.jpg")
    pillow_heif.from_pillow(image).save(tmp_path / "phone.heic", quality=90)
    decoded = open_image(tmp_path / "phone.heic")
    assert decoded.size == image.size and decoded.mode == "RGB"


def test_broken_inputs_raise_precise_errors(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is not a photo")
    with pytest.raises(UnsupportedFileError, match="notes.jpg is not an image"):
        load_sequence(tmp_path / "notes.jpg")
    data = (ALOE / "aloeL.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(UnsupportedFileError, match="truncated or corrupt"):
        load_sequence(tmp_path / "cut.jpg")
    (tmp_path / "cut.mp4").write_bytes(BOX.read_bytes()[:20000])
    with pytest.raises((UnsupportedFileError, EmptyInputError), match="cut.mp4"):
        load_sequence(tmp_path / "cut.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyInputError, match="has no images or videos"):
        load_sequence(tmp_path / "empty")
    with pytest.raises(EmptyInputError, match="No files"):
        load_sequence([])
    with pytest.raises(UnsupportedFileError, match="no such file"):
        load_sequence(tmp_path / "missing.png")


def test_video_without_frames(tmp_path):
    path = write_frameless_video(tmp_path / "empty.mp4")
    with pytest.raises(EmptyInputError, match="no video frames"):
        load_sequence(path)


def test_limits_on_views_and_pixels():
    with pytest.raises(TooManyFramesError, match="2 views, but the limit is 1"):
        load_sequence(ALOE, max_frames=1)
    with pytest.raises(ImageTooLargeError, match="limit is 0 MP"):
        load_sequence(ALOE, max_pixels=100_000)
    assert len(load_sequence(EXAMPLES / "box.mp4", fps=5, max_frames=3)[1]) == 3  # videos are thinned, not refused


def test_animated_gif_is_a_video(tmp_path):
    frames = read_video(BOX, num_frames=6)
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=500, loop=0)  # 2 frames/s
    name, decoded = load_sequence(tmp_path / "clip.gif", fps=1.0)
    assert name == "clip" and len(decoded) == 3 and decoded[0].size == (640, 480)


def test_photo_headers_checked_before_anything_is_decoded(tmp_path):
    """17 photos with valid headers but no image data: refused for their count, so none was decoded."""
    Image.new("RGB", (640, 480), (10, 200, 30)).save(tmp_path / "whole.jpg", quality=90)
    header_only = (tmp_path / "whole.jpg").read_bytes()[:700]  # SOF is in the first bytes; the scan data is cut
    for index in range(17):
        (tmp_path / f"p{index:02d}.jpg").write_bytes(header_only)
    (tmp_path / "whole.jpg").unlink()
    with pytest.raises(TooManyFramesError, match="17 views, but the limit is 16"):
        load_sequence(tmp_path, max_frames=16)
    with pytest.raises(UnsupportedFileError, match="truncated or corrupt"):
        load_sequence(tmp_path, max_frames=17)


def test_photos_decoded_straight_to_the_model_size(tmp_path):
    """Downscaled decoding (JPEG draft + one resize) gives the model what full decoding gives, within 1 %,
    maps back to the full photo, and the full photo is read from disk only when an export asks."""
    from dvlt.inputs import originals

    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    Image.open(ALOE / "aloeL.jpg").save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    Image.open(WHALE / "rubberwhale1.png").save(tmp_path / "whale.png")
    for side in (252, 504):
        _, full = load_sequence(tmp_path)
        _, small = load_sequence(tmp_path, max_side=side)
        assert [max(f.size) for f in small] == [side, side]
        assert [f.info["dvlt_original_size"] for f in small] == [(f.height, f.width) for f in full]
        expected, got = preprocess_images(full, img_size=side), preprocess_images(small, img_size=side)
        assert expected["images"].shape == got["images"].shape
        assert (expected["images"] - got["images"]).abs().mean() < 0.01
        assert [t.crop for t in expected["transforms"]] == [t.crop for t in got["transforms"]]
    lazy = originals(small)
    assert [np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(lazy, full)] == [True, True]
    assert lazy[0].size == (1110, 1282)  # portrait, full size


def test_too_small_or_thin_images_are_refused(tmp_path):
    from dvlt.errors import ImageTooSmallError

    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    Image.new("RGB", (2000, 100)).save(tmp_path / "strip.png")
    with pytest.raises(ImageTooSmallError, match="dot.png is only 1x1 pixels; each side needs at least 14"):
        load_sequence(tmp_path / "dot.png")
    with pytest.raises(ImageTooSmallError, match="strip.png is 2000x100: more than 10:1"):
        load_sequence(tmp_path / "strip.png")


def test_video_frames_downscaled_limited_and_noted(tmp_path):
    from dvlt.errors import VideoTooLongError

    frames = read_video(BOX, num_frames=3, max_side=320)
    assert [f.size for f in frames] == [(320, 240)] * 3 and frames.notes == []
    with pytest.raises(ImageTooLargeError, match="640x480 .* per video frame"):
        read_video(BOX, max_pixels=300_000)
    with pytest.raises(VideoTooLongError, match="limit is 5 s"):
        read_video(BOX, max_seconds=5)
    from hostile_server import write_clip

    damaged = write_clip(tmp_path / "damaged.mkv", 8, 4, 320, 240, fmt="matroska")
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])  # the header still says 8 s
    clip = read_video(damaged, fps=2)
    assert 2 <= len(clip) < 16 and len(clip.notes) == 1
    assert clip.notes[0].startswith("damaged.mkv seems cut short: its header says 8 s")
    assert f"{len(clip)} frames were read" in clip.notes[0]

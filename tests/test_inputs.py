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

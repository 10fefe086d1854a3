"""Behaviour that one-line bugs found in review broke without any test noticing.

Each test names the bug it guards against; the truth always comes from the
golden files, a synthetic scene or a video made here, never from the module's
own constants.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import trimesh
from conftest import known_scene
from PIL import Image

from dvlt import limits, studio
from dvlt.errors import InputError, TooManyFramesError
from dvlt.export import write_glb
from dvlt.inputs import load_sequence
from dvlt.scene import SceneOptions, keep_mask


@pytest.mark.parametrize("view", [0, 3])
def test_confidence_percentile_applies_within_the_selected_views(view):
    """Guards taking the percentile over every pixel instead of the shown views' pixels."""
    rec = known_scene()  # confidence rises from view 0 to view 3
    mask = keep_mask(rec, SceneOptions(conf_percentile=50, views=(view,), max_points=10**9))
    kept = mask[view].mean()
    assert 0.45 < kept < 0.55
    assert not np.delete(mask, view, axis=0).any()


def write_counting_clip(path, frames: int = 30, rate: int = 30) -> None:
    """A clip whose frame i is a flat grey of level 8*i, so a decoded frame tells its index."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        stream.options = {"qscale": "1"}
        for index in range(frames):
            image = Image.new("RGB", (64, 48), (8 * index,) * 3)
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def frame_indices(frames) -> list[int]:
    return [int(round(np.asarray(frame.convert("L"), dtype=np.float64).mean() / 8)) for frame in frames]


def test_num_frames_starts_at_the_first_frame_and_ends_at_the_last(tmp_path):
    """Guards sampling one frame late (frame 0, the reference view, never used)."""
    clip = tmp_path / "count.mp4"
    write_counting_clip(clip)
    _, frames = load_sequence(clip, num_frames=4)
    assert frame_indices(frames) == [0, 10, 19, 29]


def test_fps_sampling_takes_one_frame_per_period(tmp_path):
    clip = tmp_path / "count.mp4"
    write_counting_clip(clip)  # 1 s at 30 fps
    _, frames = load_sequence(clip, fps=3)
    assert frame_indices(frames) == [0, 10, 20]


def test_glb_colours_are_the_photo_pixels(tmp_path):
    """Guards RGB/BGR swaps: each GLB point carries the colour of the pixel it came from."""
    rec = known_scene()
    rec.images[..., 0] = 200  # a scene that is clearly red-dominated: a swap would show
    rec.images[..., 2] //= 4
    stats = write_glb(
        rec, tmp_path / "scene.glb", SceneOptions(conf_percentile=0, max_points=10**9, show_cameras=False)
    )
    cloud = trimesh.load(stats.path, force="scene").geometry["points"]
    # glTF is y-up looking down -z; OpenCV is y-down looking down +z (a fact of both conventions)
    glb_in_opencv = np.asarray(cloud.vertices, dtype=np.float64) * [1.0, -1.0, -1.0]
    truth = rec.points.reshape(-1, 3).astype(np.float64)
    offset = np.median(truth, axis=0) - np.median(glb_in_opencv, axis=0)
    lookup = {tuple(np.round(p, 4)): i for i, p in enumerate(truth)}
    found = [lookup.get(tuple(np.round(p + offset, 4))) for p in glb_in_opencv]
    matched = np.array([i is not None for i in found])
    assert matched.mean() > 0.99
    colours = np.asarray(cloud.colors)[matched, :3]
    expected = rec.images.reshape(-1, 3)[[i for i in found if i is not None]]
    same = (np.abs(colours.astype(int) - expected.astype(int)) <= 1).all(axis=1)
    assert same.mean() > 0.999  # a few points may share a rounded position with a neighbour


def test_studio_refuses_out_of_range_settings_itself():
    """The studio's own checks (Gradio's component validation answers first in the UI)."""
    frame = Image.new("RGB", (64, 48))
    with pytest.raises(InputError, match="K must be between"):
        studio.run_model(None, [frame], steps=limits.STEPS_MAX + 1, resolution=limits.RESOLUTION_DEFAULT)
    with pytest.raises(InputError, match="K must be between"):
        studio.run_model(None, [frame], steps=limits.STEPS_MIN - 1, resolution=limits.RESOLUTION_DEFAULT)
    with pytest.raises(InputError, match="Resolution"):
        studio.run_model(None, [frame], steps=limits.STEPS_DEFAULT, resolution=300)
    with pytest.raises(TooManyFramesError):
        studio.decode_uploads(["a.jpg"] * (limits.MAX_UPLOAD_FILES + 1), studio.Sampling(), 16)
    with pytest.raises(TooManyFramesError):
        studio.decode_uploads(["clip.mp4"], studio.Sampling(mode="count", count=17), 16)


def test_camera_marker_tubes_stay_finite_for_zero_length_edges():
    """Guards NaN vertices in the GLB when a frustum edge has zero length (a camera marker at depth 0)."""
    from dvlt.scene import tube_mesh

    starts = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    ends = np.array([[0.0, 0.0, 1.0], [1.0, 2.0, 3.0]])  # the second edge is a point
    vertices, faces = tube_mesh(starts, ends, radius=0.01)
    assert np.isfinite(vertices).all() and faces.max() < len(vertices)
    around_point = vertices[8:] - starts[1]
    assert np.allclose(np.linalg.norm(around_point, axis=1), 0.01)  # a small ring at the point itself

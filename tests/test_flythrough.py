"""The fly-through video (dvlt.flythrough, `--formats video`): decoded back with PyAV, its path checked against
the input cameras, and its z-buffer against a scene whose nearest surface is known."""

from __future__ import annotations

import av
import numpy as np
import pytest
from sphere_scene import sphere_scene

from dvlt.cli import main
from dvlt.flythrough import Cloud, VideoSettings, camera_path, render_frame, write_flythrough
from dvlt.scene import SceneOptions

BACKGROUND = np.array(VideoSettings().background)


def decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_cli_video_decodes_with_every_frame_showing_the_scene(tmp_path):
    rec, _ = sphere_scene(with_photos=False)
    npz = rec.to_npz(tmp_path / "predictions.npz")
    assert main(["export", str(npz), "--out", str(tmp_path / "out"), "--formats", "video", "--quiet"]) == 0
    frames = decoded(tmp_path / "out" / "flythrough.mp4")
    assert len(frames) == 192 >= 48  # 8 s at 24 fps
    assert frames[0].shape == (480, 640, 3)
    for frame in frames:
        scene = np.abs(frame.astype(int) - BACKGROUND).max(axis=-1) > 24
        assert scene.mean() > 0.6 and frame.std() > 20  # the sphere and the wall fill most of every frame


def test_all_leaves_the_video_out(tmp_path):
    rec, _ = sphere_scene(with_photos=False)
    npz = rec.to_npz(tmp_path / "predictions.npz")
    assert main(["export", str(npz), "--out", str(tmp_path / "out"), "--formats", "all", "--quiet"]) == 0
    assert not (tmp_path / "out" / "flythrough.mp4").exists()


def test_progress_reaches_one_frame_by_frame(tmp_path):
    rec, _ = sphere_scene(with_photos=False)
    seen = []
    settings = VideoSettings(seconds=1.0, fps=12, width=160)
    write_flythrough(rec, tmp_path / "f.mp4", SceneOptions(), lambda f, m: seen.append(f), settings)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and np.all(np.diff(seen) > 0) and len(seen) == 13
    assert len(decoded(tmp_path / "f.mp4")) == 12


def test_path_passes_through_the_input_cameras_smoothly():
    rec, truth = sphere_scene(with_photos=False)
    path = camera_path(truth.c2w, 7, 3.0)  # keys at times 0, 1/3, 2/3, 1 = frames 0, 2, 4, 6
    for key, frame in enumerate((0, 2, 4, 6)):
        assert np.allclose(path[frame], truth.c2w[key], atol=1e-9)
    dense = camera_path(truth.c2w, 200, 3.0)
    rotations = dense[:, :, :3]
    assert np.allclose(rotations @ rotations.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(rotations), 1.0)
    steps = np.linalg.norm(np.diff(dense[:, :, 3], axis=0), axis=1)
    assert steps.max() < 3 * steps.mean()  # no jumps
    turns = np.degrees(np.arccos(np.clip((np.einsum("nij,nij->n", rotations[1:], rotations[:-1]) - 1) / 2, -1, 1)))
    assert turns.max() < 1.0  # at most a degree between frames


def test_one_camera_sways_while_looking_at_the_scene():
    c2w = np.column_stack((np.eye(3), np.zeros(3)))[None]
    path = camera_path(c2w, 9, 4.0)
    assert np.allclose(path[4], c2w[0], atol=1e-9)  # the middle frame is the input camera
    assert np.ptp(path[:, 0, 3]) == pytest.approx(0.4)  # a twentieth of the depth to each side
    for c2w_frame in path[[0, 4, 8]]:  # the key frames look at the point 4 units ahead of the camera
        target = np.array([0.0, 0.0, 4.0]) - c2w_frame[:, 3]
        assert np.allclose(c2w_frame[:, 2], target / np.linalg.norm(target), atol=1e-9)


def test_the_nearest_surface_wins_whatever_the_point_order():
    """A red square 2 units away in front of a blue wall 4 units away, seen head-on by a 64x64 camera."""
    grid = np.linspace(-1, 1, 81)
    gx, gy = np.meshgrid(grid, grid)
    wall = np.stack((gx.ravel() * 5, gy.ravel() * 5, np.full(gx.size, 4.0)))
    square = np.stack((gx.ravel() * 0.25, gy.ravel() * 0.25, np.full(gx.size, 2.0)))
    xyz = np.concatenate((square, wall), axis=1).astype(np.float32)
    rgb = np.concatenate((np.tile([255, 0, 0], (gx.size, 1)), np.tile([0, 0, 255], (gx.size, 1)))).astype(np.uint8)
    size = np.concatenate((np.full(gx.size, 0.5 / 80), np.full(gx.size, 10 / 80))).astype(np.float32)
    intrinsics = np.array([[32.0, 0, 32], [0, 32.0, 32], [0, 0, 1]])
    c2w = np.column_stack((np.eye(3), np.zeros(3)))
    for order in (np.arange(xyz.shape[1]), np.arange(xyz.shape[1])[::-1]):
        cloud = Cloud(np.ascontiguousarray(xyz[:, order]), rgb[order], size[order])
        image = render_frame(cloud, c2w, intrinsics, (64, 64), VideoSettings(), near=0.1)
        # the square spans x, y in [-0.25, 0.25] at z = 2: pixels 28..36 around the centre
        assert (image[29:35, 29:35] == [255, 0, 0]).all()
        assert (image[:20, :20] == [0, 0, 255]).all() and (image[-20:, -20:] == [0, 0, 255]).all()

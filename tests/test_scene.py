"""Scene building: what the GLB contains and how it is oriented; per-session output folders."""

from __future__ import annotations

import time

import numpy as np
import trimesh
from conftest import known_scene

from dvlt.export import write_glb
from dvlt.scene import SceneOptions, keep_mask, select_points
from dvlt.studio import OutputFolders


def test_glb_is_upright_and_the_reference_camera_looks_into_the_screen(tmp_path):
    rec = known_scene()
    write_glb(rec, tmp_path / "scene.glb", SceneOptions(conf_percentile=0, max_points=50_000))
    scene = trimesh.load(tmp_path / "scene.glb", force="scene")
    points = scene.geometry["points"].vertices
    reference = scene.geometry["camera_000"].vertices
    # frustum edges, 8 vertices each: 0-3 apex -> image corners (top-left, top-right, bottom-right, bottom-left), ...
    apex = reference[:4].mean(axis=0)
    corner = [reference[8 * k + 4 : 8 * k + 8].mean(axis=0) for k in range(4)]
    tick = reference[68:72].mean(axis=0)  # ... edge 8 ends at the 'up' tick above the image's top side
    assert points[:, 2].max() < apex[2]  # glTF looks down -z: the whole wall is in front of the reference camera
    assert tick[1] > corner[0][1] > apex[1] > corner[2][1]  # upright: image top is +y
    assert corner[1][0] > apex[0] > corner[0][0]  # and image right is +x (not mirrored)
    assert np.allclose(np.median(points, axis=0), 0, atol=0.05 * np.ptp(points, axis=0).max())


def test_point_filters():
    rec = known_scene()
    everything = keep_mask(rec, SceneOptions(conf_percentile=0))
    assert everything.all()
    assert abs(keep_mask(rec, SceneOptions(conf_percentile=75)).mean() - 0.25) < 0.01
    assert not keep_mask(rec, SceneOptions(conf_percentile=0, mask_black=True))[:, :10].any()
    only_two = keep_mask(rec, SceneOptions(conf_percentile=0, views=(1, 3)))
    assert only_two[[1, 3]].all() and not only_two[[0, 2]].any()
    chosen = select_points(rec, SceneOptions(conf_percentile=0, max_points=1000))
    assert len(chosen) == 1000 and np.array_equal(
        chosen.xyz, select_points(rec, SceneOptions(conf_percentile=0, max_points=1000)).xyz
    )
    view, col, row = chosen.view[0], chosen.pixel[0, 0], chosen.pixel[0, 1]
    assert np.array_equal(chosen.xyz[0], rec.points[view, row, col]) and np.array_equal(
        chosen.rgb[0], rec.images[view, row, col]
    )


def test_output_folders_are_per_session_and_swept(tmp_path):
    folders = OutputFolders(tmp_path, idle_s=0.5)
    mine, theirs = folders.new("session-a"), folders.new("session/../b")
    assert mine.parent != theirs.parent and theirs.parent.parent == folders.root  # no escaping the root
    assert folders.root.parent == tmp_path
    old = folders.new("session-c")
    time.sleep(0.6)
    for active in ("session-a", "session/../b"):
        folders.touch(active)
    folders.sweep()  # session-c has been idle for longer than idle_s
    assert not old.exists() and mine.exists()
    folders.forget("session-a")
    assert not mine.exists() and theirs.exists()

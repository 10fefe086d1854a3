"""The Space's run, without the UI: reference first, an example's result re-used, the files a run serves and
its run info (app.py's Reconstruct and example handlers only wire these to Gradio)."""

from __future__ import annotations

import numpy as np
import trimesh
from conftest import ALOE, WHALE, known_scene
from PIL import Image

from dvlt import studio
from dvlt.scene import SceneOptions


def photos() -> list[Image.Image]:
    return [Image.open(p).convert("RGB") for p in (ALOE / "aloeL.jpg", ALOE / "aloeR.jpg", WHALE / "rubberwhale1.png")]


def test_the_model_sees_the_reference_first_and_an_example_runs_once():
    frames, seen = photos(), []

    def model_pass(ordered):
        seen.append([frame.size for frame in ordered])
        return known_scene()

    cache = studio.ResultCache()
    ordered, first, reused = studio.model_result(frames, 2, model_pass, cache, key="whale first")
    assert not reused and seen == [[frames[2].size, frames[0].size, frames[1].size]]  # view 2 became view 0
    assert [frame.size for frame in ordered] == seen[0]
    _, again, reused = studio.model_result(frames, 2, model_pass, cache, key="whale first")
    assert reused and again is first and len(seen) == 1  # no second model pass
    _, _, reused = studio.model_result(frames, 2, model_pass, None, key="whale first")
    assert not reused and len(seen) == 2  # Reconstruct itself never re-uses


def test_a_run_writes_its_scene_splats_and_predictions_and_draws_its_gallery(tmp_path):
    rec = known_scene()
    out = studio.write_run_files(rec, SceneOptions(conf_percentile=0, max_points=1_000_000), tmp_path / "run")
    scene = trimesh.load(out.glb, force="scene")
    markers = sorted(n for n in scene.graph.nodes_geometry if n.startswith("camera_"))
    assert markers == [f"camera_{i:03d}" for i in range(4)]
    points = scene.geometry["points"].vertices
    assert len(points) == 4 * 126 * 168 and f"{len(points):,} points" in out.scene_info  # a smooth wall: all kept
    spread = np.linalg.norm(points - points.mean(axis=0), axis=1)
    assert np.isfinite(points).all() and 0.1 < np.median(spread) < 10
    with np.load(out.npz) as npz:
        assert np.allclose(npz["depth"], rec.depth) and npz["extrinsics_c2w"].shape == (4, 3, 4)
    assert out.splats.stat().st_size > 0 and "Gaussians" in out.splat_info
    assert len(out.gallery) == 4 and out.legend.shape[1] > 300


def test_the_run_info_names_the_reference_and_a_reused_example():
    rec = known_scene()
    rec.seconds = {"model": 1.5}
    line = studio.reference_line(1, "chosen")
    fresh = studio.describe_run(rec, None, 2.0, "CPU", line, windows="long clip: 2 windows of 16 frames")
    assert "took 2 s" in fresh and "view 1**, your choice" in fresh and "long clip: 2 windows" in fresh
    assert "re-used" not in fresh
    assert "re-used from its first run" in studio.describe_run(rec, None, 0.3, "CPU", line, reused=True)


def test_the_reference_of_a_long_clip_is_its_first_frame_and_a_choice_is_kept():
    frames = photos()
    assert studio.reference_for(frames, True, True, 2, max_views=2) == (0, studio.reference_line(0, "long clip"))
    assert studio.reference_for(frames, False, False, 2, max_views=16) == (2, studio.reference_line(2, "chosen"))
    index, line = studio.reference_for(frames, True, False, 2, max_views=16)
    assert line == studio.reference_line(index, "auto")

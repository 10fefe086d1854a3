"""Which prediction makes the points (`--points depth|direct`), on the golden cases (tests/golden): the direct
points are the reference implementation's `world_points_direct`, the default stays depth through the cameras."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from conftest import GOLDEN
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from dvlt.cli import main
from dvlt.pipeline import reconstruct
from dvlt.points import with_point_source
from dvlt.records import Reconstruction

CASES = ["single_view_k8", "stereo_k12", "mixed_aspect_k16"]


def golden_case(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    path = GOLDEN / f"{name}.safetensors"
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata()
    return meta, load_file(str(path))


def depth_through_cameras(rec: Reconstruction) -> np.ndarray:
    """z-depth un-projected at pixel centres through each view's camera, written out here independently."""
    _, height, width = rec.depth.shape
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    out = np.empty(rec.depth.shape + (3,))
    for view, (K, c2w) in enumerate(zip(rec.intrinsics, rec.c2w)):
        z = rec.depth[view].astype(np.float64)
        camera = np.stack(((cols - K[0, 2]) / K[0, 0] * z, (rows - K[1, 2]) / K[1, 1] * z, z), axis=-1)
        out[view] = camera @ c2w[:, :3].T + c2w[:, 3]
    return out


@pytest.fixture(scope="module", params=CASES)
def case(request, model, tmp_path_factory):
    meta, ref = golden_case(request.param)
    frames = [Image.open(GOLDEN / "inputs" / name).convert("RGB") for name in meta["files"].split(",")]
    rec = reconstruct(model, frames, steps=int(meta["K"]), img_size=int(meta["img_size"]), name=request.param)
    return rec, ref, tmp_path_factory.mktemp(request.param)


def test_direct_points_are_the_reference_direct_head(case):
    rec, ref, _ = case
    direct = with_point_source(rec, "direct").points
    expected = ref["world_points_direct"].numpy()
    assert direct.shape == expected.shape
    assert np.linalg.norm(direct - expected) / np.linalg.norm(expected) <= 1e-4


def test_default_points_are_depth_through_the_fitted_cameras(case):
    rec, ref, _ = case
    assert with_point_source(rec) is rec and with_point_source(rec, "depth") is rec
    expected = depth_through_cameras(rec)
    valid = rec.valid
    assert np.allclose(rec.points[valid], expected[valid], rtol=1e-4, atol=1e-5)
    assert not np.allclose(rec.points[valid], rec.points_direct[valid], rtol=1e-3, atol=1e-3)  # two predictions


def test_cli_export_writes_the_chosen_points(case):
    rec, _, folder = case
    npz = rec.to_npz(folder / "predictions.npz")
    args = ["--formats", "ply", "--quiet", "--conf-percentile", "0", "--no-drop-edges", "--max-points", "10000000"]
    clouds = {}
    for source in ("depth", "direct"):
        assert main(["export", str(npz), "--out", str(folder / source), "--points", source, *args]) == 0
        clouds[source] = np.asarray(trimesh.load(folder / source / "points.ply").vertices)
    keep = rec.valid & (rec.depth > 0)
    for source, truth in (("depth", rec.points), ("direct", rec.points_direct)):
        assert len(clouds[source]) == keep.sum()
        assert np.allclose(np.sort(clouds[source], axis=0), np.sort(truth[keep], axis=0), atol=1e-5)


def test_direct_points_are_refused_when_missing():
    from dataclasses import replace

    from sphere_scene import sphere_scene

    from dvlt.errors import OptionError

    rec, _ = sphere_scene(with_photos=False)
    with pytest.raises(OptionError, match="no direct points"):
        with_point_source(replace(rec, points_direct=None), "direct")
    with pytest.raises(OptionError, match="unknown point source"):
        with_point_source(rec, "rays")

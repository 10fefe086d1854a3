"""Real scale from one known distance (`--known-distance`) and the point source (`--points`) through the CLI:
the files written are read back with the tools users use (pycolmap, trimesh, numpy) and compared with the
truth of the ray-cast sphere scene."""

from __future__ import annotations

import json

import numpy as np
import pycolmap
import pytest
import trimesh
from sphere_scene import sphere_scene

from dvlt.cli import main
from dvlt.records import Reconstruction

A, B = (0, 178.3, 140.7), (1, 290.1, 260.4)  # a point on the sphere (view 0), one on the wall (view 1)
METRES = 2.5
FORMATS = "colmap,nerfstudio,ply,depth,npz,glb,splat"


def c2w_of(image) -> np.ndarray:
    return np.linalg.inv(np.vstack((image.cam_from_world().matrix(), [0, 0, 0, 1])))[:3]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The scene exported as it is and with a known distance; (unit folder, metric folder, truth scale)."""
    rec, truth = sphere_scene(with_photos=False)
    root = tmp_path_factory.mktemp("metric")
    npz = rec.to_npz(root / "predictions.npz")
    known = [str(value) for value in (*A, *B, METRES)]
    common = ["--formats", FORMATS, "--quiet", "--conf-percentile", "0", "--no-drop-edges"]
    assert main(["export", str(npz), "--out", str(root / "unit"), *common]) == 0
    assert main(["export", str(npz), "--out", str(root / "metric"), *common, "--known-distance", *known]) == 0
    a, b = (truth.render(v, np.array([x]), np.array([y]))["points"][0] for v, x, y in (A, B))
    return root / "unit", root / "metric", METRES / np.linalg.norm(a - b), truth


def test_colmap_camera_baseline_is_the_truth_times_the_scale(exported):
    _, metric, scale, truth = exported
    model = pycolmap.Reconstruction(str(metric / "colmap" / "sparse" / "0"))
    by_name = {image.name.rsplit(".", 1)[0]: c2w_of(image) for image in model.images.values()}
    for view in (1, 2, 3):
        baseline = np.linalg.norm(by_name[f"view{view}"][:, 3] - by_name["view0"][:, 3])
        expected = np.linalg.norm(truth.c2w[view][:, 3] - truth.c2w[0][:, 3]) * scale
        assert baseline == pytest.approx(expected, rel=0.01)


def spread(points: np.ndarray) -> float:
    return float(np.linalg.norm(points - points.mean(axis=0), axis=1).mean())


def test_every_format_is_in_metres(exported):
    unit, metric, scale, _ = exported
    ratio = pytest.approx(scale, rel=1e-4)
    colmap = [pycolmap.Reconstruction(str(d / "colmap" / "sparse" / "0")) for d in (unit, metric)]
    xyz = [np.array([p.xyz for p in m.points3D.values()]) for m in colmap]
    assert spread(xyz[1]) / spread(xyz[0]) == ratio
    ply = [np.asarray(trimesh.load(d / "points.ply").vertices) for d in (unit, metric)]
    assert spread(ply[1]) / spread(ply[0]) == ratio
    glb = [trimesh.load(d / "scene.glb", force="scene") for d in (unit, metric)]
    assert glb[1].extents.max() / glb[0].extents.max() == ratio
    splats = [np.asarray(trimesh.load(d / "splats.ply").vertices) for d in (unit, metric)]
    assert spread(splats[1]) / spread(splats[0]) == ratio
    frames = [json.loads((d / "nerfstudio" / "transforms.json").read_text())["frames"] for d in (unit, metric)]
    centres = [np.array([f["transform_matrix"] for f in fr])[:, :3, 3] for fr in frames]
    assert spread(centres[1]) / spread(centres[0]) == ratio
    depth = [np.load(d / "depth" / "view1.npy") for d in (unit, metric)]
    assert np.nanmedian(depth[1][depth[0] > 0] / depth[0][depth[0] > 0]) == ratio
    saved = Reconstruction.from_npz(metric / "predictions.npz")
    assert saved.scale_note == f"scale set from a known distance of {METRES:.2f} m"
    assert saved.distance(A[0], A[1:], B[0], B[1:]) == pytest.approx(METRES, rel=1e-5)


@pytest.mark.parametrize(
    "values,message",
    [(["0", "1", "2", "1", "3", "4", "0"], "positive number of metres"), (["0", "a", "2", "1", "3", "4", "2"], "")],
)
def test_bad_known_distance_is_a_usage_error(tmp_path, capsys, values, message):
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(tmp_path / "p.npz"), "--out", str(tmp_path / "o"), "--known-distance", *values])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_known_distance_off_the_photo_is_a_clear_error(tmp_path, capsys):
    rec, _ = sphere_scene(with_photos=False)
    npz = rec.to_npz(tmp_path / "predictions.npz")
    values = ["7", "10", "10", "1", "30", "40", "2"]
    assert (
        main(["export", str(npz), "--out", str(tmp_path / "o"), "--formats", "ply", "--known-distance", *values]) == 1
    )
    assert "view 7 does not exist" in capsys.readouterr().err


def test_reconstruct_applies_points_scale_and_exif_before_writing(checkpoint_dir, tmp_path, capsys):
    """`dvlt reconstruct` with every choice: direct points, EXIF focal lengths and a known distance."""
    from conftest import ALOE
    from PIL import ExifTags, Image

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("aloeL.jpg", "aloeR.jpg"):
        exif = Image.Exif()
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLengthIn35mmFilm] = 30
        Image.open(ALOE / name).save(photos / name, exif=exif, quality=95)
    known = ["0", "100", "80", "1", "200", "90", "1.5"]
    args = ["reconstruct", str(photos), "--out", str(tmp_path / "out"), "--checkpoint", str(checkpoint_dir)]
    args += ["--img-size", "126", "--steps", "8", "--formats", "npz", "--quiet", "--points", "direct"]
    assert main([*args, "--intrinsics", "exif", "--known-distance", *known]) == 0
    saved = Reconstruction.from_npz(tmp_path / "out" / "photos" / "predictions.npz")
    assert saved.scale_note == "scale set from a known distance of 1.50 m"
    assert np.allclose(saved.points, saved.points_direct)  # the direct head's points, scaled with the rest
    assert saved.distance(0, (100, 80), 1, (200, 90)) == pytest.approx(1.5, rel=1e-5)
    photo = Image.open(photos / "aloeL.jpg")
    expected = 30 * np.hypot(*photo.size) / np.hypot(36, 24)
    focal = saved.transforms[0].intrinsics_to_original(saved.intrinsics[0])[0, 0]
    assert focal == pytest.approx(expected, rel=1e-6)  # EXIF's focal length, in the photo's pixels

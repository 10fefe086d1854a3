"""Exports checked by the readers 3D tools use: pycolmap, trimesh, nerfstudio's expectations."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pycolmap
import pytest
import trimesh
from conftest import ALOE, GOLDEN, ROOT, WHALE, known_scene
from PIL import Image
from safetensors.torch import load_file
from sphere_scene import sphere_scene

from dvlt.export import FORMATS, export_all, write_colmap, write_nerfstudio, write_ply
from dvlt.inputs import load_sequence
from dvlt.pipeline import Reconstruction, reconstruct
from dvlt.scene import SceneOptions, select_points

OPTIONS = SceneOptions(conf_percentile=20, max_points=20_000)


@pytest.fixture(scope="module")
def aloe(model) -> Reconstruction:
    """A real reconstruction of the aloe pair (synthetic weights) at 252 px."""
    name, frames = load_sequence(ALOE)
    return reconstruct(model, frames, steps=8, img_size=252, name=name)


def read_model(path, kind: str) -> pycolmap.Reconstruction:
    rec = pycolmap.Reconstruction()
    (rec.read_binary if kind == "binary" else rec.read_text)(str(path))
    return rec


@pytest.mark.parametrize("kind", ["binary", "text"])
def test_colmap_model_reads_back_and_reprojects(aloe, tmp_path, kind):
    sparse = write_colmap(aloe, tmp_path / "colmap", OPTIONS)
    model = read_model(sparse, kind)
    points = select_points(aloe, OPTIONS)
    # the synthetic weights' two views rarely agree on depth, so few points (or none) reach COLMAP's two-image
    # minimum here; test_export_formats.py checks multi-view tracks on a scene with known geometry
    assert (len(model.cameras), len(model.images)) == (2, 2) and len(model.points3D) <= len(points)
    assert all(point.track.length() >= 2 for point in model.points3D.values())  # COLMAP's invariant
    assert len(trimesh.load(sparse / "points3D.ply").vertices) == len(points)  # the 3DGS seed keeps them all
    for image in model.images.values():
        photo = Image.open(tmp_path / "colmap" / "images" / image.name)
        assert (
            model.cameras[image.camera_id].width,
            model.cameras[image.camera_id].height,
        ) == photo.size  # photo pixels
        assert model.cameras[image.camera_id].model_name == "PINHOLE"
    errors, color_gaps = [], []
    photos = {
        i.image_id: np.asarray(Image.open(tmp_path / "colmap" / "images" / i.name).convert("RGB"), dtype=float)
        for i in model.images.values()
    }
    for point in model.points3D.values():
        for element in point.track.elements:
            image = model.images[element.image_id]
            observed = image.points2D[element.point2D_idx].xy
            projected = image.project_point(point.xyz)
            errors.append(np.linalg.norm(projected - observed))
            x, y = np.floor(observed).astype(int)
            color_gaps.append(np.abs(photos[image.image_id][y, x] - point.color).mean())
        assert abs(point.error - np.mean(errors[-point.track.length() :])) < 1e-3  # points3D errors filled in
    assert all(error < 1.0 for error in errors)  # every observation lands within 1 px of where the point projects
    assert not color_gaps or np.median(color_gaps) < 12  # ...and that pixel of the photo has the point's colour


def test_colmap_round_trip_of_known_cameras(tmp_path):
    """Ground-truth cameras through the COLMAP writer and pycolmap come back unchanged."""
    fixture = load_file(str(GOLDEN / "rays_to_pose.safetensors"))
    c2w, K = fixture["gt_extrinsics_c2w"].double(), fixture["gt_intrinsics"].double()
    rec = known_scene()
    for kind in ("binary", "text"):
        model = read_model(write_colmap(rec, tmp_path / kind, SceneOptions(conf_percentile=0, max_points=500)), kind)
        for image in model.images.values():
            index = int(image.name[3])
            w2c = np.vstack((image.cam_from_world().matrix(), [0, 0, 0, 1]))
            assert np.abs(np.linalg.inv(w2c)[:3] - c2w[index].numpy()).max() < 1e-5
            assert np.abs(model.cameras[image.camera_id].calibration_matrix() - K[index].numpy()).max() < 1e-5


def test_ply_reads_back_with_trimesh(aloe, tmp_path):
    points = select_points(aloe, OPTIONS)
    path = write_ply(points, tmp_path / "points.ply")
    cloud = trimesh.load(path)
    assert isinstance(cloud, trimesh.PointCloud) and len(cloud.vertices) == len(points)
    assert np.allclose(cloud.vertices, points.xyz, atol=1e-6)
    assert np.array_equal(np.asarray(cloud.colors)[:, :3], points.rgb)
    assert "confidence" in path.read_bytes()[:400].decode("ascii", "replace")


def test_transforms_json_is_what_nerfstudio_loads(aloe, tmp_path):
    path = write_nerfstudio(aloe, tmp_path / "ns", OPTIONS)
    meta = json.loads(path.read_text())
    assert meta["camera_model"] in {"OPENCV", "PINHOLE"}
    assert (path.parent / meta["ply_file_path"]).is_file()
    assert len(trimesh.load(path.parent / meta["ply_file_path"]).vertices) == len(select_points(aloe, OPTIONS))
    assert len(meta["frames"]) == aloe.num_views
    for frame in meta["frames"]:
        image = path.parent / frame["file_path"]
        assert image.is_file()
        for key in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
            assert isinstance(frame.get(key, meta.get(key)), (int, float))
        assert (frame.get("w", meta.get("w")), frame.get("h", meta.get("h"))) == Image.open(image).size
        matrix = np.array(frame["transform_matrix"])
        assert matrix.shape == (4, 4) and np.allclose(matrix[3], [0, 0, 0, 1])
        assert np.allclose(matrix[:3, :3] @ matrix[:3, :3].T, np.eye(3), atol=1e-5)
        assert (path.parent / frame["depth_file_path"]).is_file()


def test_depth_maps_and_npz(aloe, tmp_path):
    written = export_all(aloe, tmp_path, ["depth", "npz"], OPTIONS)
    for name in aloe.names:
        stem = name.rsplit(".", 1)[0]
        png = np.asarray(Image.open(written["depth"] / f"{stem}.png"))
        depth = np.load(written["depth"] / f"{stem}.npy")
        assert png.dtype == np.uint16 and png.shape == depth.shape == Image.open(ALOE / name).size[::-1]
        assert np.array_equal(png, np.clip(np.round(depth * 1000), 0, 65535).astype(np.uint16))
        assert (depth > 0).mean() > 0.95
        assert np.load(written["depth"] / f"{stem}_conf.npy").shape == depth.shape
    again = Reconstruction.from_npz(written["npz"])
    assert np.array_equal(again.depth, aloe.depth) and np.array_equal(again.c2w, aloe.c2w) and again.names == aloe.names
    assert again.transforms == aloe.transforms


def test_exports_work_from_a_saved_npz_without_photos(tmp_path):
    """An .npz from the app has no original photos: exports fall back to the model's crops."""
    rec, _ = sphere_scene(with_photos=False)
    again = Reconstruction.from_npz(rec.to_npz(tmp_path / "p.npz"))
    model = read_model(write_colmap(again, tmp_path / "colmap", OPTIONS), "binary")
    assert model.num_points3D() > 1000
    for image in model.images.values():
        camera = model.cameras[image.camera_id]
        assert (camera.width, camera.height) == Image.open(tmp_path / "colmap" / "images" / image.name).size  # crops
        for observation in image.get_observation_points2D()[::50]:
            point = model.points3D[observation.point3D_id]
            assert np.linalg.norm(image.project_point(point.xyz) - observation.xy) < 1.0


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvlt", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_cli_writes_every_format(checkpoint_dir, tmp_path):
    result = run_cli(
        "reconstruct",
        str(ALOE),
        str(WHALE / "rubberwhale1.png"),
        "--out",
        str(tmp_path),
        "--formats",
        "all",
        "--checkpoint",
        str(checkpoint_dir),
        "--steps",
        "8",
        "--no-drop-edges",  # synthetic weights give noisy depth: nearly every pixel is an edge
        "--img-size",
        "252",
        "--max-points",
        "20000",
    )
    assert result.returncode == 0, result.stderr
    for scene in ("aloe", "rubberwhale1"):
        out = tmp_path / scene
        assert {p.name for p in out.iterdir()} == {
            "scene.glb",
            "points.ply",
            "splats.ply",
            "colmap",
            "nerfstudio",
            "depth",
            "predictions.npz",
            "scene.rrd",
        }
        model = read_model(out / "colmap" / "sparse" / "0", "binary")  # synthetic weights: few multi-view points
        assert all(point.track.length() >= 2 for point in model.points3D.values()) and model.num_images() >= 1
        assert len(trimesh.load(out / "colmap" / "sparse" / "0" / "points3D.ply").vertices) > 1000
    assert "%" in result.stderr  # tqdm progress


def test_cli_failures_exit_non_zero_with_one_line(checkpoint_dir, tmp_path):
    (tmp_path / "junk.jpg").write_text("junk")
    result = run_cli(
        "reconstruct",
        str(tmp_path / "junk.jpg"),
        "--out",
        str(tmp_path / "o"),
        "--checkpoint",
        str(checkpoint_dir),
        "--quiet",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: junk.jpg is not an image we can read (UnidentifiedImageError). Use JPEG, PNG, WebP, BMP, TIFF or HEIC."
    ]
    missing = run_cli(
        "reconstruct", str(ALOE), "--out", str(tmp_path / "o"), "--checkpoint", str(tmp_path / "none"), "--quiet"
    )
    assert (
        missing.returncode == 1
        and missing.stderr.startswith("error: Checkpoint")
        and len(missing.stderr.strip().splitlines()) == 1
    )
    bad_format = run_cli("reconstruct", str(ALOE), "--out", str(tmp_path / "o"), "--formats", "obj")
    assert bad_format.returncode == 2 and "unknown format" in bad_format.stderr


def test_cli_help_explains_every_option():
    result = run_cli("reconstruct", "--help")
    assert result.returncode == 0
    for option in (
        "--out",
        "--steps",
        "--formats",
        "--fps",
        "--num-frames",
        "--max-frames",
        "--checkpoint",
        "--device",
        "--precision",
        "--img-size",
        "--conf-percentile",
        "--max-points",
        "--mask-background",
    ):
        assert option in result.stdout
    for name in FORMATS:
        assert name in result.stdout

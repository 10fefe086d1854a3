"""Exports of the known scene (tests/sphere_scene.py) loaded the way each trainer's own reader code loads them, at
its default options: graphdeco 3DGS `GaussianModel.load_ply` (through plyfile, as it does), gsplat's colmap
`Parser` (--data_factor 4), nerfstudio's ColmapDataParser (default paths, auto downscale, floor rounding) and
depth_unit_scale_factor, instant-ngp's `depth_path` + `integer_depth_scale`; plus the camera options judged
as the reference 3DGS uses them (principal point at the centre), occlusion in tracks, and the shared camera.

nerfstudio itself is not installed for these tests: `pip install nerfstudio` would replace numpy and a hundred
other packages of the environment. Its reading rules below follow nerfstudio 1.1.5's colmap_dataparser.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycolmap
import pytest
import sphere_scene as known
from conftest import ROOT
from PIL import Image
from plyfile import PlyData
from sphere_scene import sphere_scene

from dvlt.export import CameraOptions, export_all, write_colmap, write_depth_maps
from dvlt.export.splat import write_splats
from dvlt.export.tracks import build_tracks
from dvlt.scene import SceneOptions, select_points

ALL = SceneOptions(conf_percentile=0, max_points=20_000, drop_edges=False)


@pytest.fixture(scope="module")
def scene():
    return sphere_scene()


def c2w_of(image) -> np.ndarray:
    return np.linalg.inv(np.vstack((image.cam_from_world().matrix(), [0, 0, 0, 1])))[:3]


# ---------------------------------------------------------------------------------- graphdeco load_ply
def graphdeco_load_ply(path: Path, max_sh_degree: int = 3) -> dict[str, np.ndarray]:
    """The arrays graphdeco-inria/gaussian-splatting's GaussianModel.load_ply builds (scene/gaussian_model.py),
    step by step, with its asserts; `max_sh_degree` 3 is the trainer's default."""
    vertex = PlyData.read(str(path)).elements[0]
    xyz = np.stack((np.asarray(vertex["x"]), np.asarray(vertex["y"]), np.asarray(vertex["z"])), axis=1)
    opacities = np.asarray(vertex["opacity"])[..., np.newaxis]
    features_dc = np.zeros((xyz.shape[0], 3, 1))
    for channel in range(3):
        features_dc[:, channel, 0] = np.asarray(vertex[f"f_dc_{channel}"])
    by_index = lambda x: int(x.split("_")[-1])  # noqa: E731
    extra = sorted([p.name for p in vertex.properties if p.name.startswith("f_rest_")], key=by_index)
    assert len(extra) == 3 * (max_sh_degree + 1) ** 2 - 3
    features_extra = np.stack([np.asarray(vertex[name]) for name in extra], axis=1)
    features_extra = features_extra.reshape((xyz.shape[0], 3, (max_sh_degree + 1) ** 2 - 1))
    scales = np.stack(
        [np.asarray(vertex[n]) for n in sorted([p.name for p in vertex.properties if p.name.startswith("scale_")])],
        axis=1,
    )
    rotations = [p.name for p in vertex.properties if p.name.startswith("rot")]
    rots = np.stack([np.asarray(vertex[n]) for n in sorted(rotations, key=by_index)], axis=1)
    return {"xyz": xyz, "opacity": opacities, "dc": features_dc, "rest": features_extra, "scale": scales, "rot": rots}


def test_splats_load_in_graphdeco_at_its_default_sh_degree(scene, tmp_path):
    rec, _ = scene
    path = write_splats(rec, tmp_path / "splats.ply", ALL)
    loaded = graphdeco_load_ply(path)
    # gsplat's exporter (splat2ply_bytes) writes the same fields, without the normals, at SH degree 3
    gsplat_layout = ["x", "y", "z", *[f"f_dc_{j}" for j in range(3)], *[f"f_rest_{j}" for j in range(45)], "opacity"]
    gsplat_layout += [f"scale_{j}" for j in range(3)] + [f"rot_{j}" for j in range(4)]
    names = [p.name for p in PlyData.read(str(path)).elements[0].properties if p.name not in ("nx", "ny", "nz")]
    assert names == gsplat_layout
    points = select_points(rec, ALL)
    assert loaded["xyz"].shape == (len(points), 3) and np.abs(loaded["xyz"] - points.xyz).max() == 0
    assert loaded["rest"].shape == (len(points), 3, 15) and not loaded["rest"].any()  # view-independent colour
    rgb = loaded["dc"][:, :, 0] * 0.28209479177387814 + 0.5  # graphdeco's SH2RGB at degree 0
    assert np.abs(rgb * 255 - points.rgb).max() < 1e-3
    assert loaded["scale"].shape == (len(points), 3) and loaded["rot"].shape == (len(points), 4)
    assert np.allclose(np.linalg.norm(loaded["rot"], axis=1), 1, atol=1e-5)
    with pytest.raises(AssertionError):  # the viewer's compact file is DC-only: it would not load here
        graphdeco_load_ply(write_splats(rec, tmp_path / "compact.ply", ALL, rest=False))


# ------------------------------------------------------------------------------ gsplat --data_factor 4
def test_gsplat_parser_loads_data_factor_4(scene, tmp_path):
    """gsplat examples/datasets/colmap.py Parser(data_dir, factor=4): sparse/0, images/ and images_4/ must
    exist; files pair up by sorted name; K is divided by 4, then scaled by the size of the first image in
    images_4 over (width // 4, height // 4). A PNG folder is used as written (JPEGs are re-made by gsplat)."""
    rec, truth = scene
    rec = type(rec)(**{**rec.__dict__, "names": [f"view{v}.png" for v in range(4)]})
    data_dir = tmp_path / "colmap"
    write_colmap(rec, data_dir, ALL)
    factor = 4
    model = pycolmap.Reconstruction(str(data_dir / "sparse/0"))
    colmap_files, image_files = (
        sorted(p.name for p in (data_dir / "images").iterdir()),
        sorted(p.name for p in (data_dir / f"images_{factor}").iterdir()),
    )
    colmap_to_image = dict(zip(colmap_files, image_files))
    names = sorted(image.name for image in model.images.values())
    first = next(i for i in model.images.values() if i.name == names[0])
    camera = model.cameras[first.camera_id]
    actual_w, actual_h = Image.open(data_dir / f"images_{factor}" / colmap_to_image[names[0]]).size
    s_width, s_height = actual_w / (camera.width // factor), actual_h / (camera.height // factor)
    for image in model.images.values():
        view = int(image.name[4])
        camera = model.cameras[image.camera_id]
        K = camera.calibration_matrix()
        K[:2, :] /= factor
        K[0, :] *= s_width
        K[1, :] *= s_height
        small = Image.open(data_dir / f"images_{factor}" / colmap_to_image[image.name])
        width, height = truth.photo_sizes[view]
        assert small.size == (width // factor, height // factor) == (camera.width // factor, camera.height // factor)
        # the true surface point seen at photo position p is seen at p / 4 in images_4, which K must give
        xs, ys = np.meshgrid(np.linspace(8, width - 8, 20), np.linspace(8, height - 8, 20))
        surface = truth.render(view, xs.ravel(), ys.ravel())["points"]
        camera_xyz = (surface - truth.c2w[view][:, 3]) @ truth.c2w[view][:, :3]
        projected = camera_xyz[:, :2] / camera_xyz[:, 2:] * np.diag(K)[:2] + K[:2, 2]
        assert np.abs(projected - np.column_stack((xs.ravel(), ys.ravel())) / factor).max() < 1e-6
        # ...and its pixels are that: each the mean of a 4x4 block of the photo, blocks from the top-left corner
        photo = np.asarray(Image.open(data_dir / "images" / image.name), dtype=np.float64)
        blocks = photo[: small.height * factor, : small.width * factor]
        blocks = blocks.reshape(small.height, factor, small.width, factor, 3).mean(axis=(1, 3))
        assert np.abs(np.asarray(small, dtype=np.float64) - blocks).max() <= 1.0


# --------------------------------------------------------------------- nerfstudio ColmapDataParser
def test_nerfstudio_colmap_parser_loads_the_folder_at_its_default_paths(scene, tmp_path):
    """nerfstudio 1.1.5 ColmapDataParserConfig defaults: colmap_path 'colmap/sparse/0', images_path 'images';
    downscale_factor None picks 2**k so the largest side is <= 1600 and then reads images_<2**k>/<same name>,
    with cameras rescaled by 1/2**k and sizes floored (downscale_rounding_mode 'floor')."""
    rec, truth = scene
    data = tmp_path / "colmap"
    write_colmap(rec, data, ALL)
    colmap_path = data / "colmap/sparse/0"
    assert colmap_path.exists()
    assert not (colmap_path / "cameras.txt").exists()  # so it reads cameras.bin / images.bin / points3D.bin
    model = pycolmap.Reconstruction(str(colmap_path))
    assert model.num_images() == 4 and min(p.track.length() for p in model.points3D.values()) >= 2
    for image in model.images.values():
        view = int(image.name[4])
        camera = model.cameras[image.camera_id]
        path = data / "images" / image.name
        assert Image.open(path).size == (camera.width, camera.height) == truth.photo_sizes[view]
        assert np.abs(camera.calibration_matrix() - truth.photo_intrinsics[view]).max() < 1e-9
        for factor in (2, 4, 8):  # what a photo larger than 1600, 3200 or 6400 px makes it read
            scaled = data / f"images_{factor}" / image.name
            assert Image.open(scaled).size == (math.floor(camera.width / factor), math.floor(camera.height / factor))


# -------------------------------------------------------------------------------------- deep depth
def deep_scene(factor: float):
    """The known scene with every length multiplied by `factor` (depths beyond a x1000 16-bit PNG)."""
    rec, truth = sphere_scene()
    c2w = rec.c2w.copy()
    c2w[:, :, 3] *= factor
    deep = type(rec)(**{**rec.__dict__, "depth": rec.depth * factor, "points": rec.points * factor, "c2w": c2w})
    return deep, truth


def test_nerfstudio_and_instant_ngp_read_a_deep_scene_right(tmp_path):
    factor = 20.0  # the scene reaches about 116 units: x1000 could not hold most of its depths
    rec, truth = deep_scene(factor)
    messages: list[str] = []
    written = export_all(rec, tmp_path, ["nerfstudio", "depth"], ALL, log=messages.append)
    folder = written["nerfstudio"]
    meta = json.loads((folder / "transforms.json").read_text())
    assert "scaled by" in messages[0] and "no depth is clipped" in messages[0]
    frames = sorted(meta["frames"], key=lambda frame: frame["file_path"])
    centres = np.array([np.array(frame["transform_matrix"])[:3, 3] for frame in frames])
    # the export's own unit, as a reader sees it: camera spacing in transforms.json over the true spacing
    unit = np.linalg.norm(centres[1] - centres[0]) / (factor * np.linalg.norm(truth.c2w[1][:, 3] - truth.c2w[0][:, 3]))
    assert unit == pytest.approx(meta["dvlt_scene_scale"], rel=1e-9) and unit < 1
    for view, frame in enumerate(frames):
        png = np.asarray(Image.open(folder / frame["depth_file_path"]), dtype=np.float64)
        exact = factor * truth.photo_depth(view)
        predicted = np.load(written["depth"] / f"view{view}.npy") > 0  # the photo pixels the model saw
        for depth in (png * 1e-3, png * meta["integer_depth_scale"]):  # nerfstudio's default; instant-ngp's
            seen = depth > 0
            assert np.array_equal(seen, predicted)  # nothing dropped
            error = np.abs(depth[seen] / unit - exact[seen]) / exact[seen]
            assert np.median(error) < 1e-3 and (error < 0.02).mean() > 0.97  # depth edges are nearest-picked
        assert frame["depth_path"] == frame["depth_file_path"]


def test_depth_pngs_never_hold_a_clipped_value_silently(tmp_path):
    rec, truth = deep_scene(20.0)
    messages: list[str] = []
    folder = write_depth_maps(rec, tmp_path / "depth", messages.append)
    total_deep = 0
    for view in range(4):
        png = np.asarray(Image.open(folder / f"view{view}.png"), dtype=np.float64)
        exact = 20.0 * truth.photo_depth(view)
        known_depth = png > 0
        assert np.median(np.abs(png[known_depth] * 1e-3 - exact[known_depth]) / exact[known_depth]) < 1e-3
        deep = np.load(folder / f"view{view}.npy") * 1000 > 65535.5
        assert (png[deep] == 0).all() and (png[~deep & (exact < 60)] > 0).all()  # too deep: 0, never 65.535
        total_deep += int(deep.sum())
    assert total_deep > 0 and len(messages) == 1 and f"{total_deep:,} of" in messages[0]


def test_dvlt_export_says_what_it_did_to_a_deep_scene(tmp_path):
    rec, _ = deep_scene(20.0)
    npz = rec.to_npz(tmp_path / "deep.npz")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dvlt",
            "export",
            str(npz),
            "--out",
            str(tmp_path / "X"),
            "--formats",
            "nerfstudio,depth",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    deepest = float(rec.depth[rec.valid].max())  # about 116 units
    scale = math.floor(65.535 / deepest * 1000) / 1000  # three significant digits, rounded down: it fits
    assert f"up to {deepest:.4g} units deep" in result.stderr and f"this export is scaled by {scale:g}" in result.stderr
    assert "Depth PNGs:" in result.stderr and "(unknown) there; the .npy files hold every depth" in result.stderr


# ---------------------------------------------------------------------------- refine + centred cameras
def reference_3dgs_error(folder: Path, truth) -> float:
    """Median pixel error of the true surface seen through the exported cameras as the reference 3DGS uses them:
    focal lengths from the model, principal point at the image centre."""
    model = pycolmap.Reconstruction(str(folder / "colmap" / "sparse" / "0"))
    errors = []
    for image in model.images.values():
        view = int(image.name[4])
        width, height = truth.photo_sizes[view]
        K = model.cameras[image.camera_id].calibration_matrix().copy()
        K[:2, 2] = width / 2, height / 2
        xs, ys = np.meshgrid(np.linspace(20, width - 20, 25), np.linspace(20, height - 20, 25))
        surface = truth.render(view, xs.ravel(), ys.ravel())["points"]
        camera_xyz = (surface - c2w_of(image)[:, 3]) @ c2w_of(image)[:, :3]
        projected = camera_xyz[:, :2] / camera_xyz[:, 2:] * np.diag(K)[:2] + K[:2, 2]
        errors.append(np.linalg.norm(projected - np.column_stack((xs.ravel(), ys.ravel())), axis=1))
    return float(np.median(np.concatenate(errors)))


def test_refine_with_centred_principal_points_is_no_worse_than_centring_alone(tmp_path):
    rec, truth = sphere_scene(perturb=(2, 1.0))  # one camera turned by a degree: refining has work to do
    errors = {}
    for name, cameras in {
        "centre": CameraOptions(centre_principal_point=True),
        "refine+centre": CameraOptions(refine=True, centre_principal_point=True),
    }.items():
        export_all(rec, tmp_path / name, ["colmap"], ALL, cameras, log=lambda message: None)
        errors[name] = reference_3dgs_error(tmp_path / name, truth)
    assert errors["refine+centre"] <= errors["centre"] and errors["refine+centre"] < 0.6, errors


# -------------------------------------------------------------------------------- tracks and occlusion
def test_a_point_hidden_behind_an_occluder_is_not_observed(monkeypatch):
    """The sphere moved to 0.7 units before the wall (its front is about 30 % nearer than the wall behind it):
    a wall point the sphere hides in a view must not be observed by that view."""
    monkeypatch.setattr(known, "SPHERE_CENTRE", np.array([0.05, 0.0, 3.7]))
    monkeypatch.setattr(known, "SPHERE_RADIUS", 0.5)
    rec, truth = known.sphere_scene(with_photos=False)
    points = select_points(rec, ALL)
    from dvlt.export.images import export_views

    tracks = build_tracks(rec, points, export_views(rec))
    hidden_seen, hidden_pairs = 0, 0
    for view in range(4):
        xy, z = project_true(points.xyz, truth, view)
        visible = truth.render(view, xy[:, 0], xy[:, 1])["depth"]
        width, height = truth.photo_sizes[view]
        inside = (xy[:, 0] > 1) & (xy[:, 0] < width - 1) & (xy[:, 1] > 1) & (xy[:, 1] < height - 1)
        hidden = inside & (z > 1.05 * visible)  # something at least 5 % nearer covers the point here
        observed = np.zeros(len(points), bool)
        observed[tracks.point[tracks.view == view]] = True
        hidden_pairs += int(hidden.sum())
        hidden_seen += int((hidden & observed).sum())
    assert hidden_pairs > 500  # the scene does hide wall points from some views
    assert hidden_seen == 0, (hidden_seen, hidden_pairs)


def project_true(xyz: np.ndarray, truth, view: int) -> tuple[np.ndarray, np.ndarray]:
    camera = (xyz.astype(np.float64) - truth.c2w[view][:, 3]) @ truth.c2w[view][:, :3]
    K = truth.photo_intrinsics[view]
    return camera[:, :2] / camera[:, 2:] * np.diag(K)[:2] + K[:2, 2], camera[:, 2]


def test_shared_camera_averages_every_view(tmp_path):
    """Views 0-2 share a photo size but not intrinsics (fx 290 / 310 / 270, off-centre cx, cy): the shared
    camera is their mean, not any one view's, and the re-fitted poses keep the true surface near its pixels."""
    rec, truth = sphere_scene()
    landscape = [0, 1, 2]
    rec.images, rec.valid, rec.depth, rec.confidence, rec.points = (
        a[landscape] for a in (rec.images, rec.valid, rec.depth, rec.confidence, rec.points)
    )
    rec.c2w, rec.intrinsics = rec.c2w[landscape], rec.intrinsics[landscape]
    rec.transforms, rec.names, rec.originals = rec.transforms[:3], rec.names[:3], rec.originals[:3]
    export_all(rec, tmp_path, ["colmap"], ALL, CameraOptions(shared_camera=True), log=lambda message: None)
    model = pycolmap.Reconstruction(str(tmp_path / "colmap" / "sparse" / "0"))
    assert model.num_cameras() == 1 and model.num_images() == 3
    shared = next(iter(model.cameras.values()))
    mean = np.mean([truth.photo_intrinsics[v] for v in landscape], axis=0)
    assert np.abs(shared.calibration_matrix() - mean).max() < 1e-6

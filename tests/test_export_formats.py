"""Exports of a known scene (tests/sphere_scene.py: exact depth, known cameras), read back the way trainers and
viewers read them: pycolmap, a transforms.json reader following nerfstudio's dataparser, a plain PLY parser,
the GLB's JSON (and Khronos' gltf-validator when installed), and the `dvlt export` command in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycolmap
import pytest
from conftest import ROOT
from PIL import Image
from sphere_scene import SPHERE_CENTRE, SPHERE_RADIUS, WALL_NORMAL, sphere_scene

from dvlt.export import CameraOptions, export_all, refine_cameras, write_colmap, write_depth_maps, write_glb
from dvlt.export.ply import write_point_cloud
from dvlt.export.splat import write_splats
from dvlt.scene import SceneOptions

ALL = SceneOptions(conf_percentile=0, max_points=20_000, drop_edges=False)  # every pixel, edges included


@pytest.fixture(scope="module")
def scene():
    return sphere_scene()


def read_ply(path: Path) -> tuple[list[str], np.ndarray]:
    """(property names, structured array) of a binary little-endian PLY with one vertex element."""
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    types = {"float": "<f4", "uchar": "u1", "double": "<f8", "int": "<i4"}
    names, dtype = [], []
    for line in header:
        if line.startswith("property"):
            _, kind, name = line.split()
            names.append(name)
            dtype.append((name, types[kind]))
    count = int(next(line for line in header if line.startswith("element vertex")).split()[-1])
    data = np.frombuffer(raw[end:], dtype=np.dtype(dtype), count=count)
    return names, data


def true_normals(xyz: np.ndarray) -> np.ndarray:
    """Normals of the known surfaces at points lying on them (sphere outward, wall toward the cameras)."""
    on_sphere = np.abs(np.linalg.norm(xyz - SPHERE_CENTRE, axis=1) - SPHERE_RADIUS) < 1e-3
    return np.where(on_sphere[:, None], (xyz - SPHERE_CENTRE) / SPHERE_RADIUS, WALL_NORMAL)


def angle_degrees(c2w_a: np.ndarray, c2w_b: np.ndarray) -> float:
    relative = c2w_a[:3, :3].T @ c2w_b[:3, :3]
    return float(np.degrees(np.arccos(np.clip((np.trace(relative) - 1) / 2, -1, 1))))


def c2w_of(image) -> np.ndarray:
    return np.linalg.inv(np.vstack((image.cam_from_world().matrix(), [0, 0, 0, 1])))[:3]


# ------------------------------------------------------------------------------------------------- COLMAP
@pytest.mark.parametrize("kind", ["binary", "text"])
def test_colmap_tracks_span_views_and_match_the_true_cameras(scene, tmp_path, kind):
    rec, truth = scene
    sparse = write_colmap(rec, tmp_path / "colmap", ALL)
    model = pycolmap.Reconstruction()
    (model.read_binary if kind == "binary" else model.read_text)(str(sparse))
    lengths = np.array([point.track.length() for point in model.points3D.values()])
    assert model.num_images() == 4 and 0.8 * 20_000 < model.num_points3D() < 20_000
    assert lengths.min() >= 2  # COLMAP's invariant: no point seen by one image only
    _, every_point = read_ply(sparse / "points3D.ply")
    assert len(every_point) == 20_000  # ...while the PLY the reference 3DGS reads keeps them all
    by_name = {image.name: image for image in model.images.values()}
    for view in range(4):
        image = by_name[f"view{view}.jpg"]
        camera = model.cameras[image.camera_id]
        assert (camera.width, camera.height) == truth.photo_sizes[view]
        assert np.abs(camera.calibration_matrix() - truth.photo_intrinsics[view]).max() < 1e-6
        assert np.abs(c2w_of(image) - truth.c2w[view]).max() < 1e-9
        # every observation is where the true camera sees the point, and the point is not hidden there
        points2d = image.get_observation_points2D()
        xyz = np.array([model.points3D[p.point3D_id].xyz for p in points2d])
        observed = np.array([p.xy for p in points2d])
        camera_xyz = (xyz - truth.c2w[view][:, 3]) @ truth.c2w[view][:, :3]
        projected = camera_xyz[:, :2] / camera_xyz[:, 2:] @ np.diag(truth.photo_intrinsics[view][[0, 1], [0, 1]])
        projected += truth.photo_intrinsics[view][:2, 2]
        assert np.abs(projected - observed).max() < 1e-3
        visible_depth = truth.render(view, observed[:, 0], observed[:, 1])["depth"]
        assert np.median(np.abs(camera_xyz[:, 2] / visible_depth - 1)) < 1e-3
        assert (np.abs(camera_xyz[:, 2] / visible_depth - 1) < 0.05).mean() > 0.99  # no occluded observations
    errors = np.array([point.error for point in model.points3D.values()])
    assert np.isfinite(errors).all() and errors.max() < 1e-3


@pytest.mark.parametrize("folder", ["sparse/0", "colmap/sparse/0"])
def test_colmap_bundle_adjustment_runs_on_the_model_as_written(scene, tmp_path, folder):
    """COLMAP's bundle adjuster refuses a point with a one-image track ('Check failed: point3D.track.Length()
    > 1'); both copies of the model (COLMAP/3DGS/gsplat's and nerfstudio's) must run as written."""
    rec, truth = scene
    write_colmap(rec, tmp_path / "colmap", ALL)
    model = pycolmap.Reconstruction(str(tmp_path / "colmap" / folder))
    options = pycolmap.BundleAdjustmentOptions()
    options.refine_focal_length = options.refine_principal_point = options.refine_extra_params = False
    options.print_summary = False
    options.ceres.solver_options.num_threads = 1
    before = model.compute_mean_reprojection_error()
    pycolmap.bundle_adjustment(model, options)
    assert model.num_points3D() > 0.8 * 20_000 and before < 1e-3
    assert model.compute_mean_reprojection_error() <= before + 1e-6
    for image in model.images.values():  # exact cameras stay where they are
        assert angle_degrees(c2w_of(image), truth.c2w[int(image.name[4])]) < 1e-3


def test_bundle_adjustment_repairs_a_camera_turned_by_one_degree(tmp_path):
    rec, truth = sphere_scene(perturb=(2, 1.0))
    assert abs(angle_degrees(rec.c2w[2], truth.c2w[2]) - 1.0) < 1e-6
    messages: list[str] = []
    refined, report = refine_cameras(rec, ALL, messages.append)
    assert report.applied and report.error_after < 0.5 * report.error_before, report.message
    assert messages == [report.message] and "->" in report.message
    assert angle_degrees(refined.c2w[2], truth.c2w[2]) < 0.15
    assert max(angle_degrees(refined.c2w[v], truth.c2w[v]) for v in (1, 3)) < 0.15
    assert np.abs(refined.c2w[0] - truth.c2w[0]).max() < 1e-9  # still the first view's frame...
    assert np.abs(refined.c2w[:, :, 3] - truth.c2w[:, :, 3]).max() < 0.01  # ...and scale
    assert np.abs(refined.points[2][rec.valid[2]] - sphere_scene()[0].points[2][rec.valid[2]]).max() < 0.03
    model = pycolmap.Reconstruction(str(write_colmap(refined, tmp_path / "colmap", ALL)))
    image = next(i for i in model.images.values() if i.name == "view2.jpg")
    assert angle_degrees(c2w_of(image), truth.c2w[2]) < 0.15


def test_bundle_adjustment_falls_back_with_a_message(monkeypatch):
    rec, _ = sphere_scene(perturb=(2, 1.0), with_photos=False)
    import dvlt.export.refine as refine

    def broken(model):
        raise RuntimeError("Check failed")

    monkeypatch.setattr(refine, "bundle_adjust", broken)
    messages: list[str] = []
    kept, report = refine_cameras(rec, ALL, messages.append)
    assert kept is rec and not report.applied
    assert messages[0].startswith("Bundle adjustment skipped: pycolmap failed") and "unrefined" in messages[0]
    monkeypatch.setitem(sys.modules, "pycolmap", None)  # not installed
    _, report = refine_cameras(rec, ALL, messages.append)
    assert "pycolmap is not installed" in report.message


def test_centred_principal_points_keep_reprojection_small(scene, tmp_path):
    """The reference 3DGS ignores cx, cy: with --centre-principal-point the poses are re-fitted so the
    centred cameras still see the true surface where the photos show it."""
    rec, truth = scene
    messages: list[str] = []
    export_all(rec, tmp_path, ["colmap"], ALL, CameraOptions(centre_principal_point=True), log=messages.append)
    model = pycolmap.Reconstruction(str(tmp_path / "colmap" / "sparse" / "0"))
    naive, refitted = [], []
    for image in model.images.values():
        view = int(image.name[4])
        camera = model.cameras[image.camera_id]
        width, height = truth.photo_sizes[view]
        assert camera.principal_point_x == width / 2 and camera.principal_point_y == height / 2
        xs, ys = np.meshgrid(np.linspace(20, width - 20, 25), np.linspace(20, height - 20, 25))
        surface = truth.render(view, xs.ravel(), ys.ravel())["points"]
        pixels = np.column_stack((xs.ravel(), ys.ravel()))
        refitted.append(np.linalg.norm(np.array([image.project_point(p) for p in surface]) - pixels, axis=1).mean())
        centred = truth.photo_intrinsics[view].copy()
        centred[:2, 2] = width / 2, height / 2
        camera_xyz = (surface - truth.c2w[view][:, 3]) @ truth.c2w[view][:, :3]
        naive_xy = camera_xyz[:, :2] / camera_xyz[:, 2:] * np.diag(centred)[:2] + centred[:2, 2]
        naive.append(np.linalg.norm(naive_xy - pixels, axis=1).mean())
    assert max(naive) > 5 and max(refitted) < 1.0, (naive, refitted)
    assert "re-fitted" in messages[0]


# ---------------------------------------------------------------------------------------- nerfstudio
def nerfstudio_cameras(transforms: Path) -> list[dict]:
    """Cameras as nerfstudio's nerfstudio_dataparser builds them: frames sorted by file name, and a top-level
    fl_x / fl_y / cx / cy / w / h, when present, used for every frame instead of the frame's own value."""
    meta = json.loads(transforms.read_text())
    frames = sorted(meta["frames"], key=lambda frame: str(transforms.parent / frame["file_path"]))
    cameras = []
    for frame in frames:
        camera = {key: float(meta[key]) if key in meta else float(frame[key]) for key in ("fl_x", "fl_y", "cx", "cy")}
        camera.update({key: int(meta[key]) if key in meta else int(frame[key]) for key in ("w", "h")})
        camera["c2w"] = np.array(frame["transform_matrix"], dtype=np.float64)[:3]
        camera["file_path"], camera["depth_file_path"] = frame["file_path"], frame.get("depth_file_path")
        cameras.append(camera)
    return cameras


def nerfstudio_project(camera: dict, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels and distance in front (-z) of world points, inverting nerfstudio's ray generation: a pixel
    (u, v) is the ray [(u - cx) / fx, -(v - cy) / fy, -1] in the camera, rotated by c2w."""
    local = (xyz - camera["c2w"][:, 3]) @ camera["c2w"][:, :3]
    ahead = -local[:, 2]
    u = camera["cx"] + camera["fl_x"] * local[:, 0] / ahead
    v = camera["cy"] - camera["fl_y"] * local[:, 1] / ahead
    return np.column_stack((u, v)), ahead


def test_transforms_json_reprojects_under_nerfstudio_rules(scene, tmp_path):
    rec, truth = scene
    transforms = export_all(rec, tmp_path, ["nerfstudio"], ALL)["nerfstudio"] / "transforms.json"
    meta = json.loads(transforms.read_text())
    assert "fl_x" not in meta and "w" not in meta  # views differ: no top-level value may override them
    _, cloud = read_ply(transforms.parent / meta["ply_file_path"])
    cloud = np.column_stack((cloud["x"], cloud["y"], cloud["z"])).astype(np.float64)
    cameras = nerfstudio_cameras(transforms)
    assert [c["file_path"] for c in cameras] == [f"images/view{v}.jpg" for v in range(4)]
    for view, camera in enumerate(cameras):
        width, height = truth.photo_sizes[view]
        assert (camera["w"], camera["h"]) == (width, height) == Image.open(transforms.parent / camera["file_path"]).size
        xs, ys = np.meshgrid(np.linspace(0.5, width - 0.5, 30), np.linspace(0.5, height - 0.5, 30))
        surface = truth.render(view, xs.ravel(), ys.ravel())["points"]
        pixels, ahead = nerfstudio_project(camera, surface)
        assert (ahead > 0).all()
        assert np.abs(pixels - np.column_stack((xs.ravel(), ys.ravel()))).max() < 0.5
        _, cloud_ahead = nerfstudio_project(camera, cloud)
        assert (cloud_ahead > 0).mean() > 0.99  # the cloud is in front of every camera, along -z
        # depth_file_path: 16-bit PNG in millimetres, read with nerfstudio's default depth_unit_scale_factor
        depth = np.asarray(Image.open(transforms.parent / camera["depth_file_path"]), dtype=np.float64) * 1e-3
        exact = truth.photo_depth(view)
        smooth = (depth > 0) & (np.abs(exact - np.median(exact)) < 10)
        assert depth.shape == (height, width) and np.median(np.abs(depth - exact)[smooth]) < 1e-3
    # instant-ngp: p * scale + offset puts the cloud in the unit cube; the aabb_scale box holds the cameras
    inside = ((cloud * meta["scale"] + meta["offset"] >= 0) & (cloud * meta["scale"] + meta["offset"] <= 1)).all(1)
    assert inside.mean() > 0.95
    centres = np.array([c["c2w"][:, 3] for c in cameras]) * meta["scale"] + meta["offset"]
    assert meta["aabb_scale"] in (1, 2, 4, 8, 16, 32, 64, 128)
    assert (np.abs(centres - 0.5) <= meta["aabb_scale"] / 2).all()


def test_shared_camera_goes_to_the_top_level(tmp_path):
    rec, _ = sphere_scene(with_photos=False)
    landscape = [0, 1, 2]
    rec.images, rec.valid, rec.depth, rec.confidence, rec.points = (
        a[landscape] for a in (rec.images, rec.valid, rec.depth, rec.confidence, rec.points)
    )
    rec.c2w, rec.intrinsics = rec.c2w[landscape], rec.intrinsics[landscape]
    rec.transforms, rec.names = rec.transforms[:3], rec.names[:3]
    messages: list[str] = []
    written = export_all(
        rec, tmp_path, ["nerfstudio", "colmap"], ALL, CameraOptions(shared_camera=True), messages.append
    )
    meta = json.loads((written["nerfstudio"] / "transforms.json").read_text())
    assert all(key in meta for key in ("fl_x", "fl_y", "cx", "cy", "w", "h"))
    assert not any("fl_x" in frame for frame in meta["frames"])
    model = pycolmap.Reconstruction(str(written["colmap"] / "sparse" / "0"))
    assert model.num_cameras() == 1 and model.num_images() == 3
    assert messages and messages[0].startswith("Shared camera: poses re-fitted")


# ------------------------------------------------------------------------------------- PLY and splats
def test_ply_normals_follow_the_true_surface(scene, tmp_path):
    rec, _ = scene
    names, cloud = read_ply(write_point_cloud(rec, tmp_path / "points.ply", ALL))
    assert names[:6] == ["x", "y", "z", "nx", "ny", "nz"] and {"red", "green", "blue"} <= set(names)
    xyz = np.column_stack((cloud["x"], cloud["y"], cloud["z"])).astype(np.float64)
    normals = np.column_stack((cloud["nx"], cloud["ny"], cloud["nz"])).astype(np.float64)
    cosines = (normals * true_normals(xyz)).sum(axis=1)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
    assert np.median(np.abs(cosines)) > 0.95
    assert (cosines > 0).mean() > 0.97  # facing the cameras, like the visible surfaces


def test_splat_ply_has_the_3dgs_layout(scene, tmp_path):
    rec, _ = scene
    names, splats = read_ply(write_splats(rec, tmp_path / "splats.ply", ALL))
    assert names == (  # the order the reference 3DGS writes (construct_list_of_attributes at SH degree 3)
        "x y z nx ny nz f_dc_0 f_dc_1 f_dc_2".split()
        + [f"f_rest_{k}" for k in range(45)]
        + "opacity scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3".split()
    )
    assert all(splats.dtype[name] == np.dtype("<f4") for name in names)
    q = np.column_stack([splats[f"rot_{k}"] for k in range(4)]).astype(np.float64)
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)
    w, x, y, z = q.T  # the rotation's third column: where the splat's thin local z axis points
    thin_axis = np.column_stack((2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)))
    xyz = np.column_stack((splats["x"], splats["y"], splats["z"])).astype(np.float64)
    assert np.median(np.abs((thin_axis * true_normals(xyz)).sum(axis=1))) > 0.95
    assert (splats["scale_2"] < splats["scale_0"]).all() and np.array_equal(splats["scale_0"], splats["scale_1"])
    rgb = np.column_stack([splats[f"f_dc_{k}"] for k in range(3)]) * 0.28209479 + 0.5
    _, points = read_ply(write_point_cloud(rec, tmp_path / "points.ply", ALL))  # the same points, as colours
    assert np.abs(rgb * 255 - np.column_stack((points["red"], points["green"], points["blue"]))).max() < 1e-3
    alpha = 1 / (1 + np.exp(-splats["opacity"].astype(np.float64)))
    assert np.allclose(alpha, 1 - 1 / 3.0, atol=1e-5)  # confidence 3 everywhere in this scene
    # neighbouring splats touch: every bit of the visible surface is within 2 sigma of a splat centre,
    # and splats are not much larger than the gaps between their centres
    sigma = np.exp(splats["scale_0"].astype(np.float64))
    surface = np.concatenate([rec.points[v][rec.valid[v]] for v in range(4)]).astype(np.float64)
    probes = surface[np.random.default_rng(0).choice(len(surface), 500, replace=False)]
    distances = np.linalg.norm(probes[:, None] - xyz[None], axis=2)
    nearest = distances.argmin(axis=1)
    assert (distances[np.arange(500), nearest] < 2 * sigma[nearest]).mean() > 0.95
    sample = np.random.default_rng(1).choice(len(xyz), 500, replace=False)
    gaps = np.linalg.norm(xyz[sample, None] - xyz[None], axis=2)
    gaps[np.arange(500), sample] = np.inf
    assert np.median(sigma) < 1.5 * np.median(gaps.min(axis=1))


# ---------------------------------------------------------------------------------------------- GLB
def glb_json(path: Path) -> dict:
    raw = path.read_bytes()
    length, kind = struct.unpack("<II", raw[12:20])
    assert kind == 0x4E4F534A
    return json.loads(raw[20 : 20 + length])


def quaternion_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def test_glb_has_a_camera_per_view_at_the_true_poses(scene, tmp_path):
    rec, truth = scene
    path = write_glb(rec, tmp_path / "scene.glb", ALL).path
    gltf = glb_json(path)
    assert len(gltf["cameras"]) == 4
    nodes = [node for node in gltf["nodes"] if "camera" in node]
    assert len(nodes) == 4
    # glTF world = diag(1, -1, -1) (world - centre); view 0 sits at the world origin, which gives the centre
    flip = np.diag([1.0, -1.0, -1.0])
    centre = -flip @ np.array(nodes[0]["translation"])
    for view, node in enumerate(nodes):
        camera = gltf["cameras"][node["camera"]]["perspective"]
        K, (width, height) = truth.photo_intrinsics[view], truth.photo_sizes[view]
        assert camera["yfov"] == pytest.approx(2 * np.arctan(height / (2 * K[1, 1])), rel=1e-6)
        assert camera["aspectRatio"] == pytest.approx(width * K[1, 1] / (height * K[0, 0]), rel=1e-6)
        rotation = quaternion_matrix(*node["rotation"])
        position = flip @ np.array(node["translation"]) + centre
        assert np.abs(position - truth.c2w[view][:, 3]).max() < 1e-5
        # glTF cameras look down local -z with +y up: that must be the true viewing direction and image up
        assert np.allclose(flip @ rotation @ [0, 0, -1], truth.c2w[view][:, 2], atol=1e-6)
        assert np.allclose(flip @ rotation @ [0, 1, 0], -truth.c2w[view][:, 1], atol=1e-6)


def test_glb_portrait_frustum_matches_the_photo(scene, tmp_path):
    import trimesh

    rec, truth = scene
    path = write_glb(rec, tmp_path / "scene.glb", ALL).path
    loaded = trimesh.load(path, force="scene")
    vertices = loaded.geometry["camera_003"].vertices
    apex = vertices[:4].mean(axis=0)
    corners = np.array([vertices[8 * k + 4 : 8 * k + 8].mean(axis=0) for k in range(4)])
    gltf = glb_json(path)
    node = next(n for n in gltf["nodes"] if n.get("name") == "view_003")
    rotation = quaternion_matrix(*node["rotation"])
    local = (corners - apex) @ rotation  # in the glTF camera's frame: x right, y up, -z ahead
    width = np.ptp(local[:, 0] / -local[:, 2])
    height = np.ptp(local[:, 1] / -local[:, 2])
    K, (photo_w, photo_h) = truth.photo_intrinsics[3], truth.photo_sizes[3]
    assert width == pytest.approx(photo_w / K[0, 0], rel=1e-3) and height == pytest.approx(photo_h / K[1, 1], rel=1e-3)


def gltf_validator() -> str | None:
    """Path of the npm `gltf-validator` module (.ci/run installs it), or None."""
    candidates = [
        os.environ.get("DVLT_GLTF_VALIDATOR", ""),
        str(Path.home() / ".cache/dvlt-ci/node_modules/gltf-validator"),
    ]
    return next((c for c in candidates if c and Path(c, "package.json").is_file()), None)


def test_glb_passes_the_khronos_validator(scene, tmp_path):
    module = gltf_validator()
    if module is None or shutil.which("node") is None:
        if os.environ.get("DVLT_REQUIRE_GLTF_VALIDATOR"):
            pytest.fail("gltf-validator is required here but not installed")
        pytest.skip("node or the npm gltf-validator package is not installed")
    rec, _ = scene
    path = write_glb(rec, tmp_path / "scene.glb", ALL).path
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "gltf_validate.js"), module, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == 0 and report["warnings"] == 0, report["messages"]


# -------------------------------------------------------------------------------------------- depth maps
def best_shift(depth: np.ndarray, truth, view: int, region: np.ndarray, axis: int) -> float:
    """The sub-pixel shift d along `axis` (0 = x, 1 = y) for which the true depth rendered at
    (pixel centre + d) matches `depth` best over `region` (searched in 0.02 px steps)."""
    ys, xs = np.nonzero(region)
    sample = np.random.default_rng(view).choice(len(ys), min(len(ys), 1500), replace=False)
    ys, xs = ys[sample], xs[sample]
    centres = np.column_stack((xs + 0.5, ys + 0.5))
    shifts = np.linspace(-0.4, 0.4, 41)
    errors = []
    for shift in shifts:
        moved = centres.copy()
        moved[:, axis] += shift
        errors.append(np.median(np.abs(truth.render(view, moved[:, 0], moved[:, 1])["depth"] - depth[ys, xs])))
    return float(shifts[int(np.argmin(errors))])


def test_depth_maps_hold_z_depth_without_subpixel_shift(scene, tmp_path):
    rec, truth = scene
    folder = write_depth_maps(rec, tmp_path / "depth")
    for view in range(4):
        depth = np.load(folder / f"view{view}.npy").astype(np.float64)
        exact = truth.photo_depth(view)  # z-depth rendered at the photo's own pixel centres
        assert depth.shape == exact.shape
        stack = [np.roll(exact, s, a) for s in (-2, 2) for a in (0, 1)]
        smooth = (depth > 0) & (np.maximum.reduce(stack) / np.minimum.reduce(stack) < 1.02)
        smooth[:3], smooth[-3:], smooth[:, :3], smooth[:, -3:] = False, False, False, False
        assert np.median(np.abs(depth - exact)[smooth] / exact[smooth]) < 1e-5
        rows = np.arange(exact.shape[0])[:, None] * np.ones(exact.shape[1], bool)
        for band in (rows < exact.shape[0] / 3, rows >= 2 * exact.shape[0] / 3):  # top and bottom of the photo
            for axis in (0, 1):
                assert best_shift(depth, truth, view, smooth & band, axis) == pytest.approx(0, abs=0.021)


# ------------------------------------------------------------------------------------------- dvlt export
def test_dvlt_export_writes_every_format_without_torch(tmp_path):
    rec, _ = sphere_scene()
    npz = rec.to_npz(tmp_path / "known.npz")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, photo in zip(rec.names, rec.originals):
        photo.save(photos / name, quality=95)
    out = tmp_path / "X"
    code = (
        "import sys; from dvlt.cli import main; code = main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)"
    )
    args = ["export", str(npz), "--out", str(out), "--formats", "all", "--images", str(photos), "--refine"]
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Bundle adjustment: mean reprojection error" in result.stderr and "->" in result.stderr
    assert {p.name for p in out.iterdir()} == {
        "scene.glb",
        "points.ply",
        "splats.ply",
        "colmap",
        "nerfstudio",
        "depth",
        "predictions.npz",
        "scene.rrd",  # rerun-sdk is in the test extra, so 'all' includes the Rerun recording
    }
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert model.num_images() == 4 and {c.width for c in model.cameras.values()} == {330, 250}  # full photos


def test_dvlt_export_from_the_npz_alone_and_its_errors(tmp_path):
    rec, _ = sphere_scene(with_photos=False)
    npz = rec.to_npz(tmp_path / "known.npz")
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "dvlt", "export", *a], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    result = run(str(npz), "--out", str(tmp_path / "X"), "--formats", "colmap,splat", "--quiet")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    model = pycolmap.Reconstruction(str(tmp_path / "X" / "colmap" / "sparse" / "0"))
    sizes = {(c.width, c.height) for c in model.cameras.values()}
    assert sizes == {(168, 126), (95, 126)}  # the model's crops stand in for the photos
    missing = run(str(tmp_path / "none.npz"), "--out", str(tmp_path / "Y"))
    assert missing.returncode == 1 and missing.stderr.strip() == "error: none.npz: no such predictions file."
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "photos" / "view0.jpg")
    wrong = run(str(npz), "--out", str(tmp_path / "Y"), "--images", str(tmp_path / "photos"))
    assert wrong.returncode == 1 and "view0.jpg is 10x10" in wrong.stderr and str(tmp_path) not in wrong.stderr
    bad = run(str(npz), "--out", str(tmp_path / "Y"), "--formats", "obj")
    assert bad.returncode == 2 and "unknown format" in bad.stderr


def test_export_package_and_cli_defaults_stay_torch_free():
    code = "import sys, dvlt.export, dvlt.cli; assert 'torch' not in sys.modules; print(dvlt.cli.DEFAULT_REPO)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    from dvlt.weights import DEFAULT_REPO

    assert result.stdout.strip() == DEFAULT_REPO  # the CLI's copy of the default checkpoint matches


def test_studio_downloads_with_the_new_labels_and_refine(tmp_path):
    import zipfile

    from dvlt import studio

    rec, _ = sphere_scene(perturb=(1, 1.0))
    assert list(studio.DOWNLOAD_FORMATS)[:3] == [
        "COLMAP (3DGS, gsplat, nerfstudio-colmap)",
        "nerfstudio / instant-ngp (transforms.json)",
        "Gaussian splats (.ply)",
    ]
    names, _ = read_ply(studio.download(rec, "Gaussian splats (.ply)", ALL, tmp_path))
    assert names[-4:] == ["rot_0", "rot_1", "rot_2", "rot_3"]
    messages: list[str] = []
    archive = studio.download(rec, "COLMAP (3DGS, gsplat, nerfstudio-colmap)", ALL, tmp_path, True, messages.append)
    assert messages and messages[0].startswith("Bundle adjustment: mean reprojection error")
    assert any(n.endswith("sparse/0/points3D.bin") for n in zipfile.ZipFile(archive).namelist())


# ------------------------------------------------------------------------------ full-size photos on disk
def test_colmap_images_copy_upright_photos_and_shrink_jpegs_while_decoding(tmp_path):
    """Photos on disk (as the app and `dvlt export --images` hold them): an upright RGB JPEG or PNG lands in images/
    byte for byte; a JPEG stored sideways (EXIF orientation 6) is written upright; images_<f> hold the photo's
    f x f block means, at the photo's own pixel positions, whether or not the JPEG was shrunk while decoding."""
    from dvlt.inputs import Originals, open_image_reduced

    rec, _ = sphere_scene()
    photos = tmp_path / "photos"
    photos.mkdir()
    names = ["view0.jpg", "view1.jpg", "view2.png", "view3.jpg"]
    paths, sizes = [], []
    for view, (name, photo) in enumerate(zip(names, rec.originals)):
        path = photos / name
        if view == 1:  # stored turned a quarter left; the tag says "turn right to view"
            exif = Image.Exif()
            exif[0x0112] = 6
            photo.transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif)
        else:
            photo.save(path, **({"quality": 95} if name.endswith(".jpg") else {}))
        paths.append(path)
        sizes.append((photo.height, photo.width))
    on_disk = type(rec)(**{**rec.__dict__, "names": names, "originals": Originals.from_paths(paths, sizes)})
    out = tmp_path / "colmap"
    write_colmap(on_disk, out, ALL)
    for view in (0, 2, 3):
        assert (out / "images" / names[view]).read_bytes() == paths[view].read_bytes()
    upright = Image.open(out / "images" / names[1])
    assert upright.size == rec.originals[1].size and not upright.getexif().get(0x0112)
    seen = np.asarray(upright, np.float64)
    error = np.abs(seen - np.asarray(rec.originals[1], np.float64)).mean()  # two JPEG generations: about 5 levels
    turned = np.abs(seen - np.asarray(rec.originals[1].transpose(Image.Transpose.ROTATE_180), np.float64)).mean()
    assert error < 8 and error < turned / 3, (error, turned)
    for view, name in enumerate(names):
        photo = np.asarray(Image.open(paths[view]) if view != 1 else upright, np.float64)
        for factor in (2, 4, 8):
            small = np.asarray(Image.open(out / f"images_{factor}" / name), np.float64)
            height, width = photo.shape[0] // factor, photo.shape[1] // factor
            assert small.shape == (height, width, 3), (name, factor)
            blocks = photo[: height * factor, : width * factor]
            blocks = blocks.reshape(height, factor, width, factor, 3).mean(axis=(1, 3))
            errors = {
                (shift, axis): np.abs(np.roll(small, shift, axis)[2:-2, 2:-2] - blocks[2:-2, 2:-2]).mean()
                for shift in (-1, 0, 1)
                for axis in (0, 1)
            }
            shifted = min(e for (shift, _), e in errors.items() if shift)
            # lossless PNG: the exact block means; JPEG (saved at quality 95 from a noisy texture, which alone
            # costs up to 20 levels at factor 4): closer than any one-pixel shift of the blocks
            bound = 1.0 if name.endswith(".png") else shifted
            assert errors[0, 0] < bound, (name, factor, errors)
    shrunk, factor = open_image_reduced(paths[0], 2)  # before saving: libjpeg's half-size decode, aligned
    photo = np.asarray(Image.open(paths[0]), np.float64)
    height, width = photo.shape[0] // 2, photo.shape[1] // 2
    blocks = photo[: 2 * height, : 2 * width].reshape(height, 2, width, 2, 3).mean(axis=(1, 3))
    assert factor == 2 and shrunk.size == (-(-photo.shape[1] // 2), -(-photo.shape[0] // 2))
    pixels = np.asarray(shrunk, np.float64)[:height, :width]
    errors = [np.abs(np.roll(pixels, s, a) - blocks)[2:-2, 2:-2].mean() for s in (0, 1, -1) for a in (0, 1)]
    assert errors[0] < 4 and errors[0] < min(errors[2:]) / 3, errors

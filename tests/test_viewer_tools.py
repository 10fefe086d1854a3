"""Flying-pixel filter, automatic reference view and the Rerun recording, on scenes with known truth."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from conftest import ALOE, WHALE, known_scene
from PIL import Image

from dvlt.edges import depth_edges
from dvlt.reference import most_central_view

HEIGHT, WIDTH, FOCAL = 120, 160, 150.0


def render_box_before_wall() -> tuple[np.ndarray, np.ndarray]:
    """Exact z-depth of a camera looking at a wall tilted 30 degrees (depth 4-ish) with a box face at depth 1.5.

    Returns (depth (1, H, W), truth (1, H, W) True on pixels whose 3x3 neighbourhood straddles the box outline).
    """
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5
    x = (cols - WIDTH / 2) / FOCAL
    # wall: points with z = 4 + tan(30 deg) * X, i.e. depth d with d = 4 + tan30 * x d
    wall = 4.0 / (1.0 - np.tan(np.radians(30)) * x)
    box = (np.abs(cols - 80) < 30) & (np.abs(rows - 60) < 25)
    depth = np.where(box, 1.5, wall)
    padded = np.pad(box, 1, mode="edge")
    neighbours = [padded[dy : dy + HEIGHT, dx : dx + WIDTH] for dy in range(3) for dx in range(3)]
    straddles = np.any(neighbours, axis=0) & ~np.all(neighbours, axis=0)
    return depth[None], straddles[None]


def test_edges_drop_the_outline_and_keep_tilted_surfaces():
    depth, outline = render_box_before_wall()
    edges = depth_edges(depth)
    assert edges[outline].all()  # every pixel next to the jump goes
    assert edges[~outline].mean() < 0.001  # the tilted wall and the box face stay


def slope_beside_small_step() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plane seen at a grazing angle (left half) beside a flat wall with a slightly nearer box (right half).

    A plane's inverse depth is linear in the pixel column, so depth = 1 / (1 - s * column) is an exact plane; s is
    chosen so that over any three neighbouring columns depth changes by at most 3.0 % (a smooth surface). The box
    stands 5 % nearer than the wall (a real step). A filter's threshold must fall between the two.
    Returns (depth (1, H, W), slope pixels, pixels whose 3x3 neighbourhood straddles the box outline).
    """
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    half = WIDTH // 2
    last = half - 1  # the steepest column of the slope (inverse depth falls to the right)
    s = 0.03 / (0.03 * last + 2.06)  # depth(last + 1) / depth(last - 1) = 1.03
    slope = 1.0 / (1.0 - s * cols)
    box = (cols >= half + 20) & (cols < WIDTH - 20) & (np.abs(rows - HEIGHT // 2) < 30)
    wall = np.where(box, 2.0 / 1.05, 2.0)
    depth = np.where(cols < half, slope, wall)
    padded = np.pad(box, 1, mode="edge")
    neighbours = [padded[dy : dy + HEIGHT, dx : dx + WIDTH] for dy in range(3) for dx in range(3)]
    outline = np.any(neighbours, axis=0) & ~np.all(neighbours, axis=0)
    inside_slope = cols < half - 1  # the column next to the wall sees the seam between the halves
    return depth[None], inside_slope[None], outline[None]


def test_edges_keep_a_steep_smooth_slope_and_drop_a_small_real_step():
    """Near the threshold from both sides: a 3 % change over three pixels stays, a 5 % step goes (a threshold of
    half or twice today's would fail one of them)."""
    depth, slope, outline = slope_beside_small_step()
    ratio = depth[0, 0, 2:][: WIDTH // 2 - 2] / depth[0, 0, : WIDTH // 2 - 2]  # three columns apart, on the slope
    assert 1.02 < ratio.max() <= 1.0301  # the scene is as described
    edges = depth_edges(depth)
    assert not edges[slope].any()  # the steep slope stays whole
    assert edges[outline].all()  # every pixel at the 5 % step goes
    assert not edges[~outline & (np.arange(WIDTH) > WIDTH // 2)].any()  # the wall and box faces (past the seam) stay


def test_edges_ignore_invalid_pixels():
    depth, _ = render_box_before_wall()
    valid = np.ones_like(depth, bool)
    valid[:, :, :40] = False  # padding: a border of zeros must not make the next column an edge
    depth = np.where(valid, depth, 0.0)
    edges = depth_edges(depth, valid)
    assert not edges[:, :, :40].any() and not edges[:, 30:90, 40:45].any()


def sweep(photo, views: int) -> list[Image.Image]:
    """Crops of a real photo taken by a camera panning left to right over 40 % of its width."""
    base = Image.open(photo).convert("RGB")
    width, height = base.size
    crop = int(0.6 * width)
    step = (width - crop) // (views - 1)
    return [base.crop((i * step, 0, i * step + crop, height)) for i in range(views)]


@pytest.mark.parametrize("photo", [ALOE / "aloeL.jpg", WHALE / "rubberwhale1.png"], ids=["aloe", "whale"])
@pytest.mark.parametrize("views", [5, 7])
def test_reference_is_the_middle_of_a_sweep(photo, views):
    frames = sweep(photo, views)
    assert most_central_view(frames) == views // 2
    shuffled = [frames[i] for i in (np.arange(views) * 3) % views]  # order does not matter, content does
    assert shuffled[most_central_view(shuffled)] is frames[views // 2]


def test_reference_of_a_pair_is_the_first_view():
    assert most_central_view(sweep(ALOE / "aloeL.jpg", 2)) == 0


def test_rerun_recording_reads_back(tmp_path):
    rerun = pytest.importorskip("rerun")
    from rerun.chunk import RrdReader

    from dvlt.export.rerun import write_rerun
    from dvlt.scene import SceneOptions

    rec = known_scene()
    path = write_rerun(rec, tmp_path / "scene.rrd", SceneOptions(conf_percentile=0, max_points=5_000))
    columns: dict[str, dict[str, object]] = {}
    for chunk in RrdReader(path).stream():
        batch = chunk.to_record_batch()
        columns.setdefault(chunk.entity_path, {}).update({name: batch.column(name) for name in batch.schema.names})
    cameras = sorted(e for e in columns if e.rstrip("/").count("/") == 2 and "camera_" in e)
    assert cameras == [f"/world/camera_{i:03d}" for i in range(rec.num_views)]
    for index, entity in enumerate(cameras):
        translation = np.asarray(columns[entity]["Transform3D:translation"].to_pylist()[0]).ravel()
        assert np.allclose(translation, rec.c2w[index, :, 3], atol=1e-5)
        pinhole = np.asarray(columns[entity]["Pinhole:image_from_camera"].to_pylist()[0]).reshape(3, 3)
        # rerun stores the matrix column-major
        assert np.allclose(pinhole.T, rec.intrinsics[index], atol=1e-3)
        for child in ("image", "depth", "confidence"):
            assert f"{entity}/{child}" in columns
    positions = np.asarray(columns["/world/points"]["Points3D:positions"].to_pylist()[0])
    assert positions.shape == (5_000, 3)
    assert rerun.__version__


def read_ply_header(path) -> tuple[list[str], int]:
    """(property names, vertex count) of a binary PLY, read by hand."""
    with open(path, "rb") as handle:
        lines = []
        while not lines or lines[-1] != "end_header":
            lines.append(handle.readline().decode("ascii").strip())
    count = next(int(line.split()[-1]) for line in lines if line.startswith("element vertex"))
    return [line.split()[-1] for line in lines if line.startswith("property")], count


def test_app_viewer_controls_over_http(app_url, tmp_path):
    """Automatic reference, splats that follow the display filters, marker size, flying pixels, Rerun download."""
    from gradio_client import Client, handle_file

    paths = []
    for index, frame in enumerate(sweep(ALOE / "aloeL.jpg", 3)):
        paths.append(tmp_path / f"pan{index}.png")
        frame.resize((frame.width // 4, frame.height // 4)).save(paths[-1])
    client = Client(app_url, verbose=False)
    display = {"conf": 0, "show_cameras": True, "max_points": 2_000_000, "mask_black": False, "mask_white": False}
    result = client.predict(
        files=[handle_file(str(p)) for p in paths], mode="frames per second", fps=2, count=8, reference=0, steps=8,
        resolution=252, auto_reference=True, drop_edges=False, frustum_scale=0.1, api_name="/reconstruct", **display,
    )  # fmt: skip
    glb, summary, splats = result[0], result[4], result[8]  # (the session state is not sent over the API)
    assert "**view 1**, picked automatically" in summary  # the middle of the pan
    names, count = read_ply_header(splats)
    assert names[:6] == ["x", "y", "z", "nx", "ny", "nz"] and "rot_3" in names and "f_dc_0" in names
    points = trimesh.load(glb, force="scene")
    assert count == len(points.geometry["points"].vertices)  # the splats show exactly the selected points

    views = ["view 0", "view 1", "view 2"]
    kept = client.predict(**display, views=views, drop_edges=False, frustum_scale=0.0, api_name="/rerender")
    dropped = client.predict(**display, views=views, drop_edges=True, frustum_scale=0.1, api_name="/rerender")
    kept_scene, dropped_scene = trimesh.load(kept[0], force="scene"), trimesh.load(dropped[0], force="scene")
    markers = [name for name in kept_scene.graph.nodes_geometry if name.startswith("camera_")]
    assert markers == []  # marker size 0 hides them
    assert len([n for n in dropped_scene.graph.nodes_geometry if n.startswith("camera_")]) == 3
    assert len(dropped_scene.geometry["points"].vertices) < len(kept_scene.geometry["points"].vertices)
    assert read_ply_header(dropped[3])[1] == len(dropped_scene.geometry["points"].vertices)

    pytest.importorskip("rerun")
    from rerun.chunk import RrdReader

    recording = client.predict(label="Rerun recording (.rrd)", **display, views=views, api_name="/download")
    entities = {chunk.entity_path for chunk in RrdReader(recording).stream()}
    assert {f"/world/camera_{i:03d}" for i in range(3)} <= entities and "/world/points" in entities


def test_cli_reference_auto(checkpoint_dir, tmp_path):
    """`--reference auto` makes the middle of a pan the world frame, and says so."""
    import subprocess
    import sys

    from conftest import ROOT

    from dvlt.records import Reconstruction

    scene = tmp_path / "pan"
    scene.mkdir()
    for index, frame in enumerate(sweep(ALOE / "aloeL.jpg", 3)):
        frame.resize((frame.width // 4, frame.height // 4)).save(scene / f"pan{index}.png")
    command = [sys.executable, "-m", "dvlt", "reconstruct", str(scene), "--out", str(tmp_path / "out")]
    command += ["--checkpoint", str(checkpoint_dir), "--img-size", "252", "--steps", "8", "--formats", "npz"]
    result = subprocess.run([*command, "--reference", "auto"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "reference view 1 (pan1.png), chosen automatically" in result.stderr
    rec = Reconstruction.from_npz(tmp_path / "out" / "pan" / "predictions.npz")
    assert rec.names[0] == "pan1.png" and sorted(rec.names) == ["pan0.png", "pan1.png", "pan2.png"]

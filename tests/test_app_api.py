"""The running app over real HTTP with gradio_client: results, bad inputs, and session isolation."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
import urllib.request
import zipfile

import numpy as np
import pytest
import trimesh
from app_server import free_port
from conftest import ALOE, BOX, ROOT, WHALE, write_frameless_video
from gradio_client import Client, handle_file
from PIL import Image

FAST = {"resolution": 252, "steps": 8}


def reconstruct(client: Client, files, **options):
    arguments = {
        "mode": "frames per second",
        "fps": 2,
        "count": 8,
        "reference": 0,
        "steps": 12,
        "resolution": 504,
        "conf": 20,
        "show_cameras": True,
        "max_points": 300_000,
        "mask_black": False,
        "mask_white": False,
        "drop_edges": False,
        "auto_reference": False,  # synthetic weights give noisy depth: nearly every pixel sits on a depth edge
    }
    arguments.update(options)
    return client.predict(files=[handle_file(str(f)) for f in files], api_name="/reconstruct", **arguments)


def load_scene(path) -> tuple[trimesh.PointCloud, list[str]]:
    scene = trimesh.load(path, force="scene")
    markers = sorted(name for name in scene.graph.nodes_geometry if name.startswith("camera_"))
    return scene.geometry["points"], markers


def assert_sane_scene(path, views: int) -> trimesh.PointCloud:
    points, markers = load_scene(path)
    assert markers == [f"camera_{i:03d}" for i in range(views)]
    assert isinstance(points, trimesh.PointCloud) and len(points.vertices) > 1000
    colors = np.asarray(points.colors)
    assert colors.shape == (len(points.vertices), 4) and colors[:, :3].std() > 5  # real, varied colours
    assert np.isfinite(points.vertices).all()
    extent = points.vertices.max(axis=0) - points.vertices.min(axis=0)
    assert (extent > 1e-3).all() and (extent < 1e4).all()
    assert np.abs(np.median(points.vertices, axis=0)).max() < 1e-3 * extent.max() + 1e-6  # re-centred on the median
    return points


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def test_reconstruct_aloe_pair(client):
    glb, info, gallery, legend, summary, downloads, views, *_ = reconstruct(
        client, [ALOE / "aloeL.jpg", ALOE / "aloeR.jpg"]
    )
    points = assert_sane_scene(glb, views=2)
    assert f"{len(points.vertices):,} points" in info and "2 cameras" in info
    assert len(gallery) == 2 and all(Image.open(item["image"]).size[1] > 3 * 100 for item in gallery)  # stacked
    assert Image.open(legend).size[0] > 300
    assert "K=12" in summary and "504" in summary
    assert sorted(p.rsplit(".", 1)[1] for p in downloads) == ["glb", "npz"]
    with np.load(next(p for p in downloads if p.endswith(".npz"))) as npz:
        assert npz["depth"].shape[0] == 2 and npz["extrinsics_c2w"].shape == (2, 3, 4)


def test_reconstruct_box_clip(client):
    glb, _, gallery, *_ = reconstruct(client, [BOX], mode="number of frames", count=3, **FAST)
    assert_sane_scene(glb, views=3)
    assert [item["caption"].split(" · ")[1] for item in gallery] == ["box_0000.jpg", "box_0001.jpg", "box_0002.jpg"]


def test_rerender_and_downloads_use_the_cached_result(client):
    reconstruct(client, [WHALE / "rubberwhale1.png", WHALE / "rubberwhale2.png"], **FAST)
    loose, *_ = client.predict(
        conf=0,
        show_cameras=True,
        views=["view 0", "view 1"],
        max_points=2_000_000,
        mask_black=False,
        mask_white=False,
        drop_edges=False,
        api_name="/rerender",
    )
    strict, info, files, *_ = client.predict(
        conf=90,
        show_cameras=False,
        views=["view 1"],
        max_points=2_000_000,
        mask_black=False,
        mask_white=False,
        drop_edges=False,
        api_name="/rerender",
    )
    loose_points, loose_markers = load_scene(loose)
    strict_points, strict_markers = load_scene(strict)
    assert len(loose_markers) == 2 and strict_markers == []
    assert (
        load_scene(next(f for f in files if f.endswith(".glb")))[0].vertices.shape == strict_points.vertices.shape
    )  # downloads follow
    assert 0.05 * len(loose_points.vertices) / 2 < len(strict_points.vertices) < 0.15 * len(loose_points.vertices) / 2
    archive = client.predict(
        label="COLMAP (3DGS, gsplat, nerfstudio-colmap)",
        conf=20,
        show_cameras=True,
        views=["view 0", "view 1"],
        max_points=50_000,
        mask_black=False,
        mask_white=False,
        drop_edges=False,
        api_name="/download",
    )
    bundle = zipfile.ZipFile(archive)
    names = bundle.namelist()
    assert any(n.endswith("sparse/0/points3D.bin") for n in names) and any(n.endswith("images.txt") for n in names)
    with bundle.open(next(n for n in names if n.endswith("images/rubberwhale1.png"))) as photo:
        assert (
            Image.open(photo).size == Image.open(WHALE / "rubberwhale1.png").size
        )  # full-resolution photos, not crops


def test_rerender_and_download_default_to_every_view_and_the_settings_on_show(client, tmp_path):
    """Left out, /rerender's and /download's settings are the ones on show and the views are all of them (the
    old defaults, views=[], gave an empty scene without a word)."""
    whale = [WHALE / "rubberwhale1.png", WHALE / "rubberwhale2.png"]
    glb, *_ = reconstruct(client, whale, conf=0, show_cameras=False, max_points=2_000_000, **FAST)
    everything, markers = load_scene(glb)
    assert markers == [] and len(everything.vertices) > 10_000
    again, *_ = client.predict(api_name="/rerender")
    points, markers = load_scene(again)
    assert markers == [] and len(points.vertices) == len(everything.vertices)  # all views, conf 0, no cameras
    one_view, *_ = client.predict(views=["view 1"], conf=50, api_name="/rerender")
    assert 0.2 * len(everything.vertices) < len(load_scene(one_view)[0].vertices) < 0.3 * len(everything.vertices)
    back, *_ = client.predict(api_name="/rerender")  # views: all again; conf: 50, as now on show
    assert 0.4 * len(everything.vertices) < len(load_scene(back)[0].vertices) < 0.6 * len(everything.vertices)
    ply = client.predict(label="PLY point cloud", api_name="/download")
    assert len(trimesh.load(ply).vertices) == len(load_scene(back)[0].vertices)  # the download is the scene on show


def readme_api_block() -> str:
    """The Python block of the README's API section, exactly as written."""
    section = (ROOT / "README.md").read_text().split("### API", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_api_section_runs_as_written(app_url, monkeypatch):
    """Every endpoint the README documents runs with the call it shows (only the address is this test's)."""
    code = readme_api_block()
    assert code.count('"http://localhost:7860/"') == 1
    for endpoint in ("/reconstruct", "/rerender", "/download", "/compare_k"):
        assert f'api_name="{endpoint}"' in code
    monkeypatch.chdir(ROOT)  # its paths are relative to the repository, as for a reader in a checkout
    names: dict = {}
    exec(compile(code.replace('"http://localhost:7860/"', repr(app_url)), "README.md", "exec"), names)
    first, _ = load_scene(names["glb"])  # the last /rerender's scene: conf 50 instead of 20
    assert "2 cameras" in names["info"] and len(first.vertices) > 50  # synthetic weights: few pass drop_edges
    with zipfile.ZipFile(names["colmap_zip"]) as bundle:
        assert any(n.endswith("sparse/0/points3D.bin") for n in bundle.namelist())
    assert names["recording"].endswith(".rrd") and os.path.getsize(names["recording"]) > 10_000
    assert "K=8" in names["table"] and "K=12" in names["table"] and len(names["maps"]) == 2


def test_compare_k(client):
    table, maps = client.predict(
        files=[handle_file(str(ALOE / "aloeL.jpg")), handle_file(str(ALOE / "aloeR.jpg"))],
        mode="frames per second",
        fps=2,
        count=8,
        reference=0,
        steps_a=8,
        steps_b=16,
        resolution=252,
        api_name="/compare_k",
    )
    assert "K=8" in table and "K=16" in table and table.count("mean depth change") == 2
    assert len(maps) == 2


def error_of(call) -> str:
    with pytest.raises(Exception) as error:
        call()
    return str(error.value)


def test_bad_inputs_get_human_messages_and_server_keeps_serving(client, tmp_path):
    (tmp_path / "notes.jpg").write_text("not a photo")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((ALOE / "aloeL.jpg").read_bytes()[:30000])
    empty_video = write_frameless_video(tmp_path / "empty.mp4")
    huge = tmp_path / "huge.png"
    Image.new("L", (8000, 6400)).save(huge)
    cases = {
        "not an image": lambda: reconstruct(client, [tmp_path / "notes.jpg"], **FAST),
        "truncated or corrupt": lambda: reconstruct(client, [cut], **FAST),
        "no video frames": lambda: reconstruct(client, [empty_video], **FAST),
        "greater than maximum value 16": lambda: reconstruct(client, [BOX], mode="number of frames", count=40, **FAST),
        "the limit is 50 MP": lambda: reconstruct(client, [huge], **FAST),
        "Value 20 is greater than maximum value 16": lambda: reconstruct(
            client, [ALOE / "aloeL.jpg"], steps=20, resolution=252
        ),
        "not in the list of choices: [504, 378, 252]": lambda: reconstruct(
            client, [ALOE / "aloeL.jpg"], steps=8, resolution=300
        ),
        "Nothing uploaded": lambda: client.predict(
            files=[],
            mode="frames per second",
            fps=2,
            count=8,
            reference=0,
            steps=8,
            resolution=252,
            conf=20,
            show_cameras=True,
            max_points=100_000,
            mask_black=False,
            mask_white=False,
            api_name="/reconstruct",
        ),
        "one video at a time": lambda: reconstruct(client, [BOX, BOX], **FAST),
        "does not exist": lambda: reconstruct(client, [ALOE / "aloeL.jpg"], reference=5, **FAST),
    }
    for expected, call in cases.items():
        message = error_of(call)
        assert expected in message, (expected, message)
    glb, *_ = reconstruct(client, [ALOE / "aloeL.jpg"], **FAST)  # still serving
    assert_sane_scene(glb, views=1)


def test_sessions_are_isolated(app_url):
    """Two clients at once get their own scenes; one's re-render never touches the other's."""
    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    inputs = {
        first: [ALOE / "aloeL.jpg", ALOE / "aloeR.jpg"],
        second: [WHALE / "rubberwhale1.png", WHALE / "rubberwhale2.png"],
    }
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = {c: pool.submit(reconstruct, c, files, **FAST) for c, files in inputs.items()}
        results = {c: f.result() for c, f in futures.items()}
    for client, files in inputs.items():
        points = load_scene(results[client][0])[0]
        photo_mean = np.mean(
            [np.asarray(Image.open(f).convert("RGB"), dtype=float).reshape(-1, 3).mean(0) for f in files], axis=0
        )
        assert np.abs(np.asarray(points.colors)[:, :3].mean(0) - photo_mean).max() < 25  # its own photos' colours
    before = len(
        load_scene(
            second.predict(
                conf=20,
                show_cameras=True,
                views=["view 0", "view 1"],
                max_points=300_000,
                mask_black=False,
                mask_white=False,
                drop_edges=False,
                api_name="/rerender",
            )[0]
        )[0].vertices
    )
    first.predict(
        conf=95,
        show_cameras=False,
        views=["view 0"],
        max_points=10_000,
        mask_black=False,
        mask_white=False,
        drop_edges=False,
        api_name="/rerender",
    )
    after = second.predict(
        conf=20,
        show_cameras=True,
        views=["view 0", "view 1"],
        max_points=300_000,
        mask_black=False,
        mask_white=False,
        drop_edges=False,
        api_name="/rerender",
    )
    points, markers = load_scene(after[0])
    assert len(points.vertices) == before and len(markers) == 2
    fresh = Client(app_url, verbose=False)
    assert "Reconstruct something first" in error_of(
        lambda: fresh.predict(
            conf=20,
            show_cameras=True,
            views=[],
            max_points=100_000,
            mask_black=False,
            mask_white=False,
            drop_edges=False,
            api_name="/rerender",
        )
    )


def test_python_app_py_starts_and_explains_missing_weights(tmp_path):
    """`python app.py` with weights that cannot be found still serves, with a banner and a clear error."""
    port = free_port()
    env = {
        "DVLT_CHECKPOINT": str(tmp_path / "no-such-checkpoint"),
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "DVLT_OUTPUT_DIR": str(tmp_path / "out"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2).read().decode()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(1)
        else:
            pytest.fail("app did not start")
        assert "Model weights not loaded" in page and "no-such-checkpoint" in page
        message = error_of(
            lambda: reconstruct(Client(f"http://127.0.0.1:{port}/", verbose=False), [ALOE / "aloeL.jpg"], **FAST)
        )
        assert "weights are not loaded" in message
    finally:
        server.terminate()
        server.wait(timeout=30)

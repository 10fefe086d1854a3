"""Shared fixtures: paths, the synthetic-weights checkpoint written to disk, a loaded model."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = ROOT / "examples"
ALOE = EXAMPLES / "aloe"
WHALE = EXAMPLES / "rubberwhale"
BOX = EXAMPLES / "box.mp4"

sys.path.insert(0, str(GOLDEN))
from synthetic_weights import synthetic_state_dict  # noqa: E402

from dvlt.geometry import unproject_depth  # noqa: E402
from dvlt.pipeline import Reconstruction  # noqa: E402
from dvlt.preprocess import ViewTransform  # noqa: E402

torch.set_num_threads(max(1, torch.get_num_threads()))

# One fresh cache for the whole run (the converted OpenVINO models), shared with the app and CLI subprocesses
# through the environment: the first model converts, every later one only compiles, as after a restart.
if "DVLT_CACHE" not in os.environ:
    os.environ["DVLT_CACHE"] = tempfile.mkdtemp(prefix="dvlt-test-cache-")
    atexit.register(shutil.rmtree, os.environ["DVLT_CACHE"], True)


def write_frameless_video(path: Path) -> Path:
    """An .mp4 with a header and a video stream declared, but not one frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


@pytest.fixture(scope="session")
def synthetic_state() -> dict[str, torch.Tensor]:
    """The deterministic synthetic weights of the golden fixtures."""
    return synthetic_state_dict()


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory, synthetic_state) -> Path:
    """A directory holding the synthetic weights as `model.safetensors`, like a Hub snapshot."""
    directory = tmp_path_factory.mktemp("checkpoint")
    save_file(synthetic_state, str(directory / "model.safetensors"))
    return directory


@pytest.fixture(scope="session")
def model(checkpoint_dir):
    """A float32 DVLT loaded through the real `load_pretrained` path (used read-only)."""
    from dvlt import DVLT

    net = DVLT(precision="fp32")
    net.load_pretrained(str(checkpoint_dir), strict=True)
    return net.setup_test("cpu")


@pytest.fixture(scope="session")
def app_url(checkpoint_dir, tmp_path_factory):
    """The real Gradio app, served in-process with the synthetic checkpoint."""
    from app_server import launch_app

    app, url = launch_app(checkpoint_dir, tmp_path_factory.mktemp("app-outputs"))
    yield url
    app.demo.close()


def known_scene() -> Reconstruction:
    """Four ground-truth cameras (view 0 = identity) looking at a smooth, wavy wall 2-3 units away."""
    fixture = load_file(str(GOLDEN / "rays_to_pose.safetensors"))
    c2w, intrinsics = fixture["gt_extrinsics_c2w"].double(), fixture["gt_intrinsics"].double()
    views, height, width = 4, 126, 168
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    phase = torch.arange(views, dtype=torch.float64)[:, None, None]
    depth = 2.5 + 0.5 * torch.sin(cols / 40 + phase) * torch.cos(rows / 30 - phase)  # no depth edges anywhere
    images = np.random.default_rng(0).integers(0, 255, (views, height, width, 3), dtype=np.uint8)
    images[:, :10] = 0  # a black band, for background masking
    return Reconstruction(
        name="known",
        images=images,
        valid=np.ones((views, height, width), bool),
        depth=depth.float().numpy(),
        confidence=np.linspace(1, 5, views * height * width, dtype=np.float32).reshape(views, height, width),
        points=unproject_depth(depth, intrinsics, c2w, 0.5).float().numpy(),
        c2w=c2w.numpy(),
        intrinsics=intrinsics.numpy(),
        steps=12,
        names=[f"cam{i}.png" for i in range(views)],
        transforms=[ViewTransform((height, width), (height, width), (0, 0), (0, 0), (height, width))] * views,
    )

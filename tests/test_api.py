"""The public Python API: the README's snippets, predict's contract, K and precision handling."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from conftest import ALOE, BOX, GOLDEN, ROOT
from safetensors.torch import load_file

from dvlt import DVLT, InputError, StepsError, load_sequence, preprocess_images

README = (ROOT / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_model_card_quick_start_runs_unchanged(checkpoint_dir, tmp_path):
    pytest.importorskip("accelerate")
    snippet = next(block for block in python_blocks() if "from accelerate import Accelerator" in block)
    source = snippet.replace('checkpoint_path = "nvidia/dvlt"', f'checkpoint_path = "{checkpoint_dir}"')
    source = source.replace('input_path = "path/to/scene_dir"', f'input_path = "{ALOE}"')
    assert source != snippet
    scope: dict = {}
    exec(compile(source, "README quick start", "exec"), scope)  # the block exactly as documented, paths aside
    assert scope["extrinsics_c2w"].shape == (2, 3, 4) and scope["intrinsics"].shape == (2, 3, 3)
    height, width = scope["batch"]["images"].shape[-2:]
    assert max(height, width) == 504
    assert scope["depths"].shape == (2, height, width) and scope["world_points"].shape == (2, height, width, 3)
    assert torch.isfinite(scope["world_points"]).all()


def test_high_level_snippet_writes_exports(checkpoint_dir, tmp_path, monkeypatch):
    snippet = next(block for block in python_blocks() if "export_all" in block)
    monkeypatch.chdir(tmp_path)
    source = snippet.replace('"nvidia/dvlt"', f'"{checkpoint_dir}"').replace('"examples/box.mp4"', f'"{BOX}"')
    source = source.replace("max_frames=8", "max_frames=2").replace("steps=12", "steps=8")
    exec(compile(source, "README pipeline", "exec"), {})
    assert (tmp_path / "out" / "box" / "scene.glb").is_file()
    assert (tmp_path / "out" / "box" / "colmap" / "sparse" / "0" / "points3D.bin").is_file()
    assert (tmp_path / "out" / "box" / "nerfstudio" / "transforms.json").is_file()


def test_readme_test_command_is_what_ci_runs():
    command = re.search(r"```bash\n(pip install .*\[test\].*)\n```", README).group(1)
    assert command in (ROOT / ".ci" / "run").read_text()


def test_predict_contract(model):
    _, frames = load_sequence(ALOE)
    batch = preprocess_images(frames, img_size=126)
    out = model.predict(batch, steps=8)
    views, (height, width) = 2, batch["images"].shape[-2:]
    assert out["steps"] == 8
    assert out["extrinsics_c2w"].shape == (1, views, 3, 4) and out["intrinsics"].shape == (1, views, 3, 3)
    assert out["depths"].shape == out["depths_conf"].shape == (1, views, height, width)
    assert out["rays"].shape == (1, views, height, width, 6) and out["pose_enc"].shape == (1, views, 9)
    assert (out["depths"] > 0).all() and (out["depths_conf"] >= 1).all()
    cameras = out["cameras"][0]
    assert len(cameras) == views and (cameras.height, cameras.width) == (height, width)
    assert torch.equal(cameras.get_intrinsics_matrices(), out["intrinsics"][0])
    w2c = cameras.world_to_cameras()
    R = cameras.camera_to_worlds[:, :, :3]
    assert torch.allclose(w2c[:, :, :3] @ R, torch.eye(3).expand(views, 3, 3), atol=1e-5)
    direct = out["rays"][..., 3:] + out["rays"][..., :3] * out["depths"][..., None]
    assert torch.allclose(direct, out["world_points_direct"], atol=1e-5)


@pytest.mark.parametrize("steps", [0, -3, 2.5, "12", True])
def test_bad_steps_are_refused(model, steps):
    images = torch.rand(1, 1, 3, 28, 28)
    with pytest.raises(StepsError):
        model.predict({"images": images}, steps=steps)


def test_steps_outside_the_validated_range_warn_but_run(model):
    images = torch.rand(1, 1, 3, 28, 28)
    with pytest.warns(UserWarning, match="outside the validated range 8-16"):
        assert model.predict({"images": images}, steps=1)["steps"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict({"images": images}, steps=12)


def test_bad_batches_are_refused(model):
    with pytest.raises(InputError, match="multiple of 14"):
        model.predict({"images": torch.rand(1, 1, 3, 30, 28)})
    with pytest.raises(InputError, match=r"\(B, S, 3, H, W\)"):
        model.predict(torch.rand(3, 28, 28))


def test_bf16_path_stays_within_one_percent_of_float32(checkpoint_dir):
    """The CPU bf16 path (issue #5): depth within 1 % relative error of float32 on the golden inputs."""
    bf16 = DVLT(precision="bf16")
    bf16.load_pretrained(checkpoint_dir)
    bf16.setup_test("cpu")
    for name, steps in (("single_view_k8", 8), ("stereo_k12", 12), ("mixed_aspect_k16", 16)):
        ref = load_file(str(GOLDEN / f"{name}.safetensors"))
        depth = bf16.predict({"images": ref["images"][None]}, steps=steps)["depths"][0]
        assert depth.dtype == torch.float32
        assert float((depth - ref["depth"]).norm() / ref["depth"].norm()) < 0.01


def test_whole_model_in_bf16_runs(checkpoint_dir):
    """Users who cast everything (model.to(torch.bfloat16)) still get float32 outputs of bf16 accuracy."""
    net = DVLT(precision="fp32")
    net.load_pretrained(checkpoint_dir)
    net.to(torch.bfloat16)
    ref = load_file(str(GOLDEN / "single_view_k8.safetensors"))
    depth = net.predict({"images": ref["images"][None]}, steps=8)["depths"][0]
    assert float((depth - ref["depth"]).norm() / ref["depth"].norm()) < 0.01


def test_setup_test_refuses_missing_cuda(model):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        DVLT().setup_test("cuda")

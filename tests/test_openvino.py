"""The OpenVINO CPU path against the reference outputs (tests/golden) and its conversion cache and fallbacks."""

from __future__ import annotations

import pytest
import torch
from conftest import GOLDEN
from safetensors import safe_open
from safetensors.torch import load_file

from dvlt import DVLT
from dvlt.model import openvino_backend, openvino_parts
from dvlt.model.openvino_backend import OpenVINOBackend, converted_folder, weights_digest

pytest.importorskip("openvino")

CASES = {"single_view_k8": 8, "stereo_k12": 12, "mixed_aspect_k16": 16}
# Upstream's own bf16 path (model card Quick Start, CPU) is this far from its float32 outputs on held-back
# cases (relative L2); a fast path may use that budget and no more. depth_conf and pose_enc: no upstream
# figure, so depth's and rays' bounds, the heads they come from.
BF16_BUDGET = {
    "depths": ("depth", 2.6e-3),
    "rays": ("rays", 1.4e-2),
    "world_points_direct": ("world_points_direct", 1.41e-2),
    "depths_conf": ("depth_conf", 2.6e-3),
    "pose_enc": ("pose_enc", 1.4e-2),
}


def relative_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours.float() - ref).norm() / ref.norm())


def golden(name: str) -> dict[str, torch.Tensor]:
    with safe_open(str(GOLDEN / f"{name}.safetensors"), "pt") as handle:
        assert int(handle.metadata()["K"]) == CASES[name]
    return load_file(str(GOLDEN / f"{name}.safetensors"))


def openvino_model(checkpoint_dir, precision: str) -> DVLT:
    net = DVLT(precision=precision, backend="openvino")
    net.load_pretrained(str(checkpoint_dir))
    net.setup_test("cpu")
    assert net.runtime_name() == "OpenVINO"
    return net


@pytest.fixture(scope="module")
def bf16_model(checkpoint_dir) -> DVLT:
    return openvino_model(checkpoint_dir, "bf16")


@pytest.mark.parametrize("name", CASES)
def test_float32_matches_the_reference(model, name):
    """The session's float32 model runs on OpenVINO where it is installed; every output within 1e-4."""
    assert model.runtime_name() == "OpenVINO"
    ref = golden(name)
    out = model.predict({"images": ref["images"][None]}, steps=CASES[name])
    for ours, (theirs, _) in BF16_BUDGET.items():
        assert relative_error(out[ours][0], ref[theirs]) <= 1e-4, ours


@pytest.mark.parametrize("name", CASES)
def test_bf16_stays_within_upstreams_own_bf16_error(bf16_model, name):
    ref = golden(name)
    out = bf16_model.predict({"images": ref["images"][None]}, steps=CASES[name])
    for ours, (theirs, bound) in BF16_BUDGET.items():
        error = relative_error(out[ours][0], ref[theirs])
        assert error <= bound, f"{ours}: {error:.2e} > {bound:.1e}"
    assert relative_error(out["depths"][0], ref["depth"]) > 1e-5  # bf16 really ran: not the float32 path


@pytest.mark.parametrize("name", CASES)
def test_the_loop_only_split_stays_within_1e3_of_float32(checkpoint_dir, monkeypatch, name):
    """DVLT_OPENVINO_BF16_PARTS=loop (encoder and heads in float32): depth, rays and points within 1e-3."""
    monkeypatch.setenv(openvino_backend.BF16_PARTS_VARIABLE, "loop")
    net = openvino_model(checkpoint_dir, "bf16")
    assert net.cpu_backend().bf16_parts == ("loop",)
    ref = golden(name)
    out = net.predict({"images": ref["images"][None]}, steps=CASES[name])
    for ours, theirs in (("depths", "depth"), ("rays", "rays"), ("world_points_direct", "world_points_direct")):
        assert 1e-7 < relative_error(out[ours][0], ref[theirs]) <= 1e-3, ours  # bf16 ran, and stayed close


def test_an_unknown_bf16_part_is_named(checkpoint_dir, monkeypatch):
    monkeypatch.setenv(openvino_backend.BF16_PARTS_VARIABLE, "loop,decoder")
    with pytest.raises(ValueError, match=r"unknown parts \['decoder'\]"):
        openvino_model(checkpoint_dir, "bf16")


def test_a_batch_equals_its_items_one_by_one(model):
    ref = golden("stereo_k12")
    images = torch.stack((ref["images"], ref["images"].flip(0)))
    both = model.predict({"images": images}, steps=8)
    for index in range(2):
        alone = model.predict({"images": images[index : index + 1]}, steps=8)
        assert relative_error(both["depths"][index], alone["depths"][0]) < 1e-6
        assert relative_error(both["rays"][index], alone["rays"][0]) < 1e-6


def test_a_restart_reuses_the_converted_model(checkpoint_dir, model, monkeypatch):
    """The converted parts are kept on disk per weights: a new model with the same weights only compiles."""
    folder = converted_folder(model)
    stamps = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    assert {"encoder.xml", "loop.xml", "rays.xml", "depth.xml"} <= set(stamps)

    def no_export(_model):
        raise AssertionError("converted again")

    monkeypatch.setattr(openvino_parts, "export_parts", no_export)
    again = openvino_model(checkpoint_dir, "fp32")
    ref = golden("single_view_k8")
    assert relative_error(again.predict({"images": ref["images"][None]}, steps=8)["depths"][0], ref["depth"]) <= 1e-4
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == stamps


def test_the_compiled_parts_read_the_models_own_weights(bf16_model):
    """No second float32 copy of the weights: nearly every weight byte the parts read is the torch model's own
    memory (the IR's copies stay on disk), so OpenVINO costs only its bf16 repacking on top of torch."""
    import numpy as np

    backend = bf16_model.cpu_backend()
    tensors = [t.detach().numpy() for t in (*bf16_model.parameters(), *bf16_model.buffers())]
    for array in backend.shared:
        assert any(np.shares_memory(array, tensor) for tensor in tensors)
    weight_bytes = sum(t.nbytes for t in tensors)
    assert sum(array.nbytes for array in backend.shared) > 0.9 * weight_bytes


def test_new_weights_mean_a_new_backend(checkpoint_dir, synthetic_state, monkeypatch):
    """Loading other weights into a model drops its compiled parts; their digest names another folder."""
    net = DVLT(precision="fp32", backend="openvino")
    net.load_state_dict(synthetic_state)
    before = weights_digest(net)
    built = []
    monkeypatch.setattr(OpenVINOBackend, "__init__", lambda self, *args, **kwargs: built.append(args[1]))
    monkeypatch.setattr(openvino_backend, "converted_folder", lambda model: weights_digest(model))
    net.cpu_backend()
    net.cpu_backend()
    assert built == [before]  # kept while the weights stay
    with torch.no_grad():
        net.camera_token[0, 1, 0, 0] += 1.0
    net.cpu_backend()
    assert len(built) == 2 and built[1] != before


def test_torch_when_openvino_is_missing_or_switched_off(checkpoint_dir, monkeypatch):
    net = DVLT(precision="fp32", backend="torch")
    net.load_pretrained(str(checkpoint_dir))
    assert net.cpu_backend() is None and net.runtime_name() == "PyTorch"
    monkeypatch.setattr(openvino_backend, "openvino_version", lambda: None)
    auto = DVLT(precision="fp32")
    auto.load_pretrained(str(checkpoint_dir))
    assert auto.runtime_name() == "PyTorch"
    ref = golden("single_view_k8")
    assert relative_error(auto.predict({"images": ref["images"][None]}, steps=8)["depths"][0], ref["depth"]) <= 1e-4
    with pytest.raises(RuntimeError, match="pip install openvino"):
        DVLT(backend="openvino").cpu_backend()
    monkeypatch.setenv("DVLT_BACKEND", "vulkan")
    with pytest.raises(ValueError, match="backend must be one of"):
        DVLT()


def test_a_model_that_does_not_convert_falls_back_to_torch(checkpoint_dir, monkeypatch):
    def broken(model):
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(openvino_backend, "converted_folder", broken)
    net = DVLT(precision="fp32")
    net.load_pretrained(str(checkpoint_dir))
    ref = golden("single_view_k8")
    with pytest.warns(RuntimeWarning, match="OpenVINO could not run the model .*unsupported operation.*PyTorch"):
        out = net.predict({"images": ref["images"][None]}, steps=8)
    assert relative_error(out["depths"][0], ref["depth"]) <= 1e-4
    assert net.runtime_name() == "PyTorch"  # decided once, not retried on every call


def test_a_failed_helper_process_leaves_its_part_to_the_first(synthetic_state, tmp_path, monkeypatch):
    """The depth head converts in a helper process; when that process fails, the first process converts it and
    the folder is complete and right all the same."""
    import subprocess
    import sys

    from dvlt.model import openvino_helper

    def failing_helper(model, part, folder):
        command = [sys.executable, "-c", "import sys; sys.exit('no memory left')"]
        return subprocess.Popen(command, stderr=subprocess.PIPE)

    monkeypatch.setattr(openvino_helper, "start_helper", failing_helper)
    monkeypatch.setenv("DVLT_CACHE", str(tmp_path))
    net = DVLT(precision="fp32", backend="openvino")
    net.load_state_dict(synthetic_state)
    net.setup_test("cpu")
    with pytest.warns(RuntimeWarning, match="depth part in a helper process failed \\(no memory left\\)"):
        folder = converted_folder(net)
    assert {"encoder.xml", "loop.xml", "rays.xml", "depth.xml", "shared.json"} <= {p.name for p in folder.iterdir()}
    assert not list(tmp_path.glob("**/*.helper.pt"))
    assert net.cpu_backend().folder == folder  # the model runs on the folder the first process completed
    ref = golden("stereo_k12")
    out = net.predict({"images": ref["images"][None]}, steps=12)
    assert relative_error(out["depths"][0], ref["depth"]) <= 1e-4


def test_the_helper_process_converts_the_depth_head_as_the_first_would(model, tmp_path):
    """The depth head converted in a helper process computes what the folder the model runs on computes."""
    import numpy as np
    import openvino as ov

    from dvlt.model import openvino_helper

    helper = openvino_helper.start_helper(model, "depth", tmp_path)
    assert openvino_helper.finish_helper(helper, "depth", tmp_path)
    assert not list(tmp_path.glob("*.helper.pt"))
    core = ov.Core()
    theirs = core.compile_model(core.read_model(tmp_path / "depth.xml"), "CPU")
    ours = core.compile_model(core.read_model(converted_folder(model) / "depth.xml"), "CPU")
    rng = np.random.default_rng(0)
    special = rng.standard_normal((1, model.config.special_tokens, 768), dtype=np.float32)
    patches = rng.standard_normal((1, 3, 4, 768), dtype=np.float32)
    uv = [g.numpy() for g in model.depth_decoder.uv_grids(42, 56, torch.zeros(1))]
    inputs = [special, patches, *uv]
    expected, got = ours.infer_new_request(inputs)[0], theirs.infer_new_request(inputs)[0]
    assert expected.shape == (1, 2, 42, 56)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

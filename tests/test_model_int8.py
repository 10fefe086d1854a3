"""The opt-in int8 loop (precision='int8'): stays close to float32 and leaves the checkpoint untouched."""

from __future__ import annotations

import torch
from conftest import GOLDEN
from safetensors.torch import load_file
from torch import nn

from dvlt import DVLT


def relative_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours.float() - ref).norm() / ref.norm())


def test_int8_loop_is_close_to_float32_and_keeps_the_checkpoint(synthetic_state):
    ref = load_file(str(GOLDEN / "stereo_k12.safetensors"))  # the reference implementation's float32 outputs
    model = DVLT(precision="int8")
    model.load_state_dict(synthetic_state, strict=True)
    model.setup_test("cpu")
    keys = {key: value.clone() for key, value in model.state_dict().items()}
    out = model.predict({"images": ref["images"][None]}, steps=12)

    pair = model.loop_block_pair()
    assert pair is not model.recurrent_blocks[0]
    assert not any(isinstance(module, nn.Linear) for name, module in pair.named_modules() if name.endswith("fc2"))
    assert model.compute_dtype() == torch.float32  # only the loop's products are int8
    assert model.state_dict().keys() == keys.keys()
    assert all(torch.equal(value, keys[key]) for key, value in model.state_dict().items())

    depth_error = relative_error(out["depths"][0], ref["depth"])
    assert 1e-6 < depth_error < 1e-2  # really quantised, and within 1 % of float32
    assert relative_error(out["rays"][0], ref["rays"]) < 5e-3

    model.load_state_dict({key: value * 1.01 for key, value in synthetic_state.items()})
    assert model.loop_block_pair() is not pair  # new weights: the int8 copy is rebuilt

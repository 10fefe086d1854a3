"""The exportable loop step used for ahead-of-time compilation (CPU-side checks of the GPU feature)."""

from __future__ import annotations

import torch
from conftest import GOLDEN
from safetensors.torch import load_file

from dvlt import DVLT
from dvlt.model.compiled import LoopStep, example_inputs, export_loop_step, use_compiled_loop_step
from dvlt.model.layers import RopeTable


def test_loop_step_equals_the_block_pair(model):
    x, frame_gates, global_gates, cos, sin = example_inputs(model, views=3, grid=(4, 5))
    pair = model.recurrent_blocks[0]
    with torch.inference_mode():
        eager = pair(x, 0.0, 0.1, RopeTable(cos, sin), views=3)
        step = LoopStep(pair)(x, frame_gates, global_gates, cos, sin)
    assert torch.allclose(eager, step, atol=1e-6)


def test_exported_step_has_dynamic_views_and_tokens_and_drives_predict(checkpoint_dir):
    model = DVLT(precision="fp32")
    model.load_pretrained(checkpoint_dir)
    exported = export_loop_step(model)
    state_before = set(model.state_dict())
    ref = load_file(str(GOLDEN / "mixed_aspect_k16.safetensors"))  # 3 views, 9x12 patches: not the traced shape
    eager = model.predict({"images": ref["images"][None]}, steps=16)
    use_compiled_loop_step(model, exported.module())
    assert set(model.state_dict()) == state_before  # the checkpoint layout is untouched
    compiled = model.predict({"images": ref["images"][None]}, steps=16)
    assert float((compiled["depths"] - eager["depths"]).norm() / eager["depths"].norm()) < 1e-5
    use_compiled_loop_step(model, None)
    assert model.compiled_loop_step is None

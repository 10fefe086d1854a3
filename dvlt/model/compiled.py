"""Ahead-of-time compiled loop step, for ZeroGPU where `torch.compile` at request time is not allowed.

The looped block pair runs K times per request, so it is the part worth
compiling. `LoopStep` exposes it with plain tensor inputs (gates and RoPE
tables instead of floats and dataclasses) so `torch.export` captures it with
dynamic view and token counts; AOTInductor then builds a package that is
loaded once and called by `DVLT.forward` instead of the eager block pair.

    exported = export_loop_step(model)                       # any device
    package = aot_compile(exported, "loop_step.pt2")         # minutes; do it at start-up
    use_compiled_loop_step(model, package)                   # forward() now calls it
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import Tensor, nn

from .layers import RopeTable, rope_positions, rope_table
from .loop import LoopedBlockPair
from .network import DVLT

MAX_VIEWS = 256


class LoopStep(nn.Module):
    """One frame + global step of a single batch item: (S, P, D) -> (S, P, D)."""

    def __init__(self, pair: LoopedBlockPair) -> None:
        super().__init__()
        self.pair = pair

    def forward(self, x: Tensor, frame_gates: Tensor, global_gates: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        return self.pair.apply_gated(x, frame_gates, global_gates, RopeTable(cos, sin), views=x.shape[0])


def example_inputs(
    model: DVLT, views: int = 2, grid: tuple[int, int] = (27, 36), dtype: torch.dtype = torch.float32
) -> tuple[Tensor, ...]:
    """Inputs of the right kinds for tracing: tokens, both gate sets, RoPE cos/sin."""
    cfg, device = model.config, model.device
    positions = rope_positions(*grid, cfg.special_tokens, device)
    rope = rope_table(positions, cfg.embed_dim // cfg.num_heads, cfg.rope_frequency, torch.float32)
    x = torch.randn(views, positions.shape[0], cfg.embed_dim, device=device, dtype=dtype)
    frame_gates, global_gates = (gates.to(dtype) for gates in model.recurrent_blocks[0].gates(0.0, 0.1))
    return x, frame_gates, global_gates, rope.cos, rope.sin


def export_loop_step(model: DVLT, dtype: torch.dtype = torch.float32) -> torch.export.ExportedProgram:
    """torch.export of the loop step (weights cast to `dtype`) with dynamic views (1..256) and tokens."""
    views = torch.export.Dim("views", min=1, max=MAX_VIEWS)
    tokens = torch.export.Dim("tokens", min=6, max=40_000)
    shapes = ({0: views, 1: tokens}, None, None, {0: tokens}, {0: tokens})
    step = LoopStep(copy.deepcopy(model.recurrent_blocks[0]).to(dtype)).eval()
    with torch.no_grad():
        return torch.export.export(step, example_inputs(model, dtype=dtype), dynamic_shapes=shapes)


def aot_compile(exported: torch.export.ExportedProgram, package_path: str | Path) -> Path:
    """Compile an exported loop step with AOTInductor into a .pt2 package."""
    from torch._inductor import aoti_compile_and_package

    return Path(aoti_compile_and_package(exported, package_path=str(package_path)))


def use_compiled_loop_step(
    model: DVLT, step: str | Path | nn.Module | None, dtype: torch.dtype = torch.float32
) -> None:
    """Make `model.forward` call a compiled step (a .pt2 package or a callable) that computes in `dtype`;
    None restores the eager block pair. Used for batch size 1 (the app, the CLI)."""
    if isinstance(step, (str, Path)):
        from torch._inductor import aoti_load_package

        step = aoti_load_package(str(step))
    object.__setattr__(model, "compiled_loop_step", step)  # not a submodule: keeps state_dict() unchanged
    model.compiled_loop_dtype = dtype

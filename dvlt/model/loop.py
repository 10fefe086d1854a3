"""The weight-tied block pair that DVLT loops K times, and its step schedule."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .config import DVLTConfig
from .layers import Block, RopeTable


def step_schedule(steps: int) -> list[tuple[float, float]]:
    """(t_now, t_next) for each of K steps on linspace(0, 1, K); the last step pairs with 1.0.

    K changes the whole grid, so K=8 is not the first 8 steps of K=16.
    """
    ts = torch.linspace(0.0, 1.0, steps).tolist()
    return [(ts[i], ts[i + 1] if i + 1 < steps else 1.0) for i in range(steps)]


class StepGate(nn.Module):
    """Per-channel gates from the step interval: proj([sin-emb(t_now), sin-emb(t_next)]) + 1.

    Returns (num_gates, dim): s_attn, s_mlp, s_out in that order.
    """

    def __init__(self, dim: int, embed_dim: int = 64, num_gates: int = 3) -> None:
        super().__init__()
        half = embed_dim // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half).float() / half))
        self.proj = nn.Sequential(nn.Linear(2 * embed_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, num_gates * dim))
        self.num_gates = num_gates

    def _sinusoid(self, t: Tensor) -> Tensor:
        angles = t[..., None] * self.freqs
        return torch.cat((angles.cos(), angles.sin()), dim=-1)

    def forward(self, t_now: float, t_next: float) -> Tensor:
        t = torch.tensor([t_now, t_next], dtype=torch.float32, device=self.freqs.device)
        embedding = torch.cat((self._sinusoid(t[0]), self._sinusoid(t[1])), dim=-1)
        return (self.proj(embedding.to(self.proj[0].weight.dtype)) + 1).reshape(self.num_gates, -1)


class GatedBlock(Block):
    """A Block whose residual branches and output are scaled by step gates.

    x = x + s_attn * ls1(attn(norm1 x)); x = x + s_mlp * ls2(mlp(norm2 x)); x = s_out * x
    """

    def __init__(self, config: DVLTConfig) -> None:
        super().__init__(config.embed_dim, config.num_heads, config.mlp_ratio, qk_norm=True, layer_scale=True)
        self.depth_scale = StepGate(config.embed_dim, config.time_embed_dim, config.num_gates)

    def forward(self, x: Tensor, gates: Tensor, rope: RopeTable | None = None) -> Tensor:  # type: ignore[override]
        s_attn, s_mlp, s_out = gates
        x = torch.addcmul(x, self.attn(self.norm1(x), rope), s_attn * self.ls1.gamma)
        # s_out * (x + s_mlp * gamma2 * mlp) with the output gate folded into the branch's scale
        return torch.addcmul(x * s_out, self.mlp(self.norm2(x)), s_out * s_mlp * self.ls2.gamma)


class LoopedBlockPair(nn.Module):
    """Frame attention over each view's P tokens (with RoPE), then global attention over all S*P."""

    def __init__(self, config: DVLTConfig) -> None:
        super().__init__()
        self.frame_attn = GatedBlock(config)
        self.global_attn = GatedBlock(config)

    def gates(self, t_now: float, t_next: float) -> tuple[Tensor, Tensor]:
        """Step gates (3, dim) of the frame block and of the global block for the interval (t_now, t_next)."""
        return self.frame_attn.depth_scale(t_now, t_next), self.global_attn.depth_scale(t_now, t_next)

    def apply_gated(self, x: Tensor, frame_gates: Tensor, global_gates: Tensor, rope: RopeTable, views: int) -> Tensor:
        """x: (B*S, P, dim) -> same shape, with precomputed gates; `views` is S."""
        batch_views, tokens, dim = x.shape
        x = self.frame_attn(x, frame_gates, rope)
        x = self.global_attn(x.reshape(batch_views // views, views * tokens, dim), global_gates)
        return x.reshape(batch_views, tokens, dim)

    def forward(self, x: Tensor, t_now: float, t_next: float, rope: RopeTable, views: int) -> Tensor:
        """One loop step at (t_now, t_next): x (B*S, P, dim) -> same shape; `views` is S."""
        return self.apply_gated(x, *self.gates(t_now, t_next), rope, views)

"""Transformer building blocks shared by the encoder, the looped block and the decoders."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerScale(nn.Module):
    """Learned per-channel scale of a residual branch (`gamma`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


@dataclass(frozen=True)
class RopeTable:
    """cos/sin of the 2-D rotary embedding for one token layout, shape (1, 1, N, head_dim)."""

    cos: Tensor
    sin: Tensor

    def rotate(self, x: Tensor) -> Tensor:
        """Rotate (B, heads, N, head_dim) features: first half by row, second half by column.

        Each half uses the rotate-half convention: (x1, x2) -> (-x2, x1).
        """
        *lead, dim = x.shape
        quarters = x.reshape(*lead, 2, 2, dim // 4)  # [axis][half][freq]
        rotated = torch.stack((-quarters[..., 1, :], quarters[..., 0, :]), dim=-2).reshape(x.shape)
        return x * self.cos + rotated * self.sin


def rope_positions(grid_h: int, grid_w: int, num_special: int, device: torch.device) -> Tensor:
    """Integer (row, col) of every token of one view: special tokens at (0, 0), patches at (r+1, c+1).

    Returns (num_special + grid_h * grid_w, 2) int64.
    """
    rows = torch.arange(grid_h, device=device).repeat_interleave(grid_w)
    cols = torch.arange(grid_w, device=device).repeat(grid_h)
    patches = torch.stack((rows, cols), dim=-1) + 1
    special = torch.zeros(num_special, 2, dtype=patches.dtype, device=device)
    return torch.cat((special, patches), dim=0)


def rope_table(positions: Tensor, head_dim: int, frequency: float, dtype: torch.dtype) -> RopeTable:
    """Precompute the rotary cos/sin for `positions` (N, 2); used by every RoPE attention of a pass."""
    axis_dim = head_dim // 2  # features rotated by one axis
    exponents = torch.arange(0, axis_dim, 2, device=positions.device).float() / axis_dim
    inv_freq = 1.0 / (frequency**exponents)  # (axis_dim/2,)
    angles = positions.float()[..., None] * inv_freq  # (N, 2, axis_dim/2)
    angles = torch.cat((angles, angles), dim=-1).to(dtype)  # (N, 2, axis_dim)
    angles = angles.reshape(positions.shape[0], head_dim)  # row part then column part
    return RopeTable(cos=angles.cos()[None, None], sin=angles.sin()[None, None])


class Attention(nn.Module):
    """Multi-head self-attention with optional per-head q/k LayerNorm and rotary embedding."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, rope: RopeTable | None = None) -> Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = rope.rotate(q), rope.rotate(k)
        if q.dtype != v.dtype:  # LayerNorm runs in float32 under autocast
            q, k = q.to(v.dtype), k.to(v.dtype)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Block(nn.Module):
    """Pre-norm transformer block: x + [ls1](attn(norm1 x)), then x + [ls2](mlp(norm2 x))."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qk_norm: bool = False,
        layer_scale: bool = False,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm)
        self.ls1 = LayerScale(dim) if layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x: Tensor, rope: RopeTable | None = None) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))

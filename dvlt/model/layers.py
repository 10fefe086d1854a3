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
    """cos and signed sin of the 2-D rotary embedding for one token layout, each (N, head_dim).

    Head features are [axis][half][freq] (row part, then column part); each axis uses the
    rotate-half convention (x1, x2) -> (-x2, x1). `sin` carries that sign (-sin on each axis'
    first half), so a rotation is x * cos + swap_halves(x) * sin: three passes, no stack.
    """

    cos: Tensor
    sin: Tensor

    def tables(self, ndim: int) -> tuple[Tensor, Tensor]:
        """cos, sin shaped to broadcast over (B, N, ..., head_dim) features with `ndim` dimensions."""
        shape = (self.cos.shape[0], *([1] * (ndim - 3)), self.cos.shape[-1])
        return self.cos.view(shape), self.sin.view(shape)

    def rotate(self, x: Tensor) -> Tensor:
        """Rotate token-major features (B, N, ..., head_dim)."""
        cos, sin = self.tables(x.ndim)
        return torch.addcmul(x * cos, swap_halves(x), sin)


def swap_halves(x: Tensor) -> Tensor:
    """[axis][half][freq] -> [axis][1 - half][freq] along the last dimension (one copy)."""
    return x.unflatten(-1, (2, 2, x.shape[-1] // 4)).flip(-2).flatten(-3)


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
    """Precompute the rotary cos / signed sin for `positions` (N, 2); used by every RoPE attention of a pass."""
    axis_dim = head_dim // 2  # features rotated by one axis
    exponents = torch.arange(0, axis_dim, 2, device=positions.device).float() / axis_dim
    inv_freq = 1.0 / (frequency**exponents)  # (axis_dim/2,)
    angles = positions.float()[..., None] * inv_freq  # (N, 2, axis_dim/2)
    angles = torch.cat((angles, angles), dim=-1)  # (N, 2, axis_dim): [axis][half][freq]
    sign = torch.ones(2, 2, axis_dim // 2, device=positions.device)
    sign[:, 0] = -1.0  # rotate-half: the first half receives -x2 * sin
    sin = (angles.sin() * sign.flatten(1)).reshape(positions.shape[0], head_dim)
    return RopeTable(cos=angles.cos().reshape(positions.shape[0], head_dim).to(dtype), sin=sin.to(dtype))


class Attention(nn.Module):
    """Multi-head self-attention with optional per-head q/k LayerNorm and rotary embedding.

    Works in the token-major layout the qkv projection produces, (B, N, 3, heads, head_dim):
    q, k and v reach `scaled_dot_product_attention` as strided views, q and k are normalised and
    rotated together, and the attention output is already token-major for `proj` (no copies).
    """

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def normalized_qk(self, qk: Tensor, rope: RopeTable | None) -> Tensor:
        """q/k LayerNorm (own affine each) then RoPE on (B, N, 2, heads, head_dim), in 4 passes.

        With n the affine-free norm, w/b the stacked affines and (cos, sin) the rotary tables:
        rope(n * w + b) = n * (w cos) + swap(n) * (swap(w) sin) + (b cos + swap(b) sin).
        """
        norm = F.layer_norm(qk, (self.head_dim,), eps=self.q_norm.eps)
        weight = torch.stack((self.q_norm.weight, self.k_norm.weight))[:, None].to(norm.dtype)  # (2, 1, D)
        bias = torch.stack((self.q_norm.bias, self.k_norm.bias))[:, None].to(norm.dtype)
        if rope is None:
            return torch.addcmul(bias, norm, weight)
        cos, sin = rope.tables(qk.ndim)  # (N, 1, 1, D)
        scale = weight * cos
        swapped_scale = swap_halves(weight) * sin
        shift = torch.addcmul(bias * cos, swap_halves(bias), sin)
        return torch.addcmul(torch.addcmul(shift, norm, scale), swap_halves(norm), swapped_scale)

    def forward(self, x: Tensor, rope: RopeTable | None = None) -> Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).view(batch, tokens, 3, self.num_heads, self.head_dim)
        v = qkv[:, :, 2]
        if isinstance(self.q_norm, nn.LayerNorm):
            q, k = self.normalized_qk(qkv[:, :, :2], rope).unbind(2)
        else:
            q, k = qkv[:, :, 0], qkv[:, :, 1]
            if rope is not None:
                q, k = rope.rotate(q), rope.rotate(k)
        if q.dtype != v.dtype:  # LayerNorm runs in float32 under autocast
            q, k = q.to(v.dtype), k.to(v.dtype)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
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
        x = residual(x, self.attn(self.norm1(x), rope), self.ls1)
        return residual(x, self.mlp(self.norm2(x)), self.ls2)


def residual(x: Tensor, branch: Tensor, scale: nn.Module) -> Tensor:
    """x + scale(branch) in one pass (LayerScale folded into addcmul)."""
    if isinstance(scale, LayerScale):
        return torch.addcmul(x, branch, scale.gamma)
    return x + branch

"""DINOv2 ViT-B/14 with 4 register tokens: the image encoder that produces z0."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import DVLTConfig
from .layers import Block


class PatchEmbed(nn.Module):
    """Non-overlapping patch x patch convolution: (B, 3, H, W) -> (B, N, dim)."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)


class DinoV2Encoder(nn.Module):
    """All 12 DINOv2 blocks, then a parameter-free LayerNorm; returns patch tokens only.

    The positional embedding is stored for a 37x37 grid and resized (bicubic,
    antialiased, exact target size) to the input's grid; register tokens carry
    no positional embedding and sit right after the class token.
    """

    def __init__(self, config: DVLTConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.grid = config.encoder_grid
        self.num_register_tokens = config.num_register_tokens
        self.patch_embed = PatchEmbed(config.patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid**2, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # training-only; kept for the checkpoint layout
        self.blocks = nn.ModuleList(
            Block(dim, config.num_heads, config.mlp_ratio, layer_scale=True, norm_eps=1e-6)
            for _ in range(config.encoder_depth)
        )
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self._pos_cache: dict[tuple, Tensor] = {}

    def positional_embedding(self, grid_h: int, grid_w: int) -> Tensor:
        """(1, 1 + grid_h * grid_w, dim) embedding for the class token and the patch grid."""
        if (grid_h, grid_w) == (self.grid, self.grid):
            return self.pos_embed
        key = (grid_h, grid_w, self.pos_embed.device, self.pos_embed.dtype, self.pos_embed._version)
        cached = self._pos_cache.get(key)
        if cached is not None and not torch.is_grad_enabled():
            return cached
        pos = self.pos_embed.float()
        patch_pos = pos[:, 1:].reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=(grid_h, grid_w), mode="bicubic", antialias=True)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
        table = torch.cat((pos[:, :1], patch_pos), dim=1).to(self.pos_embed.dtype)
        if not torch.is_grad_enabled():
            self._pos_cache = {key: table}
        return table

    def forward(self, images: Tensor, patch_pos: Tensor | None = None) -> Tensor:
        """images: (B, 3, H, W) ImageNet-normalised -> patch tokens (B, H/14 * W/14, dim).

        patch_pos: the patch grid's positional embedding (1, H/14, W/14, dim), by default
        `positional_embedding`'s; passed in where the resize cannot be traced (OpenVINO export).
        """
        if patch_pos is None:
            grid_h = images.shape[-2] // self.patch_embed.proj.stride[0]
            grid_w = images.shape[-1] // self.patch_embed.proj.stride[1]
            patch_pos = self.positional_embedding(grid_h, grid_w)[:, 1:].unflatten(1, (grid_h, grid_w))
        x = self.patch_embed(images)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + torch.cat((self.pos_embed[:, :1], patch_pos.flatten(1, 2)), dim=1)
        registers = self.register_tokens.expand(x.shape[0], -1, -1)
        x = torch.cat((x[:, :1], registers, x[:, 1:]), dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1 + self.num_register_tokens :]

"""Decoders: per-pixel rays, per-pixel depth + confidence, and the (unused) camera MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import DVLTConfig
from .layers import Block, RopeTable


def float32_region(device_type: str) -> torch.autocast:
    """Context that switches autocast off so output layers run in float32, as upstream."""
    return torch.autocast(device_type=device_type, enabled=False)


class TokenDecoder(nn.Module):
    """Shared front end of the dense heads: proj_in 768->384, 2 RoPE blocks, final LayerNorm."""

    def __init__(self, config: DVLTConfig) -> None:
        super().__init__()
        dim = config.decoder_dim
        self.num_special = config.special_tokens
        self.patch_size = config.patch_size
        self.proj_in = nn.Linear(config.embed_dim, dim)
        self.blocks = nn.ModuleList(
            Block(dim, config.decoder_heads, config.mlp_ratio, qk_norm=True) for _ in range(config.decoder_depth)
        )
        self.norm = nn.LayerNorm(dim)

    def decode_tokens(self, x: Tensor, rope: RopeTable) -> tuple[Tensor, Tensor]:
        """(V, P, 768) -> (all tokens before the final norm (V, P, 384), normed patch tokens (V, N, 384))."""
        x = self.proj_in(x)
        for block in self.blocks:
            x = block(x, rope)
        return x, self.norm(x)[:, self.num_special :]


class RayHead(TokenDecoder):
    """Per-patch Linear(384, 6*14*14) + pixel shuffle -> (V, 6, H, W): direction then origin."""

    def __init__(self, config: DVLTConfig) -> None:
        super().__init__(config)
        self.head = nn.Linear(config.decoder_dim, config.ray_channels * config.patch_size**2)

    def forward(self, x: Tensor, rope: RopeTable, height: int, width: int) -> tuple[Tensor, Tensor]:
        """Returns (rays (V, 6, H, W) in the head's dtype (float32 unless converted), camera tokens (V, 384))."""
        features, patches = self.decode_tokens(x, rope)
        grid_h, grid_w = height // self.patch_size, width // self.patch_size
        with float32_region(x.device.type):
            out = self.head(patches.to(self.head.weight.dtype))  # (V, N, 6*p*p)
            out = out.transpose(1, 2).reshape(x.shape[0], -1, grid_h, grid_w)
            rays = F.pixel_shuffle(out, self.patch_size)
        return rays, features[:, 0]


def uv_grid(height: int, width: int, aspect: float, like: Tensor) -> Tensor:
    """MoGe view-plane UV (2, height, width): u spans +-a/sqrt(1+a^2)*(w-1)/w, v +-1/sqrt(1+a^2)*(h-1)/h."""
    diag = (1 + aspect**2) ** 0.5
    span_u = aspect / diag * (width - 1) / width
    span_v = 1 / diag * (height - 1) / height
    u = torch.linspace(-span_u, span_u, width, dtype=like.dtype, device=like.device)
    v = torch.linspace(-span_v, span_v, height, dtype=like.dtype, device=like.device)
    return torch.stack((u.expand(height, width), v[:, None].expand(height, width)))


def append_uv(x: Tensor, uv: Tensor) -> Tensor:
    """Append the 2 UV channels (2, h, w) to a (V, C, h, w) feature map."""
    return torch.cat((x, uv.to(x.dtype).expand(x.shape[0], -1, -1, -1)), dim=1)


class ResidualConvBlock(nn.Module):
    """x + [GroupNorm(1) -> ReLU -> Conv3x3 c->2c -> GroupNorm(2c/32) -> ReLU -> Conv3x3 2c->c]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = 2 * channels
        self.layers = nn.Sequential(
            nn.GroupNorm(1, channels),
            nn.ReLU(),
            nn.Conv2d(channels, hidden, 3, padding=1, padding_mode="replicate"),
            nn.GroupNorm(max(1, hidden // 32), hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 3, padding=1, padding_mode="replicate"),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


def upsample_stage(in_channels: int, out_channels: int, res_blocks: int) -> nn.ModuleList:
    """[ConvTranspose2d(k2, s2) -> Conv3x3 (replicate)] followed by residual conv blocks."""
    upsampler = nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, padding_mode="replicate"),
    )
    return nn.ModuleList([upsampler, *(ResidualConvBlock(out_channels) for _ in range(res_blocks))])


class ConvDepthHead(TokenDecoder):
    """Token map (384, H/14, W/14) upsampled x8 by conv stages, resized to (H, W), -> 2 channels."""

    def __init__(self, config: DVLTConfig) -> None:
        super().__init__(config)
        channels = config.depth_upsample_channels
        inputs = (config.decoder_dim, *channels[:-1])
        self.upsample_blocks = nn.ModuleList(
            upsample_stage(c_in + 2, c_out, config.depth_res_blocks) for c_in, c_out in zip(inputs, channels)
        )
        self.output_block = nn.Sequential(
            nn.Conv2d(channels[-1] + 2, config.depth_last_channels, 3, padding=1, padding_mode="replicate"),
            nn.ReLU(),
            nn.Conv2d(config.depth_last_channels, config.depth_channels, 1),
        )

    def forward(self, x: Tensor, rope: RopeTable, height: int, width: int) -> Tensor:
        """(V, P, 768) -> raw (V, 2, H, W) float32: log-depth and log-confidence."""
        _, patches = self.decode_tokens(x, rope)
        grid_h, grid_w = height // self.patch_size, width // self.patch_size
        feat = patches.transpose(1, 2).reshape(x.shape[0], -1, grid_h, grid_w)
        return self.upsample(feat, self.uv_grids(height, width, feat))

    def uv_grids(self, height: int, width: int, like: Tensor) -> list[Tensor]:
        """The UV channels each stage appends, (2, h, w) at x1, x2, x4 the token grid, then at (H, W)."""
        aspect = width / height  # of the full image, not of the feature map
        grid_h, grid_w = height // self.patch_size, width // self.patch_size
        sizes = [(grid_h << stage, grid_w << stage) for stage in range(len(self.upsample_blocks))]
        return [uv_grid(h, w, aspect, like) for h, w in (*sizes, (height, width))]

    def upsample(self, feat: Tensor, uv_grids: list[Tensor]) -> Tensor:
        """Token map (V, 384, H/14, W/14) -> raw (V, 2, H, W); the output size is the last UV grid's."""
        for stage, uv in zip(self.upsample_blocks, uv_grids):
            feat = append_uv(feat, uv)
            for layer in stage:
                feat = layer(feat)
        feat = F.interpolate(feat, size=uv_grids[-1].shape[-2:], mode="bilinear", align_corners=False)
        feat = append_uv(feat, uv_grids[-1])
        with float32_region(feat.device.type):
            return self.output_block(feat.to(self.output_block[0].weight.dtype))


class CameraHead(nn.Module):
    """LayerNorm -> Linear -> ReLU -> Linear -> ReLU -> Linear(9) on the ray decoder's camera token.

    Upstream keeps it for the checkpoint but fits cameras from rays instead; so do we.
    """

    def __init__(self, config: DVLTConfig) -> None:
        super().__init__()
        dim = config.decoder_dim
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())
        self.fc_pose = nn.Linear(dim, config.pose_dim)

    def forward(self, camera_tokens: Tensor) -> Tensor:
        """(V, 384) -> (V, 9); the last two outputs are non-negative."""
        hidden = self.mlp(camera_tokens)
        with float32_region(camera_tokens.device.type):
            pose = self.fc_pose(hidden.to(self.fc_pose.weight.dtype))
            return torch.cat((pose[:, :7], F.relu(pose[:, 7:])), dim=1)

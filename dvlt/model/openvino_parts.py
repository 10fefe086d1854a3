"""The network as three exportable parts with tensor-only inputs, for a CPU inference runtime (OpenVINO).

    EncoderPart  images (S, 3, H, W) in [0, 1], patch positions (1, H/14, W/14, 768) -> z0 (S, N, 768)
    LoopStep     tokens (S, P, 768), gates, RoPE cos/sin                          -> tokens (S, P, 768)
    RaysPart     special tokens (V, 5, 768), patch tokens (V, H/14, W/14, 768)
                 -> rays (V, 6, H, W), camera tokens (V, 384)
    DepthPart    the same tokens and the UV grids -> raw log-depth and log-confidence (V, 2, H, W)

Views, token counts and the patch grid are dynamic. What `torch.export` cannot trace
symbolically (the antialiased resize of the positional embedding, the UV grids' float aspect
ratio) is computed by the caller and passed in; everything else is the network's own modules.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .compiled import MAX_VIEWS, export_loop_step
from .layers import RopeTable, rope_positions, rope_table
from .network import DVLT
from .openvino_backend import PARTS

MAX_GRID = 128  # patches per side: 1792 px


class EncoderPart(nn.Module):
    """Normalise, run DINOv2 with a given patch positional embedding, return patch tokens."""

    def __init__(self, model: DVLT) -> None:
        super().__init__()
        self.encoder = model.patch_embed_encoder
        self.register_buffer("mean", model.image_mean.clone())
        self.register_buffer("std", model.image_std.clone())

    def forward(self, images: Tensor, patch_pos: Tensor) -> Tensor:
        return self.encoder((images - self.mean) / self.std, patch_pos)


class TokenGrid(nn.Module):
    """Tokens from special tokens and a patch grid, with the grid's RoPE tables (what both heads start from)."""

    def __init__(self, model: DVLT) -> None:
        super().__init__()
        self.config = model.config

    def forward(self, special: Tensor, patches: Tensor) -> tuple[Tensor, RopeTable]:
        cfg = self.config
        positions = rope_positions(patches.shape[1], patches.shape[2], cfg.special_tokens, patches.device)
        rope = rope_table(positions, cfg.embed_dim // cfg.num_heads, cfg.rope_frequency, torch.float32)
        return torch.cat((special, patches.flatten(1, 2)), dim=1), rope


class RaysPart(nn.Module):
    """The ray head on a few views: rays (V, 6, H, W) and the camera tokens (V, 384)."""

    def __init__(self, model: DVLT) -> None:
        super().__init__()
        self.tokens = TokenGrid(model)
        self.ray_decoder = model.ray_decoder
        self.patch_size = model.config.patch_size

    def forward(self, special: Tensor, patches: Tensor) -> tuple[Tensor, Tensor]:
        x, rope = self.tokens(special, patches)
        return self.ray_decoder(x, rope, patches.shape[1] * self.patch_size, patches.shape[2] * self.patch_size)


class EdgePaddedConv(nn.Module):
    """A replicate-padded conv as edge-row and edge-column copies, then the unpadded conv with the same weights.

    Traced as two concatenations, which OpenVINO runs as plain copies; `aten.pad(mode="replicate")` became
    gathers and transposes there, 58 % of the depth head's time (profiled: 0.56 of 0.96 s for 2 views, 378x504).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.padding != (1, 1):
            raise ValueError(f"only 1-pixel replicate padding is rewritten, got {conv.padding}")
        self.conv = conv

    @property
    def weight(self) -> Tensor:
        """The wrapped conv's weight (the heads read its dtype)."""
        return self.conv.weight

    def forward(self, x: Tensor) -> Tensor:
        x = torch.cat((x[:, :, :1], x, x[:, :, -1:]), dim=2)
        x = torch.cat((x[..., :1], x, x[..., -1:]), dim=3)
        conv = self.conv
        return F.conv2d(x, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)


def with_edge_padded_convs(module: nn.Module) -> nn.Module:
    """A copy of `module` sharing its parameters, each replicate-padded Conv2d wrapped in `EdgePaddedConv`."""
    shared = {id(tensor): tensor for tensor in (*module.parameters(), *module.buffers())}
    copied = copy.deepcopy(module, memo=shared)
    for child in list(copied.modules()):
        for child_name, conv in list(child.named_children()):
            if isinstance(conv, nn.Conv2d) and conv.padding_mode == "replicate":
                setattr(child, child_name, EdgePaddedConv(conv))
    return copied


class DepthPart(nn.Module):
    """The conv depth head on a few views: raw log-depth and log-confidence (V, 2, H, W)."""

    def __init__(self, model: DVLT) -> None:
        super().__init__()
        self.tokens = TokenGrid(model)
        self.depth_decoder = with_edge_padded_convs(model.depth_decoder)

    def forward(self, special: Tensor, patches: Tensor, uv_grids: tuple[Tensor, ...]) -> Tensor:
        x, rope = self.tokens(special, patches)
        _, depth_tokens = self.depth_decoder.decode_tokens(x, rope)
        feat = depth_tokens.transpose(1, 2).reshape(patches.shape[0], -1, patches.shape[1], patches.shape[2])
        return self.depth_decoder.upsample(feat, list(uv_grids))


def export_parts(net: DVLT, parts: tuple[str, ...] = PARTS) -> dict[str, torch.export.ExportedProgram]:
    """torch.export of `parts` of a float32 `net` (DVLT.cpu_backend never offers another), with dynamic views,
    tokens and grid; the loop step is `export_loop_step`'s, the one the GPU's AOT compilation uses."""
    cfg, grid = net.config, (4, 5)
    views_dim = torch.export.Dim("views", min=1, max=MAX_VIEWS)
    grid_h, grid_w = torch.export.Dim("grid_h", min=2, max=MAX_GRID), torch.export.Dim("grid_w", min=2, max=MAX_GRID)
    patch = cfg.patch_size
    special, patches = torch.zeros(2, cfg.special_tokens, cfg.embed_dim), torch.zeros(2, *grid, cfg.embed_dim)
    token_dims = ({0: views_dim}, {0: views_dim, 1: grid_h, 2: grid_w})

    def encoder() -> torch.export.ExportedProgram:
        images, patch_pos = torch.rand(2, 3, grid[0] * patch, grid[1] * patch), torch.zeros(1, *grid, cfg.embed_dim)
        dims = ({0: views_dim, 2: grid_h * patch, 3: grid_w * patch}, {1: grid_h, 2: grid_w})
        return torch.export.export(EncoderPart(net), (images, patch_pos), dynamic_shapes=dims)

    def depth() -> torch.export.ExportedProgram:
        uv_grids = net.depth_decoder.uv_grids(grid[0] * patch, grid[1] * patch, patches)
        uv_dims = [{1: grid_h * (1 << stage), 2: grid_w * (1 << stage)} for stage in range(len(uv_grids) - 1)]
        uv_dims.append({1: grid_h * patch, 2: grid_w * patch})
        inputs = (special, patches, tuple(uv_grids))
        return torch.export.export(DepthPart(net), inputs, dynamic_shapes=(*token_dims, tuple(uv_dims)))

    exporters = {
        "encoder": encoder,
        "loop": lambda: export_loop_step(net),
        "rays": lambda: torch.export.export(RaysPart(net), (special, patches), dynamic_shapes=token_dims),
        "depth": depth,
    }
    with torch.no_grad():
        return {part: exporters[part]() for part in parts}


def write_parts(net: DVLT, parts: tuple[str, ...], folder: Path) -> None:
    """Export `parts` of `net` and save each as OpenVINO IR, `folder/<part>.xml`, float32 weights as they are."""
    import openvino as ov

    # traced as plain float32 autograd-free graphs, whatever mode the caller is in
    with torch.inference_mode(False), torch.no_grad(), torch.autocast("cpu", enabled=False):
        with warnings.catch_warnings():  # torch.export's own deprecation notices, not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            for part, exported in export_parts(net, parts).items():
                ov.save_model(ov.convert_model(exported), folder / f"{part}.xml", compress_to_fp16=False)

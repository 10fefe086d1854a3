"""Hyper-parameters of the released DVLT checkpoint (`nvidia/dvlt`, stage-2 "depth-conv")."""

from __future__ import annotations

from dataclasses import dataclass

# K: the model was trained with 8..16 loop steps; any K >= 1 runs.
PARAMETER_COUNT = 117_081_667  # of the released checkpoint (tests/test_model_parity.py counts the network's)
VALIDATED_STEPS = (8, 16)
DEFAULT_STEPS = 12


@dataclass(frozen=True)
class DVLTConfig:
    """Sizes that fix the state-dict layout, plus inference defaults."""

    img_size: int = 504  # longest side fed to the network
    patch_size: int = 14
    embed_dim: int = 768
    num_heads: int = 12  # head_dim 64 everywhere
    mlp_ratio: float = 4.0
    encoder_depth: int = 12
    encoder_grid: int = 37  # DINOv2 positional grid (built for 518 px)
    num_register_tokens: int = 4
    rope_frequency: float = 100.0
    time_embed_dim: int = 64  # per-endpoint sinusoid width of the step gate
    num_gates: int = 3  # s_attn, s_mlp, s_out
    decoder_dim: int = 384
    decoder_depth: int = 2
    decoder_heads: int = 6
    ray_channels: int = 6  # direction xyz, origin xyz
    depth_channels: int = 2  # log-depth, log-confidence
    depth_upsample_channels: tuple[int, ...] = (256, 128, 64)
    depth_res_blocks: int = 2
    depth_last_channels: int = 32
    pose_dim: int = 9
    inference_steps: int = DEFAULT_STEPS
    decode_chunk_views: int = 2  # views per decoder pass on CPU (8x on CUDA): bounds head memory

    @property
    def special_tokens(self) -> int:
        """Camera token + register tokens placed before the patch tokens of each view."""
        return 1 + self.num_register_tokens

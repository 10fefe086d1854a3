"""Predicting run time and memory before running, from an analytic FLOP count.

Seconds = FLOPs / throughput. Throughputs start from the benchmark table in
docs/performance.md and are refined by every real run in this process
(`Estimator.observe`), so the app's estimate converges to the machine it runs on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .model.config import DVLTConfig

CFG = DVLTConfig()

# Effective FLOP/s of a whole request measured by bench/benchmark.py (docs/performance.md).
PRIOR_THROUGHPUT = {
    ("cpu", "fp32"): 0.26e12,  # 2-core Xeon (Sapphire Rapids), torch 2.13 CPU
    ("cpu", "bf16"): 0.57e12,  # same machine, AMX bf16
    ("cuda", "bf16"): 150e12,  # H100-class GPU, flash SDPA (spec-sheet based, not measured here)
    ("cuda", "fp32"): 30e12,
}
FIXED_SECONDS = {"cpu": 0.3, "cuda": 1.0}  # decode, camera fit, scene building


def _block_flops(tokens: int, sequence: int, dim: int, mlp_ratio: float = 4.0) -> float:
    """One pre-norm transformer block: qkv + proj + MLP matmuls, plus the two attention matmuls."""
    dense = 2 * tokens * dim * dim * (3 + 1 + 2 * mlp_ratio)
    attention = 4 * tokens * sequence * dim
    return dense + attention


def depth_head_flops(height: int, width: int) -> float:
    """Conv upsampling head for one view."""
    total, h, w = 0.0, height // CFG.patch_size, width // CFG.patch_size
    c_in = CFG.decoder_dim
    for c_out in CFG.depth_upsample_channels:
        area = 4 * h * w  # after the x2 transposed conv
        total += 2 * (c_in + 2) * c_out * 4 * h * w  # ConvTranspose2d k2 s2
        total += 2 * c_out * c_out * 9 * area  # Conv3x3
        total += CFG.depth_res_blocks * 2 * (2 * c_out * 2 * c_out * 9 * area)  # c->2c, 2c->c
        c_in, h, w = c_out, 2 * h, 2 * w
    total += 2 * (c_in + 2) * CFG.depth_last_channels * 9 * height * width
    return total + 2 * CFG.depth_last_channels * CFG.depth_channels * height * width


def network_flops(views: int, height: int, width: int, steps: int) -> float:
    """FLOPs of one forward pass for `views` images of height x width and K=steps."""
    patches = (height // CFG.patch_size) * (width // CFG.patch_size)
    tokens = patches + CFG.special_tokens  # per view, in the loop and decoders
    dim, dec = CFG.embed_dim, CFG.decoder_dim
    encoder = CFG.encoder_depth * _block_flops(views * tokens, tokens, dim)
    loop = steps * (_block_flops(views * tokens, tokens, dim) + _block_flops(views * tokens, views * tokens, dim))
    decoders = 2 * (2 * views * tokens * dim * dec + CFG.decoder_depth * _block_flops(views * tokens, tokens, dec))
    ray_head = 2 * views * patches * dec * CFG.ray_channels * CFG.patch_size**2
    return encoder + loop + decoders + ray_head + views * depth_head_flops(height, width)


def peak_memory_bytes(
    views: int, height: int, width: int, dtype_bytes: int, chunk_views: int = CFG.decode_chunk_views
) -> float:
    """Rough peak working memory: weights + loop activations + one decoder chunk + outputs."""
    patches = (height // CFG.patch_size) * (width // CFG.patch_size)
    tokens = views * (patches + CFG.special_tokens)
    weights = 117_081_667 * 4 * (1.5 if dtype_bytes == 2 else 1.0)  # fp32 master + bf16 copies
    loop = tokens * CFG.embed_dim * dtype_bytes * 12  # residual stream, qkv, MLP hidden
    head = min(views, chunk_views) * height * width * (64 + 128 + 66) * 4 * 2  # full-res conv features
    outputs = views * height * width * (6 + 2 + 3 + 3 + 4) * 4
    return weights + loop + head + outputs


@dataclass
class Estimate:
    seconds: float
    peak_gb: float
    tflops: float

    def describe(self, views: int, height: int, width: int, steps: int, where: str) -> str:
        return (
            f"≈ {self.seconds:.0f} s and ≈ {self.peak_gb:.1f} GB for {views} view{'s' if views != 1 else ''} "
            f"at {width}×{height}, K={steps} on {where} ({self.tflops:.1f} TFLOP)"
        )


@dataclass
class Estimator:
    """Throughput per (device, precision), updated from observed runs (thread-safe)."""

    throughput: dict[tuple[str, str], float] = field(default_factory=lambda: dict(PRIOR_THROUGHPUT))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def estimate(self, views: int, height: int, width: int, steps: int, device: str, precision: str) -> Estimate:
        flops = network_flops(views, height, width, steps)
        rate = self.throughput.get((device, precision), PRIOR_THROUGHPUT[("cpu", "fp32")])
        seconds = flops / rate + FIXED_SECONDS.get(device, 0.5) * max(1, views / 4)
        memory = peak_memory_bytes(views, height, width, 2 if precision == "bf16" else 4)
        return Estimate(seconds, memory / 2**30, flops / 1e12)

    def observe(
        self, views: int, height: int, width: int, steps: int, device: str, precision: str, model_seconds: float
    ) -> None:
        """Blend a measured model time into the throughput for this device and precision."""
        if model_seconds <= 0:
            return
        measured = network_flops(views, height, width, steps) / model_seconds
        with self._lock:
            previous = self.throughput.get((device, precision), measured)
            self.throughput[(device, precision)] = 0.5 * previous + 0.5 * measured

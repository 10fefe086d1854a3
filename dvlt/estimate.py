"""Predicting how long a run takes, from a FLOP count calibrated on this machine in this process.

The network's work is split into three kinds whose speed differs per machine: dense matrix
products (linear layers), attention, and the depth head's convolutions. A start-up probe
(`Estimator.probe`, well under a second) times one representative kernel of each kind in the
precision the model uses, and two real model passes (a tiny one that is almost all fixed per-pass
cost, and a small one that is mostly FLOPs) fix how the whole network relates to those kernels:
seconds = factor x kernel seconds + fixed seconds. Every real run then re-calibrates the factor
(`Estimator.observe`), so the
estimate follows the code and the machine it runs on, whatever either's speed is; nothing here
is a speed constant of a particular machine except the GPU priors used before a GPU run is seen.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .model.config import PARAMETER_COUNT, DVLTConfig

CFG = DVLTConfig()
KINDS = ("dense", "attention", "conv")
SLOW_SECONDS = 120.0  # above this the UI and the CLI warn before the run and offer a cheaper setting
TARGET_SECONDS = 60.0  # default video sampling on CPU picks a view count that fits about this long
# GPU kernel rates in FLOP/s (H100-class, bf16) until a GPU run is observed; CPU rates are always probed.
GPU_PRIOR_RATES = {"dense": 300e12, "attention": 150e12, "conv": 100e12}
OVERHEAD_PRIOR = (0.3, 1.5e-7)  # (seconds per request, seconds per view-pixel): preprocess, packaging, scene
SCALE_PRIOR = 1.3  # whole-network time / kernel time, before anything was measured in this process
# The start-up probe's real passes (views, height, width, K): the tiny one is ~0.1 s of op dispatch, camera fit
# and other costs that do not grow with FLOPs; the small one is mostly FLOPs. Without the tiny pass, a factor
# learnt from the small pass alone over-estimated large runs by up to 29 % (bf16, docs/performance.md).
PROBE_PASSES = ((1, 42, 56, 8), (2, 182, 252, 8))
PROBE_ROUNDS = 3


def _block_terms(tokens: int, sequence: int, dim: int, mlp_ratio: float = CFG.mlp_ratio) -> tuple[float, float]:
    """(dense, attention) FLOPs of one pre-norm transformer block: qkv, proj, MLP; QK^T and AV."""
    return 2 * tokens * dim * dim * (3 + 1 + 2 * mlp_ratio), 4 * tokens * sequence * dim


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


def flop_terms(views: int, height: int, width: int, steps: int) -> dict[str, float]:
    """FLOPs of one forward pass split by kind: {'dense', 'attention', 'conv'}."""
    patches = (height // CFG.patch_size) * (width // CFG.patch_size)
    tokens = patches + CFG.special_tokens  # per view, in the loop and decoders
    total = views * tokens
    dim, dec = CFG.embed_dim, CFG.decoder_dim
    frame = _block_terms(total, tokens, dim)  # attention within each view
    global_ = _block_terms(total, total, dim)  # attention across all views
    decoder = _block_terms(total, tokens, dec)
    dense = CFG.encoder_depth * frame[0] + steps * (frame[0] + global_[0])
    attention = CFG.encoder_depth * frame[1] + steps * (frame[1] + global_[1])
    dense += 2 * (2 * total * dim * dec + CFG.decoder_depth * decoder[0])
    attention += 2 * CFG.decoder_depth * decoder[1]
    dense += 2 * views * patches * dec * CFG.ray_channels * CFG.patch_size**2  # ray head
    return {"dense": dense, "attention": attention, "conv": views * depth_head_flops(height, width)}


def network_flops(views: int, height: int, width: int, steps: int) -> float:
    """FLOPs of one forward pass for `views` images of height x width and K=steps."""
    return sum(flop_terms(views, height, width, steps).values())


def peak_memory_bytes(
    views: int, height: int, width: int, dtype_bytes: int, chunk_views: int = CFG.decode_chunk_views
) -> float:
    """Rough peak working memory: weights + loop activations + one decoder chunk + outputs."""
    patches = (height // CFG.patch_size) * (width // CFG.patch_size)
    tokens = views * (patches + CFG.special_tokens)
    weights = PARAMETER_COUNT * 4 * (1.5 if dtype_bytes == 2 else 1.0)  # fp32 master + bf16 copies
    loop = tokens * CFG.embed_dim * dtype_bytes * 12  # residual stream, qkv, MLP hidden
    head = min(views, chunk_views) * height * width * (64 + 128 + 66) * 4 * 2  # full-res conv features
    outputs = views * height * width * (6 + 2 + 3 + 3 + 4) * 4
    return weights + loop + head + outputs


def _best_of(run: Callable[[], object], repeats: int = 5) -> float:
    """Fastest of `repeats` timed calls after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_kernel_rates(device: str = "cpu", precision: str = "fp32") -> dict[str, float]:
    """FLOP/s of one dense product, one attention call and one 3x3 conv shaped like DVLT's, on this machine."""
    import torch
    import torch.nn.functional as F

    from .runtime import autocast_for

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    where = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    tokens, dim, heads = 1024, CFG.embed_dim, CFG.num_heads
    x = torch.randn(tokens, dim, generator=generator).to(where)
    weight = torch.randn(4 * dim, dim, generator=generator).to(where)
    qkv = torch.randn(3, 1, heads, tokens, dim // heads, generator=generator).to(where)
    image = torch.randn(1, 64, 64, 96, generator=generator).to(where).contiguous(memory_format=torch.channels_last)
    kernel = torch.randn(64, 64, 3, 3, generator=generator).to(where).contiguous(memory_format=torch.channels_last)

    def timed(run: Callable[[], object]) -> float:
        def synced() -> None:
            run()
            if where.type == "cuda":
                torch.cuda.synchronize()

        return max(_best_of(synced), 1e-6)

    with torch.no_grad(), autocast_for(where, dtype):
        dense = 2 * tokens * dim * 4 * dim / timed(lambda: F.linear(x, weight))
        attention = 4 * tokens * tokens * dim / timed(lambda: F.scaled_dot_product_attention(*qkv))
        conv = 2 * 64 * 64 * 9 * 64 * 96 / timed(lambda: F.conv2d(image, kernel, padding=1))
    return {"dense": dense, "attention": attention, "conv": conv}


@dataclass
class Estimate:
    """A prediction for one run: seconds of the whole request, peak memory and the FLOP count."""

    seconds: float
    peak_gb: float
    tflops: float

    @property
    def slow(self) -> bool:
        """True when the run is expected to take over SLOW_SECONDS: warn before it starts."""
        return self.seconds > SLOW_SECONDS

    def describe(self, views: int, height: int, width: int, steps: int, where: str) -> str:
        return (
            f"≈ {human_seconds(self.seconds)} and ≈ {self.peak_gb:.1f} GB for {views} view{'s' if views != 1 else ''}"
            f" at {width}×{height}, K={steps} · {where}"
        )


def human_seconds(seconds: float) -> str:
    """4.2 -> '4 s', 150 -> '2.5 min'."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.1f} min"


@dataclass
class Estimator:
    """Run-time model per (device, precision): probed kernel rates x a factor learnt from real runs (thread-safe)."""

    rates: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    scale: dict[tuple[str, str], float] = field(default_factory=dict)
    fixed: dict[tuple[str, str], float] = field(default_factory=dict)  # seconds per model pass beyond the FLOPs
    overhead: dict[str, tuple[float, float]] = field(default_factory=dict)
    history: int = 4  # real runs the network factor is learnt from (median of the latest)
    _ratios: dict[tuple[str, str], deque] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def copy(self) -> Estimator:
        """An independent estimator with the same calibration (for comparisons; learning is not shared)."""
        with self._lock:
            rates = {key: dict(value) for key, value in self.rates.items()}
            return Estimator(rates, dict(self.scale), dict(self.fixed), dict(self.overhead), self.history)

    def kernel_rates(self, device: str, precision: str) -> dict[str, float]:
        """Probed rates, measuring them on first use on a CPU (GPU: priors until probed)."""
        key = (device, precision)
        if key not in self.rates:
            rates = dict(GPU_PRIOR_RATES) if device == "cuda" else measure_kernel_rates(device, precision)
            with self._lock:
                self.rates.setdefault(key, rates)
        return self.rates[key]

    def kernel_seconds(self, views: int, height: int, width: int, steps: int, device: str, precision: str) -> float:
        """Seconds the network's FLOPs take at the probed kernel rates (no overheads)."""
        rates = self.kernel_rates(device, precision)
        return sum(flops / rates[kind] for kind, flops in flop_terms(views, height, width, steps).items())

    def model_seconds(self, views: int, height: int, width: int, steps: int, device: str, precision: str) -> float:
        """Predicted time of the model pass (network, camera fit)."""
        key = (device, precision)
        factor, fixed = self.scale.get(key, SCALE_PRIOR), self.fixed.get(key, 0.0)
        return factor * self.kernel_seconds(views, height, width, steps, device, precision) + fixed

    def other_seconds(self, views: int, height: int, width: int, device: str) -> float:
        """Predicted time of everything else in a request: decoding, preprocessing, packaging, the scene."""
        fixed, per_pixel = self.overhead.get(device, OVERHEAD_PRIOR)
        return fixed + per_pixel * views * height * width

    def estimate(self, views: int, height: int, width: int, steps: int, device: str, precision: str) -> Estimate:
        seconds = self.model_seconds(views, height, width, steps, device, precision)
        seconds += self.other_seconds(views, height, width, device)
        memory = peak_memory_bytes(views, height, width, 2 if precision == "bf16" else 4)
        return Estimate(seconds, memory / 2**30, network_flops(views, height, width, steps) / 1e12)

    def observe(
        self,
        views: int,
        height: int,
        width: int,
        steps: int,
        device: str,
        precision: str,
        model_seconds: float,
        total_seconds: float | None = None,
    ) -> None:
        """Learn from a real run: its model time re-calibrates the network factor, the rest the overheads."""
        if model_seconds <= 0:
            return
        kernel = self.kernel_seconds(views, height, width, steps, device, precision)
        key = (device, precision)
        with self._lock:
            ratios = self._ratios.setdefault(key, deque(maxlen=self.history))
            flops_seconds = max(model_seconds - self.fixed.get(key, 0.0), 0.5 * model_seconds)
            ratios.append(flops_seconds / kernel)
            self.scale[key] = _median(ratios)
            if total_seconds is not None and total_seconds > model_seconds:
                fixed = self.overhead.get(device, OVERHEAD_PRIOR)[0]
                per_pixel = max(total_seconds - model_seconds - fixed, 0.0) / (views * height * width)
                previous = self.overhead.get(device, OVERHEAD_PRIOR)[1]
                self.overhead[device] = (fixed, 0.5 * previous + 0.5 * per_pixel)

    def probe(
        self, device: str, precision: str, run_model: Callable[[int, int, int, int], float] | None = None
    ) -> None:
        """Start-up calibration: measure the kernel rates and, with `run_model(views, height, width, steps)` (a real
        pass returning its model seconds), the network factor and fixed cost from PROBE_PASSES, unless real runs
        already set them."""
        self.kernel_rates(device, precision)
        key = (device, precision)
        if run_model is None or self._ratios.get(key):
            return
        kernels = [self.kernel_seconds(*shape, device, precision) for shape in PROBE_PASSES]
        # The fastest of three runs each, the passes taking turns: one hiccup of a shared machine at start-up would
        # skew every estimate after it, and a runtime that compiles on first use (OpenVINO) is still about 13 % slower
        # on the second run of a new shape than on later ones.
        runs = [[run_model(*shape) for shape in PROBE_PASSES] for _ in range(PROBE_ROUNDS)]
        tiny, small = (min(times) for times in zip(*runs))
        fixed = 0.0  # a disturbed probe (the small pass no slower than the tiny one) gives no fixed part
        if small > tiny:  # seconds = factor x kernel + fixed, through both passes
            factor = (small - tiny) / (kernels[1] - kernels[0])
            fixed = min(max(tiny - factor * kernels[0], 0.0), 0.5 * small)
        with self._lock:
            if not self._ratios.get(key):
                self.scale[key], self.fixed[key] = (small - fixed) / kernels[1], fixed

    def views_within(
        self, seconds: float, height: int, width: int, steps: int, device: str, precision: str, most: int
    ) -> int:
        """The largest view count (1..most) whose estimate fits in `seconds`."""
        fits = [
            n
            for n in range(1, most + 1)
            if self.estimate(n, height, width, steps, device, precision).seconds <= seconds
        ]
        return max(fits) if fits else 1


def _median(values: deque) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else math.sqrt(ordered[middle - 1] * ordered[middle])

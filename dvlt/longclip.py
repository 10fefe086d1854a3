"""The Space's long-clip mode, without the UI: plan the windows, estimate them, run them with per-window progress."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from . import limits
from .errors import EmptyInputError, InputError
from .estimate import SLOW_SECONDS, Estimate, Estimator, human_seconds
from .model import DVLT
from .pipeline import Progress
from .preprocess import canvas_size
from .records import Reconstruction
from .studio import device_label, estimate_for
from .windows import plan_windows, reconstruct_windows


@dataclass(frozen=True)
class ClipPlan:
    """How a long clip is cut: `count` windows of `window` frames sharing `overlap` frames."""

    frames: int
    window: int
    overlap: int
    count: int

    @property
    def windowed(self) -> bool:
        return self.count > 1

    def describe(self) -> str:
        return f"long clip: {self.count} windows of {self.window} frames ({self.overlap} shared between neighbours)"


def plan_clip(frames: int, max_views: int, overlap: int = limits.WINDOW_OVERLAP_DEFAULT) -> ClipPlan:
    """Windows of the one-pass cap when the frames exceed it, else a single pass."""
    if frames <= max_views:
        return ClipPlan(frames, frames, 0, 1)
    overlap = min(overlap, max_views - 1)
    return ClipPlan(frames, max_views, overlap, len(plan_windows(frames, max_views, overlap)))


def estimate_clip(
    estimator: Estimator,
    sizes: Sequence[tuple[int, int]],
    resolution: int,
    steps: int,
    device: str,
    precision: str,
    max_views: int,
) -> tuple[Estimate, str]:
    """Total estimate (time adds up over windows, peak memory is one window's) and its line in seconds and memory,
    per window too, warning first when the whole clip takes over SLOW_SECONDS (as a single run's estimate does);
    a clip that fits one pass gets the one-pass estimate."""
    plan = plan_clip(len(sizes), max_views)
    if not plan.windowed:
        return estimate_for(estimator, sizes, resolution, steps, device, precision)
    height, width = canvas_size(sizes, resolution)
    one = estimator.estimate(plan.window, height, width, steps, device, precision)
    where = device_label(device, precision)
    total = Estimate(one.seconds * plan.count, one.peak_gb, one.tflops * plan.count)
    line = (
        f"{plan.describe()}: ≈ {human_seconds(one.seconds)} per window, ≈ {human_seconds(total.seconds)} in total "
        f"and ≈ {one.peak_gb:.1f} GB at most, for {plan.frames} frames at {width}×{height}, K={steps} on {where}"
    )
    if total.slow:
        line += f"  \n⚠️ **Over {SLOW_SECONDS / 60:.0f} minutes.** " + cheaper_clip(
            estimator, sizes, resolution, steps, device, precision, max_views
        )
    return total, line


def cheaper_clip(
    estimator: Estimator,
    sizes: Sequence[tuple[int, int]],
    resolution: int,
    steps: int,
    device: str,
    precision: str,
    max_views: int,
) -> str:
    """One sentence offering a faster long-clip setting: the next lower resolution (with its total), or fewer frames."""
    plan = plan_clip(len(sizes), max_views)
    lower = [r for r in limits.RESOLUTIONS if r < resolution]
    if not lower:
        return "Fewer frames (a lower frame rate) or a smaller K is faster."
    height, width = canvas_size(sizes, max(lower))
    seconds = estimator.estimate(plan.window, height, width, steps, device, precision).seconds * plan.count
    return f"Faster: {max(lower)} px (≈ {human_seconds(seconds)}) or fewer frames (a lower frame rate)."


def run_windows(
    model: DVLT,
    frames: Sequence[Image.Image],
    steps: int,
    resolution: int,
    max_views: int,
    progress: Progress | None = None,
) -> Reconstruction:
    """Check K and resolution, then reconstruct in windows of `max_views` (one pass when the frames fit)."""
    if not limits.STEPS_MIN <= int(steps) <= limits.STEPS_MAX:
        raise InputError(f"K must be between {limits.STEPS_MIN} and {limits.STEPS_MAX} here (got {steps}).")
    if int(resolution) not in limits.RESOLUTIONS:
        raise InputError(f"Resolution must be one of {', '.join(map(str, limits.RESOLUTIONS))} px.")
    if not frames:
        raise EmptyInputError("Nothing to reconstruct: add photos or a video.")
    plan = plan_clip(len(frames), max_views)
    return reconstruct_windows(
        model,
        frames,
        plan.window,
        max(plan.overlap, 1),
        steps=int(steps),
        img_size=int(resolution),
        name="scene",
        progress=progress,
    )

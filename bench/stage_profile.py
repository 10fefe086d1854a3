"""Where a forward's time goes: shares per stage (encoder, loop, heads, camera fit, un-projection) and per op.

    python bench/stage_profile.py --views 2,4,8 --sizes 252,504 --steps 12 [--precision fp32] [--ops 12]

Shares, not seconds, are the figures to compare: they hold on a busy machine. Stages are timed
through the model's progress hook; ops come from the torch profiler (self CPU time), grouped into
matrix products, attention, convolutions and the memory-bound rest.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import synthetic_model
from torch.profiler import ProfilerActivity, profile

from dvlt.geometry import fit_cameras_from_rays, unproject_depth
from dvlt.model import DVLT

GROUPS = {
    "matrix products": ("aten::addmm", "aten::mm", "aten::bmm", "quantized::linear_dynamic"),
    "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu",),
    "convolutions": ("aten::mkldnn_convolution",),
}


def stage_times(model: DVLT, images: torch.Tensor, steps: int) -> dict[str, float]:
    """Seconds of encoder, loop and heads (progress hook), then camera fit and un-projection."""
    marks: list[tuple[str, float]] = []

    def hook(stage: str, done: int, total: int) -> None:
        if done == total:
            marks.append((stage, time.perf_counter()))

    with torch.inference_mode():
        start = time.perf_counter()
        raw = model(images, steps, hook)
        times, previous = {}, start
        for stage, moment in marks:
            if stage not in times:
                times[{"encode": "encoder", "loop": "loop", "decode": "heads"}[stage]] = moment - previous
                previous = moment
        rays = raw["rays"].flatten(0, 1)
        start = time.perf_counter()
        c2w, intrinsics = fit_cameras_from_rays(rays, torch.ones(rays.shape[:3]), model.patch_size)
        times["camera fit"] = time.perf_counter() - start
        start = time.perf_counter()
        unproject_depth(raw["depth"].flatten(0, 1), intrinsics, c2w[:, :3])
        times["un-projection"] = time.perf_counter() - start
    return times


def op_shares(model: DVLT, images: torch.Tensor, steps: int, top: int) -> tuple[dict[str, float], list]:
    """Shares of self CPU time per op group, and the `top` ops, for one `predict`."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.predict({"images": images}, steps=steps)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    groups = dict.fromkeys([*GROUPS, "memory-bound rest"], 0.0)
    for event in events:
        group = next((name for name, ops in GROUPS.items() if event.key in ops), "memory-bound rest")
        groups[group] += event.self_cpu_time_total / total
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return groups, [(e.key, e.self_cpu_time_total / total, e.count) for e in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", default="2,4,8")
    parser.add_argument("--sizes", default="252,504")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--ops", type=int, default=12, help="top ops listed per configuration")
    args = parser.parse_args()
    model = synthetic_model(args.precision, "cpu")
    stage_rows, op_rows = [], []
    for views in (int(v) for v in args.views.split(",")):
        for size in (int(s) for s in args.sizes.split(",")):
            height, width = (size * 3 // 4) // 14 * 14, size // 14 * 14
            images = torch.rand(1, views, 3, height, width, generator=torch.Generator().manual_seed(0))
            model.predict({"images": images}, steps=args.steps)  # warm-up
            times = stage_times(model, images, args.steps)
            total = sum(times.values())
            shares = " | ".join(f"{100 * t / total:.1f} %" for t in times.values())
            stage_rows.append(f"| {views} | {height}×{width} | {shares} | {total:.2f} |")
            groups, top = op_shares(model, images, args.steps, args.ops)
            group_text = " | ".join(f"{100 * share:.1f} %" for share in groups.values())
            op_rows.append(f"| {views} | {height}×{width} | {group_text} |")
            print(f"{views} views {height}x{width} K={args.steps}: top ops", flush=True)
            for name, share, count in top:
                print(f"    {100 * share:5.1f} %  {name} ({count} calls)", flush=True)
    print(f"\nStage shares ({args.precision}, K={args.steps}); seconds are of this machine at this moment:\n")
    print("| views | H×W | " + " | ".join(times) + " | seconds |")
    print("|---|---|" + "---|" * (len(times) + 1))
    print("\n".join(stage_rows))
    print(f"\nOp-group shares of self CPU time ({args.precision}, K={args.steps}):\n")
    print("| views | H×W | " + " | ".join(groups) + " |")
    print("|---|---|" + "---|" * len(groups))
    print("\n".join(op_rows))


if __name__ == "__main__":
    main()

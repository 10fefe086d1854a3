"""Check the app's time estimates against measured runs; print (and optionally save) a markdown table.

    python bench/estimate_check.py                              # 10 configurations, about 6 minutes on 2 cores
    python bench/estimate_check.py --out docs/performance.md    # replaces this machine's table in the doc
    python bench/estimate_check.py --precision fp32 --out docs/performance.md
    python bench/estimate_check.py --isa AVX2 --out docs/performance.md     # a CPU without AVX-512, emulated

The estimator is set up exactly as the app does at start-up (kernel probe + one small real
model pass), then each configuration is estimated twice before it runs: "probe" with only the
start-up calibration, and "live" after learning from the runs before it in this process (what a
user sees after their first run). "measured" is the whole request as the app times it: decode
the clip, preprocess, model, packaging, GLB scene and depth gallery. Weights are the synthetic
ones from tests/golden (speed does not depend on weight values). Each (instruction set, precision)
has its own table in the doc, between `<!-- estimate:ISA-PRECISION:begin/end -->` markers.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import CLIP, synthetic_model
from markers import replace_marked
from side_by_side import ISA_ENV

from dvlt import DVLT
from dvlt.cpu import cpu_description
from dvlt.estimate import Estimator
from dvlt.inputs import load_sequence
from dvlt.pipeline import reconstruct
from dvlt.preprocess import canvas_size
from dvlt.runtime import describe_runtime, precision_name
from dvlt.scene import SceneOptions
from dvlt.studio import depth_panels, probe_speed, render_scene

# (views, longest side, K): the 8 corners of 2-16 views x 252-504 px x K 8-16 and two middles, in an
# order that never lets the live estimator learn a configuration just before it is asked about it.
GRID = [
    (2, 504, 16),
    (16, 252, 8),
    (4, 378, 12),
    (2, 252, 8),
    (16, 504, 16),
    (8, 378, 12),
    (2, 252, 16),
    (16, 252, 16),
    (2, 504, 8),
    (16, 504, 8),
]
QUICK = GRID[:3]


def measure(model: DVLT, views: int, size: int, steps: int, folder: Path) -> tuple[float, float, tuple[int, int]]:
    """(request seconds, model seconds, (H, W)) of one app-like request on `views` frames of the clip."""
    start = time.perf_counter()
    _, frames = load_sequence(str(CLIP), num_frames=views)
    rec = reconstruct(model, frames, steps=steps, img_size=size, name="box")
    render_scene(rec, SceneOptions(), folder)  # the app's defaults: with synthetic weights, few points survive
    depth_panels(rec)
    return time.perf_counter() - start, rec.seconds["model"], rec.size


def replace_between_markers(path: Path, section: str, table: str) -> None:
    """Put `table` between this section's markers in `path`."""
    if not replace_marked(path, f"estimate:{section}", table + "\n"):
        raise SystemExit(f"{path} has no <!-- estimate:{section}:begin/end --> markers")


def emulate(isa: str) -> None:
    """Re-run this script with the environment that limits oneDNN/MKL/ATen to `isa` (read when torch starts)."""
    wanted = ISA_ENV[isa]
    if all(os.environ.get(key) == value for key, value in wanted.items()):
        return
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **wanted})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three configurations only")
    parser.add_argument("--out", type=Path, help="markdown file whose estimate table to replace")
    parser.add_argument("--isa", choices=sorted(ISA_ENV), default="native", help="emulate a smaller CPU")
    parser.add_argument("--section", help="the doc's marker name after 'estimate:' (default: ISA-PRECISION)")
    parser.add_argument(
        "--precision", choices=("auto", "fp32", "bf16"), default="auto", help="auto: the app's rule for this CPU"
    )
    args = parser.parse_args()
    emulate(args.isa)

    device = "cpu"
    # An emulated AVX2 CPU has no bf16 units, so the app's rule would give it fp32 (its flags here still say bf16).
    precision = "fp32" if args.isa == "AVX2" and args.precision == "auto" else precision_name(args.precision, device)
    model = synthetic_model(precision, device)
    load_before = os.getloadavg()[0]
    estimator = Estimator()
    probe_start = time.perf_counter()
    probe_speed(estimator, model, device, precision)
    probe_seconds = time.perf_counter() - probe_start
    probe_only = estimator.copy()

    rows, errors = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for views, size, steps in QUICK if args.quick else GRID:
            _, frames = load_sequence(str(CLIP), num_frames=views)
            height, width = canvas_size([(f.height, f.width) for f in frames], size, 14)
            before = probe_only.estimate(views, height, width, steps, device, precision).seconds
            live = estimator.estimate(views, height, width, steps, device, precision).seconds
            took, model_seconds, _ = measure(model, views, size, steps, Path(tmp))
            estimator.observe(views, height, width, steps, device, precision, model_seconds, took)
            error_probe, error_live = (before / took - 1) * 100, (live / took - 1) * 100
            errors.append((error_probe, error_live))
            rows.append(
                f"| {views} | {width}×{height} | {steps} | {before:.1f} | {live:.1f} | {took:.1f} | "
                f"{error_probe:+.0f} % | {error_live:+.0f} % |"
            )
            print(rows[-1], flush=True)
    lines = [
        f"Machine: {cpu_description()}; instruction set limit: {args.isa}; "
        f"{describe_runtime(device, args.precision if args.isa == 'native' else precision)}; "
        f"torch {torch.__version__}, Python {platform.python_version()}. "
        f"Date: {datetime.date.today()}. 1-minute load average before the run: {load_before:.1f} "
        f"(this run itself adds about {torch.get_num_threads()}). Start-up probe took {probe_seconds:.1f} s.",
        "",
        "| views | W×H | K | estimate after probe s | estimate live s | measured s | error (probe) | error (live) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Largest error: {max(abs(p) for p, _ in errors):.0f} % after the probe only, "
        f"{max(abs(v) for _, v in errors):.0f} % live (the target is 35 %).",
    ]
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        replace_between_markers(args.out, args.section or f"{args.isa}-{precision}", table)


if __name__ == "__main__":
    main()

"""Check the app's time estimates against measured runs; print (and optionally save) a markdown table.

    python bench/estimate_check.py                              # 8 configurations, a few minutes on 2 cores
    python bench/estimate_check.py --out docs/performance.md    # replaces the table between the estimate markers

The estimator is set up exactly as the app does at start-up (kernel probe + one small real
model pass), then each configuration is estimated twice before it runs: "probe" with only the
start-up calibration, and "live" after learning from the runs before it in this process (what a
user sees after their first run). "measured" is the whole request as the app times it: decode
the clip, preprocess, model, packaging, GLB scene and depth gallery. Weights are the synthetic
ones from tests/golden (speed does not depend on weight values).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "golden"))

from synthetic_weights import synthetic_state_dict  # noqa: E402

from dvlt import DVLT  # noqa: E402
from dvlt.estimate import Estimator  # noqa: E402
from dvlt.inputs import load_sequence  # noqa: E402
from dvlt.pipeline import reconstruct  # noqa: E402
from dvlt.preprocess import canvas_size  # noqa: E402
from dvlt.runtime import cpu_flags, describe_runtime, precision_name  # noqa: E402
from dvlt.scene import SceneOptions  # noqa: E402
from dvlt.studio import depth_panels, probe_speed, render_scene  # noqa: E402

CLIP = ROOT / "examples" / "box.mp4"
BEGIN, END = "<!-- estimate:begin -->", "<!-- estimate:end -->"
# (views, longest side, K): the corners of 2-16 views x 252/378/504 px x K 8-16, in an order that
# does not let the live estimator learn a configuration just before it is asked about it.
GRID = [
    (2, 504, 12),
    (8, 252, 16),
    (4, 378, 8),
    (16, 252, 8),
    (2, 252, 16),
    (8, 504, 8),
    (16, 378, 12),
    (4, 504, 16),
]
QUICK = GRID[:3]


def measure(model: DVLT, views: int, size: int, steps: int, folder: Path) -> tuple[float, float, tuple[int, int]]:
    """(request seconds, model seconds, (H, W)) of one app-like request on `views` frames of the clip."""
    start = time.perf_counter()
    _, frames = load_sequence(str(CLIP), num_frames=views)
    rec = reconstruct(model, frames, steps=steps, img_size=size, name="box")
    render_scene(rec, SceneOptions(), folder)
    depth_panels(rec)
    return time.perf_counter() - start, rec.seconds["model"], rec.size


def replace_between_markers(path: Path, table: str) -> None:
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    path.write_text(head + BEGIN + "\n" + table + "\n" + END + rest.split(END, 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three configurations only")
    parser.add_argument("--out", type=Path, help="markdown file whose estimate table to replace")
    args = parser.parse_args()

    device, precision = "cpu", precision_name(None, "cpu")
    model = DVLT(precision=precision)
    model.load_state_dict(synthetic_state_dict(), strict=False)
    model.setup_test(device)
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
    load_after = os.getloadavg()[0]
    flags = cpu_flags()
    lines = [
        f"Machine: {describe_runtime(device)}; CPU flags: "
        f"amx_bf16 {'yes' if 'amx_bf16' in flags else 'no'}, avx512_bf16 {'yes' if 'avx512_bf16' in flags else 'no'}; "
        f"torch {torch.__version__}, Python {platform.python_version()}. Date: {datetime.date.today()}. "
        f"Load average {load_before:.1f} before, {load_after:.1f} after (other jobs shared the cores). "
        f"Start-up probe took {probe_seconds:.1f} s.",
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
        replace_between_markers(args.out, table)


if __name__ == "__main__":
    main()

"""Peak memory and time of a long clip reconstructed in windows, against one window alone, through the real CLI.

    python bench/long_clips.py                       # synthetic weights, 120 frames of examples/box.mp4
    python bench/long_clips.py --checkpoint nvidia/dvlt --frames 120 --window 16 --overlap 4

Each run is a fresh `python -m dvlt reconstruct` process; its peak resident memory is the
kernel's high-water mark for that child (wait4 rusage, the VmHWM of /proc/<pid>/status).
The claim checked: peak(long clip) <= peak(one window) + 1 GiB. Results: docs/long_clips.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOX = ROOT / "examples" / "box.mp4"


def run_measured(arguments: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GiB, stderr) of one CLI process, reaped here so its rusage is its own."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "dvlt", *arguments], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    stderr = child.stderr.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if child.returncode:
        raise SystemExit(f"run failed ({child.returncode}): {stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 2**20, stderr  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="weights (default: the synthetic test weights)")
    parser.add_argument("--clip", type=Path, default=BOX)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--img-size", type=int, default=252)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.checkpoint:
            checkpoint = args.checkpoint
        else:
            from common import synthetic_checkpoint  # imports torch: only when the synthetic weights are needed

            checkpoint = str(synthetic_checkpoint())
        common = ["reconstruct", str(args.clip), "--checkpoint", checkpoint, "--img-size", str(args.img_size)]
        common += ["--steps", str(args.steps), "--precision", args.precision, "--device", "cpu", "--quiet"]
        common += ["--formats", "npz"]
        rows = []
        for label, frames, window in (
            ("one window", args.window, 0),
            ("long clip", args.frames, args.window),
        ):
            out = scratch / label.replace(" ", "-")
            extra = ["--num-frames", str(frames), "--max-frames", str(frames), "--out", str(out)]
            extra += ["--window", str(window), "--overlap", str(args.overlap)]
            seconds, peak, _ = run_measured(common + extra)
            windows = 1 if not window else len(range(0, frames - window, window - args.overlap)) + 1
            rows.append((label, frames, windows, seconds, peak))
    print(f"clip {args.clip.name}, {args.img_size} px, K={args.steps}, precision {args.precision}, CPU")
    print("| run | frames | windows | wall time | peak RSS |")
    print("|---|---|---|---|---|")
    for label, frames, windows, seconds, peak in rows:
        print(f"| {label} | {frames} | {windows} | {seconds:.1f} s | {peak:.2f} GiB |")
    excess = rows[1][4] - rows[0][4]
    print(f"long clip peak - one window peak = {excess:+.2f} GiB (bound: +1 GiB) -> {'OK' if excess <= 1 else 'OVER'}")


if __name__ == "__main__":
    main()

"""Time one DVLT forward of this project exactly as the upstream timing script does, in its own process.

    python bench/run_ours.py --views 4 --size 504 --steps 12 --runs 3 [--precision fp32]

Same protocol as the reference's timing script: synthetic weights, random 4:3 landscape frames
(seed 0), one untimed warm-up, then `--runs` timed calls of the network plus the camera fit and
un-projection (`DVLT.predict`). Prints one line: "ours views=.. HxW K=.. precision=.. median S min S".
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import synthetic_model


def frame_size(size: int, patch: int = 14) -> tuple[int, int]:
    """(H, W) of a 4:3 landscape frame whose longest side is `size`, both multiples of the patch."""
    return (size * 3 // 4) // patch * patch, size // patch * patch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--size", type=int, default=504, help="longest side; frames are 4:3 landscape")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--precision", default="fp32", help="fp32, bf16, int8 or auto")
    parser.add_argument("--backend", default="auto", help="CPU runtime: auto, openvino or torch")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    model = synthetic_model(args.precision, args.device, backend=args.backend)
    height, width = frame_size(args.size)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(1, args.views, 3, height, width, generator=generator).to(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    model.predict({"images": images}, steps=args.steps)  # warm-up: oneDNN primitives, caches
    times = []
    for _ in range(args.runs):
        sync()
        start = time.perf_counter()
        model.predict({"images": images}, steps=args.steps)
        sync()
        times.append(time.perf_counter() - start)
    print(
        f"ours views={args.views} {height}x{width} K={args.steps} precision={args.precision} "
        f"runtime={model.runtime_name()} "
        f"dtype={str(model.compute_dtype()).removeprefix('torch.')} device={args.device} "
        f"threads={torch.get_num_threads()} median {statistics.median(times):.3f}s min {min(times):.3f}s"
    )


if __name__ == "__main__":
    main()

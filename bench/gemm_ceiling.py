"""The best matrix-product rate this CPU reaches in OpenVINO, fp32 and bf16: the measured roofline of a row.

    python bench/gemm_ceiling.py        # prints 'fp32 416 bf16 736' (GFLOP/s), honouring ONEDNN_MAX_CPU_ISA

A 4096 x 4096 x 4096 product with constant weights (the shape class of the network's linear layers), all
cores, fastest of 5 after 2 warm-ups. Nominal peaks use /proc/cpuinfo's clock, which turbo passes; this is what
the kernels really reach on this machine, now.
"""

from __future__ import annotations

import os
import time

import numpy as np

SIZE = 4096


def gemm_gflops(hint: str, size: int = SIZE, runs: int = 5) -> float:
    """GFLOP/s of one size^3 MatMul compiled for the CPU with inference precision `hint` ('f32' or 'bf16')."""
    import openvino as ov
    import openvino.opset13 as ops

    cores = len(os.sched_getaffinity(0))
    rng = np.random.default_rng(0)
    left = ops.parameter([size, size], np.float32)
    weights = ops.constant(rng.standard_normal((size, size), dtype=np.float32))
    model = ov.Model([ops.matmul(left, weights, False, False)], [left])
    config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": cores, "PERFORMANCE_HINT": "LATENCY"}
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    data = rng.standard_normal((size, size), dtype=np.float32)
    for _ in range(2):
        request.infer({0: data})
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        request.infer({0: data})
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def main() -> None:
    """Print both rates; a precision the (limited) CPU cannot compile prints 0."""
    rates = []
    for name, hint in (("fp32", "f32"), ("bf16", "bf16")):
        try:
            rates.append(f"{name} {gemm_gflops(hint):.0f}")
        except RuntimeError:
            rates.append(f"{name} 0")
    print(" ".join(rates))


if __name__ == "__main__":
    main()

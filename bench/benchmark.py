"""Time a whole DVLT request and its parts; print (and optionally save) markdown tables.

    python bench/benchmark.py                       # CPU request grid (~8 min on 2 cores)
    python bench/benchmark.py --quick               # a few configurations
    python bench/benchmark.py --out docs/performance.md   # replaces the tables between the bench markers
    python bench/benchmark.py --reference UPSTREAM_SRC --reference-python VENV/bin/python \
        --out docs/performance.md                   # side by side with the upstream reference (see --help)

A request is what the Space does for one click: decode the clip (PyAV) ->
preprocess -> model (network + camera fit) -> GLB scene + depth gallery.
Weights are the deterministic synthetic ones from tests/golden (speed does
not depend on weight values). Reported: median of repeats, peak resident
memory of the process during the request (or peak CUDA memory), points written.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from common import CLIP, ROOT, SCENE, synthetic_model
from markers import replace_marked

from dvlt import DVLT
from dvlt.cpu import cpu_description
from dvlt.export import write_glb
from dvlt.inputs import read_video
from dvlt.pipeline import reconstruct
from dvlt.visual import gallery

REFERENCE_SCRIPT = ROOT.parent / "shared" / "reference" / "run_upstream.py"
PAGE = os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak resident set size (CPU) or peak allocated CUDA memory while the block runs, in GiB."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak, self._stop = device, 0, threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * PAGE

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.005)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        else:
            self.peak = self.rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()

    @property
    def gib(self) -> float:
        return self.peak / 2**30


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def one_request(model: DVLT, views: int, size: int, steps: int, workdir: Path) -> dict:
    """Run the Space's request once and time each stage."""
    device = model.device
    times = {}
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        frames = read_video(CLIP, num_frames=views)
        times["decode"] = time.perf_counter() - start
        sync(device)
        rec = reconstruct(model, frames, steps=steps, img_size=size)
        sync(device)
        times["preprocess"], times["model"] = rec.seconds["preprocess"], rec.seconds["model"] + rec.seconds["package"]
        start = time.perf_counter()
        stats = write_glb(rec, workdir / "scene.glb", SCENE)
        gallery(rec)
        times["scene"] = time.perf_counter() - start
    times["total"] = sum(times.values())
    return {"times": times, "memory": memory.gib, "points": stats.points, "hw": rec.size}


def median_request(model: DVLT, views: int, size: int, steps: int, repeats: int, workdir: Path) -> dict:
    if views <= 2:
        one_request(model, views, size, steps, workdir)  # warm-up: kernels, caches, oneDNN primitives
    runs = [one_request(model, views, size, steps, workdir)]
    while len(runs) < repeats and runs[0]["times"]["total"] < 20:
        runs.append(one_request(model, views, size, steps, workdir))
    times = {key: statistics.median(run["times"][key] for run in runs) for key in runs[0]["times"]}
    return {
        "times": times,
        "memory": max(r["memory"] for r in runs),
        "points": runs[0]["points"],
        "hw": runs[0]["hw"],
        "n": len(runs),
    }


def model_only(model: DVLT, views: int, height: int, width: int, steps: int, repeats: int) -> float:
    """Median seconds of predict() on random images (the reference figures' protocol)."""
    images = torch.rand(1, views, 3, height, width, device=model.device)
    model.predict({"images": images}, steps=steps)
    times = []
    for _ in range(repeats):
        sync(model.device)
        start = time.perf_counter()
        model.predict({"images": images}, steps=steps)
        sync(model.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    """CPU model, cores and bf16/AMX flags, RAM, GPU and versions: the header of every table."""
    text = f"{cpu_description()}, {os.sysconf('SC_PHYS_PAGES') * PAGE / 2**30:.0f} GiB RAM"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name()}"
    return text + f"; torch {torch.__version__}, Python {platform.python_version()}"


def build_model(precision: str, device: str, chunk: int | None = None) -> DVLT:
    return synthetic_model(precision, device, decode_chunk_views=chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--precision", default="auto", help="precision of the request grid: auto, fp32 or bf16")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per configuration (1 when a run takes > 20 s)")
    parser.add_argument("--quick", action="store_true", help="a small grid, for a smoke test")
    parser.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    side = parser.add_argument_group("side by side with the upstream reference (--reference)")
    side.add_argument("--reference", type=Path, help="upstream nv-tlabs/dvlt source (its root or its src/ folder)")
    side.add_argument("--reference-python", default=sys.executable, help="the reference venv's python")
    side.add_argument("--reference-script", type=Path, default=REFERENCE_SCRIPT, help="the shared timing script")
    side.add_argument("--configs", default="4x504x12,2x504x12", help="views x longest side x K, comma-separated")
    side.add_argument(
        "--precisions",
        default="torch:fp32,torch:auto,openvino:fp32,openvino:auto",
        help="ours to time against the reference: PRECISION or BACKEND:PRECISION (openvino, torch, auto)",
    )
    side.add_argument("--upstream-bf16", action="store_true", help="also time upstream with CPU bf16 autocast")
    side.add_argument("--isa", default="native,AVX512_CORE_BF16,AVX2", help="instruction-set rows (emulated)")
    side.add_argument("--pairs", type=int, default=3, help="rounds of reference, ours, ... (A B A B)")
    side.add_argument("--runs", type=int, default=1, help="timed forwards per process, after one warm-up")
    side.add_argument("--split-views", type=int, default=4, help="views of the end-to-end split (0: skip it)")
    args = parser.parse_args()
    if args.reference is not None:
        side_by_side_main(args)
        return

    model = build_model(args.precision, args.device)
    device = model.device
    precision = "bf16" if model.compute_dtype() == torch.bfloat16 else "fp32"
    views_grid, sizes, steps_grid = (
        ([1, 2, 4], [252], [8, 12]) if args.quick else ([1, 2, 4, 8, 16], [252, 504], [8, 12, 16])
    )
    lines = [f"Machine: {machine()}. Date: {datetime.date.today()}.", ""]

    lines += [f"### End-to-end request ({device.type}, {precision})", ""]
    lines += [
        "| views | longest side | H×W | K | decode s | preprocess s | model s | scene s "
        "| total s | scene share | peak mem GiB | points | n |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for views in views_grid:
            for size in sizes:
                for steps in steps_grid:
                    r = median_request(model, views, size, steps, args.repeats, Path(tmp))
                    t = r["times"]
                    row = (
                        f"| {views} | {size} | {r['hw'][0]}×{r['hw'][1]} | {steps} | {t['decode']:.2f} "
                        f"| {t['preprocess']:.2f} | {t['model']:.2f} | "
                        f"{t['scene']:.2f} | {t['total']:.2f} | {100 * t['scene'] / t['total']:.1f} % "
                        f"| {r['memory']:.2f} | {r['points']:,} | {r['n']} |"
                    )
                    print(row, flush=True)
                    lines.append(row)

    if device.type == "cuda":
        lines += [
            "",
            "### GPU: model only, 504 px (378×504), decoding in chunks of 16 views",
            "",
            "| views | K | seconds | peak CUDA GiB |",
            "|---|---|---|---|",
        ]
        gpu = build_model(args.precision, args.device, chunk=16)
        for views in (1, 8, 32, 64, 100, 200):
            for steps in (8, 12, 16):
                with PeakMemory(device) as memory:
                    seconds = model_only(gpu, views, 378, 504, steps, 1 if views > 32 else 3)
                row = f"| {views} | {steps} | {seconds:.2f} | {memory.gib:.1f} |"
                print(row, flush=True)
                lines.append(row)

    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.out:
        write_tables(args.out, text)


def request_split(model: DVLT, views: int, size: int, steps: int, workdir: Path) -> dict[str, float]:
    """Seconds of each part of one Space request: decode, preprocess, model, package, GLB, gallery, npz."""
    times = {}
    start = time.perf_counter()
    frames = read_video(CLIP, num_frames=views)
    times["decode"] = time.perf_counter() - start
    rec = reconstruct(model, frames, steps=steps, img_size=size)
    times.update({key: rec.seconds[key] for key in ("preprocess", "model", "package")})
    for name, work in (
        ("GLB", lambda: write_glb(rec, workdir / "scene.glb", SCENE)),
        ("gallery", lambda: gallery(rec)),
        ("npz", lambda: rec.to_npz(workdir / "predictions.npz")),
    ):
        start = time.perf_counter()
        work()
        times[name] = time.perf_counter() - start
    return times


def split_table(precision: str, device: str, views: int, size: int, steps: int) -> list[str]:
    """Markdown: the end-to-end split of a request (second of two runs) and the share around the model."""
    model = build_model(precision, device)
    with tempfile.TemporaryDirectory() as tmp:
        request_split(model, views, size, steps, Path(tmp))  # warm-up
        times = request_split(model, views, size, steps, Path(tmp))
    around = sum(value for key, value in times.items() if key != "model")
    dtype = str(model.compute_dtype()).removeprefix("torch.")
    lines = [
        f"End-to-end request, {views} views, longest side {size}, K={steps}, precision {precision} ({dtype}):",
        "",
        "| " + " | ".join(f"{key} s" for key in times) + " | around the model / model |",
        "|" + "---|" * (len(times) + 1),
        "| " + " | ".join(f"{value:.2f}" for value in times.values()) + f" | {100 * around / times['model']:.1f} % |",
    ]
    for line in lines:
        print(line, flush=True)
    return lines


def side_by_side_main(args: argparse.Namespace) -> None:
    """Time the upstream reference against ours, alternating processes, and print / save the table."""
    from side_by_side import (
        HEADER,
        gemm_ceilings,
        isa_rows,
        measure,
        parse_configs,
        programs,
        table_rows,
        torch_version,
        write_section,
    )

    if not args.reference_script.is_file():
        raise SystemExit(f"timing script not found: {args.reference_script} (give --reference-script)")
    device = "cpu" if args.device == "auto" else args.device
    listed = programs(
        args.reference,
        args.reference_python,
        args.reference_script,
        args.precisions.split(","),
        device,
        args.upstream_bf16,
    )
    isas = isa_rows(args.isa.split(",")) if device == "cpu" else ["native"]
    header = (
        f"Machine: {cpu_description()}; torch {torch.__version__} (ours), "
        f"{torch_version(args.reference_python)} (reference). Date: {datetime.date.today()}. Device: {device}."
    )
    print(header, flush=True)
    rows = []
    ceilings = {}
    for isa in isas:
        ceilings[isa] = gemm_ceilings(isa) if device == "cpu" else {}
        print(f"  [{isa}] OpenVINO GEMM ceiling (GFLOP/s): {ceilings[isa]}", flush=True)
        for config in parse_configs(args.configs):
            rows += table_rows(config, isa, measure(config, isa, listed, args.pairs, args.runs), ceilings[isa])
    measured = "; ".join(
        f"{isa}: " + ", ".join(f"{name} {rate:.0f}" for name, rate in found.items()) for isa, found in ceilings.items()
    )
    lines = [header, "", *HEADER, *rows, ""]
    if measured:
        lines += [f"GEMM ceiling (`bench/gemm_ceiling.py`, GFLOP/s, measured before each row): {measured}.", ""]
    if args.split_views > 0:
        lines += split_table("auto", device, args.split_views, 504, 12) + [""]
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        write_section(args.out, text)


def write_tables(path: Path, tables: str) -> None:
    """Put the tables between the bench markers of `path` (keeping the prose around them), or write them alone."""
    if replace_marked(path, "bench", tables):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tables)


if __name__ == "__main__":
    main()

"""Time a whole DVLT request and its parts; print (and optionally save) markdown tables.

    python bench/benchmark.py                       # CPU grid + reference rows (~8 min on 2 cores)
    python bench/benchmark.py --quick               # a few configurations
    python bench/benchmark.py --out docs/performance.md   # replaces the tables between the bench markers

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "golden"))

from synthetic_weights import synthetic_state_dict  # noqa: E402

from dvlt import DVLT  # noqa: E402
from dvlt.export import write_glb  # noqa: E402
from dvlt.inputs import read_video  # noqa: E402
from dvlt.pipeline import reconstruct  # noqa: E402
from dvlt.runtime import cpu_flags  # noqa: E402
from dvlt.scene import SceneOptions  # noqa: E402
from dvlt.visual import gallery  # noqa: E402

CLIP = ROOT / "examples" / "box.mp4"
# Upstream implementation on this project's 2-core CPU, float32, model only, median (issue #5).
REFERENCE = {(2, 168, 224, 12): 1.35, (4, 378, 504, 12): 18.7}
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
        stats = write_glb(rec, workdir / "scene.glb", SceneOptions())
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
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            name = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0))
    native = (
        "AMX-BF16"
        if "amx_bf16" in cpu_flags()
        else ("AVX512-BF16" if "avx512_bf16" in cpu_flags() else "no native bf16")
    )
    text = f"{name}, {cores} cores ({native}), {os.sysconf('SC_PHYS_PAGES') * PAGE / 2**30:.0f} GiB RAM"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name()}"
    return text + f"; torch {torch.__version__}, Python {platform.python_version()}"


def build_model(precision: str, device: str, chunk: int | None = None) -> DVLT:
    model = DVLT(precision=precision, decode_chunk_views=chunk)
    model.load_state_dict(synthetic_state_dict())
    return model.setup_test(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--precision", default="auto", help="precision of the request grid: auto, fp32 or bf16")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per configuration (1 when a run takes > 20 s)")
    parser.add_argument("--quick", action="store_true", help="a small grid, for a smoke test")
    parser.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args()

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

    if device.type == "cpu":
        lines += [
            "",
            "### Model only vs the reference implementation (same CPU, median of 3)",
            "",
            "| views | H×W | K | reference fp32 s | ours fp32 s | ours bf16 s |",
            "|---|---|---|---|---|---|",
        ]
        fp32, bf16 = build_model("fp32", "cpu"), build_model("bf16", "cpu")
        for (views, height, width, steps), reference in REFERENCE.items():
            row = (
                f"| {views} | {height}×{width} | {steps} | {reference:.2f} "
                f"| {model_only(fp32, views, height, width, steps, 3):.2f} | "
                f"{model_only(bf16, views, height, width, steps, 3):.2f} |"
            )
            print(row, flush=True)
            lines.append(row)
    else:
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


def write_tables(path: Path, tables: str) -> None:
    """Put the tables between the bench markers of `path` (keeping the prose around them), or write them alone."""
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    current = path.read_text() if path.exists() else ""
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        tables = head + begin + "\n" + tables + end + rest.split(end, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tables)


if __name__ == "__main__":
    main()

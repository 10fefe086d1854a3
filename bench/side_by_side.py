"""Time the upstream reference and this project side by side, alternating separate processes (A B A B).

Used by `bench/benchmark.py --reference UPSTREAM_SRC`. Each program runs in its own process with the
same arguments (views, longest side, K) and one untimed warm-up: the reference through the shared
timing script in its own virtual environment, ours through `bench/run_ours.py`. Per configuration the
table shows each program's median over the rounds, the median of the per-round ratios (reference / ours,
so > 1 means we are faster), the ratio of each program's fastest run (robust to bursts of load on a
shared machine, which only ever slow a run down), and each process's peak resident memory (the
child's `ru_maxrss`).
Emulated instruction sets limit oneDNN (and MKL / ATen's vector kernels for AVX2) in both programs.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from markers import replace_marked  # noqa: E402  (this folder: a script's own, or on the path of who imports it)

from dvlt.cpu import bf16_rule, cpu_flags, peak_flops  # noqa: E402  (torch-free)
from dvlt.estimate import network_flops  # noqa: E402  (torch-free)

RUN_OURS = ROOT / "bench" / "run_ours.py"
GEMM_CEILING = ROOT / "bench" / "gemm_ceiling.py"
UPSTREAM_BF16 = ROOT / "bench" / "upstream_bf16.py"
MEDIAN = re.compile(r"median ([0-9.]+)s")
BEGIN, END = "<!-- side-by-side:begin -->", "<!-- side-by-side:end -->"

# Environment that makes a CPU behave like a smaller one, for both programs.
ISA_ENV = {
    "native": {},
    "AVX512_CORE_BF16": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"},
    "AVX512_CORE": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
}


@dataclass(frozen=True)
class Config:
    """One measured configuration: views x longest side x K."""

    views: int
    size: int
    steps: int

    @property
    def frame(self) -> tuple[int, int]:
        """(H, W) of the 4:3 landscape frames both scripts feed to the network."""
        return (self.size * 3 // 4) // 14 * 14, self.size // 14 * 14

    @property
    def args(self) -> list[str]:
        return ["--views", str(self.views), "--size", str(self.size), "--steps", str(self.steps)]


@dataclass
class Program:
    """A command line timed in its own process; collects (seconds, peak GiB) per round."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)


def parse_configs(text: str) -> list[Config]:
    """'4x504x12,2x504x12' -> configurations (views x longest side x K)."""
    configs = []
    for item in text.split(","):
        views, size, steps = (int(part) for part in item.lower().split("x"))
        configs.append(Config(views, size, steps))
    return configs


def isa_rows(requested: list[str]) -> list[str]:
    """The requested instruction-set rows that differ from this CPU's native one."""
    flags = cpu_flags("native")
    rows = []
    for isa in requested:
        if isa == "AVX512_CORE_BF16" and "amx_bf16" not in flags:
            continue  # without AMX this is what the CPU does natively
        if isa == "AVX2" and "avx512f" not in flags:
            continue
        if isa == "AVX512_CORE" and not flags & {"avx512_vnni", "avx512_bf16", "amx_bf16"}:
            continue
        rows.append(isa)
    return rows


def torch_version(python: str) -> str:
    """torch.__version__ of an interpreter."""
    done = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command in a new process; (median seconds it printed, its peak resident memory in GiB)."""
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    found = MEDIAN.findall(text)
    if process.returncode != 0 or not found:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{text[-2000:]}")
    return float(found[-1]), usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def programs(
    reference: Path, reference_python: str, script: Path, ours: list[str], device: str, upstream_bf16: bool = False
) -> list:
    """The reference in float32 first (what every ratio is against), optionally its bf16 autocast, then ours.

    Each of `ours` is 'PRECISION' or 'BACKEND:PRECISION' (backend auto, openvino or torch; precision auto, fp32,
    bf16 or int8), optionally '@PARTS' for the OpenVINO parts computed in bf16 ('openvino:bf16@loop').
    """
    source = reference / "src" if (reference / "src" / "dvlt").is_dir() else reference
    upstream = [str(script), "--src", str(source), "--device", device]
    listed = [Program("upstream fp32", [reference_python, *upstream])]
    if upstream_bf16:
        listed.append(Program("upstream bf16 autocast", [reference_python, str(UPSTREAM_BF16), *upstream]))
    for spec in ours:
        spec_only, _, parts = spec.partition("@")
        backend, _, precision = spec_only.rpartition(":")
        command = [sys.executable, str(RUN_OURS), "--precision", precision, "--backend", backend or "auto"]
        env = {"DVLT_OPENVINO_BF16_PARTS": parts.replace("+", ",")} if parts else {}
        listed.append(Program(f"ours {spec}", [*command, "--device", device], env))
    return listed


def measure(config: Config, isa: str, listed: list[Program], pairs: int, runs: int) -> list[Program]:
    """Round-robin over the programs `pairs` times (reference, ours, reference, ours, ...)."""
    env = {**os.environ, **ISA_ENV[isa]}
    fresh = [Program(p.name, p.command, p.env) for p in listed]
    for round_index in range(pairs):
        for program in fresh:
            seconds, peak = run_once([*program.command, *config.args, "--runs", str(runs)], {**env, **program.env})
            program.seconds.append(seconds)
            program.peaks.append(peak)
            print(
                f"  [{isa} {config.views}x{config.frame[0]}x{config.frame[1]} K={config.steps}] round "
                f"{round_index + 1}/{pairs} {program.name}: {seconds:.2f} s, peak {peak:.2f} GiB",
                flush=True,
            )
    return fresh


def gemm_ceilings(isa: str) -> dict[str, float]:
    """{'fp32': GFLOP/s, 'bf16': GFLOP/s}: OpenVINO's fastest matrix product on this CPU under the row's ISA limit."""
    done = subprocess.run(
        [sys.executable, str(GEMM_CEILING)], capture_output=True, text=True, env={**os.environ, **ISA_ENV[isa]}
    )
    words = done.stdout.split()
    return {words[i]: float(words[i + 1]) for i in range(0, len(words) - 1, 2)}


def roofline(config: Config, isa: str, name: str, seconds: float, ceilings: dict[str, float] | None = None) -> str:
    """'649 GFLOP/s; 98 % of nominal bf16 peak, 88 % of bf16 GEMM': achieved rate (dvlt/estimate.py's FLOPs)
    against this CPU's nominal peak and against the matrix-product rate measured in the same run."""
    rate = network_flops(config.views, *config.frame, config.steps) / seconds
    precision = "bf16" if "bf16" in name else "fp32"
    if name.endswith("auto"):  # what `auto` picks on the (emulated) CPU of this row
        precision = "bf16" if bf16_rule(cpu_flags(isa)).bf16 else "fp32"
    shares = []
    peak = peak_flops(precision, isa)
    if peak:
        shares.append(f"{100 * rate / peak:.0f} % of nominal {precision} peak")
    if (ceilings or {}).get(precision):
        shares.append(f"{100 * rate / 1e9 / ceilings[precision]:.0f} % of {precision} GEMM")
    return f"{rate / 1e9:.0f} GFLOP/s" + (f"; {', '.join(shares)}" if shares else "")


def table_rows(
    config: Config, isa: str, measured: list[Program], ceilings: dict[str, float] | None = None
) -> list[str]:
    """Markdown rows: one per program after the float32 reference, each against it in the same rounds."""
    reference = measured[0]
    rows = []
    for ours in measured:
        achieved = roofline(config, isa, ours.name, min(ours.seconds), ceilings)
        ratios = [r / o for r, o in zip(reference.seconds, ours.seconds)]
        rows.append(
            f"| {isa} | {config.views} | {config.frame[0]}×{config.frame[1]} | {config.steps} "
            f"| {ours.name} | {statistics.median(ours.seconds):.2f} | **{statistics.median(ratios):.2f}×** "
            f"({min(ratios):.2f}–{max(ratios):.2f}) | {min(reference.seconds) / min(ours.seconds):.2f}× "
            f"| {achieved} | {max(ours.peaks):.2f} | {len(ratios)} |"
        )
    return rows


HEADER = [
    "| ISA limit | views | H×W | K | program | s (median) | speed-up vs upstream fp32: median of rounds (min–max) "
    "| speed-up of the fastest runs | achieved (fastest run) | peak GiB | rounds |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def write_section(path: Path, text: str) -> None:
    """Replace what lies between the side-by-side markers of `path`, or append a marked section."""
    if replace_marked(path, "side-by-side", text):
        return
    current = path.read_text() if path.exists() else ""
    current = current.rstrip("\n") + "\n\n## Side by side with the upstream reference\n\n" + BEGIN + "\n"
    path.write_text(current + text + END + "\n")

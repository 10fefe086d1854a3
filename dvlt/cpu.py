"""What this CPU is and whether bf16 pays off on it: read from /proc/cpuinfo, no torch, never a timing."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass


def _cpuinfo_field(name: str) -> str | None:
    """The first value of `name` in /proc/cpuinfo (None where there is no /proc/cpuinfo or no such field)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


# What an instruction-set limit (oneDNN's ONEDNN_MAX_CPU_ISA, which OpenVINO honours too) takes away.
ISA_LIMITS = {
    "AVX2": ("avx512", "amx"),
    "AVX512_CORE": ("avx512_bf16", "avx512_vnni", "amx"),
    "AVX512_CORE_VNNI": ("avx512_bf16", "amx"),
    "AVX512_CORE_BF16": ("amx",),
}


def cpu_flags(isa: str | None = None) -> set[str]:
    """CPU feature flags (empty where unavailable), less what the ISA limit (`isa`, else $ONEDNN_MAX_CPU_ISA) hides,
    so that 'auto' under an emulated smaller CPU picks what that CPU would."""
    flags = set((_cpuinfo_field("flags") or "").split())
    limit = (isa if isa is not None else os.environ.get("ONEDNN_MAX_CPU_ISA", "")).upper()
    hidden = ISA_LIMITS.get(limit, ())
    return {flag for flag in flags if not flag.startswith(hidden)} if hidden else flags


def cpu_family() -> int | None:
    """The CPU family number of /proc/cpuinfo (AMD: 25 = Zen 3/4, 26 = Zen 5), or None where unavailable."""
    try:
        return int(_cpuinfo_field("cpu family") or "")
    except ValueError:
        return None


def fp32_flops_per_cycle(flags: set[str], vendor: str, family: int | None) -> int:
    """fp32 FLOP per cycle per core of the vector units: two FMA pipes of the widest datapath. AVX-512 runs on
    512-bit pipes on Intel servers and AMD Zen 5 (family 26; its mobile parts split them, not told apart here),
    on 256-bit halves on Zen 4."""
    if "avx512f" in flags:
        return 32 if vendor == "AuthenticAMD" and (family or 0) < 26 else 64
    return 32 if "avx2" in flags else 16


def peak_flops(precision: str, isa: str | None = None) -> float | None:
    """Nominal peak FLOP/s of this CPU's cores in fp32 or bf16: cores x /proc/cpuinfo's clock x FLOP per cycle
    (fp32: `fp32_flops_per_cycle`; AVX512-BF16 dot products: twice that; AMX: 1024 bf16). Turbo clocks run
    above /proc/cpuinfo's figure, so a measured rate may pass it. None where the clock is unknown."""
    try:
        mhz = float(_cpuinfo_field("cpu MHz") or 0)
    except ValueError:
        mhz = 0.0
    if not mhz:
        return None
    flags = cpu_flags(isa)
    per_cycle = fp32 = fp32_flops_per_cycle(flags, cpu_vendor(), cpu_family())
    if precision == "bf16":
        per_cycle = 1024 if "amx_bf16" in flags else 2 * fp32 if "avx512_bf16" in flags else fp32
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores * mhz * 1e6 * per_cycle


def cpu_vendor() -> str:
    """'GenuineIntel', 'AuthenticAMD', ... ('' where unavailable)."""
    return _cpuinfo_field("vendor_id") or ""


def cpu_model_name() -> str:
    """The CPU's model name (or the platform's processor string)."""
    return _cpuinfo_field("model name") or platform.processor() or "unknown CPU"


def cpu_description() -> str:
    """'AMD EPYC (family 26), 2 cores; AMX no, AVX512-BF16 yes, ...': for benchmark headers (the family tells
    AMD generations apart where the model name does not)."""
    flags = cpu_flags()
    marks = {"AMX": "amx_bf16", "AVX512-BF16": "avx512_bf16", "AVX512-VNNI": "avx512_vnni", "AVX2": "avx2"}
    listed = ", ".join(f"{label} {'yes' if flag in flags else 'no'}" for label, flag in marks.items())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    family = f" (family {cpu_family()})" if cpu_vendor() == "AuthenticAMD" and cpu_family() else ""
    return f"{cpu_model_name()}{family}, {cores} cores; {listed}"


@dataclass(frozen=True)
class Bf16Rule:
    """The CPU precision rule's verdict: bf16 or not, and the short reason shown to users."""

    bf16: bool
    reason: str


def bf16_rule(flags: set[str] | None = None, vendor: str | None = None) -> Bf16Rule:
    """bf16 where this model measurably runs faster in it, from the CPU's flags and vendor (PyTorch and OpenVINO).

    Measured with alternating runs (docs/performance.md, "Precision"), 2-4 views at 378x504, K=12:
    - AMX tiles (Intel Sapphire Rapids and later): bf16 ~2.5x faster than fp32 -> bf16.
    - AMD with AVX512-BF16 (Zen 4 and later): bf16 1.4-1.5x faster -> bf16.
    - Intel with AVX512-BF16 but no AMX: bf16 is slower (PyTorch 11.8 s vs 6.9 s; OpenVINO, emulated on an
      AMX Xeon, 7.9 s vs 5.1 s for 2 views: its 512-bit bf16 dot product runs on one port, FMA on two) -> fp32.
    - Anything else has no bf16 arithmetic (emulated AVX2: bf16 0.27x) -> fp32.
    """
    flags = cpu_flags() if flags is None else flags
    vendor = cpu_vendor() if vendor is None else vendor
    if "amx_bf16" in flags:
        return Bf16Rule(True, "CPU has AMX")
    if "avx512_bf16" in flags and vendor == "AuthenticAMD":
        return Bf16Rule(True, "AMD CPU with AVX512-BF16")
    if "avx512_bf16" in flags:
        return Bf16Rule(False, "AVX512-BF16 without AMX is faster in fp32")
    return Bf16Rule(False, "no bf16 units on this CPU")

"""Where and in which precision the model runs: device choice, CPU bf16 detection, threads."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext
from typing import Any

import torch

from .cpu import bf16_rule, cpu_model_name

PRECISIONS = ("auto", "fp32", "bf16")
BACKENDS = ("auto", "openvino", "torch")  # auto: OpenVINO on the CPU where it is installed, torch elsewhere


def resolve_device(device_or_accelerator: Any = None) -> torch.device:
    """A torch.device from None/'auto' (CUDA when present), a string, a device, or an accelerate Accelerator."""
    if device_or_accelerator is None or device_or_accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if hasattr(device_or_accelerator, "device") and not isinstance(device_or_accelerator, (str, torch.device)):
        return torch.device(device_or_accelerator.device)
    device = torch.device(device_or_accelerator)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA device is available; use device='cpu' or 'auto'.")
    return device


def requested_precision(precision: str | None = None) -> str:
    """The precision asked for: an explicit 'fp32'/'bf16' wins, else $DVLT_PRECISION, else 'auto'."""
    if precision in (None, "auto"):
        precision = os.environ.get("DVLT_PRECISION", "").strip().lower() or "auto"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def requested_backend(backend: str | None = None) -> str:
    """The CPU backend asked for: an explicit 'openvino'/'torch' wins, else $DVLT_BACKEND, else 'auto'."""
    if backend in (None, "auto"):
        backend = os.environ.get("DVLT_BACKEND", "").strip().lower() or "auto"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def precision_name(precision: str | None, device_type: str) -> str:
    """'fp32' or 'bf16': what `precision` (None/'auto'/'fp32'/'bf16') means on this kind of device.

    Pure rule, no CUDA query (ZeroGPU forbids touching CUDA outside its GPU worker): GPUs use bf16.
    """
    chosen = requested_precision(precision)
    if chosen != "auto":
        return chosen
    if device_type == "cuda":
        return "bf16"
    return "bf16" if bf16_rule().bf16 else "fp32"  # a rule on the CPU's flags and vendor, never a timing


def precision_reason(precision: str | None, device_type: str) -> str:
    """Why that precision: one short phrase for the UI and the CLI."""
    chosen = requested_precision(precision)
    if chosen != "auto":
        return "set by DVLT_PRECISION" if precision in (None, "auto") else "as requested"
    if device_type == "cuda":
        return "GPU"
    return bf16_rule().reason


def resolve_precision(precision: str | None, device: torch.device) -> torch.dtype:
    """The compute dtype for `precision` ('auto' | 'fp32' | 'bf16', None = 'auto') on `device`."""
    name = precision_name(precision, device.type)
    if name == "bf16" and device.type == "cuda" and requested_precision(precision) == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if name == "bf16" else torch.float32


def cpu_runtime_name(backend: str | None = None) -> str:
    """'OpenVINO' where the CPU path runs on it (installed and not switched off), else 'PyTorch'."""
    from .model.openvino_backend import openvino_version

    if requested_backend(backend) == "torch" or openvino_version() is None:
        return "PyTorch"
    return "OpenVINO"


def describe_runtime(device_type: str, precision: str | None = None, threads: int | None = None) -> str:
    """'CPU (AMD EPYC) · OpenVINO · bf16 (AMD CPU with AVX512-BF16) · 2 threads': where and how the model runs."""
    name, reason = precision_name(precision, device_type), precision_reason(precision, device_type)
    if device_type == "cuda":
        return f"GPU · {name} ({reason})"
    threads = threads or torch.get_num_threads()
    plural = "s" if threads != 1 else ""
    return f"CPU ({cpu_model_name()}) · {cpu_runtime_name()} · {name} ({reason}) · {threads} thread{plural}"


def autocast_for(device: torch.device, dtype: torch.dtype) -> ContextManager:
    """bf16 autocast on `device`, or nothing when the caller already opened one or wants float32."""
    if dtype == torch.float32 or torch.is_autocast_enabled(device.type):
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def use_all_cores() -> int:
    """Give torch every core this process may use (cgroup/affinity aware); returns the count."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)
    return cores


def prepare_for_inference(model: torch.nn.Module, device_or_accelerator: Any = None) -> torch.nn.Module:
    """Move `model` to its device ('auto', a device or an Accelerator) in eval mode, using every CPU core.

    The modules the model names in `channels_last_modules()` go channels-last first: oneDNN/cuDNN then keep
    the depth head in NHWC (~1.5x faster head on CPU), and on ZeroGPU only a plain `.to("cuda")` may happen
    outside the GPU worker.
    """
    device = resolve_device(device_or_accelerator)
    if device.type == "cpu":
        use_all_cores()
    for module in getattr(model, "channels_last_modules", lambda: [])():
        module.to(memory_format=torch.channels_last)
    model.to(device)
    return model.eval()

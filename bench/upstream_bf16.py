"""Run the shared upstream timing script with bf16 autocast on the CPU, as the model card's Quick Start does
(`Accelerator(mixed_precision="bf16")` plus autocast): the fidelity budget of every fast path is measured there.

    python bench/upstream_bf16.py SCRIPT --src UPSTREAM_SRC --views 4 --size 504 --steps 12

The script itself opens `torch.autocast("cpu", enabled=False)` on the CPU; this wrapper turns that one context
into a bf16 autocast and leaves everything else as the script has it.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import torch

_autocast = torch.autocast


def bf16_on_cpu(device_type: str, *args, **kwargs):
    """torch.autocast, but the CPU's context computes in bf16."""
    if device_type == "cpu":
        return _autocast("cpu", dtype=torch.bfloat16)
    return _autocast(device_type, *args, **kwargs)


if __name__ == "__main__":
    script, *arguments = sys.argv[1:]
    torch.autocast = bf16_on_cpu
    sys.argv = [script, *arguments]
    sys.path[0] = str(Path(script).resolve().parent)  # as `python SCRIPT` would, not this folder
    runpy.run_path(script, run_name="__main__")

"""The DVLT network in plain PyTorch (the config imports without torch; the network on first use)."""

from __future__ import annotations

import importlib
from typing import Any

from .config import DEFAULT_STEPS, VALIDATED_STEPS, DVLTConfig


def __getattr__(name: str) -> Any:
    """`DVLT` and `check_steps` load torch: import them only when asked for."""
    if name in ("DVLT", "check_steps"):
        value = getattr(importlib.import_module(".network", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dvlt.model' has no attribute {name!r}")


__all__ = ["DVLT", "DVLTConfig", "DEFAULT_STEPS", "VALIDATED_STEPS", "check_steps"]

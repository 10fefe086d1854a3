"""The DVLT network in plain PyTorch."""

from .config import DEFAULT_STEPS, VALIDATED_STEPS, DVLTConfig
from .network import DVLT, check_steps

__all__ = ["DVLT", "DVLTConfig", "DEFAULT_STEPS", "VALIDATED_STEPS", "check_steps"]

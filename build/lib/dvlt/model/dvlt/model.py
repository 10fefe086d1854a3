"""Model-card import path; the implementation lives in `dvlt.model.network`."""

from ..network import DVLT

__all__ = ["DVLT"]

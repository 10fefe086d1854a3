"""Model-card import path: `from dvlt.util.preprocess import load_sequence, preprocess_images`."""

from ..inputs import load_sequence
from ..preprocess import preprocess_images

__all__ = ["load_sequence", "preprocess_images"]

"""Choosing the reference view automatically: the most central view of the set, before any model run.

DVLT puts the world frame at view 0 and reconstructs best what that view sees.
The view whose content the others share the most (compared on small brightness
thumbnails, allowing for the shift between views) is the middle of a sweep or the
overview shot of a set of photos.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

THUMBNAIL = (48, 36)  # (width, height): enough for layout, blind to noise and small parallax
MAX_SHIFT = 0.35  # largest offset between two views tried, as a fraction of the thumbnail side
SHIFT_STEP = 2  # thumbnail pixels between tried offsets
MAX_COMPARED = 24  # longer sequences are judged on this many evenly spaced views (cost grows as views squared)


def thumbnails(frames: Sequence[Image.Image]) -> np.ndarray:
    """(S, h, w) float brightness thumbnails, slightly blurred so small parallax does not matter."""
    return np.stack([np.asarray(frame.convert("L").resize(THUMBNAIL, Image.BOX), dtype=np.float64) for frame in frames])


def _overlap_scores(small: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(S, S) normalised cross-correlation of view i with view j shifted by (dy, dx), times the overlap fraction."""
    _, height, width = small.shape
    a = small[:, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)]
    b = small[:, max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)]
    a = a.reshape(len(small), -1) - a.reshape(len(small), -1).mean(axis=1, keepdims=True)
    b = b.reshape(len(small), -1) - b.reshape(len(small), -1).mean(axis=1, keepdims=True)
    a /= np.linalg.norm(a, axis=1, keepdims=True) + 1e-9
    b /= np.linalg.norm(b, axis=1, keepdims=True) + 1e-9
    return (a @ b.T) * (a.shape[1] / (height * width))


def overlap_matrix(frames: Sequence[Image.Image]) -> np.ndarray:
    """(S, S): for each pair, the best shifted correlation times the shared area, about the fraction of
    one view's content that the other also shows."""
    small = thumbnails(frames)
    _, height, width = small.shape
    best = np.full((len(frames), len(frames)), -np.inf)
    reach_y, reach_x = int(MAX_SHIFT * height), int(MAX_SHIFT * width)
    for dy in range(-reach_y, reach_y + 1, SHIFT_STEP):
        for dx in range(-reach_x, reach_x + 1, SHIFT_STEP):
            np.maximum(best, _overlap_scores(small, dy, dx), out=best)
    return best


def most_central_view(frames: Sequence[Image.Image]) -> int:
    """Index of the view that shares the most content with all the others (0 for one or two views)."""
    if len(frames) <= 2:
        return 0
    candidates = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), MAX_COMPARED)).round().astype(int))
    overlap = overlap_matrix([frames[i] for i in candidates])
    np.fill_diagonal(overlap, 0.0)
    return int(candidates[np.argmax(overlap.sum(axis=1))])

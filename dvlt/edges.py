"""Flying pixels: depth-map pixels on a depth discontinuity, which un-project into streaks between surfaces.

A pixel is on an edge when the depth inside its 3x3 neighbourhood spans more than
`relative_tolerance` of its own depth. A surface seen at an angle changes depth
smoothly (a few tenths of a percent per pixel), so it stays; the jump from an
object to the background spans far more and goes.
"""

from __future__ import annotations

import numpy as np

EDGE_RELATIVE_TOLERANCE = 0.04  # 4 % of the depth within one pixel's neighbourhood


def _neighbourhood_extremes(depth: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel max and min of depth over the 3x3 neighbourhood (invalid pixels ignored); (S, H, W) each."""
    high = np.where(valid, depth, -np.inf)
    low = np.where(valid, depth, np.inf)
    padded_high = np.pad(high, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    padded_low = np.pad(low, ((0, 0), (1, 1), (1, 1)), constant_values=np.inf)
    height, width = depth.shape[1:]
    most, least = high.copy(), low.copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(most, padded_high[:, dy : dy + height, dx : dx + width], out=most)
            np.minimum(least, padded_low[:, dy : dy + height, dx : dx + width], out=least)
    return most, least


def depth_edges(
    depth: np.ndarray, valid: np.ndarray | None = None, relative_tolerance: float = EDGE_RELATIVE_TOLERANCE
) -> np.ndarray:
    """(S, H, W) bool: True where a pixel sits on a depth discontinuity (a flying pixel when un-projected)."""
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.ones(depth.shape, bool) if valid is None else np.asarray(valid, bool)
    valid = valid & np.isfinite(depth) & (depth > 0)
    most, least = _neighbourhood_extremes(depth, valid)
    with np.errstate(invalid="ignore"):
        spread = (most - least) / np.where(valid, depth, 1.0)
    return valid & (spread > relative_tolerance)

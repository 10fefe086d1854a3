"""Surface normals of chosen pixels from each view's grid of 3D points, oriented toward that view's camera.

For each pixel the tangent along a row and along a column is the smaller of the
forward and backward differences to usable neighbours, so a pixel on a
silhouette takes its tangents from its own surface instead of bridging the
depth jump to the background.
"""

from __future__ import annotations

import numpy as np

from .records import Reconstruction


def _tangent(rec: Reconstruction, usable: np.ndarray, view, row, col, step_row: int, step_col: int) -> np.ndarray:
    """(N, 3) difference to the nearer usable neighbour along one grid axis (NaN where neither is usable)."""
    _, height, width = rec.depth.shape
    centre = rec.points[view, row, col].astype(np.float64)
    best = np.full(centre.shape, np.nan)
    best_length = np.full(len(centre), np.inf)
    for sign in (1, -1):
        r, c = row + sign * step_row, col + sign * step_col
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        r, c = np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)
        difference = (rec.points[view, r, c].astype(np.float64) - centre) * sign
        length = np.linalg.norm(difference, axis=1)
        better = inside & usable[view, r, c] & (length < best_length) & (length > 0)
        best[better], best_length[better] = difference[better], length[better]
    return best


def point_normals(rec: Reconstruction, view: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """(N, 3) unit normals at canvas pixels (view, row, col), facing the camera that saw each pixel."""
    usable = rec.valid & (rec.depth > 0) & np.isfinite(rec.points).all(axis=-1)
    along_row = _tangent(rec, usable, view, row, col, 0, 1)
    along_col = _tangent(rec, usable, view, row, col, 1, 0)
    normals = np.cross(along_row, along_col)
    to_camera = rec.c2w[view, :, 3] - rec.points[view, row, col]
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    broken = ~np.isfinite(length[:, 0]) | (length[:, 0] < 1e-20)
    normals = np.where(broken[:, None], to_camera, normals / np.where(broken, 1.0, length[:, 0])[:, None])
    normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-20)
    facing_away = (normals * to_camera).sum(axis=1) < 0
    normals[facing_away] *= -1
    return normals.astype(np.float32)

"""Measuring a reconstruction and giving it a real scale, in plain numpy (no torch).

`point_at` reads the 3D point under a position in a view's own photo (pixel i spans
[i, i+1), so pixel centres sit at i + 0.5) by bilinear interpolation of the per-pixel
points; `distance` measures between two such positions; `scaled` multiplies every
length of a reconstruction by one factor, so a single known distance makes every
display and export metric.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .records import Reconstruction


class MeasureError(InputError):
    """A measurement that cannot be made: no such view, a position outside the photo, or no depth there."""


@dataclass(frozen=True)
class KnownDistance:
    """Two photo positions (view, x, y) and the real distance between their 3D points, in metres."""

    view_a: int
    xy_a: tuple[float, float]
    view_b: int
    xy_b: tuple[float, float]
    metres: float

    @classmethod
    def parse(cls, values: Sequence[str]) -> KnownDistance:
        """From the command line's `VA XA YA VB XB YB METRES`; a bad value raises MeasureError."""
        if len(values) != 7:
            raise MeasureError("a known distance needs 7 values: VA XA YA VB XB YB METRES")
        try:
            view_a, view_b = int(values[0]), int(values[3])
            xa, ya, xb, yb, metres = (float(values[i]) for i in (1, 2, 4, 5, 6))
        except ValueError:
            raise MeasureError(
                f"a known distance is VA XA YA VB XB YB METRES (views are whole numbers), got {' '.join(values)}"
            ) from None
        known = cls(view_a, (xa, ya), view_b, (xb, yb), metres)
        if not np.isfinite([xa, ya, xb, yb, metres]).all() or metres <= 0:
            raise MeasureError(f"the known distance must be a positive number of metres, got {values[6]}")
        return known


def point_at(rec: Reconstruction, view: int, xy: Sequence[float]) -> np.ndarray:
    """The (3,) world point under photo position (x, y) of `view`, bilinearly interpolated between the
    four nearest pixel centres that hold a point."""
    if not 0 <= view < rec.num_views:
        raise MeasureError(f"view {view} does not exist; this scene has views 0 to {rec.num_views - 1}.")
    x, y = float(xy[0]), float(xy[1])
    photo_h, photo_w = rec.transforms[view].original_size
    if not (np.isfinite([x, y]).all() and 0 <= x <= photo_w and 0 <= y <= photo_h):
        raise MeasureError(f"({x:g}, {y:g}) is outside view {view}'s {photo_w}x{photo_h} photo.")
    transform = rec.transforms[view]
    canvas_x, canvas_y = transform.original_to_canvas(np.array([x, y]))
    (top, left), (valid_h, valid_w) = transform.pad, transform.valid_size
    if not (left <= canvas_x <= left + valid_w and top <= canvas_y <= top + valid_h):
        raise MeasureError(
            f"({x:g}, {y:g}) of view {view} was cropped off before the model saw it; pick a point nearer the centre."
        )
    height, width = rec.size
    u = float(np.clip(canvas_x - 0.5, left, left + valid_w - 1))  # pixel-index units: pixel i's centre is at u = i
    v = float(np.clip(canvas_y - 0.5, top, top + valid_h - 1))
    col, row = min(int(u), width - 2) if width > 1 else 0, min(int(v), height - 2) if height > 1 else 0
    fx, fy = u - col, v - row
    total, weights = np.zeros(3), 0.0
    for dr, dc, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        r, c = min(row + dr, height - 1), min(col + dc, width - 1)
        point = rec.points[view, r, c].astype(np.float64)
        if weight > 0 and rec.valid[view, r, c] and rec.depth[view, r, c] > 0 and np.isfinite(point).all():
            total += weight * point
            weights += weight
    if weights < 1e-9:
        raise MeasureError(f"view {view} has no 3D point at ({x:g}, {y:g}) (no depth there).")
    return total / weights


def distance(rec: Reconstruction, view_a: int, xy_a: Sequence[float], view_b: int, xy_b: Sequence[float]) -> float:
    """Distance between the 3D points under two photo positions, in the reconstruction's unit."""
    return float(np.linalg.norm(point_at(rec, view_a, xy_a) - point_at(rec, view_b, xy_b)))


def scaled(rec: Reconstruction, factor: float, note: str = "") -> Reconstruction:
    """`rec` with every length (depth, points, camera centres) multiplied by `factor`; `note` says why."""
    if not np.isfinite(factor) or factor <= 0:
        raise MeasureError(f"a scale factor must be a positive number, got {factor}")
    c2w = rec.c2w.copy()
    c2w[:, :, 3] *= factor
    return dataclasses.replace(
        rec,
        depth=(rec.depth * factor).astype(np.float32),
        points=(rec.points * factor).astype(np.float32),
        points_direct=None if rec.points_direct is None else (rec.points_direct * factor).astype(np.float32),
        c2w=c2w,
        scale_note=note or rec.scale_note,
    )


def with_known_distance(rec: Reconstruction, known: KnownDistance) -> Reconstruction:
    """`rec` scaled so the measured pair is `known.metres` apart: every length is then in metres."""
    measured = distance(rec, known.view_a, known.xy_a, known.view_b, known.xy_b)
    if measured <= 1e-12:
        raise MeasureError("the two positions fall on the same 3D point; pick two points apart from each other.")
    return scaled(rec, known.metres / measured, f"scale set from a known distance of {known.metres:.2f} m")

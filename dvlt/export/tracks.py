"""Multi-view tracks for the selected 3D points: every view that sees a point observes it.

A point is observed by its own view at the centre of the pixel it came from, and
by every other view where it projects inside the region the model saw and its
camera-frame z agrees with that view's predicted depth at the pixel it lands in
to within DEPTH_TOLERANCE (relative), and no pixel centre around it (the 2x2
block it lies between) is nearer than the point by more than that tolerance: at
an occluder's silhouette the pixel a point lands in can show the surface behind
while the occluder covers the point's exact position. The tolerance separates "the same surface"
from "an occluder in front": on one surface, neighbouring views' feed-forward
depths agree to about 1-2 %, and reading the depth at the nearest pixel adds up to
half a pixel of slope (about 0.5 % at 60 deg tilt, f = 300 px); an occluding object
is usually tens of percent closer. 5 % keeps the first and rejects the second.
Observations are in each photo's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..records import Reconstruction
from ..scene import PointSet
from .images import ExportView

DEPTH_TOLERANCE = 0.05


@dataclass
class Tracks:
    """Observations of N points, sorted by view then by point: (point, view, photo x y)."""

    point: np.ndarray  # (M,) int64 index into the PointSet
    view: np.ndarray  # (M,) int32
    xy: np.ndarray  # (M, 2) float64, photo pixels of `view`

    def lengths(self, count: int) -> np.ndarray:
        """(count,) number of views observing each point."""
        return np.bincount(self.point, minlength=count)

    def in_view(self, view: int) -> np.ndarray:
        """Indices of the observations that belong to `view` (their order is the view's point list)."""
        return np.flatnonzero(self.view == view)


def project(xyz: np.ndarray, intrinsics: np.ndarray, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) pixel positions and (N,) camera z of world points in an OpenCV pinhole camera."""
    camera = (np.asarray(xyz, dtype=np.float64) - c2w[:3, 3]) @ c2w[:3, :3]
    z = camera[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = camera[:, :2] / z[:, None] * np.diag(intrinsics)[:2] + intrinsics[:2, 2]
    return xy, z


def build_tracks(
    rec: Reconstruction, points: PointSet, views: list[ExportView], tolerance: float = DEPTH_TOLERANCE
) -> Tracks:
    """Observations of `points` in every view that sees them (see the module docstring)."""
    point_ids, view_ids, positions = [], [], []
    xyz = points.xyz.astype(np.float64)
    for index, view in enumerate(views):
        canvas, z = project(xyz, rec.intrinsics[index], rec.c2w[index])
        (top, left), (height, width) = view_region(rec, index)
        col, row = np.floor(canvas[:, 0]), np.floor(canvas[:, 1])
        inside = (z > 0) & (col >= left) & (col < left + width) & (row >= top) & (row < top + height)
        col = np.where(inside, col, 0).astype(np.int64)
        row = np.where(inside, row, 0).astype(np.int64)
        seen_depth = rec.depth[index, row, col]
        agrees = inside & rec.valid[index, row, col] & (np.abs(z - seen_depth) <= tolerance * seen_depth)
        agrees &= ~occluded_nearby(rec, index, canvas, z, tolerance)
        own = points.view == index
        canvas[own] = points.pixel[own] + 0.5  # the measurement: the pixel the point came from
        chosen = np.flatnonzero(agrees | own)
        point_ids.append(chosen)
        view_ids.append(np.full(len(chosen), index, np.int32))
        positions.append(view.transform.canvas_to_original(canvas[chosen]))
    return Tracks(np.concatenate(point_ids), np.concatenate(view_ids), np.concatenate(positions))


def occluded_nearby(rec: Reconstruction, index: int, canvas: np.ndarray, z: np.ndarray, tolerance: float) -> np.ndarray:
    """(N,) true where a valid pixel centre of the 2x2 block around each canvas position is nearer than the
    point's camera z by more than `tolerance` (relative): something may cover the point there."""
    _, height, width = rec.depth.shape
    finite = np.nan_to_num(canvas, nan=-1.0, posinf=-1.0, neginf=-1.0)
    left, top = np.floor(finite[:, 0] - 0.5).astype(np.int64), np.floor(finite[:, 1] - 0.5).astype(np.int64)
    covered = np.zeros(len(z), bool)
    for dy in (0, 1):
        for dx in (0, 1):
            col, row = np.clip(left + dx, 0, width - 1), np.clip(top + dy, 0, height - 1)
            depth = rec.depth[index, row, col]
            covered |= rec.valid[index, row, col] & (depth > 0) & (z - depth > tolerance * depth)
    return covered


def view_region(rec: Reconstruction, index: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, left), (height, width)) of the real pixels of view `index` on the canvas."""
    transform = rec.transforms[index]
    return transform.pad, transform.valid_size


def reprojection_errors(points: PointSet, tracks: Tracks, views: list[ExportView]) -> tuple[np.ndarray, np.ndarray]:
    """(M,) pixel error of each observation and (N,) mean error of each point over its track."""
    errors = np.zeros(len(tracks.point))
    for index, view in enumerate(views):
        mine = tracks.in_view(index)
        xy, _ = project(points.xyz[tracks.point[mine]], view.intrinsics, view.c2w)
        errors[mine] = np.linalg.norm(xy - tracks.xy[mine], axis=1)
    per_point = np.bincount(tracks.point, errors, minlength=len(points)) / np.maximum(tracks.lengths(len(points)), 1)
    return errors, per_point

"""Changing the camera model of an export: one shared camera, centred principal points.

Both change each view's intrinsics in its photo's pixels, then re-fit that view's
pose (Gauss-Newton on the reprojection error, numpy only) so the view's own 3D
points still land on the pixels they came from. The point cloud is unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..records import Reconstruction
from .images import ExportView, export_views

REFIT_SAMPLES = 4000  # pixels per view used to re-fit a pose
REFIT_ITERATIONS = 15
Log = Callable[[str], None]


def skew(v: np.ndarray) -> np.ndarray:
    """(N, 3, 3) cross-product matrices of (N, 3) vectors."""
    out = np.zeros((len(v), 3, 3))
    out[:, 0, 1], out[:, 0, 2], out[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    return out - out.transpose(0, 2, 1)


def rotation_from_vector(w: np.ndarray) -> np.ndarray:
    """Rodrigues: the rotation matrix of an axis-angle vector (3,)."""
    angle = float(np.linalg.norm(w))
    if angle < 1e-15:
        return np.eye(3)
    k = skew((w / angle)[None])[0]
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def fit_pose(intrinsics: np.ndarray, c2w: np.ndarray, xyz: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, float]:
    """The OpenCV c2w (3, 4) near `c2w` that best projects world points `xyz` onto pixels `xy` through
    `intrinsics`, and its mean reprojection error in pixels."""
    R, t = c2w[:3, :3].T, -c2w[:3, :3].T @ c2w[:3, 3]  # world-to-camera
    fx, fy = intrinsics[0, 0], intrinsics[1, 1]
    for _ in range(REFIT_ITERATIONS):
        Y = xyz @ R.T + t
        z = Y[:, 2]
        residual = np.column_stack((fx * Y[:, 0] / z + intrinsics[0, 2], fy * Y[:, 1] / z + intrinsics[1, 2])) - xy
        d_pixel = np.zeros((len(Y), 2, 3))  # d(u, v) / dY
        d_pixel[:, 0, 0], d_pixel[:, 0, 2] = fx / z, -fx * Y[:, 0] / z**2
        d_pixel[:, 1, 1], d_pixel[:, 1, 2] = fy / z, -fy * Y[:, 1] / z**2
        jacobian = np.concatenate((d_pixel @ -skew(Y), d_pixel), axis=2).reshape(-1, 6)
        step = np.linalg.lstsq(jacobian, -residual.reshape(-1), rcond=None)[0]
        turn = rotation_from_vector(step[:3])
        R, t = turn @ R, turn @ t + step[3:]
        if np.abs(step).max() < 1e-12:
            break
    Y = xyz @ R.T + t
    projected = Y[:, :2] / Y[:, 2:] * [fx, fy] + intrinsics[:2, 2]
    error = float(np.linalg.norm(projected - xy, axis=1).mean())
    return np.column_stack((R.T, -R.T @ t)), error


def view_samples(rec: Reconstruction, index: int, view: ExportView) -> tuple[np.ndarray, np.ndarray]:
    """Up to REFIT_SAMPLES of view `index`'s 3D points and the photo pixels they came from (seeded)."""
    usable = rec.valid[index] & (rec.depth[index] > 0) & np.isfinite(rec.points[index]).all(axis=-1)
    rows, cols = np.nonzero(usable)
    if len(rows) > REFIT_SAMPLES:
        keep = np.random.default_rng(index).choice(len(rows), REFIT_SAMPLES, replace=False)
        rows, cols = rows[keep], cols[keep]
    xy = view.transform.canvas_to_original(np.column_stack((cols, rows)) + 0.5)
    return rec.points[index, rows, cols].astype(np.float64), xy


def with_photo_intrinsics(rec: Reconstruction, intrinsics: list[np.ndarray], log: Log, why: str) -> Reconstruction:
    """`rec` with new photo-pixel intrinsics per view and poses re-fitted to keep the cloud where it is."""
    views = export_views(rec)
    c2w, canvas_intrinsics, errors = rec.c2w.copy(), rec.intrinsics.copy(), []
    for index, view in enumerate(views):
        xyz, xy = view_samples(rec, index, view)
        if len(xyz) >= 6:
            c2w[index], error = fit_pose(intrinsics[index], rec.c2w[index], xyz, xy)
            errors.append(error)
        canvas_intrinsics[index] = view.transform.intrinsics_to_canvas(intrinsics[index])
    if errors:
        log(f"{why}: poses re-fitted, mean reprojection error {np.mean(errors):.3f} px (worst view {max(errors):.3f})")
    return dataclasses.replace(rec, c2w=c2w, intrinsics=canvas_intrinsics)


def share_camera(rec: Reconstruction, log: Log) -> Reconstruction:
    """One camera for all views (intrinsics averaged) when every photo has the same size."""
    views = export_views(rec)
    if len({view.size for view in views}) > 1:
        log("Shared camera: the photos differ in size, so each keeps its own camera.")
        return rec
    average = np.mean([view.intrinsics for view in views], axis=0)
    return with_photo_intrinsics(rec, [average] * len(views), log, "Shared camera")


def centre_principal_points(rec: Reconstruction, log: Log) -> Reconstruction:
    """Principal point of every view at its photo's centre (for trainers that assume it)."""
    intrinsics = []
    for view in export_views(rec):
        centred = view.intrinsics.copy()
        centred[0, 2], centred[1, 2] = view.size[0] / 2, view.size[1] / 2
        intrinsics.append(centred)
    return with_photo_intrinsics(rec, intrinsics, log, "Centred principal points")


def unproject(depth: np.ndarray, intrinsics: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """(S, H, W, 3) world points of z-depth maps at pixel centres (numpy twin of geometry.unproject_depth)."""
    _, height, width = depth.shape
    u, v = np.arange(width) + 0.5, np.arange(height) + 0.5
    per_pixel = intrinsics[:, None, None]  # (S, 1, 1, 3, 3)
    x = (u - per_pixel[..., 0, 2]) / per_pixel[..., 0, 0] * depth
    y = (v[:, None] - per_pixel[..., 1, 2]) / per_pixel[..., 1, 1] * depth
    camera = np.stack((x, y, depth), axis=-1)
    return (np.einsum("sij,shwj->shwi", c2w[:, :3, :3], camera) + c2w[:, None, None, :3, 3]).astype(np.float32)

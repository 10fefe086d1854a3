"""Bundle adjustment of the exported cameras with pycolmap (the optional `refine` extra).

The tracks of `tracks.py` place a point's observations in other views where the
predicted cameras project it, which carries no independent evidence. Here each
such observation is re-measured in the photo: the 7x7 patch around the pixel
the point came from is matched (normalised cross-correlation, +-SEARCH_RADIUS px,
parabolic sub-pixel peak) in the other view's image around the projection, and
kept only if the match is clear. pycolmap then refines the poses and points on
these tracks with intrinsics fixed; the result is moved back into the first
view's frame and scale, and the depth maps are un-projected through the refined
cameras. If pycolmap is missing, BA fails or the error does not drop, the
unrefined cameras are kept and the message says why.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..records import Reconstruction
from ..scene import PointSet, SceneOptions, select_points
from .colmap import MIN_TRACK_LENGTH, SparseModel, subset_points, write_binary
from .images import export_views
from .refit import unproject
from .tracks import Tracks, build_tracks, reprojection_errors

BA_MAX_POINTS = 6000  # points in the adjustment; poses need far fewer than the export's budget
PATCH_RADIUS = 3  # 7x7 patches
SEARCH_RADIUS = 5  # pixels on the model canvas (about 2 degrees at the usual focal lengths)
MIN_NCC = 0.8
MIN_PATCH_STD = 2.0  # grey levels: flat patches cannot be matched
CHUNK = 1024
Log = Callable[[str], None]


@dataclass(frozen=True)
class RefineReport:
    """What bundle adjustment did: mean reprojection error (px) before -> after, and why if it was skipped."""

    applied: bool
    message: str
    error_before: float = float("nan")
    error_after: float = float("nan")
    observations: int = 0
    points: int = 0


def bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample a (H, W) image at pixel-index positions (x, y) (clamped at the border)."""
    height, width = image.shape
    x, y = np.clip(x, 0, width - 1), np.clip(y, 0, height - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), width - 2), np.minimum(np.floor(y).astype(int), height - 2)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def normalised(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero-mean unit-norm patches along the last axis, and their standard deviations."""
    centred = patches - patches.mean(axis=-1, keepdims=True)
    std = centred.std(axis=-1)
    return centred / np.maximum(np.linalg.norm(centred, axis=-1, keepdims=True), 1e-9), std


def match_observations(rec: Reconstruction, points: PointSet, tracks: Tracks) -> tuple[np.ndarray, np.ndarray]:
    """Canvas (x, y) of each observation re-measured by patch matching, and whether it is trusted."""
    grey = rec.images.astype(np.float64) @ [0.299, 0.587, 0.114]
    offsets = np.arange(-PATCH_RADIUS, PATCH_RADIUS + 1)
    patch_dx, patch_dy = (a.reshape(-1) for a in np.meshgrid(offsets, offsets))
    shifts = np.arange(-SEARCH_RADIUS, SEARCH_RADIUS + 1)
    side = len(shifts)
    source_view = points.view[tracks.point]
    own = source_view == tracks.view
    canvas = np.zeros((len(tracks.point), 2))
    trusted = own.copy()
    canvas[own] = points.pixel[tracks.point[own]] + 0.5
    for view in range(rec.num_views):
        chosen = np.flatnonzero(~own & (tracks.view == view))
        transform = rec.transforms[view]
        for start in range(0, len(chosen), CHUNK):
            batch = chosen[start : start + CHUNK]
            source = points.pixel[tracks.point[batch]]  # (B, 2) col, row in the source view
            views = source_view[batch]
            reference = bilinear_many(grey, views, source[:, :1] + patch_dx, source[:, 1:] + patch_dy)
            reference, ref_std = normalised(reference)  # (B, P)
            centre = transform.original_to_canvas(tracks.xy[batch]) - 0.5  # pixel-index frame
            reach = np.arange(-SEARCH_RADIUS - PATCH_RADIUS, SEARCH_RADIUS + PATCH_RADIUS + 1)
            xs = np.broadcast_to(centre[:, None, :1] + reach[None, None, :], (len(batch), len(reach), len(reach)))
            ys = np.broadcast_to(centre[:, 1:, None] + reach[None, :, None], (len(batch), len(reach), len(reach)))
            window = bilinear(grey[view], xs, ys)  # every candidate shares the fractional offset: sample once
            candidates = sliding_window_view(window, (len(offsets), len(offsets)), axis=(1, 2))
            candidates, _ = normalised(candidates.reshape(len(batch), side * side, -1))  # (B, shifts, P)
            scores = np.einsum("bsp,bp->bs", candidates, reference)
            best = scores.argmax(axis=1)
            grid = scores.reshape(-1, side, side)
            by, bx = np.divmod(best, side)
            interior = (bx > 0) & (bx < side - 1) & (by > 0) & (by < side - 1)
            bxc, byc = np.clip(bx, 1, side - 2), np.clip(by, 1, side - 2)
            rows = np.arange(len(batch))
            sub_x = parabola_peak(grid[rows, byc, bxc - 1], grid[rows, byc, bxc], grid[rows, byc, bxc + 1])
            sub_y = parabola_peak(grid[rows, byc - 1, bxc], grid[rows, byc, bxc], grid[rows, byc + 1, bxc])
            found = centre + np.column_stack((shifts[bx] + sub_x, shifts[by] + sub_y)) + 0.5
            canvas[batch] = found
            trusted[batch] = interior & (scores[rows, best] >= MIN_NCC) & (ref_std >= MIN_PATCH_STD)
    return canvas, trusted


def bilinear_many(grey: np.ndarray, views: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer-position samples (B, P) of several views' grey images (clamped at the border)."""
    _, height, width = grey.shape
    return grey[views[:, None], np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)]


def parabola_peak(left: np.ndarray, middle: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Sub-sample offset in [-0.5, 0.5] of the peak of a parabola through three equally spaced scores."""
    curvature = left - 2 * middle + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    return np.clip(np.nan_to_num(offset), -0.5, 0.5)


def matched_model(rec: Reconstruction, options: SceneOptions) -> SparseModel:
    """A sparse model of up to BA_MAX_POINTS points whose tracks were re-measured in the images."""
    views = export_views(rec)
    points = select_points(rec, dataclasses.replace(options, max_points=min(options.max_points, BA_MAX_POINTS)))
    tracks = build_tracks(rec, points, views)
    canvas, trusted = match_observations(rec, points, tracks)
    xy = np.zeros_like(tracks.xy)
    for view in range(rec.num_views):
        mine = tracks.in_view(view)
        xy[mine] = views[view].transform.canvas_to_original(canvas[mine])
    measured = Tracks(tracks.point[trusted], tracks.view[trusted], xy[trusted])
    subset, matched = subset_points(points, measured, measured.lengths(len(points)) >= MIN_TRACK_LENGTH)
    _, errors = reprojection_errors(subset, matched, views)
    return SparseModel(views, subset, matched, errors)


def c2w_of(image) -> np.ndarray:
    """OpenCV camera-to-world (3, 4) of a pycolmap image."""
    w2c = np.vstack((image.cam_from_world().matrix(), [0, 0, 0, 1]))
    return np.linalg.inv(w2c)[:3]


def back_to_first_view(c2w: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Move refined cameras so view 0 is where it was and the spread of camera centres keeps its size."""
    to_world = np.vstack((original[0], [0, 0, 0, 1])) @ np.linalg.inv(np.vstack((c2w[0], [0, 0, 0, 1])))
    moved = np.einsum("ij,sjk->sik", to_world[:3, :3], c2w)
    moved[:, :, 3] += to_world[:3, 3]
    before = np.linalg.norm(original[:, :, 3] - original[0, :, 3], axis=1).sum()
    after = np.linalg.norm(moved[:, :, 3] - moved[0, :, 3], axis=1).sum()
    scale = before / after if after > 1e-12 else 1.0
    moved[:, :, 3] = moved[0, :, 3] + (moved[:, :, 3] - moved[0, :, 3]) * scale
    return moved


def bundle_adjust(model: SparseModel) -> tuple[np.ndarray, float, float]:
    """Run pycolmap BA (intrinsics fixed, robust loss) on `model`: (c2w per view, error before, after)."""
    import pycolmap

    pycolmap.logging.minloglevel = 2  # errors only: the CLI and the app report the outcome themselves
    with tempfile.TemporaryDirectory() as folder:
        write_binary(Path(folder), model)
        reconstruction = pycolmap.Reconstruction(folder)
    before = reconstruction.compute_mean_reprojection_error()
    options = pycolmap.BundleAdjustmentOptions()
    options.refine_focal_length = False
    options.refine_principal_point = False
    options.refine_extra_params = False
    options.print_summary = False
    options.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
    options.ceres.solver_options.num_threads = 1
    pycolmap.bundle_adjustment(reconstruction, options)
    after = reconstruction.compute_mean_reprojection_error()
    by_name = {image.name: image for image in reconstruction.images.values()}
    return np.stack([c2w_of(by_name[view.name]) for view in model.views]), before, after


def refine_cameras(
    rec: Reconstruction, options: SceneOptions = SceneOptions(), log: Log = print
) -> tuple[Reconstruction, RefineReport]:
    """`rec` with bundle-adjusted poses (and points re-un-projected), or unchanged with the reason."""

    def keep(reason: str) -> tuple[Reconstruction, RefineReport]:
        message = f"Bundle adjustment skipped: {reason} Exporting the unrefined cameras."
        log(message)
        return rec, RefineReport(False, message)

    try:
        import pycolmap  # noqa: F401
    except ImportError:
        return keep("pycolmap is not installed (pip install 'dvlt-studio[refine]').")
    if rec.num_views < 2:
        return keep("it needs at least two views.")
    model = matched_model(rec, options)
    if len(model.points) < 20 or len(np.unique(model.tracks.view)) < rec.num_views:
        return keep("too few points were matched between the views.")
    try:
        c2w, before, after = bundle_adjust(model)
    except Exception as error:  # pycolmap raises plain RuntimeError/ValueError subclasses of its own
        return keep(f"pycolmap failed ({type(error).__name__}).")
    if not (np.isfinite(c2w).all() and np.isfinite(after)) or after > before:
        return keep(f"the error did not drop ({before:.3g} -> {after:.3g} px).")
    c2w = back_to_first_view(c2w, rec.c2w)
    refined = dataclasses.replace(rec, c2w=c2w, points=unproject(rec.depth, rec.intrinsics, c2w))
    message = (
        f"Bundle adjustment: mean reprojection error {before:.3f} -> {after:.3f} px "
        f"({len(model.points)} points, {len(model.tracks.point)} observations)."
    )
    log(message)
    return refined, RefineReport(True, message, before, after, len(model.tracks.point), len(model.points))

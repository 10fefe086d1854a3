"""Per-view z-depth and confidence at each photo's own resolution.

`<name>.png` is 16-bit depth x 1000 (millimetres when the scene unit is a metre;
0 = no depth), `<name>.npy` float32 depth and `<name>_conf.npy` confidence. A
16-bit PNG holds depths up to 65.535 units: deeper pixels are written as 0
(unknown, never a wrong near value) and the export says how many; the .npy
files hold every depth. (The nerfstudio export scales its whole scene instead,
so its PNGs lose nothing: `nerfstudio.py`.) Depth
is z-depth (distance along the camera's optical axis, not along the ray). Pixels
the model never saw (cropped borders) are 0. The model's scene unit is its own;
scale it if you know a real distance.

Resampling uses the exact continuous map from each photo pixel centre to the
canvas (resize scale, crop and padding), so the maps carry no sub-pixel shift.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..records import Reconstruction, ViewTransform
from .images import export_views

PNG_SCALE = 1000.0  # PNG value = depth x PNG_SCALE; nerfstudio's depth_unit_scale_factor 1e-3 undoes it
PNG_MAX = 65535  # the largest 16-bit value
PNG_MAX_DEPTH = PNG_MAX / PNG_SCALE  # 65.535 scene units
Log = Callable[[str], None]
EDGE_RATIO = 1.05  # neighbours further apart than this (max/min) are a depth edge: take the nearest, don't blend


def to_photo_frame(
    values: np.ndarray, transform: ViewTransform, size: tuple[int, int], edge_ratio: float | None = None
) -> np.ndarray:
    """Resample one canvas map (H, W) onto its photo of `size` (width, height), bilinear at the exact positions.

    With `edge_ratio`, pixels whose four canvas neighbours differ by more than that ratio take the nearest
    neighbour instead (no depths invented between a foreground and a background surface).
    """
    (top, left), (h, w) = transform.pad, transform.valid_size
    width, height = size
    region = values[top : top + h, left : left + w].astype(np.float64)
    xs = np.arange(width) + 0.5
    ys = np.arange(height) + 0.5
    canvas = transform.original_to_canvas(np.stack(np.meshgrid(xs, ys), axis=-1))  # (height, width, 2)
    u, v = canvas[..., 0] - left - 0.5, canvas[..., 1] - top - 0.5  # in the region's pixel-index frame
    seen = (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
    u, v = np.clip(u, 0, w - 1), np.clip(v, 0, h - 1)
    u0, v0 = np.minimum(np.floor(u).astype(int), max(w - 2, 0)), np.minimum(np.floor(v).astype(int), max(h - 2, 0))
    u1, v1 = np.minimum(u0 + 1, w - 1), np.minimum(v0 + 1, h - 1)
    fu, fv = u - u0, v - v0
    corners = np.stack((region[v0, u0], region[v0, u1], region[v1, u0], region[v1, u1]))
    weights = np.stack(((1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv))
    out = (corners * weights).sum(axis=0)
    if edge_ratio is not None:
        low, high = corners.min(axis=0), corners.max(axis=0)
        edge = (low <= 0) | (high > edge_ratio * low)
        out = np.where(edge, region[np.rint(v).astype(int), np.rint(u).astype(int)], out)
    return np.where(seen, out, 0.0).astype(np.float32)


def depth_png(depth: np.ndarray) -> Image.Image:
    """16-bit PNG image of a depth map: value = round(depth x PNG_SCALE); 0 = unknown, which is also what
    depths beyond PNG_MAX_DEPTH become (count them with `too_deep`)."""
    values = np.round(np.asarray(depth) * PNG_SCALE)
    return Image.fromarray(np.where((values > 0) & (values <= PNG_MAX), values, 0).astype(np.uint16))


def too_deep(depth: np.ndarray) -> int:
    """Number of pixels of `depth` a depth PNG cannot hold (they are written as 0)."""
    return int((np.round(np.asarray(depth) * PNG_SCALE) > PNG_MAX).sum())


def photo_depth(rec: Reconstruction, index: int, transform: ViewTransform, size: tuple[int, int]) -> np.ndarray:
    """View `index`'s z-depth on its photo of `size` (width, height), without blending across depth edges."""
    return to_photo_frame(rec.depth[index], transform, size, EDGE_RATIO)


def write_depth_maps(rec: Reconstruction, directory: str | Path, log: Log = print) -> Path:
    """Write depth PNG/NPY and confidence NPY per view into `directory`; says how many pixels were too deep
    for the PNGs, if any."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dropped, total = 0, 0
    for index, view in enumerate(export_views(rec)):
        depth = photo_depth(rec, index, view.transform, view.size)
        conf = to_photo_frame(rec.confidence[index], view.transform, view.size)
        stem = Path(view.name).stem
        depth_png(depth).save(directory / f"{stem}.png")
        np.save(directory / f"{stem}.npy", depth)
        np.save(directory / f"{stem}_conf.npy", conf)
        dropped, total = dropped + too_deep(depth), total + int((depth > 0).sum())
    if dropped:
        log(
            f"Depth PNGs: {dropped:,} of {total:,} pixels ({100 * dropped / total:.1f} %) are deeper than "
            f"{PNG_MAX_DEPTH:g} scene units and are 0 (unknown) there; the .npy files hold every depth."
        )
    return directory

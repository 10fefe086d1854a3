"""Per-view depth and confidence at each photo's own resolution.

`<name>.png` is 16-bit depth x 1000 (millimetres when the scene unit is a metre;
0 = no depth), `<name>.npy` float32 depth and `<name>_conf.npy` confidence. Pixels
the model never saw (cropped borders) are 0. The model's scene unit is its own;
scale it if you know a real distance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..records import Reconstruction, ViewTransform
from .images import export_views

PNG_SCALE = 1000.0


def to_photo_frame(values: np.ndarray, transform: ViewTransform, size: tuple[int, int]) -> np.ndarray:
    """Resample one canvas map (H, W) onto its photo of `size` (width, height), bilinear."""
    (top, left), (h, w) = transform.pad, transform.valid_size
    sy, sx = transform.scale
    width, height = size
    x0, y0 = transform.crop[1] / sx, transform.crop[0] / sy  # region of the photo the model saw
    x1, y1 = (transform.crop[1] + w) / sx, (transform.crop[0] + h) / sy
    out = np.zeros((height, width), np.float32)
    box = (int(round(x0)), int(round(y0)), min(width, int(round(x1))), min(height, int(round(y1))))
    region = Image.fromarray(values[top : top + h, left : left + w].astype(np.float32), mode="F")
    out[box[1] : box[3], box[0] : box[2]] = np.asarray(
        region.resize((box[2] - box[0], box[3] - box[1]), Image.BILINEAR)
    )
    return out


def write_depth_maps(rec: Reconstruction, directory: str | Path) -> Path:
    """Write depth PNG/NPY and confidence NPY per view into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for index, view in enumerate(export_views(rec)):
        depth = to_photo_frame(rec.depth[index], view.transform, view.image.size)
        conf = to_photo_frame(rec.confidence[index], view.transform, view.image.size)
        stem = Path(view.name).stem
        millimetres = np.clip(np.round(depth * PNG_SCALE), 0, 65535).astype(np.uint16)
        Image.fromarray(millimetres).save(directory / f"{stem}.png")
        np.save(directory / f"{stem}.npy", depth)
        np.save(directory / f"{stem}_conf.npy", conf)
    return directory

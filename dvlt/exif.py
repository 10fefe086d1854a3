"""Camera focal lengths from the photos' EXIF tags, and cameras re-fitted with them (`--intrinsics exif`).

A photo's focal length in pixels comes from its physical focal length and the sensor's pixel pitch
(FocalLength with FocalPlaneXResolution), else from the 35 mm equivalent (FocalLengthIn35mmFilm, which scales
the focal length by the ratio of a 36x24 mm frame's diagonal to the sensor's, so f_px = f35 * photo
diagonal in pixels / 43.27 mm). Fixing each view's focal length to it, the pose is re-fitted to the
predicted points as `--centre-principal-point` does (dvlt.export.refit), and the mean reprojection
error before and after tells how far EXIF and the prediction agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import ExifTags, Image

from .errors import OptionError
from .records import Reconstruction

FULL_FRAME_DIAGONAL_MM = float(np.hypot(36.0, 24.0))  # 43.27 mm, the reference of 35 mm equivalents
UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # FocalPlaneResolutionUnit: inch, cm (EXIF), mm, µm (in use)
PLAUSIBLE = (0.1, 20.0)  # a focal length outside these multiples of the photo's longest side is a broken tag
INTRINSICS_CHOICES = ("predicted", "exif")
Log = Callable[[str], None]


@dataclass(frozen=True)
class ExifFocal:
    """A photo's focal length in its own pixels and the tags it came from."""

    pixels: float
    source: str  # e.g. "35 mm equivalent 26 mm" or "4.25 mm lens, 1000 px/mm sensor"


def focal_from_tags(tags: Mapping[int, Any], width: int, height: int) -> ExifFocal | None:
    """The focal length in pixels of a `width` x `height` photo from its EXIF sub-IFD tags, or None."""
    base = ExifTags.Base
    focal_mm = number(tags.get(base.FocalLength))
    per_unit = number(tags.get(base.FocalPlaneXResolution))
    unit_mm = UNIT_MM.get(int(number(tags.get(base.FocalPlaneResolutionUnit)) or 2))
    found = None
    if focal_mm and per_unit and unit_mm:
        captured = (number(tags.get(base.ExifImageWidth)), number(tags.get(base.ExifImageHeight)))
        resized = max(width, height) / max(captured) if all(captured) else 1.0  # photo smaller than captured
        found = ExifFocal(
            focal_mm * per_unit / unit_mm * resized, f"{focal_mm:g} mm lens, {per_unit / unit_mm:.4g} px/mm sensor"
        )
    equivalent = number(tags.get(base.FocalLengthIn35mmFilm))
    if found is None and equivalent:
        found = ExifFocal(
            equivalent * float(np.hypot(width, height)) / FULL_FRAME_DIAGONAL_MM,
            f"35 mm equivalent {equivalent:g} mm",
        )
    if found is None or not PLAUSIBLE[0] <= found.pixels / max(width, height) <= PLAUSIBLE[1]:
        return None
    return found


def number(value: Any) -> float:
    """An EXIF value (int, float, IFDRational, a 1-tuple) as a float; 0 when missing or unreadable."""
    if isinstance(value, tuple | list) and value:
        value = value[0]
    try:
        result = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return 0.0
    return result if np.isfinite(result) and result > 0 else 0.0


def photo_focal(image: Image.Image) -> ExifFocal | None:
    """The focal length in pixels of an (upright) photo from its EXIF, or None when it carries none."""
    try:
        tags = image.getexif().get_ifd(ExifTags.IFD.Exif)
    except Exception:  # a broken EXIF block means no EXIF focal length, not a failed run
        return None
    return focal_from_tags(tags, image.width, image.height)


def exif_focals(rec: Reconstruction) -> list[ExifFocal | None]:
    """Per view, the EXIF focal length of its original photo (None for video frames and untagged photos)."""
    if rec.originals is None:
        return [None] * rec.num_views
    return [photo_focal(photo) for photo in rec.originals]


@dataclass
class IntrinsicsComparison:
    """DVLT's predicted focal lengths next to EXIF's, and the re-fit's mean reprojection error (pixels)."""

    names: list[str]
    predicted: list[float]  # focal length in each photo's pixels, sqrt(fx * fy)
    exif: list[ExifFocal | None]
    error_before: float = float("nan")  # mean over the views with an EXIF focal length
    error_after: float = float("nan")

    def rows(self) -> list[list[str]]:
        """[view, photo, predicted, EXIF, difference] per view, for a table."""
        rows = []
        for index, (name, predicted, exif) in enumerate(zip(self.names, self.predicted, self.exif)):
            rows.append(
                [
                    str(index),
                    name,
                    f"{predicted:.1f} px",
                    f"{exif.pixels:.1f} px ({exif.source})" if exif else "no EXIF focal length",
                    f"{100 * (predicted / exif.pixels - 1):+.1f} %" if exif else "",
                ]
            )
        return rows

    def summary(self) -> str:
        """One line: how many views took EXIF focal lengths and the reprojection error before -> after."""
        used = sum(focal is not None for focal in self.exif)
        if not used:
            return "EXIF intrinsics: no photo carries an EXIF focal length; the predicted cameras are kept."
        return (
            f"EXIF intrinsics: {used} of {len(self.exif)} views fixed to their EXIF focal length, poses re-fitted; "
            f"mean reprojection error {self.error_before:.3f} px -> {self.error_after:.3f} px"
        )


def compare_intrinsics(rec: Reconstruction) -> IntrinsicsComparison:
    """Predicted and EXIF focal lengths per view, in each photo's pixels (nothing is re-fitted)."""
    predicted = []
    for transform, intrinsics in zip(rec.transforms, rec.intrinsics):
        photo = transform.intrinsics_to_original(intrinsics)
        predicted.append(float(np.sqrt(photo[0, 0] * photo[1, 1])))
    names = rec.names or [f"view {index}" for index in range(rec.num_views)]
    return IntrinsicsComparison(list(names), predicted, exif_focals(rec))


def reprojection_error(intrinsics: np.ndarray, c2w: np.ndarray, xyz: np.ndarray, xy: np.ndarray) -> float:
    """Mean distance in pixels between `xy` and the projections of world points `xyz` through a camera."""
    camera = (xyz - c2w[:, 3]) @ c2w[:, :3]
    projected = camera[:, :2] / camera[:, 2:] * np.diag(intrinsics)[:2] + intrinsics[:2, 2]
    return float(np.linalg.norm(projected - xy, axis=1).mean())


def with_exif_intrinsics(rec: Reconstruction, log: Log = print) -> tuple[Reconstruction, IntrinsicsComparison]:
    """`rec` with each EXIF-tagged view's focal length fixed to EXIF (principal point kept) and its pose
    re-fitted to the predicted points; the comparison says what changed."""
    from .export.images import export_views
    from .export.refit import fit_pose, view_samples

    comparison = compare_intrinsics(rec)
    if not any(comparison.exif):
        log(comparison.summary())
        return rec, comparison
    c2w, canvas_intrinsics, before, after = rec.c2w.copy(), rec.intrinsics.copy(), [], []
    for index, (view, focal) in enumerate(zip(export_views(rec), comparison.exif)):
        xyz, xy = view_samples(rec, index, view)
        if focal is None or len(xyz) < 6:
            continue
        fixed = view.intrinsics.copy()
        fixed[0, 0] = fixed[1, 1] = focal.pixels
        before.append(reprojection_error(view.intrinsics, rec.c2w[index], xyz, xy))
        c2w[index], error = fit_pose(fixed, rec.c2w[index], xyz, xy)
        after.append(error)
        canvas_intrinsics[index] = view.transform.intrinsics_to_canvas(fixed)
    if before:
        comparison.error_before, comparison.error_after = float(np.mean(before)), float(np.mean(after))
    log(comparison.summary())
    return dataclasses.replace(rec, c2w=c2w, intrinsics=canvas_intrinsics), comparison


def with_intrinsics(rec: Reconstruction, choice: str, log: Log = print) -> Reconstruction:
    """`rec` with the camera intrinsics the user chose: 'predicted' (as is) or 'exif'."""
    if choice not in INTRINSICS_CHOICES:
        raise OptionError(f"unknown intrinsics {choice!r}; choose from {', '.join(INTRINSICS_CHOICES)}")
    return rec if choice == "predicted" else with_exif_intrinsics(rec, log)[0]

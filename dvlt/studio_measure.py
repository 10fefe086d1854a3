"""The logic behind the Space's "Measure & video" tab, without the UI (torch-free, tested on its own).

The tab shows one view's photo as the model saw it; two clicks pick A and B (in that view or another) and
their 3D distance is shown. The session's result is always derived from the run's own reconstruction with
the chosen `Adjustments` (point source, a known distance that makes it metric, EXIF focal lengths), so
choosing again never compounds a previous choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .exif import IntrinsicsComparison, with_exif_intrinsics
from .measure import KnownDistance, MeasureError, with_known_distance
from .points import DEFAULT_POINT_SOURCE, with_point_source
from .records import Reconstruction

Pick = tuple[int, float, float]  # (view, x, y) in the view's photo pixels
PICK_COLOURS = {"A": (230, 40, 40), "B": (40, 90, 230)}
# the tab's point-source choices: label -> dvlt.points source
POINT_CHOICES = {"depth through the cameras (default)": "depth", "direct point head": "direct"}
Log = Callable[[str], None]


@dataclass(frozen=True)
class Adjustments:
    """What the user chose in the tab, applied to the run's reconstruction in this order."""

    points: str = DEFAULT_POINT_SOURCE
    known: KnownDistance | None = None
    exif: bool = False


def adjusted(
    rec: Reconstruction, adjustments: Adjustments, log: Log = lambda message: None
) -> tuple[Reconstruction, IntrinsicsComparison | None]:
    """The run's reconstruction with the chosen point source, real scale and EXIF intrinsics (EXIF needs
    `rec.originals`, the photos with their tags), and the EXIF comparison when it was asked for."""
    rec = with_point_source(rec, adjustments.points)
    if adjustments.known is not None:
        rec = with_known_distance(rec, adjustments.known)
    comparison = None
    if adjustments.exif:
        rec, comparison = with_exif_intrinsics(rec, log)
    return rec, comparison


def view_image(rec: Reconstruction, view: int) -> Image.Image:
    """The view as the model saw it (its real pixels on the canvas, without padding)."""
    check_view(rec, view)
    (top, left), (height, width) = rec.transforms[view].pad, rec.transforms[view].valid_size
    return Image.fromarray(rec.images[view, top : top + height, left : left + width])


def check_view(rec: Reconstruction, view: int) -> None:
    if not 0 <= view < rec.num_views:
        raise MeasureError(f"view {view} does not exist; this scene has views 0 to {rec.num_views - 1}.")


def clicked_pick(rec: Reconstruction, view: int, xy: Sequence[float]) -> Pick:
    """A click on pixel (column, row) of `view_image` as the photo position of that pixel's centre."""
    check_view(rec, view)
    (top, left) = rec.transforms[view].pad
    x, y = rec.transforms[view].canvas_to_original(np.array([xy[0] + 0.5 + left, xy[1] + 0.5 + top]))
    return view, float(x), float(y)


def add_pick(picks: Sequence[Pick], pick: Pick) -> list[Pick]:
    """A then B; a third click starts a new pair."""
    return [*picks, pick] if len(picks) == 1 else [pick]


def marked_view(rec: Reconstruction, view: int, picks: Sequence[Pick]) -> Image.Image:
    """`view_image` with the picks made in this view drawn as labelled rings."""
    image = view_image(rec, view)
    draw = ImageDraw.Draw(image)
    (top, left) = rec.transforms[view].pad
    radius = max(4, round(max(image.size) / 80))
    for label, (pick_view, x, y) in zip("AB", picks):
        if pick_view != view:
            continue
        cx, cy = rec.transforms[view].original_to_canvas(np.array([x, y])) - np.array([left, top])
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        draw.ellipse(box, outline=PICK_COLOURS[label], width=max(2, radius // 3))
        draw.text((cx + radius + 2, cy - radius - 2), label, fill=PICK_COLOURS[label])
    return image


def unit_of(rec: Reconstruction) -> str:
    return "m" if rec.scale_note else "scene units"


def measurement(rec: Reconstruction, picks: Sequence[Pick]) -> str:
    """Markdown: the picked points and, once there are two, the distance between them."""
    if not picks:
        return "Click a point in the photo (A), then another in this or another view (B)."
    lines = [f"**{label}**: view {v}, pixel ({x:.1f}, {y:.1f})" for label, (v, x, y) in zip("AB", picks)]
    if len(picks) == 1:
        return "  \n".join(lines + ["Now click B, in this view or after choosing another."])
    (view_a, *xy_a), (view_b, *xy_b) = picks
    length = rec.distance(view_a, xy_a, view_b, xy_b)
    note = f"  \n_{rec.scale_note}_" if rec.scale_note else ""
    return "  \n".join(lines + [f"**Distance A–B: {length:.4g} {unit_of(rec)}**"]) + note


def measured_segment(rec: Reconstruction, picks: Sequence[Pick]) -> tuple[np.ndarray, np.ndarray] | None:
    """The two world points of a complete A-B pair (to draw in the 3D scene), else None."""
    if len(picks) != 2:
        return None
    return rec.point_at(picks[0][0], picks[0][1:]), rec.point_at(picks[1][0], picks[1][1:])


def known_from(picks: Sequence[Pick], metres: float | None) -> KnownDistance | None:
    """The known distance the tab's box gives for the picked pair (None when the box is empty or 0)."""
    if metres is None or metres == 0:
        return None
    if len(picks) != 2:
        raise MeasureError("Click A and B first: the real length applies to the distance between them.")
    if not np.isfinite(metres) or metres < 0:
        raise MeasureError(f"The real length must be a positive number of metres, got {metres}.")
    (view_a, xa, ya), (view_b, xb, yb) = picks
    return KnownDistance(view_a, (xa, ya), view_b, (xb, yb), float(metres))


def comparison_markdown(comparison: IntrinsicsComparison | None) -> str:
    """A Markdown table of predicted vs EXIF focal lengths per view, with the re-fit's summary line."""
    if comparison is None:
        return ""
    header = "| view | photo | DVLT focal | EXIF focal | DVLT vs EXIF |\n|---|---|---|---|---|\n"
    body = "\n".join("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in comparison.rows())
    return f"{comparison.summary()}\n\n{header}{body}"

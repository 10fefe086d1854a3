"""Which of DVLT's two predictions makes the point cloud: depth through the fitted cameras, or the direct head."""

from __future__ import annotations

import dataclasses

from .errors import OptionError
from .records import Reconstruction

# depth: depth un-projected along the fitted cameras' rays (pixel centres); direct: the ray head's own
# origin + direction * depth per pixel, without the camera fit in between
POINT_SOURCES = ("depth", "direct")
DEFAULT_POINT_SOURCE = "depth"


def with_point_source(rec: Reconstruction, source: str = DEFAULT_POINT_SOURCE) -> Reconstruction:
    """`rec` whose `points` come from `source` ('depth' leaves it as it is)."""
    if source not in POINT_SOURCES:
        raise OptionError(f"unknown point source {source!r}; choose from {', '.join(POINT_SOURCES)}")
    if source == "depth":
        return rec
    if rec.points_direct is None:
        raise OptionError(
            "these predictions hold no direct points (saved by an older dvlt, or reconstructed in windows); "
            "use the depth points."
        )
    return dataclasses.replace(rec, points=rec.points_direct)

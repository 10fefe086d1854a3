"""Binary little-endian PLY point cloud: x y z (float32), red green blue (uint8), confidence (float32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..scene import PointSet

PLY_DTYPE = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("confidence", "<f4")]
)


def write_ply(points: PointSet, path: str | Path) -> Path:
    """Write points in the world frame of the reconstruction (OpenCV axes, view 0 at the origin)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = np.empty(len(points), dtype=PLY_DTYPE)
    records["x"], records["y"], records["z"] = points.xyz.T
    records["red"], records["green"], records["blue"] = points.rgb.T
    records["confidence"] = points.confidence
    header = [
        "ply",
        "format binary_little_endian 1.0",
        "comment DVLT reconstruction; world frame = first view, OpenCV axes",
        f"element vertex {len(points)}",
        *(f"property {'float' if records.dtype[name].kind == 'f' else 'uchar'} {name}" for name in PLY_DTYPE.names),
        "end_header",
    ]
    with path.open("wb") as handle:
        handle.write(("\n".join(header) + "\n").encode("ascii"))
        handle.write(records.tobytes())
    return path

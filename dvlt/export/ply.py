"""Binary little-endian PLY point cloud: x y z, nx ny nz (float32), red green blue (uint8), confidence (float32).

The field names are the ones the reference 3DGS loader (`fetchPly`), Open3D,
trimesh and nerfstudio read; normals face the camera that saw each point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..records import Reconstruction
from ..scene import PointSet, SceneOptions, normals_of, select_points

PLY_DTYPE = np.dtype(
    [
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("nx", "<f4"),
        ("ny", "<f4"),
        ("nz", "<f4"),
        ("red", "u1"),
        ("green", "u1"),
        ("blue", "u1"),
        ("confidence", "<f4"),
    ]
)
PLY_TYPES = {"f": "float", "u": "uchar"}


def write_records(records: np.ndarray, path: str | Path, comment: str) -> Path:
    """Write a structured array as a binary little-endian PLY `vertex` element."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = [
        "ply",
        "format binary_little_endian 1.0",
        f"comment {comment}",
        f"element vertex {len(records)}",
        *(f"property {PLY_TYPES[records.dtype[name].kind]} {name}" for name in records.dtype.names),
        "end_header",
    ]
    with path.open("wb") as handle:
        handle.write(("\n".join(header) + "\n").encode("ascii"))
        handle.write(records.tobytes())
    return path


def write_ply(points: PointSet, path: str | Path, normals: np.ndarray | None = None) -> Path:
    """Write points in the world frame of the reconstruction (OpenCV axes, view 0 at the origin).

    `normals` (N, 3) come from `scene.normals_of`; without them nx ny nz are 0 (unknown).
    """
    records = np.zeros(len(points), dtype=PLY_DTYPE)
    records["x"], records["y"], records["z"] = points.xyz.T
    if normals is not None:
        records["nx"], records["ny"], records["nz"] = np.asarray(normals, dtype=np.float32).T
    records["red"], records["green"], records["blue"] = points.rgb.T
    records["confidence"] = points.confidence
    return write_records(records, path, "DVLT reconstruction; world frame = first view, OpenCV axes")


def write_point_cloud(rec: Reconstruction, path: str | Path, options: SceneOptions = SceneOptions()) -> Path:
    """The selected points of `rec` with their surface normals, as a PLY."""
    points = select_points(rec, options)
    return write_ply(points, path, normals_of(rec, points))

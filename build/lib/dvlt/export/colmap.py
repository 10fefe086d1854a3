"""COLMAP sparse model (text and binary) that COLMAP, pycolmap, gsplat and 3DGS read.

One PINHOLE camera per view in the photo's own pixels (preprocessing resize,
crop and padding undone), the world-to-camera quaternion + translation, and
3D points from confident pixels, each with a one-entry track pointing at the
pixel centre it came from. Images are written to `images/` under the names
the model refers to; the model goes to `sparse/0/`.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..records import Reconstruction
from ..scene import PointSet, SceneOptions, select_points
from .images import ExportView, write_view_images

PINHOLE_MODEL_ID = 1


def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(w, x, y, z) unit quaternion of a rotation matrix, w >= 0."""
    m = np.asarray(R, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0] * 4
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def world_to_camera(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(qvec (w,x,y,z), tvec) of the world-to-camera transform of an OpenCV c2w (3, 4)."""
    R = c2w[:3, :3].T
    return rotation_to_quaternion(R), -R @ c2w[:3, 3]


def observations(points: PointSet, views: list[ExportView]) -> tuple[np.ndarray, np.ndarray]:
    """Per point: its observation (x, y) in its photo's pixels, and its index within that photo's list."""
    xy = np.zeros((len(points), 2))
    index_in_view = np.zeros(len(points), dtype=np.int64)
    for view_index, view in enumerate(views):
        mine = np.flatnonzero(points.view == view_index)
        xy[mine] = view.transform.canvas_to_original(points.pixel[mine] + 0.5)
        index_in_view[mine] = np.arange(len(mine))
    return xy, index_in_view


def write_text(
    directory: Path, views: list[ExportView], points: PointSet, xy: np.ndarray, index_in_view: np.ndarray
) -> None:
    """cameras.txt, images.txt, points3D.txt."""
    with (directory / "cameras.txt").open("w") as out:
        out.write("# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n")
        out.write(f"# Number of cameras: {len(views)}\n")
        for i, view in enumerate(views):
            K = view.intrinsics
            width, height = view.image.size
            out.write(f"{i + 1} PINHOLE {width} {height} {K[0, 0]:.10g} {K[1, 1]:.10g} {K[0, 2]:.10g} {K[1, 2]:.10g}\n")
    with (directory / "images.txt").open("w") as out:
        out.write("# Image list with two lines of data per image:\n")
        out.write("#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n#   POINTS2D[] as (X, Y, POINT3D_ID)\n")
        out.write(f"# Number of images: {len(views)}\n")
        for i, view in enumerate(views):
            q, t = world_to_camera(view.c2w)
            out.write(f"{i + 1} {' '.join(f'{v:.17g}' for v in (*q, *t))} {i + 1} {view.name}\n")
            mine = np.flatnonzero(points.view == i)
            out.write(" ".join(f"{x:.6f} {y:.6f} {pid + 1}" for (x, y), pid in zip(xy[mine], mine)) + "\n")
    with (directory / "points3D.txt").open("w") as out:
        out.write("# 3D point list with one line of data per point:\n")
        out.write("#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n")
        out.write(f"# Number of points: {len(points)}\n")
        table = np.column_stack(
            (
                np.arange(1, len(points) + 1),
                points.xyz,
                points.rgb,
                np.zeros(len(points)),
                points.view + 1,
                index_in_view,
            )
        )
        np.savetxt(out, table, fmt=["%d", "%.9g", "%.9g", "%.9g", "%d", "%d", "%d", "%.1f", "%d", "%d"])


def write_binary(
    directory: Path, views: list[ExportView], points: PointSet, xy: np.ndarray, index_in_view: np.ndarray
) -> None:
    """cameras.bin, images.bin, points3D.bin (little-endian, COLMAP's layout)."""
    with (directory / "cameras.bin").open("wb") as out:
        out.write(struct.pack("<Q", len(views)))
        for i, view in enumerate(views):
            K = view.intrinsics
            width, height = view.image.size
            out.write(
                struct.pack("<iiQQ4d", i + 1, PINHOLE_MODEL_ID, width, height, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
            )
    observation = np.dtype([("x", "<f8"), ("y", "<f8"), ("point3d_id", "<i8")])
    with (directory / "images.bin").open("wb") as out:
        out.write(struct.pack("<Q", len(views)))
        for i, view in enumerate(views):
            q, t = world_to_camera(view.c2w)
            out.write(struct.pack("<i7di", i + 1, *q, *t, i + 1) + view.name.encode("utf-8") + b"\0")
            mine = np.flatnonzero(points.view == i)
            records = np.empty(len(mine), dtype=observation)
            records["x"], records["y"], records["point3d_id"] = xy[mine, 0], xy[mine, 1], mine + 1
            out.write(struct.pack("<Q", len(mine)) + records.tobytes())
    point = np.dtype(
        [
            ("id", "<u8"),
            ("xyz", "<f8", 3),
            ("rgb", "u1", 3),
            ("error", "<f8"),
            ("track_length", "<u8"),
            ("image_id", "<i4"),
            ("point2d_idx", "<i4"),
        ]
    )
    records = np.empty(len(points), dtype=point)
    records["id"] = np.arange(1, len(points) + 1)
    records["xyz"], records["rgb"], records["error"] = points.xyz, points.rgb, 0.0
    records["track_length"], records["image_id"], records["point2d_idx"] = 1, points.view + 1, index_in_view
    with (directory / "points3D.bin").open("wb") as out:
        out.write(struct.pack("<Q", len(points)) + records.tobytes())


def write_colmap(rec: Reconstruction, directory: str | Path, options: SceneOptions = SceneOptions()) -> Path:
    """Write images/ and sparse/0/ (both text and binary files) under `directory`; returns sparse/0."""
    directory = Path(directory)
    views = write_view_images(rec, directory / "images")
    sparse = directory / "sparse" / "0"
    sparse.mkdir(parents=True, exist_ok=True)
    points = select_points(rec, options)
    xy, index_in_view = observations(points, views)
    write_text(sparse, views, points, xy, index_in_view)
    write_binary(sparse, views, points, xy, index_in_view)
    return sparse

"""COLMAP sparse model (text and binary) that COLMAP, pycolmap, gsplat and 3DGS read.

One PINHOLE camera per view in the photo's own pixels (preprocessing resize,
crop and padding undone; views with identical intrinsics and size share one),
the world-to-camera quaternion + translation, and 3D points from confident
pixels with multi-view tracks (`tracks.py`) and their mean reprojection error.
points3D.bin/.txt hold only points seen by at least MIN_TRACK_LENGTH images, as
COLMAP's own models do (its bundle adjuster refuses a point with a one-image
track); `points3D.ply` beside them (normals included), which the reference 3DGS
trainer reads instead of converting points3D.bin, keeps every point.

The folder is laid out like `ns-process-data`'s output, so every trainer loads it
at its default paths: `images/` under the names the model refers to,
`images_2/`, `images_4/`, `images_8/` (`images.py`), the model in `sparse/0/`
(graphdeco 3DGS, gsplat, COLMAP) and a binary copy in `colmap/sparse/0/`
(nerfstudio's ColmapDataParser default `colmap_path`).
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..records import Reconstruction
from ..scene import PointSet, SceneOptions, normals_of, select_points
from .images import ExportView, write_downscaled_images, write_view_images
from .ply import write_ply
from .tracks import Tracks, build_tracks, reprojection_errors

PINHOLE_MODEL_ID = 1
MIN_TRACK_LENGTH = 2  # COLMAP's invariant: a 3D point is observed by at least two images
NERFSTUDIO_SPARSE = Path("colmap") / "sparse" / "0"  # ColmapDataParserConfig.colmap_path's default


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


def camera_ids(views: list[ExportView]) -> tuple[list[int], list[tuple]]:
    """1-based camera id of each view, and the distinct cameras as (width, height, fx, fy, cx, cy)."""
    cameras: list[tuple] = []
    ids = []
    for view in views:
        fx, fy, cx, cy = (float(view.intrinsics[i, j]) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
        camera = (*view.size, fx, fy, cx, cy)
        if camera not in cameras:
            cameras.append(camera)
        ids.append(cameras.index(camera) + 1)
    return ids, cameras


@dataclass
class SparseModel:
    """Everything a COLMAP sparse model holds, ready to serialise."""

    views: list[ExportView]
    points: PointSet
    tracks: Tracks
    errors: np.ndarray  # (N,) mean reprojection error of each point, pixels

    @property
    def point2d_index(self) -> np.ndarray:
        """(M,) index of each observation within its image's points2D list."""
        index = np.zeros(len(self.tracks.point), dtype=np.int64)
        for view in range(len(self.views)):
            mine = self.tracks.in_view(view)
            index[mine] = np.arange(len(mine))
        return index

    def track_order(self) -> np.ndarray:
        """Observation indices sorted by point (stable, so each track lists its views in order)."""
        return np.argsort(self.tracks.point, kind="stable")


def subset_points(points: PointSet, tracks: Tracks, keep: np.ndarray) -> tuple[PointSet, Tracks]:
    """The points where `keep` (N,) is true and their observations, renumbered in order."""
    renumber = np.cumsum(keep) - 1
    observed = keep[tracks.point]
    subset = PointSet(*(getattr(points, field.name)[keep] for field in dataclasses.fields(PointSet)))
    return subset, Tracks(renumber[tracks.point[observed]], tracks.view[observed], tracks.xy[observed])


def sparse_model(rec: Reconstruction, views: list[ExportView], points: PointSet) -> SparseModel:
    """The model of `points` seen by at least MIN_TRACK_LENGTH views: their tracks and errors."""
    tracks = build_tracks(rec, points, views)
    points, tracks = subset_points(points, tracks, tracks.lengths(len(points)) >= MIN_TRACK_LENGTH)
    _, errors = reprojection_errors(points, tracks, views)
    return SparseModel(views, points, tracks, errors)


def write_text(directory: Path, model: SparseModel) -> None:
    """cameras.txt, images.txt, points3D.txt."""
    ids, cameras = camera_ids(model.views)
    with (directory / "cameras.txt").open("w") as out:
        out.write("# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n")
        out.write(f"# Number of cameras: {len(cameras)}\n")
        for i, (width, height, *params) in enumerate(cameras):
            out.write(f"{i + 1} PINHOLE {width} {height} {' '.join(f'{p:.17g}' for p in params)}\n")
    tracks = model.tracks
    with (directory / "images.txt").open("w") as out:
        out.write("# Image list with two lines of data per image:\n")
        out.write("#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n#   POINTS2D[] as (X, Y, POINT3D_ID)\n")
        out.write(f"# Number of images: {len(model.views)}, mean observations per image: ")
        out.write(f"{len(tracks.point) / max(len(model.views), 1):.1f}\n")
        for i, view in enumerate(model.views):
            q, t = world_to_camera(view.c2w)
            out.write(f"{i + 1} {' '.join(f'{v:.17g}' for v in (*q, *t))} {ids[i]} {view.name}\n")
            mine = tracks.in_view(i)
            rows = [tracks.xy[mine, 0], tracks.xy[mine, 1], tracks.point[mine] + 1]
            out.write(format_rows("%.6f %.6f %d", rows, " ") + "\n")
    order = model.track_order()
    starts = np.concatenate(([0], np.cumsum(tracks.lengths(len(model.points)))))
    pairs = format_rows("%d %d", [tracks.view[order] + 1, model.point2d_index[order]], "\n").split("\n")
    xyz, rgb = model.points.xyz, model.points.rgb
    heads = format_rows(
        "%d %.9g %.9g %.9g %d %d %d %.6g",
        [np.arange(1, len(xyz) + 1), xyz[:, 0], xyz[:, 1], xyz[:, 2], rgb[:, 0], rgb[:, 1], rgb[:, 2], model.errors],
        "\n",
    ).split("\n")
    with (directory / "points3D.txt").open("w") as out:
        out.write("# 3D point list with one line of data per point:\n")
        out.write("#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n")
        out.write(f"# Number of points: {len(xyz)}\n")
        if len(xyz):
            out.write("\n".join(f"{head} {' '.join(pairs[a:b])}" for head, a, b in zip(heads, starts, starts[1:])))
            out.write("\n")


def format_rows(row_format: str, columns: list[np.ndarray], separator: str) -> str:
    """Rows of `columns` formatted with one %-format and joined by `separator`, in one C-level pass."""
    count = len(columns[0])
    if count == 0:
        return ""
    values = np.empty(count * len(columns), dtype=object)
    for k, column in enumerate(columns):
        values[k :: len(columns)] = np.asarray(column).tolist()
    return separator.join([row_format] * count) % tuple(values)


def write_binary(directory: Path, model: SparseModel) -> None:
    """cameras.bin, images.bin, points3D.bin (little-endian, COLMAP's layout)."""
    ids, cameras = camera_ids(model.views)
    with (directory / "cameras.bin").open("wb") as out:
        out.write(struct.pack("<Q", len(cameras)))
        for i, (width, height, *params) in enumerate(cameras):
            out.write(struct.pack("<iiQQ4d", i + 1, PINHOLE_MODEL_ID, width, height, *params))
    tracks = model.tracks
    observation = np.dtype([("x", "<f8"), ("y", "<f8"), ("point3d_id", "<i8")])
    with (directory / "images.bin").open("wb") as out:
        out.write(struct.pack("<Q", len(model.views)))
        for i, view in enumerate(model.views):
            q, t = world_to_camera(view.c2w)
            out.write(struct.pack("<i7di", i + 1, *q, *t, ids[i]) + view.name.encode("utf-8") + b"\0")
            mine = tracks.in_view(i)
            records = np.empty(len(mine), dtype=observation)
            records["x"], records["y"], records["point3d_id"] = (
                tracks.xy[mine, 0],
                tracks.xy[mine, 1],
                tracks.point[mine] + 1,
            )
            out.write(struct.pack("<Q", len(mine)) + records.tobytes())
    order = model.track_order()
    lengths = model.tracks.lengths(len(model.points))
    header = np.dtype([("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3), ("error", "<f8"), ("track_length", "<u8")])
    heads = np.empty(len(model.points), dtype=header)
    heads["id"] = np.arange(1, len(model.points) + 1)
    heads["xyz"], heads["rgb"], heads["error"], heads["track_length"] = (
        model.points.xyz,
        model.points.rgb,
        model.errors,
        lengths,
    )
    elements = np.empty(len(order), dtype=[("image_id", "<i4"), ("point2d_idx", "<i4")])
    elements["image_id"], elements["point2d_idx"] = tracks.view[order] + 1, model.point2d_index[order]
    starts = np.concatenate(([0], np.cumsum(lengths)))
    head_bytes, element_bytes = heads.tobytes(), elements.tobytes()
    chunks = [struct.pack("<Q", len(model.points))]
    for p in range(len(model.points)):
        chunks.append(head_bytes[p * header.itemsize : (p + 1) * header.itemsize])
        chunks.append(element_bytes[starts[p] * 8 : starts[p + 1] * 8])
    with (directory / "points3D.bin").open("wb") as out:
        out.write(b"".join(chunks))


def write_sparse(directory: Path, model: SparseModel) -> Path:
    """Write the text and binary model into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    write_text(directory, model)
    write_binary(directory, model)
    return directory


def write_colmap(rec: Reconstruction, directory: str | Path, options: SceneOptions = SceneOptions()) -> Path:
    """Write images/, images_2|4|8/, sparse/0/ (text and binary, points3D.ply) and colmap/sparse/0/ (binary)
    under `directory`; returns sparse/0."""
    directory = Path(directory)
    views = write_view_images(rec, directory / "images")
    write_downscaled_images(views, directory)
    points = select_points(rec, options)
    model = sparse_model(rec, views, points)
    sparse = write_sparse(directory / "sparse" / "0", model)
    write_ply(points, sparse / "points3D.ply", normals_of(rec, points))
    nerfstudio = directory / NERFSTUDIO_SPARSE
    nerfstudio.mkdir(parents=True, exist_ok=True)
    write_binary(nerfstudio, model)
    return sparse

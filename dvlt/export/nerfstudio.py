"""`transforms.json` in the layout nerfstudio (and instant-ngp) load, with depth maps and a PLY for splats.

Poses are camera-to-world in the OpenGL/Blender camera convention those tools
use (x right, y up, looking down -z): the OpenCV pose with its y and z camera
axes flipped. Intrinsics are written per frame; nerfstudio lets top-level
`fl_x`, `cx`, ... override every frame, so they are written at the top level only
when all frames share them exactly. Each frame links its z-depth map
(`depth_file_path`: 16-bit PNG, depth x 1000, which nerfstudio's default
`depth_unit_scale_factor` 1e-3 turns back into scene units; `depth_path` with the
top-level `integer_depth_scale` 1e-3 for instant-ngp). A 16-bit PNG holds depths up
to 65.535 units, so a deeper scene is exported whole at a smaller scale (camera
positions, point cloud and depths alike, recorded as `dvlt_scene_scale`) and no
depth is clipped. `scale`, `offset`
and `aabb_scale` are for instant-ngp, which maps a position p to p * scale + offset:
they put the point cloud inside its unit cube and the cameras inside the
`aabb_scale` box; nerfstudio ignores them (it centres and scales on its own).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..records import Reconstruction
from ..scene import SceneOptions, normals_of, select_points
from .depth import PNG_MAX_DEPTH, PNG_SCALE, depth_png, photo_depth
from .images import write_view_images
from .ply import write_ply

OPENCV_TO_OPENGL_CAMERA = np.diag([1.0, -1.0, -1.0, 1.0])
PLY_NAME = "sparse_pc.ply"
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
CUBE_PERCENTILES = (1.0, 99.0)  # the cloud's extent ignores stray points beyond these
AABB_SCALES = (1, 2, 4, 8, 16, 32, 64, 128)  # the values instant-ngp accepts
SCALE_DIGITS = 3  # a scene scale is rounded down to this many significant digits (readable, and still fits)
Log = Callable[[str], None]


def opengl_c2w(c2w: np.ndarray) -> np.ndarray:
    """4x4 OpenGL camera-to-world from a (3, 4) OpenCV camera-to-world."""
    full = np.eye(4)
    full[:3, :4] = c2w
    return full @ OPENCV_TO_OPENGL_CAMERA


def intrinsics_entry(intrinsics: np.ndarray, width: int, height: int) -> dict:
    return {
        "fl_x": float(intrinsics[0, 0]),
        "fl_y": float(intrinsics[1, 1]),
        "cx": float(intrinsics[0, 2]),
        "cy": float(intrinsics[1, 2]),
        "w": int(width),
        "h": int(height),
    }


def unit_cube_fit(cloud: np.ndarray, camera_centres: np.ndarray) -> tuple[float, list[float], int]:
    """(scale, offset, aabb_scale) for instant-ngp: cloud * scale + offset fills [0, 1]^3 (robust extent),
    and the aabb_scale box (side aabb_scale, centred on 0.5) holds the cameras too."""
    cloud = cloud if len(cloud) else camera_centres
    low, high = np.percentile(cloud, CUBE_PERCENTILES[0], axis=0), np.percentile(cloud, CUBE_PERCENTILES[1], axis=0)
    extent = float((high - low).max())
    scale = 1.0 / extent if extent > 1e-12 else 1.0
    offset = 0.5 - scale * (low + high) / 2
    reach = np.abs(np.concatenate((cloud, camera_centres)) * scale + offset - 0.5).max() * 2
    aabb = next((a for a in AABB_SCALES if a >= reach), AABB_SCALES[-1])
    return scale, offset.tolist(), aabb


def depth_fit_scale(rec: Reconstruction) -> float:
    """1, or the factor (a round number) that brings the deepest predicted depth within a 16-bit PNG."""
    deepest = float(rec.depth[rec.valid].max()) if rec.valid.any() else 0.0
    if deepest <= PNG_MAX_DEPTH:
        return 1.0
    exact = PNG_MAX_DEPTH / deepest
    step = 10.0 ** (np.floor(np.log10(exact)) - (SCALE_DIGITS - 1))
    return float(np.floor(exact / step) * step)


def scaled(rec: Reconstruction, scale: float) -> Reconstruction:
    """`rec` with every length (depths, points, camera positions) multiplied by `scale`."""
    if scale == 1.0:
        return rec
    c2w = rec.c2w.copy()
    c2w[:, :, 3] *= scale
    return dataclasses.replace(rec, depth=rec.depth * scale, points=rec.points * scale, c2w=c2w)


def write_nerfstudio(
    rec: Reconstruction, directory: str | Path, options: SceneOptions = SceneOptions(), log: Log = print
) -> Path:
    """Write images/, depth/, transforms.json and the point cloud; returns the transforms.json path."""
    directory = Path(directory)
    scene_scale = depth_fit_scale(rec)
    if scene_scale != 1.0:
        log(
            f"nerfstudio: the scene is up to {float(rec.depth[rec.valid].max()):.4g} units deep, more than a 16-bit "
            f"depth PNG holds at x{PNG_SCALE:g}; this export is scaled by {scene_scale:g} throughout "
            "(dvlt_scene_scale in transforms.json), so no depth is clipped."
        )
    rec = scaled(rec, scene_scale)
    views = write_view_images(rec, directory / "images")
    points = select_points(rec, options)
    write_ply(points, directory / PLY_NAME, normals_of(rec, points))
    (directory / "depth").mkdir(parents=True, exist_ok=True)
    frames = []
    for index, view in enumerate(views):
        depth_path = f"depth/{Path(view.name).stem}.png"
        depth_png(photo_depth(rec, index, view.transform, view.size)).save(directory / depth_path)
        frame = {
            "file_path": f"images/{view.name}",
            "depth_file_path": depth_path,  # nerfstudio
            "depth_path": depth_path,  # instant-ngp
            "transform_matrix": opengl_c2w(view.c2w).tolist(),
        }
        frame.update(intrinsics_entry(view.intrinsics, *view.size))
        frames.append(frame)
    meta: dict = {"camera_model": "PINHOLE", "integer_depth_scale": 1.0 / PNG_SCALE, "dvlt_scene_scale": scene_scale}
    shared = {key: frames[0][key] for key in INTRINSIC_KEYS if all(f[key] == frames[0][key] for f in frames)}
    if len(shared) == len(INTRINSIC_KEYS):  # all or nothing: a partial top level would mix cameras
        meta.update(shared)
        for frame in frames:
            for key in INTRINSIC_KEYS:
                del frame[key]
    scale, offset, aabb = unit_cube_fit(points.xyz.astype(np.float64), rec.c2w[:, :3, 3])
    meta.update({"aabb_scale": aabb, "scale": scale, "offset": offset, "frames": frames, "ply_file_path": PLY_NAME})
    path = directory / "transforms.json"
    path.write_text(json.dumps(meta, indent=2))
    return path

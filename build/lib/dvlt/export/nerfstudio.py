"""`transforms.json` in the layout nerfstudio (and instant-ngp) load, with a PLY for splat initialisation.

Poses are camera-to-world in the OpenGL/Blender camera convention those tools
use (x right, y up, looking down -z): the OpenCV pose with its y and z camera
axes flipped. Intrinsics are written per frame (views may differ) and, for
tools that only read them once, at the top level from the first view.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..records import Reconstruction
from ..scene import SceneOptions, select_points
from .images import write_view_images
from .ply import write_ply

OPENCV_TO_OPENGL_CAMERA = np.diag([1.0, -1.0, -1.0, 1.0])
PLY_NAME = "sparse_pc.ply"


def opengl_c2w(c2w: np.ndarray) -> np.ndarray:
    """4x4 OpenGL camera-to-world from a (3, 4) OpenCV camera-to-world."""
    full = np.eye(4)
    full[:3, :4] = c2w
    return full @ OPENCV_TO_OPENGL_CAMERA


def intrinsics_entry(K: np.ndarray, width: int, height: int) -> dict:
    return {
        "fl_x": float(K[0, 0]),
        "fl_y": float(K[1, 1]),
        "cx": float(K[0, 2]),
        "cy": float(K[1, 2]),
        "w": int(width),
        "h": int(height),
    }


def write_nerfstudio(rec: Reconstruction, directory: str | Path, options: SceneOptions = SceneOptions()) -> Path:
    """Write images/, transforms.json and the point cloud; returns the transforms.json path."""
    directory = Path(directory)
    views = write_view_images(rec, directory / "images")
    write_ply(select_points(rec, options), directory / PLY_NAME)
    frames = []
    for view in views:
        frame = {"file_path": f"images/{view.name}", "transform_matrix": opengl_c2w(view.c2w).tolist()}
        frame.update(intrinsics_entry(view.intrinsics, *view.image.size))
        frames.append(frame)
    first = views[0]
    meta = {
        "camera_model": "PINHOLE",
        **intrinsics_entry(first.intrinsics, *first.image.size),
        "frames": frames,
        "ply_file_path": PLY_NAME,
    }
    path = directory / "transforms.json"
    path.write_text(json.dumps(meta, indent=2))
    return path

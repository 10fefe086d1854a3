"""GLB scene for any glTF viewer: coloured point cloud plus one frustum mesh per camera.

The scene is moved into glTF axes (y up, looking down -z) so the reference
camera looks into the screen the way a viewer's default camera does, and it is
re-centred on the cloud's median point so orbiting feels natural.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..records import Reconstruction
from ..scene import (
    OPENCV_TO_GLTF,
    SceneOptions,
    frustum_lines,
    scene_centre_and_radius,
    select_points,
    tube_mesh,
    view_colors,
)
from .gltf import GlbBuilder

FRUSTUM_FRACTION = 0.08  # pyramid depth relative to the scene radius
TUBE_FRACTION = 0.04  # edge thickness relative to the pyramid depth


@dataclass(frozen=True)
class GlbStats:
    """What went into a GLB file."""

    path: Path
    points: int
    cameras: int
    bytes: int


def write_glb(rec: Reconstruction, path: str | Path, options: SceneOptions = SceneOptions()) -> GlbStats:
    """Write the scene as binary glTF and return its contents' counts and size."""
    path = Path(path)
    points = select_points(rec, options)
    centre, radius = scene_centre_and_radius(points.xyz.astype(np.float64), rec.c2w[:, :3, 3])
    glb = GlbBuilder()
    if len(points):
        glb.add_points("points", (points.xyz - centre) * OPENCV_TO_GLTF, points.rgb)
    views = list(options.views) if options.views is not None else list(range(rec.num_views))
    if options.show_cameras:
        depth, colors = FRUSTUM_FRACTION * radius, view_colors(rec.num_views)
        for index in views:
            starts, ends = frustum_lines(rec.c2w[index], rec.intrinsics[index], rec.size, depth)
            vertices, faces = tube_mesh(
                (starts - centre) * OPENCV_TO_GLTF, (ends - centre) * OPENCV_TO_GLTF, TUBE_FRACTION * depth
            )
            glb.add_mesh(f"camera_{index:03d}", vertices, faces, colors[index])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(glb.to_bytes())
    return GlbStats(path, len(points), len(views) if options.show_cameras else 0, path.stat().st_size)

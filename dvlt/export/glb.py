"""GLB scene for any glTF viewer: coloured point cloud, one frustum mesh and one glTF camera per view.

Each view gets a perspective camera (yfov and aspectRatio of its photo, from the
fitted intrinsics) on a node at its pose, so viewers can look through it; glTF
cameras look down their local -z with +y up. Frustums are drawn over the whole
photo (its aspect, crops undone), not the padded model canvas.

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
    photo_rect,
    scene_centre_and_radius,
    select_points,
    tube_mesh,
    view_colors,
)
from .colmap import rotation_to_quaternion
from .gltf import GlbBuilder

TUBE_FRACTION = 0.04  # edge thickness relative to the pyramid depth
ZNEAR_FRACTION = 0.01  # glTF camera near plane relative to the scene radius
MEASURE_FRACTION = 0.006  # thickness of a measured segment relative to the scene radius
MEASURE_COLOUR = np.array([230, 40, 40], np.uint8)


def camera_node(c2w: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """glTF node (rotation (x, y, z, w), translation) of an OpenCV camera, in the re-centred glTF world.

    World points go x -> F (x - centre) with F = diag(1, -1, -1); camera axes go OpenCV -> glTF by the
    same F, so the node rotation is F R F.
    """
    flip = np.diag(OPENCV_TO_GLTF)
    w, x, y, z = rotation_to_quaternion(flip @ c2w[:3, :3] @ flip)
    return np.array([x, y, z, w]), (c2w[:3, 3] - centre) * OPENCV_TO_GLTF


def field_of_view(rec: Reconstruction, index: int) -> tuple[float, float]:
    """(yfov in radians, aspectRatio = tan(xfov/2) / tan(yfov/2)) of view `index`'s whole photo."""
    transform = rec.transforms[index]
    height, width = transform.original_size
    intrinsics = transform.intrinsics_to_original(rec.intrinsics[index])
    half_x, half_y = width / (2 * intrinsics[0, 0]), height / (2 * intrinsics[1, 1])
    return 2 * float(np.arctan(half_y)), float(half_x / half_y)


@dataclass(frozen=True)
class GlbStats:
    """What went into a GLB file."""

    path: Path
    points: int
    cameras: int
    bytes: int


def write_glb(
    rec: Reconstruction,
    path: str | Path,
    options: SceneOptions = SceneOptions(),
    measurement: tuple[np.ndarray, np.ndarray] | None = None,
) -> GlbStats:
    """Write the scene as binary glTF and return its contents' counts and size; `measurement` (two world
    points) is drawn as a red segment named "measurement"."""
    path = Path(path)
    points = select_points(rec, options)
    centre, radius = scene_centre_and_radius(points.xyz.astype(np.float64), rec.c2w[:, :3, 3])
    glb = GlbBuilder()
    if len(points):
        glb.add_points("points", (points.xyz - centre) * OPENCV_TO_GLTF, points.rgb)
    views = list(options.views) if options.views is not None else list(range(rec.num_views))
    for index in views:
        yfov, aspect = field_of_view(rec, index)
        glb.add_camera(f"view_{index:03d}", yfov, aspect, ZNEAR_FRACTION * radius, *camera_node(rec.c2w[index], centre))
    markers = options.show_cameras and options.frustum_scale > 0
    if markers:
        depth, colors = options.frustum_scale * radius, view_colors(rec.num_views)
        for index in views:
            rect = photo_rect(rec.transforms[index])
            starts, ends = frustum_lines(rec.c2w[index], rec.intrinsics[index], rec.size, depth, rect)
            vertices, faces = tube_mesh(
                (starts - centre) * OPENCV_TO_GLTF, (ends - centre) * OPENCV_TO_GLTF, TUBE_FRACTION * depth
            )
            glb.add_mesh(f"camera_{index:03d}", vertices, faces, colors[index])
    if measurement is not None:
        start, end = ((np.asarray(point, np.float64)[None] - centre) * OPENCV_TO_GLTF for point in measurement)
        glb.add_mesh("measurement", *tube_mesh(start, end, MEASURE_FRACTION * radius), MEASURE_COLOUR)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(glb.to_bytes())
    return GlbStats(path, len(points), len(views) if markers else 0, path.stat().st_size)

"""GLB scene for any glTF viewer: coloured point cloud plus one frustum mesh per camera.

The scene is moved into glTF axes (y up, looking down -z) so the reference
camera looks into the screen the way a viewer's default camera does, and it is
re-centred on the cloud's median point so orbiting feels natural.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from ..pipeline import Reconstruction
from ..scene import OPENCV_TO_GLTF, SceneOptions, frustum_lines, scene_centre_and_radius, select_points, tube_mesh, view_colors

FRUSTUM_FRACTION = 0.08  # pyramid depth relative to the scene radius
TUBE_FRACTION = 0.04  # edge thickness relative to the pyramid depth


@dataclass(frozen=True)
class GlbStats:
    """What went into a GLB file."""

    path: Path
    points: int
    cameras: int
    bytes: int


def camera_meshes(rec: Reconstruction, centre: np.ndarray, radius: float, views: list[int]) -> dict[str, trimesh.Trimesh]:
    """One frustum mesh per chosen view, in glTF coordinates, coloured by view order."""
    depth = FRUSTUM_FRACTION * radius
    colors = view_colors(rec.num_views)
    meshes = {}
    for index in views:
        starts, ends = frustum_lines(rec.c2w[index], rec.intrinsics[index], rec.size, depth)
        vertices, faces = tube_mesh((starts - centre) * OPENCV_TO_GLTF, (ends - centre) * OPENCV_TO_GLTF, TUBE_FRACTION * depth)
        mesh = trimesh.Trimesh(vertices, faces, process=False)
        mesh.visual.face_colors = np.append(colors[index], 255)
        meshes[f"camera_{index:03d}"] = mesh
    return meshes


def write_glb(rec: Reconstruction, path: str | Path, options: SceneOptions = SceneOptions()) -> GlbStats:
    """Write the scene as binary glTF and return its contents' counts and size."""
    path = Path(path)
    points = select_points(rec, options)
    camera_centres = rec.c2w[:, :3, 3]
    centre, radius = scene_centre_and_radius(points.xyz.astype(np.float64), camera_centres)
    scene = trimesh.Scene()
    if len(points):
        xyz = ((points.xyz - centre) * OPENCV_TO_GLTF).astype(np.float32)
        colors = np.column_stack((points.rgb, np.full(len(points), 255, np.uint8)))
        scene.add_geometry(trimesh.PointCloud(xyz, colors=colors), node_name="points", geom_name="points")
    views = list(options.views) if options.views is not None else list(range(rec.num_views))
    if options.show_cameras:
        for name, mesh in camera_meshes(rec, centre, radius, views).items():
            scene.add_geometry(mesh, node_name=name, geom_name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(scene.export(file_type="glb"))
    return GlbStats(path, len(points), len(views) if options.show_cameras else 0, path.stat().st_size)

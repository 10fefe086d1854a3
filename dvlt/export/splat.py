"""Gaussian splats in the INRIA 3DGS PLY layout, one flat splat per selected point.

Fields, all float32, in the order the reference 3DGS writes them: x y z nx ny nz f_dc_0..2 f_rest_0..44
opacity scale_0..2 rot_0..3, as the reference 3DGS (its `load_ply` needs all 45 f_rest at its default SH
degree 3), gsplat, SuperSplat and gr.Model3D read them:

- f_dc: the degree-0 spherical-harmonic colour, (rgb - 0.5) / C0 with C0 = 0.28209479;
- f_rest: the degree-1..3 coefficients, all zero (a view-independent colour);
- opacity: a logit, sigmoid(opacity) = 1 - 1/confidence (DVLT confidence is 1 + exp(x), so this is x);
- scale_*: natural-log standard deviations. In the surface plane a splat is half the spacing of the
  selected points around it: depth / focal per canvas pixel of its view, widened by the point
  budget's thinning and by the surface's tilt away from the camera (1 / sqrt(cos), the mean of
  the two in-plane stretches), and narrowed by the number of views that also put points there
  (its track length), so neighbours touch; along the normal it is THIN_RATIO of that;
- rot_*: a unit quaternion (w, x, y, z) turning the splat's thin axis (its local z) onto the normal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..records import Reconstruction
from ..scene import SceneOptions, keep_mask, normals_of, select_points
from .images import export_views
from .ply import write_records
from .tracks import build_tracks

SH_C0 = 0.28209479177387814
THIN_RATIO = 0.1  # thickness along the normal relative to the in-plane size
MIN_FACING = 0.2  # cos of the steepest tilt the splat size follows (about 78 degrees)
OPACITY_RANGE = (0.01, 0.99)  # alpha is kept inside this so the logit stays finite
SPLAT_NAME = "splats.ply"
SH_DEGREE = 3  # the reference 3DGS trainer's default
SH_REST = 3 * ((SH_DEGREE + 1) ** 2 - 1)  # 45 coefficients beyond the DC term
SH_REST_FIELDS = [f"f_rest_{k}" for k in range(SH_REST)]
SPLAT_FIELDS = (
    "x y z nx ny nz f_dc_0 f_dc_1 f_dc_2".split()
    + SH_REST_FIELDS
    + "opacity scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3".split()
)


def quaternion_z_to(normals: np.ndarray) -> np.ndarray:
    """(N, 4) unit quaternions (w, x, y, z) of the shortest rotation taking +z onto each unit normal."""
    n = np.asarray(normals, dtype=np.float64)
    q = np.column_stack((1.0 + n[:, 2], -n[:, 1], n[:, 0], np.zeros(len(n))))  # (1 + z.n, z x n)
    opposite = q[:, 0] < 1e-9  # normal = -z: any half turn about an axis in the xy plane
    q[opposite] = [0.0, 1.0, 0.0, 0.0]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def splat_records(rec: Reconstruction, options: SceneOptions = SceneOptions(), rest: bool = True) -> np.ndarray:
    """The structured array of splats for the selected points of `rec` (without f_rest_* when not `rest`)."""
    points = select_points(rec, options)
    normals = normals_of(rec, points)
    view, row, col = points.view, points.pixel[:, 1], points.pixel[:, 0]
    # fraction of each view's usable pixels that made it into the budget: thinning widens the spacing
    available = keep_mask(rec, options).reshape(rec.num_views, -1).sum(axis=1)
    kept = np.bincount(view, minlength=rec.num_views)
    thinning = np.sqrt(available / np.maximum(kept, 1))[view]
    overlap = np.sqrt(np.maximum(build_tracks(rec, points, export_views(rec)).lengths(len(points)), 1))
    focal = np.sqrt(rec.intrinsics[view, 0, 0] * rec.intrinsics[view, 1, 1])
    rays = rec.c2w[view, :, 3] - points.xyz
    facing = np.abs((normals * rays).sum(axis=1)) / np.maximum(np.linalg.norm(rays, axis=1), 1e-12)
    tilt = 1 / np.sqrt(np.maximum(facing, MIN_FACING))
    sigma = 0.5 * rec.depth[view, row, col] / focal * thinning * tilt / overlap
    alpha = np.clip(1.0 - 1.0 / np.maximum(points.confidence, 1e-6), *OPACITY_RANGE)
    names = [name for name in SPLAT_FIELDS if rest or name not in SH_REST_FIELDS]
    records = np.empty(len(points), dtype=[(name, "<f4") for name in names])
    records["x"], records["y"], records["z"] = points.xyz.T
    records["nx"], records["ny"], records["nz"] = normals.T
    for channel in range(3):
        records[f"f_dc_{channel}"] = (points.rgb[:, channel] / 255.0 - 0.5) / SH_C0
    for name in SH_REST_FIELDS if rest else ():
        records[name] = 0.0
    records["opacity"] = np.log(alpha / (1.0 - alpha))
    records["scale_0"] = records["scale_1"] = np.log(np.maximum(sigma, 1e-12))
    records["scale_2"] = np.log(np.maximum(sigma * THIN_RATIO, 1e-12))
    quaternions = quaternion_z_to(normals)
    for k in range(4):
        records[f"rot_{k}"] = quaternions[:, k]
    return records


def write_splats(
    rec: Reconstruction, path: str | Path, options: SceneOptions = SceneOptions(), rest: bool = True
) -> Path:
    """Write the splat PLY of `rec` to `path` (world frame = first view, OpenCV axes); `rest=False` leaves out
    the 45 zero f_rest_* fields (a 3.6x smaller file for viewers, which need only the DC colour)."""
    records = splat_records(rec, options, rest)
    return write_records(records, path, "DVLT Gaussian splats; INRIA 3DGS layout; OpenCV axes")


def splat_ply_path(rec: Reconstruction, directory: str | Path, options: SceneOptions = SceneOptions()) -> Path:
    """Write `splats.ply` into `directory` and return its path (for gr.Model3D and downloads)."""
    return write_splats(rec, Path(directory) / SPLAT_NAME, options)

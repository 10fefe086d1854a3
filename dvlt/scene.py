"""Choosing the points to show and the camera markers to draw, from a Reconstruction.

Everything here is vectorised numpy so the app can rebuild the scene from
cached predictions in well under a second when a slider moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import limits
from .edges import depth_edges
from .normals import point_normals
from .records import Reconstruction, ViewTransform

# glTF is y-up with cameras looking down -z; OpenCV is y-down looking down +z.
OPENCV_TO_GLTF = np.array([1.0, -1.0, -1.0])
BLACK_MAX, WHITE_MIN = 16, 240  # a pixel is background when all channels are below / above these


@dataclass(frozen=True)
class SceneOptions:
    """What to keep when turning predictions into a point cloud."""

    conf_percentile: float = limits.CONF_PERCENTILE_DEFAULT  # drop pixels below this confidence percentile
    max_points: int = limits.POINTS_DEFAULT
    views: tuple[int, ...] | None = None  # None = every view
    show_cameras: bool = True
    mask_black: bool = False
    mask_white: bool = False
    drop_edges: bool = limits.DROP_EDGES_DEFAULT  # flying pixels on depth discontinuities (dvlt.edges)
    frustum_scale: float = limits.FRUSTUM_SCALE_DEFAULT  # camera marker depth / scene radius; 0 hides them


@dataclass
class PointSet:
    """Selected points with their colour, confidence, source view and canvas pixel (x, y)."""

    xyz: np.ndarray  # (N, 3) float32, world (OpenCV, view 0) frame
    rgb: np.ndarray  # (N, 3) uint8
    confidence: np.ndarray  # (N,) float32
    view: np.ndarray  # (N,) int32
    pixel: np.ndarray  # (N, 2) int32: column, row on the model canvas

    def __len__(self) -> int:
        return len(self.xyz)


def keep_mask(rec: Reconstruction, options: SceneOptions) -> np.ndarray:
    """(S, H, W) bool of the pixels that pass view, confidence and background filters."""
    mask = rec.valid & np.isfinite(rec.points).all(axis=-1) & (rec.depth > 0)
    if options.views is not None:
        chosen = np.zeros(rec.num_views, dtype=bool)
        chosen[[v for v in options.views if 0 <= v < rec.num_views]] = True
        mask &= chosen[:, None, None]
    if options.mask_black:
        mask &= ~(rec.images.max(axis=-1) <= BLACK_MAX)
    if options.mask_white:
        mask &= ~(rec.images.min(axis=-1) >= WHITE_MIN)
    if options.drop_edges:
        mask &= ~depth_edges(rec.depth, rec.valid)
    if options.conf_percentile > 0 and mask.any():
        threshold = np.percentile(rec.confidence[mask], options.conf_percentile)
        mask &= rec.confidence >= threshold
    return mask


def select_points(rec: Reconstruction, options: SceneOptions = SceneOptions()) -> PointSet:
    """The confident, in-budget points; subsampling is seeded so a re-render is stable."""
    flat = np.flatnonzero(keep_mask(rec, options))
    if len(flat) > options.max_points:
        flat = np.sort(np.random.default_rng(0).choice(flat, options.max_points, replace=False))
    view, row, col = np.unravel_index(flat, rec.depth.shape)
    return PointSet(
        xyz=rec.points.reshape(-1, 3)[flat],
        rgb=rec.images.reshape(-1, 3)[flat],
        confidence=rec.confidence.reshape(-1)[flat],
        view=view.astype(np.int32),
        pixel=np.stack((col, row), axis=-1).astype(np.int32),
    )


def normals_of(rec: Reconstruction, points: PointSet) -> np.ndarray:
    """(N, 3) unit surface normals of selected points, facing the camera of the view each came from."""
    return point_normals(rec, points.view, points.pixel[:, 1], points.pixel[:, 0])


def scene_centre_and_radius(points: np.ndarray, camera_centres: np.ndarray) -> tuple[np.ndarray, float]:
    """Median point, and the 90th-percentile distance to it (cameras count when there are few points)."""
    cloud = points if len(points) else camera_centres
    centre = np.median(cloud, axis=0)
    spread = np.linalg.norm(np.concatenate((cloud, camera_centres)) - centre, axis=1)
    radius = float(np.percentile(spread, 90)) if len(spread) else 1.0
    return centre, radius if radius > 1e-9 else 1.0


def view_colors(count: int) -> np.ndarray:
    """(count, 3) uint8 gradient from warm (reference view) to cool (last view)."""
    t = np.linspace(0.0, 1.0, max(count, 1))[:count, None]
    warm, middle, cool = np.array([230, 60, 50]), np.array([250, 200, 60]), np.array([50, 110, 230])
    colors = np.where(t < 0.5, warm + (middle - warm) * (t * 2), middle + (cool - middle) * (t * 2 - 1))
    return colors.round().astype(np.uint8)


def photo_rect(transform: ViewTransform) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): where the whole photo lies on the model canvas (crops and padding undone)."""
    height, width = transform.original_size
    (x0, y0), (x1, y1) = transform.original_to_canvas(np.array([[0.0, 0.0], [width, height]]))
    return float(x0), float(y0), float(x1), float(y1)


def frustum_lines(
    c2w: np.ndarray, intrinsics: np.ndarray, size: tuple[int, int], depth: float, rect: tuple[float, ...] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Edges of one camera's viewing pyramid (apex to 4 corners, the image rectangle, an 'up' tick).

    `rect` (x0, y0, x1, y1) is the image rectangle in the pixels of `intrinsics` (default: the whole (h, w) `size`).
    Returns (starts, ends), each (E, 3), in world coordinates.
    """
    height, width = size
    x0, y0, x1, y1 = rect if rect is not None else (0.0, 0.0, width, height)
    corners_px = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    corners = np.column_stack(((corners_px - intrinsics[:2, 2]) / np.diag(intrinsics)[:2], np.ones(4))) * depth
    top_mid = (corners[0] + corners[1]) / 2
    tick = top_mid + np.array([0.0, -0.25 * (corners[2, 1] - corners[0, 1]), 0.0])
    local_starts = np.vstack((np.zeros((4, 3)), corners, corners[[0]], corners[[1]]))
    local_ends = np.vstack((corners, np.roll(corners, -1, axis=0), tick[None], tick[None]))
    R, t = c2w[:3, :3], c2w[:3, 3]
    return local_starts @ R.T + t, local_ends @ R.T + t


def tube_mesh(starts: np.ndarray, ends: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Square tubes along segments, as (vertices (8E, 3), faces (8E, 3)); open-ended (draw double-sided)."""
    direction = ends - starts
    length = np.linalg.norm(direction, axis=1, keepdims=True)
    # A zero-length segment (a camera at depth 0) gets an arbitrary axis so its tube stays finite.
    direction = np.where(length > 1e-12, direction / np.maximum(length, 1e-12), [[0.0, 0.0, 1.0]])
    helper = np.where(np.abs(direction[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    u = np.cross(direction, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(direction, u)
    ring = np.stack((u, v, -u, -v), axis=1) * radius  # (E, 4, 3)
    vertices = np.concatenate((starts[:, None] + ring, ends[:, None] + ring), axis=1)  # (E, 8, 3)
    quad = []
    for k in range(4):
        a, b, c, d = k, (k + 1) % 4, 4 + (k + 1) % 4, 4 + k
        quad += [[a, b, c], [a, c, d]]
    base = (np.arange(len(starts)) * 8)[:, None, None]
    faces = (np.array(quad)[None] + base).reshape(-1, 3)
    return vertices.reshape(-1, 3), faces

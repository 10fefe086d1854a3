"""A known scene for export tests, built without any dvlt geometry code: a textured sphere before a tilted
wall, seen by four pinhole cameras with known intrinsics (off-centre principal points, fx != fy on view 1,
a portrait view 3), depth and points rendered exactly by ray casting.

Each photo is mapped onto a 126x168 model canvas the way preprocessing does (resize, crop, pad), with
non-integer scales so any sub-pixel slip in an exporter shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from dvlt.records import Reconstruction, ViewTransform

CANVAS = (126, 168)  # (H, W)
SPHERE_CENTRE, SPHERE_RADIUS = np.array([0.05, 0.0, 3.0]), 0.6
WALL_POINT = np.array([0.0, 0.0, 4.4])
WALL_NORMAL = np.array([0.18, -0.12, -1.0]) / np.linalg.norm([0.18, -0.12, -1.0])  # faces the cameras

# photo size (w, h), intrinsics (fx, fy, cx, cy), camera centre, roll (degrees)
CAMERAS = [
    ((330, 290), (290.0, 290.0, 171.0, 139.0), (0.0, 0.0, 0.0), 0.0),
    ((330, 290), (310.0, 282.0, 158.5, 151.0), (0.55, 0.12, 0.15), 4.0),
    ((330, 290), (270.0, 270.0, 169.0, 141.5), (-0.5, -0.18, 0.25), -3.0),
    ((250, 330), (300.0, 300.0, 121.0, 172.0), (0.2, 0.45, -0.1), 2.0),
]
# resized (h, w), crop (top, left), pad (top, left), valid (h, w) on the canvas
LANDSCAPE = ((148, 168), (11, 0), (0, 0), (126, 168))  # centre crop: 21.55 photo rows cut at the top
PORTRAIT = ((126, 95), (0, 0), (0, 36), (126, 95))


@dataclass
class Truth:
    """Everything known about the scene, in photo pixels and OpenCV axes (view 0 = world)."""

    photo_intrinsics: list[np.ndarray]
    photo_sizes: list[tuple[int, int]]  # (w, h)
    c2w: np.ndarray  # (4, 3, 4)

    def render(self, view: int, xs: np.ndarray, ys: np.ndarray, c2w: np.ndarray | None = None) -> dict:
        """Ray-cast photo positions (x, y) of `view`: z-depth, world point, normal, colour, hit mask."""
        c2w = self.c2w[view] if c2w is None else c2w
        fx, fy, cx, cy = (self.photo_intrinsics[view][i, j] for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
        rays_cam = np.stack(((xs - cx) / fx, (ys - cy) / fy, np.ones_like(xs)), axis=-1)  # z = 1
        rays = rays_cam @ c2w[:, :3].T
        origin = c2w[:, 3]
        # sphere: |o + t d - c|^2 = r^2
        oc = origin - SPHERE_CENTRE
        a = (rays**2).sum(-1)
        b = 2 * (rays @ oc)
        c = oc @ oc - SPHERE_RADIUS**2
        disc = b**2 - 4 * a * c
        t_sphere = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
        t_sphere = np.where(t_sphere > 0, t_sphere, np.inf)
        t_wall = ((WALL_POINT - origin) @ WALL_NORMAL) / (rays @ WALL_NORMAL)
        t_wall = np.where(t_wall > 0, t_wall, np.inf)
        on_sphere = t_sphere < t_wall
        t = np.minimum(t_sphere, t_wall)
        points = origin + t[..., None] * rays
        normals = np.where(on_sphere[..., None], (points - SPHERE_CENTRE) / SPHERE_RADIUS, WALL_NORMAL)
        return {"depth": t, "points": points, "normals": normals, "rgb": texture(points), "hit": np.isfinite(t)}

    def photo(self, view: int) -> Image.Image:
        """The photo of `view` rendered at its own resolution (pixel centres)."""
        width, height = self.photo_sizes[view]
        xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        return Image.fromarray(self.render(view, xs, ys)["rgb"])

    def photo_depth(self, view: int) -> np.ndarray:
        width, height = self.photo_sizes[view]
        xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        return self.render(view, xs, ys)["depth"]


def texture(points: np.ndarray) -> np.ndarray:
    """A solid (3D) texture: the same surface point has the same colour in every view."""
    rng = np.random.default_rng(7)
    directions = rng.normal(size=(8, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = rng.uniform(0.15, 0.4, 8)
    phases = rng.uniform(0, 2 * np.pi, (3, 8))
    waves = np.sin(
        (points @ directions.T) * (2 * np.pi / wavelengths) + phases[:, None, None, :]
        if points.ndim == 3
        else (points @ directions.T) * (2 * np.pi / wavelengths) + phases[:, None, :]
    )
    return np.clip(127.5 + 127.5 * np.moveaxis(waves.mean(axis=-1), 0, -1) * 1.6, 0, 255).astype(np.uint8)


def look_at(centre: np.ndarray, target: np.ndarray, roll_degrees: float) -> np.ndarray:
    """OpenCV c2w (3, 4) at `centre` looking at `target` (y down), rolled about the viewing axis."""
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, [0.0, -1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    roll = np.radians(roll_degrees)
    right, down = np.cos(roll) * right + np.sin(roll) * down, -np.sin(roll) * right + np.cos(roll) * down
    return np.column_stack((right, down, forward, centre))


def rotate_about_centre(c2w: np.ndarray, axis: np.ndarray, degrees: float) -> np.ndarray:
    """c2w turned by `degrees` about a world `axis` through its own centre."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    angle = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    turn = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    return np.column_stack((turn @ c2w[:, :3], c2w[:, 3]))


def sphere_truth() -> Truth:
    intrinsics = [np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]) for _, (fx, fy, cx, cy), _, _ in CAMERAS]
    c2w = np.stack(
        [np.column_stack((np.eye(3), np.zeros(3)))]
        + [look_at(np.array(centre), SPHERE_CENTRE, roll) for _, _, centre, roll in CAMERAS[1:]]
    )
    return Truth(intrinsics, [size for size, _, _, _ in CAMERAS], c2w)


def sphere_scene(perturb: tuple[int, float] | None = None, with_photos: bool = True) -> tuple[Reconstruction, Truth]:
    """The Reconstruction a perfect model would predict (optionally with view `perturb[0]` turned by
    `perturb[1]` degrees: its depth stays right, its pose and hence its points are wrong), and the truth."""
    truth = sphere_truth()
    height, width = CANVAS
    views = len(CAMERAS)
    images = np.zeros((views, height, width, 3), np.uint8)
    valid = np.zeros((views, height, width), bool)
    depth = np.zeros((views, height, width), np.float32)
    points = np.zeros((views, height, width, 3), np.float32)
    canvas_intrinsics, transforms, c2w = [], [], truth.c2w.copy()
    if perturb is not None:
        c2w[perturb[0]] = rotate_about_centre(c2w[perturb[0]], [0.3, 1.0, 0.2], perturb[1])
    for view, ((photo_w, photo_h), _, _, _) in enumerate(CAMERAS):
        resized, crop, pad, valid_size = LANDSCAPE if photo_w > photo_h else PORTRAIT
        sy, sx = resized[0] / photo_h, resized[1] / photo_w
        K = truth.photo_intrinsics[view]
        canvas_K = np.array(
            [
                [K[0, 0] * sx, 0, K[0, 2] * sx - crop[1] + pad[1]],
                [0, K[1, 1] * sy, K[1, 2] * sy - crop[0] + pad[0]],
                [0, 0, 1],
            ]
        )
        canvas_intrinsics.append(canvas_K)
        transforms.append(ViewTransform((photo_h, photo_w), resized, crop, pad, valid_size))
        rows, cols = np.mgrid[pad[0] : pad[0] + valid_size[0], pad[1] : pad[1] + valid_size[1]]
        xs = (cols + 0.5 - pad[1] + crop[1]) / sx  # canvas pixel centre -> photo position
        ys = (rows + 0.5 - pad[0] + crop[0]) / sy
        seen = truth.render(view, xs, ys)
        region = (slice(pad[0], pad[0] + valid_size[0]), slice(pad[1], pad[1] + valid_size[1]))
        images[view][region] = seen["rgb"]
        valid[view][region] = True
        depth[view][region] = seen["depth"]
        camera_points = seen["depth"][..., None] * np.stack(
            ((xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1], np.ones_like(xs)), axis=-1
        )
        points[view][region] = camera_points @ c2w[view][:, :3].T + c2w[view][:, 3]
    rec = Reconstruction(
        name="known",
        images=images,
        valid=valid,
        depth=depth,
        confidence=np.full((views, height, width), 3.0, np.float32),
        points=points,
        c2w=c2w,
        intrinsics=np.stack(canvas_intrinsics),
        transforms=transforms,
        steps=8,
        names=[f"view{i}.jpg" for i in range(views)],
        originals=[truth.photo(v) for v in range(views)] if with_photos else None,
    )
    return rec, truth

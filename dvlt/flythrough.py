"""A fly-through video of a reconstruction, rendered on the CPU: flythrough.mp4 (H.264 via PyAV).

The virtual camera follows a smooth path through the input cameras (rotations interpolated on SO(3) with
scipy's Slerp, centres on a cubic spline). Each frame splats the point cloud with a z-buffer; every point
covers a square as wide as the surface patch its source pixel saw, projected at its new depth, so surfaces
look closed from nearby and stay sharp from afar. numpy only, no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial.transform import Rotation, Slerp
from tqdm import tqdm

from .records import Reconstruction
from .scene import SceneOptions, keep_mask, select_points

Progress = Callable[[float, str], None]  # (fraction in [0, 1], message), as dvlt.pipeline
VIDEO_NAME = "flythrough.mp4"
MAX_KEY_VIEWS = 12  # more input cameras than this are thinned evenly, so a long clip's jitter does not shake
NEAR = 0.02  # points nearer than this fraction of the median depth are skipped (they would fill the frame)


@dataclass(frozen=True)
class VideoSettings:
    """Length, frame rate, width and look of the fly-through."""

    seconds: float = 8.0
    fps: int = 24
    width: int = 640
    max_radius: int = 3  # largest splat half-width in pixels (a 7x7 square)
    background: tuple[int, int, int] = (18, 18, 22)
    crf: int = 23  # H.264 quality (lower is better and larger)

    @property
    def frames(self) -> int:
        return max(2, round(self.seconds * self.fps))


def key_views(count: int) -> np.ndarray:
    """Indices of the input cameras the path passes through (all of them, or MAX_KEY_VIEWS evenly spaced)."""
    return np.unique(np.linspace(0, count - 1, min(count, MAX_KEY_VIEWS)).round().astype(int))


def look_at(centre: np.ndarray, target: np.ndarray, down: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) of an OpenCV camera at `centre` looking at `target`, its y axis near `down`."""
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(down, forward)
    right /= np.linalg.norm(right)
    return np.column_stack((right, np.cross(forward, right), forward))


def camera_path(c2w: np.ndarray, frames: int, focus: float) -> np.ndarray:
    """(frames, 3, 4) OpenCV c2w along a smooth path through the key cameras; one camera sways around its view
    (a twentieth of `focus`, the median depth, to each side) while looking at the point `focus` ahead."""
    keys = c2w[key_views(len(c2w))]
    if len(keys) == 1:
        R, centre = keys[0][:, :3], keys[0][:, 3]
        target = centre + R[:, 2] * focus
        sway = [centre + R[:, 0] * focus * s for s in (-0.05, 0.0, 0.05)]
        keys = np.stack([np.column_stack((look_at(c, target, R[:, 1]), c)) for c in sway])
    times = np.linspace(0.0, 1.0, len(keys))
    at = np.linspace(0.0, 1.0, frames)
    rotations = Slerp(times, Rotation.from_matrix(keys[:, :, :3]))(at).as_matrix()
    centres = CubicSpline(times, keys[:, :, 3], bc_type="natural")(at)
    return np.concatenate((rotations, centres[:, :, None]), axis=2)


@dataclass
class Cloud:
    """Points to render: position, colour and the world size of the surface patch each stands for."""

    xyz: np.ndarray  # (3, N) float32: one row per axis, so per-axis arithmetic runs on contiguous rows
    rgb: np.ndarray  # (N, 3) uint8
    size: np.ndarray  # (N,) float32, world units


def cloud_of(rec: Reconstruction, options: SceneOptions) -> Cloud:
    """The selected points, each sized as its source pixel's footprint (depth / focal), widened by the
    subsampling so a thinned cloud still covers the surface."""
    points = select_points(rec, options)
    kept = int(keep_mask(rec, options).sum())
    thinning = np.sqrt(kept / max(len(points), 1))
    rows, cols = points.pixel[:, 1], points.pixel[:, 0]
    focal = np.sqrt(rec.intrinsics[points.view, 0, 0] * rec.intrinsics[points.view, 1, 1])
    size = rec.depth[points.view, rows, cols] / focal * thinning
    return Cloud(np.ascontiguousarray(points.xyz.T, np.float32), points.rgb, size.astype(np.float32))


def render_frame(
    cloud: Cloud, c2w: np.ndarray, intrinsics: np.ndarray, size: tuple[int, int], settings: VideoSettings, near: float
) -> np.ndarray:
    """(h, w, 3) uint8 image of the cloud seen from `c2w`: square splats, the nearest one wins each pixel."""
    height, width = size
    reach = settings.max_radius
    rotation = c2w[:, :3].astype(np.float32)
    shift = (c2w[:, :3].T @ c2w[:, 3]).astype(np.float32)
    x, y, z = cloud.xyz

    def to_camera(axis: int, rows: slice | np.ndarray) -> np.ndarray:
        """Camera coordinate `axis` of the chosen points, R^T (x - c), per row (faster than a matmul here)."""
        column = rotation[:, axis]
        return x[rows] * column[0] + y[rows] * column[1] + z[rows] * column[2] - shift[axis]

    depth = to_camera(2, slice(None))
    ahead = np.flatnonzero(depth > near)
    depth = depth[ahead]
    fx, fy, cx, cy = (np.float32(intrinsics[i, j]) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    pad = 2 * reach  # the buffer's margin: splats of centres up to `reach` outside the frame still fit
    u = np.floor(fx * to_camera(0, ahead) / depth + cx).astype(np.int64) + pad
    v = np.floor(fy * to_camera(1, ahead) / depth + cy).astype(np.int64) + pad
    inside = (u >= reach) & (u < width + 3 * reach) & (v >= reach) & (v < height + 3 * reach)
    ahead, depth, u, v = ahead[inside], depth[inside], u[inside], v[inside]
    radius = np.clip(np.rint(fx * cloud.size[ahead] / depth / 2 - 0.25), 0, reach).astype(np.int64)
    # z-buffer: per pixel the smallest (quantised depth, point index) key, by np.minimum.at over every splat
    padded_w = width + 2 * pad
    depth_code = (depth / depth.max() * (2**31 - 1)).astype(np.uint64) if len(depth) else depth.astype(np.uint64)
    key = (depth_code << np.uint64(32)) | ahead.astype(np.uint64)
    base = v * padded_w + u
    empty = np.iinfo(np.uint64).max
    buffer = np.full((height + 2 * pad) * padded_w, empty, np.uint64)
    for r in range(reach + 1):
        chosen = np.flatnonzero(radius == r)
        if not len(chosen):
            continue
        chosen_base, chosen_key = base[chosen], key[chosen]
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                np.minimum.at(buffer, chosen_base + (dy * padded_w + dx), chosen_key)
    buffer = buffer.reshape(height + 2 * pad, padded_w)[pad : pad + height, pad : pad + width].ravel()
    image = np.empty((height * width, 3), np.uint8)
    image[:] = settings.background
    hit = buffer != empty
    image[hit] = cloud.rgb[(buffer[hit] & np.uint64(0xFFFFFFFF)).astype(np.int64)]
    return image.reshape(height, width, 3)


def video_camera(rec: Reconstruction, width: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Intrinsics and (h, w) of the virtual camera: the input cameras' median intrinsics (so a frame at an input
    camera shows what that view saw) scaled to the canvas's aspect at `width` pixels (even sides, as H.264's
    4:2:0 needs)."""
    canvas_h, canvas_w = rec.size
    height = max(2, int(round(width * canvas_h / canvas_w / 2)) * 2)
    width = max(2, width // 2 * 2)
    fx, fy, cx, cy = (float(np.median(rec.intrinsics[:, i, j])) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    sx, sy = width / canvas_w, height / canvas_h
    return np.array([[fx * sx, 0, cx * sx], [0, fy * sy, cy * sy], [0, 0, 1.0]]), (height, width)


def write_flythrough(
    rec: Reconstruction,
    path: str | Path,
    options: SceneOptions = SceneOptions(),
    progress: Progress | None = None,
    settings: VideoSettings = VideoSettings(),
) -> Path:
    """Render the fly-through of `rec`'s selected points to an H.264 .mp4 at `path`; returns the path."""
    path = Path(path)
    bar = None
    if progress is None:  # the command line: a bar on a terminal, nothing when piped
        bar = tqdm(total=settings.frames, desc="fly-through", unit="frame", disable=None, leave=False)
    report = progress or (lambda fraction, message: bar.update(1) if fraction > 0 else None)
    report(0.0, "Preparing the fly-through")
    cloud = cloud_of(rec, options)
    usable = rec.valid & (rec.depth > 0)
    focus = float(np.median(rec.depth[usable])) if usable.any() else 1.0
    intrinsics, size = video_camera(rec, settings.width)
    path_c2w = camera_path(rec.c2w, settings.frames, focus)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=settings.fps)
        stream.width, stream.height = size[1], size[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(settings.crf), "preset": "veryfast"}
        for index, c2w in enumerate(path_c2w):
            image = render_frame(cloud, c2w, intrinsics, size, settings, NEAR * focus)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            report((index + 1) / len(path_c2w), f"Rendering the fly-through: frame {index + 1}/{len(path_c2w)}")
        container.mux(stream.encode(None))
    if bar is not None:
        bar.close()
    return path

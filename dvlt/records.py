"""The data records every stage shares, in plain numpy (no torch): a view's geometry and a reconstruction.

`ViewTransform` maps an original photo onto the model's canvas; `Reconstruction`
holds one run's predictions. Scene building, visuals and exports import only
this module, so they load without torch or the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class ViewTransform:
    """How one original image maps onto the model's (height, width) canvas.

    canvas coordinate = (original coordinate * scale) - crop + pad, per axis,
    in continuous pixel coordinates (pixel i spans [i, i+1)).
    """

    original_size: tuple[int, int]  # (h, w) of the photo
    resized_size: tuple[int, int]  # (h, w) after the resize
    crop: tuple[int, int]  # (top, left) removed after the resize
    pad: tuple[int, int]  # (top, left) added on the canvas
    valid_size: tuple[int, int]  # (h, w) of real pixels on the canvas

    @property
    def scale(self) -> tuple[float, float]:
        """(sy, sx): resized / original along each axis (they differ slightly from rounding)."""
        return self.resized_size[0] / self.original_size[0], self.resized_size[1] / self.original_size[1]

    def canvas_to_original(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) canvas (x, y) -> original photo (x, y)."""
        sy, sx = self.scale
        offset = np.array([self.crop[1] - self.pad[1], self.crop[0] - self.pad[0]], dtype=np.float64)
        return (np.asarray(xy, dtype=np.float64) + offset) / np.array([sx, sy])

    def original_to_canvas(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) original photo (x, y) -> canvas (x, y); the inverse of `canvas_to_original`."""
        sy, sx = self.scale
        offset = np.array([self.crop[1] - self.pad[1], self.crop[0] - self.pad[0]], dtype=np.float64)
        return np.asarray(xy, dtype=np.float64) * np.array([sx, sy]) - offset

    def intrinsics_to_canvas(self, intrinsics: np.ndarray) -> np.ndarray:
        """3x3 intrinsics of the original photo -> canvas intrinsics (inverse of `intrinsics_to_original`)."""
        sy, sx = self.scale
        out = np.array(intrinsics, dtype=np.float64)
        out[0, 0], out[1, 1] = intrinsics[0, 0] * sx, intrinsics[1, 1] * sy
        out[:2, 2] = self.original_to_canvas(np.array([intrinsics[0, 2], intrinsics[1, 2]]))
        return out

    def intrinsics_to_original(self, intrinsics: np.ndarray) -> np.ndarray:
        """3x3 canvas intrinsics -> intrinsics of the original photo."""
        sy, sx = self.scale
        out = np.array(intrinsics, dtype=np.float64)
        out[0, 0], out[1, 1] = intrinsics[0, 0] / sx, intrinsics[1, 1] / sy
        out[:2, 2] = self.canvas_to_original(np.array([intrinsics[0, 2], intrinsics[1, 2]]))
        return out


@dataclass
class Reconstruction:
    """Everything predicted for one set of views, on the model's (H, W) canvas.

    points: depth un-projected through the fitted cameras at pixel centres (the
    convention of the predicted rays and of COLMAP); c2w: OpenCV camera-to-world,
    view 0 = world frame.
    """

    name: str
    images: np.ndarray  # (S, H, W, 3) uint8, the model's input
    valid: np.ndarray  # (S, H, W) bool, False on padding
    depth: np.ndarray  # (S, H, W) float32
    confidence: np.ndarray  # (S, H, W) float32, >= 1
    points: np.ndarray  # (S, H, W, 3) float32
    c2w: np.ndarray  # (S, 3, 4) float64
    intrinsics: np.ndarray  # (S, 3, 3) float64
    transforms: list[ViewTransform]
    steps: int
    names: list[str] = field(default_factory=list)  # one unique file name per view
    seconds: dict[str, float] = field(default_factory=dict)
    originals: list[Image.Image] | None = None  # full-resolution frames, for exports that copy images
    points_direct: np.ndarray | None = None  # (S, H, W, 3) float32, the direct point head (origin + ray * depth)
    scale_note: str = ""  # how the unit was set, e.g. "scale set from a known distance of 2.50 m"

    @property
    def num_views(self) -> int:
        return self.depth.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the model canvas."""
        return self.depth.shape[1], self.depth.shape[2]

    def point_at(self, view: int, xy: tuple[float, float]) -> np.ndarray:
        """The 3D point under photo position (x, y) of `view` (pixel centres at i + 0.5); see dvlt.measure."""
        from .measure import point_at

        return point_at(self, view, xy)

    def distance(self, view_a: int, xy_a: tuple[float, float], view_b: int, xy_b: tuple[float, float]) -> float:
        """Distance between the 3D points under two photo positions; see dvlt.measure."""
        from .measure import distance

        return distance(self, view_a, xy_a, view_b, xy_b)

    def scaled(self, factor: float, note: str = "") -> Reconstruction:
        """A copy with every length multiplied by `factor` (depth, points, camera centres); see dvlt.measure."""
        from .measure import scaled

        return scaled(self, factor, note)

    def to_npz(self, path: str | Path) -> Path:
        """Raw predictions + cameras + preprocessing geometry in one compressed .npz."""
        path = Path(path)
        optional = {} if self.points_direct is None else {"world_points_direct": self.points_direct}
        np.savez_compressed(
            path,
            **optional,
            images=self.images,
            valid_pixels=self.valid,
            depth=self.depth,
            depth_conf=self.confidence,
            world_points=self.points,
            extrinsics_c2w=self.c2w,
            intrinsics=self.intrinsics,
            original_sizes=np.array([t.original_size for t in self.transforms]),
            resized_sizes=np.array([t.resized_size for t in self.transforms]),
            crops=np.array([t.crop for t in self.transforms]),
            pads=np.array([t.pad for t in self.transforms]),
            valid_sizes=np.array([t.valid_size for t in self.transforms]),
            steps=np.array(self.steps),
            name=np.array(self.name),
            names=np.array(self.names),
            scale_note=np.array(self.scale_note),
        )
        return path

    @classmethod
    def from_npz(cls, path: str | Path) -> Reconstruction:
        """Read back what `to_npz` wrote (without the original photos)."""
        data = np.load(path)
        transforms = [
            ViewTransform(tuple(o), tuple(r), tuple(c), tuple(p), tuple(v))
            for o, r, c, p, v in zip(
                data["original_sizes"], data["resized_sizes"], data["crops"], data["pads"], data["valid_sizes"]
            )
        ]
        return cls(
            name=str(data["name"]),
            images=data["images"],
            valid=data["valid_pixels"],
            depth=data["depth"],
            confidence=data["depth_conf"],
            points=data["world_points"],
            c2w=data["extrinsics_c2w"],
            intrinsics=data["intrinsics"],
            transforms=transforms,
            steps=int(data["steps"]),
            names=[str(n) for n in data["names"]],
            points_direct=data["world_points_direct"] if "world_points_direct" in data else None,
            scale_note=str(data["scale_note"]) if "scale_note" in data else "",
        )

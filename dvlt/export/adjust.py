"""Optional camera changes applied before writing: shared camera, centred principal points, bundle adjustment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..records import Reconstruction
from ..scene import SceneOptions
from .refine import refine_cameras
from .refit import centre_principal_points, share_camera

Log = Callable[[str], None]


@dataclass(frozen=True)
class CameraOptions:
    """How to change the predicted cameras before exporting them."""

    refine: bool = False  # bundle adjustment with pycolmap on photometrically matched tracks
    shared_camera: bool = False  # one camera (averaged intrinsics) when all photos have the same size
    centre_principal_point: bool = False  # cx, cy at the photo centre, poses re-fitted (reference 3DGS)


def adjust_cameras(
    rec: Reconstruction, cameras: CameraOptions, options: SceneOptions = SceneOptions(), log: Log = print
) -> Reconstruction:
    """`rec` with the requested camera changes, in a fixed order: intrinsics first, then bundle adjustment."""
    if cameras.shared_camera:
        rec = share_camera(rec, log)
    if cameras.centre_principal_point:
        rec = centre_principal_points(rec, log)
    if cameras.refine:
        rec, _ = refine_cameras(rec, options, log)
    return rec

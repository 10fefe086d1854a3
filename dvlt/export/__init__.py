"""Writing a Reconstruction in the formats 3D tools read; one module per format.

export_all(rec, "out/", ["glb", "ply", "splat", "colmap", "nerfstudio", "depth", "npz"])

Nothing here imports torch: `dvlt export predictions.npz` re-exports saved predictions without the model.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import OptionError
from ..records import Reconstruction
from ..scene import SceneOptions
from .adjust import CameraOptions, Log, adjust_cameras
from .colmap import write_colmap
from .depth import write_depth_maps
from .glb import GlbStats, write_glb
from .nerfstudio import write_nerfstudio
from .ply import write_ply, write_point_cloud
from .refine import RefineReport, refine_cameras
from .rerun import write_rerun
from .splat import SPLAT_NAME, splat_ply_path, write_splats

Writer = Callable[[Reconstruction, Path, SceneOptions, Log], Path]

# format name -> (what it writes, writer(rec, output directory, options, log) -> written path)
FORMATS: dict[str, tuple[str, Writer]] = {
    "glb": (
        "scene.glb: point cloud + camera frustums for glTF viewers",
        lambda r, d, o, log: write_glb(r, d / "scene.glb", o).path,
    ),
    "ply": (
        "points.ply: binary PLY with normals, colour and confidence",
        lambda r, d, o, log: write_point_cloud(r, d / "points.ply", o),
    ),
    "splat": (
        f"{SPLAT_NAME}: Gaussian splats in the INRIA 3DGS PLY layout",
        lambda r, d, o, log: write_splats(r, d / SPLAT_NAME, o),
    ),
    "colmap": (
        "colmap/: images, images_2/4/8, sparse/0 model of multi-view tracks (3DGS, gsplat, nerfstudio, COLMAP)",
        lambda r, d, o, log: write_colmap(r, d / "colmap", o).parent.parent,
    ),
    "nerfstudio": (
        "nerfstudio/: images + depth + transforms.json + PLY (nerfstudio, instant-ngp)",
        lambda r, d, o, log: write_nerfstudio(r, d / "nerfstudio", o, log).parent,
    ),
    "depth": (
        "depth/: 16-bit PNG (x1000) and float32 .npy depth + confidence per view",
        lambda r, d, o, log: write_depth_maps(r, d / "depth", log),
    ),
    "npz": (
        "predictions.npz: raw depth, confidence, points, cameras",
        lambda r, d, o, log: r.to_npz(d / "predictions.npz"),
    ),
    "rerun": (
        "scene.rrd: Rerun recording, cameras with image/depth/confidence + points (needs rerun-sdk)",
        lambda r, d, o, log: write_rerun(r, d / "scene.rrd", o),
    ),
    "video": (
        "flythrough.mp4: an 8 s H.264 fly-through of the points along the input cameras (not in 'all')",
        lambda r, d, o, log: write_video(r, d, o),
    ),
}
ON_REQUEST_FORMATS = {"video"}  # slow to write, so 'all' leaves them out; name them to get them
OPTIONAL_FORMATS = {"rerun": "rerun"}  # format -> module it needs; 'all' skips the ones not installed


def available(name: str) -> bool:
    """True when the format's optional dependency (if any) can be imported."""
    module = OPTIONAL_FORMATS.get(name)
    return module is None or importlib.util.find_spec(module) is not None


def write_video(rec: Reconstruction, directory: Path, options: SceneOptions) -> Path:
    """flythrough.mp4 in `directory` (scipy and PyAV load only when a video is asked for)."""
    from ..flythrough import VIDEO_NAME, write_flythrough

    return write_flythrough(rec, directory / VIDEO_NAME, options)


def parse_formats(text: str) -> list[str]:
    """'glb,ply' or 'all' -> validated list of format names."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return [name for name in FORMATS if available(name) and name not in ON_REQUEST_FORMATS]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise OptionError(f"unknown format(s) {unknown or text!r}; choose from {', '.join(FORMATS)} or 'all'")
    return names


def export_all(
    rec: Reconstruction,
    directory: str | Path,
    formats: Iterable[str],
    options: SceneOptions = SceneOptions(),
    cameras: CameraOptions = CameraOptions(),
    log: Log = print,
) -> dict[str, Path]:
    """Write each requested format under `directory` (after any camera changes); returns {format: written path}.

    The raw `npz` is written from the predictions as they are, not from the adjusted cameras.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    formats = list(formats)
    adjusted = adjust_cameras(rec, cameras, options, log) if cameras != CameraOptions() else rec
    return {name: FORMATS[name][1](rec if name == "npz" else adjusted, directory, options, log) for name in formats}


def zip_directory(directory: str | Path, archive: str | Path) -> Path:
    """Zip a folder (for one-click downloads); returns the .zip path."""
    archive = Path(archive)
    return Path(
        shutil.make_archive(
            str(archive.with_suffix("")), "zip", root_dir=Path(directory).parent, base_dir=Path(directory).name
        )
    )


__all__ = [
    "write_rerun",
    "FORMATS",
    "CameraOptions",
    "GlbStats",
    "RefineReport",
    "adjust_cameras",
    "refine_cameras",
    "splat_ply_path",
    "write_point_cloud",
    "write_splats",
    "export_all",
    "parse_formats",
    "write_colmap",
    "write_depth_maps",
    "write_glb",
    "write_nerfstudio",
    "write_ply",
    "zip_directory",
]

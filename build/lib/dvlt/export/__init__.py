"""Writing a Reconstruction in the formats 3D tools read; one module per format.

export_all(rec, "out/", ["glb", "ply", "colmap", "nerfstudio", "depth", "npz"])
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from ..records import Reconstruction
from ..scene import SceneOptions, select_points
from .colmap import write_colmap
from .depth import write_depth_maps
from .glb import GlbStats, write_glb
from .nerfstudio import write_nerfstudio
from .ply import write_ply

Writer = Callable[[Reconstruction, Path, SceneOptions], Path]

# format name -> (what it writes, writer(rec, output directory, options) -> written path)
FORMATS: dict[str, tuple[str, Writer]] = {
    "glb": (
        "scene.glb: point cloud + camera frustums for glTF viewers",
        lambda r, d, o: write_glb(r, d / "scene.glb", o).path,
    ),
    "ply": (
        "points.ply: binary PLY with colour and confidence",
        lambda r, d, o: write_ply(select_points(r, o), d / "points.ply"),
    ),
    "colmap": (
        "colmap/: images + sparse/0 model (text and binary)",
        lambda r, d, o: write_colmap(r, d / "colmap", o).parent.parent,
    ),
    "nerfstudio": (
        "nerfstudio/: images + transforms.json + PLY",
        lambda r, d, o: write_nerfstudio(r, d / "nerfstudio", o).parent,
    ),
    "depth": (
        "depth/: 16-bit PNG (x1000) and float32 .npy depth + confidence per view",
        lambda r, d, o: write_depth_maps(r, d / "depth"),
    ),
    "npz": ("predictions.npz: raw depth, confidence, points, cameras", lambda r, d, o: r.to_npz(d / "predictions.npz")),
}


def parse_formats(text: str) -> list[str]:
    """'glb,ply' or 'all' -> validated list of format names."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return list(FORMATS)
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ValueError(f"unknown format(s) {unknown or text!r}; choose from {', '.join(FORMATS)} or 'all'")
    return names


def export_all(
    rec: Reconstruction, directory: str | Path, formats: Iterable[str], options: SceneOptions = SceneOptions()
) -> dict[str, Path]:
    """Write each requested format under `directory`; returns {format: written path}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return {name: FORMATS[name][1](rec, directory, options) for name in formats}


def zip_directory(directory: str | Path, archive: str | Path) -> Path:
    """Zip a folder (for one-click downloads); returns the .zip path."""
    archive = Path(archive)
    return Path(
        shutil.make_archive(
            str(archive.with_suffix("")), "zip", root_dir=Path(directory).parent, base_dir=Path(directory).name
        )
    )


__all__ = [
    "FORMATS",
    "GlbStats",
    "export_all",
    "parse_formats",
    "write_colmap",
    "write_depth_maps",
    "write_glb",
    "write_nerfstudio",
    "write_ply",
    "zip_directory",
]

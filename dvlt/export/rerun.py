"""A Rerun recording (.rrd): each view as a pinhole camera at its pose with its image, depth and
confidence, plus the coloured point cloud, for inspection in the Rerun viewer (`rerun scene.rrd`).

rerun-sdk is optional (`pip install "dvlt-studio[rerun]"`); it is imported only when this writer runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import OptionError
from ..records import Reconstruction
from ..scene import SceneOptions, select_points

APPLICATION_ID = "dvlt_studio"


def _rerun():
    """The rerun module, or a clear message on how to get it."""
    try:
        import rerun
    except ImportError:
        raise OptionError(
            "The Rerun export needs the optional package rerun-sdk: pip install 'dvlt-studio[rerun]'."
        ) from None
    return rerun


def write_rerun(rec: Reconstruction, path: str | Path, options: SceneOptions = SceneOptions()) -> Path:
    """Write `world/points` and `world/camera_###` (pose, pinhole, image, depth, confidence) to `path`."""
    rr = _rerun()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = rr.RecordingStream(APPLICATION_ID)
    stream.save(str(path))
    stream.log("world", rr.ViewCoordinates.RDF, static=True)  # OpenCV: x right, y down, z forward
    points = select_points(rec, options)
    stream.log("world/points", rr.Points3D(points.xyz, colors=points.rgb), static=True)
    height, width = rec.size
    for index in range(rec.num_views):
        entity = f"world/camera_{index:03d}"
        c2w = rec.c2w[index]
        stream.log(entity, rr.Transform3D(translation=c2w[:3, 3], mat3x3=c2w[:3, :3]), static=True)
        stream.log(
            entity,
            rr.Pinhole(
                image_from_camera=rec.intrinsics[index], width=width, height=height, camera_xyz=rr.ViewCoordinates.RDF
            ),
            static=True,
        )
        stream.log(f"{entity}/image", rr.Image(rec.images[index]), static=True)
        depth = np.where(rec.valid[index], rec.depth[index], 0.0).astype(np.float32)
        stream.log(f"{entity}/depth", rr.DepthImage(depth, meter=1.0), static=True)
        stream.log(f"{entity}/confidence", rr.Image(rec.confidence[index].astype(np.float32)), static=True)
    stream.flush()
    stream.disconnect()
    return path

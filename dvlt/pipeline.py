"""Frames in, a `Reconstruction` out: the one path shared by the app, the CLI and the exports.

A `Reconstruction` holds plain numpy arrays (cheap to cache per user session
and to pickle across ZeroGPU's process boundary) plus how each view maps back
to its original photo.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from .errors import TooManyFramesError
from .geometry import unproject_depth
from .inputs import frame_names, original_size, originals
from .model import DVLT
from .preprocess import preprocess_images
from .records import Reconstruction

# progress(fraction in [0, 1], message)
Progress = Callable[[float, str], None]

STAGE_SPANS = {"encode": (0.05, 0.25), "loop": (0.25, 0.8), "decode": (0.8, 0.95)}


def model_progress(progress: Progress | None):
    """Adapt a (fraction, message) progress callback to the model's (stage, done, total) hook."""
    if progress is None:
        return None

    def hook(stage: str, done: int, total: int) -> None:
        start, end = STAGE_SPANS[stage]
        label = {
            "encode": "Encoding views",
            "loop": f"Refining: step {done}/{total}",
            "decode": "Decoding depth and rays",
        }[stage]
        progress(start + (end - start) * done / max(total, 1), label)

    return hook


def reconstruct(
    model: DVLT,
    frames: Sequence[Image.Image],
    steps: int | None = None,
    img_size: int | None = None,
    name: str = "scene",
    max_views: int | None = None,
    progress: Progress | None = None,
) -> Reconstruction:
    """Run DVLT on RGB frames (the first is the reference view) and package the result."""
    if max_views is not None and len(frames) > max_views:
        raise TooManyFramesError(
            f"{len(frames)} views, but the limit here is {max_views}. "
            "Use fewer photos or sample the video more sparsely."
        )
    report = progress or (lambda fraction, message: None)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    report(0.0, "Preprocessing")
    batch = preprocess_images(
        frames, img_size=img_size or model.img_size, patch_size=model.patch_size, device=model.device
    )
    seconds["preprocess"] = time.perf_counter() - start

    start = time.perf_counter()
    predictions = model.predict(batch, steps=steps, progress=model_progress(progress))
    seconds["model"] = time.perf_counter() - start

    report(0.95, "Fitting cameras and building the point cloud")
    start = time.perf_counter()
    depth = predictions["depths"][0].float()
    c2w = predictions["extrinsics_c2w"][0].float()
    intrinsics = predictions["intrinsics"][0].float()
    points = unproject_depth(depth, intrinsics, c2w, pixel_offset=0.5)
    images = (batch["images"][0].permute(0, 2, 3, 1) * 255.0).round().clamp(0, 255).to(torch.uint8)
    result = Reconstruction(
        name=name,
        images=images.cpu().numpy(),
        valid=batch["valid_pixels"][0].cpu().numpy(),
        depth=depth.cpu().numpy(),
        confidence=predictions["depths_conf"][0].float().cpu().numpy(),
        points=points.cpu().numpy().astype(np.float32),
        c2w=c2w.cpu().double().numpy(),
        intrinsics=intrinsics.cpu().double().numpy(),
        transforms=[  # frames decoded downscaled map back to their full-size photo
            dataclasses.replace(t, original_size=original_size(f)) for t, f in zip(batch["transforms"], frames)
        ],
        steps=predictions["steps"],
        names=frame_names(frames),
        seconds=seconds,
        originals=originals(frames),
        points_direct=predictions["world_points_direct"][0].float().cpu().numpy(),
    )
    seconds["package"] = time.perf_counter() - start
    report(1.0, "Done")
    return result

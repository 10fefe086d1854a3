"""Turning decoded frames into the network's input batch, exactly as the reference does.

Each view: longest side scaled to `img_size` (size rounded), antialiased
bilinear resize, centre-crop of each side down to a multiple of the patch
size; views of different shapes are then centre-padded with zeros to a common
canvas and `valid_pixels` marks the real pixels. `ViewTransform` records the
mapping so results can be taken back to the original photo's pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import EmptyInputError, MixedSizesError
from .model.config import DVLTConfig
from .records import ViewTransform


def fitted_size(
    height: int, width: int, img_size: int, patch_size: int
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(resized (h, w), cropped (h, w), crop (top, left)) for an image of height x width."""
    scale = img_size / max(height, width)
    new_h, new_w = int(round(height * scale)), int(round(width * scale))
    crop_h = max(patch_size, new_h // patch_size * patch_size)
    crop_w = max(patch_size, new_w // patch_size * patch_size)
    return (new_h, new_w), (crop_h, crop_w), ((new_h - crop_h) // 2, (new_w - crop_w) // 2)


def image_to_tensor(image: Image.Image | np.ndarray) -> torch.Tensor:
    """(3, h, w) float32 in [0, 1] from a PIL image or an (h, w, 3) uint8 array."""
    array = np.array(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.uint8)
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0


def canvas_size(
    sizes: Sequence[tuple[int, int]], img_size: int, patch_size: int = DVLTConfig.patch_size
) -> tuple[int, int]:
    """(H, W) of the common canvas for images of the given (h, w) sizes."""
    cropped = [fitted_size(h, w, img_size, patch_size)[1] for h, w in sizes]
    return max(h for h, _ in cropped), max(w for _, w in cropped)


def preprocess_images(
    frames: Sequence[Image.Image | np.ndarray],
    img_size: int = DVLTConfig.img_size,
    patch_size: int = DVLTConfig.patch_size,
    device: torch.device | str | None = None,
    allow_mixed_sizes: bool = True,
) -> dict:
    """Frames -> {"images": (1, S, 3, H, W) in [0, 1], "valid_pixels": (1, S, H, W) bool,
    "transforms": [ViewTransform] * S}."""
    if len(frames) == 0:
        raise EmptyInputError("No frames to preprocess: give at least one image.")
    tensors, transforms = [], []
    for frame in frames:
        image = image_to_tensor(frame)
        height, width = image.shape[-2:]
        (new_h, new_w), (crop_h, crop_w), (top, left) = fitted_size(height, width, img_size, patch_size)
        image = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)[0]
        tensors.append(image[:, top : top + crop_h, left : left + crop_w])
        transforms.append(((height, width), (new_h, new_w), (top, left)))

    canvas_h = max(t.shape[1] for t in tensors)
    canvas_w = max(t.shape[2] for t in tensors)
    if not allow_mixed_sizes and any(t.shape[1:] != (canvas_h, canvas_w) for t in tensors):
        shapes = sorted({f"{t.shape[2]}x{t.shape[1]}" for t in tensors})
        raise MixedSizesError(
            f"Views have different sizes after resizing ({', '.join(shapes)}); use photos of one size and orientation."
        )

    images, valid, view_transforms = [], [], []
    for image, (original, resized, crop) in zip(tensors, transforms):
        h, w = image.shape[1:]
        pad_top, pad_left = (canvas_h - h) // 2, (canvas_w - w) // 2
        padding = (pad_left, canvas_w - w - pad_left, pad_top, canvas_h - h - pad_top)
        images.append(F.pad(image, padding, value=0.0))
        valid.append(F.pad(torch.ones(h, w, dtype=torch.bool), padding, value=False))
        view_transforms.append(ViewTransform(original, resized, crop, (pad_top, pad_left), (h, w)))
    return {
        "images": torch.stack(images)[None].to(device or "cpu"),
        "valid_pixels": torch.stack(valid)[None].to(device or "cpu"),
        "transforms": view_transforms,
    }

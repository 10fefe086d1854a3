"""Re-attaching the original photos to saved predictions (`dvlt export --images DIR`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from ..records import Reconstruction

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic")


def find_photo(directory: Path, name: str) -> Path | None:
    """`directory/name`, or a file with the same stem and an image suffix (PNG written for a HEIC, ...)."""
    exact = directory / name
    if exact.is_file():
        return exact
    stem = Path(name).stem
    return next((p for p in sorted(directory.iterdir()) if p.stem == stem and p.suffix.lower() in PHOTO_SUFFIXES), None)


def with_photos(rec: Reconstruction, directory: str | Path) -> Reconstruction:
    """`rec` with its full-resolution photos from `directory`, matched by file name and checked by size."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"--images: {directory.name!r} is not a folder.")
    if not rec.names:
        raise InputError("These predictions do not record file names, so photos cannot be matched to views.")
    photos = []
    for name, transform in zip(rec.names, rec.transforms):
        path = find_photo(directory, name)
        if path is None:
            raise InputError(f"--images: no photo named {name!r} in {directory.name!r}.")
        try:
            with Image.open(path) as image:
                photo = ImageOps.exif_transpose(image).convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise InputError(f"--images: {path.name} is not an image we can read ({type(error).__name__}).") from None
        height, width = transform.original_size
        if photo.size != (width, height):
            raise InputError(
                f"--images: {path.name} is {photo.width}x{photo.height} but the predictions were made from a "
                f"{width}x{height} photo; use the photos that were reconstructed."
            )
        photos.append(photo)
    return dataclasses.replace(rec, originals=photos)

"""Re-attaching the original photos to saved predictions (`dvlt export --images DIR`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import DVLTError, InputError
from ..inputs import Originals, read_header
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
    paths = []
    for name, transform in zip(rec.names, rec.transforms):
        path = find_photo(directory, name)
        if path is None:
            raise InputError(f"--images: no photo named {name!r} in {directory.name!r}.")
        height, width = transform.original_size
        try:
            header = read_header(path)  # the size only: nothing is decoded until an export copies the photo
        except DVLTError as error:
            raise InputError(f"--images: {error}") from None
        if (header.height, header.width) != (height, width):
            raise InputError(
                f"--images: {path.name} is {header.width}x{header.height} but the predictions were made from a "
                f"{width}x{height} photo; use the photos that were reconstructed."
            )
        paths.append(path)
    # read one at a time by the exports that copy photos, never all at once
    return dataclasses.replace(rec, originals=Originals.from_paths(paths, [t.original_size for t in rec.transforms]))

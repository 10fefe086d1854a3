"""The photos that exports reference, with intrinsics in each photo's own pixel frame."""

from __future__ import annotations

import operator
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from ..budget import decode_slot
from ..inputs import Originals, copies_verbatim
from ..records import Reconstruction, ViewTransform

KEEP_SUFFIXES = (".jpg", ".jpeg", ".png")  # other formats are written as PNG
DOWNSCALE_FACTORS = (2, 4, 8)  # images_2/, images_4/, images_8/ as ns-process-data writes them


@dataclass(frozen=True)
class ExportView:
    """One view as an export sees it: file name, photo size, intrinsics and world-to-camera pose; the pixels are
    read only when asked for (`image`), so exports that need just the size never decode a full-size photo."""

    name: str
    size: tuple[int, int]  # (width, height) of the photo, as PIL gives it
    transform: ViewTransform  # canvas -> this image
    intrinsics: np.ndarray  # (3, 3) in this image's pixels
    c2w: np.ndarray  # (3, 4) OpenCV camera-to-world
    read: Callable[[], Image.Image] = field(repr=False, compare=False)  # the photo, decoded on each call
    # the photo shrunk by up to a factor while decoding, and that factor (JPEG originals; else the photo and 1)
    read_reduced: Callable[[int], tuple[Image.Image, int]] | None = field(default=None, repr=False, compare=False)
    verbatim: Path | None = None  # the photo's file, when a byte-for-byte copy is what an export should hold

    @property
    def image(self) -> Image.Image:
        """The photo's pixels, decoded now (full size for an original: hold one at a time)."""
        return self.read()

    def reduced(self, factor: int) -> tuple[Image.Image, int]:
        """The photo decoded shrunk by up to `factor` where its format allows (never whole at full size then)."""
        return self.read_reduced(factor) if self.read_reduced is not None else (self.read(), 1)


def export_views(rec: Reconstruction) -> list[ExportView]:
    """Original photos when the reconstruction has them, else the model's crops of each view."""
    views = []
    for index in range(rec.num_views):
        transform = rec.transforms[index]
        name = rec.names[index] if rec.names else f"view_{index:03d}.png"
        read_reduced, verbatim = None, None
        if rec.originals is not None:
            read = partial(operator.getitem, rec.originals, index)  # Originals decodes from disk on each read
            if isinstance(rec.originals, Originals):
                height, width = rec.originals.size(index)
                read_reduced = partial(rec.originals.reduced, index)
                verbatim = rec.originals.source(index)
            else:
                width, height = rec.originals[index].size
        else:  # from an .npz: the real pixels of the canvas stand in for the photo
            (top, left), (height, width) = transform.pad, transform.valid_size
            read = partial(Image.fromarray, rec.images[index, top : top + height, left : left + width])
            transform = ViewTransform((height, width), (height, width), (0, 0), (top, left), (height, width))
            name = str(Path(name).with_suffix(".png"))
        if Path(name).suffix.lower() not in KEEP_SUFFIXES:
            name = str(Path(name).with_suffix(".png"))
        if verbatim is not None and not copies_verbatim(verbatim, Path(name).suffix):
            verbatim = None
        intrinsics = transform.intrinsics_to_original(rec.intrinsics[index])
        views.append(
            ExportView(name, (width, height), transform, intrinsics, rec.c2w[index], read, read_reduced, verbatim)
        )
    return views


def write_images(views: list[ExportView], directory: Path) -> None:
    """Save each view's image under its name: an upright RGB JPEG or PNG copied as uploaded (no decode, no loss),
    anything else decoded one at a time inside one of the server's decode slots (JPEG quality 95 for .jpg, lossless
    otherwise) and dropped before the next."""
    directory.mkdir(parents=True, exist_ok=True)
    for view in views:
        if view.verbatim is not None:
            shutil.copyfile(view.verbatim, directory / view.name)
            continue
        with decode_slot():
            image = view.image
            save_photo(image, directory / view.name)
            del image


def save_photo(image: Image.Image, target: Path) -> None:
    """JPEG quality 95 for .jpg / .jpeg names, lossless otherwise."""
    if target.suffix.lower() in (".jpg", ".jpeg"):
        image.convert("RGB").save(target, quality=95)
    else:
        image.save(target)


def downscaled(image: Image.Image, factor: int, size: tuple[int, int] | None = None) -> Image.Image:
    """`image` shrunk by exactly `factor`: floor(w / factor) x floor(h / factor) pixels (or `size`, when the image
    is itself a shrunk photo whose sides were rounded up), each the mean of a factor x factor block (the leftover
    columns and rows are dropped), so photo position x is x / factor here, which is what trainers assume when they
    divide fx, fy, cx, cy by the factor."""
    width, height = size or (image.width // factor, image.height // factor)
    box = (0, 0, width * factor, height * factor)
    return image.resize((width, height), Image.Resampling.BOX, box=box)


def write_downscaled_images(views: list[ExportView], directory: Path, factors=DOWNSCALE_FACTORS) -> None:
    """Save images_<factor>/<name> for each factor that leaves every image at least one pixel
    (gsplat's --data_factor, nerfstudio's downscale_factor): each photo decoded once, in a decode slot, for all
    its factors (a JPEG already shrunk by the smallest factor while decoding), and dropped before the next."""
    factors = [factor for factor in factors if min(min(view.size) for view in views) >= factor]
    for factor in factors:
        (directory / f"images_{factor}").mkdir(parents=True, exist_ok=True)
    for view in views:
        with decode_slot():
            image, shrunk = view.reduced(min(factors, default=1))
            for factor in factors:
                size = (view.size[0] // factor, view.size[1] // factor)
                save_photo(downscaled(image, factor // shrunk, size), directory / f"images_{factor}" / view.name)
            del image


def write_view_images(rec: Reconstruction, directory: Path) -> list[ExportView]:
    """The export views of `rec`, with their images saved under `directory`."""
    views = export_views(rec)
    write_images(views, directory)
    return views

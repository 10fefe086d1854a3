"""Reading photos and videos into RGB frames.

Images are opened with Pillow (HEIC too when pillow-heif is installed), EXIF
orientation applied, transparency composited over white, grey and 16-bit data
scaled to 8-bit RGB. Videos are decoded with PyAV and sampled evenly in time.
Every failure raises an `InputError` subclass whose message names the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import EmptyInputError, ImageTooLargeError, TooManyFramesError, UnsupportedFileError

try:  # HEIC/HEIF photos from phones; optional.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - exercised only without pillow-heif
    pass

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"})
VIDEO_EXTS = frozenset({".mp4", ".mov", ".webm", ".avi", ".mkv", ".gif", ".m4v"})
DEFAULT_FPS = 2.0
DEFAULT_MAX_PIXELS = 50_000_000  # per image; larger photos are refused, not silently shrunk
NAME_KEY = "dvlt_name"  # PIL Image.info key holding a frame's source file name

PathLike = str | os.PathLike


def natural_key(path: Path) -> list:
    """Sort key that orders img2 before img10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def is_video(path: PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def is_image(path: PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode: alpha over white, 16-bit and float rescaled, grey expanded."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        data = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            top = 1.0 if data.max(initial=0.0) <= 1.0 else 255.0
        else:
            top = 65535.0 if data.max(initial=0) > 255 or image.mode.startswith("I;16") else 255.0
        grey = np.clip(data / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), mode="RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def open_image(path: PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode one photo to upright 8-bit RGB; raises UnsupportedFileError / ImageTooLargeError."""
    path = Path(path)
    name = path.name
    try:
        image = Image.open(path)
    except FileNotFoundError:
        raise UnsupportedFileError(f"{name}: file not found.") from None
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"{name} is too large to decode safely ({error}).") from None
    except (UnidentifiedImageError, OSError) as error:
        raise UnsupportedFileError(
            f"{name} is not an image we can read ({type(error).__name__}). Use JPEG, PNG, WebP, BMP, TIFF or HEIC."
        ) from None
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {image.width}x{image.height} ({pixels / 1e6:.0f} MP); "
            f"the limit is {max_pixels / 1e6:.0f} MP. Downscale it first."
        )
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise UnsupportedFileError(
            f"{name} could not be decoded: the file is truncated or corrupt ({error})."
        ) from None
    return to_rgb(image)


def _packet_times(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> list[Fraction]:
    """Sorted presentation times of the stream's packets, by demuxing only (no decoding)."""
    times = sorted(Fraction(p.pts * stream.time_base) for p in container.demux(stream) if p.size and p.pts is not None)
    container.seek(0)
    return times


def evenly_spaced(count: int, keep: int) -> list[int]:
    """`keep` indices spread evenly over range(count), first and last included."""
    if keep >= count:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, keep)})


def read_video(
    path: PathLike,
    fps: float | None = DEFAULT_FPS,
    num_frames: int | None = None,
    max_frames: int | None = None,
) -> list[Image.Image]:
    """Frames of a video: one per 1/fps seconds (all with fps=None), or `num_frames` evenly spaced;
    then at most `max_frames`, kept evenly spaced over the clip.

    Sampling works on timestamps, so a damaged frame shifts a pick to the next good one.
    """
    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise UnsupportedFileError(f"{path.name} is not a video we can decode ({error}).") from None
    with container:
        if not container.streams.video:
            raise EmptyInputError(f"{path.name} contains no video frames (no video stream).")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        targets: list[Fraction] | None = None  # absolute times to sample; None = every frame
        if num_frames is not None:
            times = _packet_times(container, stream)
            targets = [times[i] for i in evenly_spaced(len(times), num_frames)]
        period = Fraction(1) / Fraction(fps).limit_denominator(1000) if fps is not None and num_frames is None else None
        tolerance = Fraction(1, 1000)
        frames: list[Image.Image] = []
        last, last_taken = None, False
        try:
            for frame in container.decode(stream):
                time = Fraction(frame.pts * stream.time_base) if frame.pts is not None else Fraction(len(frames))
                last, last_taken = frame, False
                if period is not None and targets is None:
                    targets = [time]  # fps sampling starts at the first decoded frame
                if targets is not None:
                    if not targets or time + tolerance < targets[0]:
                        continue
                    while targets and targets[0] <= time + tolerance:
                        if period is not None:
                            targets.append(targets[-1] + period)
                        targets.pop(0)
                frames.append(frame.to_image())
                last_taken = True
        except av.error.FFmpegError as error:
            if not frames:
                raise UnsupportedFileError(f"{path.name} could not be decoded ({error}).") from None
        if num_frames is not None and targets and last is not None and not last_taken:
            frames.append(last.to_image())  # the clip's final packets did not decode: end on its last frame
    if not frames:
        raise EmptyInputError(f"No frames could be decoded from {path.name}.")
    if max_frames is not None and len(frames) > max_frames:
        frames = [frames[i] for i in evenly_spaced(len(frames), max_frames)]
    return frames


def list_directory(directory: Path) -> list[Path]:
    """Images (or, failing that, videos) in a folder, naturally sorted; hidden files skipped."""
    entries = sorted((p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")), key=natural_key)
    images = [p for p in entries if is_image(p)]
    return images or [p for p in entries if is_video(p)]


def expand_sources(source: PathLike | Sequence[PathLike]) -> tuple[str, list[Path]]:
    """(sequence name, files) for a directory, one file, or a list of files."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_dir():
            files = list_directory(path)
            if not files:
                raise EmptyInputError(
                    f"Folder {path} has no images or videos (looked for {', '.join(sorted(IMAGE_EXTS | VIDEO_EXTS))})."
                )
            return path.name, files
        if not path.exists():
            raise UnsupportedFileError(f"{path}: no such file or folder.")
        return path.stem, [path]
    files = [Path(item).expanduser() for item in source]
    if not files:
        raise EmptyInputError("No files given: upload at least one photo or a video.")
    parents = {f.parent.name for f in files}
    return (parents.pop() if len(parents) == 1 and parents != {""} else "images"), files


def tag_name(frame: Image.Image, name: str) -> Image.Image:
    """Remember the file name a frame came from (exports write images under it)."""
    frame.info[NAME_KEY] = name
    return frame


def frame_names(frames: Sequence[Image.Image]) -> list[str]:
    """Unique file names for frames: their source names where known, else view_###.png."""
    names, seen = [], set()
    for index, frame in enumerate(frames):
        name = getattr(frame, "info", {}).get(NAME_KEY) or f"view_{index:03d}.png"
        if name in seen:
            name = f"{index:03d}_{name}"
        seen.add(name)
        names.append(name)
    return names


def load_sequence(
    source: PathLike | Sequence[PathLike],
    fps: float | None = DEFAULT_FPS,
    max_frames: int | None = None,
    num_frames: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[str, list[Image.Image]]:
    """(name, RGB frames) from a directory, an image, a video, or a list of files.

    Videos are sampled at `fps` (or `num_frames` evenly spaced) and capped at
    `max_frames` evenly spaced frames; more photos than `max_frames` raise
    TooManyFramesError, since dropping someone's photos silently is worse.
    """
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}.")
    name, files = expand_sources(source)
    frames: list[Image.Image] = []
    for path in files:
        if is_video(path):
            clip = read_video(path, fps=fps, num_frames=num_frames, max_frames=max_frames)
            frames.extend(tag_name(frame, f"{path.stem}_{index:04d}.jpg") for index, frame in enumerate(clip))
        elif path.is_dir():
            raise UnsupportedFileError(f"{path} is a folder; pass its files or the folder alone.")
        else:
            frames.append(tag_name(open_image(path, max_pixels=max_pixels), path.name))
    if not frames:
        raise EmptyInputError(f"No frames found in {name}.")
    if max_frames is not None and len(frames) > max_frames:
        raise TooManyFramesError(
            f"{len(frames)} views, but the limit is {max_frames}. Use fewer photos or a lower frame rate."
        )
    return name, frames

"""Reading photos and videos into RGB frames, within limits checked before anything is decoded.

Images are opened with Pillow (HEIC too when pillow-heif is installed), EXIF
orientation applied, transparency composited over white, grey and 16-bit data
scaled to 8-bit RGB. Every photo's size is read from its header first, so a set
that breaks a limit is refused before a pixel is decoded; with `max_side` a photo
is decoded straight to the size the model needs (JPEG DCT scaling, then one
resize), and its full-size pixels stay on disk (`originals` re-reads them).
Videos are decoded with PyAV: the packets' timestamps are read first (no
decoding), the frames to use are chosen from them, and only those frames are
converted, downscaled as they are. Every failure raises an `InputError` subclass
whose message names the file (never the folder it lies in).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from . import limits
from .errors import (
    EmptyInputError,
    ImageTooLargeError,
    ImageTooSmallError,
    InputError,
    OptionError,
    PhotosUnavailableError,
    TooManyFramesError,
    UnsupportedFileError,
    VideoTooLongError,
)

try:  # HEIC/HEIF photos from phones; optional.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - exercised only without pillow-heif
    pass

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"})
VIDEO_EXTS = frozenset({".mp4", ".mov", ".webm", ".avi", ".mkv", ".gif", ".m4v"})
DEFAULT_FPS = limits.FPS_DEFAULT
# The only readers an upload or CLI input reaches (Pillow's names; "HEIF" from pillow-heif, phones' MPO JPEGs come
# through "JPEG"): PCX, TGA, EPS (Ghostscript) and the rest are refused whatever the file is named.
PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "HEIF")
DEFAULT_MAX_PIXELS = limits.MAX_IMAGE_PIXELS  # per image; larger photos are refused, not silently shrunk
NAME_KEY = "dvlt_name"  # PIL Image.info key holding a frame's source file name
SOURCE_KEY = "dvlt_source"  # Image.info: path of the full-size photo a downscaled frame came from
ORIGINAL_SIZE_KEY = "dvlt_original_size"  # Image.info: (height, width) of that photo, upright
PATCH = 14
TOLERANCE = Fraction(1, 1000)  # seconds: timestamps this close count as equal
# EXIF orientation -> the transpose that makes the photo upright (as ImageOps.exif_transpose)
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

PathLike = str | os.PathLike


class Frames(list):
    """A list of RGB frames plus `notes`: things the user should know about how they were read
    (a damaged clip that gave fewer frames, ...). Behaves exactly like a list otherwise."""

    def __init__(self, frames: Sequence[Image.Image] = (), notes: Sequence[str] = ()) -> None:
        super().__init__(frames)
        self.notes: list[str] = list(notes)


def natural_key(path: Path) -> list:
    """Sort key that orders img2 before img10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def is_video(path: PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def is_image(path: PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def to_rgb(image: Image.Image, sixteen_bit: bool | None = None) -> Image.Image:
    """8-bit RGB from any Pillow mode: alpha over white, 16-bit and float rescaled, grey expanded.

    `sixteen_bit` says whether integer data came from a 16-bit file (None: decide from the mode and values)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        data = np.asarray(image, dtype=np.float32)
        if image.mode == "F":
            top = 1.0 if data.max(initial=0.0) <= 1.0 else 255.0
        else:
            if sixteen_bit is None:
                sixteen_bit = data.max(initial=0) > 255 or image.mode.startswith("I;16")
            top = 65535.0 if sixteen_bit else 255.0
        grey = np.clip(data / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), mode="RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def fitted_resize(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) the model's preprocessing resizes a height x width image to for longest side `max_side`."""
    scale = max_side / max(height, width)
    return int(round(height * scale)), int(round(width * scale))


@dataclass(frozen=True)
class PhotoHeader:
    """What a photo's header says: its upright size and EXIF orientation (nothing is decoded)."""

    path: Path
    height: int
    width: int
    orientation: int


def _open(path: Path) -> Image.Image:
    """Image.open with our errors (reads the header only)."""
    name = path.name
    try:
        return Image.open(path, formats=PHOTO_FORMATS)
    except FileNotFoundError:
        raise UnsupportedFileError(f"{name}: file not found.") from None
    except IsADirectoryError:
        raise UnsupportedFileError(f"{name} is a folder; pass its files or the folder alone.") from None
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"{name} is too large to decode safely.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UnsupportedFileError(
            f"{name} is not an image we can read ({type(error).__name__}). Use JPEG, PNG, WebP, BMP, TIFF or HEIC."
        ) from None


def check_image_size(name: str, width: int, height: int, max_pixels: int, what: str = "photo") -> None:
    """Refuse a photo or frame whose size the model cannot use or the server cannot afford."""
    pixels = width * height
    if pixels > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} ({pixels / 1e6:.0f} MP); the limit is {max_pixels / 1e6:.0f} MP "
            f"per {what}. Downscale it first."
        )
    if min(width, height) < limits.MIN_IMAGE_SIDE:
        raise ImageTooSmallError(
            f"{name} is only {width}x{height} pixels; each side needs at least {limits.MIN_IMAGE_SIDE} "
            "(one model patch). Use a larger image."
        )
    if max(width, height) > limits.MAX_ASPECT_RATIO * min(width, height):
        raise ImageTooSmallError(
            f"{name} is {width}x{height}: more than {limits.MAX_ASPECT_RATIO}:1, too thin for the model. Crop it first."
        )


def read_header(path: PathLike) -> PhotoHeader:
    """Size and orientation of a photo from its header, no limit checked; decodes nothing."""
    path = Path(path)
    with _open(path) as image:
        try:
            orientation = int(image.getexif().get(0x0112, 1) or 1)
        except Exception:  # a broken EXIF block is not worth refusing the photo for
            orientation = 1
        width, height = image.size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return PhotoHeader(path, height, width, orientation)


def probe_image(path: PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> PhotoHeader:
    """Size and orientation of a photo from its header, with every size limit checked; decodes nothing."""
    header = read_header(path)
    check_image_size(header.path.name, header.width, header.height, max_pixels)
    return header


def open_image(path: PathLike, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None) -> Image.Image:
    """Decode one photo to upright 8-bit RGB; raises UnsupportedFileError / ImageTooLargeError / ImageTooSmallError.

    With `max_side`, a larger photo is decoded straight to the size the model's preprocessing gives it for that
    longest side (so preprocessing only crops), remembering its source and full size in `Image.info`."""
    header = probe_image(path, max_pixels)
    path = header.path
    target = None
    if max_side is not None and max(header.height, header.width) > max_side:
        target = fitted_resize(header.height, header.width, max_side)  # upright (h, w)
    try:
        with _open(path) as image:
            image = _decode(image, header, target)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnsupportedFileError(
            f"{path.name} could not be decoded: the file is truncated or corrupt ({type(error).__name__})."
        ) from None
    if target is not None:
        image.info[SOURCE_KEY] = str(path)
        image.info[ORIGINAL_SIZE_KEY] = (header.height, header.width)
    return image


def open_image_reduced(path: PathLike, factor: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, int]:
    """Decode one photo upright, a JPEG shrunk by up to `factor` (1, 2, 4 or 8) in the DCT domain so its full-size
    pixels are never held; returns the image and the factor it was shrunk by (1 for other formats). Sizes round up:
    a shrunk side is ceil(side / factor)."""
    header = probe_image(path, max_pixels)
    try:
        with _open(header.path) as image:
            stored_width, stored_height = image.size
            if image.format == "JPEG" and factor > 1:
                image.draft(None, (max(1, stored_width // factor), max(1, stored_height // factor)))
            shrunk = next((s for s in (8, 4, 2) if image.size == (-(-stored_width // s), -(-stored_height // s))), 1)
            return _decode(image, header, None), shrunk
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnsupportedFileError(
            f"{header.path.name} could not be decoded: the file is truncated or corrupt ({type(error).__name__})."
        ) from None


def copies_verbatim(path: PathLike, suffix: str) -> bool:
    """Whether the photo at `path` can be copied byte for byte under a name ending in `suffix`: a JPEG (.jpg, .jpeg)
    or PNG (.png) of 8-bit RGB stored upright, so a reader that ignores EXIF sees exactly what the model saw."""
    wanted = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(suffix.lower())
    try:
        header = read_header(path)
        with _open(Path(path)) as image:
            return image.format == wanted and image.mode == "RGB" and header.orientation == 1
    except InputError:
        return False


def _decode(image: Image.Image, header: PhotoHeader, target: tuple[int, int] | None) -> Image.Image:
    """Decode an opened photo (to `target` upright (h, w) when given), upright and 8-bit RGB."""
    transposed = header.orientation in (5, 6, 7, 8)
    box = None
    if target is not None:
        stored = (target[1], target[0]) if transposed else target  # (h, w) as stored in the file
        # DCT-scale a JPEG to at least twice the target, so the final resize still filters properly
        drafted = image.draft(None, (2 * stored[1], 2 * stored[0])) if image.format == "JPEG" else None
        box = drafted[1] if drafted else None
    image.load()
    sixteen_bit = image.mode.startswith("I;16")
    if target is not None:
        if sixteen_bit:
            image = image.convert("I")
        elif image.mode not in ("RGB", "RGBA", "L", "LA", "I", "F"):
            image = to_rgb(image)  # palette, CMYK, ...: resize in RGB
        stored = (target[1], target[0]) if transposed else target
        image = image.resize((stored[1], stored[0]), Image.Resampling.BILINEAR, box=box)
    if header.orientation in UPRIGHT:
        image = image.transpose(UPRIGHT[header.orientation])
    return to_rgb(image, sixteen_bit if sixteen_bit else None)


class Originals(Sequence):
    """The full-size photos behind downscaled frames, read from disk one at a time when an export asks (never kept:
    each read decodes the photo again, so holding one photo at a time is up to the caller)."""

    def __init__(self, frames: Sequence[Image.Image]) -> None:
        self._frames = list(frames)

    @classmethod
    def from_paths(cls, paths: Sequence[PathLike], sizes: Sequence[tuple[int, int]]) -> Originals:
        """Photos on disk of known upright (height, width), none decoded yet."""
        stand_ins = []
        for path, size in zip(paths, sizes):
            stand_in = Image.new("RGB", (1, 1))
            stand_in.info.update({SOURCE_KEY: str(path), ORIGINAL_SIZE_KEY: tuple(size), NAME_KEY: Path(path).name})
            stand_ins.append(stand_in)
        return cls(stand_ins)

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index):  # noqa: ANN001 - int or slice, as list
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        frame = self._frames[index]
        source = frame.info.get(SOURCE_KEY)
        if source is None:
            return frame
        height, width = original_size(frame)
        try:
            image = open_image(source, max_pixels=max(DEFAULT_MAX_PIXELS, width * height))
        except UnsupportedFileError:
            raise PhotosUnavailableError(
                f"The full-size photo {Path(source).name} is no longer on the server; upload it again to export it."
            ) from None
        image.info[NAME_KEY] = frame.info.get(NAME_KEY, Path(source).name)
        return image

    def __iter__(self) -> Iterator[Image.Image]:
        return (self[i] for i in range(len(self)))

    def source(self, index: int) -> Path | None:
        """The file of full-size photo `index` on disk, or None for a frame held in memory."""
        source = self._frames[index].info.get(SOURCE_KEY)
        return None if source is None else Path(source)

    def reduced(self, index: int, factor: int) -> tuple[Image.Image, int]:
        """Photo `index` shrunk by up to `factor` while decoding (see `open_image_reduced`), and that factor."""
        source = self.source(index)
        if source is None:
            return self[index], 1
        height, width = original_size(self._frames[index])
        try:
            return open_image_reduced(source, factor, max_pixels=max(DEFAULT_MAX_PIXELS, width * height))
        except UnsupportedFileError:
            raise PhotosUnavailableError(
                f"The full-size photo {source.name} is no longer on the server; upload it again to export it."
            ) from None

    def size(self, index: int) -> tuple[int, int]:
        """(height, width) of photo `index`, upright, without decoding it."""
        return original_size(self._frames[index])

    def available(self) -> bool:
        """Whether every full-size photo is still on disk."""
        return all(Path(f.info[SOURCE_KEY]).is_file() for f in self._frames if SOURCE_KEY in f.info)


def originals(frames: Sequence[Image.Image]) -> Sequence[Image.Image]:
    """The frames themselves, or, where frames were decoded downscaled, their full-size photos read lazily."""
    if any(SOURCE_KEY in getattr(f, "info", {}) for f in frames):
        return Originals(frames)
    return list(frames)


def original_size(frame: Image.Image | np.ndarray) -> tuple[int, int]:
    """(height, width) of the photo a frame stands for (its own size unless it was decoded downscaled)."""
    info = getattr(frame, "info", {})
    if ORIGINAL_SIZE_KEY in info:
        return tuple(info[ORIGINAL_SIZE_KEY])
    if isinstance(frame, Image.Image):
        return frame.height, frame.width
    return tuple(np.asarray(frame).shape[:2])


def evenly_spaced(count: int, keep: int) -> list[int]:
    """`keep` indices spread evenly over range(count), first and last included."""
    if keep >= count:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, keep)})


@dataclass(frozen=True)
class VideoHeader:
    """What a clip's header and packets say, before any frame is decoded."""

    times: list[Fraction]  # sorted presentation times of its packets, in seconds
    width: int
    height: int
    duration: float | None  # seconds, from the header (None when it has none)


def probe_video(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    name: str,
    max_pixels: int,
    max_seconds: float | None,
) -> VideoHeader:
    """Frame size and packet times of a clip, checked against the limits while demuxing (nothing is decoded).

    When the header has no duration the packets' timestamps are counted instead, stopping at the limit."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if width and height:
        check_image_size(name, width, height, max_pixels, what="video frame")
    duration = None
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    if max_seconds is not None and duration is not None and duration > max_seconds + 1:
        raise VideoTooLongError(f"{name} is {duration:.0f} s long; the limit is {max_seconds:.0f} s. Trim it first.")
    times: list[Fraction] = []
    for packet in container.demux(stream):
        if not packet.size or packet.pts is None:
            continue
        times.append(Fraction(packet.pts * stream.time_base))
        if max_seconds is not None and times[-1] - min(times[0], times[-1]) > max_seconds + 1:
            raise VideoTooLongError(f"{name} runs longer than the {max_seconds:.0f} s limit. Trim it first.")
        if max_seconds is not None and len(times) > max_seconds * limits.VIDEO_MAX_FPS:
            raise VideoTooLongError(f"{name} has more than {len(times) - 1} frames; too many to sample. Trim it first.")
    container.seek(0)
    return VideoHeader(sorted(times), width, height, duration)


def sample_times(
    times: Sequence[Fraction], fps: float | None, num_frames: int | None, max_frames: int | None
) -> list[Fraction]:
    """The frame times to decode: one per 1/fps seconds from the first frame (all with fps=None), or
    `num_frames` evenly spaced; then at most `max_frames`, kept evenly spaced over the clip."""
    if not times:
        return []
    if num_frames is not None:
        chosen = [times[i] for i in evenly_spaced(len(times), num_frames)]
    elif fps is not None:
        period = Fraction(1) / Fraction(fps).limit_denominator(1000)
        chosen, due = [], times[0]
        for time in times:
            if time + TOLERANCE >= due:
                chosen.append(time)
                while due <= time + TOLERANCE:
                    due += period
    else:
        chosen = list(times)
    if max_frames is not None and len(chosen) > max_frames:
        chosen = [chosen[i] for i in evenly_spaced(len(chosen), max_frames)]
    return chosen


# A frame's display rotation (counter-clockwise degrees, from the container's display matrix or `rotate` tag, as
# PyAV's VideoFrame.rotation gives it) -> the transpose that shows it upright: phone clips are stored sideways.
UPRIGHT_FRAME = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


def frame_image(frame: av.VideoFrame, max_side: int | None) -> Image.Image:
    """An upright RGB image of a decoded frame, downscaled by the converter to `max_side` (never kept full-size)."""
    height, width = frame.height, frame.width
    if max_side is not None and max(height, width) > max_side:
        height, width = fitted_resize(height, width, max_side)
        image = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_image()
    else:
        image = frame.to_image()
    turn = UPRIGHT_FRAME.get(round(getattr(frame, "rotation", 0) or 0) % 360)
    return image.transpose(turn) if turn is not None else image


def read_video(
    path: PathLike,
    fps: float | None = DEFAULT_FPS,
    num_frames: int | None = None,
    max_frames: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_seconds: float | None = None,
    max_side: int | None = limits.VIDEO_FRAME_MAX_SIDE,
) -> Frames:
    """Frames of a video: one per 1/fps seconds (all with fps=None), or `num_frames` evenly spaced;
    then at most `max_frames`, kept evenly spaced over the clip.

    Only the chosen frames are converted, downscaled to `max_side`. Sampling works on timestamps, so a damaged
    frame shifts a pick to the next good one; `notes` of the result say when frames were lost.
    """
    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        reason = "the file is empty" if path.is_file() and path.stat().st_size == 0 else type(error).__name__
        raise UnsupportedFileError(f"{path.name} is not a video we can decode ({reason}).") from None
    notes: list[str] = []
    with container:
        if not container.streams.video:
            raise EmptyInputError(f"{path.name} contains no video frames (no video stream).")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            header = probe_video(container, stream, path.name, max_pixels, max_seconds)
        except av.error.FFmpegError as error:
            raise UnsupportedFileError(f"{path.name} could not be read ({type(error).__name__}).") from None
        # the decoder itself refuses a frame over the limit before allocating it (libavcodec's max_pixels)
        stream.codec_context.options = {**stream.codec_context.options, "max_pixels": str(max_pixels)}
        wanted = sample_times(header.times, fps, num_frames, max_frames)
        targets = {round(t * 1000): t for t in wanted}  # by millisecond: decoders may return frames out of order
        frames: list[tuple[Fraction, Image.Image]] = []
        last, last_time, damaged = None, None, False
        try:
            for frame in container.decode(stream):
                if not targets:
                    break
                # every frame as decoded, not only the header's size: a stream may change size mid-way
                check_image_size(path.name, frame.width, frame.height, max_pixels, what="video frame")
                time = Fraction(frame.pts * stream.time_base) if frame.pts is not None else Fraction(len(frames))
                key = round(time * 1000)
                hit = next((k for k in (key, key - 1, key + 1) if k in targets), None)
                if hit is None:
                    last, last_time = frame, time
                    continue
                del targets[hit]
                frames.append((time, frame_image(frame, max_side)))
                last = None
        except av.error.ArgumentError:  # what max_pixels gives (EINVAL); damaged data gives InvalidDataError
            raise ImageTooLargeError(
                f"{path.name} has a video frame over {max_pixels / 1e6:.0f} MP (the limit per video frame), although "
                f"its header says {header.width}x{header.height}. Re-encode it at a smaller size first."
            ) from None
        except av.error.FFmpegError:
            damaged = True
            if not frames and last is None:
                raise UnsupportedFileError(f"{path.name} could not be decoded: the file is damaged.") from None
        if targets and last is not None:
            frames.append((last_time, frame_image(last, max_side)))  # the final packets did not decode: end on last
        last = None
    frames = [image for _, image in sorted(frames, key=lambda item: item[0])]
    planned = len(wanted)
    if not frames:
        raise EmptyInputError(f"No frames could be decoded from {path.name}.")
    if damaged or len(frames) < planned:
        notes.append(f"{path.name} is damaged: {len(frames)} of the {planned} frames to sample could be read.")
    elif header.duration and header.times and float(header.times[-1]) < 0.9 * header.duration - 1:
        notes.append(
            f"{path.name} seems cut short: its header says {header.duration:.0f} s but frames stop at "
            f"{float(header.times[-1]):.0f} s; {len(frames)} frames were read."
        )
    return Frames(frames, notes)


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
    max_side: int | None = None,
    max_seconds: float | None = None,
) -> tuple[str, Frames]:
    """(name, RGB frames) from a directory, an image, a video, or a list of files.

    Every photo's header is checked (size, count) before any photo is decoded. Videos are sampled at `fps`
    (or `num_frames` evenly spaced) and capped so photos plus frames stay within `max_frames`; more photos than
    `max_frames` raise TooManyFramesError, since dropping someone's photos silently is worse. With `max_side`
    photos are decoded straight to the model's size for that longest side (see `open_image`). The frames' `notes`
    list anything lost on the way (a damaged clip).
    """
    if fps is not None and fps <= 0:
        raise OptionError(f"fps must be positive, got {fps}.")
    name, files = expand_sources(source)
    for path in files:
        if path.is_dir():
            raise UnsupportedFileError(f"{path.name} is a folder; pass its files or the folder alone.")
    photos = [probe_image(path, max_pixels) for path in files if not is_video(path)]  # headers only
    if max_frames is not None and len(photos) > max_frames:
        raise TooManyFramesError(
            f"{len(photos)} views, but the limit is {max_frames}. Use fewer photos or a lower frame rate."
        )
    frames = Frames()
    room = None if max_frames is None else max_frames - len(photos)
    for path in files:
        if is_video(path):
            if room is not None and room < 1:
                raise TooManyFramesError(
                    f"{len(photos)} photos leave no room for video frames within the limit of {max_frames} views."
                )
            clip = read_video(path, fps, num_frames, room, max_pixels, max_seconds, limits.VIDEO_FRAME_MAX_SIDE)
            frames.notes.extend(clip.notes)
            frames.extend(tag_name(frame, f"{path.stem}_{index:04d}.jpg") for index, frame in enumerate(clip))
            room = None if room is None else room - len(clip)
        else:
            frames.append(tag_name(open_image(path, max_pixels=max_pixels, max_side=max_side), path.name))
    if not frames:
        raise EmptyInputError(f"No frames found in {name}.")
    return name, frames

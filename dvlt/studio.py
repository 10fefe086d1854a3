"""What the Space does, without the UI: uploads -> frames -> reconstruction -> scene, gallery, downloads.

`app.py` only wires Gradio components to these functions; they raise
`DVLTError` subclasses with messages written for the person at the browser.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import errno
import filecmp
import hashlib
import importlib.util
import io
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from . import limits
from .batch import pid_alive
from .budget import decode_slot
from .errors import (
    DiskFullError,
    DVLTError,
    EmptyInputError,
    InputError,
    OutputDirError,
    StepsError,
    TooManyFramesError,
)
from .estimate import SLOW_SECONDS, TARGET_SECONDS, Estimate, Estimator, human_seconds
from .export import CameraOptions, adjust_cameras, available, write_colmap, write_glb, write_nerfstudio, zip_directory
from .export.ply import write_point_cloud
from .export.rerun import write_rerun
from .export.splat import write_splats
from .inputs import Frames, Originals, is_video, load_sequence, original_size, originals
from .model import DVLT
from .pipeline import Progress, Reconstruction, reconstruct
from .preprocess import canvas_size
from .reference import most_central_view
from .scene import SceneOptions, select_points
from .visual import depth_change, gallery, legend, shared_range

DOWNLOAD_FORMATS = {
    "COLMAP (3DGS, gsplat, nerfstudio-colmap)": "colmap",
    "nerfstudio / instant-ngp (transforms.json)": "nerfstudio",
    "Gaussian splats (.ply)": "splat",
    "GLB scene": "glb",
    "PLY point cloud": "ply",
    "Rerun recording (.rrd)": "rerun",
}
log = logging.getLogger("dvlt.studio")


def offered_formats() -> list[str]:
    """The download formats this installation can write: one whose optional package is missing is not offered."""
    return [label for label, kind in DOWNLOAD_FORMATS.items() if available(kind)]


def can_refine() -> bool:
    """True when bundle adjustment can run (pycolmap installed); otherwise the option is not offered."""
    return importlib.util.find_spec("pycolmap") is not None


@dataclass(frozen=True)
class Sampling:
    """How to turn an uploaded video into frames."""

    mode: str = "fps"  # "fps" or "count"
    fps: float = limits.FPS_DEFAULT
    count: int = limits.SAMPLE_COUNT_DEFAULT


@dataclass
class SessionResult:
    """What one browser session keeps between events: its reconstruction (without the full-size
    photos, to stay small), its raw-predictions file, and how to decode the photos again."""

    rec: Reconstruction
    npz: Path
    files: tuple[str, ...] = ()
    sampling: Sampling = Sampling()
    reference: int = 0
    resolution: int = limits.RESOLUTION_DEFAULT
    budget: int | None = None  # the frame budget that thinned a video sampled by frame rate (None: none)
    options: SceneOptions = SceneOptions()  # the display settings of the scene on show (API calls default to them)

    def matches(self, files: Sequence[str] | None, sampling: Sampling, reference: int, resolution: int) -> bool:
        """True when a run with these inputs and settings would see the same views as this result."""
        same_settings = (self.sampling, self.reference, self.resolution) == (sampling, reference, resolution)
        return same_settings and _fingerprint(self.files) == _fingerprint(files or ())

    def downloads(self, glb: Path) -> list[str]:
        """The Downloads list: the scene as currently shown, and the raw predictions."""
        return [str(glb), str(self.npz)]

    def with_photos(self, max_views: int) -> tuple[Reconstruction, str | None]:
        """The reconstruction with its full-resolution photos (read from the upload as exports need them), and a
        note when the upload is gone, so the exports fall back to the model's views and the user is told."""
        try:
            frames = with_reference_first(
                decode_uploads(self.files, self.sampling, max_views, self.resolution, self.budget), self.reference
            )
        except (InputError, OSError):
            frames = []
        full = originals(frames)
        if len(frames) != self.rec.num_views or (isinstance(full, Originals) and not full.available()):
            return self.rec, (
                "The full-size photos of this upload are no longer on the server, so this export contains the "
                f"model's {max(self.rec.size)}-px views instead. Upload the photos again for full-size images."
            )
        return dataclasses.replace(self.rec, originals=full), None


def _fingerprint(files: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """(name, bytes) per file: the same photos uploaded again match, different ones do not."""
    out = []
    for file in files:
        path = Path(str(file))
        out.append((path.name, path.stat().st_size if path.exists() else -1))
    return tuple(out)


def human_size(num_bytes: float) -> str:
    """1_234_567 -> '1.2 MB'."""
    for unit in ("B", "KB", "MB"):
        if num_bytes < 1024:
            return f"{num_bytes:.0f} B" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return f"{num_bytes:.1f} GB"


def video_seconds(path: str | Path) -> float:
    """Duration of a video from its container header (0 when unknown)."""
    try:
        with av.open(str(path)) as container:
            return float(container.duration or 0) / av.time_base
    except (av.error.FFmpegError, OSError):
        return 0.0  # decoding will report the real problem


def decode_uploads(
    paths: Sequence[str] | None,
    sampling: Sampling,
    max_views: int,
    resolution: int | None = None,
    budget: int | None = None,
) -> Frames:
    """Frames from uploaded photos and/or one video, within the Space's limits (checked on the files' headers
    before anything is decoded), holding one of the process's decode slots; photos are decoded straight to
    `resolution` (their longest side), video frames to at most `limits.VIDEO_FRAME_MAX_SIDE`; a video sampled
    by frame rate keeps at most `budget` frames (evenly spaced)."""
    paths = [str(p) for p in (paths or [])]
    if not paths:
        raise EmptyInputError("Nothing uploaded yet: add photos or a short video.")
    if len(paths) > limits.MAX_UPLOAD_FILES:
        raise TooManyFramesError(f"{len(paths)} files uploaded; the limit is {limits.MAX_UPLOAD_FILES}.")
    videos = [p for p in paths if is_video(p)]
    if len(videos) > 1:
        raise InputError(f"Upload one video at a time ({len(videos)} were given).")
    if sampling.mode == "count" and not 1 <= sampling.count <= max_views:
        raise TooManyFramesError(f"Asked for {sampling.count} frames; the limit here is {max_views}.")
    if sampling.mode == "fps" and not 0 < sampling.fps <= limits.FPS_MAX:
        raise InputError(f"Frames per second must be between 0 and {limits.FPS_MAX:g}.")
    count = sampling.count if sampling.mode == "count" else None
    most = min(max_views, budget) if budget and sampling.mode == "fps" and videos else max_views
    with decode_slot():
        _, frames = load_sequence(
            paths,
            fps=sampling.fps,
            num_frames=count,
            max_frames=most,
            max_pixels=limits.MAX_IMAGE_PIXELS,
            max_side=resolution,
            max_seconds=limits.MAX_VIDEO_SECONDS,
        )
    return frames


def with_reference_first(frames: Sequence[Image.Image], reference: int) -> list[Image.Image]:
    """Rotate the frames so `reference` becomes view 0 (the world frame), keeping neighbours together."""
    if not 0 <= reference < len(frames):
        raise InputError(f"Reference view {reference} does not exist (there are {len(frames)} views).")
    return Frames(list(frames[reference:]) + list(frames[:reference]), getattr(frames, "notes", ()))


def describe_frames(frames: Sequence[Image.Image], resolution: int) -> str:
    """One line on the views about to be used, flagging mixed sizes/orientations."""
    sizes = Counter(f"{w}×{h}" for h, w in frame_sizes(frames))
    listed = ", ".join(f"{size} ({n})" if n > 1 else size for size, n in sizes.most_common())
    line = f"{len(frames)} view{'s' if len(frames) != 1 else ''}: {listed}."
    orientations = {w >= h for h, w in frame_sizes(frames)}
    if len(sizes) > 1:
        height, width = canvas_size(frame_sizes(frames), resolution)
        kind = "orientations" if len(orientations) > 1 else "sizes"
        line += f" Mixed {kind}: every view is centre-padded to {width}×{height}; padding is ignored in the results."
    return line


def mixed_sizes(frames: Sequence[Image.Image]) -> bool:
    return len(set(frame_sizes(frames))) > 1


def probe_speed(estimator: Estimator, model: DVLT, device: str, precision: str) -> None:
    """Calibrate the estimator at start-up: kernel rates plus two small real passes, three times each (2-4 s)."""

    def real_pass(views: int, height: int, width: int, steps: int) -> float:
        rng = np.random.default_rng(0)
        frames = [Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)) for _ in range(views)]
        rec = reconstruct(model, frames, steps=steps, img_size=max(height, width), name="probe")
        assert rec.size == (height, width), "probe shapes must be multiples of the patch size"
        return rec.seconds["model"]

    estimator.probe(device, precision, run_model=real_pass)


def load_model(checkpoint: str, device: str = "auto", precision: str = "auto") -> tuple[DVLT | None, str | None]:
    """The model with weights, or (None, a message saying what failed and how to fix it)."""
    model = DVLT(precision=precision)
    try:
        model.load_pretrained(checkpoint, strict=True)
    except DVLTError as error:
        return None, str(error)
    return model.setup_test(device), None


def frame_sizes(frames: Sequence[Image.Image]) -> list[tuple[int, int]]:
    """(height, width) of each frame's photo (frames may be decoded downscaled): all an estimate needs."""
    return [original_size(frame) for frame in frames]


def device_label(device: str, precision: str) -> str:
    """'CPU, fp32' / 'GPU, bf16': where an estimate's run happens, when no fuller runtime line is given."""
    return f"{'GPU' if device == 'cuda' else 'CPU'}, {precision}"


def estimate_for(
    estimator: Estimator,
    sizes: Sequence[tuple[int, int]],
    resolution: int,
    steps: int,
    device: str,
    precision: str,
    where: str | None = None,
) -> tuple[Estimate, str]:
    """Time/memory estimate and its description for views of these (height, width) sizes; over
    SLOW_SECONDS it says so and offers the cheaper setting (fewer views or a lower resolution)."""
    height, width = canvas_size(sizes, resolution)
    estimate = estimator.estimate(len(sizes), height, width, steps, device, precision)
    where = where or device_label(device, precision)
    text = estimate.describe(len(sizes), height, width, steps, where)
    if estimate.slow:
        text += f"  \n⚠️ **Over {SLOW_SECONDS / 60:.0f} minutes.** " + cheaper_settings(
            estimator, sizes, resolution, steps, device, precision
        )
    return estimate, text


def cheaper_settings(
    estimator: Estimator, sizes: Sequence[tuple[int, int]], resolution: int, steps: int, device: str, precision: str
) -> str:
    """One sentence offering a setting that fits about a minute: fewer views, or a lower resolution."""
    height, width = canvas_size(sizes, resolution)
    fewer = estimator.views_within(TARGET_SECONDS, height, width, steps, device, precision, len(sizes))
    offers = []
    if fewer < len(sizes):
        seconds = estimator.estimate(fewer, height, width, steps, device, precision).seconds
        offers.append(f"{fewer} view{'s' if fewer != 1 else ''} (≈ {human_seconds(seconds)})")
    for lower in sorted((r for r in limits.RESOLUTIONS if r < resolution), reverse=True):
        low_h, low_w = canvas_size(sizes, lower)
        seconds = estimator.estimate(len(sizes), low_h, low_w, steps, device, precision).seconds
        if seconds <= 2 * TARGET_SECONDS or lower == min(limits.RESOLUTIONS):
            offers.append(f"{lower} px (≈ {human_seconds(seconds)})")
            break
    return ("Faster: " + " or ".join(offers) + ".") if offers else "Fewer views or a lower resolution is faster."


def video_frame_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) of a video's frames from its header (None when unknown)."""
    try:
        with av.open(str(path)) as container:
            codec = container.streams.video[0].codec_context
            return (int(codec.height), int(codec.width)) if codec.width and codec.height else None
    except (av.error.FFmpegError, OSError, IndexError):
        return None


def frame_budget(
    estimator: Estimator,
    paths: Sequence[str] | None,
    resolution: int,
    steps: int,
    device: str,
    precision: str,
    max_views: int,
) -> int:
    """How many views sampling a video by frame rate may keep: on CPU the most that fit about
    TARGET_SECONDS (never fewer than 2), on GPU the device's view limit."""
    videos = [str(p) for p in (paths or []) if is_video(str(p))]
    size = video_frame_size(videos[0]) if videos else None
    if device == "cuda" or size is None:
        return max_views
    height, width = canvas_size([size], resolution)
    return max(2, estimator.views_within(TARGET_SECONDS, height, width, steps, device, precision, max_views))


def sampling_note(paths: Sequence[str] | None, sampling: Sampling, used: int, budget: int, max_views: int) -> str:
    """Say how many frames the video gave at this frame rate and why fewer are used (empty when all are)."""
    videos = [str(p) for p in (paths or []) if is_video(str(p))]
    if not videos or sampling.mode != "fps":
        return ""
    sampled = int(video_seconds(videos[0]) * sampling.fps) or used
    if sampled <= used:
        return ""
    why = (
        f"the most that fit about {TARGET_SECONDS:.0f} s on this CPU"
        if budget < max_views
        else f"the limit here is {max_views} views"
    )
    return (
        f"The video gives about {sampled} frames at {sampling.fps:g} fps; {used} evenly spaced are used "
        f"({why}). Choose “number of frames” under Video sampling to pick another count."
    )


def whole_steps(steps: float | int | str) -> int:
    """K as an int; refuses 8.5 or text rather than truncating it silently."""
    try:
        value = float(steps)
    except (TypeError, ValueError):
        raise StepsError(f"K must be a whole number, got {steps!r}.") from None
    if not value.is_integer():
        raise StepsError(f"K must be a whole number of steps, got {steps}.")
    return int(value)


def run_model(
    model: DVLT, frames: Sequence[Image.Image], steps: int, resolution: int, progress: Progress | None = None
) -> Reconstruction:
    """Check K and resolution, then reconstruct (the first frame is the reference)."""
    steps = whole_steps(steps)
    if not limits.STEPS_MIN <= int(steps) <= limits.STEPS_MAX:
        raise InputError(f"K must be between {limits.STEPS_MIN} and {limits.STEPS_MAX} here (got {steps}).")
    if int(resolution) not in limits.RESOLUTIONS:
        raise InputError(f"Resolution must be one of {', '.join(map(str, limits.RESOLUTIONS))} px.")
    if not frames:
        raise EmptyInputError("Nothing to reconstruct: add photos or a video.")
    return reconstruct(model, frames, steps=int(steps), img_size=int(resolution), name="scene", progress=progress)


def scene_options(
    conf_percentile: float,
    show_cameras: bool,
    views: Sequence[int | str] | None,
    max_points: int,
    mask_black: bool,
    mask_white: bool,
    drop_edges: bool = limits.DROP_EDGES_DEFAULT,
    frustum_scale: float = limits.FRUSTUM_SCALE_DEFAULT,
) -> SceneOptions:
    """SceneOptions from UI values (views may arrive as 'view 3' labels or ints)."""
    chosen = None if views is None else tuple(sorted(int(str(v).split()[-1]) for v in views))
    return SceneOptions(
        conf_percentile=float(np.clip(conf_percentile, 0, 99)),
        max_points=int(np.clip(max_points, 1_000, limits.POINTS_MAX)),
        views=chosen,
        show_cameras=bool(show_cameras),
        mask_black=bool(mask_black),
        mask_white=bool(mask_white),
        drop_edges=bool(drop_edges),
        frustum_scale=float(np.clip(frustum_scale, 0.0, limits.FRUSTUM_SCALE_MAX)),
    )


def requested_options(
    current: SceneOptions,
    conf: float | None = None,
    show_cameras: bool | None = None,
    views: Sequence[int | str] | None = None,
    max_points: int | None = None,
    mask_black: bool | None = None,
    mask_white: bool | None = None,
    drop_edges: bool | None = None,
    frustum_scale: float | None = None,
) -> SceneOptions:
    """The display options an API call asks for: each one it gives, else the one on show now (`current`);
    `views` left out means every view, so a call with no settings shows the whole result as it looks now."""

    def given(value, now):
        return now if value is None else value

    return scene_options(
        given(conf, current.conf_percentile),
        given(show_cameras, current.show_cameras),
        views,
        given(max_points, current.max_points),
        given(mask_black, current.mask_black),
        given(mask_white, current.mask_white),
        given(drop_edges, current.drop_edges),
        given(frustum_scale, current.frustum_scale),
    )


def render_splats(rec: Reconstruction, options: SceneOptions, directory: Path) -> tuple[Path, str]:
    """Write the Gaussian-splat PLY the viewer shows (same filters as the point cloud) and describe it."""
    start = time.perf_counter()
    path = write_splats(rec, directory / f"splats-{uuid.uuid4().hex[:8]}.ply", options, rest=False)  # DC only
    took = time.perf_counter() - start
    gaussians = len(select_points(rec, options))
    return path, f"**Splats {human_size(path.stat().st_size)}** · {gaussians:,} Gaussians · built in {took:.2f} s"


REFERENCE_WHY = {
    "auto": "picked automatically: it shares the most content with the others",
    "chosen": "your choice",
    "long clip": "the clip's first frame (long-clip windows follow the clip's order)",
}


def reference_line(index: int, how: str) -> str:
    """The one sentence naming the reference view, the same in the preview and in the run info
    (`how`: 'auto', 'chosen' or 'long clip'; views are numbered as in the preview)."""
    return f"Reference view (world frame): **view {index}**, {REFERENCE_WHY[how]}."


def thumbnail_data_uri(path: str | Path, side: int = 96) -> str:
    """A small JPEG of a photo (a video: its first frame) as a data: URI, for an example's button."""
    _, frames = load_sequence([str(path)], num_frames=1, max_frames=1, max_side=side)
    picture = frames[0].convert("RGB")
    picture.thumbnail((side, side))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def choose_reference(frames: Sequence[Image.Image]) -> tuple[int, str]:
    """The most central view (dvlt.reference) and the line saying which it is and why."""
    index = most_central_view(frames)
    return index, reference_line(index, "auto")


def render_scene(rec: Reconstruction, options: SceneOptions, directory: Path) -> tuple[Path, str]:
    """Write the GLB and describe it (size, points, cameras)."""
    start = time.perf_counter()
    stats = write_glb(rec, directory / f"scene-{uuid.uuid4().hex[:8]}.glb", options)
    took = time.perf_counter() - start
    cameras = f"{stats.cameras} camera{'s' if stats.cameras != 1 else ''}"
    info = f"**GLB {human_size(stats.bytes)}** · {stats.points:,} points · {cameras} · built in {took:.2f} s"
    return stats.path, info


def reference_for(
    frames: Sequence[Image.Image], auto: bool, long_clip: bool, chosen: int, max_views: int
) -> tuple[int, str]:
    """The reference view and the line naming it (the same in the preview and the run info): view 0 for a long
    clip cut into windows (they follow the clip's order), the most central view when `auto`, else `chosen`."""
    if long_clip and len(frames) > max_views:
        return 0, reference_line(0, "long clip")
    if auto:
        return choose_reference(frames)
    return int(chosen or 0), reference_line(int(chosen or 0), "chosen")


def model_result(
    frames: Sequence[Image.Image],
    reference: int,
    model_pass: Callable[[list[Image.Image]], Reconstruction],
    cache: ResultCache | None = None,
    key: Hashable | None = None,
) -> tuple[list[Image.Image], Reconstruction, bool]:
    """The frames with `reference` first and their reconstruction: the one `cache` holds for `key` (re-used:
    True), else `model_pass(frames)`, then kept there. A clicked example runs once, for every session."""
    ordered = with_reference_first(frames, reference)
    rec = cache.get(key) if cache is not None else None
    if rec is not None:
        return ordered, rec, True
    rec = model_pass(ordered)
    if cache is not None:
        cache.put(key, rec)
    return ordered, rec, False


@dataclass
class RunFiles:
    """What a finished run shows and serves: scene, splats, raw predictions, depth gallery and legend."""

    glb: Path
    scene_info: str
    splats: Path
    splat_info: str
    npz: Path
    gallery: list[tuple[np.ndarray, str]]
    legend: np.ndarray


def write_run_files(rec: Reconstruction, options: SceneOptions, folder: Path) -> RunFiles:
    """Write a run's GLB, splat PLY and predictions into `folder` (all or nothing) and draw its depth gallery;
    then drop the full-size photos from `rec` (the session keeps it; downloads read the photos again)."""
    with all_or_nothing(folder):
        glb, info = render_scene(rec, options, folder)
        splats, splat_info = render_splats(rec, options, folder)
        npz = rec.to_npz(folder / "dvlt-predictions.npz")
    items, scale = depth_panels(rec)
    rec.originals = None
    return RunFiles(glb, info, splats, splat_info, npz, items, scale)


def describe_run(
    rec: Reconstruction,
    estimate: Estimate | None,
    took: float,
    where: str,
    reference: str,
    notes: str = "",
    windows: str = "",
    reused: bool = False,
) -> str:
    """The run info: time against the estimate, where it ran, notes on the upload, the long-clip windows, the
    reference view, and whether an example's first result was re-used."""
    lines = [run_summary(rec, estimate, took, where) + notes]
    lines += [windows] if windows else []
    lines.append(reference)
    if reused:
        lines.append("_Example result re-used from its first run (the model time above is that run's)._")
    return "  \n".join(lines)


def depth_panels(rec: Reconstruction) -> tuple[list[tuple[np.ndarray, str]], np.ndarray]:
    """Gallery items (input | depth | confidence per view) and the shared depth legend."""
    near, far = shared_range(rec.depth, rec.valid)
    return gallery(rec), legend(near, far)


def run_summary(
    rec: Reconstruction, estimate: Estimate | None = None, took: float | None = None, where: str = ""
) -> str:
    """Markdown lines on a finished run: what ran, how long it took against the estimate, and where."""
    took = took if took is not None else sum(rec.seconds.values())
    line = f"**took {human_seconds(took)}**" + (f" (estimated ≈ {human_seconds(estimate.seconds)})" if estimate else "")
    parts = [
        line,
        f"model {rec.seconds.get('model', 0):.1f} s",
        f"{rec.num_views} views at {rec.size[1]}×{rec.size[0]}, K={rec.steps}",
    ]
    return " · ".join(parts) + (f"  \n{where}" if where else "")


def compare_runs(first: Reconstruction, second: Reconstruction) -> tuple[str, list[tuple[np.ndarray, str]]]:
    """Markdown table of model time and per-view depth change between two K, and the change maps."""
    percents, maps = depth_change(first, second)
    rows = [f"| | K={first.steps} | K={second.steps} | change |", "|---|---|---|---|"]
    slower = second.seconds["model"] / max(first.seconds["model"], 1e-9)
    rows.append(f"| model time | {first.seconds['model']:.2f} s | {second.seconds['model']:.2f} s | ×{slower:.2f} |")
    for view, percent in enumerate(percents):
        median_a = _median_depth(first, view)
        median_b = _median_depth(second, view)
        rows.append(
            f"| view {view}: median depth | {median_a:.3g} | {median_b:.3g} | {percent:.2f} % mean depth change |"
        )
    note = (
        f"\n\nChange maps: |depth(K={second.steps}) − depth(K={first.steps})| / depth(K={first.steps}), "
        "blue = unchanged, red = 10 % or more."
    )
    captions = [
        (image, f"view {view}: {percent:.2f} % mean change")
        for view, (image, percent) in enumerate(zip(maps, percents))
    ]
    return "\n".join(rows) + note, captions


def _median_depth(rec: Reconstruction, view: int) -> float:
    valid = rec.depth[view][rec.valid[view]]
    return float(np.median(valid)) if valid.size else float("nan")


def compare_plan(
    estimator: Estimator,
    sizes: Sequence[tuple[int, int]],
    resolution: int,
    step_pair: Sequence[int],
    reusable: int | None,
    device: str,
    precision: str,
) -> tuple[list[float], str]:
    """Estimated seconds of each K still to run (0 for the one the current result provides) and a line saying so."""
    height, width = canvas_size(sizes, resolution)
    seconds = [
        0.0 if steps == reusable else estimator.estimate(len(sizes), height, width, steps, device, precision).seconds
        for steps in step_pair
    ]
    parts = [
        f"K={steps}: your current result" if steps == reusable else f"K={steps} ≈ {human_seconds(each)}"
        for steps, each in zip(step_pair, seconds)
    ]
    line = f"≈ {human_seconds(sum(seconds))} for {len(sizes)} views at {width}×{height} ({'; '.join(parts)})"
    if sum(seconds) > SLOW_SECONDS:
        line += ". ⚠️ Over 2 minutes: " + cheaper_settings(
            estimator, sizes, resolution, max(step_pair), device, precision
        )
    return seconds, line


def download(
    rec: Reconstruction,
    label: str,
    options: SceneOptions,
    directory: Path,
    refine: bool = False,
    notify: Callable[[str], None] | None = None,
) -> Path:
    """A single file to download in the chosen format (folders are zipped).

    With `refine` ("Refine cameras with bundle adjustment") the cameras are bundle-adjusted first; `notify`
    gets the outcome (reprojection error before -> after, or why the unrefined cameras were kept).
    """
    kind = DOWNLOAD_FORMATS.get(label)
    if kind is None:
        raise InputError(f"Unknown download format {label!r}.")
    if refine:
        rec = adjust_cameras(rec, CameraOptions(refine=True), options, notify or (lambda message: None))
    if kind == "glb":
        return write_glb(rec, directory / "dvlt-scene.glb", options).path
    if kind == "ply":
        return write_point_cloud(rec, directory / "dvlt-points.ply", options)
    if kind == "splat":
        return write_splats(rec, directory / "dvlt-splats.ply", options)
    if kind == "rerun":
        return write_rerun(rec, directory / "dvlt-scene.rrd", options)
    target = directory / f"dvlt-{kind}"
    (write_colmap if kind == "colmap" else write_nerfstudio)(rec, target, options)
    archive = zip_directory(target, directory / f"dvlt-{kind}.zip")
    # only the zip is served: the folder would double the disk used, and its images/ are byte copies of the
    # inputs, which the session clean-up would take for served copies of outputs and delete from Gradio's cache
    shutil.rmtree(target)
    return archive


@contextlib.contextmanager
def all_or_nothing(folder: Path) -> Iterator[Path]:
    """Write a request's outputs into `folder`; on any failure remove it whole (no partial GLB or NPZ is ever
    served), and report a full disk as such rather than as the user's fault."""
    try:
        yield folder
    except BaseException as error:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                "The server's disk is full, so the results could not be saved (nothing partial was kept). "
                "Please try again later."
            ) from None
        raise


def session_key(session: str | None) -> str:
    """Collision-free folder name for a session id: a digest, so no two ids share one and none escapes the root."""
    return hashlib.sha256((session or "anonymous").encode("utf-8")).hexdigest()[:32]


class OutputFolders:
    """Per-session output folders under one root, for this process only.

    Each process writes under root/run-<pid>-<random>/; folders of processes that are gone are removed at
    start-up. A session's folder is removed when its tab closes (`forget`), or by a timer thread once it has been
    idle for `idle_s`; a session over `disk_mb` loses its oldest results first. `on_remove(path)` is called for
    every file about to be deleted. With `copies` (the web server's cache, where it serves copies of outputs that
    live elsewhere) the served copy of every removed file goes too, so the URLs a session was given stop working.

    A root that cannot be written does not raise here: `error` says what is wrong and how to fix it, and `new`
    refuses with it, so the app can start and show it."""

    def __init__(
        self,
        root: str | Path | None = None,
        idle_s: float = limits.SESSION_IDLE_S,
        disk_mb: float = limits.SESSION_DISK_MB,
        on_remove: Callable[[Path], None] | None = None,
        copies: str | Path | None = None,
    ) -> None:
        base = Path(root or Path(tempfile.gettempdir()) / "dvlt-studio")
        self.idle_s, self.disk_bytes, self.on_remove = idle_s, disk_mb * 1024 * 1024, on_remove
        self.copies = Path(copies) if copies is not None else None
        self.root = base / f"run-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.error: str | None = None
        self._last_seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._timer: threading.Thread | None = None
        try:
            base.mkdir(parents=True, exist_ok=True)
            self.remove_previous_runs(base)
            self.root.mkdir()
        except OSError as error:
            self.error = (
                f"The server's output folder cannot be written ({error.strerror or type(error).__name__}), so "
                "nothing can be reconstructed. The operator can fix it by pointing DVLT_OUTPUT_DIR at a writable "
                "folder (or unsetting it) and restarting the app."
            )
            log.error("output folder %s is not writable: %s", base, error)

    def remove_previous_runs(self, base: Path) -> None:
        """Delete the outputs of earlier processes that are no longer running (and their served copies)."""
        for folder in base.glob("run-*"):
            try:
                pid = int(folder.name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if pid != os.getpid() and not pid_alive(pid):
                self._remove(folder)

    def new(self, session: str | None) -> Path:
        """A fresh, unguessable folder for one request of `session` (OutputDirError when none can be made)."""
        if self.error is not None:
            raise OutputDirError(self.error)
        key = session_key(session)
        with self._lock:
            self._last_seen[key] = time.time()
        self.enforce_cap(key)
        folder = self.root / key / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def touch(self, session: str | None) -> None:
        """Note activity of a session (keeps its outputs from the idle sweep)."""
        with self._lock:
            self._last_seen[session_key(session)] = time.time()

    def _remove(self, folder: Path) -> None:
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            try:
                if self.copies is not None:
                    remove_served_copies(path, self.copies, keep=lambda other: folder not in other.parents)
                if self.on_remove is not None:
                    self.on_remove(path)
            except Exception:  # a failed clean-up hook must not keep our own files
                log.exception("clean-up hook failed")
        shutil.rmtree(folder, ignore_errors=True)

    def enforce_cap(self, key: str) -> None:
        """Drop a session's oldest request folders while it holds more than its disk cap."""
        folders = sorted(
            (f for f in (self.root / key).glob("*") if f.is_dir()), key=lambda f: f.stat().st_mtime, reverse=True
        )
        used = 0
        for folder in folders:
            used += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            if used > self.disk_bytes:
                self._remove(folder)

    def forget(self, session: str | None) -> None:
        """Delete everything a session wrote (its tab closed)."""
        key = session_key(session)
        with self._lock:
            self._last_seen.pop(key, None)
        if (self.root / key).exists():
            self._remove(self.root / key)

    def sweep(self, idle_s: float | None = None) -> None:
        """Delete the folders of sessions idle for longer than `idle_s`."""
        cutoff = time.time() - (self.idle_s if idle_s is None else idle_s)
        for folder in self.root.glob("*"):
            with self._lock:
                seen = self._last_seen.get(folder.name)
            try:
                last = seen if seen is not None else folder.stat().st_mtime
            except FileNotFoundError:
                continue
            if last < cutoff:
                with self._lock:
                    self._last_seen.pop(folder.name, None)
                self._remove(folder)

    def start_timer(self, every_s: float = limits.SESSION_SWEEP_EVERY_S) -> None:
        """Sweep idle sessions every `every_s` seconds on a daemon thread (not on the next request)."""
        if self._timer is not None:
            return

        def loop() -> None:
            while True:
                time.sleep(every_s)
                try:
                    self.sweep()
                except Exception:
                    log.exception("output sweep failed")

        self._timer = threading.Thread(target=loop, name="dvlt-output-sweep", daemon=True)
        self._timer.start()


def remove_served_copies(path: Path, copies: Path, keep: Callable[[Path], bool]) -> None:
    """Delete the web server's copies of output `path`: Gradio keeps one per content under copies/<digest>/<name>,
    shared by every session whose output has those bytes, so a copy stays while another live output file (one
    under the same run folder for which `keep` is true) has the same name and bytes."""
    size = path.stat().st_size
    same = lambda other: other.stat().st_size == size and filecmp.cmp(path, other, shallow=False)  # noqa: E731
    served = [copy for copy in copies.glob(f"*/{path.name}") if copy.is_file() and same(copy)]
    if not served:
        return
    run = next((parent for parent in path.parents if parent.name.startswith("run-")), path.parent)
    if any(keep(other) and other != path and same(other) for other in run.rglob(path.name) if other.is_file()):
        return  # still another session's output
    for copy in served:
        copy.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            copy.parent.rmdir()  # Gradio's per-digest folder, when nothing else is in it


def linked_copy(path: str | Path, folder: Path) -> Path:
    """The same file under a new name in `folder` (a hard link, else a copy): a web viewer that dropped a file
    takes the new name as a new file and loads it again."""
    path = Path(path)
    target = folder / f"{path.stem}-{uuid.uuid4().hex[:8]}{path.suffix}"
    try:
        os.link(path, target)
    except OSError:  # another file system, or no hard links there
        shutil.copyfile(path, target)
    return target


class ResultCache:
    """Model results kept by key (an example's inputs and settings), filled on first use: a clicked example
    is a real run the first time and re-uses its reconstruction afterwards, for every session (thread-safe)."""

    def __init__(self, size: int = 8) -> None:
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Hashable) -> Reconstruction | None:
        with self._lock:
            rec = self._items.get(key)
            if rec is not None:
                self._items.move_to_end(key)
            return rec

    def put(self, key: Hashable, rec: Reconstruction) -> None:
        with self._lock:
            self._items[key] = rec
            while len(self._items) > self.size:
                self._items.popitem(last=False)

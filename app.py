"""DVLT Studio: the Gradio Space. Upload photos or a clip, pick K, explore and download the 3D result.

Only UI wiring lives here; the work is done by functions in `dvlt.studio`
(tested without the UI). Run locally with `python app.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import gradio as gr
import spaces  # noqa: I001  (ZeroGPU: must be imported before anything touches CUDA)
import torch

from dvlt import flythrough, form, limits, longclip, studio, studio_measure
from dvlt.budget import return_memory
from dvlt.errors import DVLTError, InputError
from dvlt.estimate import Estimator
from dvlt.export.glb import write_glb
from dvlt.file_route import file_route_middleware
from dvlt.inputs import NAME_KEY
from dvlt.pipeline import Reconstruction
from dvlt.runtime import describe_runtime, precision_name

log = logging.getLogger("dvlt.app")
ROOT = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(ROOT, "examples")
CHECKPOINT = os.environ.get("DVLT_CHECKPOINT", "nvidia/dvlt")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

MODEL, LOAD_ERROR = studio.load_model(CHECKPOINT, device=DEVICE)
# The rule of dvlt.runtime (DVLT_PRECISION overrides), without querying CUDA: ZeroGPU forbids that here.
PRECISION = precision_name(None, DEVICE)
RUNTIME = describe_runtime(DEVICE)  # "CPU (…) · bf16 (CPU has AMX) · 2 threads", shown with every estimate
MAX_VIEWS = limits.max_views(DEVICE)
CLIP_FRAMES = limits.max_clip_frames(DEVICE)  # long-clip mode: windows of MAX_VIEWS
ESTIMATOR = Estimator()
if MODEL is not None and DEVICE == "cpu":
    studio.probe_speed(ESTIMATOR, MODEL, DEVICE, PRECISION)  # 2-4 s: estimates fit this machine from the start
EXAMPLE_RESULTS = studio.ResultCache()
UPLOAD_CACHE = gr.utils.get_upload_folder()
# By default outputs live inside Gradio's cache, so each file is written once (Gradio serves it in place). With
# DVLT_OUTPUT_DIR elsewhere Gradio serves a copy (shared by content between sessions), removed by delete_cache.
OUTPUT_DIR = os.environ.get("DVLT_OUTPUT_DIR")
OUTPUTS = studio.OutputFolders(
    OUTPUT_DIR or os.path.join(UPLOAD_CACHE, "dvlt-studio"),
    idle_s=float(os.environ.get("DVLT_SESSION_IDLE_S", limits.SESSION_IDLE_S)),
    copies=UPLOAD_CACHE if OUTPUT_DIR else None,  # Gradio's copies of outputs kept elsewhere go with them
)
OUTPUTS.start_timer(float(os.environ.get("DVLT_SWEEP_EVERY_S", limits.SESSION_SWEEP_EVERY_S)))

K_HELP = (
    "K is how many times DVLT loops its shared block. More steps refine depth and cameras further; "
    "time grows about linearly with K. It was trained for 8–16 (12 is the default)."
)
LIMITS_LINE = (
    f"Limits: up to {MAX_VIEWS} views on this {'GPU' if DEVICE == 'cuda' else 'CPU'}, "
    f"{limits.MAX_UPLOAD_FILES} files per upload, "
    f"{limits.MAX_IMAGE_PIXELS // 1_000_000} MP per photo, one video of at most {limits.MAX_VIDEO_SECONDS} s, "
    f"K {limits.STEPS_MIN}–{limits.STEPS_MAX}, at most {limits.POINTS_MAX:,} points in the scene."
)


def human_errors(handler: Callable) -> Callable:
    """Show our errors as a readable gr.Error; log anything unexpected and say so plainly."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except DVLTError as error:  # the user's input or a state we explain (busy, disk full)
            raise gr.Error(str(error)) from None
        except Exception:  # a bug or a server problem: log it whole, never blame the user or show paths
            log.exception("unexpected failure in %s", handler.__name__)
            raise gr.Error("Something went wrong on our side. It has been logged; please try again.") from None
        finally:
            return_memory()

    return wrapped


def require_model() -> None:
    if OUTPUTS.error:
        raise gr.Error(OUTPUTS.error)
    if MODEL is None:
        raise gr.Error(f"The model weights are not loaded, so nothing can be reconstructed. {LOAD_ERROR}")


def gpu_seconds(frames: list, steps: int, resolution: int, *_: Any, **__: Any) -> int:
    """ZeroGPU duration request from the view count, size and K (bounded)."""
    estimate, _ = studio.estimate_for(
        ESTIMATOR, studio.frame_sizes(frames), int(resolution), int(steps), "cuda", "bf16"
    )
    return int(min(180, max(20, 3 * estimate.seconds + 10)))


@spaces.GPU(duration=gpu_seconds)
def infer(
    frames: list,
    steps: int,
    resolution: int,
    progress: gr.Progress = gr.Progress(),
    span: tuple[float, float] = (0.0, 0.95),
    label: str = "",
) -> Reconstruction:
    """The only function that needs the GPU: the model pass and the camera fit (progress within `span`)."""
    low, high = span
    return studio.run_model(
        MODEL,
        frames,
        steps,
        resolution,
        lambda fraction, message: progress(low + (high - low) * fraction, desc=label + message),
    )


def gpu_seconds_windows(frames: list, steps: int, resolution: int, *_: Any, **__: Any) -> int:
    """ZeroGPU duration for a long clip: every window's estimate (bounded)."""
    total, _ = longclip.estimate_clip(
        ESTIMATOR, studio.frame_sizes(frames), int(resolution), int(steps), "cuda", "bf16", MAX_VIEWS
    )
    return int(min(900, max(30, 3 * total.seconds + 10)))


@spaces.GPU(duration=gpu_seconds_windows)
def infer_windows(frames: list, steps: int, resolution: int, progress: gr.Progress = gr.Progress()) -> Reconstruction:
    """Long clip: windows of MAX_VIEWS frames aligned by Sim(3), with progress per window."""
    return longclip.run_windows(
        MODEL, frames, steps, resolution, MAX_VIEWS, lambda fraction, message: progress(fraction, desc=message)
    )


def learn_speed(rec: Reconstruction, total_seconds: float | None = None) -> None:
    """Feed the measured times into the estimator (in the main process, not ZeroGPU's worker)."""
    height, width = rec.size
    ESTIMATOR.observe(rec.num_views, height, width, rec.steps, DEVICE, PRECISION, rec.seconds["model"], total_seconds)


def estimate_line(sizes, resolution, steps, long_clip=False) -> tuple[studio.Estimate, str]:
    """The estimate for these frame sizes and settings (per window and in total for a long clip)."""
    if long_clip and len(sizes) > MAX_VIEWS:
        return longclip.estimate_clip(ESTIMATOR, sizes, int(resolution), int(steps), DEVICE, PRECISION, MAX_VIEWS)
    return studio.estimate_for(ESTIMATOR, sizes, int(resolution), int(steps), DEVICE, PRECISION, where=RUNTIME)


def frame_budget(files, resolution, steps) -> int:
    """Frames a video sampled by frame rate may keep: about a minute's worth on CPU."""
    return studio.frame_budget(ESTIMATOR, files, int(resolution), int(steps), DEVICE, PRECISION, MAX_VIEWS)


def decode(files, mode, fps, count, resolution, steps, long_clip=False, side=None) -> tuple[list, str | None, str]:
    """The frames a run with these settings uses (decoded to `side`, default the run's resolution), the frame
    budget that thinned a video (None when none applied), and a note on sampling and anything lost reading it."""
    how = sampling(mode, fps, count)
    cap = CLIP_FRAMES if long_clip else MAX_VIEWS
    budget = None if long_clip else frame_budget(files, resolution, steps)
    frames = studio.decode_uploads(files, how, cap, side or int(resolution), budget)
    note = studio.sampling_note(files, how, len(frames), budget, cap) if budget else ""
    return frames, budget, (f"  \n{note}" if note else "") + show_notes(frames)


def sampling(mode: str, fps: float, count: float) -> studio.Sampling:
    if float(count) != int(count):
        raise InputError(f"The number of frames must be a whole number, got {count}.")
    return studio.Sampling("count" if mode == form.SAMPLE_BY_COUNT else "fps", float(fps), int(count))


def checked_resolution(resolution) -> int:
    """The resolution if it is one the app offers (checked before anything is decoded)."""
    if resolution not in limits.RESOLUTIONS and str(resolution) not in map(str, limits.RESOLUTIONS):
        raise InputError(f"Resolution must be one of {', '.join(map(str, limits.RESOLUTIONS))} px.")
    return int(resolution)


def show_notes(frames) -> str:
    """Warn about anything lost while reading the upload (a damaged clip); the same text for the run info."""
    notes = list(getattr(frames, "notes", ()))
    for note in notes:
        gr.Warning(note)
    return "".join(f"  \n⚠️ {note}" for note in notes)


@human_errors
def preview(
    files, mode, fps, count, resolution, steps, long_clip=False, auto_reference=False, reference=0, example=None
):
    """Decode the upload (small), show the frames that will be used, the reference view and the estimate."""
    if form.mixed_with_example(files, example):  # an upload joined an example's files: replace_example is on it
        return (gr.skip(),) * 5
    if not files:
        return [], "Upload photos or a video to start.", gr.update(value=0), RUNTIME, []
    steps, resolution = studio.whole_steps(steps), checked_resolution(resolution)
    frames, _, note = decode(files, mode, fps, count, resolution, steps, long_clip, side=min(limits.RESOLUTIONS))
    if studio.mixed_sizes(frames):
        gr.Warning("Views differ in size or orientation; they will be centre-padded to one canvas.")
    sizes = studio.frame_sizes(frames)
    estimate = estimate_line(sizes, resolution, steps, long_clip)[1]
    items = [(f, f"{i}: {f.info.get(NAME_KEY, '')}") for i, f in enumerate(frames)]
    reference, line = reference_for(frames, auto_reference, long_clip, reference)
    return (
        items,
        studio.describe_frames(frames, int(resolution)) + note + f"  \n{line}",
        reference,  # no Gradio `maximum`: a queued event still holding the previous upload's view number would
        # be refused with a bare range error; the run checks the number against its own views instead
        estimate,
        sizes,
    )


def reference_for(frames, auto_reference, long_clip, chosen=0) -> tuple[int, str]:
    """The reference view and the line naming it, as studio.reference_for decides on this device."""
    return studio.reference_for(frames, bool(auto_reference), bool(long_clip), int(chosen or 0), MAX_VIEWS)


def pick_reference(event: gr.SelectData):
    """A clicked preview frame becomes the reference, and the automatic choice is switched off."""
    return event.index, False


def run_handler(cache: bool) -> Callable:
    """The Reconstruct handler, or with `cache` the examples' one: the same run, its model result kept for re-use."""

    def handler(
        files,
        mode,
        fps,
        count,
        reference,
        steps,
        resolution,
        conf,
        show_cameras,
        max_points,
        mask_black,
        mask_white,
        long_clip=False,
        auto_reference=False,
        drop_edges=limits.DROP_EDGES_DEFAULT,
        frustum_scale=limits.FRUSTUM_SCALE_DEFAULT,
        request: gr.Request = None,
        progress: gr.Progress = gr.Progress(),
    ):
        """Upload -> model -> scene, splats, gallery, downloads, view list, run info and the session result."""
        require_model()
        started = time.perf_counter()
        progress(0.0, desc="Decoding the upload")
        steps, resolution = studio.whole_steps(steps), checked_resolution(resolution)
        how, long_clip = sampling(mode, fps, count), bool(long_clip)
        frames, budget, notes = decode(files, mode, fps, count, resolution, steps, long_clip)
        reference, reference_line = reference_for(frames, auto_reference, long_clip, reference)
        key = (tuple(map(str, files or ())), how, reference, steps, resolution, long_clip)
        windowed = long_clip and len(frames) > MAX_VIEWS
        estimate = None  # nothing to estimate when an example's result is re-used

        def model_pass(ordered):
            nonlocal estimate
            estimate, _ = estimate_line(studio.frame_sizes(ordered), resolution, steps, windowed)
            return (infer_windows if windowed else infer)(ordered, steps, resolution, progress)

        _, rec, reused = studio.model_result(frames, reference, model_pass, EXAMPLE_RESULTS if cache else None, key)
        progress(0.97, desc="Building the 3D scene and depth maps")
        views = [f"view {i}" for i in range(rec.num_views)]
        options = studio.scene_options(
            conf, show_cameras, views, max_points, mask_black, mask_white, drop_edges, frustum_scale
        )
        out = studio.write_run_files(rec, options, OUTPUTS.new(request.session_hash if request else None))
        took = time.perf_counter() - started
        if not reused and not windowed:
            learn_speed(rec, took)
        session = studio.SessionResult(rec, out.npz, tuple(files), how, reference, resolution, budget, options)
        plan = longclip.plan_clip(rec.num_views, MAX_VIEWS)
        windows = f"long clip: {plan.count} windows of {plan.window} frames, aligned by Sim(3)" if windowed else ""
        summary = studio.describe_run(rec, estimate, took, RUNTIME, reference_line, notes, windows, reused)
        return (
            out.glb,
            out.scene_info,
            out.gallery,
            out.legend,
            summary,
            session.downloads(out.glb),
            gr.update(choices=views, value=views),
            session,
            summary,
            str(out.splats),  # gr.File takes str paths
            out.splat_info,
        )

    handler.__name__ = handler.__qualname__ = "run_example" if cache else "reconstruct"
    return human_errors(handler)


reconstruct = run_handler(cache=False)
run_example = run_handler(cache=True)  # a clicked example: exactly what Reconstruct yields


@human_errors
def rerender(
    session,
    conf,
    show_cameras,
    views,
    max_points,
    mask_black,
    mask_white,
    drop_edges=limits.DROP_EDGES_DEFAULT,
    frustum_scale=limits.FRUSTUM_SCALE_DEFAULT,
    request: gr.Request = None,
):
    """Rebuild the GLB and the splats from the session's cached predictions (no model run)."""
    options = studio.scene_options(
        conf, show_cameras, views, max_points, mask_black, mask_white, drop_edges, frustum_scale
    )
    return rerender_with(session, options, request)


def rerender_with(session, options: studio.SceneOptions, request: gr.Request | None):
    """The scene and splats of the session's result with these display options, which become its current ones."""
    if session is None:
        raise gr.Error("Reconstruct something first; the display settings apply to its result.")
    with studio.all_or_nothing(OUTPUTS.new(request.session_hash if request else None)) as folder:
        glb, info = studio.render_scene(session.rec, options, folder)
        splats, splat_info = studio.render_splats(session.rec, options, folder)
    session.options = options
    return glb, info, session.downloads(glb), str(splats), splat_info


@human_errors
def rerender_api(
    session,
    conf: float | None = None,
    show_cameras: bool | None = None,
    views: list[str] | None = None,
    max_points: int | None = None,
    mask_black: bool | None = None,
    mask_white: bool | None = None,
    drop_edges: bool | None = None,
    frustum_scale: float | None = None,
    request: gr.Request = None,
):
    """/rerender: the session's result again; each setting left out keeps the one on show, views default to all."""
    current = session.options if session is not None else studio.SceneOptions()
    options = studio.requested_options(
        current, conf, show_cameras, views, max_points, mask_black, mask_white, drop_edges, frustum_scale
    )
    return rerender_with(session, options, request)


def rerender_shown(
    session,
    conf,
    show_cameras,
    views,
    max_points,
    mask_black,
    mask_white,
    drop_edges,
    frustum_scale,
    request: gr.Request = None,
):
    """A display control moved: re-render the current result, or leave the (empty) viewer alone before a run.
    Named parameters, not *args: Gradio passes the gr.Request only to a parameter it can see in the signature,
    and without it the files would land outside the session's folder."""
    if session is None:
        return (gr.skip(),) * 5
    display = (conf, show_cameras, views, max_points, mask_black, mask_white, drop_edges, frustum_scale)
    return rerender(session, *display, request=request)


def show_splats_on_tab(splats: str | None, event: gr.SelectData):
    """Fill the splat viewer when its tab opens. Gradio's gsplat canvas takes its size once, when it loads a file,
    so a file sent while the tab is hidden draws into 0x0 and stays blank; the first opening could also lose the
    file in a race of Gradio's Model3D (its renderer chosen, the canvas never mounted)."""
    is_open = event.value == SPLATS_TAB
    return show_splats_if_open(splats, is_open), is_open


def show_splats_if_open(splats: str | None, is_open: bool):
    """A new splat file (a run, a display change) reaches the viewer at once only while its tab is open."""
    return splats if is_open and splats else gr.skip()


@human_errors
def reload_splats(splats: str | None, is_open: bool, request: gr.Request):
    """The splat file again under a new name, for a viewer left without a canvas (SPLAT_WATCHDOG_JS asks): Gradio's
    Model3D can lose a file given to it twice in a row (renderer chosen, canvas never mounted) and ignores the same
    name, so only a new name makes it load again."""
    if not (is_open and splats):
        return gr.skip()
    with studio.all_or_nothing(OUTPUTS.new(request.session_hash if request else None)) as folder:
        return str(studio.linked_copy(splats, folder))


@human_errors
def download_for(
    session,
    label,
    conf,
    show_cameras,
    views,
    max_points,
    mask_black,
    mask_white,
    refine=False,
    drop_edges=limits.DROP_EDGES_DEFAULT,
    frustum_scale=limits.FRUSTUM_SCALE_DEFAULT,
    request: gr.Request = None,
):
    """One file in the chosen format, with the full-size photos where the export needs them."""
    options = studio.scene_options(
        conf, show_cameras, views, max_points, mask_black, mask_white, drop_edges, frustum_scale
    )
    return download_with(session, label, options, bool(refine), request)


@human_errors
def download_api(
    session,
    label: str = next(iter(studio.DOWNLOAD_FORMATS)),
    conf: float | None = None,
    show_cameras: bool | None = None,
    views: list[str] | None = None,
    max_points: int | None = None,
    mask_black: bool | None = None,
    mask_white: bool | None = None,
    refine: bool = False,
    drop_edges: bool | None = None,
    frustum_scale: float | None = None,
    request: gr.Request = None,
):
    """/download: one file; each display setting left out keeps the one on show, views default to all."""
    current = session.options if session is not None else studio.SceneOptions()
    options = studio.requested_options(
        current, conf, show_cameras, views, max_points, mask_black, mask_white, drop_edges, frustum_scale
    )
    return download_with(session, label, options, bool(refine), request)


def download_with(session, label: str, options: studio.SceneOptions, refine: bool, request: gr.Request | None):
    """The export of the session's result in format `label` (a note when the full-size photos are gone)."""
    if session is None:
        raise gr.Error("Reconstruct something first, then pick a download format.")
    if label not in studio.offered_formats():
        raise gr.Error(f"Unknown download format {label!r}; choose one of: {', '.join(studio.offered_formats())}.")
    cap = CLIP_FRAMES if session.rec.num_views > MAX_VIEWS else MAX_VIEWS  # decode the photos as the run did
    rec, note = session.with_photos(cap)
    if note:
        gr.Warning(note)
    with studio.all_or_nothing(OUTPUTS.new(request.session_hash if request else None)) as folder:
        return str(studio.download(rec, label, options, folder, refine, gr.Info))


def reusable_steps(session, files, mode, fps, count, reference, resolution, frames) -> int | None:
    """K of the session's result when Compare K sees the same views at the same resolution, else None."""
    how = sampling(mode, fps, count)
    if session is None or not session.matches(files, how, int(reference or 0), int(resolution)):
        return None
    return session.rec.steps if frames is None or len(frames) == session.rec.num_views else None


def compare_estimate(session, files, mode, fps, count, reference, sizes, resolution, steps_a, steps_b):
    """Compare K's estimate, shown before it runs: which K run, which one the current result provides."""
    if not sizes:
        return "Upload photos or a video first; the estimate appears here."
    reuse = reusable_steps(session, files, mode, fps, count, reference, resolution, None)
    pair = (int(steps_a), int(steps_b))
    return studio.compare_plan(ESTIMATOR, sizes, int(resolution), pair, reuse, DEVICE, PRECISION)[1]


@human_errors
def compare(
    session,
    files,
    mode,
    fps,
    count,
    reference,
    steps_a,
    steps_b,
    resolution,
    progress: gr.Progress = gr.Progress(),
):
    """Same views, two step counts: time of each and how much depth moved (re-using the current result)."""
    require_model()
    pair = (studio.whole_steps(steps_a), studio.whole_steps(steps_b))
    resolution = checked_resolution(resolution)
    if pair[0] == pair[1]:
        raise gr.Error("Pick two different step counts to compare.")
    progress(0.0, desc="Decoding the upload")
    frames, _, _ = decode(files, mode, fps, count, resolution, max(pair))
    if session is not None and session.matches(files, sampling(mode, fps, count), session.reference, resolution):
        reference = session.reference  # the reference the current result used (perhaps chosen automatically)
    frames = studio.with_reference_first(frames, int(reference or 0))
    reuse = reusable_steps(session, files, mode, fps, count, reference, resolution, frames)
    sizes = studio.frame_sizes(frames)
    seconds, plan = studio.compare_plan(ESTIMATOR, sizes, int(resolution), pair, reuse, DEVICE, PRECISION)
    runs, done, total = {}, 0.0, max(sum(seconds), 1e-9)
    for steps, each in zip(pair, seconds):
        if steps == reuse:
            runs[steps] = session.rec
            continue
        span = (0.95 * done / total, 0.95 * (done + each) / total)  # one bar over both runs
        runs[steps] = infer(frames, steps, int(resolution), progress, span, f"K={steps}: ")
        learn_speed(runs[steps])
        done += each
    table, gallery = studio.compare_runs(runs[pair[0]], runs[pair[1]])
    return f"{table}\n\n_Planned: {plan}_", gallery


def example_rows() -> list[list]:
    """Each example fills the inputs and runs like Reconstruct; on CPU at settings that take seconds."""
    aloe = [os.path.join(EXAMPLES, "aloe", name) for name in ("aloeL.jpg", "aloeR.jpg")]
    whale = [os.path.join(EXAMPLES, "rubberwhale", name) for name in ("rubberwhale1.png", "rubberwhale2.png")]
    box = [os.path.join(EXAMPLES, "box.mp4")]
    fast = DEVICE == "cpu"
    fps_mode, default_fps = form.SAMPLE_BY_FPS, limits.FPS_DEFAULT
    return [
        [aloe, fps_mode, default_fps, 8, 0, limits.STEPS_DEFAULT, 378 if fast else limits.RESOLUTION_DEFAULT],
        [whale, fps_mode, default_fps, 8, 0, limits.STEPS_MIN if fast else limits.STEPS_DEFAULT, 252 if fast else 504],
        [box, form.SAMPLE_BY_COUNT, default_fps, 6 if fast else 16, 0, limits.STEPS_MIN, 252 if fast else 504],
    ]


EXAMPLE_LABELS = {  # label -> the picture its thumbnail shows (a video: its first frame)
    "Aloe stereo pair": os.path.join(EXAMPLES, "aloe", "aloeL.jpg"),
    "Rubber whale pair": os.path.join(EXAMPLES, "rubberwhale", "rubberwhale1.png"),
    "Box clip (video)": os.path.join(EXAMPLES, "box.mp4"),
}


def example_thumbnail_css() -> str:
    """CSS giving each example button a small picture of what it is (inline, so no file needs serving)."""
    rules = []
    for index, path in enumerate(EXAMPLE_LABELS.values(), start=1):
        uri = studio.thumbnail_data_uri(path)
        rules.append(f"#examples .gallery-item:nth-of-type({index})::before {{ background-image: url({uri}); }}")
    return "\n".join(rules)


def remember_example(files, *settings) -> form.ExampleFill:
    """Keep what the clicked example put into the form, so that a later upload can take its place."""
    return form.remember_example(files, dict(zip(form.EXAMPLE_SETTINGS, settings)))


def replace_example(files, example, *settings):
    """An upload after an example: the user's files alone, the example's settings back to the defaults (unless
    the user changed them). Without an example before it, the upload adds to the files as Gradio does."""
    if example is None:
        return (gr.skip(),) * (len(settings) + 2)
    kept, reset = form.after_upload(files, example, dict(zip(form.EXAMPLE_SETTINGS, settings)))
    return (kept or None, *(reset[name] for name in form.EXAMPLE_SETTINGS), None)


def clear_result():
    """The inputs changed: the previous result leaves the screen (and the session) rather than pass for theirs."""
    views = gr.update(choices=[], value=[])
    return None, "", [], None, "", None, views, None, None, "", None, None, "", []


def clear_form():
    """Clear: an empty upload, every setting at its default, no result."""
    defaults = form.DEFAULTS
    inputs = [None, *(defaults[name] for name in ("mode", "fps", "count", "long_clip", "reference"))]
    inputs += [defaults[name] for name in ("auto_reference", "steps", "resolution")]
    return (*inputs, None, *clear_result())


def maybe_bool(name: str) -> gr.Dropdown:
    """A hidden API input for a true/false setting whose default is None ("as on show now")."""
    return gr.Dropdown([True, False], value=None, label=name)


def forget_session(request: gr.Request) -> None:
    """Delete a closed tab's files."""
    OUTPUTS.forget(request.session_hash if request else None)


# Phone-sized screens (390 px): whole labels, a viewer that fits, two depth views per row. Injected with the
# layout (a <style> element) so every launch path gets it.
PHONE_CSS = """
#estimate { min-height: 2.5em; }
.dvlt-hidden { display: none !important; }
#run-status { min-height: 3.2em; }
#how-to p { margin: 0; }
/* depth and Compare-K captions under their pictures, never over them */
#depth-gallery .thumbnail-item, #compare-gallery .thumbnail-item { display: flex !important; flex-direction: column; }
#depth-gallery .thumbnail-item img, #compare-gallery .thumbnail-item img {
  flex: 1 1 0; min-height: 0; height: auto !important; width: 100%; object-fit: contain;
}
#depth-gallery .caption-label, #compare-gallery .caption-label {
  position: static !important; max-width: 100% !important; white-space: normal !important; overflow: visible !important;
  border: none !important; background: none !important; padding: 4px 2px 0 2px !important;
}
/* each example shows a picture of what it is (example_thumbnail_css sets the pictures) */
#examples .gallery-item { display: inline-flex; flex-direction: column; align-items: center; gap: 4px; }
#examples .gallery-item::before {
  content: ""; display: block; width: 112px; height: 80px; border-radius: 6px;
  background-size: cover; background-position: center;
}
@media (max-width: 600px) {
  .gradio-container { padding-left: 6px !important; padding-right: 6px !important; }
  label span, [data-testid="checkbox-group"] span {
    white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  }
  #display-toggles { flex-direction: column !important; }
  #display-toggles > * { min-width: 0 !important; width: 100% !important; }
  #scene, #scene canvas { max-width: 100% !important; }
  #scene canvas { height: 60vh !important; }
  #depth-gallery .grid-wrap { grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
}
"""


# WebGL viewers (Gradio's Model3D and its splat canvas) keep drawing every frame even while their tab is hidden,
# which costs a whole CPU core in a browser without GPU acceleration. A render loop whose frame drew only on
# canvases that are hidden (or gone) is held, not re-run, until one of its canvases is shown again.
# window.dvltDraws counts the draw calls made, for the browser test.
IDLE_VIEWERS_JS = """
if (!window.dvltIdleViewers) {
window.dvltIdleViewers = true;
window.dvltDraws = 0;
let drawnOn = null;  // the canvases the running animation frame drew on
const shown = (canvas) => canvas.isConnected && canvas.offsetParent !== null && canvas.clientWidth > 0;
for (const Context of [window.WebGL2RenderingContext, window.WebGLRenderingContext]) {
  if (!Context) continue;
  for (const name of ["drawArrays", "drawElements", "drawArraysInstanced", "drawElementsInstanced", "clear"]) {
    const draw = Context.prototype[name];
    if (!draw) continue;
    Context.prototype[name] = function (...args) {
      if (drawnOn) drawnOn.add(this.canvas);
      window.dvltDraws += 1;
      return draw.apply(this, args);
    };
  }
}
const held = new Map();  // a held render loop's callback -> the canvases it draws on
const request = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (callback) => {
  const canvases = held.get(callback);
  if (canvases && !canvases.some(shown)) return 0;  // still hidden: woken by the timer below
  held.delete(callback);
  return request((time) => {
    const outer = drawnOn;
    drawnOn = new Set();
    try { callback(time); } finally {
      const drew = Array.from(drawnOn);
      drawnOn = outer;
      if (drew.length && !drew.some(shown)) held.set(callback, drew);
    }
  });
};
setInterval(() => {
  for (const [callback, canvases] of held) {
    if (canvases.some(shown)) { held.delete(callback); window.requestAnimationFrame(callback); }
    else if (!canvases.some((canvas) => canvas.isConnected)) held.delete(callback);  // its viewer is gone
  }
}, 250);
}
"""


# Gradio 6's splat canvas (Canvas3DGS) disposes its renderer when it is removed but never stops its animation
# loop, so every splat file shown leaves a loop drawing on a detached canvas. Losing the WebGL context of a canvas
# that left the page turns those loops into no-ops.
ORPHAN_CANVAS_JS = """
if (!window.dvltOrphanCanvases) {
window.dvltOrphanCanvases = true;
new MutationObserver((records) => {
  queueMicrotask(() => {
    for (const record of records) {
      for (const node of record.removedNodes) {
        if (!(node instanceof Element)) continue;
        const canvases = node.matches("canvas") ? [node] : Array.from(node.querySelectorAll("canvas"));
        for (const canvas of canvases) {
          if (canvas.isConnected || !canvas.dataset.dvltWebgl) continue;
          canvas.getContext("webgl2")?.getExtension("WEBGL_lose_context")?.loseContext();
        }
      }
    }
  });
}).observe(document.body, { childList: true, subtree: true });
const getContext = HTMLCanvasElement.prototype.getContext;
HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
  if (kind === "webgl2") this.dataset.dvltWebgl = "1";
  return getContext.call(this, kind, ...rest);
};
}
"""
# The splat tab open, a file given (its download link shown) and still no canvas after 4 s: Gradio's Model3D lost the
# file (see reload_splats), so ask the server once per file for the same splats under a new name.
SPLAT_WATCHDOG_JS = """
if (!window.dvltSplatWatchdog) {
window.dvltSplatWatchdog = { reloads: 0 };
const asked = new Set();
let waiting = null;
setInterval(() => {
  const view = document.querySelector("#splats");
  const link = view?.querySelector("a[data-testid='model3d-download-link']")?.getAttribute("href");
  if (!view || view.offsetParent === null || !link || view.querySelector("canvas")) { waiting = null; return; }
  if (waiting?.link !== link) { waiting = { link, since: Date.now() }; return; }
  if (Date.now() - waiting.since < 4000 || asked.has(link)) return;
  asked.add(link);
  window.dvltSplatWatchdog.reloads += 1;
  document.querySelector("#splats-reload")?.click();
}, 500);
}
"""
# Scroll to the result when an example is clicked: on a phone the examples sit screens below it.
SCROLL_TO_RESULT_JS = "() => document.querySelector('#results')?.scrollIntoView({block: 'start'})"
STEPS_LINE = (
    "**1.** Upload photos or a short video (or click an example below) · **2.** pick K (more steps, finer "
    "result, longer run) · **3.** Reconstruct · then explore the 3D scene and download it for COLMAP, "
    "nerfstudio, 3DGS, Blender or Rerun."
)
QUIET = {"show_progress": "hidden", "queue": False}  # instant UI-only events: no spinner, no queue slot
SPLATS_TAB = "Splats"
# Previews run one at a time in the order they were asked for (an example click changes several inputs at
# once; the preview of its final values must be the one left on screen); only the latest pending one runs.
PREVIEW_QUEUE = {"concurrency_limit": 1, "concurrency_id": "preview", "trigger_mode": "always_last"}


# ---------------------------------------------------------------------------------------- Measure & video tab
# Everything of the tab lives here (its logic in dvlt.studio_measure, dvlt.flythrough): measure between two clicked
# points, set the real scale from a known length, choose the point source and EXIF focal lengths, render a
# fly-through. Its state keeps the run's own result ("base") so every choice is applied to that, never compounded.


def measure_base_for(session, base):
    """A new run resets the tab (its views, picks and choices); the tab's own results leave it as it is."""
    if session is not None and base is not None and str(session.npz) == base[1]:
        return (gr.skip(),) * 10
    views = [] if session is None else [f"view {i}" for i in range(session.rec.num_views)]
    image = None if session is None else studio_measure.view_image(session.rec, 0)
    text = "Reconstruct something first." if session is None else studio_measure.measurement(session.rec, [])
    return (
        None if session is None else (session, str(session.npz)),
        [],
        gr.update(choices=views, value=views[0] if views else None),
        image,
        text,
        next(iter(studio_measure.POINT_CHOICES)),
        False,
        None,
        None,
        "",
    )


def view_number(view: str | None) -> int:
    """'view 3' -> 3."""
    if not view:
        raise gr.Error("Reconstruct something first, then pick a view to measure in.")
    return int(str(view).split()[-1])


@human_errors
def show_measure_view(session, view, picks):
    """The chosen view's photo with the picks made in it."""
    if session is None or not view:
        return None
    return studio_measure.marked_view(session.rec, view_number(view), picks or [])


def draw_measurement(rec, picks, options, glb) -> None:
    """Rewrite the scene GLB with the A-B segment drawn in it, when both points are picked."""
    segment = studio_measure.measured_segment(rec, picks or [])
    if segment is not None:
        write_glb(rec, glb, options, segment)


@human_errors
def pick_point(
    session,
    view,
    picks,
    conf,
    show_cameras,
    views,
    max_points,
    mask_black,
    mask_white,
    drop_edges,
    frustum_scale,
    event: gr.SelectData,
    request: gr.Request = None,
):
    """A click on the photo: A, then B (a third click starts again); the distance, and the segment drawn in the
    3D scene, once both are set."""
    if session is None:
        raise gr.Error("Reconstruct something first, then click the photo to measure.")
    number = view_number(view)
    picks = studio_measure.add_pick(picks or [], studio_measure.clicked_pick(session.rec, number, event.index))
    picked_view, *xy = picks[-1]
    session.rec.point_at(picked_view, xy)  # a click without depth is refused before it is kept
    scene = gr.skip()
    if len(picks) == 2:
        with studio.all_or_nothing(OUTPUTS.new(request.session_hash if request else None)) as folder:
            scene = str(folder / "scene-measured.glb")
            draw_measurement(
                session.rec,
                picks,
                studio.scene_options(
                    conf, show_cameras, views, max_points, mask_black, mask_white, drop_edges, frustum_scale
                ),
                scene,
            )
    marked = studio_measure.marked_view(session.rec, number, picks)
    return picks, marked, studio_measure.measurement(session.rec, picks), scene


@human_errors
def apply_scene_choices(
    current,
    base,
    picks,
    metres,
    points,
    exif,
    conf,
    show_cameras,
    views,
    max_points,
    mask_black,
    mask_white,
    drop_edges,
    frustum_scale,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """The run's result with the chosen point source, real scale and EXIF focal lengths: scene, splats,
    downloads and the session all follow."""
    if current is None:
        raise gr.Error("Reconstruct something first; these choices apply to its result.")
    # the run's own result: the tab's base, unless a run has replaced the result since (or the tab never saw it:
    # API clients trigger no change events)
    session = base[0] if base is not None and str(current.npz) == base[1] else current
    progress(0.1, desc="Applying the choices")
    rec = session.rec
    if exif:
        cap = CLIP_FRAMES if rec.num_views > MAX_VIEWS else MAX_VIEWS
        rec, note = session.with_photos(cap)  # the photos, with their EXIF tags
        if note:
            gr.Warning(note)
    known = studio_measure.known_from(picks or [], metres)
    choice = studio_measure.Adjustments(studio_measure.POINT_CHOICES.get(points, "depth"), known, bool(exif))
    rec, comparison = studio_measure.adjusted(rec, choice)
    rec.originals = None
    options = studio.scene_options(
        conf, show_cameras, views, max_points, mask_black, mask_white, drop_edges, frustum_scale
    )
    progress(0.5, desc="Building the 3D scene")
    with studio.all_or_nothing(OUTPUTS.new(request.session_hash if request else None)) as folder:
        glb, info = studio.render_scene(rec, options, folder)
        draw_measurement(rec, picks, options, glb)
        splats, splat_info = studio.render_splats(rec, options, folder)
        npz = rec.to_npz(folder / "dvlt-predictions.npz")
    adjusted_session = dataclasses.replace(session, rec=rec, npz=npz)
    if rec.scale_note:
        info += f" · {rec.scale_note}"
    return (
        glb,
        info,
        adjusted_session.downloads(glb),
        str(splats),
        splat_info,
        adjusted_session,
        (session, str(npz)),
        studio_measure.measurement(rec, picks or []),
        studio_measure.comparison_markdown(comparison),
    )


@human_errors
def make_flythrough(
    session,
    conf,
    show_cameras,
    views,
    max_points,
    mask_black,
    mask_white,
    drop_edges,
    frustum_scale,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    """flythrough.mp4 of the current result (8 s, 640 px), rendered on the CPU with progress."""
    if session is None:
        raise gr.Error("Reconstruct something first; the fly-through shows its points.")
    with studio.all_or_nothing(OUTPUTS.new(request.session_hash if request else None)) as folder:
        path = flythrough.write_flythrough(
            session.rec,
            folder / flythrough.VIDEO_NAME,
            studio.scene_options(
                conf, show_cameras, views, max_points, mask_black, mask_white, drop_edges, frustum_scale
            ),
            lambda fraction, message: progress(fraction, desc=message),
        )
    return str(path)


def build_measure_and_video(tabs, rec_state, display: list, shown: list) -> None:
    """The Measure & video tab, added to `tabs`, and its events. `display`: the scene's display controls in
    studio.scene_options' order; `shown`: scene, scene info, downloads, splats, splat info."""
    base_state = gr.State(None)  # (the run's SessionResult, npz path of the result the tab shows)
    picks_state = gr.State([])
    with tabs:
        with gr.Tab("Measure & video", elem_id="measure-tab"):
            gr.Markdown(
                "Click a point (A) and another (B), in one view or two: their distance in 3D is shown. Type the "
                "real length of A–B to make every display and download metric."
            )
            with gr.Row():
                with gr.Column(scale=3):
                    view = gr.Dropdown([], label="View", elem_id="measure-view")
                    photo = gr.Image(
                        label="Click to pick A, then B", interactive=False, type="pil", elem_id="measure-photo"
                    )
                with gr.Column(scale=2):
                    text = gr.Markdown("Reconstruct something first.", elem_id="measure-text")
                    metres = gr.Number(None, label="Real length of A–B (metres)", minimum=0, elem_id="known-metres")
                    points = gr.Radio(
                        list(studio_measure.POINT_CHOICES),
                        value=next(iter(studio_measure.POINT_CHOICES)),
                        label="Points from",
                        info="depth: sharper surfaces when the cameras fit well; direct: no camera fit in between",
                        elem_id="points-source",
                    )
                    exif = gr.Checkbox(
                        False, label="Use the photos' EXIF focal lengths (poses re-fitted)", elem_id="use-exif"
                    )
                    apply = gr.Button("Apply to the scene and downloads", elem_id="apply-scene-choices")
                    exif_table = gr.Markdown(elem_id="exif-table")
            video_button = gr.Button("Render fly-through video", elem_id="make-flythrough")
            video = gr.Video(label="Fly-through (8 s, 640 px)", elem_id="flythrough")
    rec_state.change(
        measure_base_for,
        [rec_state, base_state],
        [base_state, picks_state, view, photo, text, points, exif, metres, video, exif_table],
        api_visibility="private",
        show_progress="hidden",
    )
    view.change(
        show_measure_view, [rec_state, view, picks_state], photo, api_visibility="private", show_progress="hidden"
    )
    photo.select(
        pick_point,
        [rec_state, view, picks_state, *display],
        [picks_state, photo, text, shown[0]],
        api_visibility="private",
    )
    apply.click(
        apply_scene_choices,
        [rec_state, base_state, picks_state, metres, points, exif, *display],
        [*shown, rec_state, base_state, text, exif_table],
        api_name="apply_scene_choices",
        concurrency_limit=1,
        concurrency_id="model",
    )
    video_button.click(
        make_flythrough,
        [rec_state, *display],
        video,
        api_name="flythrough",
        concurrency_limit=1,
        concurrency_id="model",
    )


def build_demo() -> gr.Blocks:
    # Gradio's cache (uploads; copies of outputs when DVLT_OUTPUT_DIR is elsewhere) is swept of files older than
    # an hour every 15 min; our own outputs go sooner (OutputFolders' timer, SESSION_IDLE_S).
    with gr.Blocks(title="DVLT Studio", delete_cache=(900, 3600)) as demo:
        gr.Markdown(
            "# DVLT Studio\nPhotos or a short video in, cameras + depth + a 3D point cloud out, with NVIDIA's "
            "**Déjà View Looping Transformer** ([paper](https://arxiv.org/abs/2605.30215), "
            "[model](https://huggingface.co/nvidia/dvlt)). "
            "The first view (or the one you pick) defines the world frame."
        )
        gr.Markdown(STEPS_LINE, elem_id="how-to")
        if LOAD_ERROR:
            gr.Markdown(f"### ⚠️ Model weights not loaded\n{LOAD_ERROR}", elem_id="load-error-banner")
        if OUTPUTS.error:
            gr.Markdown(f"### ⚠️ Output folder not writable\n{OUTPUTS.error}", elem_id="output-error-banner")
        gr.HTML(
            f"<style>{PHONE_CSS}{example_thumbnail_css()}</style>",
            elem_id="studio-style",
            padding=False,
            js_on_load=ORPHAN_CANVAS_JS + IDLE_VIEWERS_JS + SPLAT_WATCHDOG_JS,
        )
        rec_state = gr.State(None)  # this session's SessionResult, for re-rendering and downloads
        sizes_state = gr.State([])  # (height, width) of the previewed frames, for estimates
        example_state = gr.State(None)  # the form.ExampleFill of the example last clicked (None after an upload)
        with gr.Row():
            with gr.Column(scale=4, min_width=320):
                files = gr.File(
                    label="1. Photos and/or one video",
                    file_count="multiple",
                    file_types=["image", "video", ".heic", ".heif"],
                    height=150,
                    elem_id="uploads",
                )
                steps = gr.Slider(
                    limits.STEPS_MIN,
                    limits.STEPS_MAX,
                    value=form.DEFAULTS["steps"],
                    step=1,
                    label="2. Steps K",
                    info=K_HELP,
                    elem_id="steps",
                )
                resolution = gr.Radio(
                    list(limits.RESOLUTIONS),
                    value=form.DEFAULTS["resolution"],
                    label="Resolution (longest side, px)",
                    info="504 is what DVLT was trained at; lower is faster.",
                    elem_id="resolution",
                )
                estimate = gr.Markdown(RUNTIME, elem_id="estimate")  # ≈ X s before a run, took Y s after
                with gr.Row(elem_id="run-row"):
                    run = gr.Button("3. Reconstruct", variant="primary", scale=3, elem_id="reconstruct")
                    clear = gr.Button("Clear", variant="secondary", scale=1, elem_id="clear")
                run_status = gr.Markdown("", elem_id="run-status")  # the run's progress and errors, under no text
                views_info = gr.Markdown("Upload photos or a video to start.", elem_id="views-info")
                preview_gallery = gr.Gallery(
                    label="Views to use (click one to make it the reference)",
                    columns=4,
                    height=220,
                    allow_preview=False,
                    elem_id="preview",
                )
                reference = gr.Number(
                    form.DEFAULTS["reference"],
                    precision=0,
                    minimum=0,
                    label="Reference view (world frame): number of the view, or click one above",
                    elem_id="reference",
                )
                auto_reference = gr.Checkbox(
                    form.DEFAULTS["auto_reference"],
                    label="Pick the reference automatically (the view that shares the most with the others)",
                    elem_id="auto-reference",
                )
                with gr.Accordion("Video sampling", open=False):
                    mode = gr.Radio(
                        [form.SAMPLE_BY_FPS, form.SAMPLE_BY_COUNT], value=form.DEFAULTS["mode"], label="Sample by"
                    )
                    fps = gr.Slider(
                        0.5, limits.FPS_MAX, value=form.DEFAULTS["fps"], step=0.5, label="Frames per second"
                    )
                    count = gr.Slider(
                        2, MAX_VIEWS, value=form.DEFAULTS["count"], step=1, label="Number of evenly spaced frames"
                    )
                    long_clip = gr.Checkbox(
                        form.DEFAULTS["long_clip"],
                        label=f"Long clip: keep up to {CLIP_FRAMES} frames and reconstruct them in overlapping "
                        f"windows of {MAX_VIEWS} instead of thinning to {MAX_VIEWS}",
                        elem_id="long-clip",
                    )
                gr.Markdown(LIMITS_LINE)
            with gr.Column(scale=7, elem_id="results"):
                with gr.Tabs(overflow_behavior="wrap", elem_id="result-tabs") as tabs:  # every tab label shown
                    with gr.Tab("3D scene"):
                        with gr.Row(equal_height=False):
                            with gr.Column(scale=3, min_width=300):
                                scene = gr.Model3D(
                                    label="Point cloud and cameras (drag to orbit)",
                                    height=480,
                                    clear_color=(0.96, 0.96, 0.96, 1.0),
                                    elem_id="scene",
                                )
                                scene_info = gr.Markdown(elem_id="scene-info")
                                run_info = gr.Markdown(elem_id="run-info")
                            with gr.Column(scale=2, min_width=240, elem_id="display"):
                                gr.Markdown("**Display** (re-renders instantly, no new model run)")
                                conf = gr.Slider(
                                    0,
                                    95,
                                    value=limits.CONF_PERCENTILE_DEFAULT,
                                    step=1,
                                    label="Hide the least confident % of points",
                                    elem_id="conf",
                                )
                                max_points = gr.Slider(
                                    10_000,
                                    limits.POINTS_MAX,
                                    value=limits.POINTS_DEFAULT,
                                    step=10_000,
                                    label="Point budget",
                                )
                                with gr.Column(elem_id="display-toggles"):
                                    show_cameras = gr.Checkbox(True, label="Show cameras")
                                    mask_black = gr.Checkbox(False, label="Hide black background")
                                    mask_white = gr.Checkbox(False, label="Hide white background")
                                    drop_edges = gr.Checkbox(
                                        limits.DROP_EDGES_DEFAULT,
                                        label="Hide flying pixels at depth edges",
                                        elem_id="drop-edges",
                                    )
                                frustum_scale = gr.Slider(
                                    0,
                                    limits.FRUSTUM_SCALE_MAX,
                                    value=limits.FRUSTUM_SCALE_DEFAULT,
                                    step=0.01,
                                    label="Camera marker size (fraction of the scene; 0 hides them)",
                                    elem_id="frustum-scale",
                                )
                                views = gr.CheckboxGroup([], label="Views to include", elem_id="views")
                        downloads = gr.File(
                            label="4. Downloads: GLB scene and raw predictions (.npz)",
                            file_count="multiple",
                            elem_id="downloads",
                        )
                        with gr.Row():
                            fmt = gr.Dropdown(
                                studio.offered_formats(),
                                value=studio.offered_formats()[0],
                                label="Download for…",
                                elem_id="download-format",
                            )
                            refine = gr.Checkbox(
                                False,
                                label="Refine cameras with bundle adjustment",
                                visible=studio.can_refine(),  # never offered where pycolmap is missing
                                elem_id="refine",
                            )
                            fmt_button = gr.Button("Prepare download")
                        fmt_file = gr.File(label="Export", elem_id="export-file")
                    with gr.Tab(SPLATS_TAB):
                        # The run and the display controls write the splat PLY to the hidden `splats` file (the
                        # API's output); the viewer gets it only while its tab is open (show_splats_on_tab).
                        splats = gr.File(visible=False)
                        splat_view = gr.Model3D(
                            label="Gaussian splats (same filters as the point cloud; drag to orbit)",
                            height=520,
                            clear_color=(0.96, 0.96, 0.96, 1.0),
                            elem_id="splats",
                        )
                        splat_info = gr.Markdown(elem_id="splat-info")
                        splats_reload = gr.Button("Reload splats", elem_id="splats-reload", elem_classes="dvlt-hidden")
                    with gr.Tab("Depth & confidence"):
                        legend = gr.Image(
                            label="Depth colour scale",
                            interactive=False,
                            height=110,
                            show_label=False,
                            buttons=[],
                            elem_id="legend",
                        )
                        depth_gallery = gr.Gallery(
                            label="Per view, top to bottom: input, depth, confidence (click to enlarge)",
                            columns=4,
                            height="auto",
                            object_fit="contain",
                            allow_preview=True,
                            elem_id="depth-gallery",
                        )
                    with gr.Tab("Compare K"):
                        gr.Markdown(
                            "Run the same views with two step counts and see what more compute buys: "
                            "the time of each and how far each view's depth moved."
                        )
                        with gr.Row():
                            steps_a = gr.Slider(
                                limits.STEPS_MIN, limits.STEPS_MAX, value=limits.STEPS_MIN, step=1, label="K (first)"
                            )
                            steps_b = gr.Slider(
                                limits.STEPS_MIN, limits.STEPS_MAX, value=limits.STEPS_MAX, step=1, label="K (second)"
                            )
                        compare_plan = gr.Markdown(
                            "Upload photos or a video first; the estimate appears here.", elem_id="compare-estimate"
                        )
                        compare_button = gr.Button("Compare", elem_id="compare")
                        compare_table = gr.Markdown(elem_id="compare-table")
                        compare_gallery = gr.Gallery(
                            label="Depth change per view", columns=4, height="auto", elem_id="compare-gallery"
                        )

        sampling_inputs = [files, mode, fps, count]
        display = [conf, show_cameras, views, max_points, mask_black, mask_white]
        looks = [drop_edges, frustum_scale]  # display settings added after the API's first version
        preview_inputs = [*sampling_inputs, resolution, steps, long_clip, auto_reference, reference, example_state]
        for trigger in (files.change, mode.change, fps.release, count.release, long_clip.change, auto_reference.input):
            trigger(
                preview,
                preview_inputs,
                [preview_gallery, views_info, reference, estimate, sizes_state],
                api_visibility="private",
                **PREVIEW_QUEUE,
            )
        for trigger in (steps.release, resolution.change):
            # re-preview: on CPU a video's frame count depends on the time K and resolution take
            trigger(
                preview,
                preview_inputs,
                [preview_gallery, views_info, reference, estimate, sizes_state],
                api_visibility="private",
                **PREVIEW_QUEUE,
            )
        preview_gallery.select(pick_reference, None, [reference, auto_reference], api_visibility="private").then(
            preview,
            preview_inputs,
            [preview_gallery, views_info, reference, estimate, sizes_state],
            api_visibility="private",
            **PREVIEW_QUEUE,
        )
        run_inputs = [
            *sampling_inputs,
            reference,
            steps,
            resolution,
            conf,
            show_cameras,
            max_points,
            mask_black,
            mask_white,
            long_clip,
            auto_reference,
            *looks,
        ]
        run_outputs = [scene, scene_info, depth_gallery, legend, run_info, downloads, views, rec_state, estimate]
        run_outputs += [splats, splat_info]
        run.click(
            reconstruct,
            run_inputs,
            run_outputs,
            api_name="reconstruct",
            concurrency_limit=1,
            concurrency_id="model",
            show_progress_on=[run_status, scene],  # under the button pressed (no text under it) and on the result
        )
        splats_open = gr.State(False)
        tabs.select(show_splats_on_tab, splats, [splat_view, splats_open], api_visibility="private", **QUIET)
        splats.change(show_splats_if_open, [splats, splats_open], splat_view, api_visibility="private", **QUIET)
        splats_reload.click(reload_splats, [splats, splats_open], splat_view, api_visibility="private", **QUIET)
        shown = [scene, scene_info, downloads, splats, splat_info]
        # (the UI's own events are private and named apart from the API's /rerender)
        conf.release(rerender, [rec_state, *display, *looks], shown, api_name="display", api_visibility="private")
        toggles = (show_cameras.input, mask_black.input, mask_white.input, views.input, drop_edges.input)
        for trigger in (max_points.release, frustum_scale.release, *toggles):
            trigger(rerender_shown, [rec_state, *display, *looks], shown, api_visibility="private")
        fmt_button.click(download_for, [rec_state, fmt, *display, refine, *looks], fmt_file, api_visibility="private")
        plan_inputs = [rec_state, *sampling_inputs, reference, sizes_state, resolution, steps_a, steps_b]
        for trigger in (steps_a.release, steps_b.release, sizes_state.change, rec_state.change, resolution.change):
            trigger(compare_estimate, plan_inputs, compare_plan, api_visibility="private", show_progress="hidden")
        compare_button.click(
            compare,
            [rec_state, *sampling_inputs, reference, steps_a, steps_b, resolution],
            [compare_table, compare_gallery],
            api_name="compare_k",
            concurrency_limit=1,
            concurrency_id="model",
            show_progress_on=[compare_table],
        )
        examples = gr.Examples(
            examples=example_rows(),
            example_labels=list(EXAMPLE_LABELS),
            inputs=[*sampling_inputs, reference, steps, resolution],
            cache_examples=False,
            elem_id="examples",
        )
        # A click fills the inputs, then runs exactly like Reconstruct (model result kept after the first run),
        # with its progress on the result, which the page scrolls to (on a phone the examples are screens below).
        examples.dataset.click(None, None, None, js=SCROLL_TO_RESULT_JS, api_visibility="private")
        examples.load_input_event.then(
            run_example,
            run_inputs,
            run_outputs,
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="model",
            show_progress_on=[scene, run_status],
        )
        example_settings = [mode, fps, count, reference, steps, resolution]  # form.EXAMPLE_SETTINGS, in order
        examples.load_input_event.then(
            remember_example, [files, *example_settings], example_state, api_visibility="private", **QUIET
        )
        # A new upload replaces an example's files and settings; any change by the user clears the old result.
        results = [scene, scene_info, depth_gallery, legend, run_info, downloads, views, rec_state, splats]
        results += [splat_info, splat_view, fmt_file, compare_table, compare_gallery]
        files.upload(
            replace_example,
            [files, example_state, *example_settings],
            [files, *example_settings, example_state],
            api_visibility="private",
            **QUIET,
        )
        for trigger in (files.upload, files.clear, files.delete):
            trigger(clear_result, None, results, api_visibility="private", **QUIET)
        form_inputs = [files, mode, fps, count, long_clip, reference, auto_reference, steps, resolution]
        clear.click(clear_form, None, [*form_inputs, example_state, *results], api_visibility="private", **QUIET)
        # The API's /rerender and /download: settings left out keep the ones on show (views: all). Their inputs
        # are hidden components without a value, so each parameter defaults to None in gradio_client.
        with gr.Group(visible=False):
            api_display = [
                gr.Number(None, label="conf"),
                maybe_bool("show_cameras"),
                gr.Dropdown([], value=None, multiselect=True, allow_custom_value=True, label="views"),
                gr.Number(None, label="max_points", precision=0),
                maybe_bool("mask_black"),
                maybe_bool("mask_white"),
            ]
            api_looks = [maybe_bool("drop_edges"), gr.Number(None, label="frustum_scale")]
            api_format = gr.Dropdown(studio.offered_formats(), value=studio.offered_formats()[0], label="label")
            api_refine = gr.Checkbox(False, label="refine")
            api_rerender, api_download = gr.Button(), gr.Button()
        api_rerender.click(rerender_api, [rec_state, *api_display, *api_looks], shown, api_name="rerender")
        api_download.click(
            download_api, [rec_state, api_format, *api_display, api_refine, *api_looks], fmt_file, api_name="download"
        )
        build_measure_and_video(tabs, rec_state, [*display, *looks], shown)
        demo.unload(forget_session)
    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


demo = build_demo()


def launch_options() -> dict[str, Any]:
    """launch() options: uploads bounded, outputs served from DVLT_OUTPUT_DIR wherever it is, and 404 for every
    file URL Gradio refuses (a removed session's links too); a new dict each time, as Gradio adds to app_kwargs."""
    return {
        "max_file_size": f"{limits.MAX_UPLOAD_MB}mb",
        "allowed_paths": [str(OUTPUTS.root)],
        "app_kwargs": {"middleware": file_route_middleware()},
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), footer_links=["api", "gradio"], **launch_options()
    )

"""DVLT Studio: the Gradio Space. Upload photos or a clip, pick K, explore and download the 3D result.

Only UI wiring lives here; the work is done by functions in `dvlt.studio`
(tested without the UI). Run locally with `python app.py`.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any

import gradio as gr
import spaces  # noqa: I001  (ZeroGPU: must be imported before anything touches CUDA)
import torch

from dvlt import limits, longclip, studio
from dvlt.budget import return_memory
from dvlt.errors import DVLTError, InputError
from dvlt.estimate import Estimator
from dvlt.pipeline import Reconstruction
from dvlt.runtime import cpu_bf16_is_faster

log = logging.getLogger("dvlt.app")
ROOT = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(ROOT, "examples")
CHECKPOINT = os.environ.get("DVLT_CHECKPOINT", "nvidia/dvlt")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

MODEL, LOAD_ERROR = studio.load_model(CHECKPOINT, device=DEVICE)
# bf16 on GPUs; on CPUs when it measures faster. (Never query CUDA here: ZeroGPU forbids it outside @spaces.GPU.)
PRECISION = "bf16" if DEVICE == "cuda" or cpu_bf16_is_faster() else "fp32"
MAX_VIEWS = limits.max_views(DEVICE)
CLIP_FRAMES = limits.max_clip_frames(DEVICE)  # long-clip mode: windows of MAX_VIEWS
ESTIMATOR = Estimator()


UPLOAD_CACHE = gr.utils.get_upload_folder()
# By default outputs live inside Gradio's cache, so each file is written once (Gradio serves it in place). With
# DVLT_OUTPUT_DIR elsewhere Gradio serves a copy (shared by content between sessions), removed by delete_cache.
OUTPUT_DIR = os.environ.get("DVLT_OUTPUT_DIR")
OUTPUTS = studio.OutputFolders(
    OUTPUT_DIR or os.path.join(UPLOAD_CACHE, "dvlt-studio"),
    idle_s=float(os.environ.get("DVLT_SESSION_IDLE_S", limits.SESSION_IDLE_S)),
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
    if MODEL is None:
        raise gr.Error(f"The model weights are not loaded, so nothing can be reconstructed. {LOAD_ERROR}")


def gpu_seconds(frames: list, steps: int, resolution: int, *_: Any, **__: Any) -> int:
    """ZeroGPU duration request from the view count, size and K (bounded)."""
    estimate, _ = studio.estimate_for(
        ESTIMATOR, studio.frame_sizes(frames), int(resolution), int(steps), "cuda", "bf16"
    )
    return int(min(180, max(20, 3 * estimate.seconds + 10)))


@spaces.GPU(duration=gpu_seconds)
def infer(frames: list, steps: int, resolution: int, progress: gr.Progress = gr.Progress()) -> Reconstruction:
    """The only function that needs the GPU: the model pass and the camera fit."""
    return studio.run_model(
        MODEL, frames, steps, resolution, lambda fraction, message: progress(fraction, desc=message)
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


def estimate_line(sizes, resolution, steps, long_clip=False) -> str:
    """The estimate shown before a run: one pass, or per window and in total for a long clip."""
    if long_clip and len(sizes) > MAX_VIEWS:
        return longclip.estimate_clip(ESTIMATOR, sizes, int(resolution), int(steps), DEVICE, PRECISION, MAX_VIEWS)[1]
    return studio.estimate_for(ESTIMATOR, sizes, int(resolution), int(steps), DEVICE, PRECISION)[1]


def learn_speed(rec: Reconstruction) -> None:
    """Feed the measured model time into the estimator (in the main process, not ZeroGPU's worker)."""
    height, width = rec.size
    ESTIMATOR.observe(rec.num_views, height, width, rec.steps, DEVICE, PRECISION, rec.seconds["model"])


def sampling(mode: str, fps: float, count: float) -> studio.Sampling:
    if float(count) != int(count):
        raise InputError(f"The number of frames must be a whole number, got {count}.")
    return studio.Sampling("count" if mode == "number of frames" else "fps", float(fps), int(count))


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
def preview(files, mode, fps, count, resolution, steps, long_clip=False):
    """Decode the upload, show the frames that will be used and the time/memory estimate."""
    if not files:
        return [], "Upload photos or a video to start.", gr.update(value=0), "", []
    steps = studio.whole_steps(steps)
    frames = studio.decode_uploads(
        files, sampling(mode, fps, count), CLIP_FRAMES if long_clip else MAX_VIEWS, min(limits.RESOLUTIONS)
    )
    show_notes(frames)
    if studio.mixed_sizes(frames):
        gr.Warning("Views differ in size or orientation; they will be centre-padded to one canvas.")
    sizes = studio.frame_sizes(frames)
    estimate = estimate_line(sizes, resolution, steps, long_clip)
    items = [(f, f"{i}: {f.info.get('dvlt_name', '')}") for i, f in enumerate(frames)]
    return (
        items,
        studio.describe_frames(frames, int(resolution)),
        gr.update(value=0, maximum=len(frames) - 1),
        estimate,
        sizes,
    )


def refresh_estimate(sizes, resolution, steps, long_clip=False):
    """New K or resolution: re-estimate from the cached frame sizes (no decoding)."""
    return estimate_line(sizes, resolution, steps, long_clip) if sizes else ""


def pick_reference(event: gr.SelectData):
    return event.index


@human_errors
def reconstruct(
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
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
):
    """Upload -> model -> scene, gallery and downloads; the result is cached in the session for re-rendering."""
    require_model()
    progress(0.0, desc="Decoding the upload")
    how, reference = sampling(mode, fps, count), int(reference or 0)
    steps, resolution = studio.whole_steps(steps), checked_resolution(resolution)
    frames = studio.decode_uploads(files, how, CLIP_FRAMES if long_clip else MAX_VIEWS, resolution)
    frames = studio.with_reference_first(frames, reference)
    notes = show_notes(frames)
    windowed = bool(long_clip) and len(frames) > MAX_VIEWS
    estimate = estimate_line(studio.frame_sizes(frames), resolution, steps, windowed)
    rec = (infer_windows if windowed else infer)(frames, int(steps), int(resolution), progress)
    if not windowed:
        learn_speed(rec)
    progress(0.97, desc="Building the 3D scene and depth maps")
    views = [f"view {i}" for i in range(rec.num_views)]
    options = studio.scene_options(conf, show_cameras, views, max_points, mask_black, mask_white)
    with studio.all_or_nothing(OUTPUTS.new(request.session_hash if request else None)) as folder:
        glb, info = studio.render_scene(rec, options, folder)
        npz = rec.to_npz(folder / "dvlt-predictions.npz")
    items, legend = studio.depth_panels(rec)
    rec.originals = None  # keep the session cache small; downloads read the photos again
    session = studio.SessionResult(rec, npz, tuple(files), how, reference, resolution)
    return (
        glb,
        info,
        items,
        legend,
        studio.run_summary(rec, estimate) + notes,
        session.downloads(glb),
        gr.update(choices=views, value=views),
        session,
    )


@human_errors
def rerender(session, conf, show_cameras, views, max_points, mask_black, mask_white, request: gr.Request):
    """Rebuild the GLB from the session's cached predictions (no model run)."""
    if session is None:
        raise gr.Error("Reconstruct something first; the display settings apply to its result.")
    options = studio.scene_options(conf, show_cameras, views, max_points, mask_black, mask_white)
    with studio.all_or_nothing(OUTPUTS.new(request.session_hash if request else None)) as folder:
        glb, info = studio.render_scene(session.rec, options, folder)
    return glb, info, session.downloads(glb)


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
    request: gr.Request = None,
):
    if session is None:
        raise gr.Error("Reconstruct something first, then pick a download format.")
    options = studio.scene_options(conf, show_cameras, views, max_points, mask_black, mask_white)
    cap = CLIP_FRAMES if session.rec.num_views > MAX_VIEWS else MAX_VIEWS  # decode the photos as the run did
    rec, note = session.with_photos(cap)
    if note:
        gr.Warning(note)
    with studio.all_or_nothing(OUTPUTS.new(request.session_hash if request else None)) as folder:
        return str(studio.download(rec, label, options, folder, bool(refine), gr.Info))


@human_errors
def compare(files, mode, fps, count, reference, steps_a, steps_b, resolution, progress: gr.Progress = gr.Progress()):
    """Same views, two step counts: time of each and how much depth moved."""
    require_model()
    steps_a, steps_b, resolution = (
        studio.whole_steps(steps_a),
        studio.whole_steps(steps_b),
        checked_resolution(resolution),
    )
    if steps_a == steps_b:
        raise gr.Error("Pick two different step counts to compare.")
    frames = studio.with_reference_first(
        studio.decode_uploads(files, sampling(mode, fps, count), MAX_VIEWS, resolution), int(reference or 0)
    )
    show_notes(frames)
    first, second = (infer(frames, int(k), int(resolution), progress) for k in (steps_a, steps_b))
    return studio.compare_runs(first, second)


def example_result(files):
    """What a clicked example shows (cached lazily, defaults everywhere)."""
    glb, info, items, legend, summary, *_ = reconstruct(
        files,
        "frames per second",
        limits.FPS_DEFAULT,
        8,
        0,
        limits.STEPS_DEFAULT,
        limits.RESOLUTION_DEFAULT,
        limits.CONF_PERCENTILE_DEFAULT,
        True,
        limits.POINTS_DEFAULT,
        False,
        False,
        False,
        None,
    )
    return glb, info, items, legend, summary


def forget_session(request: gr.Request) -> None:
    """Delete a closed tab's files."""
    OUTPUTS.forget(request.session_hash if request else None)


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
        if LOAD_ERROR:
            gr.Markdown(f"### ⚠️ Model weights not loaded\n{LOAD_ERROR}", elem_id="load-error-banner")
        rec_state = gr.State(None)  # this session's SessionResult, for re-rendering and downloads
        sizes_state = gr.State([])  # (height, width) of the previewed frames, for estimates
        with gr.Row():
            with gr.Column(scale=4):
                files = gr.File(
                    label="Photos and/or one video",
                    file_count="multiple",
                    file_types=["image", "video", ".heic", ".heif"],
                    elem_id="uploads",
                )
                with gr.Accordion("Video sampling", open=False):
                    mode = gr.Radio(
                        ["frames per second", "number of frames"], value="frames per second", label="Sample by"
                    )
                    fps = gr.Slider(0.5, limits.FPS_MAX, value=limits.FPS_DEFAULT, step=0.5, label="Frames per second")
                    count = gr.Slider(2, MAX_VIEWS, value=8, step=1, label="Number of evenly spaced frames")
                    long_clip = gr.Checkbox(
                        False,
                        label=f"Long clip: keep up to {CLIP_FRAMES} frames and reconstruct them in overlapping "
                        f"windows of {MAX_VIEWS} instead of thinning to {MAX_VIEWS}",
                        elem_id="long-clip",
                    )
                views_info = gr.Markdown("Upload photos or a video to start.")
                preview_gallery = gr.Gallery(
                    label="Views to use (click one to make it the reference)",
                    columns=4,
                    height=220,
                    allow_preview=False,
                    elem_id="preview",
                )
                reference = gr.Number(
                    0,
                    precision=0,
                    minimum=0,
                    label="Reference view (world frame): number of the view, or click one above",
                    elem_id="reference",
                )
                steps = gr.Slider(
                    limits.STEPS_MIN,
                    limits.STEPS_MAX,
                    value=limits.STEPS_DEFAULT,
                    step=1,
                    label="Steps K",
                    info=K_HELP,
                    elem_id="steps",
                )
                resolution = gr.Radio(
                    list(limits.RESOLUTIONS),
                    value=limits.RESOLUTION_DEFAULT,
                    label="Resolution (longest side, px)",
                    info="504 is what DVLT was trained at; lower is faster.",
                )
                estimate = gr.Markdown(elem_id="estimate")
                run = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct")
                gr.Markdown(LIMITS_LINE)
            with gr.Column(scale=6):
                with gr.Tabs():
                    with gr.Tab("3D scene"):
                        scene = gr.Model3D(
                            label="Point cloud and cameras (drag to orbit)",
                            height=520,
                            clear_color=(0.96, 0.96, 0.96, 1.0),
                            elem_id="scene",
                        )
                        scene_info = gr.Markdown(elem_id="scene-info")
                        run_info = gr.Markdown(elem_id="run-info")
                        with gr.Accordion("Display (re-renders instantly, no new model run)", open=True):
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
                            with gr.Row():
                                show_cameras = gr.Checkbox(True, label="Show cameras")
                                mask_black = gr.Checkbox(False, label="Hide black background")
                                mask_white = gr.Checkbox(False, label="Hide white background")
                            views = gr.CheckboxGroup([], label="Views to include")
                        downloads = gr.File(
                            label="Downloads: GLB scene and raw predictions (.npz)",
                            file_count="multiple",
                            elem_id="downloads",
                        )
                        with gr.Row():
                            fmt = gr.Dropdown(
                                list(studio.DOWNLOAD_FORMATS),
                                value=next(iter(studio.DOWNLOAD_FORMATS)),
                                label="Download for…",
                            )
                            refine = gr.Checkbox(False, label="Refine cameras with bundle adjustment")
                            fmt_button = gr.Button("Prepare download")
                        fmt_file = gr.File(label="Export", elem_id="export-file")
                    with gr.Tab("Depth & confidence"):
                        legend = gr.Image(label="Depth colour scale", interactive=False, height=90, elem_id="legend")
                        depth_gallery = gr.Gallery(
                            label="Per view: input | depth | confidence",
                            columns=1,
                            height="auto",
                            object_fit="contain",
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
                        compare_button = gr.Button("Compare")
                        compare_table = gr.Markdown()
                        compare_gallery = gr.Gallery(label="Depth change per view", columns=2, height="auto")

        sampling_inputs = [files, mode, fps, count]
        display = [conf, show_cameras, views, max_points, mask_black, mask_white]
        for trigger in (files.change, mode.change, fps.release, count.release, long_clip.change):
            trigger(
                preview,
                [*sampling_inputs, resolution, steps, long_clip],
                [preview_gallery, views_info, reference, estimate, sizes_state],
                api_visibility="private",
            )
        for trigger in (steps.release, resolution.change):
            trigger(refresh_estimate, [sizes_state, resolution, steps, long_clip], estimate, api_visibility="private")
        preview_gallery.select(pick_reference, None, reference, api_visibility="private")
        run.click(
            reconstruct,
            [*sampling_inputs, reference, steps, resolution, conf, show_cameras, max_points, mask_black, mask_white]
            + [long_clip],
            [scene, scene_info, depth_gallery, legend, run_info, downloads, views, rec_state],
            api_name="reconstruct",
            concurrency_limit=1,
            concurrency_id="model",
        )
        conf.release(rerender, [rec_state, *display], [scene, scene_info, downloads], api_name="rerender")
        for trigger in (max_points.release, show_cameras.input, mask_black.input, mask_white.input, views.input):
            trigger(rerender, [rec_state, *display], [scene, scene_info, downloads], api_visibility="private")
        fmt_button.click(download_for, [rec_state, fmt, *display, refine], fmt_file, api_name="download")
        compare_button.click(
            compare,
            [*sampling_inputs, reference, steps_a, steps_b, resolution],
            [compare_table, compare_gallery],
            api_name="compare_k",
            concurrency_limit=1,
            concurrency_id="model",
        )
        gr.Examples(
            examples=[
                [[os.path.join(EXAMPLES, "aloe", "aloeL.jpg"), os.path.join(EXAMPLES, "aloe", "aloeR.jpg")]],
                [
                    [
                        os.path.join(EXAMPLES, "rubberwhale", "rubberwhale1.png"),
                        os.path.join(EXAMPLES, "rubberwhale", "rubberwhale2.png"),
                    ]
                ],
                [[os.path.join(EXAMPLES, "box.mp4")]],
            ],
            example_labels=["Aloe stereo pair", "Rubber whale pair", "Box clip (video)"],
            inputs=[files],
            outputs=[scene, scene_info, depth_gallery, legend, run_info],
            fn=example_result,
            cache_examples=MODEL is not None,
            cache_mode="lazy",
        )
        demo.unload(forget_session)
    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


demo = build_demo()
# launch() options that keep uploads bounded and let Gradio serve outputs from DVLT_OUTPUT_DIR wherever it is
LAUNCH_LIMITS = {"max_file_size": f"{limits.MAX_UPLOAD_MB}mb", "allowed_paths": [str(OUTPUTS.root)]}

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), footer_links=["api", "gradio"], **LAUNCH_LIMITS
    )

"""DVLT Studio: the Gradio Space. Upload photos or a clip, pick K, explore and download the 3D result.

Only UI wiring lives here; the work is done by functions in `dvlt.studio`
(tested without the UI). Run locally with `python app.py`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import gradio as gr
import spaces  # noqa: I001  (ZeroGPU: must be imported before anything touches CUDA)
import torch

from dvlt import limits, studio
from dvlt.errors import DVLTError
from dvlt.estimate import Estimator
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
RUNTIME = describe_runtime(DEVICE)  # "CPU (…) · fp32 (no AMX on this CPU) · 2 threads", shown with every estimate
MAX_VIEWS = limits.max_views(DEVICE)
ESTIMATOR = Estimator()
if MODEL is not None and DEVICE == "cpu":
    studio.probe_speed(ESTIMATOR, MODEL, DEVICE, PRECISION)  # ~1 s: estimates fit this machine from the start
EXAMPLE_RESULTS = studio.ResultCache()
OUTPUTS = studio.OutputFolders(os.environ.get("DVLT_OUTPUT_DIR"))

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
        except (DVLTError, ValueError) as error:
            raise gr.Error(str(error)) from None
        except Exception as error:  # keep serving whatever happens
            log.exception("unexpected failure in %s", handler.__name__)
            raise gr.Error(
                f"Something went wrong ({type(error).__name__}: {error}). Try fewer views or a lower resolution."
            ) from None

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


def learn_speed(rec: Reconstruction, total_seconds: float | None = None) -> None:
    """Feed the measured times into the estimator (in the main process, not ZeroGPU's worker)."""
    height, width = rec.size
    ESTIMATOR.observe(rec.num_views, height, width, rec.steps, DEVICE, PRECISION, rec.seconds["model"], total_seconds)


def estimate_line(sizes, resolution, steps) -> tuple[studio.Estimate, str]:
    """The estimate for these frame sizes and settings, with where and how the model runs."""
    return studio.estimate_for(ESTIMATOR, sizes, int(resolution), int(steps), DEVICE, PRECISION, where=RUNTIME)


def frame_budget(files, resolution, steps) -> int:
    """Frames a video sampled by frame rate may keep: about a minute's worth on CPU."""
    return studio.frame_budget(ESTIMATOR, files, int(resolution), int(steps), DEVICE, PRECISION, MAX_VIEWS)


def decode(files, mode, fps, count, resolution, steps) -> tuple[list, str]:
    """The frames a run with these settings uses, and a note when a video gave more than are used."""
    how = sampling(mode, fps, count)
    budget = frame_budget(files, resolution, steps)
    frames = studio.decode_uploads(files, how, MAX_VIEWS, budget)
    return frames, studio.sampling_note(files, how, len(frames), budget, MAX_VIEWS)


def sampling(mode: str, fps: float, count: float) -> studio.Sampling:
    return studio.Sampling("count" if mode == "number of frames" else "fps", float(fps), int(count))


@human_errors
def preview(files, mode, fps, count, resolution, steps):
    """Decode the upload, show the frames that will be used and the time/memory estimate."""
    if not files:
        return [], "Upload photos or a video to start.", gr.update(value=0), RUNTIME, []
    frames, note = decode(files, mode, fps, count, resolution, steps)
    if studio.mixed_sizes(frames):
        gr.Warning("Views differ in size or orientation; they will be centre-padded to one canvas.")
    sizes = studio.frame_sizes(frames)
    estimate = estimate_line(sizes, resolution, steps)[1]
    items = [(f, f"{i}: {f.info.get('dvlt_name', '')}") for i, f in enumerate(frames)]
    return (
        items,
        studio.describe_frames(frames, int(resolution)) + (f"  \n{note}" if note else ""),
        gr.update(value=0, maximum=len(frames) - 1),
        estimate,
        sizes,
    )


def pick_reference(event: gr.SelectData):
    return event.index


def run_and_show(
    files, mode, fps, count, reference, steps, resolution, display, request, progress, cache: bool = False
) -> tuple:
    """Upload -> model -> scene, gallery, downloads, view list, run info and the session result.

    With `cache` (the examples) the model result is kept after its first run and re-used by later clicks.
    """
    require_model()
    started = time.perf_counter()
    progress(0.0, desc="Decoding the upload")
    how, reference = sampling(mode, fps, count), int(reference or 0)
    key = (tuple(map(str, files or ())), how, reference, int(steps), int(resolution))
    rec = EXAMPLE_RESULTS.get(key) if cache else None
    frames, _ = decode(files, mode, fps, count, resolution, steps) if rec is None else (None, "")
    if rec is None:
        frames = studio.with_reference_first(frames, reference)
        estimate, _ = estimate_line(studio.frame_sizes(frames), resolution, steps)
        rec = infer(frames, int(steps), int(resolution), progress)
    else:
        estimate = None  # nothing to estimate: no model run
    progress(0.97, desc="Building the 3D scene and depth maps")
    folder = OUTPUTS.new(request.session_hash if request else None)
    views = [f"view {i}" for i in range(rec.num_views)]
    options = studio.scene_options(*display[:2], views, *display[2:])
    glb, info = studio.render_scene(rec, options, folder)
    items, legend = studio.depth_panels(rec)
    npz = rec.to_npz(folder / "dvlt-predictions.npz")
    rec.originals = None  # keep the session cache small; downloads decode the photos again
    if cache:
        EXAMPLE_RESULTS.put(key, rec)
    took = time.perf_counter() - started
    if frames is not None:
        learn_speed(rec, took)
    session = studio.SessionResult(rec, npz, tuple(files), how, reference, int(resolution))
    summary = studio.run_summary(rec, estimate, took, RUNTIME)
    if frames is None:
        summary += "  \n_Example result re-used from its first run (the model time above is that run's)._"
    return (
        glb,
        info,
        items,
        legend,
        summary,
        session.downloads(glb),
        gr.update(choices=views, value=views),
        session,
        summary,
    )


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
    request: gr.Request,
    progress: gr.Progress = gr.Progress(),
):
    """Upload -> model -> scene, gallery and downloads; the result is cached in the session for re-rendering."""
    display = (conf, show_cameras, max_points, mask_black, mask_white)
    return run_and_show(files, mode, fps, count, reference, steps, resolution, display, request, progress)


@human_errors
def run_example(
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
    request: gr.Request,
    progress: gr.Progress = gr.Progress(),
):
    """A clicked example: exactly what Reconstruct yields, its model result kept after the first click."""
    display = (conf, show_cameras, max_points, mask_black, mask_white)
    return run_and_show(files, mode, fps, count, reference, steps, resolution, display, request, progress, True)


@human_errors
def rerender(session, conf, show_cameras, views, max_points, mask_black, mask_white, request: gr.Request):
    """Rebuild the GLB from the session's cached predictions (no model run)."""
    if session is None:
        raise gr.Error("Reconstruct something first; the display settings apply to its result.")
    folder = OUTPUTS.new(request.session_hash if request else None)
    glb, info = studio.render_scene(
        session.rec, studio.scene_options(conf, show_cameras, views, max_points, mask_black, mask_white), folder
    )
    return glb, info, session.downloads(glb)


@human_errors
def download_for(session, label, conf, show_cameras, views, max_points, mask_black, mask_white, request: gr.Request):
    if session is None:
        raise gr.Error("Reconstruct something first, then pick a download format.")
    folder = OUTPUTS.new(request.session_hash if request else None)
    options = studio.scene_options(conf, show_cameras, views, max_points, mask_black, mask_white)
    return str(studio.download(session.with_photos(MAX_VIEWS), label, options, folder))


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
    pair = (int(steps_a), int(steps_b))
    if pair[0] == pair[1]:
        raise gr.Error("Pick two different step counts to compare.")
    progress(0.0, desc="Decoding the upload")
    frames, _ = decode(files, mode, fps, count, resolution, max(pair))
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
    fps_mode, default_fps = "frames per second", limits.FPS_DEFAULT
    return [
        [aloe, fps_mode, default_fps, 8, 0, limits.STEPS_DEFAULT, 378 if fast else limits.RESOLUTION_DEFAULT],
        [whale, fps_mode, default_fps, 8, 0, limits.STEPS_MIN if fast else limits.STEPS_DEFAULT, 252 if fast else 504],
        [box, "number of frames", default_fps, 6 if fast else 16, 0, limits.STEPS_MIN, 252 if fast else 504],
    ]


def forget_session(request: gr.Request) -> None:
    """Delete a closed tab's files."""
    OUTPUTS.forget(request.session_hash if request else None)


# Phone-sized screens (390 px): whole labels, a viewer that fits, two depth views per row. Injected with the
# layout (a <style> element) so every launch path gets it.
PHONE_CSS = """
#depth-gallery .caption-label, #compare-gallery .caption-label { white-space: normal; overflow: visible; }
#estimate { min-height: 2.5em; }
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


# Previews run one at a time in the order they were asked for (an example click changes several inputs at
# once; the preview of its final values must be the one left on screen); only the latest pending one runs.
PREVIEW_QUEUE = {"concurrency_limit": 1, "concurrency_id": "preview", "trigger_mode": "always_last"}


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="DVLT Studio", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            "# DVLT Studio\nPhotos or a short video in, cameras + depth + a 3D point cloud out, with NVIDIA's "
            "**Déjà View Looping Transformer** ([paper](https://arxiv.org/abs/2605.30215), "
            "[model](https://huggingface.co/nvidia/dvlt)). "
            "The first view (or the one you pick) defines the world frame."
        )
        if LOAD_ERROR:
            gr.Markdown(f"### ⚠️ Model weights not loaded\n{LOAD_ERROR}", elem_id="load-error-banner")
        gr.HTML(f"<style>{PHONE_CSS}</style>", elem_id="studio-style", padding=False)
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
                estimate = gr.Markdown(RUNTIME, elem_id="estimate")  # ≈ X s before a run, took Y s after
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
                            with gr.Row(elem_id="display-toggles"):
                                show_cameras = gr.Checkbox(True, label="Show cameras")
                                mask_black = gr.Checkbox(False, label="Hide black background")
                                mask_white = gr.Checkbox(False, label="Hide white background")
                            views = gr.CheckboxGroup([], label="Views to include", elem_id="views")
                        downloads = gr.File(
                            label="Downloads: GLB scene and raw predictions (.npz)",
                            file_count="multiple",
                            elem_id="downloads",
                        )
                        with gr.Row():
                            fmt = gr.Dropdown(
                                list(studio.DOWNLOAD_FORMATS), value="COLMAP model (zip)", label="Download for…"
                            )
                            fmt_button = gr.Button("Prepare download")
                        fmt_file = gr.File(label="Export", elem_id="export-file")
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
        for trigger in (files.change, mode.change, fps.release, count.release):
            trigger(
                preview,
                [*sampling_inputs, resolution, steps],
                [preview_gallery, views_info, reference, estimate, sizes_state],
                api_visibility="private",
                **PREVIEW_QUEUE,
            )
        for trigger in (steps.release, resolution.change):
            # re-preview: on CPU a video's frame count depends on the time K and resolution take
            trigger(
                preview,
                [*sampling_inputs, resolution, steps],
                [preview_gallery, views_info, reference, estimate, sizes_state],
                api_visibility="private",
                **PREVIEW_QUEUE,
            )
        preview_gallery.select(pick_reference, None, reference, api_visibility="private")
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
        ]
        run_outputs = [scene, scene_info, depth_gallery, legend, run_info, downloads, views, rec_state, estimate]
        run.click(
            reconstruct,
            run_inputs,
            run_outputs,
            api_name="reconstruct",
            concurrency_limit=1,
            concurrency_id="model",
            show_progress_on=[estimate],  # one progress display, next to the button that was pressed
        )
        conf.release(rerender, [rec_state, *display], [scene, scene_info, downloads], api_name="rerender")
        for trigger in (max_points.release, show_cameras.input, mask_black.input, mask_white.input, views.input):
            trigger(rerender, [rec_state, *display], [scene, scene_info, downloads], api_visibility="private")
        fmt_button.click(download_for, [rec_state, fmt, *display], fmt_file, api_name="download")
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
            example_labels=["Aloe stereo pair", "Rubber whale pair", "Box clip (video)"],
            inputs=[*sampling_inputs, reference, steps, resolution],
            cache_examples=False,
        )
        # A click fills the inputs, then runs exactly like Reconstruct (model result kept after the first run).
        examples.load_input_event.then(
            run_example,
            run_inputs,
            run_outputs,
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="model",
            show_progress_on=[estimate],
        )
        demo.unload(forget_session)
    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


demo = build_demo()

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), footer_links=["api", "gradio"])

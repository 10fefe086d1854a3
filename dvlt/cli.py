"""Command line: `python -m dvlt reconstruct INPUT... --out DIR [options]`.

Each INPUT (a folder of photos, a video, one photo, a .txt list of photo paths,
or a quoted glob like "shots/*.jpg") is reconstructed separately into
DIR/<input name>/ in the requested formats. `python -m dvlt export PREDICTIONS.npz
--out DIR` re-exports saved predictions without the model (and without torch).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import glob
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from . import limits
from .batch import Launch, Manifest, Scene, cpu_share, process_device
from .errors import DiskFullError, DVLTError, OptionError, UnsupportedFileError
from .estimate import SLOW_SECONDS, TARGET_SECONDS, Estimator, human_seconds
from .exif import INTRINSICS_CHOICES, with_intrinsics
from .export import FORMATS, CameraOptions, export_all, parse_formats
from .inputs import NAME_KEY, expand_sources, is_video, load_sequence, probe_image
from .interrupts import installed_hold, interrupts_deferred, interrupts_received, raise_if_interrupted
from .measure import KnownDistance, MeasureError, with_known_distance
from .points import DEFAULT_POINT_SOURCE, POINT_SOURCES, with_point_source
from .records import Reconstruction
from .scene import SceneOptions
from .windows import plan_windows, reconstruct_windows

DEFAULT_REPO = "nvidia/dvlt"  # as dvlt.weights.DEFAULT_REPO, which imports torch


def expand_input(text: str) -> tuple[str, str | list[str]]:
    """(name, load_sequence source) for one command-line INPUT."""
    path = Path(text)
    if path.suffix.lower() == ".txt" and path.is_file():
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        return path.stem, [str((path.parent / line) if not Path(line).is_absolute() else line) for line in lines]
    if any(char in text for char in "*?[") and not path.exists():
        matches = sorted(glob.glob(text))
        if not matches:
            raise UnsupportedFileError(f"{text!r} matches no files.")
        return Path(matches[0]).parent.name or "images", matches
    return (path.stem if path.is_file() else path.name) or "scene", text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dvlt", description="DVLT: photos or a video in, cameras, depth and 3D points out."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser(
        "reconstruct",
        help="reconstruct one or more inputs",
        description="Reconstruct each INPUT separately and write the chosen formats to OUT/<input name>/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples, one per input kind:\n"
        "  dvlt reconstruct examples/aloe --out results               # a folder of photos\n"
        "  dvlt reconstruct examples/box.mp4 --out results --fps 2    # a video\n"
        "  dvlt reconstruct examples/aloe/aloeL.jpg --out results     # one photo\n"
        "  dvlt reconstruct shots.txt --out results                   # a .txt list of photo paths\n"
        '  dvlt reconstruct "shots/*.jpg" --out results --formats all # a quoted glob\n'
        "\nformats:\n"
        + "\n".join(f"  {name:<11} {text}" for name, (text, _) in FORMATS.items())
        + "\n  all         every format above but video",
    )
    rec.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help='a folder of photos, a video, one photo, a .txt list of photo paths, or a quoted glob ("shots/*.jpg")',
    )
    rec.add_argument(
        "--out", required=True, type=Path, help="output folder; each input gets a sub-folder named after it"
    )
    rec.add_argument(
        "--steps",
        type=int,
        default=limits.STEPS_DEFAULT,
        help=f"loop steps K: more is slower and finer "
        f"(validated {limits.STEPS_MIN}-{limits.STEPS_MAX}, default %(default)s)",
    )
    rec.add_argument(
        "--formats", default="glb,ply,npz", help="comma-separated formats (see below) or 'all' (default %(default)s)"
    )
    rec.add_argument(
        "--fps", type=float, default=limits.FPS_DEFAULT, help="frames sampled per second of video (default %(default)s)"
    )
    rec.add_argument(
        "--num-frames",
        type=int,
        default=None,
        help="instead of --fps: this many frames evenly spaced over each video (default: use --fps)",
    )
    rec.add_argument(
        "--max-frames",
        type=int,
        default=None,
        help="at most this many views per input; videos are thinned evenly, photo sets above it are refused "
        f"(default: {limits.CLI_MAX_FRAMES}; on a CPU videos sampled by --fps keep only as many as fit about "
        f"{TARGET_SECONDS:.0f} s)",
    )
    rec.add_argument(
        "--checkpoint",
        default=os.environ.get("DVLT_CHECKPOINT") or DEFAULT_REPO,
        help=f"Hub repo id, local folder, .safetensors file or URL (default: $DVLT_CHECKPOINT, else {DEFAULT_REPO})",
    )
    rec.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the model runs; auto picks CUDA when present (default %(default)s)",
    )
    rec.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto: bf16 on GPUs and on CPUs where it measured faster (AMX, AMD AVX512-BF16), else fp32; "
        "$DVLT_PRECISION overrides auto (default %(default)s)",
    )
    rec.add_argument(
        "--img-size",
        type=int,
        default=limits.RESOLUTION_DEFAULT,
        help="longest image side given to the model, multiple of 14 (default %(default)s, as trained)",
    )
    add_point_filter_arguments(rec)
    add_scene_choice_arguments(rec)
    rec.add_argument(
        "--window",
        type=int,
        default=None,
        help="reconstruct in overlapping windows of W views aligned by Sim(3) (long clips in bounded memory); "
        "default: one pass, or windows of the device's view cap when the frames exceed it; 0 forces one pass",
    )
    rec.add_argument(
        "--overlap",
        type=int,
        default=limits.WINDOW_OVERLAP_DEFAULT,
        help="frames shared by consecutive windows (default %(default)s)",
    )
    rec.add_argument(
        "--resume",
        action="store_true",
        help="skip inputs the output folder's manifest records as done (always on under torchrun/accelerate)",
    )
    rec.add_argument("--quiet", action="store_true", help="no progress bars")
    rec.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty OUT/<input name>/ folder")
    rec.add_argument(
        "--reference",
        choices=("first", "auto"),
        default="first",
        help="the view that defines the world frame: the first one, or 'auto', the view that shares the most with "
        "the others (ignored for long clips in windows) (default %(default)s)",
    )
    add_export_parser(commands)
    return parser


def add_point_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that choose which pixels become points (shared by `reconstruct` and `export`)."""
    parser.add_argument(
        "--conf-percentile",
        type=float,
        default=limits.CONF_PERCENTILE_DEFAULT,
        help="drop points below this confidence percentile (0-100, default %(default)s)",
    )
    parser.add_argument(
        "--max-points",
        type=int,
        default=limits.POINTS_DEFAULT,
        help="point budget for glb/ply/colmap/nerfstudio (default %(default)s)",
    )
    parser.add_argument(
        "--mask-background",
        choices=("none", "black", "white", "both"),
        default="none",
        help="drop near-black and/or near-white pixels (studio backgrounds; default %(default)s)",
    )
    parser.add_argument(
        "--drop-edges",
        action=argparse.BooleanOptionalAction,
        default=limits.DROP_EDGES_DEFAULT,
        help="drop flying pixels on depth discontinuities (default: drop; --no-drop-edges keeps them)",
    )


def add_scene_choice_arguments(parser: argparse.ArgumentParser) -> None:
    """Which prediction makes the points and the real scale (shared by `reconstruct` and `export`)."""
    parser.add_argument(
        "--points",
        choices=POINT_SOURCES,
        default=DEFAULT_POINT_SOURCE,
        help="depth: depth along the fitted cameras' rays; direct: the model's direct point head (default %(default)s)",
    )
    parser.add_argument(
        "--known-distance",
        nargs=7,
        metavar=("VA", "XA", "YA", "VB", "XB", "YB", "METRES"),
        default=None,
        help="make every output metric: the points under photo pixel (XA, YA) of view VA and (XB, YB) of view VB "
        "(views from 0, pixels of the original photos) are METRES apart",
    )
    parser.add_argument(
        "--intrinsics",
        choices=INTRINSICS_CHOICES,
        default="predicted",
        help="exif: fix each photo's focal length to its EXIF tags and re-fit the poses (export: needs --images) "
        "(default %(default)s)",
    )


def prepared(rec: Reconstruction, args: argparse.Namespace, log: Callable[[str], None]) -> Reconstruction:
    """The reconstruction with the command line's choices applied: point source, real scale, then intrinsics."""
    rec = with_point_source(rec, args.points)
    if args.known_distance is not None:
        rec = with_known_distance(rec, args.known_distance)
        log(f"{rec.name}: {rec.scale_note}; every output is in metres")
    return with_intrinsics(rec, args.intrinsics, lambda message: log(f"{rec.name}: {message}"))


def check_shared_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options `reconstruct` and `export` share (points, formats): reject bad values with a usage error (exit 2)."""
    if not 0 <= args.conf_percentile < 100:
        parser.error("--conf-percentile must be in [0, 100)")
    if args.max_points < 1:
        parser.error("--max-points must be >= 1")
    if args.command == "export" and args.intrinsics == "exif" and args.images is None:
        parser.error("--intrinsics exif reads the photos' EXIF tags: pass the photos with --images")
    try:
        args.formats = parse_formats(args.formats)
        if args.known_distance is not None:
            args.known_distance = KnownDistance.parse(args.known_distance)
    except (ValueError, MeasureError) as error:
        parser.error(f"--known-distance: {error}" if isinstance(error, MeasureError) else str(error))


def scene_options(args: argparse.Namespace) -> SceneOptions:
    """The point selection the command line asked for."""
    return SceneOptions(
        conf_percentile=args.conf_percentile,
        max_points=args.max_points,
        mask_black=args.mask_background in ("black", "both"),
        mask_white=args.mask_background in ("white", "both"),
        drop_edges=args.drop_edges,
    )


def add_export_parser(commands: argparse._SubParsersAction) -> None:
    """`export PREDICTIONS.npz --out DIR`: re-export saved predictions without the model."""
    exp = commands.add_parser(
        "export",
        help="re-export saved predictions (.npz) without the model",
        description="Write the chosen formats from a predictions .npz (the Space's download or the CLI's npz) "
        "into OUT, without loading the model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="formats:\n"
        + "\n".join(f"  {name:<11} {text}" for name, (text, _) in FORMATS.items())
        + "\n  all         every format above but video",
    )
    exp.add_argument("predictions", type=Path, metavar="PREDICTIONS.npz", help="a predictions .npz written by dvlt")
    exp.add_argument("--out", required=True, type=Path, help="output folder")
    exp.add_argument(
        "--formats", default="all", help="comma-separated formats (see below) or 'all' (default %(default)s)"
    )
    exp.add_argument(
        "--images",
        type=Path,
        default=None,
        help="folder with the original photos (matched by file name); default: the model's crops stored in the npz",
    )
    exp.add_argument(
        "--refine",
        action="store_true",
        help="bundle-adjust the cameras with pycolmap (pip install 'dvlt-studio[refine]')",
    )
    exp.add_argument(
        "--shared-camera", action="store_true", help="one camera (averaged intrinsics) when all photos have one size"
    )
    exp.add_argument(
        "--centre-principal-point",
        action="store_true",
        help="principal point at each photo's centre, poses re-fitted (for the reference 3DGS trainer)",
    )
    add_point_filter_arguments(exp)
    add_scene_choice_arguments(exp)
    exp.add_argument("--quiet", action="store_true", help="print nothing but errors")


def export_reporter(name: str, show: bool) -> Callable[[str], None]:
    """A log for one scene's exports (a rescaled scene, clipped depths): printed above the progress bars."""

    def report(message: str) -> None:
        if show:
            tqdm.write(f"{name}: {message}", file=sys.stderr)

    return report


def run_export(args: argparse.Namespace) -> int:
    """Re-export one predictions .npz; returns the process exit code."""
    import zipfile

    from .export.photos import with_photos

    path: Path = args.predictions
    if not path.is_file():
        raise UnsupportedFileError(f"{path.name}: no such predictions file.")
    try:
        rec = Reconstruction.from_npz(path)
    except (KeyError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UnsupportedFileError(
            f"{path.name} is not a predictions .npz written by dvlt ({type(error).__name__})."
        ) from None
    if args.images is not None:
        rec = with_photos(rec, args.images)
    options = scene_options(args)
    cameras = CameraOptions(
        refine=args.refine, shared_camera=args.shared_camera, centre_principal_point=args.centre_principal_point
    )
    log = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr))
    start = time.perf_counter()
    rec = prepared(rec, args, log)
    out = args.out.resolve()
    check_output_folder(out.parent, [], overwrite=True)  # exists and is writable, before anything is written
    with SceneFolder(out, merge=True) as folder:  # written aside, moved into OUT only once complete
        written = export_all(rec, folder, args.formats, options, cameras, log)
    written = {kind: out / Path(path).relative_to(folder) for kind, path in written.items()}
    log(
        f"{rec.name}: {rec.num_views} views in {time.perf_counter() - start:.1f} s -> "
        + ", ".join(map(str, written.values()))
    )
    return 0


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject out-of-range options with argparse's usage error (exit 2)."""
    if not 1 <= args.steps <= limits.STEPS_HARD_MAX:
        parser.error(f"--steps must be between 1 and {limits.STEPS_HARD_MAX}, got {args.steps}")
    if args.fps <= 0:
        parser.error("--fps must be positive")
    if (args.max_frames is not None and args.max_frames < 1) or (args.num_frames is not None and args.num_frames < 1):
        parser.error("--max-frames and --num-frames must be >= 1")
    if args.img_size < 14 or args.img_size % 14 or args.img_size > limits.IMG_SIZE_MAX:
        parser.error(f"--img-size must be a multiple of 14 between 14 and {limits.IMG_SIZE_MAX}, got {args.img_size}")
    if args.window is not None and (args.window == 1 or args.window < 0):
        parser.error("--window must be 0 (one pass) or at least 2")
    if args.overlap < 1 or (args.window and args.overlap >= args.window):
        parser.error("--overlap must be at least 1 and smaller than --window")
    check_shared_arguments(parser, args)


def window_for(args: argparse.Namespace, views: int, device_type: str) -> int:
    """Window size for `views` frames: --window, else the device's one-pass cap when the frames exceed it."""
    if args.window is not None:
        return args.window if args.window and views > args.window else 0
    cap = limits.max_views(device_type)
    return cap if views > cap else 0


def plan_inputs(texts: Sequence[str]) -> list[tuple[str, str, str | list[str]]]:
    """(input text, distinct scene name, load_sequence source) per INPUT, every path checked to exist.

    Inputs with the same name get name, name-2, name-3, ... so no scene overwrites another."""
    plans, used = [], set()
    for text in texts:
        name, source = expand_input(text)
        for path in [source] if isinstance(source, str) else source:
            if not Path(path).exists():
                raise UnsupportedFileError(f"{path}: no such file or folder.")
        for path in expand_sources(source)[1]:  # an empty folder or an unreadable photo refuses the run now,
            if not path.is_dir() and not is_video(path):  # before its output folder or manifest exists
                probe_image(path)
        unique, number = name, 1
        while unique.lower() in used:
            number += 1
            unique = f"{name}-{number}"
        used.add(unique.lower())
        plans.append((text, unique, source))
    return plans


def check_output_folder(out: Path, names: Sequence[str], overwrite: bool) -> None:
    """Create OUT if needed, prove it is writable, and refuse non-empty scene folders unless --overwrite."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".dvlt-write-test-"):
            pass
    except OSError as error:
        raise OptionError(f"cannot write to the output folder {out} ({error.strerror or error}).") from None
    busy = [name for name in names if (out / name).exists() and any((out / name).iterdir())]
    if busy and not overwrite:
        raise OptionError(
            f"{', '.join(str(out / n) for n in busy)} already exist(s) and is not empty; "
            "pass --overwrite to replace, or choose another --out."
        )


class SceneFolder(contextlib.AbstractContextManager):
    """A temporary sibling folder that becomes `target` only when everything in it is written, so an interrupted
    or failed run leaves no half-written scene (and a full disk is reported as such).

    A class, not a generator: contextlib's wrapper has a moment after the folder exists and before the `with`
    body owns it, where a Ctrl-C would leak the folder."""

    def __init__(self, target: Path, merge: bool = False) -> None:
        self.target, self.merge = target, merge  # merge: replace only what was written, keep OUT's other files
        self.partial: Path | None = None

    def __enter__(self) -> Path:
        try:
            with interrupts_deferred():  # a Ctrl-C held here is raised on leaving the block, inside this `try`
                self.partial = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.partial-", dir=self.target.parent))
        except BaseException as error:
            self.discard(error)
            raise
        return self.partial

    def __exit__(self, kind: type | None, error: BaseException | None, traceback: object) -> None:
        if error is not None:
            self.discard(error)
            return
        try:
            with interrupts_deferred():  # the old scene is never lost between the two renames
                (merge_folder if self.merge else replace_folder)(self.partial, self.target)
        except BaseException as commit_error:
            self.discard(commit_error)
            raise

    def discard(self, error: BaseException) -> None:
        """Remove the partial folder (a Ctrl-C meanwhile, as from a held key, waits until it is gone); a full disk
        becomes a DiskFullError."""
        if self.partial is not None:
            with interrupts_deferred():
                shutil.rmtree(self.partial, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError("the disk is full; nothing was kept for this input.") from None


def replace_folder(source: Path, target: Path) -> None:
    """Rename `source` to `target`, replacing a previous `target` folder (kept aside until the rename is done)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        target.rename(old / "scene")
    source.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def merge_folder(source: Path, target: Path) -> None:
    """Move each entry of `source` into `target` (created if needed), replacing same-named entries whole; the
    replaced ones are kept aside until every move is done, then removed with `source`."""
    if not target.exists():
        source.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    moved: list[str] = []
    try:
        for entry in sorted(source.iterdir()):
            if (target / entry.name).exists() or (target / entry.name).is_symlink():
                (target / entry.name).rename(old / entry.name)
            entry.rename(target / entry.name)
            moved.append(entry.name)
    except BaseException:
        for name in moved:  # take back what was moved in, and put the earlier export back as it was
            remove_path(target / name)
        for entry in old.iterdir():
            remove_path(target / entry.name)
            entry.rename(target / entry.name)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)


def remove_path(path: Path) -> None:
    """Remove a file, link or folder if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def run_reconstruct(args: argparse.Namespace) -> int:
    """Reconstruct this process's share of the inputs; returns the process exit code."""
    import torch  # only the reconstruct command needs torch and the network

    from .model import DVLT
    from .pipeline import reconstruct
    from .runtime import describe_runtime, precision_name

    show = not args.quiet
    launch = Launch.from_env()
    plans = plan_inputs(args.inputs)  # every input and the output folder are checked before the model loads
    sources = {index: source for index, (_, _, source) in enumerate(plans)}
    scenes = [Scene(index, text, name, index % launch.world_size) for index, (text, name, _) in enumerate(plans)]
    check_output_folder(args.out, [], args.overwrite)  # exists and is writable, before anything is written there
    manifest = Manifest(args.out, launch)
    scenes, skipped = manifest.mine(scenes, args.resume or launch.distributed)
    check_output_folder(args.out, [scene.name for scene in scenes], args.overwrite)
    for scene in skipped:
        print(f"{scene.name}: done in an earlier run, skipped", file=sys.stderr)
    model = DVLT(img_size=args.img_size, inference_steps=args.steps, precision=args.precision)
    model.load_pretrained(args.checkpoint, strict=True)
    device = process_device(args.device, launch, torch.cuda.is_available())
    if device.startswith("cuda:"):
        torch.cuda.set_device(device)  # one GPU per process
    model.setup_test(device)
    if launch.distributed and model.device.type == "cpu":
        torch.set_num_threads(cpu_share(launch))
    device, precision = model.device.type, precision_name(args.precision, model.device.type)
    if show:
        print(f"dvlt: {describe_runtime(device, args.precision)}", file=sys.stderr)
    estimator = Estimator()
    if device == "cpu":
        from .studio import probe_speed

        probe_speed(estimator, model, device, precision)  # 2-4 s: time estimates and default frame counts fit here
    options = scene_options(args)
    failures = []
    interrupts_before = interrupts_received()
    for scene in tqdm(scenes, desc="inputs", unit="input", disable=not show or len(scenes) <= 1):
        text, name = scene.text, scene.name
        try:
            with manifest.claim(scene) as entry:
                source = sources[scene.index]
                most = max_frames_for(args, source, estimator, device, precision)
                _, frames = load_sequence(
                    source, fps=args.fps, max_frames=most, num_frames=args.num_frames, max_side=args.img_size
                )
                for note in frames.notes:
                    print(f"warning: {text}: {note}", file=sys.stderr)
                window = window_for(args, len(frames), device)
                if args.reference == "auto" and not window:
                    from .reference import most_central_view

                    chosen = most_central_view(frames)
                    frames = frames[chosen:] + frames[:chosen]
                    if show:
                        picked = frames[0].info.get(NAME_KEY, "")
                        tqdm.write(f"{name}: reference view {chosen} ({picked}), chosen automatically", file=sys.stderr)
                plan = plan_windows(len(frames), window, args.overlap) if window else [frames]
                label = f"{len(frames)} views" + (f" in {len(plan)} windows of {window}" if window else "")
                if show and not window:
                    warn_if_slow(args, name, frames, estimator, device, precision)
                bar_format = "{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
                with tqdm(
                    total=100,
                    desc=f"{name}: {label}, K={args.steps}",
                    bar_format=bar_format,
                    disable=not show,
                    leave=False,
                    dynamic_ncols=True,
                ) as bar:

                    def progress(fraction: float, message: str) -> None:
                        bar.set_postfix_str(message, refresh=False)
                        bar.update(max(0, round(fraction * 100) - bar.n))

                    start = time.perf_counter()
                    if window:
                        rec = reconstruct_windows(
                            model, frames, window, args.overlap, steps=args.steps, name=name, progress=progress
                        )
                    else:
                        rec = reconstruct(model, frames, steps=args.steps, name=name, progress=progress)
                    rec = prepared(rec, args, lambda message: tqdm.write(message, file=sys.stderr) if show else None)
                    with SceneFolder(args.out / name) as folder:
                        written = export_all(rec, folder, args.formats, options, log=export_reporter(name, show))
                    written = {kind: args.out / name / Path(path).relative_to(folder) for kind, path in written.items()}
                if not window:
                    height, width = rec.size
                    estimator.observe(len(frames), height, width, args.steps, device, precision, rec.seconds["model"])
                entry.views, entry.windows, entry.seconds = rec.num_views, len(plan), dict(rec.seconds)
                entry.outputs = {key: str(path) for key, path in written.items()}
            if show:
                tqdm.write(
                    f"{name}: {label} in {time.perf_counter() - start:.1f} s -> "
                    + ", ".join(str(p) for p in written.values())
                )
        except (DVLTError, OSError, ValueError) as error:
            raise_if_interrupted(interrupts_before)  # the error may be a Ctrl-C a library turned into its own
            message = naming_the_input_once(text, error)
            failures.append(message)
            print(f"error: {message}", file=sys.stderr)
        raise_if_interrupted(interrupts_before)  # one a __del__ swallowed: the next input does not start
    return 1 if failures else 0


def max_frames_for(
    args: argparse.Namespace, source: str | list[str], estimator: Estimator, device: str, precision: str
) -> int:
    """--max-frames, or by default the CLI cap; on a CPU a video sampled by --fps keeps what fits about a minute."""
    if args.max_frames is not None:
        return args.max_frames
    if device == "cuda" or args.num_frames is not None or not isinstance(source, str) or not is_video(source):
        return limits.CLI_MAX_FRAMES
    from .preprocess import canvas_size
    from .studio import video_frame_size

    size = video_frame_size(source) or (480, 640)
    height, width = canvas_size([size], args.img_size)
    fits = estimator.views_within(TARGET_SECONDS, height, width, args.steps, device, precision, limits.CLI_MAX_FRAMES)
    return max(2, fits)


def warn_if_slow(
    args: argparse.Namespace, name: str, frames: list, estimator: Estimator, device: str, precision: str
) -> None:
    """One line before a run expected to take over two minutes, naming a cheaper setting."""
    from .preprocess import canvas_size

    height, width = canvas_size([(f.height, f.width) for f in frames], args.img_size)
    seconds = estimator.estimate(len(frames), height, width, args.steps, device, precision).seconds
    if seconds <= SLOW_SECONDS:
        return
    fewer = estimator.views_within(TARGET_SECONDS, height, width, args.steps, device, precision, len(frames))
    print(
        f"warning: {name}: {len(frames)} views at {width}×{height}, K={args.steps} will take ≈ {human_seconds(seconds)}"
        f" here; --max-frames {fewer} or --img-size {min(limits.RESOLUTIONS)} is faster.",
        file=sys.stderr,
    )


def naming_the_input_once(text: str, error: Exception) -> str:
    """The error message, prefixed with the input only when the message does not already name it."""
    message = str(error)
    named = text in message or (Path(text).name and Path(text).name in message)
    return message if named else f"{text}: {message}"


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Warnings as one plain line ('warning: ...'), without Python's file and line, above any progress bar."""
    tqdm.write(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    (check_shared_arguments if args.command == "export" else check_arguments)(parser, args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    warnings.simplefilter("default")
    warnings.showwarning = show_warning
    if args.command == "reconstruct" and not limits.STEPS_MIN <= args.steps <= limits.STEPS_MAX:  # said once
        print(
            f"warning: K={args.steps} is outside the validated range {limits.STEPS_MIN}-{limits.STEPS_MAX}; "
            "quality may drop.",
            file=sys.stderr,
        )
        warnings.filterwarnings("ignore", message=r"K=\d+ is outside the validated range")
    installed_hold()  # one SIGINT handler for the run: held interrupts are never lost or raised late
    interrupts_before = interrupts_received()
    try:
        status = run_export(args) if args.command == "export" else run_reconstruct(args)
    except (DVLTError, OSError, RuntimeError) as error:
        if interrupts_received() == interrupts_before:  # else the error may be a Ctrl-C a library turned into its own
            print(f"error: {error}", file=sys.stderr)
            return 1
        status = 130
    except KeyboardInterrupt:
        status = 130
    if status == 130 or interrupts_received() > interrupts_before:  # also one a library's __del__ swallowed
        print("error: interrupted", file=sys.stderr)
        return 130
    return status


def main_entry() -> None:
    """Console-script entry point (`dvlt ...`): exit with main()'s status."""
    sys.exit(main())

"""Command line: `python -m dvlt reconstruct INPUT... --out DIR [options]`.

Each INPUT (a folder of photos, a video, one photo, a .txt list of photo paths,
or a quoted glob like "shots/*.jpg") is reconstructed separately into
DIR/<input name>/ in the requested formats.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from . import limits
from .errors import DVLTError
from .estimate import SLOW_SECONDS, TARGET_SECONDS, Estimator, human_seconds
from .export import FORMATS, export_all, parse_formats
from .inputs import is_video, load_sequence
from .model import DVLT
from .pipeline import reconstruct
from .preprocess import canvas_size
from .runtime import describe_runtime, precision_name
from .scene import SceneOptions
from .weights import DEFAULT_REPO


def expand_input(text: str) -> tuple[str, str | list[str]]:
    """(name, load_sequence source) for one command-line INPUT."""
    path = Path(text)
    if path.suffix.lower() == ".txt" and path.is_file():
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        return path.stem, [str((path.parent / line) if not Path(line).is_absolute() else line) for line in lines]
    if any(char in text for char in "*?[") and not path.exists():
        matches = sorted(glob.glob(text))
        if not matches:
            raise DVLTError(f"{text!r} matches no files.")
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
        + "\n  all         every format above",
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
        help="auto: bf16 on GPUs and on CPUs with AMX, else fp32; $DVLT_PRECISION overrides auto (default %(default)s)",
    )
    rec.add_argument(
        "--img-size",
        type=int,
        default=limits.RESOLUTION_DEFAULT,
        help="longest image side given to the model, multiple of 14 (default %(default)s, as trained)",
    )
    rec.add_argument(
        "--conf-percentile",
        type=float,
        default=limits.CONF_PERCENTILE_DEFAULT,
        help="drop points below this confidence percentile (0-100, default %(default)s)",
    )
    rec.add_argument(
        "--max-points",
        type=int,
        default=limits.POINTS_DEFAULT,
        help="point budget for glb/ply/colmap/nerfstudio (default %(default)s)",
    )
    rec.add_argument(
        "--mask-background",
        choices=("none", "black", "white", "both"),
        default="none",
        help="drop near-black and/or near-white pixels (studio backgrounds; default %(default)s)",
    )
    rec.add_argument("--quiet", action="store_true", help="no progress bar or device line (default: show them)")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject out-of-range options with argparse's usage error (exit 2)."""
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.fps <= 0:
        parser.error("--fps must be positive")
    if (args.max_frames is not None and args.max_frames < 1) or (args.num_frames is not None and args.num_frames < 1):
        parser.error("--max-frames and --num-frames must be >= 1")
    if not 0 <= args.conf_percentile < 100:
        parser.error("--conf-percentile must be in [0, 100)")
    if args.img_size < 14 or args.img_size % 14:
        parser.error(f"--img-size must be a positive multiple of 14, got {args.img_size}")
    if args.max_points < 1:
        parser.error("--max-points must be >= 1")
    try:
        args.formats = parse_formats(args.formats)
    except ValueError as error:
        parser.error(str(error))


def run_reconstruct(args: argparse.Namespace) -> int:
    """Reconstruct every input; returns the process exit code."""
    show = not args.quiet
    model = DVLT(img_size=args.img_size, inference_steps=args.steps, precision=args.precision)
    model.load_pretrained(args.checkpoint, strict=True)
    model.setup_test(args.device)
    device, precision = model.device.type, precision_name(args.precision, model.device.type)
    if show:
        print(f"dvlt: {describe_runtime(device, args.precision)}", file=sys.stderr)
    estimator = Estimator()
    if device == "cpu":
        from .studio import probe_speed

        probe_speed(estimator, model, device, precision)  # ~1 s: time estimates and default frame counts fit here
    options = SceneOptions(
        conf_percentile=args.conf_percentile,
        max_points=args.max_points,
        mask_black=args.mask_background in ("black", "both"),
        mask_white=args.mask_background in ("white", "both"),
    )
    failures = []
    for text in tqdm(args.inputs, desc="inputs", unit="input", disable=not show or len(args.inputs) == 1):
        try:
            name, source = expand_input(text)
            most = max_frames_for(args, source, estimator, device, precision)
            _, frames = load_sequence(source, fps=args.fps, max_frames=most, num_frames=args.num_frames)
            if show:
                warn_if_slow(args, name, frames, estimator, device, precision)
            bar_format = "{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
            with tqdm(
                total=100,
                desc=f"{name}: {len(frames)} views, K={args.steps}",
                bar_format=bar_format,
                disable=not show,
                leave=False,
                dynamic_ncols=True,
            ) as bar:

                def progress(fraction: float, message: str) -> None:
                    bar.set_postfix_str(message, refresh=False)
                    bar.update(max(0, round(fraction * 100) - bar.n))

                start = time.perf_counter()
                rec = reconstruct(model, frames, steps=args.steps, name=name, progress=progress)
                written = export_all(rec, args.out / name, args.formats, options)
            height, width = rec.size
            estimator.observe(len(frames), height, width, args.steps, device, precision, rec.seconds["model"])
            if show:
                tqdm.write(
                    f"{name}: {len(frames)} views in {time.perf_counter() - start:.1f} s -> "
                    + ", ".join(str(p) for p in written.values())
                )
        except (DVLTError, OSError, ValueError) as error:
            message = naming_the_input_once(text, error)
            failures.append(message)
            print(f"error: {message}", file=sys.stderr)
    return 1 if failures else 0


def max_frames_for(
    args: argparse.Namespace, source: str | list[str], estimator: Estimator, device: str, precision: str
) -> int:
    """--max-frames, or by default the CLI cap; on a CPU a video sampled by --fps keeps what fits about a minute."""
    if args.max_frames is not None:
        return args.max_frames
    if device == "cuda" or args.num_frames is not None or not isinstance(source, str) or not is_video(source):
        return limits.CLI_MAX_FRAMES
    from .studio import video_frame_size

    size = video_frame_size(source) or (480, 640)
    height, width = canvas_size([size], args.img_size, 14)
    fits = estimator.views_within(TARGET_SECONDS, height, width, args.steps, device, precision, limits.CLI_MAX_FRAMES)
    return max(2, fits)


def warn_if_slow(
    args: argparse.Namespace, name: str, frames: list, estimator: Estimator, device: str, precision: str
) -> None:
    """One line before a run expected to take over two minutes, naming a cheaper setting."""
    height, width = canvas_size([(f.height, f.width) for f in frames], args.img_size, 14)
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
    """Warnings as one plain line ('warning: ...'), without Python's file and line."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    warnings.simplefilter("default")
    warnings.showwarning = show_warning
    try:
        return run_reconstruct(args)
    except (DVLTError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def main_entry() -> None:
    """Console-script entry point (`dvlt ...`): exit with main()'s status."""
    sys.exit(main())

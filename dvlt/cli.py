"""Command line: `python -m dvlt reconstruct INPUT... --out DIR [options]`.

Each INPUT (a folder of photos, a video, one photo, a .txt list of photo paths,
or a quoted glob like "shots/*.jpg") is reconstructed separately into
DIR/<input name>/ in the requested formats.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import glob
import logging
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from tqdm import tqdm

from . import limits
from .errors import DVLTError
from .export import FORMATS, export_all, parse_formats
from .inputs import load_sequence
from .model import DVLT
from .pipeline import reconstruct
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
        epilog="formats:\n"
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
        "--num-frames", type=int, default=None, help="instead of --fps: this many frames evenly spaced over each video"
    )
    rec.add_argument(
        "--max-frames",
        type=int,
        default=32,
        help="at most this many views per input; videos are thinned evenly, "
        "photo sets above it are refused (default %(default)s)",
    )
    rec.add_argument(
        "--checkpoint",
        default=DEFAULT_REPO,
        help="Hub repo id, local folder, .safetensors file or URL (default %(default)s)",
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
        help="auto: bf16 on GPUs and on CPUs with fast bf16, else fp32 (default %(default)s)",
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
        help="drop near-black and/or near-white pixels (studio backgrounds)",
    )
    rec.add_argument("--quiet", action="store_true", help="no progress bars")
    rec.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty OUT/<input name>/ folder")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject out-of-range options with argparse's usage error (exit 2)."""
    if not 1 <= args.steps <= limits.STEPS_HARD_MAX:
        parser.error(f"--steps must be between 1 and {limits.STEPS_HARD_MAX}, got {args.steps}")
    if args.fps <= 0:
        parser.error("--fps must be positive")
    if args.max_frames < 1 or (args.num_frames is not None and args.num_frames < 1):
        parser.error("--max-frames and --num-frames must be >= 1")
    if not 0 <= args.conf_percentile < 100:
        parser.error("--conf-percentile must be in [0, 100)")
    if args.img_size < 14 or args.img_size % 14 or args.img_size > limits.IMG_SIZE_MAX:
        parser.error(f"--img-size must be a multiple of 14 between 14 and {limits.IMG_SIZE_MAX}, got {args.img_size}")
    if args.max_points < 1:
        parser.error("--max-points must be >= 1")
    try:
        args.formats = parse_formats(args.formats)
    except ValueError as error:
        parser.error(str(error))


def plan_inputs(texts: Sequence[str]) -> list[tuple[str, str, str | list[str]]]:
    """(input text, distinct scene name, load_sequence source) per INPUT, every path checked to exist.

    Inputs with the same name get name, name-2, name-3, ... so no scene overwrites another."""
    plans, used = [], set()
    for text in texts:
        name, source = expand_input(text)
        for path in [source] if isinstance(source, str) else source:
            if not Path(path).exists():
                raise DVLTError(f"{path}: no such file or folder.")
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
        raise DVLTError(f"cannot write to the output folder {out} ({error.strerror or error}).") from None
    busy = [name for name in names if (out / name).exists() and any((out / name).iterdir())]
    if busy and not overwrite:
        raise DVLTError(
            f"{', '.join(str(out / n) for n in busy)} already exist(s) and is not empty; "
            "pass --overwrite to replace, or choose another --out."
        )


@contextlib.contextmanager
def scene_folder(target: Path) -> Iterator[Path]:
    """A temporary sibling folder that becomes `target` only when everything in it is written, so an interrupted
    or failed run leaves no half-written scene (and a full disk is reported as such)."""
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield partial
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DVLTError("the disk is full; nothing was kept for this input.") from None
        raise
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        target.rename(old / "scene")
    partial.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_reconstruct(args: argparse.Namespace) -> int:
    """Reconstruct every input; returns the process exit code."""
    show = not args.quiet
    plans = plan_inputs(args.inputs)  # inputs and the output folder are checked before the model loads
    check_output_folder(args.out, [name for _, name, _ in plans], args.overwrite)
    model = DVLT(img_size=args.img_size, inference_steps=args.steps, precision=args.precision)
    model.load_pretrained(args.checkpoint, strict=True)
    model.setup_test(args.device)
    options = SceneOptions(
        conf_percentile=args.conf_percentile,
        max_points=args.max_points,
        mask_black=args.mask_background in ("black", "both"),
        mask_white=args.mask_background in ("white", "both"),
    )
    failures = []
    for text, name, source in tqdm(plans, desc="inputs", unit="input", disable=not show or len(plans) == 1):
        try:
            _, frames = load_sequence(
                source, fps=args.fps, max_frames=args.max_frames, num_frames=args.num_frames, max_side=args.img_size
            )
            for note in frames.notes:
                print(f"warning: {text}: {note}", file=sys.stderr)
            with tqdm(
                total=100, desc=f"{name} ({len(frames)} views, K={args.steps})", unit="%", disable=not show, leave=True
            ) as bar:

                def progress(fraction: float, message: str) -> None:
                    bar.set_postfix_str(message, refresh=False)
                    bar.update(round(fraction * 100) - bar.n)

                start = time.perf_counter()
                rec = reconstruct(model, frames, steps=args.steps, name=name, progress=progress)
                with scene_folder(args.out / name) as folder:
                    written = export_all(rec, folder, args.formats, options)
                written = {kind: args.out / name / Path(path).relative_to(folder) for kind, path in written.items()}
            if show:
                tqdm.write(
                    f"{name}: {len(frames)} views in {time.perf_counter() - start:.1f} s -> "
                    + ", ".join(str(p) for p in written.values())
                )
        except (DVLTError, OSError, ValueError) as error:
            failures.append(f"{text}: {error}")
            print(f"error: {text}: {error}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    warnings.simplefilter("default")
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

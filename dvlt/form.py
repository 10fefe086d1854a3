"""The Space's inputs as a form: their defaults, and what they become after an example, a new upload or Clear.

An example fills the upload and its settings (small, fast ones on a CPU). A photo
uploaded afterwards must not join the example's files (Gradio's file box appends),
and the example's settings go back to the defaults unless the user changed them since.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import limits

SAMPLE_BY_FPS, SAMPLE_BY_COUNT = "frames per second", "number of frames"  # the "Sample by" choices
# Every input's default, in one place: the components start from these and Clear returns to them.
DEFAULTS: dict[str, Any] = {
    "mode": SAMPLE_BY_FPS,
    "fps": limits.FPS_DEFAULT,
    "count": limits.SAMPLE_COUNT_DEFAULT,
    "long_clip": False,
    "reference": 0,
    "auto_reference": True,
    "steps": limits.STEPS_DEFAULT,
    "resolution": limits.RESOLUTION_DEFAULT,
}
EXAMPLE_SETTINGS = ("mode", "fps", "count", "reference", "steps", "resolution")  # what an example sets with files


@dataclass(frozen=True)
class ExampleFill:
    """What a clicked example put into the form: its files (as the file box holds them) and its settings."""

    files: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)


def file_path(item: Any) -> str:
    """The server path of one file-box item (a path string, or Gradio's FileData / dict)."""
    if isinstance(item, Mapping):
        return str(item.get("path"))
    return str(getattr(item, "path", item))


def remember_example(files: Sequence[Any] | None, settings: Mapping[str, Any]) -> ExampleFill:
    """The example just loaded, so that a later upload can take its place."""
    return ExampleFill(tuple(file_path(f) for f in files or ()), {k: settings[k] for k in EXAMPLE_SETTINGS})


def _same(a: Any, b: Any) -> bool:
    """Setting values equal as the form compares them (a slider gives 2 or 2.0, a radio 252 or '252')."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def mixed_with_example(files: Sequence[Any] | None, example: ExampleFill | None) -> bool:
    """True for the moment an upload has joined an example's files, before `after_upload` separates them."""
    if example is None:
        return False
    paths = {file_path(f) for f in files or ()}
    return bool(paths & set(example.files)) and bool(paths - set(example.files))


def after_upload(
    files: Sequence[Any] | None, example: ExampleFill | None, settings: Mapping[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """The files and settings after the user uploaded into a form an example had filled: the example's files
    leave (only the user's stay) and each setting the example set returns to its default unless the user has
    changed it since; without an example before it, the upload and the settings stay as they are."""
    paths = [file_path(f) for f in files or ()]
    if example is None:
        return paths, dict(settings)
    theirs = set(example.files)
    kept = [path for path in paths if path not in theirs]
    reset = {
        name: DEFAULTS[name] if name in example.settings and _same(value, example.settings[name]) else value
        for name, value in settings.items()
    }
    return kept, reset

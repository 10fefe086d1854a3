"""The command line as a user meets it: DVLT_CHECKPOINT, one device line, one progress bar, one-line K and errors."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ALOE, ROOT


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "dvlt", *args],
        cwd=ROOT,
        capture_output=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "100", **(env or {})},
    )
    # decoded by hand: text mode would turn the bar's carriage returns into new lines
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    return result


def visible_lines(stream: str) -> list[str]:
    """What stays on a terminal: for each line, the text after its last carriage return, blanks dropped."""
    return [line.split("\r")[-1].strip() for line in stream.split("\n") if line.split("\r")[-1].strip()]


def test_checkpoint_from_env_one_device_line_one_warning_for_k_and_a_clean_bar(checkpoint_dir, tmp_path):
    result = run_cli(
        "reconstruct",
        str(ALOE),
        "--out",
        str(tmp_path),
        "--steps",
        "17",
        "--img-size",
        "252",
        "--formats",
        "npz",
        env={"DVLT_CHECKPOINT": str(checkpoint_dir)},  # no --checkpoint: the variable is used, as in the app
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "aloe" / "predictions.npz").is_file()
    lines = visible_lines(result.stderr)
    assert len(lines) == 2, lines  # no stray progress lines, no Python warning source lines
    assert lines[0] == "warning: K=17 is outside the validated range 8-16; quality may drop."
    assert lines[1].startswith("dvlt: CPU") and "thread" in lines[1] and ("fp32" in lines[1] or "bf16" in lines[1])
    assert "%" in result.stderr  # the progress bar was drawn (and then cleared)
    assert visible_lines(result.stdout)[-1].startswith("aloe: 2 views in ")


def test_a_missing_input_is_one_line_naming_its_path_once(checkpoint_dir, tmp_path):
    missing = tmp_path / "no-such-folder"
    result = run_cli(
        "reconstruct",
        str(missing),
        "--out",
        str(tmp_path / "o"),
        "--quiet",
        "--img-size",
        "252",
        env={"DVLT_CHECKPOINT": str(checkpoint_dir)},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].count(str(missing)) == 1, lines

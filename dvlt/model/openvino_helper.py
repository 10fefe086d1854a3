"""Convert one part of the network to OpenVINO IR in a second process, while the first converts the others.

Conversion is mostly torch's graph decompositions, in Python and process-global (two threads fail inside
torch), so a fresh start overlaps the slowest part (the depth head, 11 of 38 s on a 2-core AMD EPYC) with the rest
in a helper process. The helper gets the model's config and the weights that part reads, exports and converts
it, and writes `<part>.xml`; on any failure the caller converts the part itself.

    python -m dvlt.model.openvino_helper JOB.pt FOLDER
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import warnings
from pathlib import Path

import torch

from .config import DVLTConfig
from .network import DVLT

HELPER_PARTS = ("depth",)  # the part converted beside the others (see the module docstring)
HELPER_TIMEOUT_S = 600.0


def part_weights(model: DVLT, part: str) -> dict[str, torch.Tensor]:
    """The model's tensors a part reads (its module's state, by model key)."""
    prefix = {"depth": "depth_decoder."}[part]
    return {key: value for key, value in model.state_dict().items() if key.startswith(prefix)}


def start_helper(model: DVLT, part: str, folder: Path) -> subprocess.Popen | None:
    """Start converting `part` of `model` into `folder/<part>.xml` in a new process; None where it cannot start."""
    job = folder / f"{part}.helper.pt"
    try:
        spec = {"config": dataclasses.asdict(model.config), "part": part, "weights": part_weights(model, part)}
        torch.save(spec, job)
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (package_root, os.environ.get("PYTHONPATH"))))}
        command = [sys.executable, "-m", "dvlt.model.openvino_helper", str(job), str(folder)]
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError:
        job.unlink(missing_ok=True)
        return None


def finish_helper(helper: subprocess.Popen | None, part: str, folder: Path) -> bool:
    """Wait for a helper; True when it wrote its part. A failed or hung helper is stopped, warned of, and False."""
    if helper is None:
        return False
    try:
        _, errors = helper.communicate(timeout=HELPER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop_helper(helper)
        errors = b"timed out"
    finally:
        (folder / f"{part}.helper.pt").unlink(missing_ok=True)
    if helper.returncode == 0 and (folder / f"{part}.xml").is_file():
        return True
    last = (errors or b"").decode(errors="replace").strip().splitlines()[-1:]
    message = f"converting the {part} part in a helper process failed ({' '.join(last)}); converting it here"
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return False


def stop_helper(helper: subprocess.Popen | None) -> None:
    """Stop a helper that is no longer wanted (the caller failed or was interrupted)."""
    if helper is not None and helper.poll() is None:
        helper.kill()
        helper.communicate()


def main(job: str, folder: str) -> None:
    """Export and convert the part described by `job` (written by `start_helper`) into `folder/<part>.xml`."""
    from .openvino_parts import write_parts

    torch.set_num_threads(1)  # the first process converts beside this one
    spec = torch.load(job, weights_only=True)
    with torch.device("meta"):
        model = DVLT(config=DVLTConfig(**spec["config"]), backend="torch")
    model.load_state_dict(spec["weights"], strict=False, assign=True)
    write_parts(model, (spec["part"],), Path(folder))


if __name__ == "__main__":
    main(*sys.argv[1:3])

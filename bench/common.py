"""What the benchmarks share: import paths, the example clip, the scene options, a model with synthetic weights."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "tests" / "golden"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from synthetic_weights import synthetic_state_dict  # noqa: E402

from dvlt.model import DVLT  # noqa: E402
from dvlt.scene import SceneOptions  # noqa: E402

CLIP = ROOT / "examples" / "box.mp4"
# The synthetic weights' depth is noise, so the flying-pixel filter would drop nearly every point; real weights
# keep most of them. Scenes here keep every point the other filters keep, as a real run's scene would.
SCENE = SceneOptions(drop_edges=False)


def synthetic_checkpoint() -> Path:
    """A folder with the synthetic weights as model.safetensors, written once per machine (the temp folder)."""
    folder = Path(tempfile.gettempdir()) / "dvlt-bench-synthetic"
    path = folder / "model.safetensors"
    if not path.is_file():
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"model.{os.getpid()}.partial"
        save_file(synthetic_state_dict(), str(partial))
        partial.replace(path)
    return folder


def synthetic_model(precision: str = "fp32", device: str = "cpu", **config) -> DVLT:
    """DVLT with the deterministic synthetic weights of tests/golden (speed does not depend on weight values),
    read from a checkpoint file through `load_pretrained`, as users load the released weights."""
    model = DVLT(precision=precision, **config)
    model.load_pretrained(str(synthetic_checkpoint()))
    return model.setup_test(device)

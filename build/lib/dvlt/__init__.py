"""DVLT Studio: photos or a short video in, cameras + depth + a 3D point cloud out.

    from dvlt import DVLT, load_sequence, preprocess_images
    model = DVLT().load_pretrained("nvidia/dvlt") ...

See README.md for the full tour (API, CLI, exports, the Space). Names are imported
lazily, so `import dvlt.export` (or `dvlt.records`) does not load torch or the network.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CheckpointUnavailableError,
    DVLTError,
    EmptyInputError,
    ImageTooLargeError,
    InputError,
    MixedSizesError,
    StepsError,
    TooManyFramesError,
    UnsupportedFileError,
)

__version__ = "0.2.0"

# public name -> module that defines it (imported on first use)
_LAZY = {
    "DVLT": ".model",
    "DVLTConfig": ".model.config",
    "Cameras": ".cameras",
    "load_sequence": ".inputs",
    "preprocess_images": ".preprocess",
    "Reconstruction": ".records",
    "ViewTransform": ".records",
}


def __getattr__(name: str) -> Any:
    """Import heavy names (torch, the network) only when asked for."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dvlt' has no attribute {name!r}")


__all__ = [
    *_LAZY,
    "DVLTError",
    "InputError",
    "UnsupportedFileError",
    "EmptyInputError",
    "TooManyFramesError",
    "ImageTooLargeError",
    "MixedSizesError",
    "StepsError",
    "CheckpointError",
    "CheckpointNotFoundError",
    "CheckpointUnavailableError",
    "CheckpointMismatchError",
]

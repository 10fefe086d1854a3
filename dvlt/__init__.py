"""DVLT Studio: photos or a short video in, cameras + depth + a 3D point cloud out.

    from dvlt import DVLT, load_sequence, preprocess_images
    model = DVLT().load_pretrained("nvidia/dvlt") ...

See README.md for the full tour (API, CLI, exports, the Space).
"""

from .cameras import Cameras
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
from .inputs import load_sequence
from .model import DVLT, DVLTConfig
from .preprocess import preprocess_images

__version__ = "0.1.0"

__all__ = [
    "DVLT",
    "DVLTConfig",
    "Cameras",
    "load_sequence",
    "preprocess_images",
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

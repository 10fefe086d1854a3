"""Every limit and default the app and CLI enforce, in one place (the UI shows them)."""

from __future__ import annotations

from .inputs import DEFAULT_FPS, DEFAULT_MAX_PIXELS
from .model.config import DEFAULT_STEPS, VALIDATED_STEPS

STEPS_MIN, STEPS_MAX = VALIDATED_STEPS  # UI slider range for K
STEPS_DEFAULT = DEFAULT_STEPS
RESOLUTIONS = (504, 378, 252)  # longest side; 504 is what the checkpoint was trained at
RESOLUTION_DEFAULT = 504
FPS_DEFAULT = DEFAULT_FPS
FPS_MAX = 10.0
MAX_VIEWS_CPU = 16  # a 2-vCPU Space needs ~1.5 s per view at 504 px
MAX_VIEWS_GPU = 64
CLI_MAX_FRAMES = 32  # the CLI's cap on views per input (on CPU videos are thinned further to fit about a minute)
MAX_UPLOAD_FILES = 200  # files in one upload (before sampling)
MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
MAX_VIDEO_SECONDS = 300
POINTS_DEFAULT = 300_000  # GLB point budget: ~5 MB
POINTS_MAX = 2_000_000
CONF_PERCENTILE_DEFAULT = 20.0  # drop the least confident 20% of pixels


def max_views(device_type: str) -> int:
    """The view cap for the device the model runs on."""
    return MAX_VIEWS_GPU if device_type == "cuda" else MAX_VIEWS_CPU

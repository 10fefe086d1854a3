"""Every limit and default the app and CLI enforce, in one place (the UI and README show them)."""

from __future__ import annotations

from .model.config import DEFAULT_STEPS, VALIDATED_STEPS

STEPS_MIN, STEPS_MAX = VALIDATED_STEPS  # UI slider range for K
STEPS_DEFAULT = DEFAULT_STEPS
STEPS_HARD_MAX = 64  # CLI/API: above this a run takes hours for no gain (trained for 8-16)
RESOLUTIONS = (504, 378, 252)  # longest side; 504 is what the checkpoint was trained at
RESOLUTION_DEFAULT = 504
IMG_SIZE_MAX = 1022  # CLI --img-size: 73 patches a side; attention memory grows with the fourth power of the side
FPS_DEFAULT = 2.0
FPS_MAX = 10.0
MAX_VIEWS_CPU = 16  # a 2-vCPU Space needs ~1.5 s per view at 504 px
MAX_VIEWS_GPU = 64
CLI_MAX_FRAMES = 32  # the CLI's cap on views per input (on CPU videos are thinned further to fit about a minute)
MAX_UPLOAD_FILES = 200  # files in one upload (before sampling)
MAX_UPLOAD_MB = 500  # one uploaded file (Gradio's max_file_size)
MAX_IMAGE_PIXELS = 50_000_000  # per photo or video frame; read from the header, before decoding
MIN_IMAGE_SIDE = 14  # one patch: anything smaller carries no usable pixels
MAX_ASPECT_RATIO = 10  # longer side / shorter side; beyond it the short side vanishes at 252 px
MAX_VIDEO_SECONDS = 300
VIDEO_MAX_FPS = 240  # packets per second counted at most while a clip is checked against MAX_VIDEO_SECONDS
VIDEO_FRAME_MAX_SIDE = 1920  # video frames are downscaled to this longest side as they are decoded
CONCURRENT_DECODES = 2  # uploads decoded at once across all sessions (each holds at most one full-size photo)
DECODE_WAIT_S = 60.0  # how long a request waits for a decode slot before it is told the server is busy
POINTS_DEFAULT = 300_000  # GLB point budget: ~5 MB
POINTS_MAX = 2_000_000
CONF_PERCENTILE_DEFAULT = 20.0  # drop the least confident 20% of pixels
SESSION_IDLE_S = 15 * 60  # a session's outputs are deleted after this long without a request
SESSION_SWEEP_EVERY_S = 60  # how often the clean-up timer looks
SESSION_DISK_MB = 1024  # outputs one session may keep on disk


def max_views(device_type: str) -> int:
    """The view cap for the device the model runs on."""
    return MAX_VIEWS_GPU if device_type == "cuda" else MAX_VIEWS_CPU


DROP_EDGES_DEFAULT = True  # drop flying pixels on depth discontinuities (dvlt.edges)
FRUSTUM_SCALE_DEFAULT = 0.08  # camera marker depth as a fraction of the scene radius
FRUSTUM_SCALE_MAX = 0.5

# Long clips (dvlt/windows.py): more sampled frames than one pass are reconstructed in overlapping
# windows of max_views() frames, aligned by Sim(3); memory stays that of one window.
MAX_CLIP_FRAMES_CPU = 64
MAX_CLIP_FRAMES_GPU = 1000
WINDOW_OVERLAP_DEFAULT = 4  # frames shared by consecutive windows (a quarter of a 16-view window)


def max_clip_frames(device_type: str) -> int:
    """The most frames a long clip may have on this device (the app's cap in long-clip mode)."""
    return MAX_CLIP_FRAMES_GPU if device_type == "cuda" else MAX_CLIP_FRAMES_CPU


SAMPLE_COUNT_DEFAULT = 8  # "number of frames" sampling of a video

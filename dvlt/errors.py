"""Exceptions raised by the dvlt package.

Every error a user can cause has its own class so callers (the app, the CLI,
scripts) can catch precisely what they expect and show the message as is:
messages say what went wrong and how to fix it.
"""

from __future__ import annotations


class DVLTError(Exception):
    """Base class of every error raised on purpose by dvlt."""


# ----------------------------------------------------------------- inputs
class InputError(DVLTError, ValueError):
    """The photos or video given to reconstruct cannot be used."""


class UnsupportedFileError(InputError):
    """A file is not an image or video we can decode (wrong type, truncated, corrupt)."""


class EmptyInputError(InputError):
    """Nothing to reconstruct: no files, an empty folder, or a video without frames."""


class TooManyFramesError(InputError):
    """More views than the configured limit."""


class ImageTooLargeError(InputError):
    """An image has more pixels than the configured limit."""


class ImageTooSmallError(InputError):
    """An image is smaller than one model patch, or too thin to keep a patch after resizing."""


class VideoTooLongError(InputError):
    """A video runs longer than the configured limit (by its header or by its timestamps)."""


class MixedSizesError(InputError):
    """Views differ in size or orientation and mixing was not allowed."""


class StepsError(DVLTError, ValueError):
    """The loop count K is not a usable integer."""


class OptionError(DVLTError, ValueError):
    """An option (resolution, frame rate, output folder, ...) is out of range or unusable."""


class ServerBusyError(DVLTError):
    """Every decode slot is taken by other requests; the user should retry shortly."""


class DiskFullError(DVLTError, OSError):
    """The disk filled up while writing results; nothing partial was kept."""


class PhotosUnavailableError(DVLTError):
    """The full-size uploads a download needs have already been deleted from the server."""


class DeviceUnavailableError(DVLTError, RuntimeError):
    """The requested device (e.g. CUDA) is not available on this machine."""


# ------------------------------------------------------------- checkpoints
class CheckpointError(DVLTError):
    """Weights could not be found, fetched or matched to the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path, directory entry or Hub file does not exist."""


class CheckpointUnavailableError(CheckpointError, ConnectionError):
    """The checkpoint is remote, not cached, and the network cannot deliver it."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """The checkpoint's keys or shapes do not match the DVLT layout."""


class OutputDirError(DVLTError):
    """The server's output folder (DVLT_OUTPUT_DIR) cannot be written: runs are refused with this message."""

"""One process-wide budget for decoding uploads, so concurrent requests cannot multiply peak memory.

Each request that decodes photos or a clip holds one of `limits.CONCURRENT_DECODES`
slots for the whole decode; a request that cannot get one within
`limits.DECODE_WAIT_S` is told the server is busy instead of queueing forever.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from . import limits
from .errors import ServerBusyError

_SLOTS = threading.BoundedSemaphore(limits.CONCURRENT_DECODES)


@contextmanager
def decode_slot(wait_s: float = limits.DECODE_WAIT_S) -> Iterator[None]:
    """Hold one decode slot for the duration of the block, or raise ServerBusyError."""
    if not _SLOTS.acquire(timeout=wait_s):
        raise ServerBusyError("The server is busy decoding other uploads right now. Please try again in a minute.")
    try:
        yield
    finally:
        _SLOTS.release()


def return_memory() -> None:
    """Hand freed heap memory back to the operating system after a request (glibc keeps it otherwise)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to do
            pass

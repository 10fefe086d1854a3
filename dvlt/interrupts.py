"""Holding Ctrl-C (SIGINT) across short critical steps without ever losing or delaying it.

CPython's C-level handler only marks a signal as arrived; the Python handler runs later, at the main thread's next
check, and it is whichever handler is installed *then*. So a recording handler swapped in for a block and swapped
out again can see its signal handled by the restored handler after the block (a late KeyboardInterrupt, raised
anywhere), and a KeyboardInterrupt raised inside a `__del__` is printed and dropped. Here one handler stays
installed and decides when it runs: held while any block is open, passed on to the previous handler otherwise.
Leaving a block first re-installs the same handler, which makes CPython run every signal already arrived (it does
so before changing a handler), so nothing that came during the block is handled after it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class InterruptHold:
    """The process's SIGINT handler while DVLT holds interrupts: records each, raises it outside held blocks."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback  # the handler this one replaced: what an interrupt does outside held blocks
        self.depth = 0  # open held blocks
        self.held = False  # an interrupt arrived inside a block and is still to be raised
        self.received = 0  # interrupts seen, held or not: a caller can tell one was swallowed by a __del__

    def __call__(self, number: int, frame: FrameType | None) -> None:
        self.received += 1
        if self.depth:
            self.held = True
        else:
            self.pass_on(number, frame)

    def pass_on(self, number: int, frame: FrameType | None) -> None:
        """Do what the replaced handler does; Python's default (or none known) raises KeyboardInterrupt."""
        if callable(self.fallback):
            self.fallback(number, frame)
        elif self.fallback != signal.SIG_IGN:
            raise KeyboardInterrupt


def installed_hold() -> InterruptHold | None:
    """The process's InterruptHold, installed on first use; None outside the main thread (Python runs no handlers
    there) and where SIGINT is ignored (started by `nohup` or as a background job: there is nothing to hold)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    current = signal.getsignal(signal.SIGINT)
    if isinstance(current, InterruptHold):
        return current
    if current == signal.SIG_IGN:
        return None
    hold = InterruptHold(current)
    signal.signal(signal.SIGINT, hold)  # CPython runs any already-arrived signal with `current` first
    return hold


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block is done; an interrupt that came meanwhile is raised as the block ends."""
    hold = installed_hold()
    if hold is None:
        yield
        return
    hold.depth += 1
    try:
        yield
    finally:
        try:
            if signal.getsignal(signal.SIGINT) is hold:
                signal.signal(signal.SIGINT, hold)  # flush: signals arrived at C level run now, while still held
        finally:  # another signal's handler may raise in the flush: the block still closes, or Ctrl-C stays held
            hold.depth -= 1
            if hold.depth == 0 and hold.held:
                hold.held = False
                hold.pass_on(signal.SIGINT, None)


def interrupts_received() -> int:
    """How many SIGINTs the hold has seen in this process (0 when it was never installed)."""
    current = signal.getsignal(signal.SIGINT)
    return current.received if isinstance(current, InterruptHold) else 0


def raise_if_interrupted(since: int) -> None:
    """Raise KeyboardInterrupt if a SIGINT came after `since` (an interrupts_received() count): a Ctrl-C that a
    library turned into another error, or that a `__del__` swallowed, still stops the run at once."""
    if interrupts_received() > since:
        raise KeyboardInterrupt

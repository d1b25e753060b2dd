"""Ctrl-C and SIGTERM during training: finish the current step, save last.pt, then stop.

A kill mid-step would leave the networks and optimisers half updated, and saving that would corrupt
the run; so the signal only raises a flag, and the loop turns it into KeyboardInterrupt between
steps, where everything is consistent.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any


class StopRequests:
    """While active, SIGINT/SIGTERM only set a flag the loop checks between steps; a second Ctrl-C
    interrupts at once. Handlers can only be installed from the main thread; elsewhere the loop
    falls back to Python's KeyboardInterrupt."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError, OSError):
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, handler)


__all__ = ["StopRequests"]

"""SIGINT and SIGTERM as an exception in the main thread, so that a run stops cleanly and says so.

:class:`Interrupted` is a ``BaseException``, like ``KeyboardInterrupt``: coffea and the executors
catch ``Exception`` on the way and must not swallow it. The exit code is 128 + the signal
number: 130 for Ctrl-C, 143 for SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(Exception):
    """A run stopped by a signal after writing its partial summary: one line and ``exit_code``."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(BaseException):
    """A stop signal arrived."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(self.name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block the first SIGINT or SIGTERM raises :class:`Interrupted`; further ones are
    ignored while the run cancels its work and writes its partial summary."""

    def stop(signum, frame):
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, stop) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def workers_ignore_ctrl_c() -> Iterator[None]:
    """Processes started within the block inherit an ignored SIGINT.

    A Ctrl-C at the terminal reaches every process of the group; the run stops its workers
    itself, and Dask workers hit by it would print tracebacks of their own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal dispositions can be changed only from the main thread
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

"""Ctrl-C, SIGTERM and SIGHUP around lab building: raised where clean-up can run, or held
back across a step that must not be cut (a fork and its record)."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any

from lsr.errors import Interrupted

ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _interrupted(signum: int) -> KeyboardInterrupt:
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return Interrupted(signum, signal.Signals(signum).name)


@contextlib.contextmanager
def signals_interrupt() -> Any:
    """SIGTERM and SIGHUP raise `Interrupted` in the main thread for the block, as Ctrl-C
    raises KeyboardInterrupt, so the block's clean-up runs (their default ends the process
    on the spot, leaving a half-built lab). Elsewhere than the main thread: nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_(signum: int, frame: Any) -> None:
        raise _interrupted(signum)

    old = {s: signal.signal(s, raise_) for s in ENDING_SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def signals_held(deliver: bool = True) -> Any:
    """Hold Ctrl-C, SIGTERM and SIGHUP back until the block is done, then raise the first
    (`deliver`) or drop them. Around fork() + recording the router: raised inside fork(),
    the interpreter's at-fork hooks swallowed it ("Exception ignored") and `up` went on
    waiting; raised between fork() and add_pid, it would orphan a router. (A Python-level
    handler, not a signal mask: the signal may be taken by another thread, e.g. the
    progress display's, and only flag the main one.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit: list[int] = []
    sigs = (signal.SIGINT, *ENDING_SIGNALS)
    old = {s: signal.signal(s, lambda signum, frame: hit.append(signum)) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if hit and deliver:
            raise _interrupted(hit[0])

"""Bounded router logs: repeated lines rate-limited, the file's size capped.

A router under attack (a Hello flood, file descriptors run out, malformed packets)
must not write a line -- let alone a traceback -- per packet: its log lives in
/run, which is memory. Two pieces, both installed by `install`:

* `RateLimit`, a logging filter: records are grouped by a key (logger, level and
  the message's first line with its numbers blanked, so "new neighbor 11.2.3.4" and
  "new neighbor 11.9.8.7" are one key); each key passes `burst` times per `interval`
  seconds, the rest are counted, and the next record of that key after the window (or
  `flush`, which the router calls every interval) says "suppressed K similar". Within a
  window only the first record of a key keeps its traceback; repeats keep the first line
  and the exception line. The record that reaches the burst says that more like it will
  be suppressed, and for how long.
* `CappedStream`, the handler's stream: once the log file (the router's stdout and
  stderr, `<router>.log`) passes `max_bytes` it is rotated to `<router>.log.1` (one old
  generation) and a marker line starts the new file; if no file can be opened (no file
  descriptors left) the file is truncated instead, with the same marker.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

LOG_BURST = 20  # records a key may log per interval
LOG_INTERVAL = 60.0  # s
LOG_MAX_BYTES = 1 << 20  # per log file; one rotated generation besides: <= 2 MiB a router
_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")
_TB = "Traceback (most recent call last):"


def log_key(record: logging.LogRecord) -> str:
    """What makes two records "similar": logger, level, first line without its numbers."""
    first = record.getMessage().split("\n", 1)[0]
    return f"{record.name}:{record.levelno}:{_NUMBERS.sub('#', first)[:160]}"


def _short_traceback(text: str) -> str:
    """A traceback's first line and its exception line: "... (traceback as before)"."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    head = lines[0] if lines else ""
    tail = lines[-1].strip() if len(lines) > 1 else ""
    return f"{head} {tail} (traceback as before)" if tail else head


class RateLimit(logging.Filter):
    """At most `burst` records per key per `interval` s; counts what it holds back."""

    def __init__(self, burst: int = LOG_BURST, interval: float = LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.windows: dict[str, list[Any]] = {}  # key -> [start, passed, suppressed]
        self.suppressed = 0  # in total, for the runtime's counters

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        key = log_key(record)
        w = self.windows.get(key)
        if w is None or now - w[0] >= self.interval:
            held = w[2] if w is not None else 0
            self.windows[key] = [now, 1, 0]
            if held:
                record.msg = f"{record.getMessage()} [suppressed {held} similar before this]"
                record.args = ()
            if len(self.windows) > 4096:  # keys are bounded by the code's messages; be sure
                self._expire(now)
            return True
        if w[1] < self.burst:
            w[1] += 1
            self._shorten(record)
            return True
        if w[1] == self.burst:  # the first one over: say so, once, then hold back
            w[1] += 1
            self._shorten(record, force=True)
            record.msg = (f"{record.getMessage()} [more like this suppressed for "
                          f"{w[0] + self.interval - now:.0f} s]")
            return True
        w[2] += 1
        self.suppressed += 1
        return False

    def _shorten(self, record: logging.LogRecord, force: bool = False) -> None:
        """A repeat within the window: no second traceback of the same failure (nor a
        first one, `force`, on the line that announces the suppression)."""
        if record.exc_info:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc}; traceback as before)"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            return
        text = record.getMessage()
        if _TB in text:
            record.msg = _short_traceback(text)
            record.args = ()
        elif force:
            record.msg, record.args = text, ()

    def _expire(self, now: float) -> None:
        for k, w in list(self.windows.items()):
            if now - w[0] >= self.interval and not w[2]:
                del self.windows[k]

    def flush(self, logger: logging.Logger) -> None:
        """Report keys whose window has ended with records held back: one line each."""
        now = self.clock()
        for key, w in sorted(self.windows.items()):
            if now - w[0] >= self.interval and w[2]:
                held, w[2] = w[2], 0
                w[0], w[1] = now, 1
                name, _, rest = key.partition(":")
                logger.warning("suppressed %d similar: %s", held, rest.partition(":")[2])
        self._expire(now)


class CappedStream:
    """A text stream over the log file (fd 2) that rotates it past `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES,
                 stream: TextIO | None = None, also: tuple[int, ...] = ()) -> None:
        """`stream` (stderr) writes to `path`; `also`: more fds on the same file (stdout),
        moved to the new file with it on rotation."""
        self.path = path
        self.max_bytes = max_bytes
        self.stream = stream or sys.stderr
        self.also = also
        self.rotations = 0
        self.truncations = 0

    def write(self, text: str) -> int:
        n = self.stream.write(text)
        self.stream.flush()
        try:
            size = os.fstat(self.stream.fileno()).st_size
        except (OSError, ValueError):
            return n
        if size > self.max_bytes:
            self._cap(size)
        return n

    def flush(self) -> None:
        self.stream.flush()

    def _ours(self, fd: int) -> bool:
        """`fd` is the file at `path` (not a terminal, nor a file someone else gave us)."""
        try:
            a, b = os.fstat(fd), os.stat(self.path)
        except OSError:
            return False
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    def _cap(self, size: int) -> None:
        fd = self.stream.fileno()
        if not self._ours(fd):
            return
        targets = {fd, *(t for t in self.also if self._ours(t))}
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            old = self.path.with_name(self.path.name + ".1")
            new = os.open(self.path.with_name(self.path.name + ".new"),
                          os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC
                          | os.O_NOFOLLOW, 0o600)
        except OSError:  # no fd left, say: keep the file, start it again
            os.ftruncate(fd, 0)
            self.truncations += 1
            self.stream.write(f"{stamp} log truncated: it had reached {size} bytes "
                              f"(cap {self.max_bytes}; LSR_LOG_BYTES)\n")
            self.stream.flush()
            return
        try:
            os.replace(self.path, old)
            os.replace(self.path.with_name(self.path.name + ".new"), self.path)
            for target in targets:
                os.dup2(new, target)
        finally:
            os.close(new)
        self.rotations += 1
        self.stream.write(f"{stamp} log rotated: the previous {size} bytes are in {old.name} "
                          f"(cap {self.max_bytes}; LSR_LOG_BYTES)\n")
        self.stream.flush()


def install(path: Path | None, fmt: str, level: int, max_bytes: int | None = None,
            burst: int = LOG_BURST, interval: float = LOG_INTERVAL) -> RateLimit:
    """The root logger's one handler: rate-limited, onto a size-capped `path` (stderr)."""
    if max_bytes is None:
        max_bytes = int(os.environ.get("LSR_LOG_BYTES") or LOG_MAX_BYTES)
    stream: Any = CappedStream(path, max_bytes, also=(1,)) if path is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt))
    limit = RateLimit(burst, interval)
    handler.addFilter(limit)
    root = logging.getLogger()
    for h in root.handlers[:]:
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    return limit

"""Router logs under attack (lsr.lab.logcap): repeated lines are rate-limited with a
"suppressed K similar" report, a traceback is not repeated, and the file is capped."""

from __future__ import annotations

import io
import logging
import os

from lsr.lab.logcap import CappedStream, RateLimit, log_key


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def logger_with(limit: RateLimit, stream) -> logging.Logger:
    lg = logging.getLogger(f"test.logcap.{id(limit)}")
    lg.propagate = False
    lg.handlers.clear()
    h = logging.StreamHandler(stream)
    h.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    h.addFilter(limit)
    lg.addHandler(h)
    lg.setLevel(logging.DEBUG)
    return lg


def test_similar_lines_share_a_key():
    def rec(msg, *args):
        return logging.LogRecord("lsr.node", logging.INFO, __file__, 1, msg, args, None)

    assert log_key(rec("new neighbor %s on %s", "11.2.3.4", "eth1")) == \
        log_key(rec("new neighbor %s on %s", "11.9.8.7", "eth12"))
    assert log_key(rec("new neighbor 1")) != log_key(rec("session 1 down"))


def test_rate_limit_then_suppressed_report():
    clock = Clock()
    limit = RateLimit(burst=5, interval=60, clock=clock)
    out = io.StringIO()
    lg = logger_with(limit, out)
    for k in range(10_000):  # a line per packet
        lg.info("new neighbor 11.0.%d.%d on eth1", k // 256, k % 256)
    lg.warning("something else")
    lines = out.getvalue().splitlines()
    assert len(lines) == 7 and limit.suppressed == 9_994
    assert lines[5] == "INFO new neighbor 11.0.0.5 on eth1 [more like this suppressed for 60 s]"
    clock.t = 61
    limit.flush(lg)
    assert out.getvalue().splitlines()[-1] == \
        "WARNING suppressed 9994 similar: new neighbor #.#.#.# on eth#"
    lg.info("new neighbor 11.1.1.1 on eth1")  # a new window
    assert out.getvalue().splitlines()[-1] == "INFO new neighbor 11.1.1.1 on eth1"


def test_report_on_the_next_line_without_flush():
    clock = Clock()
    limit = RateLimit(burst=1, interval=10, clock=clock)
    out = io.StringIO()
    lg = logger_with(limit, out)
    for _ in range(4):
        lg.info("x 1")
    clock.t = 11
    lg.info("x 2")
    assert out.getvalue().splitlines() == [
        "INFO x 1", "INFO x 1 [more like this suppressed for 10 s]",
        "INFO x 2 [suppressed 2 similar before this]"]


def test_one_traceback_per_window():
    clock = Clock()
    limit = RateLimit(burst=3, interval=60, clock=clock)
    out = io.StringIO()
    lg = logger_with(limit, out)
    for _ in range(1000):
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            lg.exception("socket.accept() out of system resource")
    text = out.getvalue()
    assert text.count("Traceback (most recent call last)") == 1
    assert text.count("traceback as before") == 3  # the last one announces the suppression
    assert len(text.splitlines()) < 12 and limit.suppressed == 996


def test_formatted_traceback_in_the_message_is_shortened_too():
    limit = RateLimit(burst=3, interval=60, clock=Clock())
    out = io.StringIO()
    lg = logger_with(limit, out)
    tb = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad"
    for _ in range(3):
        lg.error("ldp.handle(%s) failed:\n%s", "TcpData", tb)
    lines = out.getvalue().splitlines()
    assert lines[-1] == "ERROR ldp.handle(TcpData) failed: ValueError: bad (traceback as before)"
    assert out.getvalue().count("Traceback") == 1


def test_capped_stream_rotates(tmp_path):
    path = tmp_path / "r.log"
    f = open(path, "a", buffering=1)  # noqa: SIM115
    try:
        s = CappedStream(path, max_bytes=1000, stream=f)
        for k in range(200):
            s.write(f"line {k:04d} " + "x" * 40 + "\n")
        assert s.rotations >= 9
        old = tmp_path / "r.log.1"
        assert path.stat().st_size <= 1000 + 60 + 120  # the cap, a line, the marker
        assert old.stat().st_size <= 1000 + 60 + 120
        assert "log rotated" in path.read_text().splitlines()[0]
        assert "line 0199" in old.read_text() + path.read_text()  # the newest lines are kept
        assert os.fstat(f.fileno()).st_ino == path.stat().st_ino  # writes follow the rename
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.log", "r.log.1"]
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    finally:
        f.close()


def test_capped_stream_truncates_without_a_free_fd(tmp_path, monkeypatch):
    path = tmp_path / "r.log"
    f = open(path, "a", buffering=1)  # noqa: SIM115
    try:
        s = CappedStream(path, max_bytes=500, stream=f)

        def no_fd(*a, **k):
            raise OSError(24, "Too many open files")

        monkeypatch.setattr(os, "open", no_fd)
        for k in range(100):
            s.write(f"line {k:04d} " + "x" * 40 + "\n")
        assert s.truncations >= 8 and s.rotations == 0
        assert path.stat().st_size <= 500 + 60 + 120
        assert "log truncated" in path.read_text().splitlines()[0]
    finally:
        f.close()


def test_not_our_file_is_left_alone(tmp_path):
    path = tmp_path / "r.log"
    other = io.StringIO()
    other.fileno = lambda: 1  # type: ignore[method-assign]  # e.g. a terminal, not `path`
    s = CappedStream(path, max_bytes=10, stream=other)
    s.write("a long line past the cap\n")
    assert s.rotations == 0 and not path.exists()

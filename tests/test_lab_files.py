"""lsr.lab.files and the lab directory's modes, without namespaces (tmp_path only).

The end-to-end checks (a real lab, as users nobody and frr) are in
tests/test_lab_secrets.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import lsr.lab.state as lab_state
from lsr.lab.files import make_dir, open_append, read_foreign, write_file


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_write_file_sets_the_mode_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o777)  # would leave a file nobody can read
    try:
        write_file(tmp_path / "a", "x", 0o640)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a") == 0o640 and (tmp_path / "a").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no temporary file left


def test_write_file_replaces_a_planted_link_and_never_writes_through_it(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    (tmp_path / "lfib.json").symlink_to(target)
    (tmp_path / "lfib.json.tmp").symlink_to(target)  # the old fixed temporary name
    write_file(tmp_path / "lfib.json", b"{}")
    assert target.read_bytes() == b"keep"
    assert not (tmp_path / "lfib.json").is_symlink()
    assert (tmp_path / "lfib.json").read_bytes() == b"{}"


def test_write_file_leaves_nothing_behind_on_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_file(tmp_path / "a", 42)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_open_append_refuses_a_link_and_a_fifo(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    (tmp_path / "x.out").symlink_to(target)
    with pytest.raises(OSError):
        open_append(tmp_path / "x.out")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError):
        open_append(tmp_path / "fifo")  # no reader: ENXIO at once, never a hang
    reader = os.open(tmp_path / "fifo", os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(OSError, match="not a regular file"):
            open_append(tmp_path / "fifo")
    finally:
        os.close(reader)
    fd = open_append(tmp_path / "log")
    os.write(fd, b"a")
    os.close(fd)
    assert _mode(tmp_path / "log") == 0o600 and target.read_bytes() == b"keep"


def test_read_foreign_never_follows_or_blocks(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"0123456789")
    assert read_foreign(tmp_path / "log", 4, 3) == b"456"
    (tmp_path / "link").symlink_to(tmp_path / "log")
    os.mkfifo(tmp_path / "fifo")
    assert read_foreign(tmp_path / "link") is None
    assert read_foreign(tmp_path / "fifo") is None  # O_NONBLOCK: no writer, no wait
    assert read_foreign(tmp_path / "missing") is None


def test_make_dir(tmp_path: Path, umask_022) -> None:
    d = make_dir(tmp_path / "d", 0o750, os.getuid(), os.getgid())
    assert _mode(d) == 0o750
    with pytest.raises(FileExistsError):
        make_dir(d, 0o700)
    assert _mode(make_dir(d, 0o700, os.getuid(), os.getgid(), exist_ok=True)) == 0o700
    (tmp_path / "link").symlink_to(d)
    with pytest.raises(FileExistsError):
        make_dir(tmp_path / "link", 0o700, os.getuid(), exist_ok=True)


def test_lab_state_files_are_private_and_teardown_takes_side_dirs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022) -> None:
    run = tmp_path / "run"
    monkeypatch.setattr(lab_state, "RUN_DIR", run)
    st = lab_state.LabState("h1")
    st.create({})
    st.set("x", 1)
    assert _mode(run) == 0o755 and _mode(st.dir) == 0o700
    assert {p.name: _mode(p) for p in st.dir.iterdir()} == {"state.json": 0o600, ".lock": 0o600}
    side = lab_state.side_dir("h1", "frr")
    assert side == run / "h1.frr"
    (side / "n").mkdir(parents=True)
    other = run / "h1-x.frr"  # lab h1-x's: not h1's
    other.mkdir()
    (run / "h1.link").symlink_to(other)
    assert lab_state.side_dirs("h1") == [side]
    assert lab_state.teardown("h1")
    assert sorted(p.name for p in run.iterdir()) == ["h1-x.frr", "h1.link"]

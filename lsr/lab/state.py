"""Teardown registry of a lab, on disk so `lsr lab down` works after any crash.

Every resource is recorded in `/run/lsr/<lab>/state.json` *before* it is
created (namespaces) or right after it exists (process ids, with their start
time so a recycled PID is never killed). `teardown()` reads only this file,
so it works after Ctrl-C, after kill -9 of the `up` process or of a router,
and a second time (then it is a no-op).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsr.core.topology import NAME_RE
from lsr.errors import LsrError
from lsr.lab import owner
from lsr.lab.files import make_dir, write_file

RUN_DIR = Path(os.environ.get("LSR_RUN_DIR", "/run/lsr"))
NS_PREFIX = "lsr"
# Between the lab and the node: a character neither name may contain, so that no two
# (lab, node) pairs share a namespace ('-' did: lab a node x-y and lab a-x node y).
NS_SEP = "."


def ns_name(lab: str, node: str) -> str:
    """`lsr-<lab>.<node>`, e.g. lsr-line3.pe1."""
    return f"{NS_PREFIX}-{lab}{NS_SEP}{node}"


def node_of(ns: str) -> str:
    """The node part of a namespace name."""
    return ns.rsplit(NS_SEP, 1)[-1]


def lab_dir(lab: str) -> Path:
    """/run/lsr/<lab>; a name that is not a lab name (`..`, `/`, ...) never becomes a
    path: teardown removes this directory recursively."""
    if not isinstance(lab, str) or not NAME_RE.fullmatch(lab):
        raise LsrError(f"bad lab name {lab!r}: lowercase letters, digits and '-', "
                       "starting with a letter")
    return RUN_DIR / lab


def side_dir(lab: str, what: str) -> Path:
    """RUN_DIR/<lab>.<what>: a directory of the lab that another user may enter (FRR's
    daemons: `<lab>.frr`), beside the lab directory, which stays root-only. A lab name has
    no '.', so `<lab>.*` belongs to that lab alone; teardown removes it."""
    return lab_dir(lab).with_name(f"{lab}.{what}")


def side_dirs(lab: str) -> list[Path]:
    lab_dir(lab)  # the name check
    if not RUN_DIR.is_dir():
        return []
    return [p for p in RUN_DIR.glob(f"{lab}.*") if not p.is_symlink() and p.is_dir()]


def make_run_dir() -> None:
    """RUN_DIR itself: 0755 when we create it (whatever the umask), so FRR's daemons can
    pass through it to `<lab>.frr`; every lab directory in it is 0700."""
    if not RUN_DIR.exists():
        RUN_DIR.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            make_dir(RUN_DIR, 0o755)


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot), None if gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'
    rest = data[data.rindex(")") + 2 :].split()
    return int(rest[19])


def pid_alive(pid: int, start: int | None) -> bool:
    st = proc_start_time(pid)
    if st is None:
        return False
    if start is not None and st != start:
        return False  # recycled PID: not ours
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class LabError(LsrError):
    """A lab operation that cannot be done, in one line."""


class Gone(LsrError):
    """The lab directory was removed (torn down) while this process was using it."""


class LabState:
    """The registry of one lab. All writes go through `update()` (locked, atomic)."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.dir = lab_dir(lab)
        self.path = self.dir / "state.json"

    # ---------------------------------------------------------------- file

    def exists(self) -> bool:
        return self.path.exists()

    def claim(self, meta: dict[str, Any]) -> None:
        """Make the lab directory, or fail if the name is taken: mkdir is atomic, so of two
        `lab up` of one name exactly one gets here, and the other touches nothing of it.
        The claimer is recorded as `builder` (PID and start time) while it builds."""
        make_run_dir()
        try:
            make_dir(self.dir, 0o700)
        except FileExistsError:
            raise LsrError(self.taken()) from None
        try:
            with self.update(new=True) as st:
                st.update({"lab": self.lab, "created": time.time(), "namespaces": [],
                           "owner": owner.invoking_user(),  # lsr.lab.owner: whose, for others
                           "pids": [], "files": [], "building": True,
                           "builder": {"pid": os.getpid(), "start": proc_start_time(os.getpid())},
                           **meta})
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)  # ours: nothing was recorded yet
            raise

    create = claim  # the name benchmarks and tests use

    def taken(self) -> str:
        """Why this lab's name cannot be claimed now, in one line."""
        deadline = time.monotonic() + 1.0  # a claim writes its record right after its mkdir
        while not self.path.exists() and self.dir.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        st = self.read()
        b = st.get("builder") or {}
        if st:
            alive = st.get("building") and pid_alive(b.get("pid", 0), b.get("start"))
            return owner.taken(self.lab, st, b["pid"] if alive else None)
        return (f"lab '{self.lab}' is being created by another process, or was left half-made "
                f"(lsr lab down {self.lab} if it is yours, or choose another name with --name)")

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The lab's lock; fails (one line) if the lab is gone or goes while we wait for it:
        nothing is recorded for a lab that teardown has removed, so nothing is orphaned."""
        try:  # never through a link; root's alone
            fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise Gone(self.gone()) from None
        with os.fdopen(fd, "r+b") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            try:
                same = os.stat(self.dir / ".lock").st_ino == os.fstat(lk.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # teardown removed the directory while we waited
                raise Gone(self.gone())
            yield

    def gone(self) -> str:
        return f"lab '{self.lab}' was torn down while this command was using it"

    @contextlib.contextmanager
    def update(self, new: bool = False) -> Iterator[dict[str, Any]]:
        """Read-modify-write under the lock; the rename makes a crash leave old or new, never
        half. Only `claim` makes the directory (`new`): a record for a lab that is not
        there, or no longer, is an error, never a directory made again."""
        with self.locked():
            if not new and not self.path.exists():
                raise Gone(self.gone())
            st = self.read()
            yield st
            write_file(self.path, json.dumps(st, indent=1, sort_keys=True), 0o600)

    # ---------------------------------------------------------------- records

    def add_namespace(self, ns: str) -> None:
        with self.update() as st:
            if ns not in st.setdefault("namespaces", []):
                st["namespaces"].append(ns)

    def drop_namespace(self, ns: str) -> None:
        """Forget a namespace this run recorded but could not create (someone else's)."""
        with self.update() as st:
            if ns in st.get("namespaces", []):
                st["namespaces"].remove(ns)

    def add_pid(self, pid: int, role: str) -> None:
        with self.update() as st:
            st.setdefault("pids", []).append(
                {"pid": pid, "start": proc_start_time(pid), "role": role}
            )

    def add_file(self, path: str) -> None:
        with self.update() as st:
            if path not in st.setdefault("files", []):
                st["files"].append(path)

    def set(self, key: str, value: Any) -> None:
        with self.update() as st:
            st[key] = value


def _ns_pids(ns: str) -> list[int]:
    """Every process inside a lab namespace (started by the lab: routers, exec, capture)."""
    try:
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [int(x) for x in out.split() if x.isdigit()]


def _kill(pids: list[tuple[int, int | None]], grace: float = 1.5) -> None:
    live = [(p, s) for p, s in pids if pid_alive(p, s) and p != os.getpid()]
    for p, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        time.sleep(0.05)
        live = [(p, s) for p, s in live if pid_alive(p, s)]
    for p, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    # A killed process takes a moment to exit (a loaded box, big AF_PACKET rings): wait for
    # it, so "nothing is left" is true when teardown returns.
    deadline = time.monotonic() + 10.0
    while live and time.monotonic() < deadline:
        time.sleep(0.01)
        live = [(p, s) for p, s in live if pid_alive(p, s)]
    # Reap our own children so they do not linger as zombies.
    for p, _ in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(p, os.WNOHANG)


def namespace_exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


# What a lab directory holds in the instant between its claim (mkdir) and its first record.
_CLAIM_FILES = {".lock", "state.tmp"}


def _builder(state: LabState) -> tuple[int, int | None] | None:
    """The process building the lab right now, if it is another one and alive."""
    st = state.read()
    b = st.get("builder") or {}
    pid, start = b.get("pid"), b.get("start")
    if not st.get("building") or not pid or pid == os.getpid() or not pid_alive(pid, start):
        return None
    return pid, start


def _stop_builder(state: LabState, timeout: float = 60.0) -> None:
    """A lab another process is still building: ask it to stop (SIGTERM: `lab up` tears
    down what it built, and exits) and wait until it has; KILL it only if it is still at
    it after `timeout`. (A library caller of `up` lives on after its teardown.)"""
    b = _builder(state)
    if b is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(b[0], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _builder(state) == b and time.monotonic() < deadline:
        time.sleep(0.05)
    if _builder(state) == b:
        with contextlib.suppress(ProcessLookupError):
            os.kill(b[0], signal.SIGKILL)
        while pid_alive(*b):
            time.sleep(0.05)


def teardown(lab: str) -> bool:
    """Remove everything the registry lists. Returns False if there was nothing to do.

    A lab still being built by another process is stopped first (it tears down itself);
    while this runs it holds the lab's lock, so nothing new is recorded meanwhile."""
    state = LabState(lab)
    if not state.dir.exists():
        return False
    # Defence in depth: only ever remove a lab directory directly under RUN_DIR that
    # holds our registry, whatever name reached us.
    if state.dir.resolve().parent != RUN_DIR.resolve():
        raise LsrError(f"{state.dir} is not a lab state directory; not removing it")
    if not (state.dir / "state.json").exists():
        # Claimed an instant ago, or its claimer died in that instant: nothing recorded,
        # so nothing was made. Remove only a directory holding no more than a claim does.
        try:
            left = {p.name for p in state.dir.iterdir()}
        except FileNotFoundError:
            return False
        if not left <= _CLAIM_FILES:
            raise LsrError(f"{state.dir} is not a lab state directory; not removing it")
        shutil.rmtree(state.dir, ignore_errors=True)
        return True
    _stop_builder(state)
    try:
        with state.locked():
            _remove(state)
    except Gone:
        pass  # removed meanwhile: by its builder, once stopped, or by another `down`
    return True


def remove_resources(state: LabState) -> None:
    """End the processes and delete the namespaces and files `state` records (its caller
    holds the lock; a machine's part of a multi-machine lab is torn down with it too)."""
    st = state.read()
    namespaces: list[str] = st.get("namespaces", [])
    # 1. processes we recorded (PID + start time), then anything still inside our namespaces
    _kill([(int(p["pid"]), p.get("start")) for p in st.get("pids", [])])
    inside = [(p, proc_start_time(p)) for ns in namespaces for p in _ns_pids(ns)]
    if inside:
        _kill(inside, grace=0.5)
    # 2. namespaces: deleting one destroys its veths (and the peer end of each) and its
    # VXLAN devices (their sockets, in another namespace, close with the last of them)
    for ns in namespaces:
        if namespace_exists(ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
    # 3. temp files outside the state dir
    for f in st.get("files", []):
        with contextlib.suppress(OSError):
            os.unlink(f)


def _remove(state: LabState) -> None:
    remove_resources(state)
    # The lab's side directories (`<lab>.frr`), then the state dir itself (last: while it
    # exists, `lab down` can be run again). rmtree never follows a link another user
    # planted in them.
    for d in side_dirs(state.lab):
        shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(state.dir, ignore_errors=True)


def list_labs() -> list[str]:
    if not RUN_DIR.exists():
        return []
    return sorted(p.name for p in RUN_DIR.iterdir() if (p / "state.json").exists())

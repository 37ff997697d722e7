"""Shared fixtures and markers."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

# A suite started in the background by a shell without job control (`cmd &` in a
# script) inherits SIGINT ignored, and so would every `lsr lab up` the tests start and
# then interrupt with Ctrl-C (the CLI keeps the handlers it was given, as `nohup` wants).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# pytest-xdist workers run with COLUMNS=80 LINES=24 in their environment; rich would fix
# the CLI console's width at import from them, and a test's CliRunner(env={"COLUMNS": ...})
# could not widen it. Without them a worker behaves as a one-process run.
for _var in ("COLUMNS", "LINES"):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.pop(_var, None)

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = ROOT / "topologies"
BUNDLED = sorted(TOPOLOGIES.glob("*.yaml"))


def is_root() -> bool:
    return os.geteuid() == 0


needs_root = pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")


def needs_tool(name: str):
    return pytest.mark.skipif(shutil.which(name) is None, reason=f"{name} not installed")


def frr_missing(daemon: str | None = None) -> str | None:
    """Why FRR cannot run here (None: it can), the daemon `daemon` (e.g. "bgpd") too: the
    skip reason of the FRR interop test files."""
    from lsr.lab.frr import FRR_LIBEXEC, missing_tools

    why = missing_tools()
    if why is None and daemon is not None and not (FRR_LIBEXEC / daemon).exists():
        why = f"{FRR_LIBEXEC / daemon} not found"
    return why


@pytest.fixture(scope="module")
def ray_cluster_turn():
    """One local Ray cluster at a time on this machine: test files run side by side
    (pytest-xdist), and two `ray start` at once fail (shared session files and ports)."""
    import fcntl

    with open("/tmp/lsr-tests-ray.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield

"""`lsr sim run|lfib --ray ADDRESS` on a Ray cluster this test starts: a head and one
more node on this machine (node addresses 127.0.0.2 and .3, its own temporary directory
and auth token), stopped by PID at the end with nothing left running.

The LFIBs equal the single-process run's byte for byte: the golden files of every
bundled topology, and a 400-router random graph. Skipped without Ray
(`pip install 'lsr[ray]'`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.topogen import random_topology_yaml
from lsr.core.topology import load_topology

from .conftest import BUNDLED, ROOT
from .wait import wait_for

pytest.importorskip("ray")

HEAD, NODE = "127.0.0.2", "127.0.0.3"
GOLDEN = Path(__file__).parent / "golden"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _procs(mark: str) -> set[int]:
    """PIDs of the processes whose command line names `mark` (our temporary directory),
    and all their descendants."""
    parent: dict[int, int] = {}
    named: set[int] = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:
            continue
        if " Z " in stat.rsplit(")", 1)[1][:3]:
            continue  # a zombie is gone already
        parent[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
        if mark in cmd:
            named.add(int(d))
    named.discard(os.getpid())
    out = set(named)
    grew = True
    while grew:
        more = {p for p, pp in parent.items() if pp in out and p not in out}
        out |= more
        grew = bool(more)
    return out


def _kill(pids: set[int], sig: int) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def cluster(ray_cluster_turn: None) -> Iterator[tuple[str, dict]]:
    # A short scratch dir of our own: Ray's AF_UNIX socket paths under it must stay within
    # 107 bytes, which pytest's per-worker temp paths (popen-gwN/...) exceed.
    tmp = Path(tempfile.mkdtemp(prefix="lsrray", dir="/tmp"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    port = _free_port(HEAD)
    address = f"{HEAD}:{port}"
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    common = ["--num-cpus=1", "--disable-usage-stats"]
    try:
        subprocess.run(ray + ["start", "--head", f"--node-ip-address={HEAD}", f"--port={port}",
                              f"--temp-dir={tmp}", "--include-dashboard=false", *common],
                       env=env, check=True, capture_output=True, timeout=120)
        subprocess.run(ray + ["start", f"--address={address}", f"--node-ip-address={NODE}",
                              *common],
                       env=env, check=True, capture_output=True, timeout=120)
        yield address, env
    finally:
        _kill(_procs(str(tmp)), signal.SIGTERM)
        try:
            wait_for(lambda: not _procs(str(tmp)), 20, "Ray to stop on SIGTERM")
        except AssertionError:
            _kill(_procs(str(tmp)), signal.SIGKILL)
        wait_for(lambda: not _procs(str(tmp)), 10, lambda: f"Ray processes left: {_procs(str(tmp))}")
        shutil.rmtree(tmp, ignore_errors=True)


def _lsr(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", *args],
                          env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: Path(p).stem)
def test_lfib_equals_golden(cluster: tuple[str, dict], path: Path) -> None:
    address, env = cluster
    p = _lsr(env, "sim", "lfib", str(path.relative_to(ROOT)), "--json", "--workers", "2",
             "--ray", address)
    if "bgp" in load_topology(path).extra:  # BGP is not partitioned: one line, exit 2, no cluster use
        assert p.returncode == 2 and "does not carry BGP" in p.stderr, p.stderr
        return
    assert p.returncode == 0, p.stderr
    assert p.stdout == (GOLDEN / path.stem / "sim-lfib.json").read_text()


def test_two_nodes_carry_the_partitions(cluster: tuple[str, dict]) -> None:
    address, env = cluster
    p = _lsr(env, "sim", "run", "topologies/backbone.yaml", "--json", "--ray", address)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["converged"] and s["partitions"] == [10, 10]  # one CPU a node: two workers
    assert sorted(x.split()[0] for x in s["placement"]) == [HEAD, NODE]


@pytest.mark.slow
def test_random_400_routers(cluster: tuple[str, dict], tmp_path: Path) -> None:
    address, env = cluster
    f = tmp_path / "random-400.yaml"
    f.write_text(random_topology_yaml(400, 100, 7, max_cost=10, name="random-400"))
    one = _lsr(env, "sim", "lfib", str(f), "--json")
    split = _lsr(env, "sim", "lfib", str(f), "--json", "--ray", address)
    assert one.returncode == 0 and split.returncode == 0, one.stderr + split.stderr
    assert len(json.loads(one.stdout)["routers"]) == 400
    assert split.stdout == one.stdout

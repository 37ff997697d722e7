"""Two "machines" on this one: network namespaces joined by a veth (the underlay), and a
Ray cluster of two nodes, one per machine (tests/test_lab_multihost.py).

Each machine is a namespace `<prefix>-m1`, `<prefix>-m2` with an underlay address
(198.18.<n>.1 and .2, RFC 2544 benchmarking space) on a veth between them; nothing
touches the root namespace's interfaces or routes. Both Ray nodes run in the root
namespace on a loopback address of their own (Ray replaces 127.0.0.1 by the host's
address, so 127.0.0.1 itself is not used), each with the resource
`lsr_machine_<m>` and the environment of its machine: LSR_UNDERLAY_NETNS (its agent
makes the VXLAN sockets there), LSR_UNDERLAY_ADDRESS and LSR_RUN_DIR (each machine
its own /run/lsr). Ports are free ones, files in a temporary directory, token
authentication with a token made here; at the end both `ray start --block` processes
are stopped by PID, and whatever of their process groups is left, also by PID.
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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MACHINES = ("m1", "m2")


@dataclass
class Cluster:
    address: str
    env: dict[str, str]  # for `lsr` subprocesses: Ray's token, our code
    machine_ns: dict[str, str]  # machine -> its namespace (the underlay's)
    underlay: dict[str, str]  # machine -> underlay address
    underlay_if: str = "u0"
    procs: list[subprocess.Popen] = field(default_factory=list)
    tmp: Path = Path()  # the run directories of the machines: tmp/run-<m>


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True, timeout=30)


def make_machines(prefix: str, mtu: int = 9000) -> tuple[dict[str, str], dict[str, str]]:
    """Two machine namespaces and the underlay veth between them."""
    net = 18 + os.getpid() % 200  # 198.18.<net>.0/24: a test's own
    ns = {m: f"{prefix}-{m}" for m in MACHINES}
    addr = {m: f"198.18.{net}.{i + 1}" for i, m in enumerate(MACHINES)}
    for m in MACHINES:
        _ip("netns", "add", ns[m])
    _ip("link", "add", "u0", "netns", ns["m1"], "mtu", str(mtu), "type", "veth", "peer", "name",
        "u0", "netns", ns["m2"], "mtu", str(mtu))
    for m in MACHINES:
        _ip("-n", ns[m], "addr", "add", f"{addr[m]}/24", "dev", "u0")
        _ip("-n", ns[m], "link", "set", "u0", "up")
        _ip("-n", ns[m], "link", "set", "lo", "up")
    return ns, addr


def _node_argv(head: bool, ip: str, gcs: int, tmp: Path, machine: str) -> list[str]:
    argv = ["ray", "start", "--block", "--node-ip-address", ip, "--num-cpus", "1",
            "--resources", json.dumps({f"lsr_machine_{machine}": 1}),
            "--object-store-memory", str(80 << 20), "--disable-usage-stats",
            "--node-manager-port", str(_free_port(ip)),
            "--object-manager-port", str(_free_port(ip)),
            "--dashboard-agent-listen-port", str(_free_port(ip)),
            "--dashboard-agent-grpc-port", str(_free_port(ip)),
            "--runtime-env-agent-port", str(_free_port(ip)),
            "--metrics-export-port", str(_free_port(ip)),
            "--min-worker-port", "0", "--max-worker-port", "0",
            "--include-log-monitor", "false", "--temp-dir", str(tmp / f"ray-{machine}")]
    if head:
        argv += ["--head", "--port", str(gcs), "--include-dashboard", "false",
                 "--dashboard-port", str(_free_port(ip))]
    else:
        argv += ["--address", f"{ip}:{gcs}"]
    return argv


def _group(pgid: int) -> list[int]:
    """The processes of a process group (ours: each `ray start` began a session)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(p.name))
    return out


def _stop(procs: list[subprocess.Popen]) -> None:
    """`ray start --block` ends its node's processes on SIGTERM; what outlives it in its
    process group (a node's dashboard agent did) is killed by PID."""
    for p in reversed(procs):  # the second node first, then the head
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
    deadline = time.monotonic() + 10
    for p in procs:
        while _group(p.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in _group(p.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def cluster(tmp: Path, prefix: str) -> Iterator[Cluster]:
    """The two machines and their Ray nodes; everything removed on the way out."""
    ip = f"127.77.{os.getpid() % 250}.1"
    token = tmp / "ray-token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    base = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    ns: dict[str, str] = {}
    procs: list[subprocess.Popen] = []
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH",
                                            "RAY_USAGE_STATS_ENABLED")}
    try:
        ns, addr = make_machines(prefix)
        gcs = _free_port(ip)
        for i, m in enumerate(MACHINES):
            env = {**base, "LSR_UNDERLAY_NETNS": ns[m], "LSR_UNDERLAY_ADDRESS": addr[m],
                   "LSR_RUN_DIR": str(tmp / f"run-{m}")}
            log = open(tmp / f"ray-{m}.log", "w")
            procs.append(subprocess.Popen(_node_argv(i == 0, ip, gcs, tmp, m), env=env,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True, cwd=str(tmp)))
            log.close()
            if i == 0:
                _wait_port(ip, gcs, procs[0], tmp / f"ray-{m}.log")
        os.environ.update({k: base[k] for k in saved})  # this process is a Ray driver too
        if "ray" in sys.modules:  # imported already: it read its auth mode then
            from ray._raylet import Config

            Config.initialize("")
        yield Cluster(f"{ip}:{gcs}", base, ns, addr, procs=procs, tmp=tmp)
    finally:
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        except ImportError:
            pass
        _stop(procs)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for n in ns.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=30)
        shutil.rmtree(tmp / "ray-m1", ignore_errors=True)
        shutil.rmtree(tmp / "ray-m2", ignore_errors=True)


def _wait_port(host: str, port: int, proc: subprocess.Popen, log: Path,
               timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the Ray head did not listen on {host}:{port} in {timeout} s")


def wait_nodes(ray_mod, n: int = 2, timeout: float = 60) -> None:
    """Until n Ray nodes are alive (the second one joins after the head)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for x in ray_mod.nodes() if x.get("Alive")) >= n:
            return
        time.sleep(0.2)
    raise RuntimeError(f"fewer than {n} Ray nodes after {timeout} s")

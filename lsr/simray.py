"""`lsr sim run FILE --ray [ADDRESS]`: the partitions of `lsr.simpart` as Ray actors.

One actor per partition (one CPU each, spread over the cluster's nodes). A round is one
`step` call per actor; its outboxes are Ray objects handed straight to the actors of the
next round (they go from node to node, not through this process), and only the small
status of each comes back here. The code the actors run is this process's own: the
packages are shipped with the job (`runtime_env` py_modules), so a cluster needs Ray and
the third-party packages `lsr` depends on, not `lsr` itself.

Ray is an optional dependency (`pip install 'lsr[ray]'`): nothing else imports this
module, and it imports Ray only when a run starts.
"""

from __future__ import annotations

import importlib
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.sim import parse_link
from lsr.simpart import (
    Partition,
    PartitionedRun,
    check_partitionable,
    partition,
    run_partitioned,
)

PACKAGES = ("lsr", "ldp", "ospf", "bgp", "ike", "forwarding")  # what the actors import
LOCAL = "local"  # --ray without an address: a Ray instance of this machine, for this run


def _ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise LsrError("--ray needs Ray: pip install 'lsr[ray]' (or pip install ray)") from None


@contextmanager
def session(address: str) -> Iterator[Any]:
    """Ray for one run: `address` 'local' starts an instance on this machine (its files
    in a temporary directory, stopped and removed at the end); else 'auto' or HOST:PORT
    of a running cluster's head, which stays as it was. Yields the ray module."""
    _reachable(address)
    ray = _ray()
    modules = [str(Path(importlib.import_module(p).__file__ or "").parent) for p in PACKAGES]
    env = {"py_modules": modules, "excludes": ["__pycache__", "*.pyc"]}
    tmp = None
    try:
        if address == LOCAL:
            tmp = tempfile.mkdtemp(prefix="lsr-ray-")
            ray.init(runtime_env=env, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, _temp_dir=tmp)
        else:
            ray.init(address=address, runtime_env=env, log_to_driver=False,
                     configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LsrError(f"--ray {address}: cannot use a Ray cluster there: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def converge(topo: Topology, down: Sequence[str] = (), address: str = LOCAL,
             workers: int | None = None, lfib: bool = True) -> PartitionedRun:
    """`lsr.sim.converge` over `workers` partitions (default: the cluster's CPUs), one
    Ray actor each; `lfib`: bring the LFIBs back."""
    check_partitionable(topo)
    for d in down:  # bad input before a cluster is used
        parse_link(topo, d)
    with session(address) as ray:
        k = workers or cluster_cpus(ray)
        return run_partitioned(topo, partition(topo, k), RayBackend, down=down, lfib=lfib)


def _reachable(address: str) -> None:
    """HOST:PORT answers TCP within a few seconds (ray.init would wait minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return  # 'local', 'auto', ray://...: Ray's own business
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        raise LsrError(f"--ray {address}: no Ray head answers there ({e.strerror or e})") from None


def cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class RayBackend:
    """`lsr.simpart.Backend` on Ray actors (one per partition)."""

    def __init__(self, topo: Topology, groups: list[list[str]], **kw: Any) -> None:
        ray = self.ray = _ray()
        owner = {r: k for k, g in enumerate(groups) for r in g}
        # Partition k on node k mod nodes (nodes in ID order): placement is known and stated.
        nodes = sorted((n for n in ray.nodes() if n.get("Alive")), key=lambda n: n["NodeID"])
        affinity = importlib.import_module("ray.util.scheduling_strategies")
        actor = ray.remote(num_cpus=1)(Partition)
        topo_ref = ray.put(topo)
        self.actors = []
        self.placement: list[str] = []  # node of each partition: "address (node ID prefix)"
        for k, g in enumerate(groups):
            node = nodes[k % len(nodes)]
            where = affinity.NodeAffinitySchedulingStrategy(node["NodeID"], soft=True)
            self.actors.append(actor.options(scheduling_strategy=where).remote(
                topo_ref, g, k, owner, **kw))
            self.placement.append(f"{node['NodeManagerAddress']} ({node['NodeID'][:8]})")
        k = len(groups)
        self.pending: list[list[Any]] = [[[] for _ in range(k)] for _ in range(k)]

    def call(self, method: str, *args: Any) -> list[Any]:
        return self.ray.get([getattr(a, method).remote(*args) for a in self.actors])

    def step(self, t_end: float, inboxes: list[list[Any]]) -> list[dict[str, Any]]:
        k = len(self.actors)
        refs = [a.step.options(num_returns=k + 1).remote(t_end, *box)
                for a, box in zip(self.actors, inboxes, strict=True)]
        self.pending = [[refs[src][1 + dst] for src in range(k)] for dst in range(k)]
        return list(self.ray.get([r[0] for r in refs]))

    def inboxes(self) -> list[list[Any]]:
        return self.pending

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []

"""A multi-machine lab's parts, reached through their machines' agents on the Ray cluster.

The lab's record on the machine that brought it up (`RUN_DIR/<lab>/state.json`, key
`multihost`: the Ray address, each machine's nodes and underlay address) says where each
node runs; `lsr.lab` calls here for whatever a node on another machine needs (a
management request, a command in its namespace, a link set down, the part's teardown)
and each call goes to that machine's `LabAgent` (lsr.lab.agent), a detached Ray actor
named `<lab>@<machine>` in the Ray namespace `lsr`, pinned to the Ray node that has the
resource `lsr_machine_<machine>`. A fresh agent is made if the old one is gone (it reads
its part from its machine's disk).

Ray is imported only here and only when a multi-machine lab is used (`pip install
'lsr[ray]'`); a process connects once (`ray.init` takes a second or two).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from lsr.core.topology import Topology
from lsr.lab.agent import RAY_NAMESPACE, LabAgent, actor_name
from lsr.lab.state import LabError, LabState

RESOURCE = "lsr_machine_"  # + machine name: the Ray node that is that machine
CALL_TIMEOUT = 30.0  # s for an agent's answer, beyond the request's own time
_session: dict[str, Any] = {}  # the address this process is connected to, the actor class


def ray_module() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise LabError("labs over several machines need Ray: pip install 'lsr[ray]' "
                       "(or pip install ray)") from None


def connect(address: str) -> Any:
    """The ray module, connected (once per process) to the cluster at `address`."""
    ray = ray_module()
    if _session.get("address") == address and ray.is_initialized():
        return ray
    if ray.is_initialized():
        ray.shutdown()
    _reachable(address)
    try:
        ray.init(address=address, namespace=RAY_NAMESPACE, log_to_driver=False,
                 logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LabError(f"Ray at {address}: cannot use the cluster there: {first}") from None
    _session["address"] = address
    _session["actor"] = ray.remote(LabAgent)
    return ray


def _reachable(address: str) -> None:
    """HOST:PORT answers TCP within a few seconds (ray.init would retry for a minute)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return  # 'auto', ray://...: Ray's own business
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        raise LabError(f"Ray at {address}: no Ray head answers there "
                       f"({e.strerror or e})") from None


def cluster_machines(ray: Any) -> dict[str, dict[str, Any]]:
    """Machine name -> {node_id, ip} of every alive Ray node with an `lsr_machine_<name>`
    resource."""
    out: dict[str, dict[str, Any]] = {}
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        for res in n.get("Resources", {}):
            if res.startswith(RESOURCE):
                m = res[len(RESOURCE):]
                if m in out:
                    raise LabError(f"two Ray nodes are machine '{m}' (resource {res})")
                out[m] = {"node_id": n["NodeID"], "ip": n["NodeManagerAddress"]}
    return out


def agent(ray: Any, lab: str, machine: str) -> Any:
    """The agent of `lab` on `machine` (made there if there is none, or none alive)."""
    return _session["actor"].options(
        name=actor_name(lab, machine), namespace=RAY_NAMESPACE, lifetime="detached",
        get_if_exists=True, num_cpus=0, resources={RESOURCE + machine: 0.001},
        max_restarts=-1, max_concurrency=8).remote(machine, lab)


def result(ray: Any, machine: str, ref: Any, timeout: float | None) -> Any:
    """An agent call's result; its error, or no answer in time, as one LabError line."""
    try:
        reply = ray.get(ref, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        with contextlib.suppress(Exception):  # not every kind of task can be cancelled
            ray.cancel(ref, force=False)
        raise LabError(f"machine {machine}: its lab agent did not answer within "
                       f"{timeout:g} s") from None
    except ray.exceptions.RayError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LabError(f"machine {machine}: lab agent: {first}") from None
    if not reply.get("ok"):
        error = reply.get("error") or "request failed"
        raise LabError(error if error.startswith("machine ") else f"machine {machine}: {error}")
    return reply["result"]


def gather(ray: Any, calls: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """{machine: result} of calls made at once; the first error, naming its machine."""
    return {m: result(ray, m, ref, timeout) for m, ref in calls.items()}


# ---------------------------------------------------------------- a lab's record


def record(name: str) -> dict[str, Any]:
    rec = LabState(name).read().get("multihost")
    if not rec:
        raise LabError(f"lab '{name}' does not span machines")
    return rec


def machine_of(rec: dict[str, Any], name: str, node: str) -> str:
    m = rec["where"].get(node)
    if m is None:
        raise LabError(f"lab '{name}' has no node '{node}'")
    return m


def _lab(name: str) -> tuple[Any, dict[str, Any]]:
    rec = record(name)
    return connect(rec["address"]), rec


# ---------------------------------------------------------------- what lsr.lab asks


def query(name: str, router: str, what: str, timeout: float, params: dict[str, Any]) -> Any:
    """lsr.lab.query of a router on another machine."""
    ray, rec = _lab(name)
    m = machine_of(rec, name, router)
    ref = agent(ray, name, m).query.remote(name, router, what, timeout, params)
    return result(ray, m, ref, timeout + CALL_TIMEOUT)


def processes(name: str) -> list[tuple[str, dict[str, Any]]]:
    """(router, {pid, alive, machine}) of every part's routers, for lsr.lab.status; a
    machine that does not answer has its routers not alive, with the reason."""
    ray, rec = _lab(name)
    calls = {m: agent(ray, name, m).status.remote(name) for m in rec["machines"]}
    out = []
    for m, ref in calls.items():
        try:
            part = result(ray, m, ref, CALL_TIMEOUT)
            out += [(r, {**info, "machine": m}) for r, info in part["routers"].items()]
        except LabError as e:
            topo_routers = rec["machines"][m].get("routers", [])
            out += [(r, {"pid": None, "alive": False, "machine": m, "error": str(e)})
                    for r in topo_routers]
    return sorted(out, key=lambda x: rec["order"].index(x[0]) if x[0] in rec["order"] else 0)


def machines(name: str) -> dict[str, Any]:
    """lsr lab status: each machine's nodes, underlay address and host name."""
    rec = record(name)
    return {m: {k: v for k, v in info.items() if k in ("nodes", "underlay", "host")}
            for m, info in rec["machines"].items()}


def set_link(name: str, topo: Topology, idx: int, up: bool) -> None:
    """Admin up/down on both ends of link idx, each on its machine."""
    ray, rec = _lab(name)
    link = topo.links[idx]
    calls = {}
    for node, ifname in (link.a, link.b):
        m = machine_of(rec, name, node)
        calls[f"{m}:{node}"] = agent(ray, name, m).set_link.remote(name, node, ifname, up)
    for key, ref in calls.items():
        result(ray, key.split(":")[0], ref, CALL_TIMEOUT)


def run(name: str, node: str, argv: Sequence[str], timeout: float | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    """argv in a node's namespace on its machine; its output when it has ended."""
    ray, rec = _lab(name)
    m = machine_of(rec, name, node)
    ref = agent(ray, name, m).exec.remote(name, node, list(argv), timeout, stdin)
    r = result(ray, m, ref, None if timeout is None else timeout + CALL_TIMEOUT)
    return subprocess.CompletedProcess(list(argv), r["rc"], r["stdout"], r["stderr"])


def exec_in(name: str, node: str, argv: Sequence[str], **kw: Any) -> int:
    """lsr.lab.exec_in on another machine: the output is written when the command ends
    (to `stdout` / `stderr` if given as files, nowhere for subprocess.DEVNULL)."""
    r = run(name, node, argv, kw.get("timeout"))
    for key, text, default in (("stdout", r.stdout, sys.stdout), ("stderr", r.stderr, sys.stderr)):
        dest = kw.get(key, default)
        if dest is None:
            dest = default
        if dest == subprocess.DEVNULL or not text:
            continue
        if isinstance(dest, int):
            os.write(dest, text.encode())
        else:
            dest.write(text)
            dest.flush()
    return r.returncode


def down_parts(name: str) -> None:
    """Each machine's part torn down by its agent (a new agent if the old one died); the
    agents end with the lab. A machine that does not answer keeps the record: `lsr lab
    down` again once it does (or `lsr lab down NAME` on that machine, without Ray)."""
    ray, rec = _lab(name)
    handles = {m: agent(ray, name, m) for m in rec["machines"]}
    calls = {m: a.teardown.remote(name) for m, a in handles.items()}
    failed = []
    for m, ref in calls.items():
        try:
            result(ray, m, ref, CALL_TIMEOUT + 30)
        except LabError as e:
            failed.append(f"{e}")
    if failed:
        raise LabError(f"lab '{name}': not every part is torn down ({'; '.join(failed)}); "
                       f"lsr lab down {name} again once the machine answers, or lsr lab down "
                       f"{name} on it")
    for a in handles.values():
        ray.kill(a, no_restart=True)

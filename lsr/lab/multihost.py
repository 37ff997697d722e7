"""`lsr lab up FILE --ray ADDRESS`: one lab over several machines (docs/multihost.md).

The machines are the Ray nodes of the cluster at ADDRESS that carry a resource
`lsr_machine_<name>`. Every node of the topology gets a machine (lsr.lab.placement:
pinned by the `placement:` section or `--place`, the rest partitioned), and each link
between two machines a VNI. Then, like `lsr.lab.up`:

1. the lab's record is claimed here (`RUN_DIR/<lab>`, as for any lab, with a
   `multihost` key: the Ray address, the placement, each machine's underlay address),
   before anything is made anywhere, so `lsr lab down` always finds every part;
2. each machine's agent (lsr.lab.agent) builds its part at the same time: namespaces,
   veths, VXLAN devices for its crossing links, routers waiting for the start barrier;
3. once all parts are ready, the barrier is lifted on every machine;
4. convergence is awaited here, against the simulator, through the agents.

A failure or an interruption tears every part down, as `lsr.lab.up` does.
"""

from __future__ import annotations

import contextlib
import pickle
import time
from collections.abc import Mapping, Sequence
from typing import Any

from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.lab import (
    Lab,
    LabError,
    Progress,
    check_name,
    need_root,
    remote,
    signals_held,
    signals_interrupt,
    wait_converged,
)
from lsr.lab import placement as plc
from lsr.lab.agent import code_fingerprint
from lsr.lab.files import write_file
from lsr.lab.netns import kernel_mtu
from lsr.lab.state import LabState, teardown
from lsr.lab.vxlan import End

UNSUPPORTED_KINDS = ("frr", "strongswan")  # their daemons are started by `up` itself


def check_supported(topo: Topology) -> None:
    bad = sorted(n.name for n in topo.nodes.values() if n.kind in UNSUPPORTED_KINDS)
    if bad:
        raise LabError(f"{topo.name}: {', '.join(bad[:4])} {'is' if len(bad) == 1 else 'are'} "
                       f"of kind {topo.nodes[bad[0]].kind}: a lab over several machines runs "
                       "lsr routers and hosts only")


def parse_place(items: Sequence[str]) -> dict[str, str]:
    """`--place NODE=MACHINE` (or NODE,NODE=MACHINE) options -> {node: machine}."""
    out: dict[str, str] = {}
    for item in items:
        nodes, sep, machine = item.partition("=")
        if not sep or not nodes or not machine:
            raise LabError(f"--place {item!r}: expected NODE=MACHINE (NODE,NODE=MACHINE)")
        for n in nodes.split(","):
            out[n.strip()] = machine.strip()
    return out


def plan(topo: Topology, cluster: Mapping[str, Any], machines: Sequence[str] | None,
         place: Mapping[str, str] | None) -> tuple[list[str], dict[str, str]]:
    """The machines used and every node's machine."""
    sec = plc.section(topo)
    names = list(machines or (sec.machines if sec else sorted(cluster)))
    if not names:
        raise LabError("no Ray node of the cluster is a lab machine: start each with "
                       "ray start ... --resources '{\"lsr_machine_<name>\": 1}'")
    lost = [m for m in names if m not in cluster]
    if lost:
        raise LabError(f"machine {lost[0]}: no alive Ray node has the resource "
                       f"{remote.RESOURCE}{lost[0]} (machines in the cluster: "
                       f"{', '.join(sorted(cluster)) or 'none'})")
    pinned = sec.pinned() if sec else {}
    pinned.update(place or {})
    where = plc.partition(topo, names, pinned)
    return [m for m in names if m in where.values()], where


def up(topo: Topology, address: str, name: str | None = None,
       machines: Sequence[str] | None = None, place: Mapping[str, str] | None = None,
       timeout: float = 60, progress: Progress | None = None, keep: bool = False,
       ring: bool = True) -> Lab:
    """Build the lab over the cluster's machines; return once it has converged."""
    need_root()
    name = name or topo.name
    check_name(name)
    check_supported(topo)
    say = progress or (lambda msg, frac: None)
    t0 = time.monotonic()
    say("connecting to the Ray cluster", 0.02)
    ray = remote.connect(address)
    cluster = remote.cluster_machines(ray)
    used, where = plan(topo, cluster, machines, place)
    sec = plc.section(topo)
    port = sec.vxlan_port if sec else plc.VXLAN_PORT
    base = sec.vni_base if sec and sec.vni_base else plc.vni_base_for(name, len(topo.links))
    rec: dict[str, Any] = {
        "address": address, "where": where, "order": list(topo.nodes), "vxlan_port": port,
        "vni_base": base, "machines": {m: {
            "nodes": [n for n in topo.nodes if where[n] == m],
            "routers": [r.name for r in topo.routers if where[r.name] == m]} for m in used}}
    timings: dict[str, float] = {"connect": time.monotonic() - t0}
    state = LabState(name)
    claimed = False
    with signals_interrupt():
        try:
            with signals_held():
                state.claim({"topology": topo.name, "source": topo.source,
                             "nodes": list(topo.nodes), "routers": [r.name for r in topo.routers],
                             "multihost": rec})
                claimed = True
            write_file(state.dir / "topology.pickle", pickle.dumps(topo), 0o600)
            agents = {m: remote.agent(ray, name, m) for m in used}
            say(f"asking {len(used)} machines", 0.05)
            infos = remote.gather(ray, {m: a.info.remote() for m, a in agents.items()},
                                  remote.CALL_TIMEOUT + 30)  # a new agent starts a worker
            check_code(infos)
            under = _underlays(topo, cluster, infos)
            ends = _ends(topo, where, base, port, under)
            with state.update() as st:
                for m, info in infos.items():
                    st["multihost"]["machines"][m].update(host=info["host"], underlay=under[m])
            say(f"building {len(used)} parts, {sum(len(e) for e in ends.values()) // 2} "
                "VXLAN links", 0.1)
            blob = pickle.dumps(topo)
            built = remote.gather(ray, {m: agents[m].build.remote(
                name, blob, rec["machines"][m]["nodes"], [e.__dict__ for e in ends.get(m, [])],
                under[m], timeout, ring) for m in used},
                timeout + remote.CALL_TIMEOUT)
            timings["parts"] = time.monotonic() - t0
            for m, b in built.items():  # each machine's own steps, from its start
                timings.update({f"{m}:{k}": v for k, v in b["steps"].items()})
            warnings = [f"{m}: {w}" for m, b in built.items() for w in b["warnings"]]
            if warnings:
                state.set("warnings", warnings)
            remote.gather(ray, {m: a.start.remote(name) for m, a in agents.items()},
                          remote.CALL_TIMEOUT)
            timings["routers"] = time.monotonic() - t0
            say("waiting for LDP to converge", 0.5)
            wait_converged(name, timeout=max(1.0, timeout - (time.monotonic() - t0)))
            timings["converged"] = time.monotonic() - t0
            state.set("converged", time.time())
            with signals_held():
                state.set("building", False)
        except Exception as e:
            if claimed and keep:
                with contextlib.suppress(OSError, LsrError):
                    state.set("failed", str(e))
                    state.set("building", False)
            elif claimed:
                with signals_held(deliver=False):
                    _teardown_all(name)
            raise
        except BaseException:
            if claimed:
                with signals_held(deliver=False):
                    _teardown_all(name)
            raise
    say("converged", 1.0)
    return Lab(name, topo, state.dir, timings["converged"], timings)


def _teardown_all(name: str) -> None:
    """Every part, then the record (kept if a part could not be torn down)."""
    try:
        remote.down_parts(name)
    except LsrError:
        return  # the record says where the rest is: `lsr lab down` again
    teardown(name)


def _underlays(topo: Topology, cluster: Mapping[str, Any],
               infos: Mapping[str, Any]) -> dict[str, str]:
    """Each machine's VXLAN address: the `placement:` section's, the agent's
    LSR_UNDERLAY_ADDRESS, or its Ray node's IP."""
    sec = plc.section(topo)
    out = {}
    for m, info in infos.items():
        spec = sec.machines.get(m) if sec else None
        if spec is not None and spec.underlay is not None:
            out[m] = str(spec.underlay)
        else:
            out[m] = info.get("underlay") or cluster[m]["ip"]
    return out


def _ends(topo: Topology, where: Mapping[str, str], base: int, port: int,
          underlay: Mapping[str, str]) -> dict[str, list[End]]:
    """Each machine's VXLAN ends (both ends of a crossing link alike but for the
    addresses)."""
    out: dict[str, list[End]] = {}
    for c in plc.crossings(topo, where, base):
        for (node, ifname, m), (_, _, other) in ((c.a, c.b), (c.b, c.a)):
            iface = topo.interface(node, ifname)
            out.setdefault(m, []).append(End(node, ifname, iface.mac, kernel_mtu(topo, c.link),
                                             c.vni, underlay[m], underlay[other], port, other))
    return out


def check_code(infos: Mapping[str, Any]) -> None:
    """Every agent runs the code this machine runs (the same lsr on every machine)."""
    here = code_fingerprint()
    for m, info in sorted(infos.items()):
        if info.get("code") != here:
            raise LabError(f"machine {m} runs other lsr code ({info.get('code')}, here {here}): "
                           "install the same lsr on every machine")
        if not info.get("root"):
            raise LabError(f"machine {m}: its Ray node does not run as root (lab agents need "
                           "it for namespaces)")

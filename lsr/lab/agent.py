"""A machine's lab agent: builds, serves and tears down its part of multi-machine labs.

`LabAgent` is a plain class; lsr.lab.multihost runs one per lab and machine as a
detached Ray actor pinned to that machine's Ray node (resource `lsr_machine_<m>`).
Everything it makes is recorded first in the part's registry on this machine's disk,
`RUN_DIR/<lab>/part-<machine>/` (lsr.lab.state: the same records, lock and teardown as a
one-machine lab), so an agent that crashed and came back (Ray restarts it), or a fresh
one, can still serve or tear down the part: the agent itself keeps no state.

The part is what `lsr.lab.up` builds, for this machine's nodes only: their namespaces,
the veths between them, a VXLAN device for each link to another machine
(lsr.lab.vxlan), addresses, and a router runtime for each router (forked by a fork
server, lsr.lab.forker: a Ray worker has threads and must not fork itself), which waits
for the start barrier (`start`).

Environment of the Ray node (all optional): LSR_RUN_DIR (as for any lab),
LSR_UNDERLAY_ADDRESS (this machine's VXLAN address; default the Ray node's IP) and
LSR_UNDERLAY_NETNS (the namespace holding the underlay: a test plays machines as
namespaces; default this process's own).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lsr
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.lab import netns, vxlan
from lsr.lab.carrier import CarrierRelay
from lsr.lab.files import make_dir, write_file
from lsr.lab.routers import query_socket, start_routers, wait_ready
from lsr.lab.state import (
    RUN_DIR,
    Gone,
    LabState,
    lab_dir,
    make_run_dir,
    ns_name,
    pid_alive,
    remove_resources,
)

PACKAGES = ("lsr", "ldp", "ospf", "bgp", "ike", "forwarding")
RAY_NAMESPACE = "lsr"  # where the agents are named


def actor_name(lab: str, machine: str) -> str:
    """The Ray name of lab's agent on machine (unique: neither name has an '@')."""
    return f"{lab}@{machine}"

_fingerprint: str | None = None


def code_fingerprint() -> str:
    """A hash of the Python source of every package: machines must run the same code."""
    global _fingerprint
    if _fingerprint is None:
        h = hashlib.sha256()
        root = Path(lsr.__file__).resolve().parents[1]
        for pkg in PACKAGES:
            for f in sorted((root / pkg).rglob("*.py")):
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
        _fingerprint = h.hexdigest()[:16]
    return _fingerprint


class PartState(LabState):
    """The registry of one machine's part of a lab: `RUN_DIR/<lab>/part-<machine>/`."""

    def __init__(self, lab: str, machine: str) -> None:
        super().__init__(lab)
        self.machine = machine
        self.dir = lab_dir(lab) / f"part-{machine}"
        self.path = self.dir / "state.json"

    def claim(self, meta: dict[str, Any]) -> None:
        make_run_dir()
        make_dir(lab_dir(self.lab), 0o700, exist_ok=True)  # the coordinator's, if it runs here
        super().claim(meta)


def _reply(fn: Any, *args: Any, **kw: Any) -> dict[str, Any]:
    """A call's result, or its one-line error, as data (a traceback never crosses)."""
    try:
        return {"ok": True, "result": fn(*args, **kw)}
    except (LsrError, OSError, ValueError, subprocess.SubprocessError) as e:
        return {"ok": False, "error": str(e) or type(e).__name__}


class LabAgent:
    """One machine's agent for one lab (a Ray actor: lsr.lab.remote)."""

    def __init__(self, machine: str, lab: str | None = None) -> None:
        self.machine = machine
        self.lab = lab
        self.relay: CarrierRelay | None = None
        self.peer_seq: dict[int, int] = {}
        if lab is not None:  # started again (after a crash): watch what the part has
            with contextlib.suppress(LsrError, OSError, ValueError, TypeError):
                st = PartState(lab, machine).read()
                if st and not st.get("building"):
                    self._watch(lab, [vxlan.End(**e) for e in st.get("vxlan", [])])

    # ------------------------------------------------------------ facts

    def info(self) -> dict[str, Any]:
        return _reply(self.facts)

    def facts(self) -> dict[str, Any]:
        return {"machine": self.machine, "host": socket.gethostname(), "pid": os.getpid(),
                "root": os.geteuid() == 0, "run_dir": str(RUN_DIR), "code": code_fingerprint(),
                "underlay": os.environ.get("LSR_UNDERLAY_ADDRESS") or None,
                "underlay_netns": self.underlay_ns()}

    @staticmethod
    def underlay_ns() -> str | None:
        return os.environ.get("LSR_UNDERLAY_NETNS") or None

    # ------------------------------------------------------------ build

    def build(self, lab: str, topo_bytes: bytes, nodes: Sequence[str], ends: Sequence[dict],
              local: str, timeout: float, ring: bool = True) -> dict[str, Any]:
        """This machine's part, up to routers ready for the start barrier."""
        return _reply(self._build, lab, topo_bytes, list(nodes),
                      [vxlan.End(**e) for e in ends], local, timeout, ring)

    def _build(self, lab: str, topo_bytes: bytes, nodes: list[str], ends: list[vxlan.End],
               local: str, timeout: float, ring: bool) -> dict[str, Any]:
        if os.geteuid() != 0:
            raise LsrError(f"machine {self.machine}: the lab agent runs without root "
                           "(ray start as root)")
        t0 = time.monotonic()
        steps: dict[str, float] = {}

        def step(what: str) -> None:
            steps[what] = round(time.monotonic() - t0, 3)
        topo: Topology = pickle.loads(topo_bytes)
        routers = [n for n in nodes if topo.nodes[n].is_router]
        under = self.underlay_ns()
        warnings = vxlan.check_underlay(under, local, ends) if ends else []
        state = PartState(lab, self.machine)
        state.claim({"topology": topo.name, "machine": self.machine, "nodes": nodes,
                     "routers": routers, "vxlan": [e.__dict__ for e in ends]})
        write_file(state.dir / "topology.pickle", topo_bytes, 0o600)  # the routers read it
        netns.create_namespaces(topo, lab, state, only=nodes)
        step("namespaces")
        netns.create_links(topo, lab, only=nodes)
        vxlan.create(lab, self.machine, ends, under, state)
        step("links")
        netns.configure_nodes(topo, lab, only=nodes)
        self._watch(lab, ends)
        step("network")
        start_routers(topo, lab, state, ring=ring, spawn="forkserver", routers=routers)
        step("started")
        wait_ready(topo, lab, state, t0 + timeout, routers=routers)
        step("ready")
        state.set("building", False)
        return {"steps": steps, "warnings": warnings}

    # ------------------------------------------------------------ carrier

    def _watch(self, lab: str, ends: Sequence[vxlan.End]) -> None:
        """Tell the other machine of each admin change of our crossing ends."""
        if self.relay is not None or not ends:
            return
        self.relay = CarrierRelay(lab, ends, lambda end, up: self._tell(lab, end, up)).start()

    def _tell(self, lab: str, end: vxlan.End, up: bool) -> None:
        import ray  # in a Ray worker: connected

        peer = ray.get_actor(actor_name(lab, end.peer_machine), namespace=RAY_NAMESPACE)
        peer.peer_carrier.remote(lab, end.vni, up, time.time_ns())

    def peer_carrier(self, lab: str, vni: int, up: bool, seq: int) -> dict[str, Any]:
        """The other end of link `vni` went admin up or down: so does our end's carrier
        (an older message than one applied, reordered on the way, is dropped)."""
        def go() -> bool:
            if seq <= self.peer_seq.get(vni, 0):
                return False
            self.peer_seq[vni] = seq
            vxlan.set_peer(lab, self.machine, vni, up)
            return True
        return _reply(go)

    def start(self, lab: str) -> dict[str, Any]:
        """The start barrier for this machine's routers (every part is ready now)."""
        def go() -> None:
            for r in self._state(lab).read().get("routers", []):
                self._query(lab, r, "start", 5, {})
        return _reply(go)

    # ------------------------------------------------------------ serve

    def _state(self, lab: str) -> PartState:
        state = PartState(lab, self.machine)
        if not state.exists():
            raise LsrError(f"machine {self.machine} has no part of lab '{lab}'")
        return state

    def _query(self, lab: str, router: str, what: str, timeout: float,
               params: dict[str, Any]) -> Any:
        path = PartState(lab, self.machine).dir / f"{router}.sock"
        if not path.exists():
            raise LsrError(f"lab '{lab}' has no running router '{router}' on machine "
                           f"{self.machine}")
        return query_socket(path, router, what, timeout, **params)

    def query(self, lab: str, router: str, what: str, timeout: float,
              params: dict[str, Any]) -> dict[str, Any]:
        """One management request to a router of this part (lsr.lab.query)."""
        return _reply(self._query, lab, router, what, timeout, params)

    def _node_ns(self, lab: str, node: str) -> str:
        if node not in self._state(lab).read().get("nodes", []):
            raise LsrError(f"{node} does not run on machine {self.machine}")
        return ns_name(lab, node)

    def set_link(self, lab: str, node: str, ifname: str, up: bool) -> dict[str, Any]:
        def go() -> None:
            netns.ip_batch([f"link set dev {ifname} {'up' if up else 'down'}"],
                           self._node_ns(lab, node))
        return _reply(go)

    def exec(self, lab: str, node: str, argv: Sequence[str], timeout: float,
             stdin: str | None = None) -> dict[str, Any]:
        """Run argv in a node's namespace; its exit status and output when it ends."""
        def go() -> dict[str, Any]:
            try:
                p = subprocess.run(["ip", "netns", "exec", self._node_ns(lab, node), *argv],
                                   input=stdin, capture_output=True, text=True, timeout=timeout,
                                   stdin=None if stdin is not None else subprocess.DEVNULL)
            except subprocess.TimeoutExpired as e:
                return {"rc": 124, "stdout": _text(e.stdout),
                        "stderr": _text(e.stderr) + f"timed out after {timeout:g} s\n"}
            except FileNotFoundError as e:
                return {"rc": 127, "stdout": "", "stderr": f"{e}\n"}
            return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
        return _reply(go)

    def status(self, lab: str) -> dict[str, Any]:
        """This part's router processes (alive or not) and namespaces."""
        def go() -> dict[str, Any]:
            st = self._state(lab).read()
            routers = {p["role"].split(":", 1)[-1]: {"pid": p["pid"],
                                                     "alive": pid_alive(p["pid"], p["start"])}
                       for p in st.get("pids", []) if p["role"].startswith("router:")}
            return {"routers": routers, "namespaces": st.get("namespaces", []),
                    "building": bool(st.get("building"))}
        return _reply(go)

    # ------------------------------------------------------------ teardown

    def teardown(self, lab: str) -> dict[str, Any]:
        """Everything this part's registry lists; True if there was a part here."""
        return _reply(self.teardown_part, lab)

    def teardown_part(self, lab: str) -> bool:
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        state = PartState(lab, self.machine)
        if not state.dir.exists():
            return False
        try:
            with state.locked():
                remove_resources(state)
                shutil.rmtree(state.dir, ignore_errors=True)
        except Gone:  # claimed an instant ago (no lock yet) or removed meanwhile
            shutil.rmtree(state.dir, ignore_errors=True)
        parent = lab_dir(lab)
        with contextlib.suppress(OSError):  # the lab's directory, if nothing else is in it
            parent.rmdir()
        return True


def teardown_local_parts(lab: str) -> list[str]:
    """Every part of `lab` on this machine torn down without Ray (`lsr lab down` here, when
    the machine that brought the lab up, or the cluster, is gone); their machine names."""
    d = lab_dir(lab)
    if not d.is_dir() or d.is_symlink():
        return []
    done = []
    for p in sorted(d.glob("part-*")):
        if p.is_dir() and not p.is_symlink():
            machine = p.name[len("part-"):]
            LabAgent(machine).teardown_part(lab)
            done.append(machine)
    return done


def _text(b: bytes | str | None) -> str:
    if b is None:
        return ""
    return b if isinstance(b, str) else b.decode(errors="replace")

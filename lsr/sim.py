"""Whole-network LDP simulation in one process, on a virtual clock.

Every router of a Topology runs one `ldp.instance.LdpInstance`. The driver:

* feeds each router its IGP RIB (`lsr.core.igp.Igp`) as `RibChanged`;
* delivers every `SendHello` to the router at the other end of the link;
* joins `TcpConnect` to the listener of the remote transport address with an
  in-memory byte pipe: the bytes are real LDP PDUs from `ldp.codec`;
* runs timers on a deterministic event queue, a heap ordered by (time, seq),
  with a fixed link delay.

Same topology in, same labels and same event order out, every run.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any

from ldp.events import (
    ApplyLfib,
    CancelTimer,
    HelloReceived,
    InterfaceDown,
    InterfaceUp,
    LogEvent,
    RibChanged,
    SendHello,
    Start,
    StartTimer,
    TcpAccepted,
    TcpClose,
    TcpClosed,
    TcpConnect,
    TcpConnected,
    TcpData,
    TcpListen,
    TcpSend,
    TimerExpired,
)
from ldp.fsm import State
from ldp.instance import LdpInstance
from ldp.messages import ALL_ROUTERS
from lsr.core.igp import Igp
from lsr.core.topology import Topology
from lsr.errors import LsrError

if TYPE_CHECKING:  # the LSP ping network is built only on demand (sim_network)
    from lsr.oam.trace import LfibNetwork

LINK_DELAY = 0.001  # s, one way, hellos and TCP alike
_TCP_EVENTS = (TcpAccepted, TcpConnected, TcpData, TcpClosed)


class SimError(Exception):
    pass


@dataclass
class SimResult:
    """What `Simulation.run()` returns."""

    converged: bool
    time: float  # virtual time at which the last LFIB/session change happened
    ended: float  # virtual time at which the run stopped
    events: int  # events processed by this run
    instances: dict[str, LdpInstance] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)  # message type -> count sent

    def summary(self) -> dict[str, Any]:
        return {
            "converged": self.converged,
            "convergence_time": round(self.time, 6),
            "events": self.events,
            "messages": dict(sorted(self.messages.items())),
        }


class Simulation:
    def __init__(
        self,
        topo: Topology,
        *,
        link_delay: float = LINK_DELAY,
        retry_initial: float = 1.0,
        retry_max: float = 8.0,
        log: bool = False,
    ) -> None:
        self.topo = topo
        self.link_delay = link_delay
        self.now = 0.0
        self.down: set[int] = set()
        self.igp = Igp(topo)
        self.routers = [r.name for r in topo.routers]
        self.instances: dict[str, LdpInstance] = {
            r: LdpInstance.from_topology(topo, r, retry_initial=retry_initial, retry_max=retry_max)
            for r in self.routers
        }
        self._seq = 0
        self._queue: list[tuple[float, int, str, Any, int]] = []
        self._timers: dict[tuple[str, str], int] = {}  # (router, timer) -> live seq
        self._listen: dict[IPv4Address, str] = {}
        self._pipes: dict[tuple[str, int], tuple[str, int]] = {}
        self._accept_ids: dict[str, int] = {r: 0 for r in self.routers}
        self._inflight_tcp = 0
        self.last_change = 0.0
        self.events = 0
        self.log_lines: list[str] | None = [] if log else None
        self.lsr_names = {str(n.lsr_id): n.name for n in topo.routers}
        self.started = False

    # -------------------------------------------------------------- queue

    def _push(self, t: float, router: str, event: Any, timer_seq: int = 0) -> int:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, router, event, timer_seq))
        if isinstance(event, _TCP_EVENTS):
            self._inflight_tcp += 1
        return self._seq

    def _deliver(self, router: str, event: Any) -> None:
        self.events += 1
        actions = self.instances[router].handle(event, self.now)
        self._perform(router, actions)

    def _perform(self, router: str, actions: list[Any]) -> None:
        d = self.link_delay
        for a in actions:
            if isinstance(a, TcpSend):
                peer = self._pipes.get((router, a.conn))
                if peer is not None:
                    self._push(self.now + d, peer[0], TcpData(peer[1], a.data))
            elif isinstance(a, StartTimer):
                key = (router, a.timer)
                self._seq += 1
                seq = self._seq
                self._timers[key] = seq
                heapq.heappush(self._queue, (self.now + a.seconds, seq, router,
                                             TimerExpired(a.timer), seq))
            elif isinstance(a, CancelTimer):
                self._timers.pop((router, a.timer), None)
            elif isinstance(a, SendHello):
                self._hello(router, a)
            elif isinstance(a, ApplyLfib):
                self.last_change = self.now
            elif isinstance(a, TcpConnect):
                self._connect(router, a)
            elif isinstance(a, TcpClose):
                peer = self._pipes.pop((router, a.conn), None)
                if peer is not None:
                    self._pipes.pop(peer, None)
                    self._push(self.now + d, peer[0], TcpClosed(peer[1], "closed by peer"))
            elif isinstance(a, TcpListen):
                self._listen[a.address] = router
            elif isinstance(a, LogEvent):
                if self.log_lines is not None:
                    self.log_lines.append(f"{self.now:10.6f} {router}: {a.level}: {a.text}")

    def _hello(self, router: str, a: SendHello) -> None:
        iface = self.topo.nodes[router].interfaces[a.ifname]
        if iface.link in self.down:
            return
        peer = self.topo.nodes[iface.peer_node]
        if not peer.is_router:
            return
        src = a.src or iface.address.ip
        self._push(self.now + self.link_delay, peer.name,
                   HelloReceived(iface.peer_interface, src, ALL_ROUTERS, a.data))

    def _connect(self, router: str, a: TcpConnect) -> None:
        d = self.link_delay
        target = self._listen.get(a.remote)
        rib = self.igp.rib(router)
        if target is None or IPv4Network(f"{a.remote}/32") not in rib:
            self._push(self.now + 3 * d, router, TcpClosed(a.conn, "connection refused"))
            return
        # TCP MD5 (RFC 2385): both ends must agree on the key, else the SYN is dropped.
        mine = self.instances[target].password_for(self.instances[router].lsr_id)
        if mine != a.password:
            self._push(self.now + 3 * d, router, TcpClosed(a.conn, "MD5 mismatch (timeout)"))
            return
        self._accept_ids[target] -= 1
        aconn = self._accept_ids[target]
        self._pipes[(router, a.conn)] = (target, aconn)
        self._pipes[(target, aconn)] = (router, a.conn)
        self._push(self.now + d, target, TcpAccepted(aconn, a.remote, a.local))
        self._push(self.now + 2 * d, router, TcpConnected(a.conn))

    # -------------------------------------------------------------- control

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        for r in self.routers:
            self._deliver(r, RibChanged(self.igp.rib(r)))
        for r in self.routers:
            self._deliver(r, Start())

    def expected_sessions(self) -> set[tuple[str, str]]:
        """Router pairs joined by at least one up link: they must have a session."""
        pairs = set()
        for link in self.topo.links:
            a, b = link.a[0], link.b[0]
            if link.index in self.down:
                continue
            if self.topo.nodes[a].is_router and self.topo.nodes[b].is_router:
                pairs.add((a, b))
                pairs.add((b, a))
        return pairs

    def sessions_ok(self) -> bool:
        """Every expected session OPERATIONAL, and no others."""
        have = set()
        for r, inst in self.instances.items():
            for lid, s in inst.sessions.items():
                if s.state is not State.OPERATIONAL:
                    return False
                have.add((r, self.lsr_names.get(str(lid), str(lid))))
        return have == self.expected_sessions()

    def run(self, max_time: float = 3600.0, max_events: int = 50_000_000) -> SimResult:
        """Process events until converged (all sessions up, no TCP in flight) or max_time."""
        self.start()
        start_events = self.events
        limit = self.now + max_time
        converged = False
        check_every = 0
        while self._queue:
            if self._inflight_tcp == 0:
                check_every += 1
                if self.sessions_ok():
                    converged = True
                    break
            t, seq, router, ev, tseq = heapq.heappop(self._queue)
            if t > limit or self.events - start_events >= max_events:
                heapq.heappush(self._queue, (t, seq, router, ev, tseq))
                break
            self.now = t
            if tseq:
                if self._timers.get((router, ev.timer)) != tseq:
                    continue  # cancelled or re-armed
                del self._timers[(router, ev.timer)]
            elif isinstance(ev, _TCP_EVENTS):
                self._inflight_tcp -= 1
                if isinstance(ev, (TcpAccepted, TcpConnected)):
                    self.last_change = t
            self._deliver(router, ev)
        return SimResult(converged, self.last_change, self.now, self.events - start_events,
                         self.instances, self.message_counts())

    # -------------------------------------------------------------- link events

    def _rib_update(self) -> None:
        self.igp = Igp(self.topo, self.down)
        for r in self.routers:
            self._deliver(r, RibChanged(self.igp.rib(r)))

    def link_down(self, link_index: int) -> None:
        """Carrier down on a link: IGP recomputes, LDP loses the adjacencies on it."""
        self.start()
        link = self.topo.links[link_index]
        self.down.add(link_index)
        for node, ifname in (link.a, link.b):
            if node in self.instances:
                self._deliver(node, InterfaceDown(ifname))
        self._rib_update()
        self.last_change = self.now

    def link_up(self, link_index: int) -> None:
        self.start()
        link = self.topo.links[link_index]
        self.down.discard(link_index)
        self._rib_update()
        for node, ifname in (link.a, link.b):
            if node in self.instances:
                self._deliver(node, InterfaceUp(ifname))
        self.last_change = self.now

    # -------------------------------------------------------------- views

    def message_counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for inst in self.instances.values():
            for k, v in inst.counters()["sent"].items():
                total[k] = total.get(k, 0) + v
        return dict(sorted(total.items()))

    def name_of(self, lsr_id: str) -> str:
        return self.lsr_names.get(lsr_id, lsr_id)

    def lfib_json(self, routers: list[str] | None = None) -> dict:
        """`lsr sim lfib --json` (docs/cli.md): neighbours as node names."""
        out = {}
        for r in routers or self.routers:
            inst = self.instances[r]
            j = inst.lfib.to_json()
            for section in ("ftn", "ilm"):
                for e in j[section]:
                    for nh in e["nexthops"]:
                        nh["neighbor"] = self.name_of(nh["neighbor"])
            out[r] = {"lsr_id": str(inst.lsr_id), **j}
        return {"routers": out}

    def bindings_json(self, router: str) -> dict:
        b = self.instances[router].bindings()
        for e in b:
            for rm in e["remote"]:
                rm["neighbor"] = self.name_of(rm["neighbor"])
        return {"bindings": b}

    def neighbors_json(self, router: str) -> list[dict]:
        n = self.instances[router].neighbors()
        for e in n:
            e["neighbor"] = self.name_of(e["neighbor"])
        return n

    def summary_json(self, result: SimResult) -> dict:
        sessions = sum(len(i.sessions) for i in self.instances.values()) // 2
        fecs = set()
        labels = 0
        for inst in self.instances.values():
            fecs |= set(inst.lde.fecs)
            labels += sum(1 for v in inst.lde.local.values() if v >= 16)
        return {
            "topology": self.topo.name,
            "routers": len(self.routers),
            "sessions": sessions,
            "fecs": len(fecs),
            "labels": labels,
            "ftn_entries": sum(len(i.lfib.ftn) for i in self.instances.values()),
            "ilm_entries": sum(len(i.lfib.ilm) for i in self.instances.values()),
            **result.summary(),
        }


def simulate(topo: Topology, **kw: Any) -> tuple[Simulation, SimResult]:
    """Build, start and run a simulation to convergence."""
    sim = Simulation(topo, **kw)
    res = sim.run()
    return sim, res


def sim_network(topo: Topology) -> LfibNetwork:
    """What `lsr lsp --sim` probes: `LfibNetwork` over the converged simulation's LFIBs."""
    from lsr.oam.lspping import lfib_network
    from lsr.oam.validate import lfibs_from_json

    sim, res = simulate(topo)
    if not res.converged:
        raise LsrError(f"{topo.source}: LDP did not converge in the simulation")
    return lfib_network(topo, lfibs_from_json(sim.lfib_json()))

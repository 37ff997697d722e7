"""The simulator split over partitions: each runs some routers, all on one virtual clock.

A `Partition` is a `Simulation` of its own routers (`only=`): their OSPF, LDP and timers,
one event queue. What it sends to a router of another partition (OSPF packets, LDP
Hellos, TCP segments, connection set-up) goes to its outbox instead of its queue.
`run_partitioned` drives the partitions in rounds (conservative parallel discrete-event
simulation): every message between routers takes at least the link delay L, so in a
round each partition processes its events in [T, T + L) without hearing from the
others -- nothing sent in that window can arrive before T + L -- and then the outboxes
go to their partitions, each batch in (time, sending partition, sending order) order.
T is the earliest event anywhere, so idle stretches cost one round.

Where the partitions run is a backend's business: `LocalBackend` (in this process, every
message pickled as it would be on a wire: the tests) or `lsr.simray` (Ray actors on a
cluster). The routers see the same inputs at the same virtual times as in one process;
only events at the very same time may be taken in another order, which changes no
converged LFIB (labels are planned per FEC). BGP sessions join loopbacks across the
network (each end's RIB is looked at when one connects): not partitioned.
"""

from __future__ import annotations

import gc
import heapq
import pickle
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, Protocol

import networkx as nx
from networkx.algorithms.community import kernighan_lin_bisection

from bgp.config import from_topology as bgp_config
from ldp.events import TcpAccepted, TcpClosed, TcpConnected, TcpData
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.sim import LINK_DELAY, Simulation, parse_link
from ospf import events as ospf_ev

_PacketReceived = ospf_ev.PacketReceived
_TCP = (TcpAccepted, TcpConnected, TcpData, TcpClosed)  # the events the base counts in flight
INF = float("inf")
_CONN_BITS = 24  # an accepted connection's ID: -((connecting router's index + 1) << 24 | conn)


class Partition(Simulation):
    """The routers `owned` of `topo`, partition `index` of a run; `owner` maps every
    router to its partition."""

    def __init__(self, topo: Topology, owned: Sequence[str], index: int,
                 owner: dict[str, int], **kw: Any) -> None:
        super().__init__(topo, only=frozenset(owned), **kw)
        if self.bgp:
            raise LsrError(f"{topo.source}: a partitioned run does not carry BGP sessions "
                           "(remove the bgp: section or run in one process)")
        self.index = index
        self.owner = owner
        self.names = [r.name for r in topo.routers]  # index <-> router, every partition alike
        self.ordinal = {n: k for k, n in enumerate(self.names)}
        self.cpu = 0.0  # CPU seconds in `step` (this partition's share of a process)
        self.outbox: list[tuple] = []
        self.passwords: dict[str, dict[IPv4Address, str]] = {}  # other partitions' routers'

    # ------------------------------------------------------------ where events go

    def _mine(self, dest: str) -> bool:
        return self.owner.get(dest.partition("/")[0], self.index) == self.index

    def _queue_for(self, router: str) -> list:
        return self._queue if self.owner.get(router, self.index) == self.index else self.outbox

    def _push(self, t: float, router: str, event: Any, timer_seq: int = 0) -> int:
        if self._mine(router):
            return super()._push(t, router, event, timer_seq)
        self._seq += 1
        self.outbox.append((t, self._seq, router, event, 0))
        return self._seq

    def _password(self, target: str, lsr_id: IPv4Address) -> str | None:
        if target in self.instances:
            return super()._password(target, lsr_id)
        return self.passwords.get(target, {}).get(lsr_id)

    def _accept_id(self, target: str, router: str, conn: int) -> int:
        # A function of the connecting end (which another partition may be): the accepting
        # partition learns the pipe from the ID alone (`inject`).
        return -(((self.ordinal[router] + 1) << _CONN_BITS) | conn)

    def expected_sessions(self) -> set[tuple[str, str]]:
        return {(a, b) for a, b in super().expected_sessions() if a in self.instances}

    # ------------------------------------------------------------ the round

    def begin(self) -> dict[str, Any]:
        """Start every router; what the others need to connect to ours."""
        self.start()
        return {"listen": {a: r for a, r in self._listen.items() if r in self.instances},
                "passwords": {r: dict(self.instances[r].passwords) for r in self.routers}}

    def learn(self, listen: dict[IPv4Address, str],
              passwords: dict[str, dict[IPv4Address, str]]) -> None:
        """Every partition's listeners and TCP MD5 keys (`begin`)."""
        for a, r in listen.items():
            self._listen.setdefault(a, r)
        for r, pw in passwords.items():
            if r not in self.instances:
                self.passwords[r] = pw

    def inject(self, batches: Sequence[Sequence[tuple]]) -> None:
        """Events from the other partitions, batch k from partition k, into our queue in
        (time, sending partition, sending order) order."""
        items = [(e[0], k, e[1], e[2], e[3]) for k, b in enumerate(batches) for e in b]
        items.sort(key=lambda x: (x[0], x[1], x[2]))
        q = self._queue
        for t, _, _, dest, ev in items:
            if ev.__class__ is _PacketReceived:
                self._inflight_ospf += 1
            elif isinstance(ev, _TCP):
                self._inflight_tcp += 1
                if isinstance(ev, TcpAccepted):  # the pipe back to the connecting end
                    cid = -ev.conn
                    self._pipes[(dest, ev.conn)] = (self.names[(cid >> _CONN_BITS) - 1],
                                                    cid & ((1 << _CONN_BITS) - 1))
                elif isinstance(ev, TcpClosed):  # the other end closed: nothing more goes
                    self._pipes.pop((dest, ev.conn), None)
            self._seq += 1
            heapq.heappush(q, (t, self._seq, dest, ev, 0))

    def window(self, t_end: float) -> None:
        """Every event before `t_end` (`Simulation._run`'s loop, without its stops: the
        driver decides those between rounds)."""
        q = self._queue
        timers = self._timers
        gc_was = gc.isenabled()
        gc.disable()  # as `Simulation.run`
        try:
            while q and q[0][0] < t_end:
                t, _, router, ev, tseq = heapq.heappop(q)
                self.now = t
                if tseq:
                    if timers.get((router, ev.timer)) != tseq:
                        continue  # cancelled or re-armed
                    del timers[(router, ev.timer)]
                elif isinstance(ev, _PacketReceived):
                    self._inflight_ospf -= 1
                elif isinstance(ev, _TCP):
                    self._inflight_tcp -= 1
                    if isinstance(ev, (TcpAccepted, TcpConnected)):
                        self.last_change = t
                self._deliver(router, ev)
        finally:
            if gc_was:
                gc.enable()

    def take_outbox(self, parts: int) -> list[list[tuple]]:
        """The outbox by destination partition (the base counted the OSPF packets in it
        as in flight here: the receiving partition counts them from `inject` on)."""
        out: list[list[tuple]] = [[] for _ in range(parts)]
        for e in self.outbox:
            if e[3].__class__ is _PacketReceived:
                self._inflight_ospf -= 1
            out[self.owner[e[2].partition("/")[0]]].append(e)
        self.outbox.clear()  # the same list: `_queue_for` handed it out
        return out

    def status(self, sent: list[list[tuple]]) -> dict[str, Any]:
        """Where this partition is, for the driver's stops and next window."""
        q = self._queue
        first_out = min((e[0] for b in sent for e in b), default=INF)
        idle = self._inflight_tcp == 0 and self._inflight_ospf == 0
        return {
            "next": min(q[0][0] if q else INF, first_out),
            "sent": sum(len(b) for b in sent),
            "settled": idle and self.ospf_settled() and self.sessions_ok(),
            "last_change": self.last_change,
            "progress": self._progress,
            "events": self.events,
            "now": self.now,
        }

    def step(self, t_end: float, *inbox: Sequence[tuple]) -> tuple:
        """One round: take the inbox, run the window, hand out the outbox.
        Returns (status, outbox for partition 0, 1, ...)."""
        c0 = time.process_time()
        self.inject(inbox)
        self.window(t_end)
        sent = self.take_outbox(len(inbox))
        self.cpu += time.process_time() - c0
        return (self.status(sent), *sent)

    def fail_link(self, link_index: int, now: float) -> None:
        """`Simulation.link_down` at the run's common time."""
        self.now = max(self.now, now)
        self.link_down(link_index)

    def result(self, lfib: bool = True) -> dict[str, Any]:
        """What the driver merges into one run's summary and LFIBs (`lfib`: with them)."""
        sessions = sum(1 for i in self.instances.values() for s in i.sessions.values()
                       if s.state.value == "OPERATIONAL")
        fecs: set = set()
        labels = 0
        for inst in self.instances.values():
            fecs |= set(inst.lde.fecs)
            labels += sum(1 for v in inst.lde.local.values() if v >= 16)
        return {
            "lfib": self.lfib_json()["routers"] if lfib else {},
            "cpu_s": self.cpu,
            "sessions": sessions,
            "fecs": fecs,
            "labels": labels,
            "ftn_entries": sum(len(i.lfib.ftn) for i in self.instances.values()),
            "ilm_entries": sum(len(i.lfib.ilm) for i in self.instances.values()),
            "messages": self.message_counts(),
            "ospf": {
                "adjacencies": sum(i.full_neighbors() for i in self.ospf.values()),
                "lsdb": max((len(i.lsdb) for i in self.ospf.values()), default=0),
                "spf_runs": sum(i.spf_runs for i in self.ospf.values()),
                "packets": sum(v for i in self.ospf.values()
                               for k, v in i.counters.items() if k.startswith("tx-")),
            } if self.ospf else None,
        }


def check_partitionable(topo: Topology) -> None:
    """One clear line for what a partitioned run cannot do (before any cluster is used)."""
    if any(bgp_config(topo, r.name) is not None for r in topo.routers):
        raise LsrError(f"{topo.source}: a partitioned run does not carry BGP sessions "
                       "(remove the bgp: section or run in one process)")


def partition(topo: Topology, parts: int) -> list[list[str]]:
    """The routers in `parts` groups of (nearly) equal size with few links between
    them: recursive bisection, each half first a run of a breadth-first walk (routers
    in file order), then improved by Kernighan-Lin (networkx, seeded), which keeps the
    sizes. On the 400-router ISP-shaped map 29 of 479 links cross two groups, 88 cross
    eight (runs of one walk: 54 and 332). Deterministic in every process."""
    routers = [r.name for r in topo.routers]
    if parts < 1:
        raise LsrError("partitions must be at least 1")
    rank = {r: k for k, r in enumerate(routers)}
    graph = nx.Graph()  # routers as their ranks: int sets iterate alike in every process
    graph.add_nodes_from(range(len(routers)))
    graph.add_edges_from((rank[ln.a[0]], rank[ln.b[0]]) for ln in topo.links
                         if ln.a[0] in rank and ln.b[0] in rank and ln.a[0] != ln.b[0])
    groups = _bisect(graph, list(range(len(routers))), min(parts, len(routers)) or 1)
    return [[routers[k] for k in g] for g in groups]


def _walk(graph: nx.Graph, nodes: list[int]) -> list[int]:
    """`nodes` in breadth-first order (every connected piece, from its first node)."""
    inside = set(nodes)
    order: list[int] = []
    seen: set[int] = set()
    for root in nodes:
        if root in seen:
            continue
        seen.add(root)
        todo = deque([root])
        while todo:
            r = todo.popleft()
            order.append(r)
            for n in sorted(graph[r]):
                if n in inside and n not in seen:
                    seen.add(n)
                    todo.append(n)
    return order


def _bisect(graph: nx.Graph, nodes: list[int], parts: int) -> list[list[int]]:
    if parts == 1:
        return [nodes]
    order = _walk(graph, nodes)
    half = parts // 2
    cut = len(order) * half // parts
    a, b = set(order[:cut]), set(order[cut:])
    if min(len(a), len(b)) > 1:  # networkx's bisection needs two nodes a side
        a, b = kernighan_lin_bisection(graph.subgraph(order), partition=(a, b), seed=1,
                                       weight=None)
        if len(a) != cut:  # the sides come back in either order
            a, b = b, a
    a_nodes = [n for n in nodes if n in a]  # back in rank order
    b_nodes = [n for n in nodes if n in b]
    return _bisect(graph, a_nodes, half) + _bisect(graph, b_nodes, parts - half)


class Backend(Protocol):
    """Runs the partitions somewhere: each call goes to every partition, results in
    partition order. `step` gets, per partition, the batches addressed to it."""

    def call(self, method: str, *args: Any) -> list[Any]: ...

    def step(self, t_end: float, inboxes: list[list[Any]]) -> list[dict[str, Any]]: ...

    def inboxes(self) -> list[list[Any]]: ...

    def close(self) -> None: ...


class LocalBackend:
    """The partitions in this process; what crosses between them is pickled, as it would
    be between machines."""

    def __init__(self, topo: Topology, groups: list[list[str]], **kw: Any) -> None:
        owner = {r: k for k, g in enumerate(groups) for r in g}
        self.parts = [Partition(topo, g, k, owner, **kw) for k, g in enumerate(groups)]
        # the last round's outboxes, per receiving partition one batch per sending one
        self.pending: list[list[Any]] = [[[] for _ in groups] for _ in groups]

    def call(self, method: str, *args: Any) -> list[Any]:
        return [getattr(p, method)(*pickle.loads(pickle.dumps(args))) for p in self.parts]

    def step(self, t_end: float, inboxes: list[list[Any]]) -> list[dict[str, Any]]:
        out = [p.step(t_end, *pickle.loads(pickle.dumps(box)))
               for p, box in zip(self.parts, inboxes, strict=True)]
        k = len(self.parts)
        self.pending = [[out[src][1 + dst] for src in range(k)] for dst in range(k)]
        return [o[0] for o in out]

    def inboxes(self) -> list[list[Any]]:
        return self.pending

    def close(self) -> None:
        self.parts = []


@dataclass
class PartitionedRun:
    """A partitioned run's outcome, in the shapes `lsr sim run|lfib` print."""

    topo: Topology
    converged: bool
    time: float  # virtual time of the last change
    ended: float
    events: int
    rounds: int
    parts: list[dict[str, Any]] = field(repr=False)
    groups: list[list[str]] = field(repr=False)
    placement: list[str] | None = None  # where each partition ran (a backend that knows)

    def lfib_json(self, routers: list[str] | None = None) -> dict:
        merged: dict[str, Any] = {}
        for p in self.parts:
            merged.update(p["lfib"])
        names = routers or [r.name for r in self.topo.routers]
        return {"routers": {r: merged[r] for r in names}}

    def summary_json(self) -> dict[str, Any]:
        messages: dict[str, int] = {}
        for p in self.parts:
            for k, v in p["messages"].items():
                messages[k] = messages.get(k, 0) + v
        ospf = [p["ospf"] for p in self.parts if p["ospf"] is not None]
        fecs: set = set()
        for p in self.parts:
            fecs |= p["fecs"]
        return {
            "topology": self.topo.name,
            "routers": len(self.topo.routers),
            "sessions": sum(p["sessions"] for p in self.parts) // 2,
            "fecs": len(fecs),
            "labels": sum(p["labels"] for p in self.parts),
            "ftn_entries": sum(p["ftn_entries"] for p in self.parts),
            "ilm_entries": sum(p["ilm_entries"] for p in self.parts),
            "igp": "ospf" if ospf else "reference",
            **({"ospf": {
                "adjacencies": sum(o["adjacencies"] for o in ospf) // 2,
                "lsdb": max(o["lsdb"] for o in ospf),
                "spf_runs": sum(o["spf_runs"] for o in ospf),
                "packets": sum(o["packets"] for o in ospf),
            }} if ospf else {}),
            "converged": self.converged,
            "convergence_time": round(self.time, 6),
            "events": self.events,
            "messages": dict(sorted(messages.items())),
            "partitions": [len(g) for g in self.groups],
            "rounds": self.rounds,
            "partition_cpu_s": [round(p["cpu_s"], 2) for p in self.parts],
            **({"placement": self.placement} if self.placement else {}),
        }


def _rounds(backend: Any, link_delay: float, start: float, max_time: float,
            quiet: float) -> tuple[bool, list[dict[str, Any]], int]:
    """Rounds until every partition is settled with nothing in flight, or nothing
    progressed for `quiet` virtual seconds, or `max_time` passed, or no event is left."""
    statuses = backend.step(start, backend.inboxes())  # an empty window: the first status
    rounds = 0
    limit = start + max_time
    while True:
        if all(s["settled"] for s in statuses) and sum(s["sent"] for s in statuses) == 0:
            return True, statuses, rounds
        t = min(s["next"] for s in statuses)
        latest = max(max(s["last_change"], s["progress"]) for s in statuses)
        if t == INF or t > limit or t - latest > quiet:
            return False, statuses, rounds
        statuses = backend.step(t + link_delay, backend.inboxes())
        rounds += 1


def run_partitioned(topo: Topology, groups: list[list[str]],
                    backend_factory: Callable[..., Any] = LocalBackend,
                    down: Sequence[str] = (), link_delay: float = LINK_DELAY,
                    max_time: float = 3600.0, lfib: bool = True, **kw: Any) -> PartitionedRun:
    """Converge `topo` over the partitions `groups` (`partition`), then take the `down`
    links down and converge again (`lsr.sim.converge`, partitioned). `lfib`: bring the
    LFIBs back (else only the counts)."""
    idx = [parse_link(topo, d) for d in down]
    check_partitionable(topo)
    backend = backend_factory(topo, groups, link_delay=link_delay, **kw)
    placement = getattr(backend, "placement", None)
    try:
        shared = backend.call("begin")
        listen: dict = {}
        passwords: dict = {}
        for s in shared:
            listen.update(s["listen"])
            passwords.update(s["passwords"])
        backend.call("learn", listen, passwords)
        quiet = max(backend.call("quiet_time"))
        converged, statuses, rounds = _rounds(backend, link_delay, 0.0, max_time, quiet)
        if idx:
            now = max(s["now"] for s in statuses)
            for i in idx:
                backend.call("fail_link", i, now)
            converged, statuses, more = _rounds(backend, link_delay, now, max_time, quiet)
            rounds += more
        parts = backend.call("result", lfib)
    finally:
        backend.close()
    return PartitionedRun(
        topo, converged,
        time=max(s["last_change"] for s in statuses),
        ended=max(s["now"] for s in statuses),
        events=sum(s["events"] for s in statuses),
        rounds=rounds, parts=parts, groups=groups, placement=placement)

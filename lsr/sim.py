"""Whole-network LDP simulation in one process, on a virtual clock.

Every router of a Topology runs one `ldp.instance.LdpInstance` and, by default,
one `ospf.instance.OspfInstance` (`igp="ospf"`). The driver:

* delivers OSPF packets across links and feeds each router's OSPF RIB to its LDP
  speaker as `RibChanged` whenever an SPF run changes it (with `igp="reference"`
  the RIB comes from the centrally computed reference model `lsr.core.igp.Igp`);
* delivers every `SendHello` to the router at the other end of the link;
* joins `TcpConnect` to the listener of the remote transport address with an
  in-memory byte pipe: the bytes are real LDP PDUs from `ldp.codec`;
* runs timers on a deterministic event queue, a heap ordered by (time, seq),
  with a fixed link delay;
* runs a `bgp.instance.BgpInstance` on every router the file's `bgp:` section
  names: its TCP connections (port 179, between loopbacks) open only when both
  ends have an IGP route to the other, and bytes sent while the sender has no route
  wait (as TCP retransmits) until one appears; each router's IGP RIB feeds its BGP
  next-hop resolution.

Same topology in, same labels and same event order out, every run.
"""

from __future__ import annotations

import gc
import heapq
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any

from bgp import events as bgp_ev
from bgp import sixpe
from bgp import vpn as bgp_vpn
from bgp.config import from_topology as bgp_config
from bgp.instance import BgpInstance
from bgp.nlri import IPV6_LABELLED
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
    Stop,
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
from lsr.core.fib6 import Fib6
from lsr.core.igp import Igp, Route
from lsr.core.lfib import Lfib
from lsr.core.topology import Topology
from lsr.core.vpnfib import LabelKey, VpnTables, compose, local_routes, vrf_json
from lsr.oam.diagnose import BGP as STUCK_BGP
from lsr.oam.diagnose import LDP as STUCK_LDP
from lsr.oam.diagnose import OSPF as STUCK_OSPF
from lsr.oam.diagnose import (
    Stuck,
    bgp_findings,
    ldp_cause,
    ospf_cause,
    router_links,
    router_pairs,
)
from ospf import events as ospf_ev
from ospf.config import from_topology as ospf_config
from ospf.instance import OspfInstance

if TYPE_CHECKING:  # the LSP ping network is built only on demand (sim_network)
    from lsr.oam.trace import LfibNetwork

LINK_DELAY = 0.001  # s, one way, hellos and TCP alike
_TCP_EVENTS = (TcpAccepted, TcpConnected, TcpData, TcpClosed)
OSPF = "/ospf"  # queue destination suffix: "<router>/ospf" is that router's OSPF instance
BGP = "/bgp"  # "<router>/bgp": its BGP instance
_BGP_TCP = (bgp_ev.TcpAccepted, bgp_ev.TcpConnected, bgp_ev.TcpData, bgp_ev.TcpClosed)
IGP_MODES = ("ospf", "reference")
_COMPACT_MIN = 1 << 14  # queue entries before the first `_compact`
_PacketReceived = ospf_ev.PacketReceived
_SendPacket = ospf_ev.SendPacket
_StartTimer = ospf_ev.StartTimer
_new = tuple.__new__  # _new(PacketReceived, fields): a named tuple without its __new__


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
        igp: str = "ospf",
        only: Collection[str] | None = None,
    ) -> None:
        """`only`: run just these routers (a partition of a larger run, `lsr.simpart`);
        events for the others are the driver's to carry."""
        if igp not in IGP_MODES:
            raise SimError(f"igp must be one of {', '.join(IGP_MODES)}")
        self.topo = topo
        self.igp_mode = igp
        self.link_delay = link_delay
        self.now = 0.0
        self.down: set[int] = set()
        self.igp = Igp(topo)
        self.routers = [r.name for r in topo.routers if only is None or r.name in only]
        self.instances: dict[str, LdpInstance] = {
            r: LdpInstance.from_topology(topo, r, retry_initial=retry_initial, retry_max=retry_max)
            for r in self.routers
        }
        self.ospf: dict[str, OspfInstance] = (
            {r: OspfInstance(ospf_config(topo, r)) for r in self.routers} if igp == "ospf" else {})
        self.ribs: dict[str, dict[IPv4Network, Route]] = {r: {} for r in self.routers}
        self.stopped: set[str] = set()  # routers whose process is gone (router_stop)
        self._ldp_sync: dict[str, frozenset[str]] = {
            r: frozenset() for r, o in self.ospf.items() if o.cfg.ldp_sync}
        self._inflight_ospf = 0
        self._seq = 0
        self._queue: list[tuple[float, int, str, Any, int]] = []
        self._timers: dict[tuple[str, str], int] = {}  # (router, timer) -> live seq
        # A re-armed or cancelled timer leaves its old entry in the queue, to be skipped
        # when popped ("stale"). OSPF re-arms a retransmission timer at every flood: a
        # 3,000-router start leaves tens of millions of them. `_compact` drops the stale
        # entries that can no longer make a difference and keeps their (few distinct)
        # times: a skipped entry still moves the clock when popped, which shows only when
        # a run stops at its time limit or runs out of events (`_ghost_now`).
        self._compact_at = _COMPACT_MIN
        self._ghost_times: set[float] = set()
        self._compacted = False
        self._quiet_floor: float | None = None
        # (router, timer) -> its TimerExpired event, made once: a re-armed timer leaves its
        # old entry in the queue until popped, and OSPF re-arms dead and retransmission
        # timers all the time (~170k entries after a 200-router start).
        self._expiries: dict[tuple[str, str], Any] = {}
        # (router, interface) -> (link index, peer OSPF destination, peer interface, our
        # address, peer is a router): what delivering a SendPacket needs, looked up once.
        self._ospf_out: dict[tuple[str, str], tuple[int, str, str, IPv4Address, bool]] = {}
        self._listen: dict[IPv4Address, str] = {}
        self._dests: dict[str, tuple[str, str]] = {}  # queue destination -> (router, suffix)
        self._pipes: dict[tuple[str, int], tuple[str, int]] = {}
        self._accept_ids: dict[str, int] = {r: 0 for r in self.routers}
        self._inflight_tcp = 0
        self.last_change = 0.0
        self._progress = 0.0  # last OSPF adjacency change (run's `quiet` stop)
        self._settle_want: tuple[frozenset[int], frozenset[str], dict[str, int]] | None = None
        self.events = 0
        self.log_lines: list[str] | None = [] if log else None
        self.lsr_names = {str(n.lsr_id): n.name for n in topo.routers}
        self.started = False
        self.bgp: dict[str, BgpInstance] = {}
        for r in self.routers:
            cfg = bgp_config(topo, r)
            if cfg is not None:
                self.bgp[r] = BgpInstance(cfg)
        self._bgp_listen: dict[IPv4Address, str] = {}
        self._bgp_md5: dict[str, dict[IPv4Address, str]] = {}  # listener -> peer -> key
        self._bgp_findings: list[Stuck] | None = None  # sessions the configs keep down
        # (router, conn) -> (peer router, peer conn, our address, the peer's address)
        self._bgp_pipes: dict[tuple[str, int], tuple[str, int, IPv4Address, IPv4Address]] = {}
        self._bgp_backlog: dict[tuple[str, int], list[bytes]] = {}
        self._bgp_accept_ids: dict[str, int] = {r: 0 for r in self.bgp}
        self._inflight_bgp = 0
        # Called with (router, BestPathChanged) for every Loc-RIB change: the hook a VPN
        # layer (VRF import) listens on.
        self.bgp_listeners: list[Any] = []
        # The VPN layer: PEs (routers with VRFs), their VPN labels, what each exported.
        self.pes = [r for r in self.routers if topo.nodes[r].vrfs]
        self.vpn_labels: dict[str, dict[LabelKey, int]] = {
            r: bgp_vpn.allocate_labels(topo, r) for r in self.pes}
        self._vpn_exported: dict[str, dict[Any, bgp_ev.LocalRoute]] = {r: {} for r in self.pes}
        self._sixpe_exported: dict[str, frozenset] = {}  # 6PE: the NLRIs originated

    # -------------------------------------------------------------- queue

    def _push(self, t: float, router: str, event: Any, timer_seq: int = 0) -> int:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, router, event, timer_seq))
        if isinstance(event, _TCP_EVENTS):
            self._inflight_tcp += 1
        elif isinstance(event, _BGP_TCP):
            self._inflight_bgp += 1
        return self._seq

    def _deliver(self, router: str, event: Any) -> None:
        if self.stopped and router.partition("/")[0] in self.stopped:
            return  # nothing reaches a stopped router
        self.events += 1
        dest = self._dests.get(router)
        if dest is None:  # (router, suffix): split once per destination, not per event
            name, slash, suffix = router.partition("/")
            dest = self._dests[router] = (name, slash + suffix)
        name, kind = dest
        if kind == OSPF:
            self._perform_ospf(name, self.ospf[name].handle(event, self.now))
            return
        if kind == BGP:
            self._perform_bgp(name, self.bgp[name].handle(event, self.now))
            return
        actions = self.instances[router].handle(event, self.now)
        self._perform(router, actions)
        if router in self._ldp_sync:
            self._sync_igp(router)

    def _sync_igp(self, router: str) -> None:
        """RFC 5443: tell OSPF where LDP is operational when that changes."""
        ops = self.instances[router].operational_interfaces()
        if ops != self._ldp_sync[router]:
            self._ldp_sync[router] = ops
            self._deliver(router + OSPF, ospf_ev.LdpStatus(ops))

    def _arm(self, dest: str, timer: str, seconds: float, kind: type) -> None:
        self._seq += 1
        seq = self._seq
        key = (dest, timer)
        self._timers[key] = seq
        expired = self._expiries.get(key)
        if expired is None:
            expired = self._expiries[key] = kind(timer)
        heapq.heappush(self._queue, (self.now + seconds, seq, dest, expired, seq))
        if len(self._queue) > self._compact_at:
            self._compact()

    def _compact(self) -> None:
        """Drop stale timer entries (see `_timers`) that no run can stop at.

        A popped stale entry only sets the clock, and a run checks its `quiet` stop after
        each pop; one at time t can end a run only if t - max(last change, progress) >
        quiet. Those at or before max(last change, progress) + quiet_time() - 1 s can
        therefore never end a run with quiet >= quiet_time() (both only grow; the second
        is a margin for rounding), which every caller uses (`run` refuses a smaller quiet
        once entries were dropped). What remains of them: their times, for `_ghost_now`.
        A stale entry never becomes live again (sequence numbers only grow)."""
        if self._quiet_floor is None:
            self._quiet_floor = self.quiet_time()
        floor = max(self.last_change, self._progress) + self._quiet_floor - 1.0
        timers = self._timers
        ghosts = self._ghost_times
        keep = []
        for e in self._queue:
            tseq = e[4]
            if tseq and e[0] <= floor and timers.get((e[2], e[3].timer)) != tseq:
                ghosts.add(e[0])
                continue
            keep.append(e)
        if len(keep) < len(self._queue):
            self._compacted = True
        now = self.now
        self._ghost_times = {g for g in ghosts if g >= now}
        heapq.heapify(keep)
        self._queue[:] = keep
        self._compact_at = max(2 * len(keep), _COMPACT_MIN)

    def _ghost_now(self, limit: float) -> None:
        """The clock as if the dropped stale entries up to `limit` had been popped (a run
        that stops at its time limit, or runs out of events, ends at the last one)."""
        late = [g for g in self._ghost_times if self.now < g <= limit]
        if late:
            self.now = max(late)

    def _queue_for(self, router: str) -> list:
        """The list events for `router` are pushed on (a heap): ours, whichever router
        (`lsr.simpart` keeps another one for the routers of other partitions). `_compact`
        keeps the list object, so it may be held."""
        return self._queue

    def _perform_ospf(self, router: str, actions: list[Any]) -> None:
        dest = router + OSPF
        arrive = self.now + self.link_delay  # the clock does not move while actions run
        for a in actions:
            cls = a.__class__  # the two most frequent actions first, by class
            if cls is _StartTimer:
                self._arm(dest, a.timer, a.seconds, ospf_ev.TimerExpired)
            elif cls is _SendPacket or isinstance(a, ospf_ev.SendPacket):
                out = self._ospf_out.get((router, a.ifname))
                if out is None:
                    iface = self.topo.nodes[router].interfaces[a.ifname]
                    peer = self.topo.nodes[iface.peer_node]
                    out = self._ospf_out[(router, a.ifname)] = (
                        iface.link, peer.name + OSPF, iface.peer_interface, iface.address.ip,
                        peer.is_router, self._queue_for(peer.name))
                link, peer_dest, peer_if, src, to_router, q = out
                if link in self.down or not to_router:
                    continue
                self._inflight_ospf += 1
                # self._push(...), inlined: the most frequent event by far
                self._seq += 1
                heapq.heappush(q, (arrive, self._seq, peer_dest,
                                   _new(_PacketReceived, (peer_if, src, a.dst, a.data)), 0))
            elif isinstance(a, ospf_ev.StartTimer):
                self._arm(dest, a.timer, a.seconds, ospf_ev.TimerExpired)
            elif isinstance(a, ospf_ev.CancelTimer):
                self._timers.pop((dest, a.timer), None)
            elif isinstance(a, ospf_ev.RoutesChanged):
                self.ribs[router] = a.rib
                self.last_change = self.now
                self._deliver(router, RibChanged(a.rib, a.changed, a.base))
                if router in self.bgp:
                    self._bgp_rib(router, a.rib)
            elif isinstance(a, ospf_ev.NeighborChange):
                self._progress = self.now
                if self.log_lines is not None:
                    self.log_lines.append(f"{self.now:10.6f} {router}: ospf: {a.ifname} "
                                          f"{self.name_of(str(a.router_id))} {a.old} -> {a.new} "
                                          f"({a.event})")

    def _perform(self, router: str, actions: list[Any]) -> None:
        d = self.link_delay
        for a in actions:
            if isinstance(a, TcpSend):
                peer = self._pipes.get((router, a.conn))
                if peer is not None:
                    self._push(self.now + d, peer[0], TcpData(peer[1], a.data))
            elif isinstance(a, StartTimer):
                self._arm(router, a.timer, a.seconds, TimerExpired)
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
        rib = self.ribs[router] if self.ospf else self.igp.rib(router)
        if target is None or IPv4Network(f"{a.remote}/32") not in rib:
            self._push(self.now + 3 * d, router, TcpClosed(a.conn, "connection refused"))
            return
        # TCP MD5 (RFC 2385): both ends must agree on the key, else the SYN is dropped.
        mine = self._password(target, self.instances[router].lsr_id)
        if mine != a.password:
            self._push(self.now + 3 * d, router, TcpClosed(a.conn, "MD5 mismatch (timeout)"))
            return
        aconn = self._accept_id(target, router, a.conn)
        self._pipes[(router, a.conn)] = (target, aconn)
        self._pipes[(target, aconn)] = (router, a.conn)
        self._push(self.now + d, target, TcpAccepted(aconn, a.remote, a.local))
        self._push(self.now + 2 * d, router, TcpConnected(a.conn))

    def _password(self, target: str, lsr_id: IPv4Address) -> str | None:
        """The TCP MD5 key `target`'s listener has for `lsr_id` (None: no key)."""
        return self.instances[target].password_for(lsr_id)

    def _accept_id(self, target: str, router: str, conn: int) -> int:
        """The connection ID `target` sees for `router`'s connection `conn`."""
        self._accept_ids[target] -= 1
        return self._accept_ids[target]

    # -------------------------------------------------------------- control

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        if self.ospf:  # LDP gets its RIB from each router's SPF runs
            for r in self.routers:
                self._deliver(r + OSPF, ospf_ev.Start())
        else:
            for r in self.routers:
                self._deliver(r, RibChanged(self.igp.rib(r)))
        for r in self.routers:
            self._deliver(r, Start())
        for r in self.bgp:
            if not self.ospf:
                self._bgp_rib(r, self.igp.rib(r))
            self._deliver(r + BGP, bgp_ev.Start())
            self._sixpe_export(r)
        for r in self.pes:
            self._vpn_export(r)

    def _sixpe_export(self, router: str) -> None:
        """A 6PE PE originates the IPv6 subnets of its customer ports that are up,
        labelled, and withdraws those of ports gone down (bgp.sixpe)."""
        if router not in self.bgp or router in self.stopped:
            return
        cfg = self.bgp[router].cfg
        if not sixpe.enabled(self.topo, router, cfg.families):
            return
        routes = sixpe.export_routes(self.topo, router, cfg.ipv6_explicit_null, self.down)
        want, gone, new = sixpe.export_diff(self._sixpe_exported.get(router, ()), routes)
        self._sixpe_exported[router] = want
        if gone:
            self._deliver(router + BGP, bgp_ev.WithdrawLocal(IPV6_LABELLED, gone))
        if new:
            self._deliver(router + BGP, bgp_ev.Originate(new))

    def fib6(self, router: str) -> Fib6:
        """The router's 6PE forwarding state now: BGP's labelled IPv6 best paths over its
        LDP FTN (empty without BGP)."""
        inst = self.bgp.get(router)
        if inst is None:
            return Fib6()
        return sixpe.fib6(self.topo, router, inst.loc_rib, self.instances[router].lfib.ftn,
                          inst.cfg.ipv6_explicit_null)

    def fib6s(self) -> dict[str, Fib6]:
        """`fib6` of every router that has 6PE routes or labels."""
        out = {r: self.fib6(r) for r in self.routers if r in self.bgp}
        return {r: f for r, f in out.items() if f.routes or f.labels or f.unresolved}

    def expected_sessions(self) -> set[tuple[str, str]]:
        """Router pairs joined by at least one up link: they must have a session."""
        pairs = set()
        for link in self.topo.links:
            a, b = link.a[0], link.b[0]
            if link.index in self.down:
                continue
            if self.topo.nodes[a].is_router and self.topo.nodes[b].is_router and \
                    a not in self.stopped and b not in self.stopped:
                pairs.add((a, b))
                pairs.add((b, a))
        return pairs

    def sessions_ok(self) -> bool:
        """Every expected session OPERATIONAL, and no others."""
        have = set()
        for r, inst in self.instances.items():
            if r in self.stopped:
                continue
            for lid, s in inst.sessions.items():
                if s.state is not State.OPERATIONAL:
                    return False
                have.add((r, self.lsr_names.get(str(lid), str(lid))))
        return have == self.expected_sessions()

    def stuck(self) -> list[Stuck]:
        """The OSPF adjacencies, LDP sessions and BGP sessions that should be up and are
        not, each with its cause: the two ends' configs compared (`lsr.oam.diagnose`),
        else what this simulation saw (no route to the peer's transport address or
        loopback, the session's state)."""
        out: list[Stuck] = []
        up_links = [ln for ln in router_links(self.topo) if ln.index not in self.down
                    and not any(n in self.stopped for n in ln.nodes)]
        if self.ospf:
            for ln in up_links:
                states = [self._ospf_state(n, ifname) for n, ifname in (ln.a, ln.b)]
                if states != ["Full", "Full"]:
                    seen = ", ".join(f"{n} {s}" for n, s in zip(ln.nodes, states, strict=True))
                    out.append(Stuck(STUCK_OSPF, *ln.nodes, ospf_cause(self.topo, ln) or seen,
                                     ln.index))
        joined = {frozenset(ln.nodes) for ln in up_links}
        for a, b in router_pairs(self.topo):
            if frozenset((a, b)) not in joined:
                continue
            na, nb = self._ldp_neighbor(a, b), self._ldp_neighbor(b, a)
            if na and nb and na["state"] == nb["state"] == State.OPERATIONAL.value:
                continue
            cause = ldp_cause(self.topo, a, b) or self._ldp_seen(a, b, na, nb)
            out.append(Stuck(STUCK_LDP, a, b, cause))
        return out + self._bgp_stuck()

    def _bgp_stuck(self) -> list[Stuck]:
        """The BGP sessions the configs keep down (`bgp_blocked`), and those expected up
        (`bgp_sessions`) that are not Established, with what the simulation saw."""
        rank = {n: node.index for n, node in self.topo.nodes.items()}
        out = self.bgp_blocked()
        pairs = {tuple(sorted(x, key=rank.__getitem__)) for x in self.bgp_sessions()}
        for a, b in pairs:
            sa, sb = (self.bgp[x].state_of(self.topo.nodes[y].lsr_id).value
                      for x, y in ((a, b), (b, a)))
            if sa == sb == "Established":
                continue
            seen = next((f"no route from {x} to {y}'s loopback {self.topo.nodes[y].lsr_id}"
                         for x, y in ((a, b), (b, a))
                         if not self._reaches(x, self.topo.nodes[y].lsr_id)), f"{a} {sa}, {b} {sb}")
            out.append(Stuck(STUCK_BGP, a, b, seen))
        return sorted(out, key=lambda s: (rank[s.a], rank[s.b]))

    def bgp_blocked(self) -> list[Stuck]:
        """The BGP sessions between two running routers that their configs keep down (TCP
        MD5 keys that differ: `lsr.oam.diagnose.bgp_findings`). Not in `bgp_sessions`, so
        a run does not wait for them, but with one of them the network has not converged."""
        if self._bgp_findings is None:
            self._bgp_findings = bgp_findings(self.topo) if self.bgp else []
        return [s for s in self._bgp_findings if s.a in self.bgp and s.b in self.bgp
                and s.a not in self.stopped and s.b not in self.stopped]

    def _ospf_state(self, router: str, ifname: str) -> str:
        for n in self.ospf[router].neighbors_json():
            if n["interface"] == ifname:
                return str(n["state"])
        return "Down"

    def _ldp_neighbor(self, router: str, peer: str) -> dict[str, Any] | None:
        lid = str(self.topo.nodes[peer].lsr_id)
        return next((n for n in self.instances[router].neighbors() if n["lsr_id"] == lid), None)

    def _ldp_seen(self, a: str, b: str, na: dict[str, Any] | None,
                  nb: dict[str, Any] | None) -> str:
        """Why the a-b session is down when both configs agree: what the simulation saw."""
        if na is None and nb is None:
            return "no LDP Hello adjacency"
        for x, y in ((a, b), (b, a)):  # RFC 5036 §2.5.2: TCP to the transport address
            addr = self.topo.nodes[y].lsr_id
            rib = self.ribs[x] if self.ospf else self.igp.rib(x)
            if IPv4Network(f"{addr}/32") not in rib:
                return f"no route from {x} to {y}'s transport address {addr}"
        parts = []
        for x, n in ((a, na), (b, nb)):
            if n is None:
                parts.append(f"{x}: no Hello adjacency")
            elif n["state"] != State.OPERATIONAL.value:
                parts.append(f"{x}: {n.get('reason') or n['state']}")
        return "; ".join(parts)

    def ospf_settled(self) -> bool:
        """Every router link has a Full adjacency, nothing waits for an acknowledgment,
        and no SPF run or LSA origination is pending."""
        if not self.ospf:
            return True
        if self._inflight_ospf:
            return False
        want = self._full_wanted()
        for r, inst in self.ospf.items():
            if r in self.stopped:
                continue
            if inst.full_neighbors() != want[r] or inst.pending_work():
                return False
            if (r + OSPF, "spf") in self._timers or (r + OSPF, "originate") in self._timers:
                return False
        return True

    def _full_wanted(self) -> dict[str, int]:
        """Router -> Full adjacencies it should have (cached: checked after every event)."""
        key = (frozenset(self.down), frozenset(self.stopped))
        if self._settle_want is None or self._settle_want[:2] != key:
            want = dict.fromkeys(self.routers, 0)
            for link in self.topo.links:
                ends = [link.a[0], link.b[0]]
                if link.index in self.down or not all(self.topo.nodes[n].is_router
                                                      for n in ends) \
                        or any(n in self.stopped for n in ends):
                    continue
                for n in ends:
                    if n in want:  # a partition counts its own routers only
                        want[n] += 1
            self._settle_want = (*key, want)
        return self._settle_want[2]

    def quiet_time(self) -> float:
        """Virtual seconds without progress after which no timer can still bring a session
        or adjacency up: twice the longest OSPF dead / retransmit interval, LDP hold time
        and connect retry of any router (BGP's too), and a margin."""
        longest = max([self.instances[r].retry_max for r in self.routers]
                      + [max(n.ospf.dead_interval, n.ospf.retransmit_interval,
                             n.ldp.hello_holdtime) for n in self.topo.routers]
                      + [max(float(b.cfg.connect_retry), float(b.cfg.hold_time))
                         for b in self.bgp.values()], default=0.0)
        return 2 * longest + 10.0

    def advance(self, seconds: float) -> SimResult:
        """Process every event of the next `seconds` of virtual time, converged or not
        (timers running out: dead intervals, retransmissions, refreshes)."""
        return self.run(max_time=seconds, stop_when_converged=False)

    def run(self, max_time: float = 3600.0, max_events: int = 50_000_000,
            stop_when_converged: bool = True, quiet: float | None = None) -> SimResult:
        """Process events until converged (all sessions up, no TCP in flight) or max_time.

        `quiet`: also stop once nothing has progressed (no LFIB, route, TCP session or OSPF
        adjacency change) for that many virtual seconds: the network has settled without
        converging (`quiet_time()` is long enough for every timer that could still help)."""
        # The cyclic garbage collector is off while events run: a large network holds
        # millions of long-lived objects (LIBs, LSDBs) that every full collection would
        # walk again, a third of the CPU time of a 200-router run, and events create next
        # to no cyclic garbage (reference counting frees it). It is back on at the end.
        if quiet is not None and self._quiet_floor is not None and \
                quiet < self._quiet_floor and self._compacted:
            raise SimError(f"quiet must be at least quiet_time() ({self._quiet_floor} s) "
                           "once the event queue has been compacted")
        gc_was = gc.isenabled()
        gc.disable()
        try:
            return self._run(max_time, max_events, stop_when_converged, quiet)
        finally:
            if gc_was:
                gc.enable()

    def _run(self, max_time: float, max_events: int, stop_when_converged: bool,
             quiet: float | None) -> SimResult:
        self.start()
        start_events = self.events
        limit = self.now + max_time
        converged = False
        check_every = 0
        while self._queue:
            if self._inflight_tcp == 0 and self._inflight_ospf == 0 and \
                    self._inflight_bgp == 0 and stop_when_converged:
                check_every += 1
                if self.ospf_settled() and self.sessions_ok() and self.bgp_settled():
                    converged = True
                    break
                if quiet is not None and self.now - max(self.last_change, self._progress) > quiet:
                    break
            t, seq, router, ev, tseq = heapq.heappop(self._queue)
            if t > limit or self.events - start_events >= max_events:
                heapq.heappush(self._queue, (t, seq, router, ev, tseq))
                if self.events - start_events < max_events:
                    self._ghost_now(limit)  # every entry up to the limit was popped
                break
            self.now = t
            if tseq:
                if self._timers.get((router, ev.timer)) != tseq:
                    continue  # cancelled or re-armed
                del self._timers[(router, ev.timer)]
            elif ev.__class__ is _PacketReceived:
                self._inflight_ospf -= 1
            elif isinstance(ev, _TCP_EVENTS):
                self._inflight_tcp -= 1
                if isinstance(ev, (TcpAccepted, TcpConnected)):
                    self.last_change = t
            elif isinstance(ev, ospf_ev.PacketReceived):
                self._inflight_ospf -= 1
            elif isinstance(ev, _BGP_TCP):
                self._inflight_bgp -= 1
            self._deliver(router, ev)
        else:
            self._ghost_now(limit)  # the queue ran out
        if not stop_when_converged:
            self.now = max(self.now, limit)
            converged = self.ospf_settled() and self.sessions_ok() and self.bgp_settled()
        if converged and self.bgp_blocked():  # settled, but a BGP session can never come up
            converged = False
        return SimResult(converged, self.last_change, self.now, self.events - start_events,
                         self.instances, self.message_counts())

    # -------------------------------------------------------------- link events

    def _rib_update(self) -> None:
        self.igp = Igp(self.topo, self.down)
        for r in self.routers:
            self._deliver(r, RibChanged(self.igp.rib(r)))
            if r in self.bgp:
                self._bgp_rib(r, self.igp.rib(r))

    def link_down(self, link_index: int) -> None:
        """Carrier down on a link: IGP recomputes, LDP loses the adjacencies on it."""
        self.start()
        link = self.topo.links[link_index]
        self.down.add(link_index)
        self.igp = Igp(self.topo, self.down)
        for node, ifname in (link.a, link.b):
            if node in self.ospf:
                self._deliver(node + OSPF, ospf_ev.InterfaceDown(ifname))
            if node in self.instances:
                self._deliver(node, InterfaceDown(ifname))
        if not self.ospf:
            self._rib_update()
        self._vpn_link(link_index)
        self.last_change = self.now

    def router_stop(self, router: str, crash: bool = False) -> None:
        """The router's process stops (`lsr lab node R stop`): OSPF flushes its LSA, LDP
        closes its sessions, and it hears nothing more. Its links keep carrier, so its
        neighbours keep their connected subnets and notice the rest by themselves.

        With `crash` (kill -9) nothing is sent: no flush, no Shutdown; its kernel resets
        its TCP connections (the peers see them close). Either way its listener is gone:
        a connect to it is refused until `router_start`."""
        self.start()
        if crash:
            for (r, conn), peer in sorted(self._pipes.items()):
                if r == router:
                    del self._pipes[(r, conn)]
                    self._pipes.pop(peer, None)
                    self._push(self.now + self.link_delay, peer[0],
                               TcpClosed(peer[1], "connection reset"))
            for (r, conn), pipe in sorted(self._bgp_pipes.items()):
                if r == router:
                    del self._bgp_pipes[(r, conn)]
                    self._bgp_backlog.pop((r, conn), None)
                    self._bgp_pipes.pop((pipe[0], pipe[1]), None)
                    self._push(self.now + self.link_delay, pipe[0] + BGP,
                               bgp_ev.TcpClosed(pipe[1], "connection reset"))
        else:
            if router in self.ospf:
                self._deliver(router + OSPF, ospf_ev.Stop())
            self._deliver(router, Stop())
            if router in self.bgp:
                self._deliver(router + BGP, bgp_ev.Stop())
        self.stopped.add(router)
        self._listen = {a: r for a, r in self._listen.items() if r != router}
        self._bgp_listen = {a: r for a, r in self._bgp_listen.items() if r != router}
        for key in [k for k in self._timers if k[0] in (router, router + OSPF, router + BGP)]:
            del self._timers[key]  # its timers die with the process
        self.last_change = self.now

    def router_crash(self, router: str) -> None:
        """The router's process dies without a word: no flush, no NOTIFICATION, no
        TCP close. Its neighbours find out from their own timers (OSPF dead interval,
        LDP KeepAlive, BGP hold timer)."""
        self.start()
        self.stopped.add(router)
        self.last_change = self.now

    def router_start(self, router: str) -> None:
        """A fresh process for a stopped router (`lsr lab node R start`): new OSPF and LDP
        instances that remember nothing (sequence numbers, sessions, labels' state)."""
        if router not in self.stopped:
            raise SimError(f"router {router} is not stopped")
        self.stopped.discard(router)
        for key in [k for k in self._pipes if k[0] == router]:  # a connect it never saw
            peer = self._pipes.pop(key)
            self._pipes.pop(peer, None)
        self.instances[router] = LdpInstance.from_topology(
            self.topo, router, retry_initial=self.instances[router].retry_initial,
            retry_max=self.instances[router].retry_max)
        if router in self.ospf:
            self.ospf[router] = OspfInstance(ospf_config(self.topo, router))
            self.ribs[router] = {}
            if router in self._ldp_sync:
                self._ldp_sync[router] = frozenset()
            self._deliver(router + OSPF, ospf_ev.Start(restart=True))
        else:
            self._deliver(router, RibChanged(self.igp.rib(router)))
        self._deliver(router, Start())
        # a new process reads the carrier of its interfaces (a lab router's netlink watch):
        # its links that are down stay down for it
        for i in sorted(self.down):
            for node, ifname in (self.topo.links[i].a, self.topo.links[i].b):
                if node == router:
                    if router in self.ospf:
                        self._deliver(router + OSPF, ospf_ev.InterfaceDown(ifname))
                    self._deliver(router, InterfaceDown(ifname))
        if router in self.bgp:
            for key in [k for k in self._bgp_pipes if k[0] == router]:
                pipe = self._bgp_pipes.pop(key)
                self._bgp_pipes.pop((pipe[0], pipe[1]), None)
            self.bgp[router] = BgpInstance(bgp_config(self.topo, router))
            if not self.ospf:
                self._bgp_rib(router, self.igp.rib(router))
            self._deliver(router + BGP, bgp_ev.Start())
            # the new process originates what its ports carry now (a lab router does
            # at start): 6PE subnets and, on a PE, its VRFs' routes
            self._sixpe_exported.pop(router, None)
            self._sixpe_export(router)
            if router in self._vpn_exported:
                self._vpn_exported[router] = {}
                self._vpn_export(router)
        self.last_change = self.now

    def link_up(self, link_index: int) -> None:
        self.start()
        link = self.topo.links[link_index]
        self.down.discard(link_index)
        self.igp = Igp(self.topo, self.down)
        if not self.ospf:
            self._rib_update()
        for node, ifname in (link.a, link.b):
            if node in self.ospf:
                self._deliver(node + OSPF, ospf_ev.InterfaceUp(ifname))
            if node in self.instances:
                self._deliver(node, InterfaceUp(ifname))
        self._vpn_link(link_index)
        self.last_change = self.now

    # -------------------------------------------------------------- BGP

    def _bgp_rib(self, router: str, rib: dict[IPv4Network, Route]) -> None:
        self._deliver(router + BGP, bgp_ev.RibChanged(rib))
        for key in [k for k in self._bgp_backlog if k[0] == router]:  # TCP retransmits
            pipe = self._bgp_pipes.get(key)
            if pipe is not None and self._reaches(router, pipe[3]):
                for data in self._bgp_backlog.pop(key):
                    self._push(self.now + self.link_delay, pipe[0] + BGP,
                               bgp_ev.TcpData(pipe[1], data))

    def _reaches(self, router: str, addr: IPv4Address) -> bool:
        """`router`'s IGP RIB has a route to `addr` (longest match)."""
        rib = self.ribs[router] if self.ospf else self.igp.rib(router)
        n = int(addr)
        return any(IPv4Network((n >> (32 - p) << (32 - p), p)) in rib for p in range(32, -1, -1))

    def _perform_bgp(self, router: str, actions: list[Any]) -> None:
        dest = router + BGP
        d = self.link_delay
        for a in actions:
            if isinstance(a, bgp_ev.TcpSend):
                pipe = self._bgp_pipes.get((router, a.conn))
                if pipe is None:
                    continue
                key = (router, a.conn)
                if key in self._bgp_backlog or not self._reaches(router, pipe[3]):
                    self._bgp_backlog.setdefault(key, []).append(a.data)
                else:
                    self._push(self.now + d, pipe[0] + BGP, bgp_ev.TcpData(pipe[1], a.data))
            elif isinstance(a, bgp_ev.StartTimer):
                self._arm(dest, a.timer, a.seconds, bgp_ev.TimerExpired)
            elif isinstance(a, bgp_ev.CancelTimer):
                self._timers.pop((dest, a.timer), None)
            elif isinstance(a, bgp_ev.TcpConnect):
                self._bgp_connect(router, a)
            elif isinstance(a, bgp_ev.TcpClose):
                self._bgp_backlog.pop((router, a.conn), None)
                pipe = self._bgp_pipes.pop((router, a.conn), None)
                if pipe is not None:
                    self._bgp_pipes.pop((pipe[0], pipe[1]), None)
                    self._bgp_backlog.pop((pipe[0], pipe[1]), None)
                    self._push(self.now + d, pipe[0] + BGP,
                               bgp_ev.TcpClosed(pipe[1], "closed by peer"))
            elif isinstance(a, bgp_ev.TcpListen):
                self._bgp_listen[a.address] = router
                self._bgp_md5[router] = dict(a.passwords)
            elif isinstance(a, bgp_ev.BestPathChanged):
                self.last_change = self.now
                for fn in self.bgp_listeners:
                    fn(router, a)
            elif isinstance(a, bgp_ev.PeerStateChanged):
                # a session up or down is progress; a connect failing again every
                # ConnectRetryTime to a peer out of reach is not (run's `quiet` stop)
                if "Established" in (a.old, a.new):
                    self.last_change = self.now
                if self.log_lines is not None:
                    self.log_lines.append(f"{self.now:10.6f} {router}: bgp: "
                                          f"{self.name_of(str(a.peer))} {a.old} -> {a.new} "
                                          f"({a.event})")
            elif isinstance(a, bgp_ev.LogEvent):
                if self.log_lines is not None:
                    self.log_lines.append(f"{self.now:10.6f} {router}: bgp {a.level}: {a.text}")

    def _bgp_connect(self, router: str, a: bgp_ev.TcpConnect) -> None:
        """A SYN to `a.remote`:179: it gets through when both ends have a route to each
        other and the remote listens; else the attempt fails (refused or unreachable)."""
        d = self.link_delay
        target = self._bgp_listen.get(a.remote)
        if target is None or target in self.stopped or not self._reaches(router, a.remote) \
                or not self._reaches(target, a.local):
            self._push(self.now + 3 * d, router + BGP, bgp_ev.TcpClosed(a.conn, "connection refused"))
            return
        # TCP MD5 (RFC 2385 §2): a segment without the key the receiver expects, or with
        # one it does not, is dropped: the SYN never gets through, as with LDP (_connect)
        if self._bgp_md5.get(target, {}).get(a.local) != a.password:
            self._push(self.now + 3 * d, router + BGP, bgp_ev.TcpClosed(a.conn, "MD5 mismatch (timeout)"))
            return
        self._bgp_accept_ids[target] -= 1
        aconn = self._bgp_accept_ids[target]
        self._bgp_pipes[(router, a.conn)] = (target, aconn, a.local, a.remote)
        self._bgp_pipes[(target, aconn)] = (router, a.conn, a.remote, a.local)
        # SYN-ACK before the acceptor's first data (its OPEN goes out when it accepts, at
        # `t`, and arrives at t + d): the same float, t + d, not now + 2 * d, which can be
        # an ulp later, so the OPEN came first and found the connection still in Connect
        t = self.now + d
        self._push(t, target + BGP, bgp_ev.TcpAccepted(aconn, a.remote, a.local))
        self._push(t + d, router + BGP, bgp_ev.TcpConnected(a.conn))

    def bgp_sessions(self) -> set[tuple[str, str]]:
        """(router, peer name) of every configured session whose ends both run, agree on
        the TCP MD5 key and one of them opens (with both ends passive, neither ever
        connects; with the keys differing, no SYN gets through)."""
        out = set()
        for r, inst in self.bgp.items():
            if r in self.stopped:
                continue
            for p in inst.cfg.peers:
                if p.name in self.stopped or p.name not in self.bgp:
                    continue
                back = self.bgp[p.name].peers.get(inst.cfg.local_address)
                if p.passive and back is not None and back.cfg.passive:
                    continue
                if (back.cfg.password if back is not None else None) != p.password:
                    continue
                out.add((r, p.name))
        return out

    def bgp_settled(self) -> bool:
        """Every configured BGP session between running routers is Established, and
        nothing is in flight, or held back: a connection whose peer is out of reach
        (its data backlogged, TCP retransmitting) is Established only until the hold
        timer expires (RFC 4271 §6.5), so the network has not settled while one exists."""
        if not self.bgp:
            return True
        if self._inflight_bgp or self._bgp_backlog:
            return False
        for r, p in self.bgp_sessions():
            inst = self.bgp[r]
            if inst.state_of(self.topo.nodes[p].lsr_id).value != "Established":
                return False
        return True

    def bgp_originate(self, router: str, routes: tuple[bgp_ev.LocalRoute, ...]) -> None:
        """Hand local routes to `router`'s BGP (the VPN layer's hook in)."""
        self.start()
        self._deliver(router + BGP, bgp_ev.Originate(routes))

    def bgp_withdraw(self, router: str, family: tuple[int, int], nlris: tuple) -> None:
        self.start()
        self._deliver(router + BGP, bgp_ev.WithdrawLocal(family, nlris))

    def bgp_deliver(self, router: str, event: Any) -> None:
        """Any BGP input event to `router` now (PeerStop, PeerStart, ...)."""
        self.start()
        self._deliver(router + BGP, event)

    # -------------------------------------------------------------- VPN (RFC 4364)

    def _vpn_export(self, router: str) -> None:
        """Hand `router`'s VRF routes to its BGP (withdrawing what is gone)."""
        if router not in self.bgp or router in self.stopped:
            return
        local = local_routes(self.topo, router, self.down)
        routes = bgp_vpn.export_routes(self.topo, router, self.vpn_labels[router], local)
        want, gone, new = bgp_vpn.export_diff(self._vpn_exported[router], routes)
        self._vpn_exported[router] = want
        for fam, nlris in gone.items():
            self.bgp_withdraw(router, fam, nlris)
        if new:
            self.bgp_originate(router, new)

    def _vpn_link(self, link_index: int) -> None:
        """A customer link changed: its PE exports (or withdraws) the port's routes."""
        link = self.topo.links[link_index]
        if link.subnet6 is not None and link.vrf is None:
            for node in link.nodes:
                self._sixpe_export(node)
        if link.vrf is not None:
            for node in link.nodes:
                if node in self._vpn_exported:
                    self._vpn_export(node)

    def vpn_tables(self, router: str) -> VpnTables:
        """`router`'s VRF FIBs and VPN ILM now: what its VRFs import from the Loc-RIB,
        over LDP's FTN (next hops named by LSR ID, as in LDP's tables)."""
        if router in self.bgp and router not in self.stopped:
            imported = bgp_vpn.import_routes(self.topo, router, self.bgp[router].loc_rib)
        else:
            imported = {}
        return compose(self.topo, router, imported, self.instances[router].lfib.ftn,
                       self.vpn_labels.get(router, {}), self.down)

    def lfibs(self) -> dict[str, Lfib]:
        """Every router's Lfib now: LDP's FTN and ILM, and on PEs the VRF FIBs and VPN
        ILM (what the forwarding tables are built from)."""
        out = {}
        for r in self.routers:
            lf = self.instances[r].lfib
            out[r] = Lfib(dict(lf.ftn), dict(lf.ilm))
            if r in self.vpn_labels:
                vt = self.vpn_tables(r)
                out[r].vrfs, out[r].vpn_ilm = vt.vrfs, vt.ilm
        return out

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
            lf = inst.lfib
            if r in self.vpn_labels:
                vt = self.vpn_tables(r)
                lf = Lfib(lf.ftn, lf.ilm, vt.vrfs, vt.ilm)
            j = lf.to_json()
            entries = j["ftn"] + j["ilm"] + j.get("vpn_ilm", []) + [
                e for fib in j.get("vrfs", {}).values() for e in fib]
            for e in entries:
                for nh in e["nexthops"]:
                    nh["neighbor"] = self.name_of(nh["neighbor"])
            out[r] = {"lsr_id": str(inst.lsr_id), **j}
            f6 = self.fib6(r) if r in self.bgp else None
            if f6 is not None and (f6.routes or f6.labels or f6.unresolved):
                j6 = f6.to_json()  # 6PE (lsr.core.fib6); only where there is some
                for e in j6["routes"]:
                    for nh in e["nexthops"]:
                        nh["neighbor"] = self.name_of(nh["neighbor"])
                out[r]["ipv6"] = j6
        return {"routers": out}

    def vrf_json(self, routers: list[str] | None = None, vrf: str | None = None) -> dict:
        """`lsr sim vrf --json` (docs/cli.md): each PE's VRFs, their routes (the FIB) with
        VPN and transport labels, the VPN labels, and imported routes left out."""
        out = {}
        for r in routers or self.pes:
            if self.topo.nodes[r].vrfs:
                out[r] = vrf_json(self.topo, r, self.vpn_tables(r), self.lsr_names, vrf)
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
        sessions = sum(1 for i in self.instances.values() for s in i.sessions.values()
                       if s.state is State.OPERATIONAL) // 2
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
            "igp": self.igp_mode,
            **({"ospf": self.ospf_summary()} if self.ospf else {}),
            **({"vpn": self.vpn_summary()} if self.pes else {}),
            **result.summary(),
        }

    def vpn_summary(self) -> dict[str, int]:
        """PEs, VRFs, VPN routes exported, VRF FIB entries (and imported ones left out)."""
        tables = [self.vpn_tables(r) for r in self.pes]
        return {
            "pes": len(self.pes),
            "vrfs": sum(len(self.topo.nodes[r].vrfs) for r in self.pes),
            "vpn_routes": sum(len(x) for x in self._vpn_exported.values()),
            "vrf_routes": sum(len(f) for t in tables for f in t.vrfs.values()),
            "rejected": sum(len(t.rejected) for t in tables),
        }

    def ospf_summary(self) -> dict[str, int]:
        return {
            "adjacencies": sum(i.full_neighbors() for i in self.ospf.values()) // 2,
            "lsdb": max((len(i.lsdb) for i in self.ospf.values()), default=0),
            "spf_runs": sum(i.spf_runs for i in self.ospf.values()),
            "packets": sum(v for i in self.ospf.values()
                           for k, v in i.counters.items() if k.startswith("tx-")),
        }


def simulate(topo: Topology, **kw: Any) -> tuple[Simulation, SimResult]:
    """Build, start and run a simulation to convergence, or until it stops progressing."""
    sim = Simulation(topo, **kw)
    res = sim.run(quiet=sim.quiet_time())
    return sim, res


def parse_link(topo: Topology, spec: str) -> int:
    """'A-B' (each NODE or NODE:INTERFACE; names may contain '-') -> the link's index."""
    return topo.parse_link(spec).index


@dataclass
class Outcome:
    """A simulation run as the analysis commands use it: converged, then the `--down`
    links failed and reconverged; what stayed down is in `stuck`."""

    sim: Simulation
    result: SimResult
    down: list[int]
    stuck: list[Stuck]

    @property
    def converged(self) -> bool:
        return self.result.converged

    def problems(self) -> list[str]:
        """One line per session or adjacency that did not come up ([] when converged)."""
        if self.converged:
            return []
        return [s.text() for s in self.stuck] or [
            f"did not converge by virtual time {self.result.ended:.3f} s"]

    def warning(self) -> str:
        """One line for stderr: '<file>: not converged: pe1-p1: LDP session ...; ...'."""
        return f"{self.sim.topo.source}: not converged: " + "; ".join(self.problems())


def converge(topo: Topology, down: Sequence[str] = (), **kw: Any) -> Outcome:
    """Run the simulation of `topo` to convergence (or until it stops changing), take
    the `down` links ('A-B') down and run again. Never raises for what did not converge:
    the caller shows what did, and `Outcome.stuck` says what did not and why."""
    idx = [parse_link(topo, d) for d in down]
    sim = Simulation(topo, **kw)
    res = sim.run(quiet=sim.quiet_time())
    for i in idx:
        sim.link_down(i)
    if idx:
        res = sim.run(quiet=sim.quiet_time())
    return Outcome(sim, res, idx, [] if res.converged else sim.stuck())


def sim_network(topo: Topology, outcome: Outcome | None = None) -> LfibNetwork:
    """What `lsr lsp --sim` probes: `LfibNetwork` over the simulation's LFIBs (`outcome`,
    else a fresh `converge`); what did not converge simply has no labels to probe."""
    from lsr.oam.lspping import lfib_network
    from lsr.oam.validate import lfibs_from_json

    o = outcome or converge(topo)
    return lfib_network(topo, lfibs_from_json(o.sim.lfib_json()))

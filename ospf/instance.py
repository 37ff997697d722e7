"""One router's OSPFv2 instance (RFC 2328), sans-I/O: events in, actions out.

Single area (0), point-to-point interfaces (every lab link is a veth pair) and
passive interfaces (host subnets: advertised as stub networks, no Hellos). The
procedures are tagged with their RFC sections where they happen: Hello (§10.5),
neighbor state machine (§10.3, `ospf.fsm`), database exchange (§10.6, §10.8),
Link State Requests (§10.7, §10.9), flooding (§13, §13.3, §13.5, §13.7), origination
and refresh (§12.4, §12.4.1), aging and MaxAge flush (§14), SPF (§16, `ospf.spf`)
with FRR-style throttling (initial delay, hold time doubling up to a maximum).

Skipped, and why: DR/BDR election (§9.4; no broadcast networks in our labs),
virtual links and areas other than 0 (§15, §3: single area), TOS (dropped from
RFC 2328), demand circuits, opaque LSAs (we do not set the O bit, so peers do
not send them).

Flood pacing (`OspfConfig.flood_pacing`, topology key `ospf: flood_pacing_ms`): what is
flooded out of an interface and the delayed acknowledgments for it (§13.5, Table 19)
wait in the neighbor's queues and leave together, LSAs grouped in LS Updates (§13.3: an
Update carries several LSAs) and headers in LSAcks (§13.5: "many acknowledgments may be
grouped together into a single Link State Acknowledgment packet"). What one event
(one received Update, a timer) queues goes out at its end; after that the interface
sends at most once per pacing interval, whatever arrives meanwhile in one Update and one
LSAck. FRR's ospfd sends an interface's Update queue from one event and its delayed acks
on an interval timer; Cisco IOS paces floods on an interface (`timers pacing flood`,
33 ms). Direct acknowledgments (duplicates not taken as implied acks, a MaxAge LSA we do
not have: Table 19) are sent at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from lsr.core.bucket import TokenBucket
from lsr.core.igp import Route
from ospf import fsm
from ospf.events import (
    Action,
    CancelTimer,
    Event,
    InterfaceDown,
    InterfaceUp,
    LdpStatus,
    NeighborChange,
    PacketReceived,
    RoutesChanged,
    SendPacket,
    SetLinkMetric,
    Start,
    StartTimer,
    Stop,
    TimerExpired,
)
from ospf.fsm import NbrAction, NbrEvent, NbrState
from ospf.lsdb import Entry, Lsdb, compare, compare_to
from ospf.packets import (
    ALL_SPF_ROUTERS,
    AREA0,
    DD_I,
    DD_M,
    DD_MS,
    INITIAL_SEQ,
    LS_REFRESH_TIME,
    MAX_AGE,
    MAX_SEQ,
    NO_AUTH,
    OPT_E,
    Auth,
    AuType,
    DbDescription,
    DecodeError,
    Hello,
    LinkType,
    Lsa,
    LsAck,
    LsaHeader,
    LsaKey,
    LsRequest,
    LsType,
    LsUpdate,
    Packet,
    PacketType,
    RouterLink,
    RouterLsaBody,
    decode_packet,
    encode_packet,
    lsa_key,
    packet_bytes,
)
from ospf.spf import FirstHop, RouteCache, routes

# Counter names of each packet body, made once (an f-string per packet adds up).
_RX = {c: f"rx-{c.__name__}" for c in (Hello, DbDescription, LsRequest, LsUpdate, LsAck)}
_TX = {c: f"tx-{c.__name__}" for c in (Hello, DbDescription, LsRequest, LsUpdate, LsAck)}
_TX_UPDATE = _TX[LsUpdate]
_TX_ACK = _TX[LsAck]
_LSA_TYPES = frozenset((1, 2, 3, 4, 5))
_ONE_LSA = (1).to_bytes(4, "big")  # an Update's LSA count, when it is 1
_TIMERS: dict[tuple[str, float], StartTimer] = {}
_new = tuple.__new__  # _new(SendPacket, fields): the named tuple without its __new__


def _start_timer(name: str, seconds: float) -> StartTimer:
    """StartTimer(name, seconds), shared: frozen, and re-armed at every flood."""
    t = _TIMERS.get((name, seconds))
    if t is None:
        if len(_TIMERS) >= 1 << 16:
            _TIMERS.clear()
        t = _TIMERS[(name, seconds)] = StartTimer(name, seconds)
    return t
MAX_LINK_METRIC = 0xFFFF  # RFC 5443 §3 (LSInfinity): the link stays usable as a last resort
HOST_MASK = IPv4Address("255.255.255.255")
MAX_DD_HEADERS = 60  # 8 + 60 * 20 octets: fits a 1500-octet MTU with IP and MD5
MAX_LSR_KEYS = 100
MAX_UPDATE_BYTES = 1400
ARRIVAL_MARGIN = 0.1  # s past a neighbor's MinLSArrival before a held instance goes out
# Flood bounds: a Hello from an unknown Router ID costs a neighbor and an immediate Hello
# back, so new neighbors on an interface come at most NEW_NBR_RATE a second (a burst of
# NEW_NBR_BURST); and a point-to-point link has one neighbor, which a Hello from another
# Router ID does not displace once it is 2-Way or more (counters: drop-hello-*).
NEW_NBR_RATE = 1.0
NEW_NBR_BURST = 4.0


@dataclass(frozen=True)
class InterfaceConfig:
    name: str
    address: IPv4Interface
    cost: int = 10
    passive: bool = False  # a host subnet: stub link only, no Hellos (§12.4.1.3)
    mtu: int = 1500


@dataclass
class OspfConfig:
    router_id: IPv4Address
    interfaces: tuple[InterfaceConfig, ...]
    loopback: IPv4Address | None = None
    hello_interval: int = 10
    dead_interval: int = 40
    retransmit_interval: float = 5
    transmit_delay: int = 1
    spf_delay: float = 0.0  # seconds; FRR's `timers throttle spf 0 50 5000`
    spf_hold: float = 0.05
    spf_max_hold: float = 5.0
    # §12.4 MinLSInterval and §13 step 5a MinLSArrival: RFC 2328 fixes 5 s and 1 s. We
    # default to 1 s and 0.5 s (FRR: `timers throttle lsa all 1000`, `timers lsa min-arrival
    # 500`) so a lab converges in about a second. The interval must stay above every
    # peer's arrival time plus the flooding delay, or a peer drops the newer instance and
    # it waits a RxmtInterval for the retransmission.
    min_ls_interval: float = 1.0
    min_ls_arrival: float = 0.5
    auth: Auth = NO_AUTH
    names: Mapping[IPv4Address, str] = field(default_factory=dict)  # router ID -> node name
    ldp_sync: bool = False  # RFC 5443: max metric on links where LDP is not operational
    # RFC 6987 stub router after a restart (`Start(restart=True)`): seconds our transit
    # links are advertised at MaxLinkMetric; 0 = never. See `_start`.
    restart_max_metric: float = 5.0
    # Seconds between two flood sends on an interface (Updates and delayed acks, see the
    # module's docstring); 0 = each event's queue goes out at its end, unpaced.
    flood_pacing: float = 0.002


@dataclass
class Neighbor:
    router_id: IPv4Address
    address: IPv4Address
    state: NbrState = NbrState.DOWN
    options: int = 0
    master: bool = False  # True when WE are the master of the exchange (§10.8)
    dd_seq: int = 0
    last_rx: tuple[int, int, int] | None = None  # (flags, options, seq) of the last DD accepted
    # The last DD we sent (retransmitted / replayed). The body, not the bytes: a resent
    # packet needs a fresh MD5 sequence number, or the neighbor drops it as a replay (D.5.2).
    last_tx: DbDescription | None = None
    sent_all: bool = False  # our last DD had M clear
    summary: list[LsaHeader] = field(default_factory=list)
    requests: dict[LsaKey, LsaHeader] = field(default_factory=dict)
    asked: set[LsaKey] = field(default_factory=set)  # requested in the last LSR
    retransmit: dict[LsaKey, Lsa] = field(default_factory=dict)
    sent: dict[LsaKey, float] = field(default_factory=dict)  # when we last sent each LSA
    sent_prune: int = 64  # `sent`'s size at which its entries past MinLSArrival go
    held: set[LsaKey] = field(default_factory=set)  # new instances held back (`_arrival_wait`)
    flood_q: dict[LsaKey, Lsa] = field(default_factory=dict)  # to flood at the next pace
    ack_q: list[LsaHeader] = field(default_factory=list)  # delayed acknowledgments (§13.5)
    crypt_seq: int = -1
    since: float = 0.0

    def clear_lists(self) -> None:
        self.summary.clear()
        self.requests.clear()
        self.asked.clear()
        self.retransmit.clear()
        self.held.clear()
        self.flood_q.clear()
        self.ack_q.clear()


@dataclass
class Interface:
    cfg: InterfaceConfig
    up: bool = False
    nbr: Neighbor | None = None
    metric: int | None = None  # override (RFC 5443 max metric while LDP is not up)
    rxmt_timer: StartTimer | None = field(default=None, repr=False)  # made once (`_arm_rxmt`)
    new_nbrs: TokenBucket = field(default_factory=lambda: TokenBucket(NEW_NBR_RATE, NEW_NBR_BURST))
    # Flood pacing: the earliest time of the next send; a "pace" timer runs (`paced`)
    # while something waits for it; `queued` while the neighbor's queues wait for the end
    # of the event.
    pace_next: float = -1.0
    paced: bool = False
    queued: bool = False

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def cost(self) -> int:
        return self.cfg.cost if self.metric is None else self.metric


class OspfInstance:
    def __init__(self, cfg: OspfConfig) -> None:
        self.cfg = cfg
        self.rid = cfg.router_id
        self.ifaces: dict[str, Interface] = {i.name: Interface(i) for i in cfg.interfaces}
        self._transit = [i for i in self.ifaces.values() if not i.cfg.passive]
        self._rid_int = int(cfg.router_id)
        self.lsdb = Lsdb()
        self.rib: dict[IPv4Network, Route] = {}
        self._routes = RouteCache()  # SPF's routes from run to run
        self.counters: dict[str, int] = {}
        self.spf_runs = 0
        self.running = False
        self.now = 0.0
        self._out: list[Action] = []
        self._crypt_seq = 0
        self._last_origination: float | None = None
        self._last_spf: float | None = None
        self._spf_pending = False
        self._spf_multiplier = 1
        self._maxage_at: float | None = None
        self._flushing: set[LsaKey] = set()
        self._deferred: dict[LsaKey, tuple[str, Lsa, float]] = {}  # `_defer`: (if, LSA, when)
        self._queued: list[Interface] = []  # interfaces with flood_q / ack_q filled this event
        # (now, {...}): flooded LSAs' bytes and one-LSA Updates of this instant (`_wire_raw`)
        self._raw_memo: tuple[float, dict[Any, Any]] = (-1.0, {})
        self.stub = False  # RFC 6987: transit links at MaxLinkMetric (after a restart)
        self._stub_ending = False  # its time ran out; it ends with the next SPF run

    # ------------------------------------------------------------ driver API

    def handle(self, event: Event, now: float) -> list[Action]:
        self.now = now
        self._out = []
        if event.__class__ is PacketReceived:  # nearly every event: checked first
            if self.running:
                self._receive(event)
        elif isinstance(event, PacketReceived):
            if self.running:
                self._receive(event)
        elif isinstance(event, TimerExpired):
            if self.running:
                self._timer(event.timer)
        elif isinstance(event, InterfaceUp):
            self._interface_up(event.ifname)
        elif isinstance(event, InterfaceDown):
            self._interface_down(event.ifname)
        elif isinstance(event, SetLinkMetric):
            self._set_metric(event.ifname, event.metric)
        elif isinstance(event, LdpStatus):
            self._ldp_status(event.operational)
        elif isinstance(event, Start):
            self._start(event.restart)
        elif isinstance(event, Stop):
            self._stop()
        if self._queued:
            self._send_queued()
        out, self._out = self._out, []
        return out

    def _count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    # ------------------------------------------------------------ up / down

    def _start(self, restart: bool = False) -> None:
        """Up on every interface. After a restart (the links kept carrier, the network
        kept running) we are a stub router for a while (RFC 6987 §2, as FRR's `max-metric
        router-lsa on-startup`): our neighbours route around us until our own SPF has
        run over the whole database. Without it, a neighbour that computes its routes
        before we do sends traffic back through us while we have no route yet: a second,
        short outage after traffic had moved to the other path."""
        if self.running:
            return
        self.running = True
        if restart and self.cfg.restart_max_metric > 0:
            self.stub = True
            self._out.append(StartTimer("stub", self.cfg.restart_max_metric))
        for i in self.ifaces.values():
            i.up = True
            if self.cfg.ldp_sync and not i.cfg.passive and i.metric is None:
                i.metric = MAX_LINK_METRIC  # RFC 5443: no LDP on any link yet
            if not i.cfg.passive:
                self._send_hello(i)
        self._originate()

    def _stop(self) -> None:
        """Premature aging of our router-LSA (§14.1), then silence."""
        if not self.running:
            return
        key = lsa_key(LsType.ROUTER, self.rid, self.rid)
        e = self.lsdb.get(key)
        if e is not None:
            flushed = e.lsa.with_age(MAX_AGE)
            for i in self._active():
                if i.nbr is not None and i.nbr.state >= NbrState.EXCHANGE:
                    self._send_update(i, ALL_SPF_ROUTERS, [flushed])
        for i in self.ifaces.values():
            if i.nbr is not None:
                self._nbr_event(i, NbrEvent.KILL_NBR)
            for t in ("hello", "dead", "rxmt", "early", "pace"):
                self._out.append(CancelTimer(f"{t}:{i.name}"))
            i.paced = False
        for t in ("spf", "originate", "refresh", "maxage", "arrival", "stub"):
            self._out.append(CancelTimer(t))
        self._deferred.clear()
        self.stub = self._stub_ending = False
        self.running = False

    def _interface_up(self, ifname: str) -> None:
        i = self.ifaces.get(ifname)
        if i is None or i.up or not self.running:
            return
        i.up = True
        if not i.cfg.passive:
            self._send_hello(i)
        self._originate()

    def _interface_down(self, ifname: str) -> None:
        """Loss of carrier: LLDown for the neighbor (§10.3), the link leaves our LSA."""
        i = self.ifaces.get(ifname)
        if i is None or not i.up:
            return
        i.up = False
        if i.nbr is not None:
            self._nbr_event(i, NbrEvent.LL_DOWN)
        for t in ("hello", "dead", "rxmt", "early", "pace"):
            self._out.append(CancelTimer(f"{t}:{i.name}"))
        i.paced = False
        if self.running:
            self._originate()

    def _ldp_status(self, operational: frozenset[str]) -> None:
        """RFC 5443 §3: until LDP is operational on a link, advertise it at max metric so
        traffic never takes a link whose labels are not there yet."""
        if not self.cfg.ldp_sync:
            return
        changed = False
        for i in self.ifaces.values():
            if i.cfg.passive:
                continue
            m = None if i.name in operational else MAX_LINK_METRIC
            if m != i.metric:
                i.metric = m
                changed = True
        if changed and self.running:
            self._originate()

    def _set_metric(self, ifname: str, metric: int | None) -> None:
        i = self.ifaces.get(ifname)
        if i is None or i.metric == metric:
            return
        i.metric = metric
        if self.running:
            self._originate()

    def _active(self) -> list[Interface]:
        return [i for i in self._transit if i.up]

    # ------------------------------------------------------------ sending

    def _send(self, i: Interface, dst: IPv4Address, body: Any, count: bool = True) -> None:
        auth = self.cfg.auth
        if auth.type == AuType.CRYPTOGRAPHIC:  # non-decreasing (D.4.3); time-based survives restarts
            self._crypt_seq = max(self._crypt_seq + 1, int(self.now))
        data = encode_packet(Packet(self.rid, AREA0, body, self._crypt_seq), auth)
        self._out.append(_new(SendPacket, (i.name, dst, data)))
        if count:
            self._count(_TX[body.__class__])

    def _send_ack(self, i: Interface, acks: list[LsaHeader]) -> None:
        """One LSAck to AllSPFRouters: `_send(i, ALL_SPF_ROUTERS, LsAck(tuple(acks)))`,
        made from the headers' bytes without building the packet objects."""
        auth = self.cfg.auth
        if auth.type == AuType.CRYPTOGRAPHIC:
            self._send(i, ALL_SPF_ROUTERS, LsAck(tuple(acks)))
            return
        v = b"".join([h.encode() for h in acks])
        data = packet_bytes(self.rid, PacketType.LS_ACK, v, auth)
        self._out.append(_new(SendPacket, (i.name, ALL_SPF_ROUTERS, data)))
        self._count(_TX_ACK)

    def _send_hello(self, i: Interface) -> None:
        """§9.5: every HelloInterval; lists the neighbor we have heard (state >= Init)."""
        nbrs = (i.nbr.router_id,) if i.nbr is not None and i.nbr.state >= NbrState.INIT else ()
        self._send(i, ALL_SPF_ROUTERS, Hello(i.cfg.address.netmask, self.cfg.hello_interval,
                                             OPT_E, 1, self.cfg.dead_interval, AREA0, AREA0,
                                             nbrs))
        self._out.append(StartTimer(f"hello:{i.name}", self.cfg.hello_interval))

    def _aged(self, lsa: Lsa) -> Lsa:
        """The copy that goes on the wire: age + InfTransDelay, capped at MaxAge (§13.3)."""
        e = self.lsdb.get(lsa.key)
        base = e.aged(self.now) if e is not None and e.lsa.header.seq == lsa.header.seq else lsa
        age = min(MAX_AGE, base.header.age + self.cfg.transmit_delay)
        return base if age == base.header.age else base.with_age(age)

    def _send_update(self, i: Interface, dst: IPv4Address, lsas: list[Lsa]) -> None:
        batch: list[Lsa] = []
        size = 0
        if i.nbr is not None:
            for a in lsas:
                i.nbr.sent[a.key] = self.now
        for a in lsas:
            a = a if a.header.age >= MAX_AGE else self._aged(a)
            if batch and size + a.header.length > MAX_UPDATE_BYTES:
                self._send(i, dst, LsUpdate(tuple(batch)))
                batch, size = [], 0
            batch.append(a)
            size += a.header.length
        if batch:
            self._send(i, dst, LsUpdate(tuple(batch)))

    def _arm_rxmt(self, i: Interface) -> None:
        t = i.rxmt_timer
        if t is None or t.seconds != self.cfg.retransmit_interval:
            t = i.rxmt_timer = _start_timer(f"rxmt:{i.name}", self.cfg.retransmit_interval)
        self._out.append(t)

    # ------------------------------------------------------------ timers

    def _timer(self, name: str) -> None:
        kind, _, ifname = name.partition(":")
        i = self.ifaces.get(ifname)
        if kind == "hello" and i is not None and i.up:
            self._send_hello(i)
        elif kind == "dead" and i is not None and i.nbr is not None:
            self._nbr_event(i, NbrEvent.INACTIVITY_TIMER)
        elif kind == "rxmt" and i is not None and i.nbr is not None:
            self._retransmit(i, i.nbr)
        elif kind == "early" and i is not None and i.nbr is not None:
            self._send_held(i, i.nbr)
        elif kind == "pace" and i is not None:
            i.paced = False
            self._pace_send(i)
        elif kind == "arrival":
            self._take_deferred()
        elif kind == "spf":
            self._run_spf()
        elif kind == "originate":
            self._originate(held=True)
        elif kind == "refresh":
            self._originate(refresh=True)
        elif kind == "maxage":
            self._maxage()
        elif kind == "stub":
            self._stub_ending = True
            if not self._spf_pending:  # else once that run has our routes up to date
                self._end_stub()

    def _retransmit(self, i: Interface, n: Neighbor) -> None:
        """RxmtInterval expired: resend what is unacknowledged (§10.8, §10.9, §13.6)."""
        pending = False
        if n.state == NbrState.EXSTART or (n.state == NbrState.EXCHANGE and n.master):
            if n.last_tx is not None:
                self._send(i, ALL_SPF_ROUTERS, n.last_tx)
                pending = True
        if n.state in (NbrState.EXCHANGE, NbrState.LOADING) and n.requests:
            self._send_request(i, n)
            pending = True
        if n.state >= NbrState.EXCHANGE and n.retransmit:
            self._send_update(i, n.address, list(n.retransmit.values()))
            self._count("retransmissions")
            pending = True
        if pending:
            self._arm_rxmt(i)

    # ------------------------------------------------------------ receiving (§8.2)

    def _receive(self, ev: PacketReceived) -> None:
        i = self.ifaces.get(ev.ifname)
        if i is None or not i.up or i.cfg.passive:
            self._count("drop-not-ospf-interface")
            return
        try:
            p = decode_packet(ev.data, self.cfg.auth)
        except DecodeError as e:
            self._count(f"drop-{e.reason}")
            return
        if p.area is not AREA0 and p.area != AREA0:
            self._count("drop-wrong-area")
            return
        dst = ev.dst
        if dst is not ALL_SPF_ROUTERS and dst != ALL_SPF_ROUTERS and dst != i.cfg.address.ip:
            self._count("drop-wrong-destination")
            return
        rid = p.router_id
        if rid == self.rid:
            self._count("drop-own-router-id")
            return
        body = p.body
        cls = body.__class__
        name = _RX[cls]
        self.counters[name] = self.counters.get(name, 0) + 1
        if cls is Hello:
            self._recv_hello(i, ev.src, p, body)
            return
        n = i.nbr
        if n is None or (n.router_id is not rid and n.router_id != rid):
            self._count("drop-unknown-neighbor")
            return
        if self.cfg.auth.type == AuType.CRYPTOGRAPHIC:
            if p.crypt_seq < n.crypt_seq:  # D.5.2: replayed
                self._count("drop-auth-sequence")
                return
            n.crypt_seq = p.crypt_seq
        if cls is LsUpdate:
            if n.state >= NbrState.EXCHANGE:  # _recv_update
                self._take(i, n, body.lsas)
        elif cls is LsAck:
            self._recv_ack(n, body)
        elif cls is DbDescription:
            self._recv_dd(i, n, body)
        elif cls is LsRequest:
            self._recv_request(i, n, body)

    def _recv_hello(self, i: Interface, src: IPv4Address, p: Packet, h: Hello) -> None:
        """§10.5. The network mask is not checked on point-to-point links."""
        if h.hello_interval != self.cfg.hello_interval or h.dead_interval != self.cfg.dead_interval:
            self._count("drop-hello-timers-mismatch")
            return
        if (h.options & OPT_E) != OPT_E:
            self._count("drop-options-mismatch")
            return
        n = i.nbr
        if n is not None and n.router_id != p.router_id and n.state >= NbrState.TWO_WAY:
            # One neighbor on a point-to-point link (§8.2: identified by its Router ID): an
            # established one stays until it dies (inactivity, carrier), whatever else
            # claims to be on the link.
            self._count("drop-hello-second-neighbor")
            return
        if (n is None or n.router_id != p.router_id) and not i.new_nbrs.take(self.now):
            self._count("drop-hello-neighbor-rate")
            return
        if n is not None and n.router_id != p.router_id:
            self._nbr_event(i, NbrEvent.KILL_NBR)  # another router on this link now
            n = None
        if n is None:
            n = i.nbr = Neighbor(p.router_id, src, since=self.now)
        if self.cfg.auth.type == AuType.CRYPTOGRAPHIC:
            if p.crypt_seq < n.crypt_seq:
                self._count("drop-auth-sequence")
                return
            n.crypt_seq = p.crypt_seq
        n.address = src
        was = n.state
        self._nbr_event(i, NbrEvent.HELLO_RECEIVED)
        if self.rid in h.neighbors:
            self._nbr_event(i, NbrEvent.TWO_WAY_RECEIVED)
        else:
            self._nbr_event(i, NbrEvent.ONE_WAY_RECEIVED)
        if was == NbrState.DOWN or (was >= NbrState.TWO_WAY and n.state == NbrState.INIT):
            # Let the neighbor see us listed now, not a HelloInterval later: a new one, and
            # one whose Hello no longer lists us (§10.5 1-WayReceived: it restarted, and its
            # links kept carrier). Until it hears us it sits in Init with no adjacency,
            # while we already route around it: a restarted transit router would stay a
            # hole for up to HelloInterval. One Hello per such transition: a repeated
            # one-way Hello finds the neighbor in Init already and triggers nothing.
            self._send_hello(i)

    # ------------------------------------------------------------ neighbor state machine

    def _nbr_event(self, i: Interface, ev: NbrEvent) -> None:
        n = i.nbr
        if n is None:
            return
        old = n.state
        try:
            action, new = fsm.step(old, ev)
        except fsm.FsmError:
            self._count("nbr-event-ignored")
            return
        n.state = new
        if old != new:
            n.since = self.now
            self._out.append(NeighborChange(i.name, n.router_id, old.label, new.label, ev.value))
        self._nbr_action(i, n, action)
        if (old == NbrState.FULL) != (n.state == NbrState.FULL):
            self._originate()  # the point-to-point link appears in / leaves our LSA (§12.4)
            self._schedule_spf()

    def _nbr_action(self, i: Interface, n: Neighbor, a: NbrAction) -> None:
        if a == NbrAction.START_INACTIVITY:
            self._out.append(StartTimer(f"dead:{i.name}", self.cfg.dead_interval))
        elif a in (NbrAction.START_EXSTART, NbrAction.RESTART_EXSTART):
            n.clear_lists()
            n.last_rx = None
            # §10.8: a new DD sequence number, claim to be master, send an empty I|M|MS.
            n.dd_seq = (n.dd_seq + 1) if n.dd_seq else (int(self.now * 1000) & 0x7FFFFFFF) or 1
            n.master = True
            n.sent_all = False
            n.last_tx = DbDescription(i.cfg.mtu, OPT_E, DD_I | DD_M | DD_MS, n.dd_seq, ())
            self._send(i, ALL_SPF_ROUTERS, n.last_tx)
            self._arm_rxmt(i)
        elif a == NbrAction.LIST_DATABASE:
            # §10.3 NegotiationDone: the summary list is the database; MaxAge LSAs go to the
            # retransmission list instead.
            for key, e in self.lsdb.entries():
                if e.age(self.now) >= MAX_AGE:
                    n.retransmit[key] = e.aged(self.now)
                else:
                    n.summary.append(e.header(self.now))
        elif a == NbrAction.CHECK_LOADING:
            if n.requests:
                self._send_request(i, n)
                self._arm_rxmt(i)
            else:
                self._nbr_event(i, NbrEvent.LOADING_DONE)
        elif a == NbrAction.CLEAR_TO_INIT:
            n.clear_lists()
        elif a == NbrAction.KILL:
            n.clear_lists()
            self._out.append(CancelTimer(f"dead:{i.name}"))
            self._out.append(CancelTimer(f"rxmt:{i.name}"))
            i.nbr = None

    # ------------------------------------------------------------ database exchange (§10.6)

    def _recv_dd(self, i: Interface, n: Neighbor, dd: DbDescription) -> None:
        if dd.mtu > i.cfg.mtu:
            self._count("drop-mtu-mismatch")
            return
        if n.state == NbrState.INIT:
            self._nbr_event(i, NbrEvent.TWO_WAY_RECEIVED)
        st = n.state
        key = (dd.flags & 7, dd.options, dd.seq)
        if st < NbrState.EXSTART:
            return
        if st == NbrState.EXSTART:
            if dd.flags & 7 == DD_I | DD_M | DD_MS and not dd.headers and p_gt(n.router_id, self.rid):
                n.master = False  # the neighbor is master; take its sequence number
                n.dd_seq = dd.seq
                n.options = dd.options
                n.last_rx = key
                self._nbr_event(i, NbrEvent.NEGOTIATION_DONE)
                self._out.append(CancelTimer(f"rxmt:{i.name}"))
                self._send_dd(i, n)
                return
            if not dd.flags & (DD_I | DD_MS) and dd.seq == n.dd_seq and \
                    p_gt(self.rid, n.router_id):
                n.master = True
                n.options = dd.options
                self._nbr_event(i, NbrEvent.NEGOTIATION_DONE)
                self._accept_dd(i, n, dd, key)
            return
        if key == n.last_rx:  # a duplicate: the slave answers it again, the master drops it
            if not n.master and n.last_tx is not None:
                self._send(i, ALL_SPF_ROUTERS, n.last_tx, count=False)
            return
        if st != NbrState.EXCHANGE:
            self._nbr_event(i, NbrEvent.SEQ_NUMBER_MISMATCH)  # §10.6 in Loading or Full
            return
        expect_seq = n.dd_seq if n.master else (n.dd_seq + 1) & 0xFFFFFFFF
        if (bool(dd.flags & DD_MS) == n.master or dd.flags & DD_I or dd.options != n.options
                or dd.seq != expect_seq):
            self._nbr_event(i, NbrEvent.SEQ_NUMBER_MISMATCH)
            return
        self._accept_dd(i, n, dd, key)

    def _accept_dd(self, i: Interface, n: Neighbor, dd: DbDescription,
                   key: tuple[int, int, int]) -> None:
        n.last_rx = key
        for h in dd.headers:
            if h.ls_type not in (1, 2, 3, 4, 5):
                self._nbr_event(i, NbrEvent.SEQ_NUMBER_MISMATCH)
                return
            e = self.lsdb.get(h.key)
            if e is None or compare(h, e.header(self.now)) > 0:
                n.requests[h.key] = h
        more = bool(dd.flags & DD_M)
        if n.master:
            n.dd_seq = (n.dd_seq + 1) & 0xFFFFFFFF
            if n.sent_all and not more:
                self._out.append(CancelTimer(f"rxmt:{i.name}"))
                self._nbr_event(i, NbrEvent.EXCHANGE_DONE)
            else:
                self._send_dd(i, n)
                self._arm_rxmt(i)
        else:
            n.dd_seq = dd.seq
            self._send_dd(i, n)
            if not more and n.sent_all:
                self._nbr_event(i, NbrEvent.EXCHANGE_DONE)

    def _send_dd(self, i: Interface, n: Neighbor) -> None:
        hdrs, n.summary = n.summary[:MAX_DD_HEADERS], n.summary[MAX_DD_HEADERS:]
        n.sent_all = not n.summary
        flags = (0 if n.sent_all else DD_M) | (DD_MS if n.master else 0)
        n.last_tx = DbDescription(i.cfg.mtu, OPT_E, flags, n.dd_seq, tuple(hdrs))
        self._send(i, ALL_SPF_ROUTERS, n.last_tx)

    # ------------------------------------------------------------ requests (§10.7, §10.9)

    def _send_request(self, i: Interface, n: Neighbor) -> None:
        keys = tuple(list(n.requests)[:MAX_LSR_KEYS])
        n.asked = set(keys)
        self._send(i, n.address, LsRequest(keys))

    def _recv_request(self, i: Interface, n: Neighbor, req: LsRequest) -> None:
        if n.state < NbrState.EXCHANGE:
            return
        out = []
        for k in req.keys:
            e = self.lsdb.get(k)
            if e is None:
                self._nbr_event(i, NbrEvent.BAD_LS_REQ)
                return
            out.append(e.aged(self.now))
        self._send_update(i, n.address, out)

    # ------------------------------------------------------------ flooding (§13)

    def _recv_update(self, i: Interface, n: Neighbor, upd: LsUpdate) -> None:
        if n.state < NbrState.EXCHANGE:
            return
        self._take(i, n, upd.lsas)

    def _take(self, i: Interface, n: Neighbor, lsas: tuple[Lsa, ...]) -> None:
        """§13 for the LSAs of one Update (or deferred ones), then acknowledgments and the
        progress of Loading."""
        acks: list[LsaHeader] = []  # direct acknowledgments (Table 19)
        for lsa in lsas:
            if self._receive_lsa(i, n, lsa, acks) is False:
                return  # BadLSReq restarted the exchange: the rest of the packet is dropped
        if acks:
            self._send_ack(i, acks)
        if n.state == NbrState.LOADING:
            if not n.requests:
                self._out.append(CancelTimer(f"rxmt:{i.name}"))
                self._nbr_event(i, NbrEvent.LOADING_DONE)
            elif not (n.asked & n.requests.keys()):
                self._send_request(i, n)  # the last batch is in: ask for the next one now

    def _receive_lsa(self, i: Interface, n: Neighbor, lsa: Lsa,
                     acks: list[LsaHeader]) -> bool:
        h = lsa.header
        if h.ls_type not in _LSA_TYPES:
            self._count("drop-unknown-lsa-type")  # §13 step 2
            return True
        key = h.key
        e = self.lsdb.get(key)
        # The database copy's header at its current age (`e.header(now)`), as its fields:
        # building the aged copy only to compare it would cost more than the comparison.
        if e is not None:
            eh = e.lsa.header
            cur_age = min(MAX_AGE, eh.age + int(self.now - e.installed + 1e-9))  # e.age(now)
            order = compare_to(h, eh.seq, eh.checksum, cur_age)
        # §13 step 4: a MaxAge LSA we do not have, with no exchange under way: ack, drop.
        if h.age >= MAX_AGE and e is None and not any(
                x.nbr is not None and x.nbr.state in (NbrState.EXCHANGE, NbrState.LOADING)
                for x in self.ifaces.values()):
            acks.append(h)
            return True
        if e is None or order > 0:  # step 5: newer
            mine = key.order[2] == self._rid_int  # h.adv_router == self.rid
            if e is not None and not mine and self._too_soon(e):
                self._defer(i, lsa, e.installed + self.cfg.min_ls_arrival)  # 5a
                return True
            # A copy that came with the database exchange (asked for, or flooded to us
            # while the adjacency was not yet Full) is synchronisation, not flooding (5a).
            flooded = n.state == NbrState.FULL and key not in n.requests
            for x in self.ifaces.values():  # 5c first: the old instance, not the one 5b adds
                if x.nbr is not None:
                    x.nbr.retransmit.pop(key, None)
            self._flood(lsa, n)  # 5b
            if self.lsdb.install(lsa, self.now, flooded):  # 5d
                self._schedule_spf()
            self._arm_maxage()
            self._delayed_ack(i, n, h)  # 5e (never flooded back out a point-to-point interface)
            if mine and h.ls_type == LsType.ROUTER:
                self._self_originated(lsa)  # 5f, §13.4
            if h.age >= MAX_AGE:
                self._flushing.add(key)
                self._try_remove(key)
            return True
        if key in n.requests:  # step 6
            self._nbr_event(i, NbrEvent.BAD_LS_REQ)
            return False
        if order == 0:  # step 7: the same instance
            if key in n.retransmit:
                del n.retransmit[key]  # an implied acknowledgment (§13.7)
                if n.flood_q.pop(key, None) is not None:
                    # ...of an instance still in our flood queue: the neighbor has not had
                    # it from us, no implied acknowledgment for it: a delayed ack instead
                    self._delayed_ack(i, n, h)
            else:
                acks.append(h)
            return True
        # step 8: ours is newer; a MaxAge MaxSequenceNumber copy is on its way out: drop.
        assert e is not None
        if not (cur_age >= MAX_AGE and eh.seq == MAX_SEQ):
            self._send_update(i, n.address, [e.aged(self.now)])
        return True

    def _too_soon(self, e: Entry) -> bool:
        """§13 step 5a: drop a newer instance if "the database copy was received via
        flooding and installed less than MinLSArrival seconds ago". A copy that came with
        a database exchange was not: the new instance its originator floods as the
        adjacency reaches Full a few milliseconds later is taken at once."""
        return e.flooded and self.now - e.installed < self.cfg.min_ls_arrival

    def _defer(self, i: Interface, lsa: Lsa, when: float) -> None:
        """5a says discard, unacknowledged, and let the neighbor retransmit: a RxmtInterval
        (5 s) later, where a router that floods two instances in a row (FRR's ospfd, as
        its adjacencies reach Full one after the other) puts the newer one. We keep the
        newest such instance and take it up ourselves once MinLSArrival has passed: the
        rate limit holds, the wait is MinLSArrival at most."""
        self._count("deferred-min-ls-arrival")
        have = self._deferred.get(lsa.key)
        if have is not None and compare(have[1].header, lsa.header) > 0:
            return
        self._deferred[lsa.key] = (i.name, lsa, when)
        self._arm_deferred()

    def _arm_deferred(self) -> None:
        if self._deferred:
            first = min(w for _, _, w in self._deferred.values())
            self._out.append(StartTimer("arrival", max(0.0, first - self.now)))

    def _take_deferred(self) -> None:
        due = sorted(k for k, (_, _, w) in self._deferred.items() if w <= self.now + 1e-6)
        by_if: dict[str, list[Lsa]] = {}
        for k in due:
            ifname, lsa, _ = self._deferred.pop(k)
            by_if.setdefault(ifname, []).append(lsa)
        for ifname, lsas in by_if.items():
            i = self.ifaces[ifname]
            if i.up and i.nbr is not None and i.nbr.state >= NbrState.EXCHANGE:
                self._take(i, i.nbr, tuple(lsas))
        self._arm_deferred()

    def _arrival_wait(self, n: Neighbor, key: LsaKey) -> float:
        """How long to hold a new instance of `key` back from `n`: a neighbor that applies
        MinLSArrival to every copy (FRR's ospfd) drops an instance arriving within
        MinLSArrival of the previous one we sent it, and would get it only after a
        RxmtInterval. Sent once it will be taken, it costs MinLSArrival at most."""
        last = n.sent.get(key)
        if last is None:
            return 0.0
        return max(0.0, last + self.cfg.min_ls_arrival + ARRIVAL_MARGIN - self.now)

    def _hold(self, i: Interface, n: Neighbor, key: LsaKey) -> None:
        n.held.add(key)
        self._out.append(StartTimer(f"early:{i.name}",
                                    min(self._arrival_wait(n, k) for k in n.held)))

    def _send_held(self, i: Interface, n: Neighbor) -> None:
        """The 'early' timer: held-back instances still unacknowledged go out once the
        neighbor will take them."""
        n.held &= n.retransmit.keys()
        ready = sorted(k for k in n.held if self._arrival_wait(n, k) <= 1e-6)
        n.held.difference_update(ready)
        if n.held:
            self._out.append(StartTimer(f"early:{i.name}",
                                        min(self._arrival_wait(n, k) for k in n.held)))
        if ready and n.state >= NbrState.EXCHANGE:
            self._send_update(i, ALL_SPF_ROUTERS, [n.retransmit[k] for k in ready])
            self._arm_rxmt(i)

    def _flood(self, lsa: Lsa, came_from: Neighbor | None) -> None:
        """§13.3 on each point-to-point interface: one neighbor each. The LSA joins the
        neighbor's flood queue (a newer instance replaces an older one still waiting),
        sent with the rest of the queue (`_send_queued`)."""
        key = lsa.key
        now = self.now
        min_arrival = self.cfg.min_ls_arrival
        queued = self._queued
        for i in self._transit:
            n = i.nbr
            if n is None or not i.up or n.state < NbrState.EXCHANGE:
                continue
            if n.state < NbrState.FULL and key in n.requests:
                c = compare(lsa.header, n.requests[key])
                if c < 0:
                    continue
                del n.requests[key]
                if c == 0:
                    continue
            if n is came_from:
                continue
            n.retransmit[key] = lsa
            last = n.sent.get(key)  # self._arrival_wait(n, key) > 0, inlined
            if last is not None and last + min_arrival + ARRIVAL_MARGIN - now > 0:
                n.flood_q.pop(key, None)
                self._hold(i, n, key)
                continue
            n.flood_q[key] = lsa
            if not i.queued:
                i.queued = True
                queued.append(i)

    def _delayed_ack(self, i: Interface, n: Neighbor, h: LsaHeader) -> None:
        """§13.5: a delayed acknowledgment, sent with the interface's next paced send."""
        n.ack_q.append(h)
        if not i.queued:
            i.queued = True
            self._queued.append(i)

    def _send_queued(self) -> None:
        """End of an event: the interfaces whose pacing interval has passed send their
        queues now; the others when their "pace" timer runs out."""
        now = self.now
        for i in self._queued:
            i.queued = False
            if i.paced:
                continue
            wait = i.pace_next - now
            if wait > 1e-9:
                i.paced = True
                self._out.append(StartTimer(f"pace:{i.name}", wait))
            else:
                self._pace_send(i)
        self._queued = []

    def _pace_send(self, i: Interface) -> None:
        """One paced send on `i`: the queued LSAs still unacknowledged, in LS Updates
        (several LSAs each), and the delayed acknowledgments in one LSAck."""
        n = i.nbr
        if n is None or not i.up or n.state < NbrState.EXCHANGE:
            if n is not None:
                n.flood_q.clear()
                n.ack_q.clear()
            return
        sent = False
        if n.flood_q:
            rx = n.retransmit
            # an LSA acknowledged (or implied so) or superseded meanwhile stays home
            lsas = [a for k, a in n.flood_q.items() if rx.get(k) is a]
            n.flood_q.clear()
            if lsas:
                self._send_flood(i, n, lsas)
                sent = True
        if n.ack_q:
            acks, n.ack_q = n.ack_q, []
            self._send_ack(i, acks)
            sent = True
        if sent and self.cfg.flood_pacing > 0:
            i.pace_next = self.now + self.cfg.flood_pacing

    def _send_flood(self, i: Interface, n: Neighbor, lsas: list[Lsa]) -> None:
        """`_send_update(i, AllSPFRouters, lsas)`; without cryptographic authentication
        (whose sequence number changes with every packet) from the LSAs' bytes, and the
        bytes of a one-LSA Update made once for every interface it leaves by."""
        if self.cfg.auth.type == AuType.CRYPTOGRAPHIC:
            self._send_update(i, ALL_SPF_ROUTERS, lsas)
            self._arm_rxmt(i)
            return
        now = self.now
        sent = n.sent
        out = self._out
        batch: list[bytes] = []
        size = 0
        packets = 0
        for a in lsas:
            sent[a.key] = now
            raw = self._wire_raw(a)
            if batch and size + len(raw) > MAX_UPDATE_BYTES:
                out.append(_new(SendPacket, (i.cfg.name, ALL_SPF_ROUTERS,
                                             self._update_bytes(batch))))
                packets += 1
                batch, size = [], 0
            batch.append(raw)
            size += len(raw)
        out.append(_new(SendPacket, (i.cfg.name, ALL_SPF_ROUTERS, self._update_bytes(batch))))
        self.counters[_TX_UPDATE] = self.counters.get(_TX_UPDATE, 0) + packets + 1
        self._arm_rxmt(i)
        if len(sent) >= n.sent_prune:
            # A send longer ago than MinLSArrival (+ margin) holds nothing back
            # (`_arrival_wait` is 0): forgetting it changes nothing, and the table stays the
            # size of a second's floods, not of the database, on every adjacency.
            horizon = now - self.cfg.min_ls_arrival - ARRIVAL_MARGIN
            n.sent = {k: t for k, t in sent.items() if t > horizon}
            n.sent_prune = max(64, 2 * len(n.sent))

    def _wire_raw(self, a: Lsa) -> bytes:
        """The LSA's bytes as flooded now (age + InfTransDelay, §13.3), remembered for the
        other interfaces of this event."""
        memo = self._raw_memo
        if memo[0] != self.now:
            memo = self._raw_memo = (self.now, {})
        hit = memo[1].get(id(a))
        if hit is None:  # (the LSA, kept alive so that its id is not reused meanwhile)
            hit = memo[1][id(a)] = (a, (a if a.header.age >= MAX_AGE else self._aged(a)).raw)
        return hit[1]  # type: ignore[no-any-return]

    def _update_bytes(self, raws: list[bytes]) -> bytes:
        if len(raws) == 1:
            memo = self._raw_memo[1]
            key = ("u", raws[0])
            data = memo.get(key)
            if data is None:
                data = memo[key] = packet_bytes(self.rid, PacketType.LS_UPDATE,
                                                _ONE_LSA + raws[0], self.cfg.auth)
            return data  # type: ignore[no-any-return]
        return packet_bytes(self.rid, PacketType.LS_UPDATE,
                            len(raws).to_bytes(4, "big") + b"".join(raws), self.cfg.auth)

    def _recv_ack(self, n: Neighbor, ack: LsAck) -> None:
        """§13.7: an acknowledgment removes the same instance from the retransmission list."""
        if n.state < NbrState.EXCHANGE:
            return
        for h in ack.headers:
            have = n.retransmit.get(h.key)
            if have is not None and compare(h, have.header) == 0:
                del n.retransmit[h.key]
                if h.key in self._flushing:
                    self._try_remove(h.key)
            elif have is not None and have.header.age >= MAX_AGE and h.seq == have.header.seq:
                del n.retransmit[h.key]
                self._try_remove(h.key)

    # ------------------------------------------------------------ origination (§12.4)

    def _router_lsa_body(self) -> RouterLsaBody:
        """§12.4.1: a point-to-point link per Full neighbor, a stub per subnet, the loopback
        as a host stub at cost 0 (as FRR advertises loopbacks)."""
        links: list[RouterLink] = []
        for i in self.ifaces.values():
            if not i.up:
                continue
            a = i.cfg.address
            if not i.cfg.passive and i.nbr is not None and i.nbr.state == NbrState.FULL:
                # RFC 6987 §2: a stub router's transit links cost MaxLinkMetric
                cost = MAX_LINK_METRIC if self.stub else i.cost
                links.append(RouterLink(i.nbr.router_id, a.ip, LinkType.POINT_TO_POINT, cost))
            # RFC 5443 raises the link's metric, not the subnet's: the stub keeps its cost.
            links.append(RouterLink(a.network.network_address, a.netmask, LinkType.STUB,
                                    i.cfg.cost))
        if self.cfg.loopback is not None:
            links.append(RouterLink(self.cfg.loopback, HOST_MASK, LinkType.STUB, 0))
        links.sort(key=lambda ln: (ln.type, int(ln.link_id), int(ln.link_data)))
        return RouterLsaBody(0, tuple(links))

    def _originate(self, refresh: bool = False, held: bool = False) -> None:
        """A new instance of our router-LSA if its contents changed (or on refresh). `held`:
        the MinLSInterval timer ran out, so the interval has passed whatever the float
        arithmetic says."""
        if not self.running:
            return
        key = lsa_key(LsType.ROUTER, self.rid, self.rid)
        e = self.lsdb.get(key)
        body = self._router_lsa_body()
        if e is not None and not refresh and e.lsa.body == body and e.age(self.now) < MAX_AGE:
            return
        last = self._last_origination
        if not held and last is not None and self.now - last < self.cfg.min_ls_interval:
            # MinLSInterval (§12.4): at most one new instance per interval.
            self._out.append(StartTimer("originate", last + self.cfg.min_ls_interval - self.now))
            return
        seq = INITIAL_SEQ if e is None else e.lsa.header.seq + 1
        if seq > MAX_SEQ:
            seq = INITIAL_SEQ  # §12.1.6 wrap: simplified, the old instance is replaced at once
        self._install_own(Lsa.build(LsType.ROUTER, self.rid, self.rid, seq, body))

    def _install_own(self, lsa: Lsa) -> None:
        self._last_origination = self.now
        for x in self.ifaces.values():
            if x.nbr is not None:
                x.nbr.retransmit.pop(lsa.key, None)
        if self.lsdb.install(lsa, self.now):
            self._schedule_spf()
        self._flood(lsa, None)
        self._out.append(StartTimer("refresh", LS_REFRESH_TIME))
        self._arm_maxage()

    def _self_originated(self, lsa: Lsa) -> None:
        """§13.4: a newer instance of our own LSA (from before a restart): advance past it."""
        if lsa.header.age >= MAX_AGE:
            self._flushing.discard(lsa.key)
        seq = lsa.header.seq + 1
        self._install_own(Lsa.build(LsType.ROUTER, self.rid, self.rid,
                                    seq if seq <= MAX_SEQ else INITIAL_SEQ,
                                    self._router_lsa_body()))

    # ------------------------------------------------------------ aging (§14)

    def _arm_maxage(self) -> None:
        nxt = self.lsdb.next_expiry()
        if nxt is not None and nxt != self._maxage_at:
            self._maxage_at = nxt
            self._out.append(StartTimer("maxage", max(0.0, nxt - self.now)))

    def _maxage(self) -> None:
        self._maxage_at = None
        for key in self.lsdb.expired(self.now):
            e = self.lsdb.get(key)
            assert e is not None
            if key.adv_router == self.rid:
                self._originate(refresh=True)  # never reached while refreshes run
                continue
            self._flushing.add(key)
            flushed = e.lsa.with_age(MAX_AGE)
            self.lsdb.install(flushed, self.now)
            self._flood(flushed, None)
            self._schedule_spf()
            self._try_remove(key)
        self._arm_maxage()

    def _try_remove(self, key: LsaKey) -> None:
        """§14: a MaxAge LSA leaves the database once no retransmission list holds it and
        no neighbor is exchanging databases."""
        if any(x.nbr is not None and (key in x.nbr.retransmit or x.nbr.state in
                                      (NbrState.EXCHANGE, NbrState.LOADING))
               for x in self.ifaces.values()):
            return
        e = self.lsdb.get(key)
        if e is not None and e.age(self.now) >= MAX_AGE:
            self.lsdb.remove(key)
        self._flushing.discard(key)

    # ------------------------------------------------------------ SPF (§16) with throttling

    def _schedule_spf(self) -> None:
        """FRR's throttle: the initial delay after a quiet period; within the hold time of
        the last run, wait out the hold time, which doubles up to the maximum."""
        if self._spf_pending or not self.running:
            return
        self._spf_pending = True
        cfg = self.cfg
        if self._last_spf is None:
            delay = cfg.spf_delay
        else:
            elapsed = self.now - self._last_spf
            hold = min(cfg.spf_hold * self._spf_multiplier, cfg.spf_max_hold)
            if elapsed < hold:
                if hold < cfg.spf_max_hold:
                    self._spf_multiplier += 1
                delay = max(cfg.spf_delay, hold - elapsed)
            else:
                delay = cfg.spf_delay
                self._spf_multiplier = 1
        self._out.append(StartTimer("spf", delay))

    def _first_hops(self, nbr_id: IPv4Address, link_data: IPv4Address) -> list[FirstHop]:
        out = []
        for i in self.ifaces.values():
            n = i.nbr
            if i.up and n is not None and n.router_id == nbr_id and n.state == NbrState.FULL \
                    and i.cfg.address.ip == link_data:
                out.append((i.name, n.address, nbr_id))
        return out

    def _run_spf(self) -> None:
        self._spf_pending = False
        self._last_spf = self.now
        self.spf_runs += 1
        rib = routes(self.lsdb, self.rid, self._first_hops, self.cfg.names, self._routes)
        if self._routes.changed:  # rib != self.rib, known without comparing them
            base, self.rib = self.rib, rib
            self._out.append(RoutesChanged(rib, frozenset(self._routes.changed), base))
        if self._stub_ending:
            self._end_stub()

    def _end_stub(self) -> None:
        """RFC 6987: our routes are computed; our links carry their own costs again."""
        self.stub = self._stub_ending = False
        self._originate()

    # ------------------------------------------------------------ views

    def pending_work(self) -> bool:
        """Anything still waiting for an answer: requests, unacknowledged LSAs, an SPF run,
        or the end of our RFC 6987 stub-router time after a restart (our links' costs
        change then: the routes through us are not yet the converged ones)."""
        if self._spf_pending or self._deferred or self.stub:
            return True
        return any(i.nbr is not None and (i.nbr.requests or i.nbr.retransmit)
                   for i in self.ifaces.values())

    def full_neighbors(self) -> int:
        return sum(1 for i in self.ifaces.values() if i.nbr is not None
                   and i.nbr.state == NbrState.FULL)

    def neighbors_json(self) -> list[dict[str, Any]]:
        out = []
        for i in self.ifaces.values():
            n = i.nbr
            if n is None:
                continue
            out.append({"interface": i.name, "router_id": str(n.router_id),
                        "neighbor": self.cfg.names.get(n.router_id, str(n.router_id)),
                        "address": str(n.address), "state": n.state.label,
                        "role": "master" if not n.master else "slave",
                        "uptime": round(self.now - n.since, 3),
                        "requests": len(n.requests), "retransmit": len(n.retransmit)})
        return out

    def lsdb_json(self) -> list[dict[str, Any]]:
        return [e.aged(self.now).to_json() for _, e in self.lsdb.entries()]


def p_gt(a: IPv4Address, b: IPv4Address) -> bool:
    """Router IDs compare as unsigned 32-bit numbers (§10.6, §10.8)."""
    return int(a) > int(b)

"""`LdpInstance`: one router's LDP speaker (discovery + sessions + LDE), sans-I/O.

    inst = LdpInstance.from_topology(topo, "p1")
    actions = inst.handle(Start(), now=0.0)

See `ldp.events` for the event/action contract and the clock convention.
The instance only knows its own configuration; peers, their addresses and
labels are learnt on the wire.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from ldp.discovery import Adjacency, Discovery
from ldp.events import (
    Action,
    AddressAdded,
    AddressRemoved,
    ApplyLfib,
    CancelTimer,
    Event,
    HelloReceived,
    InterfaceDown,
    InterfaceUp,
    LogEvent,
    RibChanged,
    Start,
    StartTimer,
    Stop,
    TcpAccepted,
    TcpClose,
    TcpClosed,
    TcpConnected,
    TcpData,
    TcpListen,
    TcpSend,
    TimerExpired,
)
from ldp.fsm import State
from ldp.lde import LabelPlan, Lde
from ldp.messages import Initialization, LdpId, Message, Notification, Pdu, Status, StatusCode
from ldp.session import Session
from lsr.core.lfib import Lfib
from lsr.core.prefix import prefix
from lsr.core.topology import LdpOptions, Topology

DEFAULT_RETRY_INITIAL = 15.0  # FRR INIT_DELAY_TMR
DEFAULT_RETRY_MAX = 120.0  # FRR MAX_DELAY_TMR
DEFAULT_INIT_TIMEOUT = 15.0  # FRR: init timeout
# Flood bounds on TCP (Hello adjacencies are bounded in ldp.discovery): connects we have
# in flight (TcpConnect not yet answered) and accepted connections whose first PDU has
# not come. Each costs a socket; a peer over the bound is retried (ours) or closed (theirs).
DEFAULT_MAX_CONNECTING = 8
DEFAULT_MAX_PENDING_ACCEPTS = 32
CONNECT_LIMIT_RETRY = 1.0  # s: a session that found no connect slot tries again after this
CONNECT_LIMIT = "connect-limit"  # `refused` keys, besides ldp.discovery's Hello ones
ACCEPT_LIMIT = "accept-limit"


# id(topology) -> (weak reference, fecs mode -> (sorted prefixes, rank of each, router ->
# ranks of its own prefixes)): every router of a topology ranks the same prefixes.
_PLANS: dict[int, tuple[weakref.ref, dict[str, tuple]]] = {}


def _plan_index(topo: Topology, fecs: str) -> tuple[list[IPv4Network], dict[IPv4Network, int],
                                                      dict[str, list[int]]]:
    hit = _PLANS.get(id(topo))
    if hit is None or hit[0]() is not topo:
        for k in [k for k, (ref, _) in _PLANS.items() if ref() is None]:
            del _PLANS[k]
        hit = _PLANS[id(topo)] = (weakref.ref(topo), {})
    modes = hit[1]
    if fecs not in modes:
        sorted_all: list[IPv4Network] = []
        own: dict[str, list[int]] = {}
        for p, owners in topo.prefixes().items():  # in FEC order
            if fecs != "all" and p.prefixlen != 32:
                continue
            k = len(sorted_all)
            sorted_all.append(prefix(p))
            for o in {o for o, _ in owners}:
                own.setdefault(o, []).append(k)
        modes[fecs] = (sorted_all, {p: k for k, p in enumerate(sorted_all)}, own)
    return modes[fecs]  # type: ignore[no-any-return]


class _Pending:
    """An accepted connection whose first PDU has not arrived yet (passive side)."""

    def __init__(self, conn: int, local: IPv4Address, remote: IPv4Address, reader: Any) -> None:
        self.conn, self.local, self.remote, self.reader = conn, local, remote, reader


class LdpInstance:
    def __init__(
        self,
        name: str,
        lsr_id: IPv4Address,
        interfaces: dict[str, IPv4Interface],
        labels: tuple[int, int] = (16, 1048575),
        options: LdpOptions | None = None,
        passwords: dict[IPv4Address, str] | None = None,
        *,
        codec: Any = None,
        retry_initial: float = DEFAULT_RETRY_INITIAL,
        retry_max: float = DEFAULT_RETRY_MAX,
        init_timeout: float = DEFAULT_INIT_TIMEOUT,
        label_plan: Mapping[IPv4Network, int] | None = None,
        ldp_interfaces: Iterable[str] | None = None,
        max_connecting: int = DEFAULT_MAX_CONNECTING,
        max_pending_accepts: int = DEFAULT_MAX_PENDING_ACCEPTS,
    ) -> None:
        """`interfaces`: interface -> address (advertised in Address messages);
        `ldp_interfaces`: the ones LDP runs on (Hellos, adjacencies; all of them when
        None); `passwords`: peer LSR ID -> MD5 key."""
        if codec is None:
            from ldp import codec as _codec

            codec = _codec
        self.name = name
        self.lsr_id = IPv4Address(lsr_id)
        self.ldp_id = LdpId(self.lsr_id, 0)
        self.transport = self.lsr_id  # transport address = loopback (§2.5.2)
        self.interfaces = dict(sorted(interfaces.items()))  # current address of each
        self.configured = frozenset(self.interfaces)  # every interface we were given
        # LDP-enabled names (§2.4.1: Basic Discovery on the interfaces configured for LDP)
        self.ldp_interfaces = (self.configured if ldp_interfaces is None
                               else frozenset(ldp_interfaces) & self.configured)
        self.if_down: set[str] = set()  # link down (InterfaceDown until InterfaceUp)
        self.options = options or LdpOptions()
        self.passwords = dict(passwords or {})
        self.codec = codec
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.init_timeout = init_timeout
        self.now = 0.0
        self.started = False
        self.stopped = False
        self._msg_id = 0
        self._conn_id = 0
        self.conns: dict[int, Session | _Pending] = {}
        self.sessions: dict[IPv4Address, Session] = {}
        self.counters_rx: dict[str, int] = {}
        self.counters_tx: dict[str, int] = {}
        self.max_connecting = max_connecting
        self.max_pending_accepts = max_pending_accepts
        self.refused: dict[str, int] = {}  # CONNECT_LIMIT / ACCEPT_LIMIT -> count
        self.discovery = Discovery(
            self.ldp_id, self.transport,
            {n: a for n, a in self.interfaces.items() if n in self.ldp_interfaces},
            self.options.hello_interval, self.options.hello_holdtime, codec, self.next_msg_id,
            gtsm=self.options.gtsm, max_adjacencies=self.options.max_adjacencies,
            adjacency_rate=self.options.adjacency_rate,
        )
        self._out: list[Action] = []
        self.lde = Lde(self.lsr_id, labels, self.options, self._lde_send, self.next_msg_id,
                       lambda lvl, txt: self._out.append(LogEvent(lvl, txt)), label_plan,
                       sender=self._lde_sender,
                       encode_mapping=getattr(codec, "encode_label_mapping", None))

    @classmethod
    def from_topology(cls, topo: Topology, router: str, **kw: Any) -> LdpInstance:
        """Build from the router's own configuration in `topo` (nothing about peers).

        Passwords are configured per neighbour node name; they are resolved to
        that node's LSR ID here, as an operator would configure a key per
        neighbour LSR ID. Local labels follow a plan (`ldp.lde.label_plan`): every
        prefix of the topology this router would bind a label to, in FEC order,
        so labels do not depend on the order routes arrive in.
        """
        node = topo.nodes[router]
        # A VRF's interfaces are not in the global table: LDP neither advertises their
        # addresses (RFC 5036 §3.5.5.1) nor takes labels from the VPN layer's range.
        ifs = {i.name: i.address for i in node.interfaces.values() if i.vrf is None}
        pw = {topo.nodes[nb].lsr_id: key for nb, key in node.ldp.passwords}
        # one split of the router's labels: 6PE label, LDP, VPN (Topology.label_ranges)
        labels = topo.label_ranges(router)[0]
        if "label_plan" not in kw:
            # label_plan(lo, remote prefixes), as a view of one ranking per topology
            sorted_all, order, own = _plan_index(topo, node.ldp.fecs)
            kw["label_plan"] = LabelPlan(labels[0], order, sorted_all, own.get(router, []))
        kw.setdefault("ldp_interfaces", topo.ldp_interfaces(router))
        return cls(router, node.lsr_id, ifs, labels, node.ldp, pw, **kw)

    # -------------------------------------------------------------- host services

    def next_msg_id(self) -> int:
        self._msg_id += 1
        return self._msg_id

    def new_conn(self) -> int:
        self._conn_id += 1
        return self._conn_id

    def password_for(self, lsr_id: IPv4Address) -> str | None:
        return self.passwords.get(lsr_id)

    @property
    def lfib(self) -> Lfib:
        return self.lde.lfib

    @property
    def lib(self) -> dict[IPv4Address, dict]:
        """LIB: peer LSR ID -> {FEC: label} as received."""
        return {pid: dict(p.lib) for pid, p in sorted(self.lde.peers.items())}

    def addresses(self) -> list[IPv4Address]:
        """What we advertise in Address messages (§3.5.5): the loopback and the
        address of every interface that is up and has one."""
        addrs = {self.lsr_id} | {
            i.ip for n, i in self.interfaces.items() if n not in self.if_down}
        return sorted(addrs)

    def _addresses_changed(self, before: list[IPv4Address]) -> None:
        """Tell every OPERATIONAL peer what changed in `addresses()` since `before`:
        Address Withdraw for the ones gone (§3.5.6), Address for new ones (§3.5.5)."""
        now = self.addresses()
        self.lde.addresses_removed(sorted(set(before) - set(now)))
        self.lde.addresses_added(sorted(set(now) - set(before)))

    # -------------------------------------------------------------- session upcalls

    def session_up(self, s: Session) -> None:
        """Session OPERATIONAL: Address list and initial mappings (`Lde.peer_up`)."""
        self.lde.peer_up(s.lsr_id, self.addresses())

    def session_down(self, s: Session) -> None:
        self.lde.peer_down(s.lsr_id)

    def session_message(self, s: Session, msg: Message) -> None:
        """A message the session FSM passed on (PROCESS): the LDE's App. A procedure for it."""
        self.lde.receive(s.lsr_id, msg)

    def session_mappings(self, s: Session, run: Any) -> None:
        """Label Mappings the session passed on, in order (`codec.MappingRun`)."""
        self.lde.receive_mappings(s.lsr_id, run)

    def _lde_sender(self, lsr_id: IPv4Address) -> Callable[[Any], None]:
        """How the LDE sends to a peer whose session just came up: `_lde_send` without
        looking the session up every time (the LDE asks again when it comes up again)."""
        return self.sessions[lsr_id].send_if_connected

    def _lde_send(self, lsr_id: IPv4Address, msg: Message) -> None:
        s = self.sessions.get(lsr_id)
        if s is not None and s.conn is not None:
            s.send(msg)

    # -------------------------------------------------------------- driver entry point

    def handle(self, event: Event, now: float | None = None) -> list[Action]:
        """Process one input event at time `now`; return the actions to perform, in order."""
        if now is not None:
            self.now = now
        out = self._out = []
        on = _HANDLERS.get(type(event))
        if on is None:
            raise TypeError(f"not an LDP input event: {event!r}")
        on(self, event, out)
        self._commit(out)
        self._out = []
        return out

    def _commit(self, out: list[Action]) -> None:
        """After every event: the LDE's commit step (bindings, advertisements, LFIB
        diff), then every session's queued messages, one TCP write each."""
        diff = self.lde.finish()
        if diff is not None:
            out.append(ApplyLfib(diff))
        for lid in sorted(self.sessions):
            s = self.sessions[lid]
            if s.queue:
                s.flush(out)

    def _tcp_connected(self, ev: TcpConnected, out: list[Action]) -> None:
        s = self.conns.get(ev.conn)
        if isinstance(s, Session):
            s.connected(out)

    def _tcp_closed(self, ev: TcpClosed, out: list[Action]) -> None:
        c = self.conns.get(ev.conn)
        if isinstance(c, Session):
            c.tcp_closed(ev.reason, out)
        elif c is not None:
            del self.conns[ev.conn]
            out.append(CancelTimer(f"accept:{ev.conn}"))

    def _rib_changed(self, ev: RibChanged, out: list[Action]) -> None:
        # A connect that failed for want of a route to the peer's transport address is
        # retried as soon as the IGP installs one, not when the backoff runs out. Only
        # sessions waiting on that backoff are looked at (none, once the network is up).
        waiting = [s for _, s in sorted(self.sessions.items())
                   if s.active and s.conn is None and s.adjacencies and s.retry_delay]
        before = [self._reachable(s.transport) for s in waiting]
        self.lde.rib_changed(ev.rib, ev.changed, ev.base)
        for s, had in zip(waiting, before, strict=True):
            if not had and self._reachable(s.transport):
                out.append(CancelTimer(f"retry:{s.lsr_id}"))
                s.connect(out)

    def _reachable(self, addr: IPv4Address) -> bool:
        """The RIB has a route (not merely a connected subnet) covering `addr`."""
        rib = self.lde.rib
        return IPv4Network(f"{addr}/32") in rib or any(
            addr in p for p, r in rib.items() if p.prefixlen and not r.connected)

    # -------------------------------------------------------------- interfaces

    def _link_down(self, ev: InterfaceDown, out: list[Action]) -> None:
        before = self.addresses()
        if ev.ifname in self.configured:
            self.if_down.add(ev.ifname)
        self._interface_off(ev.ifname, out)
        self._addresses_changed(before)

    def _link_up(self, ev: InterfaceUp, out: list[Action]) -> None:
        before = self.addresses()
        self.if_down.discard(ev.ifname)
        self._interface_on(ev.ifname, out)
        self._addresses_changed(before)

    def _interface_off(self, ifname: str, out: list[Action]) -> None:
        """No Hellos on `ifname` any more; its adjacencies go (§2.4)."""
        for adj in self.discovery.interface_down(ifname, out):
            self._adjacency_gone(adj, out, StatusCode.HOLD_TIMER_EXPIRED)

    def _interface_on(self, ifname: str, out: list[Action]) -> None:
        if self.started and not self.stopped and ifname not in self.if_down:
            self.discovery.start_interface(ifname, out)

    def _address_added(self, ev: AddressAdded, out: list[Action]) -> None:
        if ev.ifname not in self.configured or self.interfaces.get(ev.ifname) == ev.address:
            return
        before = self.addresses()
        ldp = ev.ifname in self.ldp_interfaces
        if ldp and ev.ifname in self.interfaces:  # renumbered: Hellos restart from the new source
            self._interface_off(ev.ifname, out)
        self.interfaces[ev.ifname] = ev.address
        if ldp:
            self.discovery.interfaces[ev.ifname] = ev.address
            self._interface_on(ev.ifname, out)
        self._addresses_changed(before)

    def _address_removed(self, ev: AddressRemoved, out: list[Action]) -> None:
        if self.interfaces.get(ev.ifname) != ev.address:
            return
        before = self.addresses()
        # Without an IPv4 address the interface cannot send Link Hellos (FRR, too,
        # disables LDP on an interface that has no address).
        self._interface_off(ev.ifname, out)
        del self.interfaces[ev.ifname]
        self.discovery.interfaces.pop(ev.ifname, None)
        self._addresses_changed(before)

    # -------------------------------------------------------------- start / stop

    def _start(self, ev: Start, out: list[Action]) -> None:
        if self.started:
            return
        self.started = True
        self.stopped = False
        out.append(TcpListen(self.transport, tuple(sorted(self.passwords.items())),
                             gtsm=self.options.gtsm))
        for ifname in self.discovery.interfaces:
            if ifname not in self.if_down:
                self.discovery.start_interface(ifname, out)

    def _stop(self, ev: Stop, out: list[Action]) -> None:
        self.stopped = True
        for ifname in sorted(self.discovery.up):  # not set order: that varies by hash seed
            for adj in self.discovery.interface_down(ifname, out):
                self._adjacency_gone(adj, out, StatusCode.SHUTDOWN)
        for conn, c in list(self.conns.items()):
            if isinstance(c, _Pending):
                out.append(TcpClose(conn))
                del self.conns[conn]
        self.started = False

    # -------------------------------------------------------------- discovery

    def _hello(self, ev: HelloReceived, out: list[Action]) -> None:
        if self.stopped or not self.started:
            return
        res = self.discovery.receive(ev.ifname, ev.src, ev.data, self.now, out)
        if res is None:
            return
        adj, is_new = res
        s = self.sessions.get(adj.lsr_id)
        if s is None:
            s = Session(self, adj.lsr_id, adj.transport)
            self.sessions[adj.lsr_id] = s
            out.append(LogEvent("info", f"new neighbor {adj.lsr_id} on {adj.ifname}"))
        s.adjacencies.add(adj.ifname)
        if s.active and s.conn is None and is_new and len(s.adjacencies) == 1:
            # FRR: an extra Hello first, so the passive peer surely has the adjacency.
            out.append(self.discovery.hello(adj.ifname))
            out.append(CancelTimer(f"retry:{s.lsr_id}"))
            s.connect(out)
        elif s.hello_cuts_backoff():
            # The peer is there (it restarted, or its session went down and it came
            # back): connect now, not when the backoff runs out (Session.hello_cuts_backoff).
            out.append(LogEvent("info", f"neighbor {adj.lsr_id}: Hello while the session "
                                        "is down: backoff reset, connecting"))
            out.append(self.discovery.hello(adj.ifname))
            out.append(CancelTimer(f"retry:{s.lsr_id}"))
            s.connect(out)

    def _adjacency_gone(self, adj: Adjacency, out: list[Action], code: StatusCode) -> None:
        s = self.sessions.get(adj.lsr_id)
        if s is None:
            return
        s.adjacencies.discard(adj.ifname)
        if s.adjacencies:
            return
        # §2.4: the session goes with its last adjacency.
        out.append(LogEvent("info", f"neighbor {adj.lsr_id}: last adjacency gone"))
        s.shutdown(code, out, "last adjacency gone")
        out.append(CancelTimer(f"retry:{s.lsr_id}"))
        del self.sessions[adj.lsr_id]

    # -------------------------------------------------------------- TCP

    def connect_slot(self, s: Session, out: list[Action]) -> bool:
        """May `s` open TCP now? At most `max_connecting` connects in flight (each holds
        a socket until it is answered); without a slot, `s` retries in
        CONNECT_LIMIT_RETRY s without growing its backoff."""
        busy = sum(1 for x in self.sessions.values() if x.connecting)
        if busy < self.max_connecting:
            return True
        self._refuse(CONNECT_LIMIT)
        out.append(StartTimer(f"retry:{s.lsr_id}", CONNECT_LIMIT_RETRY))
        return False

    def _refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def refusals(self) -> dict[str, int]:
        """What the flood bounds refused so far (ldp.discovery's Hello reasons,
        CONNECT_LIMIT, ACCEPT_LIMIT): reason -> count, only reasons that occurred."""
        return dict(sorted({**self.discovery.refused, **self.refused}.items()))

    def _accepted(self, ev: TcpAccepted, out: list[Action]) -> None:
        if self.stopped or not self.started:
            out.append(TcpClose(ev.conn))
            return
        pending = sum(1 for c in self.conns.values() if isinstance(c, _Pending))
        if pending >= self.max_pending_accepts:
            # A real peer retries; a flood of connections costs no more than this many fds.
            self._refuse(ACCEPT_LIMIT)
            out.append(TcpClose(ev.conn))
            return
        self.conns[ev.conn] = _Pending(ev.conn, ev.local, ev.remote, self.codec.PduReader())
        # FRR waits 5 s for a Hello before rejecting an unknown peer.
        out.append(StartTimer(f"accept:{ev.conn}", 5.0))

    def _tcp_data(self, ev: TcpData, out: list[Action]) -> None:
        c = self.conns.get(ev.conn)
        if isinstance(c, Session):
            c.data(ev.data, out)
            return
        if c is None:
            return
        items = c.reader.pull(ev.data)
        first = next(items, None)
        if first is None:
            return
        if not isinstance(first, Pdu):
            self._reject(c, out, getattr(first, "status", None) or Status.of(StatusCode.BAD_PDU_LENGTH))
            return
        lsr_id = first.ldp_id.lsr_id
        s = self.sessions.get(lsr_id)
        init = next((m for m in first.messages if isinstance(m, Initialization)), None)
        msg_id = init.msg_id if init else 0
        if s is None or s.transport != c.remote or first.ldp_id.label_space != 0:
            # §2.5.3: no Hello adjacency for this peer -> Session Rejected/No Hello
            self._reject(c, out, Status.of(StatusCode.SESSION_REJECTED_NO_HELLO, msg_id, 0x0200))
            return
        out.append(CancelTimer(f"accept:{ev.conn}"))
        del self.conns[ev.conn]
        if not s.attach(ev.conn, c.reader, out):
            # we are the active side for this peer, or a session already exists
            out.append(LogEvent("info", f"extra connection from {c.remote} closed"))
            out.append(TcpClose(ev.conn))
            return
        s.pdus(itertools.chain((first,), items), out)

    def _reject(self, c: _Pending, out: list[Action], status: Status) -> None:
        pdu = Pdu(self.ldp_id, (Notification(self.next_msg_id(), status),))
        self.counters_tx["NOTIFICATION"] = self.counters_tx.get("NOTIFICATION", 0) + 1
        out.append(TcpSend(c.conn, self.codec.encode_pdu(pdu)))
        out.append(TcpClose(c.conn))
        out.append(CancelTimer(f"accept:{c.conn}"))
        out.append(LogEvent("warning", f"rejected connection from {c.remote}: "
                                       f"{StatusCode(status.code).name}"))
        self.conns.pop(c.conn, None)

    # -------------------------------------------------------------- timers

    def _timer(self, ev: TimerExpired, out: list[Action]) -> None:
        timer = ev.timer
        kind, _, rest = timer.partition(":")
        if kind == "hello":
            self.discovery.hello_timer_expired(rest, out)
        elif kind == "adj":
            ifname, _, lid = rest.rpartition(":")
            adj = self.discovery.expire(ifname, IPv4Address(lid))
            if adj is not None:
                out.append(LogEvent("info", f"adjacency {ifname}/{lid} hold time expired"))
                self._adjacency_gone(adj, out, StatusCode.HOLD_TIMER_EXPIRED)
        elif kind == "accept":
            c = self.conns.get(int(rest))
            if isinstance(c, _Pending):
                self._reject(c, out, Status.of(StatusCode.SESSION_REJECTED_NO_HELLO))
        elif kind in ("ka-send", "ka-hold", "init", "retry"):
            s = self.sessions.get(IPv4Address(rest))
            if s is not None:
                s.timer(kind, out)
        else:
            out.append(LogEvent("warning", f"unknown timer {timer}"))

    # -------------------------------------------------------------- views

    def operational_interfaces(self) -> frozenset[str]:
        """Interfaces with a Hello adjacency whose session is OPERATIONAL: where "LDP is
        operational on the link" for LDP-IGP synchronisation (RFC 5443 §2)."""
        return frozenset(i for s in self.sessions.values()
                         if s.state is State.OPERATIONAL for i in s.adjacencies)

    def neighbors(self) -> list[dict]:
        """Sessions, one per peer LSR ID (peers as LSR IDs; the view layer names them)."""
        out = []
        for lid in sorted(self.sessions):
            s = self.sessions[lid]
            out.append({
                "neighbor": str(lid),
                "lsr_id": str(lid),
                "transport": str(s.transport),
                "state": s.state.value,
                "role": "active" if s.active else "passive",
                "adjacencies": sorted(s.adjacencies),
                "keepalive": s.keepalive,
                "gtsm": s.gtsm,
                "uptime": None if s.up_since is None else round(self.now - s.up_since, 6),
                "last_error": s.last_error,
                **({"reason": self._why_down(s)} if not s.operational else {}),
            })
        return out

    def _why_down(self, s: Session) -> str:
        """Why a session with a Hello adjacency is not OPERATIONAL, for operators.

        A TCP MD5 (RFC 2385) key mismatch is silent on the wire: the kernel drops the
        peer's segments, so the symptom is only "no TCP session" (and connect timeouts
        on the active side).
        """
        if s.state.value != "NON_EXISTENT":
            return f"session {s.state.value}" + (f": {s.last_error}" if s.last_error else "")
        md5 = s.lsr_id in self.passwords or "timed out" in s.last_error.lower() \
            or "timeout" in s.last_error.lower()
        return "no TCP session" + (" (MD5 mismatch?)" if md5 else "") + \
            (f": {s.last_error}" if s.last_error else "")

    def bindings(self) -> list[dict]:
        return self.lde.bindings()

    def counters(self) -> dict[str, dict[str, int]]:
        tx = dict(self.counters_tx)
        rx = dict(self.counters_rx)
        if self.discovery.hellos_sent:
            tx["HELLO"] = self.discovery.hellos_sent
        if self.discovery.hellos_received:
            rx["HELLO"] = self.discovery.hellos_received
        return {"sent": dict(sorted(tx.items())), "received": dict(sorted(rx.items())),
                "refused": self.refusals()}


# Input event type -> LdpInstance method(event, out); `handle` then runs the commit step.
_HANDLERS: dict[type, Callable[[LdpInstance, Any, list[Action]], None]] = {
    TcpData: LdpInstance._tcp_data,
    TimerExpired: LdpInstance._timer,
    HelloReceived: LdpInstance._hello,
    TcpConnected: LdpInstance._tcp_connected,
    TcpAccepted: LdpInstance._accepted,
    TcpClosed: LdpInstance._tcp_closed,
    RibChanged: LdpInstance._rib_changed,
    Start: LdpInstance._start,
    Stop: LdpInstance._stop,
    InterfaceDown: LdpInstance._link_down,
    InterfaceUp: LdpInstance._link_up,
    AddressAdded: LdpInstance._address_added,
    AddressRemoved: LdpInstance._address_removed,
}

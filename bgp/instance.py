"""`BgpInstance`: one router's BGP-4 speaker, sans-I/O.

    inst = BgpInstance(cfg)                  # cfg: bgp.config.BgpConfig
    actions = inst.handle(Start(), now=0.0)

See `bgp.events` for the event/action contract. Per event: the FSM of the
connection concerned steps (`bgp.fsm`), and its action is performed here; UPDATEs
fill the peer's Adj-RIB-In. Then the commit step runs the decision process for
every destination that changed (RFC 4271 §9.1.2, `bgp.rib.select`), updates the
Loc-RIB (emitting `BestPathChanged`), works out each peer's Adj-RIB-Out (§9.1.3,
iBGP split horizon §9.2, route reflection RFC 4456 §6, §8) and sends the
differences, NLRI sharing attributes packed into one UPDATE (§9.2), with an
End-of-RIB marker (RFC 4724 §2) after the initial table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Any

from bgp.attrs import (
    NO_ADVERTISE,
    NO_EXPORT,
    NO_EXPORT_SUBCONFED,
    Ctx,
    ExtCommunity,
    Handling,
    MpReach,
    MpUnreach,
    PathAttrs,
)
from bgp.config import BgpConfig
from bgp.events import (
    Action,
    BestPathChanged,
    CancelTimer,
    Event,
    LocalRoute,
    LogEvent,
    Originate,
    PeerStart,
    PeerStateChanged,
    PeerStop,
    RibChanged,
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
    WithdrawLocal,
)
from bgp.fsm import Action as Do
from bgp.fsm import Event as E
from bgp.fsm import FsmError, State, step
from bgp.messages import (
    KEEPALIVE_BYTES,
    MAX_LEN,
    CeaseSubcode,
    ErrorCode,
    FourOctetAs,
    FsmSubcode,
    MessageError,
    MsgType,
    Multiprotocol,
    Notification,
    Open,
    OpenSubcode,
    RouteRefresh,
    RouteRefreshCap,
    Update,
    decode_message,
    encode,
)
from bgp.nlri import IPV4_UNICAST, IPV4_VPN, VPN_FAMILIES, Family, Nlri, encode_nlri, family_name
from bgp.peer import Advert, Conn, Key, Peer
from bgp.rib import DEFAULT_LOCAL_PREF, Path, preference, select
from lsr.core.igp import Route

OPEN_HOLD = 240.0  # §8.2.2: "a HoldTimer value of 4 minutes is suggested" after OPEN
RESTART_INITIAL = 1.0  # first restart delay after a drop (AutomaticStart, Event 3)
_MSG_NAMES = {t.value: t.name for t in MsgType}


class BgpInstance:
    def __init__(self, cfg: BgpConfig) -> None:
        self.cfg = cfg
        self.router_id = cfg.router_id
        self.cluster_id = cfg.cluster_id or cfg.router_id  # RFC 4456 §7
        self.now = 0.0
        self.started = False
        self.peers: dict[IPv4Address, Peer] = {
            p.address: Peer(p, cfg.asn) for p in cfg.peers}
        self.by_conn: dict[int, Peer] = {}
        self._conn_id = 0
        # Every path per destination: source (peer address, None = local) -> Path.
        self.paths: dict[Key, dict[IPv4Address | None, Path]] = {}
        self.loc_rib: dict[Key, Path] = {}
        self.rib: Mapping[IPv4Network, Route] = {}
        self._cost: dict[IPv4Address, int | None] = {}  # next hop -> IGP cost (None: unreachable)
        self._by_nh: dict[IPv4Address | IPv6Address, set[Key]] = {}
        self._dirty: set[Key] = set()
        self.counters_tx: dict[str, int] = {}
        self.counters_rx: dict[str, int] = {}
        # NOTIFICATIONs by "CODE/subcode" (what was refused or malformed, and why)
        self.notifications_tx: dict[str, int] = {}
        self.notifications_rx: dict[str, int] = {}
        self.decisions = 0
        self._out: list[Action] = []

    # ------------------------------------------------------------------ entry point

    def handle(self, event: Event, now: float | None = None) -> list[Action]:
        """Process one input event at `now`; the actions to perform, in order."""
        if now is not None:
            self.now = now
        out = self._out = []
        on = _HANDLERS.get(type(event))
        if on is None:
            raise TypeError(f"not a BGP input event: {event!r}")
        on(self, event)
        self._commit()
        self._out = []
        return out

    def _emit(self, a: Action) -> None:
        self._out.append(a)

    def _log(self, level: str, text: str) -> None:
        self._out.append(LogEvent(level, text))

    # ------------------------------------------------------------------ start / stop

    def _start(self, ev: Start) -> None:
        if self.started:
            return
        self.started = True
        pw = tuple(sorted((p.address, p.cfg.password) for p in self.peers.values()
                          if p.cfg.password))
        self._emit(TcpListen(self.cfg.local_address, pw))
        if self.cfg.networks:
            self._originate(Originate(tuple(LocalRoute(IPV4_UNICAST, Nlri(n))
                                            for n in self.cfg.networks)))
        if self.cfg.vpn_networks:  # configured VPN-IPv4 routes (no VRF behind them)
            self._originate(Originate(tuple(
                LocalRoute(IPV4_VPN, Nlri(v.prefix, v.rd), v.label,
                           ext_communities=tuple(ExtCommunity.route_target(rt)
                                                 for rt in v.route_targets))
                for v in self.cfg.vpn_networks)))
        for addr in sorted(self.peers):
            self._manual_start(self.peers[addr])

    def _stop(self, ev: Stop) -> None:
        for addr in sorted(self.peers):
            self._manual_stop(self.peers[addr])
        self.started = False

    def _manual_start(self, peer: Peer) -> None:
        peer.enabled = True
        peer.restart_delay = RESTART_INITIAL
        self._fsm(peer, None, E.MANUAL_START_PASSIVE if peer.cfg.passive else E.MANUAL_START)

    def _manual_stop(self, peer: Peer) -> None:
        peer.enabled = False
        self._emit(CancelTimer(f"start:{peer.address}"))
        if not peer.conns:
            self._fsm(peer, None, E.MANUAL_STOP)
        for conn in list(peer.conns.values()):
            self._fsm(peer, conn, E.MANUAL_STOP)

    def _peer_start(self, ev: PeerStart) -> None:
        peer = self.peers.get(ev.peer)
        if peer is not None and self.started:
            self._manual_start(peer)

    def _peer_stop(self, ev: PeerStop) -> None:
        peer = self.peers.get(ev.peer)
        if peer is not None:
            self._manual_stop(peer)

    # ------------------------------------------------------------------ the FSM

    def _fsm(self, peer: Peer, conn: Conn | None, event: E,
             error: MessageError | None = None, msg: Any = None) -> None:
        """Step the FSM of `conn` (or the peer's, when it has no connection) and
        perform the action (§8.2.2)."""
        before = peer.state
        state = conn.state if conn is not None else peer.base
        self._fsm_prev = state
        try:
            action, nxt = step(state, event)
        except FsmError as e:
            self._log("warning", f"peer {peer.address}: {e}")
            return
        if conn is not None:
            conn.state = nxt
        else:
            peer.base = nxt if nxt in (State.IDLE, State.ACTIVE) else State.IDLE
        _PERFORM[action](self, peer, conn, nxt, error, msg)
        after = peer.state
        if after != before:
            self._emit(PeerStateChanged(peer.address, before.value, after.value,
                                        f"{event.label} (Event {int(event)})"))

    def _a_ignore(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        pass

    def _a_initiate(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        # Idle, Event 1/3: counter to zero, start ConnectRetryTimer, connect, listen.
        peer.counter = 0
        self._start_retry_timer(peer)
        self._connect(peer)

    def _a_listen(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        # Idle, Event 4/5: counter to zero, start ConnectRetryTimer, listen -> Active.
        peer.counter = 0
        self._start_retry_timer(peer)

    def _a_stop(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        # Connect/Active, Event 2: drop TCP, release, counter to zero, stop the timer.
        if conn is not None:
            self._close(peer, conn)
        peer.counter = 0
        self._emit(CancelTimer(f"connect-retry:{peer.address}"))
        peer.base = State.IDLE

    def _a_stop_cease(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        # OpenSent/OpenConfirm/Established, Event 2: NOTIFICATION Cease, then as STOP.
        assert conn is not None
        self._notify(peer, conn, Notification(ErrorCode.CEASE, CeaseSubcode.ADMIN_SHUTDOWN))
        self._close(peer, conn)
        peer.counter = 0
        self._emit(CancelTimer(f"connect-retry:{peer.address}"))
        peer.base = State.IDLE

    def _a_retry(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        # Connect/Active, Event 9: (drop TCP,) restart ConnectRetryTimer, connect again.
        if conn is not None:
            self._close(peer, conn)
        self._start_retry_timer(peer)
        if peer.cfg.passive and conn is None:
            # PassiveTcpEstablishment (§8.1.1) "passively wait[s] for the remote BGP peer
            # to establish the BGP TCP connection": we never connect, and stay Active
            # listening (as FRR's `neighbor X passive`).
            peer.base = State.ACTIVE
            return
        self._connect(peer)

    def _a_send_open(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        # Connect/Active, Event 16/17: stop ConnectRetryTimer, send OPEN, HoldTimer large.
        assert conn is not None
        self._emit(CancelTimer(f"connect-retry:{peer.address}"))
        caps: list[Any] = [Multiprotocol(*f) for f in sorted(self.cfg.families)]
        caps += [RouteRefreshCap(), FourOctetAs(self.cfg.asn)]
        self._send(peer, conn, Open(self.cfg.asn, self.cfg.hold_time, self.router_id, tuple(caps)))
        self._emit(StartTimer(f"hold:{conn.id}", OPEN_HOLD))

    def _a_connect_failed(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        # Connect, Event 18: stop ConnectRetryTimer, drop TCP, release -> Idle.
        assert conn is not None
        self._close(peer, conn, tcp_gone=True)
        if not peer.conns:
            self._emit(CancelTimer(f"connect-retry:{peer.address}"))
            self._went_idle(peer)

    def _a_opensent_tcp_failed(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        # OpenSent, Event 18: close, restart ConnectRetryTimer, keep listening -> Active.
        assert conn is not None
        self._close(peer, conn, tcp_gone=True)
        peer.base = State.ACTIVE
        self._start_retry_timer(peer)

    def _a_accept_open(self, peer: Peer, conn: Conn | None, nxt: State, err: Any,
                       msg: Open) -> None:
        # OpenSent, Event 19: stop ConnectRetryTimer, send KEEPALIVE, start the
        # KeepaliveTimer, HoldTimer to the negotiated value (§4.2) -> OpenConfirm.
        assert conn is not None
        self._emit(CancelTimer(f"connect-retry:{peer.address}"))
        conn.open = msg
        conn.hold = min(self.cfg.hold_time, msg.hold_time)  # §4.2: the smaller of the two
        ka = conn.hold / 3 if self.cfg.keepalive is None else min(self.cfg.keepalive, conn.hold / 3)
        conn.keepalive = ka
        self._send_raw(peer, conn, KEEPALIVE_BYTES, "KEEPALIVE")
        if conn.hold:
            self._emit(StartTimer(f"hold:{conn.id}", conn.hold))
            if ka:
                self._emit(StartTimer(f"keepalive:{conn.id}", ka))
        else:  # §4.2: a Hold Time of zero: no KEEPALIVEs, no HoldTimer
            self._emit(CancelTimer(f"hold:{conn.id}"))
        self._collision(peer, conn)

    def _a_send_keepalive(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        assert conn is not None
        self._send_raw(peer, conn, KEEPALIVE_BYTES, "KEEPALIVE")
        if conn.keepalive:
            self._emit(StartTimer(f"keepalive:{conn.id}", conn.keepalive))

    def _a_establish(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        # OpenConfirm, Event 26: restart HoldTimer -> Established.
        assert conn is not None
        self._restart_hold(conn)
        for other in list(peer.conns.values()):
            if other is conn:
                continue
            # §6.8: another connection loses to an Established one.
            if other.state in (State.OPEN_SENT, State.OPEN_CONFIRM):
                self._fsm(peer, other, E.OPEN_COLLISION_DUMP, msg="collision")
            else:
                self._close(peer, other)
        self._peer_up(peer, conn)

    def _a_restart_hold(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        assert conn is not None
        self._restart_hold(conn)

    def _a_process_update(self, peer: Peer, conn: Conn | None, nxt: State, err: Any,
                          msg: Update) -> None:
        assert conn is not None
        self._restart_hold(conn)
        self._update(peer, msg)

    def _drop(self, peer: Peer, conn: Conn | None, note: Notification | None,
              count: bool = True) -> None:
        """"sets the ConnectRetryTimer to zero, releases all BGP resources, drops the TCP
        connection, increments the ConnectRetryCounter by 1" -> Idle."""
        if conn is not None:
            if note is not None:
                self._notify(peer, conn, note)
            self._close(peer, conn)
        if count:
            peer.counter += 1
        if not peer.conns:
            self._emit(CancelTimer(f"connect-retry:{peer.address}"))
            self._went_idle(peer)

    def _a_drop(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        self._drop(peer, conn, None)

    def _a_drop_version(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        self._drop(peer, conn, None, count=False)

    def _a_drop_hold_expired(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        peer.last_error = "hold timer expired"
        self._drop(peer, conn, Notification(ErrorCode.HOLD_TIMER_EXPIRED))

    def _a_drop_cease(self, peer: Peer, conn: Conn | None, nxt: State, err: Any,
                      msg: Any) -> None:
        sub = CeaseSubcode.COLLISION_RESOLUTION if msg == "collision" else \
            CeaseSubcode.OTHER_CONFIG_CHANGE
        self._drop(peer, conn, Notification(ErrorCode.CEASE, sub))

    def _a_drop_error(self, peer: Peer, conn: Conn | None, nxt: State,
                      err: MessageError | None, *_: Any) -> None:
        assert err is not None
        peer.last_error = f"sent {err.notification().describe()}: {err.reason}"
        self._drop(peer, conn, err.notification())

    def _a_drop_fsm_error(self, peer: Peer, conn: Conn | None, *_: Any) -> None:
        # RFC 6608 §4: the subcode names the state the unexpected event came in.
        prev = self._fsm_prev
        sub = {State.OPEN_SENT: FsmSubcode.OPEN_SENT, State.OPEN_CONFIRM: FsmSubcode.OPEN_CONFIRM,
               State.ESTABLISHED: FsmSubcode.ESTABLISHED}.get(prev, FsmSubcode.UNSPECIFIED)
        peer.last_error = f"FSM error in {prev}"
        self._drop(peer, conn, Notification(ErrorCode.FSM, sub))

    _fsm_prev: State = State.IDLE

    # ------------------------------------------------------------------ helpers

    def _start_retry_timer(self, peer: Peer) -> None:
        self._emit(StartTimer(f"connect-retry:{peer.address}", self.cfg.connect_retry))

    def _restart_hold(self, conn: Conn) -> None:
        if conn.hold:
            self._emit(StartTimer(f"hold:{conn.id}", conn.hold))

    def _connect(self, peer: Peer) -> None:
        self._conn_id += 1
        conn = Conn(self._conn_id, outgoing=True)
        peer.conns[conn.id] = conn
        self.by_conn[conn.id] = peer
        self._emit(TcpConnect(conn.id, self.cfg.local_address, peer.address, peer.cfg.password))

    def _close(self, peer: Peer, conn: Conn, tcp_gone: bool = False) -> None:
        """Release the connection: its timers, its TCP, its routes if it was the session."""
        if not tcp_gone:
            self._emit(TcpClose(conn.id))
        self._emit(CancelTimer(f"hold:{conn.id}"))
        self._emit(CancelTimer(f"keepalive:{conn.id}"))
        peer.conns.pop(conn.id, None)
        self.by_conn.pop(conn.id, None)
        if peer.session is conn:
            self._peer_down(peer)

    def _went_idle(self, peer: Peer) -> None:
        """No connection left: Idle. An enabled peer restarts itself (AutomaticStart,
        Event 3) after a delay that doubles with each failure up to ConnectRetryTime."""
        peer.base = State.IDLE
        if peer.enabled:
            self._emit(StartTimer(f"start:{peer.address}", peer.restart_delay))
            peer.restart_delay = min(peer.restart_delay * 2, self.cfg.connect_retry)

    def _notify(self, peer: Peer, conn: Conn, note: Notification) -> None:
        self._send(peer, conn, note)

    def _send(self, peer: Peer, conn: Conn, msg: Any) -> None:
        if isinstance(msg, Notification):
            d = msg.describe()
            self.notifications_tx[d] = self.notifications_tx.get(d, 0) + 1
        self._send_raw(peer, conn, encode(msg, peer.ctx), _MSG_NAMES[msg.TYPE])

    def _send_raw(self, peer: Peer, conn: Conn, data: bytes, kind: str, n: int = 1) -> None:
        self.counters_tx[kind] = self.counters_tx.get(kind, 0) + n
        self._emit(TcpSend(conn.id, data))

    def _collision(self, peer: Peer, conn: Conn) -> None:
        """§6.8, on an OPEN accepted on `conn`: against another connection in
        OpenConfirm (or Established), one of the two goes (OpenCollisionDump, Event 23)."""
        for other in list(peer.conns.values()):
            if other is conn or conn.id not in peer.conns:
                continue
            if other.state == State.ESTABLISHED:  # CollisionDetectEstablishedState FALSE
                self._fsm(peer, conn, E.OPEN_COLLISION_DUMP, msg="collision")
            elif other.state == State.OPEN_CONFIRM:
                # The connection initiated by the speaker with the higher BGP Identifier stays.
                assert conn.open is not None
                local_wins = int(self.router_id) > int(conn.open.bgp_id)
                victim = conn if conn.outgoing != local_wins else other
                self._fsm(peer, victim, E.OPEN_COLLISION_DUMP, msg="collision")

    # ------------------------------------------------------------------ TCP events

    def _tcp_connected(self, ev: TcpConnected) -> None:
        peer = self.by_conn.get(ev.conn)
        if peer is not None:
            peer.connect_error = ""
            self._fsm(peer, peer.conns[ev.conn], E.TCP_CR_ACKED)

    def _tcp_accepted(self, ev: TcpAccepted) -> None:
        peer = self.peers.get(ev.remote)
        # An unknown address, or a peer in Idle: refused (§8.2.2 Idle; Event 15 is below us).
        if peer is None or not self.started or (not peer.conns and peer.base == State.IDLE):
            self._emit(TcpClose(ev.conn))
            return
        if peer.session is not None:  # §6.8: a collision with Established closes the new one
            self._emit(TcpClose(ev.conn))
            return
        conn = Conn(ev.conn, outgoing=False)
        peer.conns[conn.id] = conn
        self.by_conn[conn.id] = peer
        self._fsm(peer, conn, E.TCP_CONNECTION_CONFIRMED)

    def _tcp_closed(self, ev: TcpClosed) -> None:
        peer = self.by_conn.get(ev.conn)
        if peer is None:
            return
        conn = peer.conns[ev.conn]
        if ev.reason and conn.outgoing and conn.state == State.CONNECT:
            # our connect failed: kept apart, so `last_error` still says why the
            # session last went down (FRR's "Last reset" and "connect failures" alike)
            peer.connect_error = ev.reason
        elif ev.reason:
            peer.last_error = ev.reason
        self._fsm(peer, conn, E.TCP_CONNECTION_FAILS)
        if conn.id in peer.conns:  # the action kept it (cannot happen today): let it go
            self._close(peer, conn, tcp_gone=True)

    def _tcp_data(self, ev: TcpData) -> None:
        peer = self.by_conn.get(ev.conn)
        if peer is None:
            return
        conn = peer.conns[ev.conn]
        try:
            for raw in conn.reader.feed(ev.data):
                self._message(peer, conn, raw)
                if conn.id not in peer.conns:
                    return
        except MessageError as e:  # §6.1: the stream cannot be framed past a bad header
            self._fsm_msg(peer, conn, E.BGP_HEADER_ERR, e)

    def _fsm_msg(self, peer: Peer, conn: Conn, event: E, error: MessageError | None = None,
                 msg: Any = None) -> None:
        self._fsm(peer, conn, event, error, msg)

    def _message(self, peer: Peer, conn: Conn, raw: bytes) -> None:
        mtype = raw[18]
        name = _MSG_NAMES.get(mtype, str(mtype))
        self.counters_rx[name] = self.counters_rx.get(name, 0) + 1
        try:
            msg = decode_message(raw, peer.ctx)
        except MessageError as e:
            ev = {ErrorCode.MESSAGE_HEADER: E.BGP_HEADER_ERR,
                  ErrorCode.OPEN_MESSAGE: E.BGP_OPEN_MSG_ERR}.get(ErrorCode(e.code), None)
            if ev is None:
                ev = E.UPDATE_MSG_ERR
            self._log("warning", f"peer {peer.address}: {name}: {e.reason}")
            self._fsm_msg(peer, conn, ev, e)
            return
        if isinstance(msg, Open):
            err = self._check_open(peer, msg)
            if err is not None:
                self._fsm_msg(peer, conn, E.BGP_OPEN_MSG_ERR, err)
            else:
                self._fsm_msg(peer, conn, E.BGP_OPEN, msg=msg)
        elif isinstance(msg, Update):
            self._fsm_msg(peer, conn, E.UPDATE_MSG, msg=msg)
        elif isinstance(msg, Notification):
            peer.last_error = f"received {msg.describe()}"
            self.notifications_rx[msg.describe()] = self.notifications_rx.get(msg.describe(), 0) + 1
            self._log("info", f"peer {peer.address}: NOTIFICATION {msg.describe()}")
            version = msg.code == ErrorCode.OPEN_MESSAGE and \
                msg.subcode == OpenSubcode.UNSUPPORTED_VERSION
            self._fsm_msg(peer, conn, E.NOTIF_MSG_VER_ERR if version else E.NOTIF_MSG)
        elif isinstance(msg, RouteRefresh):
            # RFC 2918 §4: resend the Adj-RIB-Out of a family we negotiated; else ignore.
            if conn is peer.session and msg.family in peer.families:
                for key, adv in peer.adj_out.items():
                    if key[0] == msg.family:
                        peer.pending[key] = adv
                peer.adj_out = {k: v for k, v in peer.adj_out.items() if k[0] != msg.family}
        else:
            self._fsm_msg(peer, conn, E.KEEPALIVE_MSG)

    def _check_open(self, peer: Peer, msg: Open) -> MessageError | None:
        """§6.2 checks that need our configuration (the rest are in `Open.from_value`)."""
        if msg.asn != peer.cfg.asn:
            return MessageError(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_PEER_AS,
                                f"AS {msg.asn}, expected {peer.cfg.asn}")
        if msg.bgp_id == self.router_id and not peer.ebgp:  # RFC 6286 §2.2
            return MessageError(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_BGP_IDENTIFIER,
                                f"BGP Identifier {msg.bgp_id} is ours", msg.bgp_id.packed)
        return None

    # ------------------------------------------------------------------ timers

    def _timer(self, ev: TimerExpired) -> None:
        kind, _, rest = ev.timer.partition(":")
        if kind in ("hold", "keepalive"):
            peer = self.by_conn.get(int(rest))
            if peer is not None:
                event = E.HOLD_TIMER_EXPIRES if kind == "hold" else E.KEEPALIVE_TIMER_EXPIRES
                self._fsm_msg(peer, peer.conns[int(rest)], event)
            return
        peer = self.peers.get(IPv4Address(rest))
        if peer is None:
            return
        if kind == "connect-retry":
            conn = peer.connecting()
            if conn is not None:
                self._fsm(peer, conn, E.CONNECT_RETRY_TIMER_EXPIRES)
            elif not peer.conns:
                self._fsm(peer, None, E.CONNECT_RETRY_TIMER_EXPIRES)
        elif kind == "start" and peer.enabled and not peer.conns and self.started:
            self._fsm(peer, None, E.AUTOMATIC_START_PASSIVE if peer.cfg.passive
                      else E.AUTOMATIC_START)

    # ------------------------------------------------------------------ sessions

    def _peer_up(self, peer: Peer, conn: Conn) -> None:
        """Established: the negotiated capabilities, then the whole table (§9.4)."""
        assert conn.open is not None
        op = conn.open
        peer.session = conn
        peer.remote_id = op.bgp_id
        peer.families = set(self.cfg.families) & op.families() if any(
            isinstance(c, Multiprotocol) for c in op.capabilities) else \
            set(self.cfg.families) & {IPV4_UNICAST}
        peer.ctx = Ctx(op.has(FourOctetAs))  # RFC 6793 §4: both sent it (we always do)
        peer.route_refresh = op.has(RouteRefreshCap)
        peer.up_since = self.now
        peer.restart_delay = RESTART_INITIAL
        peer.established_count += 1
        peer.last_error = peer.connect_error = ""
        peer.eor_received = set()
        peer.adj_out = {}
        peer.pending = {}
        for key in sorted(self.loc_rib, key=_key_order):
            adv = self._export(peer, self.loc_rib[key])
            if adv is not None:
                peer.pending[key] = adv
        peer.eor_due = True
        self._log("info", f"peer {peer.address}: Established, families "
                          f"{', '.join(family_name(f) for f in sorted(peer.families))}")

    def _peer_down(self, peer: Peer) -> None:
        """Leaving Established: "deletes all routes associated with this connection"."""
        for key in list(peer.adj_in):
            self._unlearn(peer, key)
        peer.session = None
        peer.adj_out = {}
        peer.pending = {}
        peer.eor_due = False
        peer.up_since = None
        peer.families = set()
        peer.ctx = Ctx(True)

    # ------------------------------------------------------------------ UPDATE (§9)

    def _update(self, peer: Peer, u: Update) -> None:
        fams = peer.families
        attrs = u.attrs
        withdraw_all = u.handling == Handling.TREAT_AS_WITHDRAW
        if u.handling is not None:
            for p in u.problems:
                if p.handling == Handling.ATTRIBUTE_DISCARD:
                    peer.attributes_discarded += 1
            self._log("warning", f"peer {peer.address}: UPDATE: " +
                      "; ".join(f"{p.reason} ({p.handling.name.lower()})" for p in u.problems))
        if attrs is not None and peer.ebgp and (u.nlri or u.mp_reach):
            if attrs.local_pref is not None:
                attrs = replace(attrs, local_pref=None)  # RFC 7606 §7.5: discarded
            if attrs.as_path.first_as != peer.cfg.asn:
                # RFC 4271 §6.3 / RFC 7606 §7.2: the first AS must be the peer's.
                self._log("warning", f"peer {peer.address}: AS_PATH does not start with "
                                     f"{peer.cfg.asn} (treat-as-withdraw)")
                withdraw_all = True
        if withdraw_all:
            peer.treated_as_withdraw += 1
        if IPV4_UNICAST in fams:
            for n in u.withdrawn:
                self._unlearn(peer, (IPV4_UNICAST, n))
        if u.mp_unreach is not None and u.mp_unreach.family in fams:
            for n in u.mp_unreach.nlri:
                self._unlearn(peer, (u.mp_unreach.family, n))
        if u.nlri and IPV4_UNICAST in fams:
            for n in u.nlri:
                key = (IPV4_UNICAST, n)
                if withdraw_all or attrs is None or attrs.next_hop is None:
                    self._unlearn(peer, key)
                else:
                    self._learn(peer, key, Path(IPV4_UNICAST, n, attrs, attrs.next_hop, None,
                                                peer.address, peer.remote_id or peer.address,
                                                peer.cfg.asn, peer.ebgp))
        r = u.mp_reach
        if r is not None and r.family in fams:
            mp_attrs = replace(attrs, next_hop=None) if attrs is not None else None
            keep = mp_attrs is not None and self._imports(r.family, mp_attrs)
            for n, label in r.nlri:
                key = (r.family, n)
                if withdraw_all or mp_attrs is None or not keep:
                    self._unlearn(peer, key)
                else:
                    self._learn(peer, key, Path(r.family, n, mp_attrs, r.next_hop, label,
                                                peer.address, peer.remote_id or peer.address,
                                                peer.cfg.asn, peer.ebgp))
        eor = u.is_end_of_rib()
        if eor is not None:
            peer.eor_received.add(eor)

    def _imports(self, family: Family, attrs: PathAttrs) -> bool:
        """A PE keeps a VPN-IPv4 or VPN-IPv6 route only if one of its VRFs imports one of
        the route's targets (RFC 4364 §4.3.3, RFC 4659 §3; `BgpConfig.import_targets`): the
        others would sit in the Adj-RIB-In unused. A reflector keeps everything (it serves
        every PE)."""
        targets = self.cfg.import_targets
        if targets is None or family not in VPN_FAMILIES or self.cfg.route_reflector:
            return True
        return any(c.raw in targets for c in attrs.ext_communities)

    def _learn(self, peer: Peer, key: Key, path: Path) -> None:
        old = peer.adj_in.get(key)
        if old is not None and old.next_hop != path.next_hop:
            self._by_nh.get(old.next_hop, set()).discard(key)
        peer.adj_in[key] = path
        self.paths.setdefault(key, {})[peer.address] = path
        self._by_nh.setdefault(path.next_hop, set()).add(key)
        self._dirty.add(key)

    def _unlearn(self, peer: Peer, key: Key) -> None:
        old = peer.adj_in.pop(key, None)
        if old is None:
            return
        srcs = self.paths.get(key)
        if srcs is not None:
            srcs.pop(peer.address, None)
            if not srcs:
                del self.paths[key]
        self._dirty.add(key)

    # ------------------------------------------------------------------ local routes (hooks)

    def _originate(self, ev: Originate) -> None:
        for r in ev.routes:
            key = (r.family, r.nlri)
            attrs = PathAttrs(origin=r.origin, med=r.med, local_pref=r.local_pref,
                              communities=tuple(r.communities),
                              ext_communities=tuple(r.ext_communities))
            path = Path(r.family, r.nlri, attrs, r.next_hop or self.cfg.local_address, r.label,
                        None, self.router_id, self.cfg.asn)
            self.paths.setdefault(key, {})[None] = path
            self._dirty.add(key)

    def _withdraw_local(self, ev: WithdrawLocal) -> None:
        for n in ev.nlris:
            key = (ev.family, n)
            srcs = self.paths.get(key)
            if srcs is not None and srcs.pop(None, None) is not None:
                if not srcs:
                    del self.paths[key]
                self._dirty.add(key)

    # ------------------------------------------------------------------ next hops (§9.1.2.1)

    def _rib_changed(self, ev: RibChanged) -> None:
        self.rib = ev.rib
        old = self._cost
        self._cost = {}
        for nh, keys in self._by_nh.items():
            if isinstance(nh, IPv4Address) and old.get(nh, -1) != self._resolve(nh):
                self._dirty |= keys
        # A peer waiting to restart tries at once when a route to it appears (as LDP does).
        for addr in sorted(self.peers):
            peer = self.peers[addr]
            if peer.enabled and self.started and not peer.conns and peer.base == State.IDLE \
                    and old.get(addr, -1) is None and self._resolve(addr) is not None:
                self._emit(CancelTimer(f"start:{addr}"))
                self._fsm(peer, None, E.AUTOMATIC_START_PASSIVE if peer.cfg.passive
                          else E.AUTOMATIC_START)
        for addr in self.peers:
            self._resolve(addr)

    def _resolve(self, nh: IPv4Address) -> int | None:
        """The IGP cost to `nh`: the longest-match route's metric (§9.1.2.1), or None."""
        if nh in self._cost:
            return self._cost[nh]
        cost: int | None = None
        if nh != self.cfg.local_address and nh != self.router_id:  # §6.3: not our own
            n = int(nh)
            for plen in range(32, -1, -1):
                r = self.rib.get(IPv4Network((n >> (32 - plen) << (32 - plen), plen)))
                if r is not None:
                    cost = r.metric
                    break
        self._cost[nh] = cost
        return cost

    def _path_cost(self, p: Path) -> int | None:
        nh = p.next_hop
        return self._resolve(nh) if isinstance(nh, IPv4Address) else None

    # ------------------------------------------------------------------ commit (§9.1.2, §9.1.3, §9.2)

    def _commit(self) -> None:
        if self._dirty:
            dirty, self._dirty = self._dirty, set()
            up = [p for p in self.peers.values() if p.session is not None]
            for key in sorted(dirty, key=_key_order):
                self.decisions += 1
                srcs = self.paths.get(key)
                best = select(srcs.values(), self._path_cost, self.cfg.asn, self.router_id,
                              self.cluster_id) if srcs else None
                old = self.loc_rib.get(key)
                if best == old:
                    continue
                if best is None:
                    del self.loc_rib[key]
                else:
                    self.loc_rib[key] = best
                self._emit(BestPathChanged(key[0], key[1], best))
                for peer in up:  # Phase 3 (§9.1.3): what each peer should have now
                    adv = self._export(peer, best) if best is not None else None
                    if adv != peer.adj_out.get(key):
                        peer.pending[key] = adv
                    else:
                        peer.pending.pop(key, None)
        for addr in sorted(self.peers):
            peer = self.peers[addr]
            if peer.session is not None and (peer.pending or peer.eor_due):
                self._flush(peer)

    def _export(self, peer: Peer, path: Path) -> Advert | None:
        """What `peer` gets for `path` (§9.1.3, §5.1), or None."""
        fam = path.family
        if fam not in peer.families or path.peer == peer.address:
            return None
        a = path.attrs
        if NO_ADVERTISE in a.communities:  # RFC 1997
            return None
        if peer.ebgp:
            if NO_EXPORT in a.communities or NO_EXPORT_SUBCONFED in a.communities:
                return None
            if path.label is not None and not path.local:
                return None  # a labelled route re-advertised with a new next hop needs a new label
            nh: IPv4Address | IPv6Address = self.cfg.local_address  # §5.1.3
            a = replace(a, as_path=a.as_path.prepend(self.cfg.asn), local_pref=None,
                        originator_id=None, cluster_list=(),
                        med=a.med if path.local else None)  # §5.1.4: MED stays in its AS
        elif path.local or path.ebgp:
            nh = path.next_hop  # §5.1.3: to an internal peer the NEXT_HOP is not changed
            a = replace(a, local_pref=preference(path, DEFAULT_LOCAL_PREF))  # §5.1.5
        else:
            # iBGP-learned: §9.2 says not to internal peers, unless we reflect (RFC 4456 §6).
            if not self.cfg.route_reflector:
                return None
            src = self.peers.get(path.peer) if path.peer else None
            if src is None or (not src.cfg.rr_client and not peer.cfg.rr_client):
                return None  # from a non-client: to clients only
            originator = a.originator_id or path.peer_id
            if peer.remote_id == originator:
                return None  # it would only drop it (RFC 4456 §8)
            a = replace(a, originator_id=originator,  # RFC 4456 §8
                        cluster_list=(self.cluster_id,) + a.cluster_list)
            nh = path.next_hop
        a = replace(a, next_hop=nh if fam == IPV4_UNICAST else None)
        return Advert(a, nh, path.label)

    def _flush(self, peer: Peer) -> None:
        """Send the peer's pending changes: withdrawals, then NLRI grouped by attributes."""
        conn = peer.session
        assert conn is not None
        pending, peer.pending = peer.pending, {}
        msgs: list[bytes] = []
        by_fam: dict[Family, tuple[list[Nlri], dict[tuple[PathAttrs, Any], list[tuple[Nlri, int | None]]]]] = {}
        for key in sorted(pending, key=_key_order):
            adv = pending[key]
            fam, nlri = key
            w, groups = by_fam.setdefault(fam, ([], {}))
            if adv is None:
                if peer.adj_out.pop(key, None) is not None:
                    w.append(nlri)
            else:
                peer.adj_out[key] = adv
                groups.setdefault((adv.attrs, adv.next_hop), []).append((nlri, adv.label))
        ctx = peer.ctx
        for fam in sorted(by_fam):
            w, groups = by_fam[fam]
            if fam == IPV4_UNICAST:
                for chunk in _chunks([(n, None) for n in w], fam, len(encode(Update(), ctx))):
                    msgs.append(encode(Update(withdrawn=tuple(n for n, _ in chunk)), ctx))
                for (attrs, _nh), entries in groups.items():
                    base = len(encode(Update(attrs=attrs), ctx))
                    for chunk in _chunks(entries, fam, base):
                        msgs.append(encode(Update(attrs=attrs, nlri=tuple(n for n, _ in chunk)), ctx))
            else:
                base = len(encode(Update(mp_unreach=MpUnreach(fam, ())), ctx))
                for chunk in _chunks([(n, None) for n in w], fam, base):
                    msgs.append(encode(Update(mp_unreach=MpUnreach(fam, tuple(n for n, _ in chunk))), ctx))
                for (attrs, nh), entries in groups.items():
                    base = len(encode(Update(attrs=attrs, mp_reach=MpReach(fam, nh, ())), ctx))
                    for chunk in _chunks(entries, fam, base):
                        msgs.append(encode(Update(attrs=attrs, mp_reach=MpReach(fam, nh, tuple(chunk))), ctx))
        if peer.eor_due:  # RFC 4724 §2, after the initial table
            peer.eor_due = False
            for fam in sorted(peer.families):
                msgs.append(encode(Update() if fam == IPV4_UNICAST else
                                   Update(mp_unreach=MpUnreach(fam, ())), ctx))
        if msgs:
            self._send_raw(peer, conn, b"".join(msgs), "UPDATE", len(msgs))
            if conn.keepalive:  # §8.2.2: sending an UPDATE restarts the KeepaliveTimer
                self._emit(StartTimer(f"keepalive:{conn.id}", conn.keepalive))

    # ------------------------------------------------------------------ views

    def state_of(self, peer: IPv4Address) -> State:
        return self.peers[peer].state

    def neighbors(self) -> list[dict[str, Any]]:
        out = []
        for addr in sorted(self.peers):
            p = self.peers[addr]
            out.append({
                "neighbor": str(addr),
                "name": self.cfg.names.get(str(addr), ""),
                "asn": p.cfg.asn,
                "type": "ebgp" if p.ebgp else "ibgp",
                "rr_client": p.cfg.rr_client,
                "state": p.state.value,
                "bgp_id": str(p.remote_id) if p.remote_id else None,
                "uptime": None if p.up_since is None else round(self.now - p.up_since, 6),
                "families": [family_name(f) for f in sorted(p.families)],
                "received": len(p.adj_in),
                "sent": len(p.adj_out),
                "established": p.established_count,
                "connect_retry_counter": p.counter,
                "treated_as_withdraw": p.treated_as_withdraw,
                "last_error": p.last_error,
                "connect_error": p.connect_error,
            })
        return out

    def rib_json(self, family: Family | None = None) -> list[dict[str, Any]]:
        """The Loc-RIB (best paths), optionally one family."""
        return [{"family": family_name(k[0]), **p.to_json()}
                for k, p in sorted(self.loc_rib.items(), key=lambda kv: _key_order(kv[0]))
                if family is None or k[0] == family]

    def counters(self) -> dict[str, dict[str, int]]:
        return {"sent": dict(sorted(self.counters_tx.items())),
                "received": dict(sorted(self.counters_rx.items())),
                "notifications_sent": dict(sorted(self.notifications_tx.items())),
                "notifications_received": dict(sorted(self.notifications_rx.items()))}


def _key_order(key: Key) -> tuple:
    fam, n = key
    rd = (n.rd.type, n.rd.admin, n.rd.number) if n.rd is not None else ()
    return (fam, rd, n.prefix.version, int(n.prefix.network_address), n.prefix.prefixlen)


def _chunks(entries: list[tuple[Nlri, int | None]], fam: Family, base: int):  # type: ignore[no-untyped-def]
    """Runs of NLRI that fit one message of at most 4096 octets with `base` octets of rest."""
    chunk: list[tuple[Nlri, int | None]] = []
    size = base
    for n, label in entries:
        s = len(encode_nlri(fam, n, label))
        if chunk and size + s > MAX_LEN:
            yield chunk
            chunk, size = [], base
        chunk.append((n, label))
        size += s
    if chunk:
        yield chunk


_PERFORM: dict[Do, Callable[..., None]] = {
    Do.IGNORE: BgpInstance._a_ignore,
    Do.INITIATE: BgpInstance._a_initiate,
    Do.LISTEN: BgpInstance._a_listen,
    Do.STOP: BgpInstance._a_stop,
    Do.STOP_CEASE: BgpInstance._a_stop_cease,
    Do.RETRY: BgpInstance._a_retry,
    Do.SEND_OPEN: BgpInstance._a_send_open,
    Do.CONNECT_FAILED: BgpInstance._a_connect_failed,
    Do.OPEN_SENT_TCP_FAILED: BgpInstance._a_opensent_tcp_failed,
    Do.ACCEPT_OPEN: BgpInstance._a_accept_open,
    Do.SEND_KEEPALIVE: BgpInstance._a_send_keepalive,
    Do.ESTABLISH: BgpInstance._a_establish,
    Do.RESTART_HOLD: BgpInstance._a_restart_hold,
    Do.PROCESS_UPDATE: BgpInstance._a_process_update,
    Do.DROP: BgpInstance._a_drop,
    Do.DROP_HOLD_EXPIRED: BgpInstance._a_drop_hold_expired,
    Do.DROP_CEASE: BgpInstance._a_drop_cease,
    Do.DROP_ERROR: BgpInstance._a_drop_error,
    Do.DROP_FSM_ERROR: BgpInstance._a_drop_fsm_error,
    Do.DROP_VERSION: BgpInstance._a_drop_version,
}
assert set(_PERFORM) == set(Do)

_HANDLERS: dict[type, Callable[[BgpInstance, Any], None]] = {
    Start: BgpInstance._start,
    Stop: BgpInstance._stop,
    PeerStart: BgpInstance._peer_start,
    PeerStop: BgpInstance._peer_stop,
    TcpConnected: BgpInstance._tcp_connected,
    TcpAccepted: BgpInstance._tcp_accepted,
    TcpData: BgpInstance._tcp_data,
    TcpClosed: BgpInstance._tcp_closed,
    TimerExpired: BgpInstance._timer,
    RibChanged: BgpInstance._rib_changed,
    Originate: BgpInstance._originate,
    WithdrawLocal: BgpInstance._withdraw_local,
}

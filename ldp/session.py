"""One LDP session per peer LDP ID (RFC 5036 §2.5), sans-I/O.

A `Session` exists while the peer has at least one Hello adjacency. It owns
the TCP connection id, the PDU reader, the §2.5.4 FSM (`ldp.fsm`), the
KeepAlive machinery (§2.5.5) and the retry backoff of the active side.
Messages that belong to label distribution are handed to the host
(`ldp.instance.LdpInstance`) once the session is OPERATIONAL.

The host provides: ``ldp_id``, ``transport``, ``options`` (LdpOptions),
``codec``, ``discovery`` (for GTSM, RFC 6720), ``now``, ``next_msg_id()``,
``new_conn()``, ``conns`` (conn -> owner), ``password_for(lsr_id)``,
``connect_slot(session, out)`` (may we open TCP now: a bound on connects in flight),
``retry_initial``, ``retry_max``,
``init_timeout``, ``counters_rx``/``counters_tx`` and the upcalls
``session_up(session)``, ``session_down(session)``, ``session_message(session, msg)``
and ``session_mappings(session, run)`` (a `codec.MappingRun` of Label Mappings).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from ldp import fsm
from ldp.codec import MappingRun
from ldp.events import (
    Action,
    CancelTimer,
    LogEvent,
    StartTimer,
    TcpClose,
    TcpConnect,
    TcpSend,
    TcpSetGtsm,
)
from ldp.fsm import FsmError, SessionFsm, State
from ldp.messages import (
    DEFAULT_MAX_PDU,
    LDP_VERSION,
    Address,
    AddressWithdraw,
    Hello,
    Initialization,
    KeepAlive,
    LabelAbortRequest,
    LabelMapping,
    LabelRelease,
    LabelRequest,
    LabelWithdraw,
    LdpId,
    Message,
    MessageError,
    MsgType,
    Notification,
    Pdu,
    Status,
    StatusCode,
    UnknownMessage,
)

_STATUS_CODES = frozenset(c.value for c in StatusCode)  # known codes, to name them
_TYPES: dict[type, int] = {
    Notification: MsgType.NOTIFICATION,
    Hello: MsgType.HELLO,
    Initialization: MsgType.INITIALIZATION,
    KeepAlive: MsgType.KEEPALIVE,
    Address: MsgType.ADDRESS,
    AddressWithdraw: MsgType.ADDRESS_WITHDRAW,
    LabelMapping: MsgType.LABEL_MAPPING,
    LabelRequest: MsgType.LABEL_REQUEST,
    LabelWithdraw: MsgType.LABEL_WITHDRAW,
    LabelRelease: MsgType.LABEL_RELEASE,
    LabelAbortRequest: MsgType.LABEL_ABORT_REQUEST,
}
_NAMES: dict[type, str] = {t: MsgType(v).name for t, v in _TYPES.items()}
_NAMES[UnknownMessage] = "UNKNOWN"
_NAMES[MessageError] = "ERROR"
_CODE_NAMES: dict[int, str] = {int(v): MsgType(v).name for v in _TYPES.values()}


def msg_type_of(msg: Any) -> int:
    """The wire type code of a message object (for Notifications and counters)."""
    return int(_TYPES.get(type(msg), getattr(msg, "msg_type", 0)))


def msg_name(msg: Any) -> str:
    """A message's type name (counters); of an encoded message (bytes) too."""
    name = _NAMES.get(type(msg))
    if name is None and type(msg) is bytes:
        code = int.from_bytes(msg[:2], "big") & 0x7FFF
        return _CODE_NAMES.get(code) or f"0x{code:04x}"
    return name or type(msg).__name__


def is_active_role(ours: IPv4Address, theirs: IPv4Address) -> bool:
    """§2.5.2: the LSR with the higher transport address (unsigned compare) opens TCP."""
    return int(ours) > int(theirs)


def negotiate_max_pdu(ours: int, theirs: int) -> int:
    """§3.5.3: a value <= 255 means 4096; the session uses the smaller."""
    ours = ours if ours > 255 else DEFAULT_MAX_PDU
    theirs = theirs if theirs > 255 else DEFAULT_MAX_PDU
    return min(ours, theirs)


def keepalive_acceptable(proposed: int) -> bool:
    """§3.5.3: the KeepAlive Time is a "two octet unsigned non zero integer".

    0 is not a valid proposal: we reject it with Session Rejected/Bad KeepAlive
    Time (0x80000018, fatal). RFC 5036 sets no other lower bound, so 1 and 2 are
    accepted and the session simply uses min(ours, theirs).

    FRR is stricter: ldpd rejects any proposal below 3 s (its MIN_KEEPALIVE)
    with the same status 0x80000018 (seen in the interop probe with 2), because
    it sends a KeepAlive every hold/3 in whole seconds. A peer talking to FRR
    must therefore propose >= 3; our own proposal is `LdpOptions.keepalive_time`.
    """
    return 0 < proposed <= 0xFFFF


@dataclass
class Session:
    host: Any
    lsr_id: IPv4Address
    transport: IPv4Address
    adjacencies: set[str] = field(default_factory=set)  # interfaces with a Hello adjacency
    fsm: SessionFsm = field(default_factory=SessionFsm)
    conn: int | None = None
    reader: Any = None
    keepalive: int = 0  # negotiated KeepAlive time (hold), §3.5.3
    max_pdu: int = DEFAULT_MAX_PDU
    retry_delay: float = 0.0
    up_since: float | None = None
    queue: list[Message] = field(default_factory=list)
    nak: Status | None = None  # Notification to send on the next SEND_NAK_CLOSE
    last_error: str = ""
    established_count: int = 0
    gtsm: bool = False  # RFC 6720 in force on the current connection
    nakd: bool = False  # the last attempt ended in an Initialization NAK (§2.5.3)
    hello_retry_at: float | None = None  # when a Hello last cut the backoff short

    # -------------------------------------------------------------- naming

    @property
    def peer_id(self) -> LdpId:
        return LdpId(self.lsr_id, 0)

    @property
    def state(self) -> State:
        return self.fsm.state

    @property
    def active(self) -> bool:
        return is_active_role(self.host.transport, self.transport)

    @property
    def operational(self) -> bool:
        return self.fsm.state is State.OPERATIONAL

    @property
    def connecting(self) -> bool:
        """Our TCP connect is in flight: issued, neither connected nor failed yet."""
        return self.active and self.conn is not None and self.reader is None

    def _t(self, kind: str) -> str:
        return f"{kind}:{self.lsr_id}"

    # -------------------------------------------------------------- connection setup

    def connect(self, out: list[Action]) -> None:
        """Active role: open TCP to the peer's transport address (§2.5.2)."""
        if not self.active or self.conn is not None or not self.adjacencies:
            return
        h = self.host
        if not h.connect_slot(self, out):
            return
        self.conn = h.new_conn()
        h.conns[self.conn] = self
        self.gtsm = h.discovery.gtsm_negotiated(self.lsr_id)  # RFC 6720 §3
        out.append(TcpConnect(self.conn, h.transport, self.transport, h.password_for(self.lsr_id),
                              gtsm=self.gtsm))
        out.append(StartTimer(self._t("init"), h.init_timeout))

    def connected(self, out: list[Action]) -> None:
        """TcpConnected on our conn: INITIALIZED, then send Init -> OPENSENT."""
        self.reader = self.host.codec.PduReader()
        self._step(fsm.Event.CONNECTION_UP, out)
        self._step(fsm.Event.TX_INIT, out)

    def attach(self, conn: int, reader: Any, out: list[Action]) -> bool:
        """Passive role: an accepted connection whose first PDU names this peer."""
        if self.active or self.conn is not None or self.state is not State.NON_EXISTENT:
            return False
        self.conn = conn
        self.reader = reader
        self.host.conns[conn] = self
        if self.host.options.gtsm:  # RFC 6720 §3: now that the peer is known
            self.gtsm = self.host.discovery.gtsm_negotiated(self.lsr_id)
            out.append(TcpSetGtsm(conn, self.gtsm))
        out.append(StartTimer(self._t("init"), self.host.init_timeout))
        self._step(fsm.Event.CONNECTION_UP, out)
        return True

    # -------------------------------------------------------------- FSM glue

    def _step(self, event: fsm.Event, out: list[Action], msg: Any = None) -> None:
        try:
            action = self.fsm.step(event)
        except FsmError as e:
            out.append(LogEvent("warning", f"peer {self.lsr_id}: {e}"))
            return
        h = self.host
        if action is fsm.Action.SEND_INIT:
            self.send(self._init_msg())
        elif action is fsm.Action.SEND_INIT_KEEPALIVE:
            self.send(self._init_msg())
            self.send(KeepAlive(h.next_msg_id()))
        elif action is fsm.Action.SEND_KEEPALIVE:
            self.send(KeepAlive(h.next_msg_id()))
        elif action is fsm.Action.SESSION_UP:
            self._operational(out)
        elif action is fsm.Action.PROCESS:
            h.session_message(self, msg)
        elif action is fsm.Action.SEND_NAK_CLOSE:
            status = self.nak or Status.of(StatusCode.SHUTDOWN)
            self.send(Notification(h.next_msg_id(), status))
            self._closed(out, f"sent {StatusCode(status.code).name}", send_close=True)
        elif action is fsm.Action.CLOSE:
            self._closed(out, self.last_error or "closed", send_close=True)
        self.nak = None

    def _init_msg(self) -> Initialization:
        h = self.host
        return Initialization(
            h.next_msg_id(),
            keepalive_time=h.options.keepalive_time,
            receiver=self.peer_id,
            max_pdu_length=0,  # 0 = 4096 (§3.5.3), as FRR sends
        )

    def _operational(self, out: list[Action]) -> None:
        h = self.host
        self.up_since = h.now
        self.retry_delay = 0.0
        self.nakd = False
        self.established_count += 1
        out.append(CancelTimer(self._t("init")))
        # §2.5.5: send something at least every KeepAlive period; FRR sends 3 per period.
        out.append(StartTimer(self._t("ka-send"), self.keepalive / 3))
        out.append(StartTimer(self._t("ka-hold"), float(self.keepalive)))
        out.append(LogEvent("info", f"session {self.lsr_id} OPERATIONAL"))
        h.session_up(self)

    def _closed(self, out: list[Action], reason: str, send_close: bool) -> None:
        """Back to NON_EXISTENT: flush, close, cancel timers, tell the LDE, maybe retry."""
        h = self.host
        was_up = self.up_since is not None
        if self.conn is not None:
            self.flush(out)
            if send_close:
                out.append(TcpClose(self.conn))
            h.conns.pop(self.conn, None)
        self.conn = None
        self.reader = None
        self.gtsm = False
        self.queue.clear()
        self.up_since = None
        self.last_error = reason
        for kind in ("init", "ka-send", "ka-hold"):
            out.append(CancelTimer(self._t(kind)))
        out.append(LogEvent("info", f"session {self.lsr_id} down: {reason}"))
        if was_up:
            h.session_down(self)
        self._schedule_retry(out)

    def _schedule_retry(self, out: list[Action]) -> None:
        """Active side backs off before reconnecting (FRR: 15 s doubling to 120 s)."""
        if not self.active or not self.adjacencies or self.host.stopped:
            return
        h = self.host
        self.retry_delay = (
            h.retry_initial if not self.retry_delay else min(self.retry_delay * 2, h.retry_max)
        )
        out.append(StartTimer(self._t("retry"), self.retry_delay))

    def hello_cuts_backoff(self) -> bool:
        """A Hello from the peer while our session is down and we wait on the retry
        backoff (active role, no connection): reconnect now instead of when the timer
        runs out? Resets the backoff when so (the caller cancels the timer, connects).

        The backoff RFC 5036 §2.5.3 mandates (>= 15 s, growing to >= 2 min) is for
        "situations where Initialization messages are being NAK'd" -- a configuration
        mismatch a retry cannot cure. Other failures -- the peer closed the session, it
        restarted, a connect was refused or found no route -- are cured by the peer
        coming back, and its Hellos say it is there (§2.5.1-2.5.2: Hello adjacencies
        drive session establishment). FRR reconnects on such a Hello too (hello.c:
        when no init-delay timer runs, which it starts only on a NAK'd Init). Without
        this, a restarted neighbour waited for our 2, 4, 8 s timer while it already
        advertised labels upstream. At most one such reconnect per `retry_initial`
        seconds, so a stream of (spoofed) Hellos cannot turn into a stream of SYNs.
        """
        h = self.host
        if not self.active or self.conn is not None or not self.adjacencies or h.stopped:
            return False
        if not self.retry_delay or self.nakd:  # no backoff running / §2.5.3 throttle
            return False
        if self.hello_retry_at is not None and h.now - self.hello_retry_at < h.retry_initial:
            return False
        self.hello_retry_at = h.now
        self.retry_delay = 0.0
        return True

    def shutdown(self, code: StatusCode, out: list[Action], reason: str = "") -> None:
        """We close the session with a fatal Notification (§3.5.1, §2.5.6)."""
        if self.conn is None:
            out.append(CancelTimer(self._t("retry")))
            return
        if self.state is State.NON_EXISTENT:  # connect in progress or accepted, no Init yet
            self.nak = None
            self._closed(out, reason or code.name, send_close=True)
            return
        self.nak = Status.of(code)
        self.last_error = reason or code.name
        self._step(fsm.Event.TX_SHUTDOWN, out)

    # -------------------------------------------------------------- output

    def send(self, msg: Message) -> None:
        self.queue.append(msg)

    def send_if_connected(self, msg: Message | bytes) -> None:
        """Queue a message (or an encoded one) unless the connection is gone: what the
        label distribution layer sends (`LdpInstance`)."""
        if self.conn is not None:
            self.queue.append(msg)

    def flush(self, out: list[Action]) -> None:
        """Pack queued messages into as few PDUs as the max PDU length allows."""
        if not self.queue or self.conn is None:
            return
        h = self.host
        # counted by type: encoded messages (bytes: the Label Mappings) by their first two
        # octets, the type, named once per flush
        by_code: dict[bytes, int] = {}
        for m in self.queue:
            if type(m) is bytes:
                k = m[:2]
                by_code[k] = by_code.get(k, 0) + 1
            else:
                n = msg_name(m)
                h.counters_tx[n] = h.counters_tx.get(n, 0) + 1
        for k, c in by_code.items():
            n = msg_name(k)
            h.counters_tx[n] = h.counters_tx.get(n, 0) + c
        pdus = h.codec.encode_pdus(h.ldp_id, self.queue, self.max_pdu)
        self.queue.clear()  # the same list: `send_if_connected` is handed out bound
        out.append(TcpSend(self.conn, b"".join(pdus)))

    # -------------------------------------------------------------- input

    def tcp_closed(self, reason: str, out: list[Action]) -> None:
        if self.conn is None:
            return
        self.last_error = f"connection closed: {reason}" if reason else "connection closed"
        if self.state is State.NON_EXISTENT:
            self._closed(out, self.last_error, send_close=False)
        else:
            h = self.host
            h.conns.pop(self.conn, None)
            self.conn = None  # nothing can be sent any more
            self._step(fsm.Event.CONNECTION_DOWN, out)

    def data(self, data: bytes, out: list[Action]) -> None:
        if self.reader is None:
            return
        # pull(): PDUs are framed one at a time, so the Max PDU Length negotiated by an
        # Init applies to the next PDU even in the same segment (§3.5.3). With runs of
        # Label Mappings as one item where the codec offers it (`pdus` takes them).
        pull = getattr(self.reader, "pull_runs", None) or self.reader.pull
        self.pdus(pull(data), out)

    def pdus(self, items: Iterable[Any], out: list[Action]) -> None:
        """Process PDUs (or PDU-level DecodeErrors) from the reader, in order."""
        for item in items:
            if self.conn is None:
                return
            if not isinstance(item, Pdu):  # codec.DecodeError at PDU level (§3.5.1.2.1)
                status = getattr(item, "status", None) or Status.of(StatusCode.BAD_PDU_LENGTH)
                self.fatal_or_notify(status, out, str(item))
                continue
            if item.ldp_id != self.peer_id:
                self.shutdown(StatusCode.BAD_LDP_IDENTIFIER, out, f"PDU from {item.ldp_id}")
                return
            if self.state is State.OPERATIONAL and self.keepalive:
                out.append(StartTimer(self._t("ka-hold"), float(self.keepalive)))  # §2.5.5
            for msg in item.messages:
                if self.conn is None:
                    return
                if type(msg) is MappingRun:
                    self.mappings(msg, out)
                else:
                    self.message(msg, out)

    def mappings(self, run: MappingRun, out: list[Action]) -> None:
        """Label Mappings of the common shape, in order (`codec.MappingRun`). OPERATIONAL:
        each is what `message` does with one -- counted, RX_OTHER (OPERATIONAL ->
        OPERATIONAL, PROCESS) -- in one call to the host. Else one by one."""
        if self.state is State.OPERATIONAL:
            h = self.host
            h.counters_rx["LABEL_MAPPING"] = h.counters_rx.get("LABEL_MAPPING", 0) + len(run)
            self.nak = None
            h.session_mappings(self, run)
            return
        for m in run.messages():
            if self.conn is None:
                return
            self.message(m, out)

    def fatal_or_notify(self, status: Status, out: list[Action], detail: str) -> None:
        if status.fatal:
            self.nak = status
            self.last_error = detail or StatusCode(status.code).name
            if self.state is State.NON_EXISTENT:
                self.send(Notification(self.host.next_msg_id(), status))
                self._closed(out, self.last_error, send_close=True)
            else:
                self._step(fsm.Event.TX_SHUTDOWN, out)
        else:
            self.send(Notification(self.host.next_msg_id(), status))

    def message(self, msg: Any, out: list[Action]) -> None:
        h = self.host
        n = msg_name(msg)
        h.counters_rx[n] = h.counters_rx.get(n, 0) + 1
        if isinstance(msg, MessageError):
            # §3.5.1.2.2: answer with the codec's status; fatal ones close the session.
            self.fatal_or_notify(msg.status, out, msg.detail)
        elif isinstance(msg, Notification):
            code = msg.status.code
            name = StatusCode(code).name if code in _STATUS_CODES else hex(code)
            if msg.status.fatal:
                self.last_error = f"received {name}"
                self.nakd = self.state is not State.OPERATIONAL  # §2.5.3: our Init NAK'd
                self._step(fsm.Event.RX_SHUTDOWN, out)
            else:
                out.append(LogEvent("info", f"peer {self.lsr_id}: Notification {name}"))
        elif isinstance(msg, Initialization):
            status = self.check_init(msg)
            if status is None:
                self._step(fsm.Event.RX_INIT_OK, out)
            else:
                self.nak = status
                self.last_error = f"rejected Init: {StatusCode(status.code).name}"
                self.nakd = True  # §2.5.3: we NAK'd the peer's Init
                self._step(fsm.Event.RX_INIT_BAD, out)
        elif isinstance(msg, KeepAlive):
            self._step(fsm.Event.RX_KEEPALIVE, out)
        elif isinstance(msg, UnknownMessage):
            if not msg.u_bit:  # §3.5: U=0 -> Unknown Message Type, non-fatal
                self.send(Notification(h.next_msg_id(), Status.of(
                    StatusCode.UNKNOWN_MESSAGE_TYPE, msg.msg_id, msg.msg_type)))
        else:
            if self.state is not State.OPERATIONAL:
                # §2.5.4: any other message before OPERATIONAL -> NAK (FRR sends Shutdown)
                self.nak = Status.of(StatusCode.SHUTDOWN, getattr(msg, "msg_id", 0),
                                     int(msg_type_of(msg)))
            self._step(fsm.Event.RX_OTHER, out, msg)

    def check_init(self, msg: Initialization) -> Status | None:
        """§3.5.3: is this Initialization acceptable? Negotiates on success."""
        def rej(code: StatusCode) -> Status:
            return Status.of(code, msg.msg_id, MsgType.INITIALIZATION)

        h = self.host
        if msg.protocol_version != LDP_VERSION:
            return rej(StatusCode.BAD_PROTOCOL_VERSION)
        if msg.receiver != h.ldp_id:
            return rej(StatusCode.SESSION_REJECTED_NO_HELLO)
        if not keepalive_acceptable(msg.keepalive_time):
            return rej(StatusCode.SESSION_REJECTED_BAD_KEEPALIVE_TIME)
        # A bit: DoD is only meaningful on ATM/FR; on other links DU is used (§3.5.3).
        # §3.5.3: "the smaller of its proposed KeepAlive Time and the KeepAlive Time
        # received".
        self.keepalive = min(h.options.keepalive_time, msg.keepalive_time)
        # §3.5.3: the session's Max PDU Length is the smaller proposal (<= 255 means
        # 4096). It bounds what we send (flush) and, from the PDU after this Init on,
        # what we accept: a longer PDU from the peer is Bad PDU Length (§3.5.1.2.1).
        self.max_pdu = negotiate_max_pdu(DEFAULT_MAX_PDU, msg.max_pdu_length)
        if self.reader is not None:
            self.reader.max_pdu_len = self.max_pdu
        return None

    # -------------------------------------------------------------- timers

    def timer(self, kind: str, out: list[Action]) -> None:
        if kind == "ka-send":
            if self.operational:
                self.send(KeepAlive(self.host.next_msg_id()))
                out.append(StartTimer(self._t("ka-send"), self.keepalive / 3))
        elif kind == "ka-hold":
            if self.operational:
                self.nak = Status.of(StatusCode.KEEPALIVE_TIMER_EXPIRED)
                self.last_error = "KeepAlive timer expired"
                self._step(fsm.Event.TIMEOUT, out)
        elif kind == "init":
            if self.state is State.NON_EXISTENT:
                if self.conn is not None:  # TCP connect never completed
                    self._closed(out, "connect timeout", send_close=True)
            elif not self.operational:
                self.last_error = "Initialization timeout"
                self._step(fsm.Event.TIMEOUT, out)
        elif kind == "retry":
            self.connect(out)

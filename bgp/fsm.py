"""RFC 4271 §8 BGP finite state machine, as a table.

    (state, event) -> (action, next_state)

One FSM runs per TCP connection (§8: "a BGP implementation ... may have two
connections to a peer while collisions are resolved", §6.8); `bgp.peer` owns
them and performs the actions. Events keep the RFC's numbers (§8.1). Of the
optional session attributes (§8.1.1) we set DelayOpen, DampPeerOscillations,
SendNOTIFICATIONwithoutOPEN, CollisionDetectEstablishedState, PassiveTcpEstablishment
(unless configured) and TrackTcpState all FALSE, so these events never occur
and are not in the table:

    6, 7   AutomaticStart_with_DampPeerOscillations[_and_PassiveTcpEstablishment]
    12, 20 DelayOpenTimer_Expires, BGPOpen with DelayOpenTimer running
    13     IdleHoldTimer_Expires (our restart delay feeds AutomaticStart, Event 3)
    14, 15 TcpConnection_Valid, Tcp_CR_Invalid (the driver's listener; the instance
           refuses connections from unknown addresses before any FSM sees them)

Every other (state, event) pair is in the table: where §8.2.2 says an event "is
ignored" or "does not cause change" the action is IGNORE; `FsmError` is only for a
pair that cannot occur with one FSM per connection (a second TCP-up on the same
connection). Two places follow a more specific rule than the state's "any other
event" list, each marked in the table: an OPEN on a connection already past
OpenSent (the per-connection reading of Event 19: RFC 6608 FSM Error), and a
message header error in Established (§6.1: Message Header Error, not FSM Error).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class State(StrEnum):
    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


class Event(IntEnum):
    """§8.1.2 - §8.1.5, with the RFC's numbers."""

    MANUAL_START = 1
    MANUAL_STOP = 2
    AUTOMATIC_START = 3
    MANUAL_START_PASSIVE = 4  # ManualStart_with_PassiveTcpEstablishment
    AUTOMATIC_START_PASSIVE = 5  # AutomaticStart_with_PassiveTcpEstablishment
    AUTOMATIC_STOP = 8
    CONNECT_RETRY_TIMER_EXPIRES = 9
    HOLD_TIMER_EXPIRES = 10
    KEEPALIVE_TIMER_EXPIRES = 11
    TCP_CR_ACKED = 16  # our connect() succeeded
    TCP_CONNECTION_CONFIRMED = 17  # we accepted the peer's connection
    TCP_CONNECTION_FAILS = 18
    BGP_OPEN = 19
    BGP_HEADER_ERR = 21
    BGP_OPEN_MSG_ERR = 22
    OPEN_COLLISION_DUMP = 23
    NOTIF_MSG_VER_ERR = 24
    NOTIF_MSG = 25
    KEEPALIVE_MSG = 26
    UPDATE_MSG = 27
    UPDATE_MSG_ERR = 28

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Event.MANUAL_START: "ManualStart", Event.MANUAL_STOP: "ManualStop",
    Event.AUTOMATIC_START: "AutomaticStart",
    Event.MANUAL_START_PASSIVE: "ManualStart_with_PassiveTcpEstablishment",
    Event.AUTOMATIC_START_PASSIVE: "AutomaticStart_with_PassiveTcpEstablishment",
    Event.AUTOMATIC_STOP: "AutomaticStop",
    Event.CONNECT_RETRY_TIMER_EXPIRES: "ConnectRetryTimer_Expires",
    Event.HOLD_TIMER_EXPIRES: "HoldTimer_Expires",
    Event.KEEPALIVE_TIMER_EXPIRES: "KeepaliveTimer_Expires",
    Event.TCP_CR_ACKED: "Tcp_CR_Acked", Event.TCP_CONNECTION_CONFIRMED: "TcpConnectionConfirmed",
    Event.TCP_CONNECTION_FAILS: "TcpConnectionFails", Event.BGP_OPEN: "BGPOpen",
    Event.BGP_HEADER_ERR: "BGPHeaderErr", Event.BGP_OPEN_MSG_ERR: "BGPOpenMsgErr",
    Event.OPEN_COLLISION_DUMP: "OpenCollisionDump", Event.NOTIF_MSG_VER_ERR: "NotifMsgVerErr",
    Event.NOTIF_MSG: "NotifMsg", Event.KEEPALIVE_MSG: "KeepAliveMsg",
    Event.UPDATE_MSG: "UpdateMsg", Event.UPDATE_MSG_ERR: "UpdateMsgErr",
}


class Action(StrEnum):
    """What `bgp.peer` does; each names the bullets of §8.2.2 it stands for."""

    IGNORE = "ignore"
    # Idle, Event 1/3: ConnectRetryCounter = 0, start ConnectRetryTimer, connect, listen.
    INITIATE = "initiate"
    # Idle, Event 4/5: ConnectRetryCounter = 0, start ConnectRetryTimer, listen only.
    LISTEN = "listen"
    # Connect/Active, Event 2: drop TCP, release, ConnectRetryCounter = 0, stop the timer.
    STOP = "stop"
    # OpenSent/OpenConfirm/Established, Event 2: NOTIFICATION Cease, then as STOP.
    STOP_CEASE = "stop-cease"
    # Connect/Active, Event 9: (drop TCP,) restart ConnectRetryTimer, connect again.
    RETRY = "retry"
    # Connect/Active, Event 16/17: stop ConnectRetryTimer, send OPEN, HoldTimer 4 min.
    SEND_OPEN = "send-open"
    # Connect, Event 18: stop ConnectRetryTimer, drop TCP, release (no counter change).
    CONNECT_FAILED = "connect-failed"
    # OpenSent, Event 18: close, restart ConnectRetryTimer, keep listening -> Active.
    OPEN_SENT_TCP_FAILED = "opensent-tcp-failed"
    # OpenSent, Event 19: stop ConnectRetryTimer, send KEEPALIVE, start KeepaliveTimer,
    # HoldTimer = negotiated value (§4.2).
    ACCEPT_OPEN = "accept-open"
    # OpenConfirm/Established, Event 11: send KEEPALIVE, restart KeepaliveTimer.
    SEND_KEEPALIVE = "send-keepalive"
    # OpenConfirm, Event 26: restart HoldTimer -> Established.
    ESTABLISH = "establish"
    # Established, Event 26: restart HoldTimer.
    RESTART_HOLD = "restart-hold"
    # Established, Event 27: process the UPDATE, restart HoldTimer.
    PROCESS_UPDATE = "process-update"
    # "sets the ConnectRetryTimer to zero, releases all BGP resources, drops the TCP
    # connection, increments the ConnectRetryCounter by 1" -> Idle: with no message,
    DROP = "drop"
    # ... after the NOTIFICATION Hold Timer Expired,
    DROP_HOLD_EXPIRED = "drop-hold-expired"
    # ... after NOTIFICATION Cease (Event 8 AutomaticStop, Event 23 collision),
    DROP_CEASE = "drop-cease"
    # ... after the NOTIFICATION the failed check calls for (Events 21, 22, 28),
    DROP_ERROR = "drop-error"
    # ... after NOTIFICATION Finite State Machine Error (RFC 6608 subcode by state).
    DROP_FSM_ERROR = "drop-fsm-error"
    # Event 24 in OpenSent/OpenConfirm: as DROP without incrementing the counter.
    DROP_VERSION = "drop-version"


S, E, A = State, Event, Action
_STARTS = (E.MANUAL_START, E.AUTOMATIC_START, E.MANUAL_START_PASSIVE, E.AUTOMATIC_START_PASSIVE)
_MESSAGES = (E.BGP_OPEN, E.BGP_HEADER_ERR, E.BGP_OPEN_MSG_ERR, E.OPEN_COLLISION_DUMP,
             E.NOTIF_MSG_VER_ERR, E.NOTIF_MSG, E.KEEPALIVE_MSG, E.UPDATE_MSG, E.UPDATE_MSG_ERR)

TABLE: dict[tuple[State, Event], tuple[Action, State]] = {}

# Idle (§8.2.2): refuses connections; any other event does not change the state.
for _e in E:
    TABLE[(S.IDLE, _e)] = (A.IGNORE, S.IDLE)
TABLE[(S.IDLE, E.MANUAL_START)] = (A.INITIATE, S.CONNECT)
TABLE[(S.IDLE, E.AUTOMATIC_START)] = (A.INITIATE, S.CONNECT)
TABLE[(S.IDLE, E.MANUAL_START_PASSIVE)] = (A.LISTEN, S.ACTIVE)
TABLE[(S.IDLE, E.AUTOMATIC_START_PASSIVE)] = (A.LISTEN, S.ACTIVE)

# Connect and Active: start events ignored; "any other event" -> Idle, counter + 1.
for _s in (S.CONNECT, S.ACTIVE):
    for _e in _STARTS:
        TABLE[(_s, _e)] = (A.IGNORE, _s)
    TABLE[(_s, E.MANUAL_STOP)] = (A.STOP, S.IDLE)
    TABLE[(_s, E.CONNECT_RETRY_TIMER_EXPIRES)] = (A.RETRY, S.CONNECT)
    TABLE[(_s, E.TCP_CR_ACKED)] = (A.SEND_OPEN, S.OPEN_SENT)
    TABLE[(_s, E.TCP_CONNECTION_CONFIRMED)] = (A.SEND_OPEN, S.OPEN_SENT)
    # Events 8, 10-11, 19, 21-28 (header/OPEN errors: SendNOTIFICATIONwithoutOPEN FALSE;
    # Event 24 without DelayOpen: counter + 1 as well).
    for _e in (E.AUTOMATIC_STOP, E.HOLD_TIMER_EXPIRES, E.KEEPALIVE_TIMER_EXPIRES, *_MESSAGES):
        TABLE[(_s, _e)] = (A.DROP, S.IDLE)
TABLE[(S.CONNECT, E.TCP_CONNECTION_FAILS)] = (A.CONNECT_FAILED, S.IDLE)
# Active, Event 18: "restarts the ConnectRetryTimer ..., increments the counter -> Idle".
TABLE[(S.ACTIVE, E.TCP_CONNECTION_FAILS)] = (A.DROP, S.IDLE)

# OpenSent
for _e in _STARTS:
    TABLE[(S.OPEN_SENT, _e)] = (A.IGNORE, S.OPEN_SENT)
TABLE.update({
    (S.OPEN_SENT, E.MANUAL_STOP): (A.STOP_CEASE, S.IDLE),
    (S.OPEN_SENT, E.AUTOMATIC_STOP): (A.DROP_CEASE, S.IDLE),
    (S.OPEN_SENT, E.HOLD_TIMER_EXPIRES): (A.DROP_HOLD_EXPIRED, S.IDLE),
    (S.OPEN_SENT, E.TCP_CONNECTION_FAILS): (A.OPEN_SENT_TCP_FAILED, S.ACTIVE),
    (S.OPEN_SENT, E.BGP_OPEN): (A.ACCEPT_OPEN, S.OPEN_CONFIRM),
    (S.OPEN_SENT, E.BGP_HEADER_ERR): (A.DROP_ERROR, S.IDLE),
    (S.OPEN_SENT, E.BGP_OPEN_MSG_ERR): (A.DROP_ERROR, S.IDLE),
    (S.OPEN_SENT, E.OPEN_COLLISION_DUMP): (A.DROP_CEASE, S.IDLE),
    (S.OPEN_SENT, E.NOTIF_MSG_VER_ERR): (A.DROP_VERSION, S.IDLE),
})
# "any other event (Events 9, 11-13, 20, 25-28)"
for _e in (E.CONNECT_RETRY_TIMER_EXPIRES, E.KEEPALIVE_TIMER_EXPIRES, E.NOTIF_MSG,
           E.KEEPALIVE_MSG, E.UPDATE_MSG, E.UPDATE_MSG_ERR):
    TABLE[(S.OPEN_SENT, _e)] = (A.DROP_FSM_ERROR, S.IDLE)

# OpenConfirm
for _e in _STARTS:
    TABLE[(S.OPEN_CONFIRM, _e)] = (A.IGNORE, S.OPEN_CONFIRM)
TABLE.update({
    (S.OPEN_CONFIRM, E.MANUAL_STOP): (A.STOP_CEASE, S.IDLE),
    (S.OPEN_CONFIRM, E.AUTOMATIC_STOP): (A.DROP_CEASE, S.IDLE),
    (S.OPEN_CONFIRM, E.HOLD_TIMER_EXPIRES): (A.DROP_HOLD_EXPIRED, S.IDLE),
    (S.OPEN_CONFIRM, E.KEEPALIVE_TIMER_EXPIRES): (A.SEND_KEEPALIVE, S.OPEN_CONFIRM),
    (S.OPEN_CONFIRM, E.TCP_CONNECTION_FAILS): (A.DROP, S.IDLE),
    (S.OPEN_CONFIRM, E.NOTIF_MSG): (A.DROP, S.IDLE),
    (S.OPEN_CONFIRM, E.NOTIF_MSG_VER_ERR): (A.DROP_VERSION, S.IDLE),
    # Event 19 is about the other connection's OPEN (collision, §6.8 -> Event 23 here);
    # a second OPEN on this connection is an unexpected message (RFC 6608 §4).
    (S.OPEN_CONFIRM, E.BGP_OPEN): (A.DROP_FSM_ERROR, S.IDLE),
    (S.OPEN_CONFIRM, E.BGP_HEADER_ERR): (A.DROP_ERROR, S.IDLE),
    (S.OPEN_CONFIRM, E.BGP_OPEN_MSG_ERR): (A.DROP_ERROR, S.IDLE),
    (S.OPEN_CONFIRM, E.OPEN_COLLISION_DUMP): (A.DROP_CEASE, S.IDLE),
    (S.OPEN_CONFIRM, E.KEEPALIVE_MSG): (A.ESTABLISH, S.ESTABLISHED),
})
# "any other event (Events 9, 12-13, 20, 27-28)"
for _e in (E.CONNECT_RETRY_TIMER_EXPIRES, E.UPDATE_MSG, E.UPDATE_MSG_ERR):
    TABLE[(S.OPEN_CONFIRM, _e)] = (A.DROP_FSM_ERROR, S.IDLE)

# Established
for _e in _STARTS:
    TABLE[(S.ESTABLISHED, _e)] = (A.IGNORE, S.ESTABLISHED)
TABLE.update({
    (S.ESTABLISHED, E.MANUAL_STOP): (A.STOP_CEASE, S.IDLE),
    (S.ESTABLISHED, E.AUTOMATIC_STOP): (A.DROP_CEASE, S.IDLE),
    (S.ESTABLISHED, E.HOLD_TIMER_EXPIRES): (A.DROP_HOLD_EXPIRED, S.IDLE),
    (S.ESTABLISHED, E.KEEPALIVE_TIMER_EXPIRES): (A.SEND_KEEPALIVE, S.ESTABLISHED),
    (S.ESTABLISHED, E.OPEN_COLLISION_DUMP): (A.DROP_CEASE, S.IDLE),
    (S.ESTABLISHED, E.NOTIF_MSG_VER_ERR): (A.DROP, S.IDLE),
    (S.ESTABLISHED, E.NOTIF_MSG): (A.DROP, S.IDLE),
    (S.ESTABLISHED, E.TCP_CONNECTION_FAILS): (A.DROP, S.IDLE),
    (S.ESTABLISHED, E.KEEPALIVE_MSG): (A.RESTART_HOLD, S.ESTABLISHED),
    (S.ESTABLISHED, E.UPDATE_MSG): (A.PROCESS_UPDATE, S.ESTABLISHED),
    (S.ESTABLISHED, E.UPDATE_MSG_ERR): (A.DROP_ERROR, S.IDLE),
    # §6.1 names the NOTIFICATION for a header error (Message Header Error) in any state.
    (S.ESTABLISHED, E.BGP_HEADER_ERR): (A.DROP_ERROR, S.IDLE),
    # An OPEN on an established connection (RFC 6608 §4; see Event 19 in OpenConfirm).
    (S.ESTABLISHED, E.BGP_OPEN): (A.DROP_FSM_ERROR, S.IDLE),
})
# "any other event (Events 9, 12-13, 20-22)"
for _e in (E.CONNECT_RETRY_TIMER_EXPIRES, E.BGP_OPEN_MSG_ERR):
    TABLE[(S.ESTABLISHED, _e)] = (A.DROP_FSM_ERROR, S.IDLE)
del _s, _e


class FsmError(Exception):
    """A pair that cannot occur with one FSM per connection (see the module docstring)."""

    def __init__(self, state: State, event: Event) -> None:
        self.state, self.event = state, event
        super().__init__(f"BGP FSM: {event.label} (Event {int(event)}) cannot occur in {state}")


def step(state: State, event: Event) -> tuple[Action, State]:
    """The action and next state for `event` in `state`, or FsmError (nothing changes)."""
    try:
        return TABLE[(state, event)]
    except KeyError:
        raise FsmError(state, event) from None

"""RFC 5036 §2.5.4 session initialization state machine, as a table.

    (state, event) -> (action, next_state)

`step()` is the one driver. An event that the table does not list for the
current state raises `FsmError` and leaves the state unchanged; the caller
(`ldp.session`) decides what to do (usually: log, NAK and close).

The table follows the figure of §2.5.4::

    NON EXISTENT --Session connection established--> INITIALIZED
    INITIALIZED  --(active role) Tx Init----------------> OPENSENT
    INITIALIZED  --Rx acceptable Init / Tx Init+KA------> OPENREC      (passive)
    OPENSENT     --Rx acceptable Init / Tx KA-----------> OPENREC
    OPENREC      --Rx KeepAlive-------------------------> OPERATIONAL
    any non-OPERATIONAL state --Rx other msg, unacceptable Init or timeout / Tx NAK--> NON EXISTENT
    OPERATIONAL  --Rx shutdown / Tx shutdown, or timeout-> NON EXISTENT
    OPERATIONAL  --Rx any other LDP msg-----------------> OPERATIONAL

plus "transport connection closed" taking every live state back to
NON EXISTENT (§2.5.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    NON_EXISTENT = "NON_EXISTENT"
    INITIALIZED = "INITIALIZED"
    OPENREC = "OPENREC"
    OPENSENT = "OPENSENT"
    OPERATIONAL = "OPERATIONAL"


class Event(StrEnum):
    CONNECTION_UP = "CONNECTION_UP"  # TCP established (either role)
    TX_INIT = "TX_INIT"  # active role sends its Initialization
    RX_INIT_OK = "RX_INIT_OK"  # acceptable Initialization received
    RX_INIT_BAD = "RX_INIT_BAD"  # unacceptable Initialization received
    RX_KEEPALIVE = "RX_KEEPALIVE"
    RX_OTHER = "RX_OTHER"  # any other LDP message (Address, Label ..., non-fatal Notification)
    RX_SHUTDOWN = "RX_SHUTDOWN"  # fatal Notification received
    TX_SHUTDOWN = "TX_SHUTDOWN"  # we decide to close (fatal error, adjacency gone, Stop)
    TIMEOUT = "TIMEOUT"  # init timer or KeepAlive hold timer expired
    CONNECTION_DOWN = "CONNECTION_DOWN"  # TCP closed under us


class Action(StrEnum):
    NONE = "NONE"
    SEND_INIT = "SEND_INIT"
    SEND_INIT_KEEPALIVE = "SEND_INIT_KEEPALIVE"  # passive side's answer
    SEND_KEEPALIVE = "SEND_KEEPALIVE"
    SEND_NAK_CLOSE = "SEND_NAK_CLOSE"  # Notification (fatal) then close
    CLOSE = "CLOSE"  # close without sending (connection already gone)
    SESSION_UP = "SESSION_UP"  # entered OPERATIONAL: start KeepAlives, advertise
    PROCESS = "PROCESS"  # hand the message to the label distribution layer


S, E, A = State, Event, Action

_PRE_OPERATIONAL = (S.INITIALIZED, S.OPENSENT, S.OPENREC)

TABLE: dict[tuple[State, Event], tuple[Action, State]] = {
    (S.NON_EXISTENT, E.CONNECTION_UP): (A.NONE, S.INITIALIZED),
    (S.INITIALIZED, E.TX_INIT): (A.SEND_INIT, S.OPENSENT),
    (S.INITIALIZED, E.RX_INIT_OK): (A.SEND_INIT_KEEPALIVE, S.OPENREC),
    (S.OPENSENT, E.RX_INIT_OK): (A.SEND_KEEPALIVE, S.OPENREC),
    (S.OPENREC, E.RX_KEEPALIVE): (A.SESSION_UP, S.OPERATIONAL),
    (S.OPERATIONAL, E.RX_KEEPALIVE): (A.NONE, S.OPERATIONAL),
    (S.OPERATIONAL, E.RX_OTHER): (A.PROCESS, S.OPERATIONAL),
    (S.OPERATIONAL, E.RX_SHUTDOWN): (A.CLOSE, S.NON_EXISTENT),
    (S.OPERATIONAL, E.TX_SHUTDOWN): (A.SEND_NAK_CLOSE, S.NON_EXISTENT),
    (S.OPERATIONAL, E.TIMEOUT): (A.SEND_NAK_CLOSE, S.NON_EXISTENT),
    (S.OPERATIONAL, E.CONNECTION_DOWN): (A.CLOSE, S.NON_EXISTENT),
}
for _s in _PRE_OPERATIONAL:
    for _e in (E.RX_INIT_BAD, E.RX_OTHER, E.TIMEOUT, E.TX_SHUTDOWN):
        TABLE[(_s, _e)] = (A.SEND_NAK_CLOSE, S.NON_EXISTENT)
    TABLE[(_s, E.RX_SHUTDOWN)] = (A.CLOSE, S.NON_EXISTENT)
    TABLE[(_s, E.CONNECTION_DOWN)] = (A.CLOSE, S.NON_EXISTENT)
# A KeepAlive before the Init exchange is done is "any other message" (§2.5.4).
TABLE[(S.INITIALIZED, E.RX_KEEPALIVE)] = (A.SEND_NAK_CLOSE, S.NON_EXISTENT)
TABLE[(S.OPENSENT, E.RX_KEEPALIVE)] = (A.SEND_NAK_CLOSE, S.NON_EXISTENT)
# An Init in OPENREC (a second one) is "any other LDP message".
TABLE[(S.OPENREC, E.RX_INIT_OK)] = (A.SEND_NAK_CLOSE, S.NON_EXISTENT)
del _s, _e


class FsmError(Exception):
    """An event the §2.5.4 table has no transition for in this state."""

    def __init__(self, state: State, event: Event) -> None:
        self.state = state
        self.event = event
        super().__init__(f"LDP session FSM: event {event.value} unexpected in state {state.value}")


@dataclass
class SessionFsm:
    """The state of one session; `step()` applies one event."""

    state: State = State.NON_EXISTENT

    def step(self, event: Event) -> Action:
        """Apply `event`; return the action to perform. Raises FsmError (state unchanged)."""
        try:
            action, nxt = TABLE[(self.state, event)]
        except KeyError:
            raise FsmError(self.state, event) from None
        self.state = nxt
        return action


def step(state: State, event: Event) -> tuple[Action, State]:
    """Pure form: the action and next state, or FsmError."""
    try:
        return TABLE[(state, event)]
    except KeyError:
        raise FsmError(state, event) from None

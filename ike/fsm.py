"""The IKE SA state machine of RFC 7296, as a table.

    (state, event) -> Transition(action, next, failed)

`IkeSaFsm.step()` is the one driver: it looks the pair up, runs the handler the
session gives for the action, and moves to the state the handler's `Outcome`
selects:

- `DONE`: the action completed; go to `next`.
- `REFUSED`: the input was not acceptable (a refused IKE_SA_INIT request, an
  unusable IKE_SA_INIT response, a refused or failed IKE SA rekey); nothing
  changes.
- `FAILED`: setting up the IKE SA failed; go to `failed` (§2.21.1, §2.21.2).

A pair the table does not list raises `FsmError` and leaves the state
unchanged; `ike.session` turns that into `Ignored` for a received message (it
never raises on input) and into `IkeError` for a command.

Received-message events are classified after the message layer (§2.1
retransmissions and Message IDs, §2.6 SPIs, §3.14 SK integrity), which stays in
`ike.session`. A response is classified by the request it answers (one request
in flight, §2.3), so a response event only arrives in the state that sent it.

    IDLE        --START / Tx IKE_SA_INIT--------------------> INIT_SENT     §1.2 (initiator)
    IDLE        --Rx IKE_SA_INIT req / Tx IKE_SA_INIT resp--> INIT_DONE     §1.2 (responder)
                  refused with a notify, no state kept -----> IDLE          §1.2, §2.6, §2.7
    INIT_SENT   --Rx IKE_SA_INIT resp / Tx IKE_AUTH---------> AUTH_SENT     §1.2
                  error notify without SA ------------------> FAILED        §2.21.1
                  no usable SA/KE/Nonce: keep waiting ------> INIT_SENT     §2.21.1
    INIT_DONE   --Rx IKE_AUTH req / Tx IKE_AUTH resp--------> ESTABLISHED   §1.2, §2.15
                  AUTH does not verify / Tx AUTH_FAILED ----> FAILED        §2.21.2
    AUTH_SENT   --Rx IKE_AUTH resp--------------------------> ESTABLISHED   §1.2, §2.15
                  AUTH_FAILED or AUTH does not verify ------> FAILED        §2.21.2
    ESTABLISHED --rekey / create / delete Child SA, --------> ESTABLISHED   §1.3.1, §1.3.3, §1.4.1,
                  rekey IKE SA, liveness, close                               §2.18, §1.4
                  (queued; sent one at a time, §2.3)
    ESTABLISHED --Rx CREATE_CHILD_SA (Child SA) / INFORMATIONAL req -> same  §1.3.1, §1.3.3, §2.8, §1.4
    ESTABLISHED --Rx CREATE_CHILD_SA (IKE SA) / answer, new SA up-> REKEYED §2.18 (refused: same)
    ESTABLISHED --Rx CREATE_CHILD_SA / INFORMATIONAL resp-----> ESTABLISHED §2.8, §1.4.1, §2.4
    ESTABLISHED --Rx resp to our IKE SA rekey / new SA up-----> REKEYED     §2.18 (refused: same)
    ESTABLISHED --lost a simultaneous IKE SA rekey------------> REKEYED     §2.8.2
    ESTABLISHED --Rx Delete IKE SA req / Tx empty resp--------> DELETED     §1.4.1
    ESTABLISHED --Rx resp to our Delete IKE SA ---------------> DELETED     §1.4.1
    REKEYED     --Rx CREATE_CHILD_SA req / TEMPORARY_FAILURE--> REKEYED     §2.25
    REKEYED     --Rx INFORMATIONAL req; responses to ours-----> REKEYED     §1.4, §2.8.2
    REKEYED     --Rx Delete IKE SA req, or resp to ours ------> DELETED     §2.18
    any         --retransmission timer / Tx request again-----> same        §2.1

FAILED and DELETED take no received message (`FINAL`): an IKE SA that failed or
was deleted answers nothing (§2.21, §1.4.1). A session (`ike.session`) holds
the current IKE SA and, during a rekey (§2.18), the IKE SAs it replaced: each
has its own state in this table. REKEYED is an IKE SA that a rekey replaced, or
a redundant one from a simultaneous rekey (§2.8.2): its Child SAs have moved to
the current IKE SA and it only waits for its Delete (sent by the rekey
initiator: the last request on it, §2.18). While a simultaneous IKE SA rekey
is undecided (our answer has not come) the old IKE SA, already REKEYED, stays
the current one, and the peer's new one waits beside it in ESTABLISHED; a
Delete of an IKE SA that is not the current one removes only that IKE SA. A
peer with an exchange of its own in flight refuses to have its IKE SA
rekeyed (TEMPORARY_FAILURE, §2.25: the IKE SA stays). The Child SAs are the `children` of
the session: installed by IKE_AUTH (§1.2) or CREATE_CHILD_SA (§1.3.1, §1.3.3),
removed by a Delete (§1.4.1) or with the IKE SA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar


class State(StrEnum):
    IDLE = "idle"
    INIT_SENT = "init-sent"  # initiator, waiting for IKE_SA_INIT response
    INIT_DONE = "init-done"  # responder, waiting for IKE_AUTH
    AUTH_SENT = "auth-sent"  # initiator, waiting for IKE_AUTH response
    ESTABLISHED = "established"
    REKEYED = "rekeyed"  # replaced by a rekey (or redundant): waits for its Delete, §2.18, §2.8.2
    FAILED = "failed"
    DELETED = "deleted"


class Event(StrEnum):
    # commands (the driver's or the operator's)
    START = "START"  # initiator: begin IKE_SA_INIT
    REKEY_CHILD = "REKEY_CHILD"
    CREATE_CHILD = "CREATE_CHILD"  # a new Child SA with the configured selectors, §1.3.1
    DELETE_CHILD = "DELETE_CHILD"
    REKEY_IKE = "REKEY_IKE"  # §2.18
    LIVENESS = "LIVENESS"
    CLOSE = "CLOSE"  # delete the IKE SA
    RETRANSMIT = "RETRANSMIT"  # the driver's retransmission timer fired
    REDUNDANT = "REDUNDANT"  # internal: this IKE SA lost a simultaneous rekey (§2.8.2)
    # requests received
    RX_INIT_REQUEST = "RX_INIT_REQUEST"
    RX_AUTH_REQUEST = "RX_AUTH_REQUEST"
    RX_CREATE_CHILD_REQUEST = "RX_CREATE_CHILD_REQUEST"  # new or rekeyed Child SA
    RX_REKEY_IKE_REQUEST = "RX_REKEY_IKE_REQUEST"  # CREATE_CHILD_SA with an IKE proposal, §2.18
    RX_INFORMATIONAL_REQUEST = "RX_INFORMATIONAL_REQUEST"  # liveness, Child SA deletes
    RX_DELETE_IKE_REQUEST = "RX_DELETE_IKE_REQUEST"  # INFORMATIONAL with a Delete of the IKE SA
    RX_OTHER_REQUEST = "RX_OTHER_REQUEST"  # an exchange type we do not implement
    # responses received, named by the request they answer
    RX_INIT_RESPONSE = "RX_INIT_RESPONSE"
    RX_AUTH_RESPONSE = "RX_AUTH_RESPONSE"
    RX_REKEY_RESPONSE = "RX_REKEY_RESPONSE"
    RX_CREATE_CHILD_RESPONSE = "RX_CREATE_CHILD_RESPONSE"
    RX_REKEY_IKE_RESPONSE = "RX_REKEY_IKE_RESPONSE"
    RX_DELETE_CHILD_RESPONSE = "RX_DELETE_CHILD_RESPONSE"
    RX_LIVENESS_RESPONSE = "RX_LIVENESS_RESPONSE"
    RX_DELETE_IKE_RESPONSE = "RX_DELETE_IKE_RESPONSE"


class Action(StrEnum):
    SEND_INIT = "SEND_INIT"
    QUEUE_REKEY = "QUEUE_REKEY"
    QUEUE_CREATE_CHILD = "QUEUE_CREATE_CHILD"
    QUEUE_DELETE_CHILD = "QUEUE_DELETE_CHILD"
    QUEUE_REKEY_IKE = "QUEUE_REKEY_IKE"
    QUEUE_LIVENESS = "QUEUE_LIVENESS"
    QUEUE_DELETE_IKE = "QUEUE_DELETE_IKE"
    RESEND = "RESEND"  # the outstanding request, if any
    ANSWER_INIT = "ANSWER_INIT"
    SEND_AUTH = "SEND_AUTH"  # from the IKE_SA_INIT response
    ANSWER_AUTH = "ANSWER_AUTH"
    CHECK_AUTH = "CHECK_AUTH"  # the IKE_AUTH response
    ANSWER_CREATE_CHILD = "ANSWER_CREATE_CHILD"  # new Child SA, or a rekey (noting a collision)
    ANSWER_REKEY_IKE = "ANSWER_REKEY_IKE"  # the new IKE SA becomes the current one
    ANSWER_INFORMATIONAL = "ANSWER_INFORMATIONAL"  # also for a Delete of the IKE SA
    ANSWER_DELETE_REKEYED = "ANSWER_DELETE_REKEYED"  # the end of a replaced IKE SA
    REFUSE_BUSY = "REFUSE_BUSY"  # TEMPORARY_FAILURE, §2.25
    INSTALL_CHILD = "INSTALL_CHILD"  # new or rekeyed Child SA; §2.8.1 decides a collision
    INSTALL_REKEYED_IKE = "INSTALL_REKEYED_IKE"  # new IKE SA; §2.8.2 decides a collision
    HAND_OVER = "HAND_OVER"  # queued requests move to the current IKE SA
    REMOVE_CHILD = "REMOVE_CHILD"
    PEER_ALIVE = "PEER_ALIVE"
    IKE_DELETED = "IKE_DELETED"
    FORGET_REKEYED = "FORGET_REKEYED"  # our Delete of a replaced IKE SA was answered


class Outcome(StrEnum):
    DONE = "DONE"
    REFUSED = "REFUSED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Transition:
    action: Action
    next: State
    failed: State | None = None  # where Outcome.FAILED leads; None: the action cannot fail


S, E, A = State, Event, Action
T = Transition

TABLE: dict[tuple[State, Event], Transition] = {
    # §1.2 initial exchanges, initiator
    (S.IDLE, E.START): T(A.SEND_INIT, S.INIT_SENT),
    (S.INIT_SENT, E.RX_INIT_RESPONSE): T(A.SEND_AUTH, S.AUTH_SENT, failed=S.FAILED),
    (S.AUTH_SENT, E.RX_AUTH_RESPONSE): T(A.CHECK_AUTH, S.ESTABLISHED, failed=S.FAILED),
    # §1.2 initial exchanges, responder
    (S.IDLE, E.RX_INIT_REQUEST): T(A.ANSWER_INIT, S.INIT_DONE),
    (S.INIT_DONE, E.RX_AUTH_REQUEST): T(A.ANSWER_AUTH, S.ESTABLISHED, failed=S.FAILED),
    # established: our requests, queued (§2.3 window of one)
    (S.ESTABLISHED, E.REKEY_CHILD): T(A.QUEUE_REKEY, S.ESTABLISHED),  # §1.3.3, §2.8
    (S.ESTABLISHED, E.CREATE_CHILD): T(A.QUEUE_CREATE_CHILD, S.ESTABLISHED),  # §1.3.1
    (S.ESTABLISHED, E.DELETE_CHILD): T(A.QUEUE_DELETE_CHILD, S.ESTABLISHED),  # §1.4.1
    (S.ESTABLISHED, E.REKEY_IKE): T(A.QUEUE_REKEY_IKE, S.ESTABLISHED),  # §1.3.2, §2.18
    (S.ESTABLISHED, E.LIVENESS): T(A.QUEUE_LIVENESS, S.ESTABLISHED),  # §1.4, §2.4
    (S.ESTABLISHED, E.CLOSE): T(A.QUEUE_DELETE_IKE, S.ESTABLISHED),  # §1.4.1: gone on the response
    # established: the peer's requests
    (S.ESTABLISHED, E.RX_CREATE_CHILD_REQUEST): T(A.ANSWER_CREATE_CHILD, S.ESTABLISHED),  # §1.3.1, §1.3.3
    (S.ESTABLISHED, E.RX_REKEY_IKE_REQUEST): T(A.ANSWER_REKEY_IKE, S.REKEYED),  # §2.18
    (S.ESTABLISHED, E.RX_INFORMATIONAL_REQUEST): T(A.ANSWER_INFORMATIONAL, S.ESTABLISHED),  # §1.4
    (S.ESTABLISHED, E.RX_DELETE_IKE_REQUEST): T(A.ANSWER_INFORMATIONAL, S.DELETED),  # §1.4.1
    # established: the answers to ours
    (S.ESTABLISHED, E.RX_REKEY_RESPONSE): T(A.INSTALL_CHILD, S.ESTABLISHED),  # §2.8
    (S.ESTABLISHED, E.RX_CREATE_CHILD_RESPONSE): T(A.INSTALL_CHILD, S.ESTABLISHED),  # §1.3.1
    (S.ESTABLISHED, E.RX_REKEY_IKE_RESPONSE): T(A.INSTALL_REKEYED_IKE, S.REKEYED),  # §2.18
    (S.ESTABLISHED, E.RX_DELETE_CHILD_RESPONSE): T(A.REMOVE_CHILD, S.ESTABLISHED),  # §1.4.1
    (S.ESTABLISHED, E.RX_LIVENESS_RESPONSE): T(A.PEER_ALIVE, S.ESTABLISHED),  # §2.4
    (S.ESTABLISHED, E.RX_DELETE_IKE_RESPONSE): T(A.IKE_DELETED, S.DELETED),  # §1.4.1
    (S.ESTABLISHED, E.REDUNDANT): T(A.HAND_OVER, S.REKEYED),  # §2.8.2
    # rekeyed: the Child SAs have moved on; only the end of this IKE SA and what was in flight
    (S.REKEYED, E.RX_CREATE_CHILD_REQUEST): T(A.REFUSE_BUSY, S.REKEYED),  # §2.25.1
    (S.REKEYED, E.RX_REKEY_IKE_REQUEST): T(A.REFUSE_BUSY, S.REKEYED),  # §2.25.2
    (S.REKEYED, E.RX_INFORMATIONAL_REQUEST): T(A.ANSWER_INFORMATIONAL, S.REKEYED),  # §1.4
    (S.REKEYED, E.RX_DELETE_IKE_REQUEST): T(A.ANSWER_DELETE_REKEYED, S.DELETED),  # §2.18
    (S.REKEYED, E.RX_REKEY_RESPONSE): T(A.INSTALL_CHILD, S.REKEYED),  # §2.8
    (S.REKEYED, E.RX_CREATE_CHILD_RESPONSE): T(A.INSTALL_CHILD, S.REKEYED),  # §1.3.1
    (S.REKEYED, E.RX_REKEY_IKE_RESPONSE): T(A.INSTALL_REKEYED_IKE, S.REKEYED),  # §2.8.2 collision
    (S.REKEYED, E.RX_DELETE_CHILD_RESPONSE): T(A.REMOVE_CHILD, S.REKEYED),  # §1.4.1
    (S.REKEYED, E.RX_LIVENESS_RESPONSE): T(A.PEER_ALIVE, S.REKEYED),  # §2.4
    (S.REKEYED, E.RX_DELETE_IKE_RESPONSE): T(A.FORGET_REKEYED, S.DELETED),  # §2.18
}
# §2.1: the retransmission timer resends the outstanding request in any state
for _s in State:
    TABLE[(_s, E.RETRANSMIT)] = T(A.RESEND, _s)
del _s

RX_EVENTS = frozenset(e for e in Event if e.name.startswith("RX_"))
# States in which no received message has a transition: input is dropped before it is classified.
FINAL = frozenset(s for s in State if not any((s, e) in TABLE for e in RX_EVENTS))


class FsmError(Exception):
    """An event the table has no transition for in this state."""

    def __init__(self, state: State, event: Event) -> None:
        self.state = state
        self.event = event
        super().__init__(f"IKE SA FSM: event {event.value} unexpected in state {state.value}")


def step(state: State, event: Event) -> Transition:
    """Pure form: the transition for `event` in `state`, or FsmError."""
    try:
        return TABLE[(state, event)]
    except KeyError:
        raise FsmError(state, event) from None


def after(state: State, transition: Transition, outcome: Outcome) -> State:
    """The state once the transition's action ended with `outcome`."""
    if outcome is Outcome.DONE:
        return transition.next
    if outcome is Outcome.REFUSED:
        return state
    if transition.failed is None:
        raise ValueError(f"IKE SA FSM: action {transition.action.value} cannot fail")
    return transition.failed


R = TypeVar("R")


@dataclass
class IkeSaFsm:
    """The state of one IKE SA; `step()` applies one event."""

    state: State = State.IDLE

    def step(self, event: Event, handler: Callable[[Action], tuple[Outcome, R]]) -> R:
        """Run `handler` for the tabled action and apply its outcome; return what it made.

        Raises FsmError (nothing run, state unchanged). If the handler raises, the state
        is unchanged too.
        """
        t = step(self.state, event)
        outcome, result = handler(t.action)
        self.state = after(self.state, t, outcome)
        return result

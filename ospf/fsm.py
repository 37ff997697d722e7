"""RFC 2328 §10.3 neighbor state machine, as a table.

    (state, event) -> (action, next_state)

`step()` is the one driver; the instance (`ospf.instance`) performs the action.
Only point-to-point interfaces exist here (every lab link is a veth pair), so
"should an adjacency form" (§10.4) is always yes: 2-WayReceived goes straight to
ExStart and AdjOK? never changes the state. Attempt is NBMA-only and left out.
An event the table does not list is ignored with the state unchanged, as §10.3
says for events that cannot occur in a state; `FsmError` is raised by `step`
so the caller decides (the instance counts and ignores it).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class NbrState(IntEnum):
    """Ordered: "state >= 2-Way" comparisons in the RFC are integer comparisons here."""

    DOWN = 0
    INIT = 2
    TWO_WAY = 3
    EXSTART = 4
    EXCHANGE = 5
    LOADING = 6
    FULL = 7

    @property
    def label(self) -> str:
        return {0: "Down", 2: "Init", 3: "2-Way", 4: "ExStart", 5: "Exchange", 6: "Loading",
                7: "Full"}[self.value]


class NbrEvent(StrEnum):
    HELLO_RECEIVED = "HelloReceived"
    TWO_WAY_RECEIVED = "2-WayReceived"
    NEGOTIATION_DONE = "NegotiationDone"
    EXCHANGE_DONE = "ExchangeDone"
    BAD_LS_REQ = "BadLSReq"
    LOADING_DONE = "LoadingDone"
    ADJ_OK = "AdjOK?"
    SEQ_NUMBER_MISMATCH = "SeqNumberMismatch"
    ONE_WAY_RECEIVED = "1-WayReceived"
    KILL_NBR = "KillNbr"
    INACTIVITY_TIMER = "InactivityTimer"
    LL_DOWN = "LLDown"


class NbrAction(StrEnum):
    NONE = "none"
    START_INACTIVITY = "start-inactivity"  # (re)start the Inactivity Timer
    START_EXSTART = "start-exstart"  # bump DD sequence, claim master, send empty DD (I|M|MS)
    LIST_DATABASE = "list-database"  # summary list = the LSDB; send first DD as master/slave
    CHECK_LOADING = "check-loading"  # Full if the request list is empty, else Loading + LSR
    ADJ_FULL = "adj-full"  # reached Full: reoriginate the router-LSA
    RESTART_EXSTART = "restart-exstart"  # clear lists, back to negotiation
    CLEAR_TO_INIT = "clear-to-init"  # clear lists (lost bidirectionality)
    KILL = "kill"  # clear lists, stop timers, forget the neighbor


S, E, A = NbrState, NbrEvent, NbrAction

TABLE: dict[tuple[NbrState, NbrEvent], tuple[NbrAction, NbrState]] = {
    (S.DOWN, E.HELLO_RECEIVED): (A.START_INACTIVITY, S.INIT),
    (S.INIT, E.ONE_WAY_RECEIVED): (A.NONE, S.INIT),
    # §10.4 on a point-to-point network: always become adjacent.
    (S.INIT, E.TWO_WAY_RECEIVED): (A.START_EXSTART, S.EXSTART),
    (S.TWO_WAY, E.ADJ_OK): (A.START_EXSTART, S.EXSTART),
    (S.EXSTART, E.NEGOTIATION_DONE): (A.LIST_DATABASE, S.EXCHANGE),
    (S.EXCHANGE, E.EXCHANGE_DONE): (A.CHECK_LOADING, S.LOADING),
    (S.LOADING, E.LOADING_DONE): (A.ADJ_FULL, S.FULL),
}
for _s in S:
    if _s != S.DOWN:
        TABLE[(_s, E.HELLO_RECEIVED)] = (A.START_INACTIVITY, _s)
    TABLE[(_s, E.KILL_NBR)] = (A.KILL, S.DOWN)
    TABLE[(_s, E.LL_DOWN)] = (A.KILL, S.DOWN)
    TABLE[(_s, E.INACTIVITY_TIMER)] = (A.KILL, S.DOWN)
    if _s >= S.TWO_WAY:
        TABLE[(_s, E.TWO_WAY_RECEIVED)] = (A.NONE, _s)
        TABLE[(_s, E.ONE_WAY_RECEIVED)] = (A.CLEAR_TO_INIT, S.INIT)
    if _s >= S.EXSTART:
        TABLE[(_s, E.ADJ_OK)] = (A.NONE, _s)  # still should be adjacent (point-to-point)
    if _s >= S.EXCHANGE:
        TABLE[(_s, E.SEQ_NUMBER_MISMATCH)] = (A.RESTART_EXSTART, S.EXSTART)
        TABLE[(_s, E.BAD_LS_REQ)] = (A.RESTART_EXSTART, S.EXSTART)
del _s


class FsmError(Exception):
    def __init__(self, state: NbrState, event: NbrEvent) -> None:
        self.state, self.event = state, event
        super().__init__(f"OSPF neighbor FSM: {event.value} unexpected in {state.label}")


def step(state: NbrState, event: NbrEvent) -> tuple[NbrAction, NbrState]:
    """The action and next state for `event` in `state`, or FsmError (nothing changes)."""
    try:
        return TABLE[(state, event)]
    except KeyError:
        raise FsmError(state, event) from None

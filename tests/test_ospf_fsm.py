"""RFC 2328 §10.3 neighbor state machine: every state x event pair."""

from __future__ import annotations

import pytest

from ospf.fsm import TABLE, FsmError, NbrAction, NbrEvent, NbrState, step

S, E, A = NbrState, NbrEvent, NbrAction

# The expected outcome of every pair, written out from §10.3 for point-to-point links
# (no Attempt state; adjacencies always form, so AdjOK? never changes the state).
EXPECTED: dict[tuple[NbrState, NbrEvent], tuple[NbrAction, NbrState] | None] = {}
for s in S:
    for e in E:
        EXPECTED[(s, e)] = None
for s in S:
    EXPECTED[(s, E.HELLO_RECEIVED)] = (A.START_INACTIVITY, S.INIT if s == S.DOWN else s)
    for e in (E.KILL_NBR, E.LL_DOWN, E.INACTIVITY_TIMER):
        EXPECTED[(s, e)] = (A.KILL, S.DOWN)
EXPECTED[(S.INIT, E.ONE_WAY_RECEIVED)] = (A.NONE, S.INIT)
EXPECTED[(S.INIT, E.TWO_WAY_RECEIVED)] = (A.START_EXSTART, S.EXSTART)
EXPECTED[(S.TWO_WAY, E.ADJ_OK)] = (A.START_EXSTART, S.EXSTART)
for s in (S.TWO_WAY, S.EXSTART, S.EXCHANGE, S.LOADING, S.FULL):
    EXPECTED[(s, E.TWO_WAY_RECEIVED)] = (A.NONE, s)
    EXPECTED[(s, E.ONE_WAY_RECEIVED)] = (A.CLEAR_TO_INIT, S.INIT)
for s in (S.EXSTART, S.EXCHANGE, S.LOADING, S.FULL):
    EXPECTED[(s, E.ADJ_OK)] = (A.NONE, s)
EXPECTED[(S.EXSTART, E.NEGOTIATION_DONE)] = (A.LIST_DATABASE, S.EXCHANGE)
EXPECTED[(S.EXCHANGE, E.EXCHANGE_DONE)] = (A.CHECK_LOADING, S.LOADING)
EXPECTED[(S.LOADING, E.LOADING_DONE)] = (A.ADJ_FULL, S.FULL)
for s in (S.EXCHANGE, S.LOADING, S.FULL):
    EXPECTED[(s, E.SEQ_NUMBER_MISMATCH)] = (A.RESTART_EXSTART, S.EXSTART)
    EXPECTED[(s, E.BAD_LS_REQ)] = (A.RESTART_EXSTART, S.EXSTART)


@pytest.mark.parametrize("state,event", sorted(EXPECTED, key=lambda k: (k[0], k[1].value)))
def test_every_state_event_pair(state: NbrState, event: NbrEvent) -> None:
    want = EXPECTED[(state, event)]
    if want is None:
        with pytest.raises(FsmError):
            step(state, event)
    else:
        assert step(state, event) == want


def test_table_has_nothing_else():
    assert {k for k, v in EXPECTED.items() if v is not None} == set(TABLE)

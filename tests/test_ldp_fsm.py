"""RFC 5036 §2.5.4 session FSM: every state x event is in the table or raises."""

from __future__ import annotations

import itertools

import pytest

from ldp.fsm import TABLE, Action, Event, FsmError, SessionFsm, State, step


@pytest.mark.parametrize("state,event", list(itertools.product(State, Event)))
def test_every_pair(state, event):
    fsm = SessionFsm(state)
    if (state, event) in TABLE:
        action, nxt = TABLE[(state, event)]
        assert fsm.step(event) is action
        assert fsm.state is nxt
    else:
        with pytest.raises(FsmError) as ei:
            fsm.step(event)
        assert fsm.state is state
        assert ei.value.state is state and ei.value.event is event
        with pytest.raises(FsmError):
            step(state, event)


def test_active_path():
    f = SessionFsm()
    assert f.step(Event.CONNECTION_UP) is Action.NONE and f.state is State.INITIALIZED
    assert f.step(Event.TX_INIT) is Action.SEND_INIT and f.state is State.OPENSENT
    assert f.step(Event.RX_INIT_OK) is Action.SEND_KEEPALIVE and f.state is State.OPENREC
    assert f.step(Event.RX_KEEPALIVE) is Action.SESSION_UP and f.state is State.OPERATIONAL
    assert f.step(Event.RX_OTHER) is Action.PROCESS and f.state is State.OPERATIONAL


def test_passive_path():
    f = SessionFsm()
    f.step(Event.CONNECTION_UP)
    assert f.step(Event.RX_INIT_OK) is Action.SEND_INIT_KEEPALIVE and f.state is State.OPENREC
    assert f.step(Event.RX_KEEPALIVE) is Action.SESSION_UP


@pytest.mark.parametrize("state", [State.INITIALIZED, State.OPENSENT, State.OPENREC])
def test_pre_operational_errors_nak(state):
    for ev in (Event.RX_OTHER, Event.TIMEOUT, Event.RX_INIT_BAD):
        assert step(state, ev) == (Action.SEND_NAK_CLOSE, State.NON_EXISTENT)
    assert step(state, Event.CONNECTION_DOWN) == (Action.CLOSE, State.NON_EXISTENT)


def test_operational_teardown():
    assert step(State.OPERATIONAL, Event.TIMEOUT) == (Action.SEND_NAK_CLOSE, State.NON_EXISTENT)
    assert step(State.OPERATIONAL, Event.RX_SHUTDOWN) == (Action.CLOSE, State.NON_EXISTENT)


def test_non_existent_only_accepts_connection():
    for ev in Event:
        if ev is not Event.CONNECTION_UP:
            assert (State.NON_EXISTENT, ev) not in TABLE

"""RFC 4271 §8.2.2 BGP FSM: every state x event pair, written out from the RFC text."""

from __future__ import annotations

import pytest

from bgp.fsm import TABLE, Action, Event, FsmError, State, step

S, E, A = State, Event, Action
STARTS = (E.MANUAL_START, E.AUTOMATIC_START, E.MANUAL_START_PASSIVE, E.AUTOMATIC_START_PASSIVE)

EXPECTED: dict[tuple[State, Event], tuple[Action, State] | None] = {
    (s, e): None for s in S for e in E}

# Idle: Event 1/3 -> Connect, 4/5 -> Active; "any other event ... does not cause change".
for e in E:
    EXPECTED[(S.IDLE, e)] = (A.IGNORE, S.IDLE)
EXPECTED[(S.IDLE, E.MANUAL_START)] = (A.INITIATE, S.CONNECT)
EXPECTED[(S.IDLE, E.AUTOMATIC_START)] = (A.INITIATE, S.CONNECT)
EXPECTED[(S.IDLE, E.MANUAL_START_PASSIVE)] = (A.LISTEN, S.ACTIVE)
EXPECTED[(S.IDLE, E.AUTOMATIC_START_PASSIVE)] = (A.LISTEN, S.ACTIVE)

# Connect / Active
for s in (S.CONNECT, S.ACTIVE):
    for e in STARTS:
        EXPECTED[(s, e)] = (A.IGNORE, s)
    EXPECTED[(s, E.MANUAL_STOP)] = (A.STOP, S.IDLE)
    EXPECTED[(s, E.CONNECT_RETRY_TIMER_EXPIRES)] = (A.RETRY, S.CONNECT)
    EXPECTED[(s, E.TCP_CR_ACKED)] = (A.SEND_OPEN, S.OPEN_SENT)
    EXPECTED[(s, E.TCP_CONNECTION_CONFIRMED)] = (A.SEND_OPEN, S.OPEN_SENT)
    for e in (8, 10, 11, 19, 21, 22, 23, 24, 25, 26, 27, 28):
        EXPECTED[(s, E(e))] = (A.DROP, S.IDLE)
EXPECTED[(S.CONNECT, E.TCP_CONNECTION_FAILS)] = (A.CONNECT_FAILED, S.IDLE)
EXPECTED[(S.ACTIVE, E.TCP_CONNECTION_FAILS)] = (A.DROP, S.IDLE)

# OpenSent
for e in STARTS:
    EXPECTED[(S.OPEN_SENT, e)] = (A.IGNORE, S.OPEN_SENT)
EXPECTED[(S.OPEN_SENT, E.MANUAL_STOP)] = (A.STOP_CEASE, S.IDLE)
EXPECTED[(S.OPEN_SENT, E.AUTOMATIC_STOP)] = (A.DROP_CEASE, S.IDLE)
EXPECTED[(S.OPEN_SENT, E.HOLD_TIMER_EXPIRES)] = (A.DROP_HOLD_EXPIRED, S.IDLE)
EXPECTED[(S.OPEN_SENT, E.TCP_CONNECTION_FAILS)] = (A.OPEN_SENT_TCP_FAILED, S.ACTIVE)
EXPECTED[(S.OPEN_SENT, E.BGP_OPEN)] = (A.ACCEPT_OPEN, S.OPEN_CONFIRM)
EXPECTED[(S.OPEN_SENT, E.BGP_HEADER_ERR)] = (A.DROP_ERROR, S.IDLE)
EXPECTED[(S.OPEN_SENT, E.BGP_OPEN_MSG_ERR)] = (A.DROP_ERROR, S.IDLE)
EXPECTED[(S.OPEN_SENT, E.OPEN_COLLISION_DUMP)] = (A.DROP_CEASE, S.IDLE)
EXPECTED[(S.OPEN_SENT, E.NOTIF_MSG_VER_ERR)] = (A.DROP_VERSION, S.IDLE)
for e in (9, 11, 25, 26, 27, 28):
    EXPECTED[(S.OPEN_SENT, E(e))] = (A.DROP_FSM_ERROR, S.IDLE)

# OpenConfirm
for e in STARTS:
    EXPECTED[(S.OPEN_CONFIRM, e)] = (A.IGNORE, S.OPEN_CONFIRM)
EXPECTED[(S.OPEN_CONFIRM, E.MANUAL_STOP)] = (A.STOP_CEASE, S.IDLE)
EXPECTED[(S.OPEN_CONFIRM, E.AUTOMATIC_STOP)] = (A.DROP_CEASE, S.IDLE)
EXPECTED[(S.OPEN_CONFIRM, E.HOLD_TIMER_EXPIRES)] = (A.DROP_HOLD_EXPIRED, S.IDLE)
EXPECTED[(S.OPEN_CONFIRM, E.KEEPALIVE_TIMER_EXPIRES)] = (A.SEND_KEEPALIVE, S.OPEN_CONFIRM)
EXPECTED[(S.OPEN_CONFIRM, E.TCP_CONNECTION_FAILS)] = (A.DROP, S.IDLE)
EXPECTED[(S.OPEN_CONFIRM, E.NOTIF_MSG)] = (A.DROP, S.IDLE)
EXPECTED[(S.OPEN_CONFIRM, E.NOTIF_MSG_VER_ERR)] = (A.DROP_VERSION, S.IDLE)
EXPECTED[(S.OPEN_CONFIRM, E.BGP_OPEN)] = (A.DROP_FSM_ERROR, S.IDLE)  # RFC 6608, per connection
EXPECTED[(S.OPEN_CONFIRM, E.BGP_HEADER_ERR)] = (A.DROP_ERROR, S.IDLE)
EXPECTED[(S.OPEN_CONFIRM, E.BGP_OPEN_MSG_ERR)] = (A.DROP_ERROR, S.IDLE)
EXPECTED[(S.OPEN_CONFIRM, E.OPEN_COLLISION_DUMP)] = (A.DROP_CEASE, S.IDLE)
EXPECTED[(S.OPEN_CONFIRM, E.KEEPALIVE_MSG)] = (A.ESTABLISH, S.ESTABLISHED)
for e in (9, 27, 28):
    EXPECTED[(S.OPEN_CONFIRM, E(e))] = (A.DROP_FSM_ERROR, S.IDLE)

# Established
for e in STARTS:
    EXPECTED[(S.ESTABLISHED, e)] = (A.IGNORE, S.ESTABLISHED)
EXPECTED[(S.ESTABLISHED, E.MANUAL_STOP)] = (A.STOP_CEASE, S.IDLE)
EXPECTED[(S.ESTABLISHED, E.AUTOMATIC_STOP)] = (A.DROP_CEASE, S.IDLE)
EXPECTED[(S.ESTABLISHED, E.HOLD_TIMER_EXPIRES)] = (A.DROP_HOLD_EXPIRED, S.IDLE)
EXPECTED[(S.ESTABLISHED, E.KEEPALIVE_TIMER_EXPIRES)] = (A.SEND_KEEPALIVE, S.ESTABLISHED)
EXPECTED[(S.ESTABLISHED, E.OPEN_COLLISION_DUMP)] = (A.DROP_CEASE, S.IDLE)
for e in (18, 24, 25):
    EXPECTED[(S.ESTABLISHED, E(e))] = (A.DROP, S.IDLE)
EXPECTED[(S.ESTABLISHED, E.KEEPALIVE_MSG)] = (A.RESTART_HOLD, S.ESTABLISHED)
EXPECTED[(S.ESTABLISHED, E.UPDATE_MSG)] = (A.PROCESS_UPDATE, S.ESTABLISHED)
EXPECTED[(S.ESTABLISHED, E.UPDATE_MSG_ERR)] = (A.DROP_ERROR, S.IDLE)
EXPECTED[(S.ESTABLISHED, E.BGP_HEADER_ERR)] = (A.DROP_ERROR, S.IDLE)  # §6.1
EXPECTED[(S.ESTABLISHED, E.BGP_OPEN)] = (A.DROP_FSM_ERROR, S.IDLE)
for e in (9, 22):
    EXPECTED[(S.ESTABLISHED, E(e))] = (A.DROP_FSM_ERROR, S.IDLE)
# Left: TCP-up events (16, 17) on a connection already past Connect/Active: impossible
# with one FSM per connection (a second connection gets its own, §6.8).


@pytest.mark.parametrize("state,event", sorted(EXPECTED, key=lambda k: (k[0].value, k[1])))
def test_every_state_event_pair(state: State, event: Event) -> None:
    want = EXPECTED[(state, event)]
    if want is None:
        with pytest.raises(FsmError):
            step(state, event)
    else:
        assert step(state, event) == want


def test_table_has_nothing_else() -> None:
    assert {k for k, v in EXPECTED.items() if v is not None} == set(TABLE)


def test_the_only_impossible_pairs_are_a_second_tcp_up() -> None:
    missing = {k for k, v in EXPECTED.items() if v is None}
    assert missing == {(s, e) for s in (S.OPEN_SENT, S.OPEN_CONFIRM, S.ESTABLISHED)
                       for e in (E.TCP_CR_ACKED, E.TCP_CONNECTION_CONFIRMED)}


def test_event_numbers_are_the_rfcs() -> None:
    assert {e.value: e.label for e in E} == {
        1: "ManualStart", 2: "ManualStop", 3: "AutomaticStart",
        4: "ManualStart_with_PassiveTcpEstablishment",
        5: "AutomaticStart_with_PassiveTcpEstablishment", 8: "AutomaticStop",
        9: "ConnectRetryTimer_Expires", 10: "HoldTimer_Expires", 11: "KeepaliveTimer_Expires",
        16: "Tcp_CR_Acked", 17: "TcpConnectionConfirmed", 18: "TcpConnectionFails",
        19: "BGPOpen", 21: "BGPHeaderErr", 22: "BGPOpenMsgErr", 23: "OpenCollisionDump",
        24: "NotifMsgVerErr", 25: "NotifMsg", 26: "KeepAliveMsg", 27: "UpdateMsg",
        28: "UpdateMsgErr"}

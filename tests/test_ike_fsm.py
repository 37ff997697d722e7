"""RFC 7296 IKE SA state machine: every state x event is in the table or raises, and the session obeys it."""

from __future__ import annotations

import itertools
import random
import struct
from ipaddress import IPv4Address

import pytest

from ike import Ignored, IkeConfig, IkeError, IkeSession, SendIke, codec, crypto
from ike.codec import TrafficSelector
from ike.fsm import (
    FINAL,
    RX_EVENTS,
    TABLE,
    Action,
    Event,
    FsmError,
    IkeSaFsm,
    Outcome,
    State,
    Transition,
    after,
    step,
)
from ike.proposals import ike_proposal

S, E, A = State, Event, Action


# ---------------------------------------------------------------- the table alone


@pytest.mark.parametrize("state,event", list(itertools.product(State, Event)))
def test_every_pair(state, event):
    calls = []

    def handler(outcome):
        def run(action):
            calls.append(action)
            return outcome, "made"
        return run

    if (state, event) not in TABLE:
        fsm = IkeSaFsm(state)
        with pytest.raises(FsmError) as ei:
            fsm.step(event, handler(Outcome.DONE))
        assert fsm.state is state and not calls
        assert ei.value.state is state and ei.value.event is event
        with pytest.raises(FsmError):
            step(state, event)
        return
    t = TABLE[(state, event)]
    assert step(state, event) is t
    fsm = IkeSaFsm(state)
    assert fsm.step(event, handler(Outcome.DONE)) == "made"
    assert calls == [t.action] and fsm.state is t.next
    fsm = IkeSaFsm(state)
    fsm.step(event, handler(Outcome.REFUSED))
    assert fsm.state is state  # refused input changes nothing
    fsm = IkeSaFsm(state)
    if t.failed is None:
        with pytest.raises(ValueError):
            fsm.step(event, handler(Outcome.FAILED))
        assert fsm.state is state
    else:
        fsm.step(event, handler(Outcome.FAILED))
        assert fsm.state is t.failed


def test_handler_that_raises_leaves_state():
    fsm = IkeSaFsm(S.ESTABLISHED)

    def boom(action):
        raise IkeError("no such Child SA")

    with pytest.raises(IkeError):
        fsm.step(E.CLOSE, boom)
    assert fsm.state is S.ESTABLISHED


def test_initiator_path():
    s = S.IDLE
    for ev, want in ((E.START, S.INIT_SENT), (E.RX_INIT_RESPONSE, S.AUTH_SENT),
                     (E.RX_AUTH_RESPONSE, S.ESTABLISHED), (E.RX_DELETE_IKE_RESPONSE, S.DELETED)):
        s = after(s, step(s, ev), Outcome.DONE)
        assert s is want


def test_responder_path():
    s = S.IDLE
    for ev, want in ((E.RX_INIT_REQUEST, S.INIT_DONE), (E.RX_AUTH_REQUEST, S.ESTABLISHED),
                     (E.RX_DELETE_IKE_REQUEST, S.DELETED)):
        s = after(s, step(s, ev), Outcome.DONE)
        assert s is want


def test_rekey_path():
    # §2.18: an IKE SA a rekey replaced waits for its Delete; §2.8.2: so does a redundant one
    for ev in (E.RX_REKEY_IKE_REQUEST, E.RX_REKEY_IKE_RESPONSE, E.REDUNDANT):
        assert after(S.ESTABLISHED, step(S.ESTABLISHED, ev), Outcome.DONE) is S.REKEYED
        assert after(S.ESTABLISHED, step(S.ESTABLISHED, ev), Outcome.REFUSED) is S.ESTABLISHED
    for ev in (E.RX_DELETE_IKE_REQUEST, E.RX_DELETE_IKE_RESPONSE):
        assert after(S.REKEYED, step(S.REKEYED, ev), Outcome.DONE) is S.DELETED
    # what was in flight on it still completes; new work is refused (§2.25)
    for ev in (E.RX_REKEY_RESPONSE, E.RX_CREATE_CHILD_RESPONSE, E.RX_DELETE_CHILD_RESPONSE,
               E.RX_LIVENESS_RESPONSE, E.RX_REKEY_IKE_RESPONSE, E.RX_INFORMATIONAL_REQUEST):
        assert TABLE[(S.REKEYED, ev)].next is S.REKEYED
    for ev in (E.RX_CREATE_CHILD_REQUEST, E.RX_REKEY_IKE_REQUEST):
        assert TABLE[(S.REKEYED, ev)].action is A.REFUSE_BUSY


def test_setup_failures_go_to_failed():
    # §2.21.1 / §2.21.2: only the exchanges that set the IKE SA up can fail it
    failing = {k for k, t in TABLE.items() if t.failed is not None}
    assert failing == {(S.INIT_SENT, E.RX_INIT_RESPONSE), (S.AUTH_SENT, E.RX_AUTH_RESPONSE),
                       (S.INIT_DONE, E.RX_AUTH_REQUEST)}
    assert {TABLE[k].failed for k in failing} == {S.FAILED}


def test_final_states_take_no_input_and_only_retransmit():
    assert FINAL == {S.FAILED, S.DELETED}
    for s in FINAL:
        assert [e for e in Event if (s, e) in TABLE] == [E.RETRANSMIT]


def test_established_only_commands():
    for ev in (E.REKEY_CHILD, E.CREATE_CHILD, E.DELETE_CHILD, E.REKEY_IKE, E.LIVENESS, E.CLOSE,
               E.REDUNDANT):
        assert [s for s in State if (s, ev) in TABLE] == [S.ESTABLISHED]


def test_retransmit_everywhere_changes_nothing():
    for s in State:
        assert TABLE[(s, E.RETRANSMIT)] == Transition(A.RESEND, s)


def test_every_state_reachable_and_every_action_used():
    seen, todo = {S.IDLE}, [S.IDLE]
    while todo:
        s = todo.pop()
        for (src, _), t in TABLE.items():
            if src is s:
                for nxt in (t.next, t.failed):
                    if nxt is not None and nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
    assert seen == set(State)
    assert {t.action for t in TABLE.values()} == set(Action)
    assert RX_EVENTS == {e for e in Event if e.value.startswith("RX_")}


def test_session_has_a_handler_for_every_action():
    assert set(IkeSession._HANDLERS) == set(Action)


# ---------------------------------------------------------------- the session obeys the table

SITE1 = TrafficSelector(IPv4Address("192.168.1.0"), IPv4Address("192.168.1.255"))
SITE2 = TrafficSelector(IPv4Address("192.168.2.0"), IPv4Address("192.168.2.255"))


def cfg(side: int, **kw) -> IkeConfig:
    base = dict(psk=b"lsr-ipsec-test-psk", local_id=f"pe{side}.lsr.test".encode(),
                local_ts=(SITE1,) if side == 1 else (SITE2,), remote_ts=(SITE2,) if side == 1 else (SITE1,))
    base.update(kw)
    return IkeConfig(**base)


def pair(seed: int = 1, rcfg: dict | None = None) -> tuple[IkeSession, IkeSession]:
    return (IkeSession(cfg(1), initiator=True, rng=random.Random(seed).randbytes),
            IkeSession(cfg(2, **(rcfg or {})), initiator=False, rng=random.Random(seed + 1000).randbytes))


def run(a: IkeSession, b: IkeSession, actions: list) -> None:
    q = [(a, x) for x in actions]
    while q:
        src, act = q.pop(0)
        if isinstance(act, SendIke):
            dst = b if src is a else a
            q += [(dst, x) for x in dst.receive(act.data)]


def in_state(name: str) -> IkeSession:
    """A session in each state the table knows (IDLE for both roles). For "rekeyed" it is
    the responder of an IKE SA rekey whose old IKE SA still waits for its Delete: `target`
    gives that IKE SA."""
    i, r = pair()
    if name == "idle-i":
        return i
    if name == "idle-r":
        return r
    (m1,) = i.start()
    if name == "init-sent":
        return i
    (m2,) = r.receive(m1.data)
    if name == "init-done":
        return r
    i.receive(m2.data)
    if name == "auth-sent":
        return i
    if name == "failed":
        i, r = pair(rcfg={"psk": b"other"})
        run(i, r, i.start())
        return r
    i, r = pair()
    run(i, r, i.start())
    if name == "established":
        return r
    if name == "rekeyed":
        (req,) = i.rekey_ike()
        (resp,) = (a for a in r.receive(req.data) if isinstance(a, SendIke))
        i.receive(resp.data)  # the initiator's Delete of the old IKE SA is not delivered
        return r
    run(i, r, i.close())
    return r


def target(s: IkeSession):
    """The IKE SA a test talks to: the one in the named state (not the current one if rekeyed)."""
    return next((sa for sa in s._sas if sa.state is S.REKEYED), s.sa)


NAMES = ["idle-i", "idle-r", "init-sent", "init-done", "auth-sent", "established", "rekeyed",
         "failed", "deleted"]


def test_in_state_helper():
    assert [target(in_state(n)).state.value for n in NAMES] == [
        "idle", "idle", "init-sent", "init-done", "auth-sent", "established", "rekeyed", "failed",
        "deleted"]
    assert {s.value for s in State} == {target(in_state(n)).state.value for n in NAMES}


COMMANDS = {
    E.START: lambda s: s.start(),
    E.LIVENESS: lambda s: s.liveness(),
    E.CLOSE: lambda s: s.close(),
    E.REKEY_CHILD: lambda s: s.rekey_child(next(iter(s.children), 0)),
    E.CREATE_CHILD: lambda s: s.create_child(),
    E.DELETE_CHILD: lambda s: s.delete_child(next(iter(s.children), 0)),
    E.REKEY_IKE: lambda s: s.rekey_ike(),
    E.RETRANSMIT: lambda s: s.retransmit(),
}
# REDUNDANT is the session's own event (a lost simultaneous IKE SA rekey), never a command


def test_commands_cover_the_table():
    assert set(COMMANDS) | {E.REDUNDANT} == {e for e in Event if not e.value.startswith("RX_")}


@pytest.mark.parametrize("name,event", list(itertools.product([n for n in NAMES if n != "rekeyed"],
                                                               COMMANDS)))
def test_session_commands_follow_table(name, event):
    # commands go to the current IKE SA, never to one a rekey replaced (test_rekeyed_takes_no_command)
    s = in_state(name)
    before = s.state
    allowed = (before, event) in TABLE and not (event is E.START and not s.initiator)
    if allowed:
        COMMANDS[event](s)
        assert s.state is TABLE[(before, event)].next
    else:
        with pytest.raises(IkeError):
            COMMANDS[event](s)
        assert s.state is before


def test_rekeyed_takes_no_command():
    s = in_state("rekeyed")
    old = target(s)
    assert old is not s.sa and s.state is S.ESTABLISHED
    for ev in COMMANDS:
        if ev not in (E.START, E.RETRANSMIT):
            COMMANDS[ev](s)  # the current IKE SA takes it
        assert old.state is S.REKEYED and not old.queue


def request(s: IkeSession, exchange: int, payloads: list) -> bytes:
    """A request from the peer of `s`'s target IKE SA, sealed with the peer's keys (or junk if
    there are none yet)."""
    sa = target(s)
    peer_init = not sa.initiator
    key = (sa.keys.sk_ei if peer_init else sa.keys.sk_er) if sa.keys else bytes(20)
    m = codec.Message(sa.spi_i, sa.spi_r, exchange, 0x08 if peer_init else 0, sa.expect_mid)
    return crypto.seal(m, payloads, key, struct.pack("!Q", 99))


def _rekey_ike_payloads() -> list:
    """A complete IKE SA rekey request (§1.3.2): SA (protocol IKE, new SPI), Nonce, KE."""
    dh = bytes(range(1, 33))
    return [codec.SaPayload((ike_proposal(128, b"N" * 8),)), codec.NoncePayload(b"n" * 32),
            codec.KePayload(codec.DH_CURVE25519, crypto.x25519_public(dh))]


REQUESTS = {
    E.RX_AUTH_REQUEST: (codec.Exchange.IKE_AUTH, []),
    E.RX_CREATE_CHILD_REQUEST: (codec.Exchange.CREATE_CHILD_SA, []),
    E.RX_REKEY_IKE_REQUEST: (codec.Exchange.CREATE_CHILD_SA, _rekey_ike_payloads()),
    E.RX_INFORMATIONAL_REQUEST: (codec.Exchange.INFORMATIONAL, []),
    E.RX_DELETE_IKE_REQUEST: (codec.Exchange.INFORMATIONAL, [codec.DeletePayload(codec.Protocol.IKE)]),
    E.RX_OTHER_REQUEST: (43, []),  # IKE_INTERMEDIATE (RFC 9242): not implemented
}


def test_requests_cover_the_table():
    rx_requests = {e for e in RX_EVENTS if e.value.endswith("_REQUEST")}
    assert set(REQUESTS) | {E.RX_INIT_REQUEST} == rx_requests


@pytest.mark.parametrize("name,event", list(itertools.product(NAMES, [E.RX_INIT_REQUEST, *REQUESTS])))
def test_session_requests_follow_table(name, event):
    s = in_state(name)
    sa = target(s)
    before = sa.state
    if event is E.RX_INIT_REQUEST:
        other = IkeSession(cfg(1), initiator=True, rng=random.Random(77).randbytes)
        data = other.start()[0].data
        allowed = (before, event) in TABLE and not s.initiator
    else:
        data = request(s, *REQUESTS[event])
        allowed = (before, event) in TABLE and s.keys is not None
    out = s.receive(data)  # never raises
    if allowed:
        t = TABLE[(before, event)]
        assert sa.state in (t.next, t.failed)
        assert any(isinstance(a, SendIke) for a in out)  # every request is answered
    else:
        assert sa.state is before
        assert out and all(isinstance(a, Ignored) for a in out)


def test_unknown_exchange_before_established_is_ignored():
    # used to raise ValueError from Exchange(43) out of receive()
    s = in_state("init-done")
    assert s.receive(request(s, 43, [])) == [Ignored("exchange 43 in state init-done")]
    assert s.state is S.INIT_DONE
    s = in_state("established")
    assert s.receive(request(s, 43, [])) == [Ignored("exchange 43 not handled")]


def test_state_is_read_only():
    s = in_state("idle-i")
    with pytest.raises(AttributeError):
        s.state = S.ESTABLISHED  # type: ignore[misc]

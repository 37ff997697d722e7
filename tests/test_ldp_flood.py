"""Hello floods against the sans-I/O speaker: adjacencies, sessions and TCP stay bounded,
what is refused is counted, a real neighbour is never displaced, and LDP runs only on
the interfaces configured for it (RFC 5036 §2.4.1)."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Interface

import pytest

from ldp import codec
from ldp.discovery import ADJ_BURST, HELLO_ADJACENCY_LIMIT, HELLO_NOT_LDP, HELLO_RATE_LIMIT
from ldp.events import (
    HelloReceived,
    LogEvent,
    SendHello,
    Start,
    StartTimer,
    TcpAccepted,
    TcpClose,
    TcpClosed,
    TcpConnect,
    TimerExpired,
)
from ldp.instance import ACCEPT_LIMIT, CONNECT_LIMIT, LdpInstance
from ldp.messages import Hello, LdpId, Pdu
from lsr.core.bucket import TokenBucket
from lsr.core.topology import LdpOptions, TopologyError, parse_topology
from tests.conftest import TOPOLOGIES

ME = IPv4Address("10.255.0.2")
REAL = IPv4Address("10.255.0.9")  # a real neighbour (higher: we are passive towards it)
ALL = IPv4Address("224.0.0.2")


def inst(**kw) -> LdpInstance:
    i = LdpInstance("me", ME, {"eth1": IPv4Interface("10.0.0.1/30"),
                               "eth2": IPv4Interface("10.0.0.5/30")},
                    options=LdpOptions(**kw), retry_initial=2, retry_max=8)
    i.handle(Start(), 0.0)
    return i


def hello(lsr: IPv4Address, transport: IPv4Address | None = None) -> bytes:
    return codec.encode_pdu(Pdu(LdpId(lsr), (Hello(1, 15, transport_address=transport or lsr),)))


def spoofed(rng: random.Random, low: bool = False) -> bytes:
    """A Hello from a made-up LSR ID; `low`: a transport below ours (we would connect)."""
    lsr = IPv4Address(rng.randrange(0x0B000001, 0x0BFFFFFE))
    return hello(lsr, IPv4Address(rng.randrange(0x01000001, 0x09FFFFFE)) if low else None)


def flood(i: LdpInstance, ifname: str, rate: float, seconds: float, start: float = 0.0,
          low: bool = False, every: float = 5.0) -> list:
    """`rate` spoofed Hellos a second on `ifname` for `seconds`, and the real neighbour's
    Hello every `every` s throughout; all the actions."""
    rng = random.Random(7)
    out = []
    n = int(rate * seconds)
    for k in range(n):
        now = start + k / rate
        out += i.handle(HelloReceived(ifname, IPv4Address("12.0.0.1"), ALL, spoofed(rng, low)), now)
        if k % int(rate * every) == 0:
            out += i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(REAL)), now)
    return out


def test_token_bucket():
    b = TokenBucket(rate=2, burst=3)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take(0.5) and not b.take(0.5)  # 2 a second
    assert [b.take(100.0) for _ in range(4)] == [True, True, True, False]  # never above burst
    assert not b.take(99.0)  # a clock that goes back gives nothing


def test_adjacencies_bounded_per_interface_and_counted():
    i = inst(max_adjacencies=16, adjacency_rate=2)
    acts = flood(i, "eth1", rate=400, seconds=10)
    per_if = [a for (ifn, _), a in i.discovery.adjacencies.items() if ifn == "eth1"]
    assert len(per_if) <= 16
    # new ones come at adjacency_rate after the burst: 4 + 2 * 10 s
    assert len(i.sessions) <= ADJ_BURST + 2 * 10 + 1
    r = i.refusals()
    assert r[HELLO_ADJACENCY_LIMIT] + r[HELLO_RATE_LIMIT] >= 4000 - len(i.sessions) - 16
    assert i.counters()["refused"] == r
    # the real neighbour got in (first Hello at t=0) and was never displaced
    assert REAL in i.sessions and ("eth1", REAL) in i.discovery.adjacencies
    # no line per refused packet: one per (interface, reason) per 10 s
    refusals = [a for a in acts if isinstance(a, LogEvent) and "refused" in a.text]
    assert len(refusals) <= 2 * (10 // 10 + 1)


def test_rate_limit_alone():
    i = inst(max_adjacencies=4096, adjacency_rate=5)
    flood(i, "eth2", rate=400, seconds=4)
    assert len(i.sessions) <= ADJ_BURST + 5 * 4 + 1 + 1  # + the real neighbour on eth1
    assert i.refusals()[HELLO_RATE_LIMIT] > 1500
    assert HELLO_ADJACENCY_LIMIT not in i.refusals()


def test_refresh_is_never_refused():
    """A full interface still takes the Hellos of the adjacencies it has (the hold timer
    is restarted): the flood cannot expire a real neighbour."""
    i = inst(max_adjacencies=2, adjacency_rate=1)
    flood(i, "eth1", rate=100, seconds=60, every=5)
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(REAL)), 61.0)
    assert StartTimer(f"adj:eth1:{REAL}", 15.0) in acts
    assert ("eth1", REAL) in i.discovery.adjacencies


def test_slot_frees_when_an_adjacency_expires():
    i = inst(max_adjacencies=1, adjacency_rate=1)
    a, b = IPv4Address("11.0.0.1"), IPv4Address("11.0.0.2")
    i.handle(HelloReceived("eth1", a, ALL, hello(a)), 0.0)
    i.handle(HelloReceived("eth1", b, ALL, hello(b)), 5.0)
    assert b not in i.sessions and i.refusals() == {HELLO_ADJACENCY_LIMIT: 1}
    i.handle(TimerExpired(f"adj:eth1:{a}"), 15.0)
    i.handle(HelloReceived("eth1", b, ALL, hello(b)), 16.0)
    assert list(i.sessions) == [b] and i.discovery.per_if == {"eth1": 1}


def test_connects_in_flight_bounded():
    """Made-up neighbours below our transport address make us the active side: at most
    max_connecting connects are in flight, the others wait (counted) and go later."""
    i = LdpInstance("me", ME, {"eth1": IPv4Interface("10.0.0.1/30")},
                    options=LdpOptions(max_adjacencies=64, adjacency_rate=100), max_connecting=3)
    i.handle(Start(), 0.0)
    acts = flood(i, "eth1", rate=100, seconds=1, low=True)
    conns = [a.conn for a in acts if isinstance(a, TcpConnect)]
    assert len(conns) == 3 and sum(s.connecting for s in i.sessions.values()) == 3
    assert i.refusals()[CONNECT_LIMIT] > 0
    waiting = [s for s in i.sessions.values() if s.active and s.conn is None]
    # one connect fails: a waiting session gets the slot on its retry
    i.handle(TcpClosed(conns[0], "connect: timed out"), 2.0)
    acts = i.handle(TimerExpired(f"retry:{waiting[0].lsr_id}"), 2.0)
    assert len([a for a in acts if isinstance(a, TcpConnect)]) == 1
    assert sum(s.connecting for s in i.sessions.values()) == 3


def test_pending_accepts_bounded():
    i = LdpInstance("me", ME, {"eth1": IPv4Interface("10.0.0.1/30")}, max_pending_accepts=5)
    i.handle(Start(), 0.0)
    closed = []
    for k in range(1, 21):
        acts = i.handle(TcpAccepted(-k, ME, IPv4Address("12.0.0.1")), k * 0.01)
        closed += [a.conn for a in acts if isinstance(a, TcpClose)]
    assert closed == [-k for k in range(6, 21)]
    assert i.refusals() == {ACCEPT_LIMIT: 15}


def test_ldp_interfaces_come_from_the_topology():
    """Host-facing ports run no LDP: no Hellos out, Hellos in are refused (§2.4.1); their
    addresses are still advertised (Address messages list every interface address)."""
    from lsr.core.topology import load_topology

    topo = load_topology(TOPOLOGIES / "line3.yaml")
    assert topo.ldp_interfaces("pe1") == ("eth2",)
    assert topo.ldp_interfaces("p1") == ("eth1", "eth2")
    i = LdpInstance.from_topology(topo, "pe1")
    acts = i.handle(Start(), 0.0)
    assert [a.ifname for a in acts if isinstance(a, SendHello)] == ["eth2"]
    assert IPv4Address("192.168.1.2") in i.addresses()  # the host has .1
    src = IPv4Address("192.168.1.1")
    for k in range(50):
        lsr = IPv4Address(f"11.0.0.{k + 1}")
        i.handle(HelloReceived("eth1", src, ALL, hello(lsr)), k * 0.01)
    assert not i.sessions and i.refusals() == {HELLO_NOT_LDP: 50}


@pytest.mark.parametrize("key,value,message", [
    ("max_adjacencies", 0, "0 is out of range 1..4096"),
    ("adjacency_rate", "fast", "expected an integer, got a string 'fast'"),
])
def test_flood_options_validated(key, value, message):
    text = (TOPOLOGIES / "line3.yaml").read_text().replace(
        "p1: {loopback: 10.255.0.2}", f"p1: {{loopback: 10.255.0.2, ldp: {{{key}: {value!r}}}}}")
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "t.yaml")
    assert str(ei.value).endswith(f"topology.nodes.p1.ldp.{key}: {message}")


def test_flood_options_reach_the_speaker():
    text = (TOPOLOGIES / "line3.yaml").read_text().replace(
        "p1: {loopback: 10.255.0.2}",
        "p1: {loopback: 10.255.0.2, ldp: {max_adjacencies: 3, adjacency_rate: 7}}")
    i = LdpInstance.from_topology(parse_topology(text), "p1")
    assert (i.discovery.max_adjacencies, i.discovery.adjacency_rate) == (3, 7)


def test_our_own_address_as_transport_is_refused():
    """A Hello naming one of our addresses as its transport would have us connect to
    ourselves."""
    i = inst()
    for k, t in enumerate((ME, IPv4Address("10.0.0.1"), IPv4Address("10.0.0.5"))):
        lsr = IPv4Address(f"11.0.0.{k + 1}")
        i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(lsr, t)), 0.0)
    assert not i.sessions and i.refusals() == {"hello-bad-transport": 3}

"""Flood pacing: LSAs grouped in LS Updates (RFC 2328 §13.3), delayed acknowledgments
grouped in LSAcks (§13.5), at most one send per pacing interval on an interface.

On a converged line a - b - c, b gets crafted router-LSAs of routers that do not exist
(a network far away flooding) from a, and what b sends is looked at directly.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from benchmarks.topogen import isp_topology
from lsr.core.topology import parse_topology
from lsr.sim import Simulation
from ospf import events as ev
from ospf.instance import OspfInstance
from ospf.packets import (
    ALL_SPF_ROUTERS,
    INITIAL_SEQ,
    NO_AUTH,
    Auth,
    LinkType,
    Lsa,
    LsAck,
    LsType,
    LsUpdate,
    Packet,
    RouterLink,
    RouterLsaBody,
    decode_packet,
    encode_packet,
)

LINE = """
name: line
topology:
  nodes: {a: {loopback: 10.255.0.1}, b: {loopback: 10.255.0.2}, c: {loopback: 10.255.0.3}}
  links: [{endpoints: [a:eth1, b:eth1]}, {endpoints: [b:eth2, c:eth1]}]
"""


def _line(pacing_ms: int | None = None, md5: bool = False) -> tuple[Simulation, OspfInstance]:
    text = LINE
    opts = {**({"flood_pacing_ms": pacing_ms} if pacing_ms is not None else {}),
            **({"md5_key": "k"} if md5 else {})}
    if opts:
        text = text.replace("topology:\n", f"topology:\n  defaults: {{ospf: {opts}}}\n", 1)
    sim = Simulation(parse_topology(text))
    assert sim.run().converged
    return sim, sim.ospf["b"]


def _far_lsa(k: int) -> Lsa:
    rid = IPv4Address(f"10.255.9.{k}")
    body = RouterLsaBody(0, (RouterLink(rid, IPv4Address("255.255.255.255"), LinkType.STUB, 0),))
    return Lsa.build(LsType.ROUTER, rid, rid, INITIAL_SEQ, body)


def _from_a(sim: Simulation, b: OspfInstance, lsas: list[Lsa], now: float) -> list:
    a = sim.ospf["a"]
    data = encode_packet(Packet(a.rid, IPv4Address(0), LsUpdate(tuple(lsas)), 1 << 30),
                         a.cfg.auth)
    src = a.ifaces["eth1"].cfg.address.ip
    return b.handle(ev.PacketReceived("eth1", src, ALL_SPF_ROUTERS, data), now)


def _sent(acts: list, ifname: str, auth: Auth = NO_AUTH) -> list:
    return [decode_packet(x.data, auth).body for x in acts
            if isinstance(x, ev.SendPacket) and x.ifname == ifname]


@pytest.mark.parametrize("md5", [False, True], ids=["null", "md5"])
def test_lsas_of_one_update_leave_in_one_update_acks_in_one_lsack(md5):
    sim, b = _line(md5=md5)
    lsas = [_far_lsa(1), _far_lsa(2), _far_lsa(3)]
    acts = _from_a(sim, b, lsas, sim.now + 1)
    out = _sent(acts, "eth2", b.cfg.auth)
    assert [type(p) for p in out] == [LsUpdate]
    assert [x.key for x in out[0].lsas] == [x.key for x in lsas]
    back = _sent(acts, "eth1", b.cfg.auth)
    assert [type(p) for p in back] == [LsAck]
    assert [h.key for h in back[0].headers] == [x.key for x in lsas]


def test_within_the_pacing_interval_floods_and_acks_wait_for_the_timer():
    sim, b = _line()
    t = sim.now + 1
    _from_a(sim, b, [_far_lsa(1)], t)
    acts = _from_a(sim, b, [_far_lsa(2)], t + 0.0005)
    assert not _sent(acts, "eth1") and not _sent(acts, "eth2")
    pace = [x for x in acts if isinstance(x, ev.StartTimer) and x.timer.startswith("pace:")]
    assert sorted(x.timer for x in pace) == ["pace:eth1", "pace:eth2"]
    assert all(abs(x.seconds - (b.cfg.flood_pacing - 0.0005)) < 1e-9 for x in pace)
    acts = _from_a(sim, b, [_far_lsa(3)], t + 0.001)  # joins the waiting ones
    assert not _sent(acts, "eth2")
    acts = b.handle(ev.TimerExpired("pace:eth2"), t + b.cfg.flood_pacing)
    out = _sent(acts, "eth2")
    assert [[x.key.adv_router for x in p.lsas] for p in out] == \
        [[IPv4Address("10.255.9.2"), IPv4Address("10.255.9.3")]]
    acts = b.handle(ev.TimerExpired("pace:eth1"), t + b.cfg.flood_pacing)
    assert [len(p.headers) for p in _sent(acts, "eth1")] == [2]


def test_zero_pacing_sends_at_the_end_of_each_event():
    sim, b = _line(0)
    assert b.cfg.flood_pacing == 0
    t = sim.now + 1
    _from_a(sim, b, [_far_lsa(1)], t)
    acts = _from_a(sim, b, [_far_lsa(2)], t + 0.0005)
    assert [type(p) for p in _sent(acts, "eth2")] == [LsUpdate]
    assert [type(p) for p in _sent(acts, "eth1")] == [LsAck]


def test_topology_key_reaches_the_instance():
    _, b = _line(7)
    assert b.cfg.flood_pacing == pytest.approx(0.007)


def test_crossing_floods_need_no_retransmission():
    """Two neighbors flooding the same instance to each other: the one whose copy was still
    in its flood queue sends a delayed ack instead of taking the other's as an implied
    acknowledgment (the other would have waited for a RxmtInterval)."""
    sim = Simulation(isp_topology(60, 1))
    res = sim.run()
    assert res.converged
    assert sum(i.counters.get("retransmissions", 0) for i in sim.ospf.values()) == 0
    assert all(sim.ribs[r] == sim.igp.rib(r) for r in sim.routers)

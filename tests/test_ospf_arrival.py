"""MinLSArrival (RFC 2328 §13 step 5a) around adjacencies coming up.

Found against FRR's ospfd: when a router that has been quiet for a while reaches
Full, it originates a new router-LSA at once (MinLSInterval has long passed),
but its neighbour installed the previous instance a few milliseconds earlier,
in the database exchange. A neighbour that applies MinLSArrival to that copy
drops the new instance, and the route over the new adjacency waits a
RxmtInterval (5 s) for the retransmission. FRR does; so did we. FRR also
originates two instances a millisecond apart when two adjacencies reach Full
together.

Ours now
1. applies MinLSArrival only to copies received by flooding, not to ones that
   came with a database exchange (5a: "the database copy was received via
   flooding");
2. defers a too-early instance to the moment MinLSArrival has passed instead of
   discarding it and waiting for the neighbour's retransmission;
3. holds back a new instance for a neighbour it sent the previous instance to
   less than MinLSArrival ago, sending it once that neighbour will take it, so
   a peer with the literal rule (FRR) is not left waiting for a retransmission.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from lsr.core.topology import parse_topology
from lsr.sim import OSPF, Simulation
from ospf import events as ev
from ospf.config import from_topology
from ospf.fsm import NbrState
from ospf.instance import OspfInstance
from ospf.lsdb import Entry
from ospf.packets import (
    ALL_SPF_ROUTERS,
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

PAIR = """
name: pair
topology:
  nodes: {a: {loopback: 10.255.0.1}, b: {loopback: 10.255.0.2}}
  links: [{endpoints: [a:eth1, b:eth1]}]
"""


class LiteralArrival(OspfInstance):
    """MinLSArrival on every database copy, as FRR's ospfd applies it."""

    def _too_soon(self, e: Entry) -> bool:
        return self.now - e.installed < self.cfg.min_ls_arrival


def _late_peer(a_cls: type[OspfInstance], b_cls: type[OspfInstance]) -> tuple[Simulation, float]:
    """a runs from t=0; b starts 10 s later (a restarted process, a daemon started late).
    Returns the simulation once both RIBs equal the reference, and the time that took
    after both ends reached Full."""
    topo = parse_topology(PAIR)
    sim = Simulation(topo)
    sim.ospf = {"a": a_cls(from_topology(topo, "a")), "b": b_cls(from_topology(topo, "b"))}
    sim.start()
    sim._deliver("b" + OSPF, ev.Stop())  # b silent from the start
    sim.advance(10.3)
    sim.ospf["b"] = b_cls(from_topology(topo, "b"))
    sim._deliver("b" + OSPF, ev.Start())
    full_at = None
    while sim.now < 60:
        sim.advance(0.01)
        if full_at is None and all(i.full_neighbors() == 1 for i in sim.ospf.values()):
            full_at = sim.now
        if full_at is not None and all(sim.ribs[r] == sim.igp.rib(r) for r in sim.routers):
            return sim, sim.now - full_at
    raise AssertionError(f"no convergence: {sim.ospf_summary()}")


@pytest.mark.parametrize("b_cls", [OspfInstance, LiteralArrival], ids=["ours", "literal-peer"])
def test_routes_follow_full_without_waiting_for_a_retransmission(b_cls):
    sim, took = _late_peer(OspfInstance, b_cls)
    assert took < 1.2, took  # MinLSArrival + a margin at most; 5 s (RxmtInterval) before
    assert sim.ospf["a"].counters.get("drop-min-ls-arrival", 0) == 0
    assert sim.ospf["b"].counters.get("drop-min-ls-arrival", 0) == 0
    assert sim.ospf["a"].counters.get("retransmissions", 0) == 0


def test_literal_peers_wait_for_the_retransmission():
    """The case itself: both routers with the literal rule, discarding, not holding back."""

    class Old(LiteralArrival):
        def _defer(self, i, lsa, when):  # type: ignore[no-untyped-def]
            self._count("drop-min-ls-arrival")

        def _arrival_wait(self, n, key):  # type: ignore[no-untyped-def]
            return 0.0

    sim, took = _late_peer(Old, Old)
    assert took > 4.5, took
    assert sum(i.counters.get("drop-min-ls-arrival", 0) for i in sim.ospf.values()) >= 1


def test_held_instance_goes_out_once_the_neighbor_will_take_it():
    """Instance-level: a new instance of an LSA sent to the neighbor 0.1 s ago is not
    sent now but on the 'early' timer, MinLSArrival after the first send."""
    sim, _ = _late_peer(OspfInstance, OspfInstance)
    a = sim.ospf["a"]
    i = next(iter(a.ifaces.values()))
    n = i.nbr
    assert n is not None and n.state == NbrState.FULL
    now = sim.now + 0.1
    key = next(k for k, _ in a.lsdb.entries() if k.adv_router == a.rid)
    n.sent[key] = now - 0.1
    a._last_origination = None
    acts = a.handle(ev.SetLinkMetric(i.name, 50), now)  # a new router-LSA
    assert not [x for x in acts if isinstance(x, ev.SendPacket)]
    early = [x for x in acts if isinstance(x, ev.StartTimer) and x.timer == f"early:{i.name}"]
    assert early and 0.4 < early[0].seconds < 0.6
    acts = a.handle(ev.TimerExpired(early[0].timer), now + early[0].seconds)
    assert [x for x in acts if isinstance(x, ev.SendPacket)]
    assert key in n.retransmit  # still reliable: acknowledged or retransmitted


@pytest.mark.parametrize("packets", [1, 2], ids=["one-update", "two-updates"])
def test_instances_a_millisecond_apart_are_both_taken(packets):
    """FRR floods seq N and N+1 of its router-LSA a millisecond apart (in one Update or two)
    when two adjacencies reach Full together: N is installed, N+1 deferred and installed
    and acknowledged MinLSArrival later, with no retransmission from the neighbor."""
    sim, _ = _late_peer(OspfInstance, OspfInstance)
    a, b = sim.ospf["a"], sim.ospf["b"]
    i = next(iter(a.ifaces.values()))
    key = next(k for k, _ in a.lsdb.entries() if k.adv_router == b.rid)
    seq = a.lsdb.get(key).lsa.header.seq
    stub = RouterLink(IPv4Address("192.0.2.0"), IPv4Address("255.255.255.0"), 3, 1)
    old, new = (Lsa.build(LsType.ROUTER, b.rid, b.rid, seq + k, RouterLsaBody(0, (stub,) * k))
                for k in (1, 2))
    updates = [(old, new)] if packets == 1 else [(old,), (new,)]
    now = sim.now + 2
    acts = []
    for k, lsas in enumerate(updates):
        data = encode_packet(Packet(b.rid, IPv4Address(0), LsUpdate(lsas)))
        acts += a.handle(ev.PacketReceived(i.name, i.nbr.address, ALL_SPF_ROUTERS, data),
                         now + 0.001 * k)
    assert a.lsdb.get(key).lsa.header.seq == seq + 1
    timer = [x for x in acts if isinstance(x, ev.StartTimer) and x.timer == "arrival"][-1]
    assert 0.45 < timer.seconds <= 0.5
    assert a.pending_work()  # the simulator waits for it
    later = a.handle(ev.TimerExpired("arrival"), now + 0.001 * (packets - 1) + timer.seconds)
    assert a.lsdb.get(key).lsa.header.seq == seq + 2
    acked = [h.seq for x in acts + later if isinstance(x, ev.SendPacket)
             for p in [decode_packet(x.data)] if isinstance(p.body, LsAck) for h in p.body.headers]
    assert acked == [seq + 1, seq + 2]

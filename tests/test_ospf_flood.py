"""Spoofed OSPF Hellos: a point-to-point link keeps its one neighbor, new neighbors are
rate-limited (no Hello sent back per spoofed packet), host ports run no OSPF."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

from lsr.core.topology import load_topology
from lsr.sim import Simulation
from ospf import events as ev
from ospf.config import from_topology
from ospf.instance import NEW_NBR_BURST, NEW_NBR_RATE, OspfInstance
from ospf.packets import Hello, Packet, encode_packet

from .conftest import TOPOLOGIES

ALL_SPF = IPv4Address("224.0.0.5")
MASK = IPv4Address("255.255.255.252")


def spoofed_hello(rng: random.Random) -> bytes:
    rid = IPv4Address(rng.randrange(0x0B000001, 0x0BFFFFFE))
    return encode_packet(Packet(rid, IPv4Address(0), Hello(MASK, 10, 2, 1, 40, IPv4Address(0),
                                                           IPv4Address(0), ())))


def settled() -> Simulation:
    sim = Simulation(load_topology(TOPOLOGIES / "line3.yaml"))
    assert sim.run(max_time=300).converged
    return sim


def test_full_neighbor_survives_a_hello_flood_on_its_link():
    sim = settled()
    p1 = sim.ospf["p1"]
    before = {i: n.nbr.router_id for i, n in p1.ifaces.items()}
    rng = random.Random(3)
    hellos_out = 0
    for k in range(2000):  # 400 a second for 5 s on eth1, where pe1 is Full
        acts = p1.handle(ev.PacketReceived("eth1", IPv4Address("12.0.0.1"), ALL_SPF,
                                           spoofed_hello(rng)), sim.now + k / 400)
        hellos_out += sum(isinstance(a, ev.SendPacket) for a in acts)
    assert {i: n.nbr.router_id for i, n in p1.ifaces.items()} == before
    assert p1.full_neighbors() == 2
    assert p1.counters["drop-hello-second-neighbor"] == 2000
    assert hellos_out == 0  # no Hello back per spoofed one


def test_new_neighbors_rate_limited_without_an_established_one():
    """With nobody 2-Way on the link yet, each spoofed Router ID would make a new Init
    neighbor and a Hello back: at most NEW_NBR_RATE a second (after a burst)."""
    topo = load_topology(TOPOLOGIES / "line3.yaml")
    p1 = OspfInstance(from_topology(topo, "p1"))
    p1.handle(ev.Start(), 0.0)
    rng = random.Random(5)
    hellos_out = 0
    for k in range(4000):  # 400 a second for 10 s
        acts = p1.handle(ev.PacketReceived("eth1", IPv4Address("12.0.0.1"), ALL_SPF,
                                           spoofed_hello(rng)), k / 400)
        hellos_out += sum(isinstance(a, ev.SendPacket) for a in acts)
    limit = NEW_NBR_BURST + NEW_NBR_RATE * 10 + 1
    assert hellos_out <= limit
    assert p1.counters["drop-hello-neighbor-rate"] >= 4000 - limit


def test_host_ports_are_passive():
    topo = load_topology(TOPOLOGIES / "line3.yaml")
    cfg = from_topology(topo, "pe1")
    assert [(i.name, i.passive) for i in cfg.interfaces] == [("eth1", True), ("eth2", False)]
    sim = settled()
    pe1 = sim.ospf["pe1"]
    pe1.handle(ev.PacketReceived("eth1", IPv4Address("192.168.1.1"), ALL_SPF,
                                 spoofed_hello(random.Random(1))), sim.now)
    assert pe1.counters["drop-not-ospf-interface"] == 1
    assert pe1.full_neighbors() == 1

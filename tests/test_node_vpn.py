"""The lab PE's VPN layer (`lsr.lab.node_vpn`) without sockets: given the Loc-RIB and the
LFIB the simulator's routers converge to, it composes the simulator's VRF tables, swaps
them into the forwarding tables, exports what the simulator exports, and follows a
customer link going down."""

from __future__ import annotations

import asyncio
import collections
from types import SimpleNamespace
from typing import Any

from bgp.nlri import IPV4_VPN
from forwarding.tables import RouterTables
from lsr.core.lfib import Lfib
from lsr.core.topology import load_topology
from lsr.lab.node_vpn import NodeVpn
from lsr.sim import converge
from tests.conftest import TOPOLOGIES

TOPO = TOPOLOGIES / "l3vpn.yaml"


class FakeBgp:
    """What NodeVpn uses of NodeBgp: the instance, listeners, originate / withdraw."""

    def __init__(self, inst: Any) -> None:
        self.inst = inst
        self.listeners: list = []
        self.sent: list[tuple[str, Any]] = []

    def originate(self, routes: tuple) -> None:
        self.sent.append(("originate", routes))

    def withdraw(self, family: Any, nlris: tuple) -> None:
        self.sent.append(("withdraw", (family, nlris)))


def _router(sim: Any, name: str, loop: asyncio.AbstractEventLoop) -> Any:
    topo = sim.topo
    lf = sim.instances[name].lfib
    lfib = Lfib(dict(lf.ftn), dict(lf.ilm))
    tables = RouterTables.build(topo, name, sim.igp.rib(name), lfib)
    return SimpleNamespace(topo=topo, name=name, node=topo.nodes[name], down_links=set(),
                           lfib=lfib, tables=tables, loop=loop,
                           bgp=FakeBgp(sim.bgp[name]) if name in sim.bgp else None,
                           counters=collections.Counter(), oam=SimpleNamespace(events=[]))


def test_tables_and_exports_are_the_simulators() -> None:
    topo = load_topology(TOPO)
    sim = converge(topo).sim
    loop = asyncio.new_event_loop()
    try:
        for pe in ("pe1", "pe2", "pe3"):
            r = _router(sim, pe, loop)
            v = NodeVpn.maybe(r)
            assert v is not None and r.bgp.listeners == [v._best_changed]
            v.start()
            want = sim.vpn_tables(pe)
            assert v.tables == want
            assert r.lfib.vrfs == want.vrfs and r.lfib.vpn_ilm == want.ilm
            assert r.tables.lfib.vrfs == want.vrfs  # swapped into the dataplane
            assert set(r.tables.ilm) >= set(want.ilm)  # VPN labels compiled
            assert v.answer({}) == sim.vrf_json([pe])["routers"][pe]
            (kind, routes), = r.bgp.sent
            assert kind == "originate"
            assert set(routes) == set(sim._vpn_exported[pe].values())
    finally:
        loop.close()


def test_a_customer_link_down_withdraws_its_route_and_leaves_the_fib() -> None:
    topo = load_topology(TOPO)
    sim = converge(topo).sim
    loop = asyncio.new_event_loop()
    try:
        r = _router(sim, "pe1", loop)
        v = NodeVpn.maybe(r)
        assert v is not None
        v.start()
        red = topo.nodes["pe1"].interfaces["eth1"]
        r.down_links.add(red.link)
        v.links_changed()
        kind, (family, nlris) = r.bgp.sent[-1]
        assert kind == "withdraw" and family == IPV4_VPN
        assert [str(n) for n in nlris] == ["10.255.0.1:1:10.1.1.0/24"]
        assert v.pending  # recomposed on the next turn of the loop, once
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert not v.pending
        assert red.address.network not in v.tables.vrfs["red"]
        assert red.address.network in v.tables.vrfs["blue"]
        assert r.tables.lfib.vrfs == v.tables.vrfs
    finally:
        loop.close()


def test_no_vrfs_no_vpn_layer() -> None:
    topo = load_topology(TOPO)
    sim = converge(topo).sim
    loop = asyncio.new_event_loop()
    try:
        assert NodeVpn.maybe(_router(sim, "p1", loop)) is None
    finally:
        loop.close()

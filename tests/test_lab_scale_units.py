"""A big lab's per-router costs, without a lab (no root): kernel routes synced by
difference, the connected routes a router starts from without an SPF, the idle ring
check (docs/scale.md, "A big lab on one machine"; the lab itself: test_lab_scale_netns)."""

from __future__ import annotations

import mmap
from ipaddress import IPv4Address, IPv4Network

from benchmarks.topogen import isp_topology
from forwarding.afpacket import RingPort
from lsr.core.igp import Igp, Nexthop, Route, connected_routes
from lsr.lab.netns import redo_routes_via, route_commands

P1, P2, P3 = (IPv4Network(p) for p in ("10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"))


def _route(p: IPv4Network, *hops: tuple[str, str]) -> Route:
    return Route(p, 10, tuple(Nexthop("x", i, IPv4Address(a)) for a, i in hops))


def test_only_changed_routes_are_sent_to_the_kernel() -> None:
    rib = {P1: _route(P1, ("10.1.0.2", "eth1")), P2: _route(P2, ("10.1.0.6", "eth2"))}
    cmds, inst = route_commands(rib, set())
    assert len(cmds) == 2
    assert route_commands(rib, inst) == ([], inst)  # nothing changed: no `ip` at all
    rib2 = {P1: rib[P1], P3: _route(P3, ("10.1.0.2", "eth1"), ("10.1.0.6", "eth2"))}
    cmds, inst2 = route_commands(rib2, inst)
    assert cmds == ["route replace 10.0.0.3/32 proto 188 metric 20 nexthop via 10.1.0.2 dev "
                    "eth1 nexthop via 10.1.0.6 dev eth2", "route del 10.0.0.2/32 proto 188 metric 20"]
    # a carrier change on eth1: its routes are sent again (admin down flushed them)
    redo_routes_via(inst2, "eth1")
    cmds, _ = route_commands(rib2, inst2)
    assert len(cmds) == 2 and all("replace" in c for c in cmds)
    # an iterable of prefixes (the old form) still means "all of these are installed"
    assert route_commands(rib, [P1, P2])[0] == [c for c in route_commands(rib, set())[0]]


def test_connected_routes_are_the_igps_without_spf() -> None:
    topo = isp_topology(60)
    igp = Igp(topo)
    for r in ("r0", "r30", "r59"):
        want = {p: x for p, x in igp.rib(r).items() if x.connected}
        got = connected_routes(topo, r)
        assert list(got.items()) == list(want.items())


def _ring(n: int, fs: int = 64) -> RingPort:
    r = object.__new__(RingPort)
    r.ring, r.frame_size, r.nframes, r.index, r._stuck = mmap.mmap(-1, n * fs), fs, n, 0, None
    return r


def test_ring_ready_and_unstick_find_the_next_ready_slot() -> None:
    r = _ring(16)
    assert not r.ready() and r.unstick() == 0
    r.index = 14
    r.ring[3 * 64] = 1  # slot 3 ready, 14 not: stuck only once seen twice, across the wrap
    assert r.unstick() == 0 and r.unstick() == 5 and r.index == 3 and r.ready()


def _lpm(t) -> dict:
    return {plen: {k: repr(a) for k, a in d.items()} for plen, _m, d in t._lpm if d}


def test_tables_follow_a_rib_change_incrementally_as_a_rebuild_would() -> None:
    from forwarding.tables import RouterTables

    topo = isp_topology(60, 3)
    for r in ("r0", "r20", "r55"):
        t = RouterTables.build(topo, r, Igp(topo).rib(r))
        for down in ([1], [1, 5, 9], [], [0, 2, 30, 31]):
            rib = Igp(topo, down).rib(r)
            t.set_rib(rib)
            fresh = RouterTables.build(topo, r, rib)
            assert _lpm(t) == _lpm(fresh), (r, down)
            assert t.lookup(int(next(iter(rib)).network_address)) is not None

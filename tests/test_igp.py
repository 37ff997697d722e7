"""IGP: RIBs against an independent shortest-path computation (networkx)."""

from __future__ import annotations

from ipaddress import IPv4Network

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.topogen import random_topology
from lsr.core.igp import Igp
from lsr.core.topology import load_topology
from tests.conftest import TOPOLOGIES


def oracle_nexthop_links(topo, down=()):
    """(router, dest router) -> (distance, set of first-hop link indexes), from networkx.

    A link l = (R, N) is a first hop to D exactly when cost(l) + d(N, D) == d(R, D).
    """
    g = nx.Graph()
    g.add_nodes_from(r.name for r in topo.routers)
    for lk in topo.links:
        a, b = lk.nodes
        if lk.index in down or not (topo.nodes[a].is_router and topo.nodes[b].is_router):
            continue
        w = lk.cost
        if g.has_edge(a, b):
            w = min(w, g[a][b]["weight"])
        g.add_edge(a, b, weight=w)
    dist = dict(nx.all_pairs_dijkstra_path_length(g))
    out = {}
    for r in g.nodes:
        for d, drd in dist[r].items():
            links = set()
            for lk in topo.links:
                if lk.index in down or r not in lk.nodes:
                    continue
                nb = lk.other(r)[0]
                if not topo.nodes[nb].is_router or nb == r:
                    continue
                if d in dist[nb] and lk.cost + dist[nb][d] == drd:
                    links.add(lk.index)
            out[(r, d)] = (drd, links)
    return out


def check_against_oracle(topo, down=()):
    igp = Igp(topo, down)
    oracle = oracle_nexthop_links(topo, down)
    prefixes = topo.prefixes()
    down_subnets = {topo.links[i].subnet for i in down}
    for r in topo.routers:
        rib = igp.rib(r.name)
        for prefix, owners in prefixes.items():
            if prefix in down_subnets:
                assert prefix not in rib
                continue
            if any(o == r.name for o, _ in owners):
                assert rib[prefix].metric == 0 and rib[prefix].nexthops == ()
                continue
            cands = [(oracle[(r.name, o)][0] + c, o) for o, c in owners if (r.name, o) in oracle]
            best = min(m for m, _ in cands)
            links = set().union(*(oracle[(r.name, o)][1] for m, o in cands if m == best))
            route = rib[prefix]
            assert route.metric == best, (r.name, prefix)
            got = {(nh.neighbor, nh.interface) for nh in route.nexthops}
            want = {(topo.links[i].other(r.name)[0], topo.links[i].end(r.name)[1]) for i in links}
            assert got == want, (r.name, prefix, got, want)
            for nh in route.nexthops:
                assert topo.node_of_address(nh.address).name == nh.neighbor


def test_bundled_topologies_match_oracle():
    for f in sorted(TOPOLOGIES.glob("*.yaml")):
        check_against_oracle(load_topology(f))


def test_diamond_ecmp_exact():
    t = load_topology(TOPOLOGIES / "diamond.yaml")
    route = Igp(t).rib("pe1")[IPv4Network("10.255.0.4/32")]
    assert route.metric == 20
    assert [nh.neighbor for nh in route.nexthops] == ["p1", "p2"]


def test_unequal_prefers_cheaper_longer_path():
    t = load_topology(TOPOLOGIES / "unequal.yaml")
    route = Igp(t).rib("pe1")[IPv4Network("10.255.0.4/32")]
    assert route.metric == 30
    assert [(nh.neighbor, nh.interface) for nh in route.nexthops] == [("p1", "eth2")]


def test_link_down_reroutes_and_withdraws_subnet():
    t = load_topology(TOPOLOGIES / "diamond.yaml")
    pe1_p1 = next(lk.index for lk in t.links if set(lk.nodes) == {"pe1", "p1"})
    igp = Igp(t, down=[pe1_p1])
    route = igp.rib("pe1")[IPv4Network("10.255.0.4/32")]
    assert [nh.neighbor for nh in route.nexthops] == ["p2"]
    assert t.links[pe1_p1].subnet not in igp.rib("pe1")
    check_against_oracle(t, down=[pe1_p1])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 14), extra=st.integers(0, 14), seed=st.integers(0, 10**6))
def test_random_graphs_match_oracle(n, extra, seed):
    check_against_oracle(random_topology(n, extra, seed, max_cost=3, hosts=2))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(3, 10), extra=st.integers(1, 10), seed=st.integers(0, 10**6),
       which=st.integers(0, 100))
def test_random_graphs_with_a_link_down(n, extra, seed, which):
    t = random_topology(n, extra, seed, max_cost=3)
    idx = which % len(t.links)
    g = t.graph().copy()
    g.remove_edge(*t.links[idx].nodes, key=idx)
    if not nx.is_connected(g):
        return
    check_against_oracle(t, down=[idx])

"""The IGP: SPF with exact ECMP over the topology's link-state graph.

Every router computes shortest paths over the same graph, as a link-state IGP
with a synchronised LSDB would. SPF keeps, for each destination router, the
set of first-hop links on *all* shortest paths, so ECMP next-hop sets are
exact. Pure code: no sockets, no clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from lsr.core.prefix import prefix as interned
from lsr.core.topology import Topology


# slots: a large simulation holds a Route per router and prefix (millions of them)
@dataclass(frozen=True, order=True, slots=True)
class Nexthop:
    """An IGP next hop: the neighbour router, our interface to it, its address."""

    neighbor: str
    interface: str
    address: IPv4Address

    def to_json(self) -> dict[str, str]:
        return {"neighbor": self.neighbor, "interface": self.interface, "nexthop": str(self.address)}


@dataclass(frozen=True, slots=True)
class Route:
    prefix: IPv4Network
    metric: int
    nexthops: tuple[Nexthop, ...]  # sorted; empty for the router's own prefixes

    @property
    def connected(self) -> bool:
        return not self.nexthops

    def to_json(self) -> dict:
        return {
            "prefix": str(self.prefix),
            "metric": self.metric,
            "nexthops": [nh.to_json() for nh in self.nexthops],
        }


# SPF result: destination router -> (distance, first-hop link indexes)
SpfResult = dict[str, tuple[int, frozenset[int]]]


def adjacency(topo: Topology, down: Iterable[int] = ()) -> dict[str, list[tuple[str, int, int]]]:
    """router -> [(neighbour, cost, link index)] over links that are up."""
    down = set(down)
    g = topo.graph()
    adj: dict[str, list[tuple[str, int, int]]] = {n: [] for n in g.nodes}
    for u, v, key, data in g.edges(keys=True, data=True):
        if key in down:
            continue
        adj[u].append((v, data["cost"], key))
        adj[v].append((u, data["cost"], key))
    for lst in adj.values():
        lst.sort()
    return adj


def spf(adj: dict[str, list[tuple[str, int, int]]], source: str) -> SpfResult:
    """Dijkstra from `source`, keeping every equal-cost first hop.

    Costs are positive integers, so a node can only gain an equal-cost path
    before it is settled; ties are merged exactly. First-hop sets are
    immutable and shared between nodes until a tie forces a union.
    """
    dist: dict[str, int] = {source: 0}
    first: dict[str, frozenset[int]] = {source: frozenset()}
    done: set[str] = set()
    heap: list[tuple[int, str]] = [(0, source)]
    push, pop = heapq.heappush, heapq.heappop
    while heap:
        d, u = pop(heap)
        if u in done:
            continue
        done.add(u)
        fu = first[u]
        at_source = u == source
        for v, cost, link in adj[u]:
            nd = d + cost
            dv = dist.get(v)
            if dv is None or nd < dv:
                dist[v] = nd
                first[v] = frozenset((link,)) if at_source else fu
                push(heap, (nd, v))
            elif nd == dv and v not in done:
                hops = frozenset((link,)) if at_source else fu
                if not hops <= first[v]:
                    first[v] = first[v] | hops
    return {n: (dist[n], first[n]) for n in dist}


def connected_routes(topo: Topology, router: str) -> dict[IPv4Network, Route]:
    """The routes `Igp(topo).rib(router)` has without a next hop (own loopback, connected
    subnets), in the same order, without any SPF: all a router running OSPF starts from."""
    return {interned(p): Route(interned(p), 0, ()) for p, owners in topo.prefixes().items()
            if any(o == router for o, _ in owners)}


class Igp:
    """All routers' SPF and RIBs for one topology state (set of links down)."""

    def __init__(self, topo: Topology, down: Iterable[int] = ()) -> None:
        self.topo = topo
        self.down = frozenset(down)
        self.adj = adjacency(topo, self.down)
        self._spf: dict[str, SpfResult] = {}
        self._prefixes = {interned(p): owners for p, owners in topo.prefixes().items()}
        self._ribs: dict[str, dict[IPv4Network, Route]] = {}
        # A link subnet is withdrawn by its routers while the link is down.
        self._down_subnets = {topo.links[i].subnet for i in self.down}

    def spf(self, router: str) -> SpfResult:
        if router not in self._spf:
            self._spf[router] = spf(self.adj, router)
        return self._spf[router]

    def nexthop_of_link(self, router: str, link_index: int) -> Nexthop:
        link = self.topo.links[link_index]
        my_if = link.end(router)[1]
        pn, pi = link.other(router)
        return Nexthop(pn, my_if, self.topo.interface(pn, pi).address.ip)

    def rib(self, router: str) -> dict[IPv4Network, Route]:
        """prefix -> Route for every reachable prefix of the topology."""
        if router in self._ribs:
            return self._ribs[router]
        res = self.spf(router)
        routes: dict[IPv4Network, Route] = {}
        nh_cache: dict[frozenset[int], tuple[Nexthop, ...]] = {}
        for prefix, owners in self._prefixes.items():
            if prefix in self._down_subnets:
                continue
            if any(o == router for o, _ in owners):
                routes[prefix] = Route(prefix, 0, ())  # own loopback or connected subnet
                continue
            best: int | None = None
            links: frozenset[int] = frozenset()
            for owner, extra in owners:
                if owner == router or owner not in res:
                    continue
                d = res[owner][0] + extra
                if best is None or d < best:
                    best, links = d, res[owner][1]
                elif d == best:
                    links = links | res[owner][1]
            if best is None or not links:
                continue
            nhs = nh_cache.get(links)
            if nhs is None:
                nhs = nh_cache[links] = tuple(sorted(self.nexthop_of_link(router, li) for li in links))
            routes[prefix] = Route(prefix, best, nhs)
        self._ribs[router] = routes
        return routes

    def ribs(self) -> dict[str, dict[IPv4Network, Route]]:
        return {r.name: self.rib(r.name) for r in self.topo.routers}


def rib_json(igp: Igp, routers: Iterable[str]) -> dict:
    """JSON shape of `lsr igp routes --json` (docs/cli.md)."""
    return {
        "routers": {
            r: {"routes": [route.to_json() for route in igp.rib(r).values()]} for r in routers
        }
    }

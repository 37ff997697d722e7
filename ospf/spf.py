"""The shortest-path tree of area 0 from the LSDB (RFC 2328 §16.1) with exact ECMP.

Stage 1 runs Dijkstra over router vertices (and transit-network vertices, if any
network-LSA is present), following a link only when the far end links back
(§16.1 step 2b, the bidirectional check). Next hops are sets: a vertex reached
by several equal-cost paths keeps the union of its parents' next hops (§16.1.1).
Stage 2 adds stub networks (§16.1 step 2 for type-3 links). Pure code.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network

from lsr.core.igp import Nexthop, Route
from ospf.lsdb import Lsdb
from ospf.packets import MAX_AGE, LinkType, LsaKey, LsType, NetworkLsaBody, RouterLsaBody

# A first hop out of the root: (our interface name, the neighbor's address, its router ID).
FirstHop = tuple[str, IPv4Address, IPv4Address]
Vertex = tuple[int, IPv4Address]  # (LsType.ROUTER | LsType.NETWORK, vertex ID)
LS_INFINITY = 0xFFFF


def _body(lsdb: Lsdb, v: Vertex) -> RouterLsaBody | NetworkLsaBody | None:
    kind, vid = v
    if kind == LsType.ROUTER:
        e = lsdb.get(LsaKey(LsType.ROUTER, vid, vid))
    else:
        e = _network_lsa(lsdb, vid)
    if e is None or e.lsa.header.age >= MAX_AGE:
        return None
    b = e.lsa.body
    return b if isinstance(b, RouterLsaBody | NetworkLsaBody) else None


def _network_lsa(lsdb: Lsdb, dr_addr: IPv4Address):  # type: ignore[no-untyped-def]
    for key, e in lsdb.entries():
        if key.ls_type == LsType.NETWORK and key.ls_id == dr_addr:
            return e
    return None


def _edges(lsdb: Lsdb, v: Vertex) -> list[tuple[Vertex, int, IPv4Address]]:
    """(neighbor vertex, cost, link data) for each transit link of `v`."""
    b = _body(lsdb, v)
    out: list[tuple[Vertex, int, IPv4Address]] = []
    if isinstance(b, RouterLsaBody):
        for ln in b.links:
            if ln.type in (LinkType.POINT_TO_POINT, LinkType.VIRTUAL):
                out.append(((LsType.ROUTER, ln.link_id), ln.metric, ln.link_data))
            elif ln.type == LinkType.TRANSIT:
                out.append(((LsType.NETWORK, ln.link_id), ln.metric, ln.link_data))
    elif isinstance(b, NetworkLsaBody):
        for r in b.routers:
            out.append(((LsType.ROUTER, r), 0, IPv4Address(0)))
    return out


def _links_back(lsdb: Lsdb, w: Vertex, v: Vertex) -> bool:
    return any(x == v for x, _, _ in _edges(lsdb, w))


def spf(lsdb: Lsdb, root: IPv4Address,
        first_hops: Callable[[IPv4Address, IPv4Address], list[FirstHop]]
        ) -> dict[Vertex, tuple[int, frozenset[FirstHop]]]:
    """Dijkstra from `root`. `first_hops(nbr_id, our_link_data)` says which interfaces and
    neighbor addresses reach a directly connected router over the link whose Link Data
    in our router-LSA is `our_link_data` (empty if no such Full neighbor)."""
    src: Vertex = (LsType.ROUTER, root)
    dist: dict[Vertex, int] = {src: 0}
    hops: dict[Vertex, frozenset[FirstHop]] = {src: frozenset()}
    done: set[Vertex] = set()
    heap: list[tuple[int, Vertex]] = [(0, src)]
    while heap:
        d, v = heapq.heappop(heap)
        if v in done:
            continue
        done.add(v)
        for w, cost, link_data in _edges(lsdb, v):
            if w in done:
                continue
            if _body(lsdb, w) is None or not _links_back(lsdb, w, v):
                continue
            nd = d + cost
            if v == src:
                h = frozenset(first_hops(w[1], link_data)) if w[0] == LsType.ROUTER else frozenset()
                if not h:
                    continue
            else:
                h = hops[v]
            dw = dist.get(w)
            if dw is None or nd < dw:
                dist[w], hops[w] = nd, h
                heapq.heappush(heap, (nd, w))
            elif nd == dw:
                hops[w] = hops[w] | h
    return {v: (dist[v], hops[v]) for v in done}


def routes(lsdb: Lsdb, root: IPv4Address,
           first_hops: Callable[[IPv4Address, IPv4Address], list[FirstHop]],
           name_of: Mapping[IPv4Address, str]) -> dict[IPv4Network, Route]:
    """Stage 2: every stub network reachable through the tree -> Route. Our own stubs are
    connected routes (metric 0, no next hop), as the reference IGP model has them."""
    tree = spf(lsdb, root, first_hops)
    best: dict[IPv4Network, tuple[int, frozenset[FirstHop]]] = {}
    own: set[IPv4Network] = set()
    for v, (d, h) in tree.items():
        b = _body(lsdb, v)
        if v[0] == LsType.NETWORK and isinstance(b, NetworkLsaBody):
            net = IPv4Network(f"{v[1]}/{b.mask}", strict=False)
            _better(best, net, d, h)
            continue
        if not isinstance(b, RouterLsaBody):
            continue
        for ln in b.links:
            if ln.type != LinkType.STUB:
                continue
            net = IPv4Network(f"{ln.link_id}/{ln.link_data}", strict=False)
            if v[1] == root:
                own.add(net)
            elif ln.metric < LS_INFINITY:
                _better(best, net, d + ln.metric, h)
    out: dict[IPv4Network, Route] = {}
    for net in own:
        out[net] = Route(net, 0, ())
    for net, (d, h) in best.items():
        if net in own or not h:
            continue
        nhs = tuple(sorted(Nexthop(name_of.get(rid, str(rid)), ifname, addr)
                           for ifname, addr, rid in h))
        out[net] = Route(net, d, nhs)
    return dict(sorted(out.items(), key=lambda kv: (int(kv[0].network_address),
                                                      kv[0].prefixlen)))


def _better(best: dict[IPv4Network, tuple[int, frozenset[FirstHop]]], net: IPv4Network,
            d: int, h: frozenset[FirstHop]) -> None:
    cur = best.get(net)
    if cur is None or d < cur[0]:
        best[net] = (d, h)
    elif d == cur[0]:
        best[net] = (d, cur[1] | h)

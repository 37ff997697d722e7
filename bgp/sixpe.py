"""6PE (RFC 4798) over the speaker's hooks: what a PE originates, what it forwards on.

IPv6 customers on PEs of an IPv4 MPLS core. BGP's part, pure functions of the topology
and the Loc-RIB:

* `export_routes`: each IPv6 subnet of the router's customer links (`subnet6`) as a
  labelled IPv6 route (AFI 2 / SAFI 4, RFC 8277 NLRI) with the router's 6PE label
  (`lsr.core.ipv6.sixpe_label`: pop it, look the IPv6 packet up; RFC 4798 §3) or, with
  `ipv6_explicit_null` (bgp router key), the IPv6 Explicit Null label 2. The next hop is
  our loopback, which the codec sends as the IPv4-mapped IPv6 address ::ffff:a.b.c.d
  (RFC 4798 §2, `bgp.nlri.encode_next_hop`). Handed to the speaker as `Originate`.
* `fib6`: BGP's best labelled IPv6 paths over LDP's FTN (`lsr.core.fib6.compose`): the
  ingress pushes [6PE label, LDP label to the BGP next hop] (RFC 4798 §3); a path whose
  next hop is no IPv4-mapped address has no IPv4 LSP and is left unresolved.

The drivers (the simulator, a lab router) originate once BGP has started, originate or
withdraw a port's subnet when its link comes up or goes down (`export_diff`: as a
router's `network` statement follows its connected route), and recompose the Fib6
whenever a labelled IPv6 best path or the FTN changes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from bgp.events import LocalRoute
from bgp.nlri import IPV6_LABELLED, Family, Nlri
from bgp.rib import Path
from lsr.core.fib6 import Fib6, compose
from lsr.core.ipv6 import sixpe_label
from lsr.core.labels import IMPLICIT_NULL, IPV6_EXPLICIT_NULL
from lsr.core.lfib import FtnEntry
from lsr.core.topology import Topology


def enabled(topo: Topology, router: str, families: tuple[Family, ...]) -> bool:
    """The router is a 6PE PE: it has IPv6 customer links and BGP carries labelled IPv6."""
    return IPV6_LABELLED in families and advertised_label(topo, router) is not None


def advertised_label(topo: Topology, router: str, explicit_null: bool = False) -> int | None:
    """The label the router binds to its IPv6 prefixes (None: not a 6PE router). An FRR
    node stands for FRR 8.4's bgpd, which binds Implicit Null to labelled-unicast routes it
    originates (its "enforced penultimate hop popping", docs/interop.md)."""
    node = topo.nodes[router]
    if node.kind == "frr" and prefixes(topo, router):
        return IMPLICIT_NULL
    label = sixpe_label(node)
    if label is None:
        return None
    return IPV6_EXPLICIT_NULL if explicit_null else label


def prefixes(topo: Topology, router: str, down: Collection[int] = ()) -> tuple[IPv6Network, ...]:
    """The IPv6 subnets of the router's customer links in the global table, sorted (a
    VRF's go out as VPN-IPv6, `bgp.vpn`); with `down`, of the links not in it."""
    nets = {i.address6.network for i in topo.nodes[router].interfaces.values()
            if i.address6 is not None and i.vrf is None and i.link not in down}
    return tuple(sorted(nets, key=lambda n: (int(n.network_address), n.prefixlen)))


def export_routes(topo: Topology, router: str, explicit_null: bool = False,
                  down: Collection[int] = ()) -> tuple[LocalRoute, ...]:
    """The labelled IPv6 routes `router` originates (module docstring): of its ports
    whose link is up."""
    label = advertised_label(topo, router, explicit_null)
    if label is None:
        return ()
    return tuple(LocalRoute(IPV6_LABELLED, Nlri(p), label)
                 for p in prefixes(topo, router, down))


def export_diff(have: Collection[Nlri], routes: tuple[LocalRoute, ...]
                ) -> tuple[frozenset[Nlri], tuple[Nlri, ...], tuple[LocalRoute, ...]]:
    """(what is originated now, what to withdraw, what to originate) when `have` was
    originated before and `routes` is what should be."""
    want = frozenset(r.nlri for r in routes)
    gone = tuple(sorted((n for n in have if n not in want), key=_order))
    return want, gone, tuple(r for r in routes if r.nlri not in have)


def fib6(topo: Topology, router: str, loc_rib: Mapping[tuple[Family, Nlri], Path],
         ftn: Mapping[IPv4Network, FtnEntry], explicit_null: bool = False) -> Fib6:
    """The router's IPv6 forwarding state from BGP's best paths and LDP's FTN."""
    names = {n.loopback: n.name for n in topo.routers if n.loopback is not None}
    paths: list[tuple[IPv6Network, IPv4Address, int]] = []
    odd: dict[IPv6Network, str] = {}
    for (family, nlri), p in sorted(loc_rib.items(), key=lambda kv: _order(kv[0][1])):
        if family != IPV6_LABELLED or p.local or p.label is None \
                or not isinstance(nlri.prefix, IPv6Network):
            continue
        if isinstance(p.next_hop, IPv4Address):
            paths.append((nlri.prefix, p.next_hop, p.label))
        else:  # RFC 4798 §2: the egress's IPv4 address, mapped; anything else has no LSP
            odd[nlri.prefix] = f"next hop {p.next_hop} is not IPv4-mapped (no IPv4 LSP)"
    own = advertised_label(topo, router, explicit_null)
    labels = (own,) if own is not None and own not in (IPV6_EXPLICIT_NULL, IMPLICIT_NULL) else ()
    out = compose(paths, ftn, labels, names)
    out.unresolved.update(odd)
    return out


def _order(n: Nlri) -> tuple[int, int]:
    return (int(n.prefix.network_address), n.prefix.prefixlen)

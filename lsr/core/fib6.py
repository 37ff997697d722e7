"""The IPv6 forwarding state of a 6PE router (RFC 4798): the contract between the control
plane (BGP's labelled IPv6 routes over LDP's LSPs) and the dataplane (`forwarding.tables6`).

* `Route6`: an IPv6 prefix reached through an egress 6PE router: the BGP next hop (the
  egress's IPv4 loopback, carried as ::ffff:a.b.c.d, RFC 4798 §2), the label it bound to
  the prefix (its 6PE label, IPv6 Explicit Null 2, or Implicit Null 3 from a peer that
  sends one), and the NHLFEs to push: for each LDP next hop towards the BGP next hop, the
  LDP label(s) with the 6PE label under them (RFC 4798 §3: [6PE label, LDP label], the
  LDP label on top; Implicit Null pushes nothing).
* `Fib6`: every such route, the labels this router popped for its own prefixes (its 6PE
  label: pop, IPv6 lookup) and the prefixes BGP has but no LSP serves (RFC 4798 §3: the
  ingress forwards IPv6 only over an IPv4-signalled LSP, never unlabelled into the core).

`compose` builds a `Fib6` from BGP's best labelled IPv6 paths and LDP's FTN. Pure data;
the JSON is the `ipv6` part of `lsr sim lfib --json`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from lsr.core.labels import IMPLICIT_NULL
from lsr.core.lfib import FtnEntry, Nhlfe


@dataclass(frozen=True)
class Route6:
    prefix: IPv6Network
    next_hop: IPv4Address
    label: int
    nexthops: tuple[Nhlfe, ...]
    egress: str = ""

    def to_json(self) -> dict:
        return {"prefix": str(self.prefix), "next_hop": str(self.next_hop),
                "egress": self.egress, "label": self.label,
                "nexthops": [n.to_json(False) for n in self.nexthops]}


@dataclass
class Fib6:
    routes: dict[IPv6Network, Route6] = field(default_factory=dict)
    labels: tuple[int, ...] = ()  # our 6PE label(s): pop and look the IPv6 packet up
    unresolved: dict[IPv6Network, str] = field(default_factory=dict)  # prefix -> why not

    def to_json(self) -> dict:
        key = _key
        return {"labels": list(self.labels),
                "routes": [self.routes[p].to_json() for p in sorted(self.routes, key=key)],
                "unresolved": {str(p): self.unresolved[p]
                               for p in sorted(self.unresolved, key=key)}}


def _key(p: IPv6Network) -> tuple[int, int]:
    return (int(p.network_address), p.prefixlen)


def lsp_to(ftn: Mapping[IPv4Network, FtnEntry], addr: IPv4Address) -> FtnEntry | None:
    """LDP's FTN entry for `addr`: the longest prefix of the FTN that holds it."""
    e = ftn.get(IPv4Network((addr, 32)))
    if e is not None:
        return e
    best: FtnEntry | None = None
    for p, f in ftn.items():
        if addr in p and (best is None or p.prefixlen > best.fec.prefixlen):
            best = f
    return best


def compose(paths: Iterable[tuple[IPv6Network, IPv4Address, int]],
            ftn: Mapping[IPv4Network, FtnEntry], labels: tuple[int, ...] = (),
            names: Mapping[IPv4Address, str] | None = None) -> Fib6:
    """The Fib6 for BGP's best paths `(prefix, next hop, label)` over LDP's `ftn`."""
    out = Fib6(labels=labels)
    names = names or {}
    for prefix, nh, label in paths:
        e = lsp_to(ftn, nh)
        if e is None or not e.nexthops:
            out.unresolved[prefix] = f"no LSP to {nh}"
            continue
        bottom = () if label == IMPLICIT_NULL else (label,)
        nhs = tuple(Nhlfe(n.neighbor, n.interface, n.nexthop, n.out_labels + bottom, "push")
                    for n in e.nexthops)
        out.routes[prefix] = Route6(prefix, nh, label, nhs, names.get(nh, ""))
    return out


def fib6_from_json(d: dict) -> Fib6:
    """A Fib6 from its JSON (`Fib6.to_json`: the `ipv6` part of an lfib document).
    Raises ValueError (KeyError, TypeError) on a malformed one."""
    routes = {}
    for e in d.get("routes", []):
        p = IPv6Network(e["prefix"])
        nhs = tuple(Nhlfe(str(n["neighbor"]), str(n["interface"]), IPv4Address(n["nexthop"]),
                          tuple(int(x) for x in n["out_labels"]), "push")
                    for n in e["nexthops"])
        routes[p] = Route6(p, IPv4Address(e["next_hop"]), int(e["label"]), nhs,
                           str(e.get("egress", "")))
    return Fib6(routes, tuple(int(x) for x in d.get("labels", [])),
                {IPv6Network(k): str(v) for k, v in d.get("unresolved", {}).items()})

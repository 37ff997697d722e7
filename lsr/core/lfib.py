"""Label forwarding tables: FTN (FEC -> NHLFEs) and ILM (in-label -> NHLFEs).

RFC 3031 §3.10-3.12. Produced by the LDP label decision engine (`ldp.lde`)
and consumed by the forwarding plane (`forwarding.plane`). One NHLFE per ECMP
next hop. Pure data; the JSON shape is the one of `lsr sim lfib --json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network


@dataclass(frozen=True, order=True)
class Nhlfe:
    """Next Hop Label Forwarding Entry.

    `op` is "push" in the FTN and "swap" or "pop" in the ILM. `out_labels`
    is the stack written in place of the incoming top label (ILM) or pushed
    (FTN), top first: () for a pop / unlabelled FTN next hop (the neighbour
    advertised implicit-null), (0,) for explicit-null.
    """

    neighbor: str
    interface: str
    nexthop: IPv4Address
    out_labels: tuple[int, ...]
    op: str = "push"

    def to_json(self, with_op: bool) -> dict:
        d: dict = {
            "neighbor": self.neighbor,
            "interface": self.interface,
            "nexthop": str(self.nexthop),
            "out_labels": list(self.out_labels),
        }
        if with_op:
            d["op"] = self.op
        return d


@dataclass(frozen=True)
class FtnEntry:
    fec: IPv4Network
    nexthops: tuple[Nhlfe, ...]

    def to_json(self) -> dict:
        return {"fec": str(self.fec), "nexthops": [n.to_json(False) for n in self.nexthops]}


@dataclass(frozen=True)
class IlmEntry:
    in_label: int
    fec: IPv4Network
    nexthops: tuple[Nhlfe, ...]

    def to_json(self) -> dict:
        return {
            "in_label": self.in_label,
            "fec": str(self.fec),
            "nexthops": [n.to_json(True) for n in self.nexthops],
        }


@dataclass(frozen=True)
class LfibDiff:
    """What the LDE asks the dataplane to change (install or remove)."""

    ftn_set: tuple[FtnEntry, ...] = ()
    ftn_del: tuple[IPv4Network, ...] = ()
    ilm_set: tuple[IlmEntry, ...] = ()
    ilm_del: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ftn_set or self.ftn_del or self.ilm_set or self.ilm_del)


@dataclass
class Lfib:
    """A router's FTN and ILM."""

    ftn: dict[IPv4Network, FtnEntry] = field(default_factory=dict)
    ilm: dict[int, IlmEntry] = field(default_factory=dict)

    def apply(self, diff: LfibDiff) -> None:
        for p in diff.ftn_del:
            self.ftn.pop(p, None)
        for e in diff.ftn_set:
            self.ftn[e.fec] = e
        for lbl in diff.ilm_del:
            self.ilm.pop(lbl, None)
        for e in diff.ilm_set:
            self.ilm[e.in_label] = e

    def to_json(self) -> dict:
        return {
            "ftn": [
                self.ftn[p].to_json()
                for p in sorted(self.ftn, key=lambda n: (int(n.network_address), n.prefixlen))
            ],
            "ilm": [self.ilm[k].to_json() for k in sorted(self.ilm)],
        }

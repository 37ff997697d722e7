"""Label forwarding tables: FTN (FEC -> NHLFEs) and ILM (in-label -> NHLFEs).

RFC 3031 §3.10-3.12. Produced by the LDP label decision engine (`ldp.lde`)
and consumed by the forwarding plane (`forwarding.plane`). One NHLFE per ECMP
next hop. Pure data; the JSON shape is the one of `lsr sim lfib --json`.

A PE adds its VPN state (RFC 4364), composed by `lsr.core.vpnfib` from BGP's VPN
routes and LDP's FTN: `vrfs`, a FIB per VRF (prefix -> `VrfEntry`: out a customer
port, or push [transport label(s), VPN label] towards the egress PE), and `vpn_ilm`,
the VPN labels it allocated (`VpnIlmEntry`: pop, then forward to the CE or look up
in the VRF). Both stay out of the JSON of a router that has none. A VRF's FIB holds
IPv6 prefixes too where its ports have IPv6 (6VPE, RFC 4659): same entries, same labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network


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
class VrfEntry:
    """One prefix of a VRF's FIB (RFC 4364 §4.3.3, §5).

    `source`: "connected" (out `interface`, to the station addressed), "static" (to the
    CE in `nexthops`, out_labels ()), "vpn" (learnt from the egress PE `pe`: `nexthops`
    push the transport labels of LDP's FTN for pe/32 then `vpn_label`, top first; the
    transport label is dropped when it is implicit-null) or "leaked" (another VRF of this
    PE, `vrf`, exported it with a target this one imports: its connected `interface` or
    its static `nexthops`)."""

    prefix: IPv4Network | IPv6Network
    source: str
    nexthops: tuple[Nhlfe, ...] = ()
    interface: str = ""
    rd: str = ""
    pe: IPv4Address | None = None
    vpn_label: int | None = None
    route_targets: tuple[str, ...] = ()
    vrf: str = ""

    def to_json(self) -> dict:
        d: dict = {"prefix": str(self.prefix), "source": self.source}
        if self.interface:
            d["interface"] = self.interface
        d["nexthops"] = [n.to_json(False) for n in self.nexthops]
        if self.rd:
            d["rd"] = self.rd
        if self.pe is not None:
            d["pe"] = str(self.pe)
        if self.vpn_label is not None:
            d["vpn_label"] = self.vpn_label
        if self.route_targets:
            d["route_targets"] = list(self.route_targets)
        if self.vrf:
            d["vrf"] = self.vrf
        return d


@dataclass(frozen=True)
class VpnIlmEntry:
    """A VPN label this PE allocated (RFC 4364 §4.3.2): pop it, then send to `nexthops`
    (a per-prefix label of a static route: to its CE, no lookup) or, with no next hops,
    look up the IPv4 destination in `vrf` (a per-VRF label, or a connected prefix's)."""

    in_label: int
    vrf: str
    prefix: IPv4Network | IPv6Network | None = None  # None: the VRF's one label (per-vrf)
    nexthops: tuple[Nhlfe, ...] = ()

    def to_json(self) -> dict:
        return {"in_label": self.in_label, "vrf": self.vrf,
                "prefix": None if self.prefix is None else str(self.prefix),
                "nexthops": [n.to_json(True) for n in self.nexthops]}


def _pkey(n: IPv4Network | IPv6Network) -> tuple[int, int, int]:
    return (n.version, int(n.network_address), n.prefixlen)  # IPv4 first (6VPE: both)


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
    """A router's FTN and ILM; on a PE also its VRFs' FIBs and VPN labels."""

    ftn: dict[IPv4Network, FtnEntry] = field(default_factory=dict)
    ilm: dict[int, IlmEntry] = field(default_factory=dict)
    vrfs: dict[str, dict[IPv4Network | IPv6Network, VrfEntry]] = field(default_factory=dict)
    vpn_ilm: dict[int, VpnIlmEntry] = field(default_factory=dict)

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
        d: dict = {
            "ftn": [self.ftn[p].to_json() for p in sorted(self.ftn, key=_pkey)],
            "ilm": [self.ilm[k].to_json() for k in sorted(self.ilm)],
        }
        if self.vpn_ilm:
            d["vpn_ilm"] = [self.vpn_ilm[k].to_json() for k in sorted(self.vpn_ilm)]
        if self.vrfs:
            d["vrfs"] = {v: [fib[p].to_json() for p in sorted(fib, key=_pkey)]
                         for v, fib in sorted(self.vrfs.items())}
        return d

"""What a lookup resolves to, shared by the IPv4 tables (`forwarding.tables`) and the
IPv6 ones (`forwarding.tables6`): compiled next hops (`CNhlfe`) and LPM results
(`Action`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from lsr.core.lfib import Nhlfe

# LPM action kinds
A_LOCAL = 0  # one of our addresses: deliver
A_CONNECTED = 1  # directly connected subnet: next hop is the destination itself
A_NHLFE = 2  # FTN (push, or unlabelled when out_labels == ()) or RIB route (IP forward)
LPM_CACHE_MAX = 65536


@dataclass(frozen=True, slots=True)
class CNhlfe:
    """A compiled next hop: resolved MAC, prebuilt headers, label bits."""

    out_if: str
    neighbor: str
    nexthop: int  # IPv4 address as int
    out_labels: tuple[int, ...]  # top first; () = pop / unlabelled
    hdr_mpls: bytes  # dst MAC | src MAC | 0x8847
    hdr_ip: bytes  # dst MAC | src MAC | 0x0800 (0x86dd for IPv6 next hops: forwarding.tables6)
    mtu: int
    resolved: bool  # next hop MAC known
    source: Nhlfe | None = None


@dataclass(slots=True)
class Action:
    """What an IP lookup resolves to (LPM result)."""

    kind: int
    prefix: IPv4Network | IPv6Network
    nhs: tuple[CNhlfe, ...] = ()
    ftn: bool = False  # the entry comes from the FTN (labelled unless out_labels == ())
    counter: list[int] = field(default_factory=lambda: [0, 0])
    out_if: str = ""  # A_CONNECTED: the interface of the subnet

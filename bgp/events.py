"""Inputs and outputs of the sans-I/O BGP speaker (`bgp.instance.BgpInstance`).

A driver (the simulator `lsr.sim`, or a router runtime) owns sockets and timers
and calls ``actions = instance.handle(event, now)``; `now` is its clock in
seconds (virtual in the simulator). The conventions are the LDP speaker's
(`ldp.events`), so one driver pattern serves both:

* TCP connections are integers: positive for the ones the speaker opens
  (`TcpConnect`, answered by `TcpConnected` or `TcpClosed`), negative for the ones
  the driver accepts on the listener (`TcpAccepted`). `TcpClose` ends one; the
  driver feeds nothing more for it.
* `StartTimer(timer, s)` (re)arms a named timer, `CancelTimer` disarms it, and the
  driver feeds `TimerExpired(timer)` for one that ran out and was not re-armed.
  Names: ``connect-retry:<peer>``, ``start:<peer>`` (the restart delay after a
  session drop, which feeds Event 3 AutomaticStart), ``hold:<conn>``,
  ``keepalive:<conn>``.

`RibChanged(rib)` is the router's IGP RIB (OSPF's routes): next-hop reachability and
IGP cost (RFC 4271 §9.1.2.1). `Originate` / `WithdrawLocal` are the hook by which a
layer above (VPN: VRF routes with their labels and route targets) puts routes into
BGP; `BestPathChanged` is the hook out: every Loc-RIB change, after each event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Any

from bgp.attrs import ORIGIN_IGP, ExtCommunity
from bgp.nlri import Family, Nlri
from bgp.rib import Path
from lsr.core.igp import Route

# ------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Start:
    """Listen, and ManualStart (Event 1, or 4 for passive peers) every peer."""


@dataclass(frozen=True)
class Stop:
    """ManualStop (Event 2) every peer: NOTIFICATION Cease, close, routes gone."""


@dataclass(frozen=True)
class PeerStart:
    """ManualStart (Event 1 / 4) one peer (after a PeerStop)."""

    peer: IPv4Address


@dataclass(frozen=True)
class PeerStop:
    """ManualStop (Event 2) one peer: Cease/Administrative Shutdown (RFC 4486)."""

    peer: IPv4Address


@dataclass(frozen=True)
class TcpConnected:
    conn: int


@dataclass(frozen=True)
class TcpAccepted:
    conn: int
    local: IPv4Address
    remote: IPv4Address


@dataclass(frozen=True)
class TcpData:
    conn: int
    data: bytes


@dataclass(frozen=True)
class TcpClosed:
    conn: int
    reason: str = ""


@dataclass(frozen=True)
class TimerExpired:
    timer: str


@dataclass(frozen=True)
class RibChanged:
    """The router's whole IGP RIB now (prefix -> Route), not a delta."""

    rib: Mapping[IPv4Network, Route]


@dataclass(frozen=True)
class LocalRoute:
    """A route this speaker originates. `next_hop` None: the session's local address
    (our loopback). `label`: for the labelled families (the VPN label)."""

    family: Family
    nlri: Nlri
    label: int | None = None
    next_hop: IPv4Address | IPv6Address | None = None
    ext_communities: tuple[ExtCommunity, ...] = ()
    communities: tuple[int, ...] = ()
    origin: int = ORIGIN_IGP
    med: int | None = None
    local_pref: int | None = None


@dataclass(frozen=True)
class Originate:
    """Add or replace local routes (keyed by family and NLRI)."""

    routes: tuple[LocalRoute, ...]


@dataclass(frozen=True)
class WithdrawLocal:
    family: Family
    nlris: tuple[Nlri, ...]


Event = (Start | Stop | PeerStart | PeerStop | TcpConnected | TcpAccepted | TcpData | TcpClosed
         | TimerExpired | RibChanged | Originate | WithdrawLocal)


# ------------------------------------------------------------------ outputs


@dataclass(frozen=True)
class TcpListen:
    """Listen on `address`:179; `passwords`: TCP MD5 keys (RFC 2385) per peer."""

    address: IPv4Address
    passwords: tuple[tuple[IPv4Address, str], ...] = ()


@dataclass(frozen=True)
class TcpConnect:
    conn: int
    local: IPv4Address
    remote: IPv4Address
    password: str | None = None


@dataclass(frozen=True)
class TcpSend:
    conn: int
    data: bytes


@dataclass(frozen=True)
class TcpClose:
    conn: int


@dataclass(frozen=True)
class StartTimer:
    timer: str
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    timer: str


@dataclass(frozen=True)
class BestPathChanged:
    """The Loc-RIB entry for (family, nlri) is now `path` (None: no route any more)."""

    family: Family
    nlri: Nlri
    path: Path | None


@dataclass(frozen=True)
class PeerStateChanged:
    """A peer's state changed (logs, timelines, views)."""

    peer: IPv4Address
    old: str
    new: str
    event: str


@dataclass(frozen=True)
class LogEvent:
    level: str
    text: str
    details: dict[str, Any] = field(default_factory=dict)


Action = (TcpListen | TcpConnect | TcpSend | TcpClose | StartTimer | CancelTimer
          | BestPathChanged | PeerStateChanged | LogEvent)

"""Inputs and outputs of the sans-I/O OSPF instance (`ospf.instance.OspfInstance`).

A driver (the simulator, or a router runtime in a lab) owns raw sockets and
timers and calls ``actions = instance.handle(event, now)``. `now` is the
driver's clock in seconds (virtual in the simulator); the instance reads no
clock. Timers follow the LDP speaker's convention: `StartTimer(timer, s)`
(re)arms a named timer, `CancelTimer` disarms it, and the driver feeds
`TimerExpired(timer)` for a timer that ran out and was not re-armed since.

Timer names: ``hello:<if>``, ``dead:<if>``, ``rxmt:<if>``, ``spf``,
``originate``, ``refresh``, ``maxage``, ``pace:<if>`` (flood pacing), ``early:<if>``,
``arrival``, ``stub``.

`SendPacket(ifname, dst, data)` is one OSPF packet (IP protocol 89, TTL 1,
DSCP CS6) from the interface's address to `dst` (224.0.0.5 or a neighbor).
`RoutesChanged(rib)` hands the whole new RIB to whoever consumes it (LDP,
the kernel table).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import NamedTuple

from lsr.core.igp import Route


@dataclass(frozen=True)
class Start:
    """Bring the instance up on every interface whose carrier is up. `restart`: the
    router's process starts again in a running network (`lsr lab node R start`): stub
    router for `OspfConfig.restart_max_metric` seconds (RFC 6987)."""

    restart: bool = False


@dataclass(frozen=True)
class Stop:
    """Flush our LSAs (premature aging, §14.1) and go down."""


@dataclass(frozen=True)
class InterfaceUp:
    """Carrier came up (netlink in a lab; a link event in the simulator)."""

    ifname: str


@dataclass(frozen=True)
class InterfaceDown:
    """Carrier lost: the neighbor on it is gone at once (LLDown, §10.3)."""

    ifname: str


class PacketReceived(NamedTuple):
    """One OSPF packet (the IP payload) received on `ifname` from `src` to `dst`.

    A named tuple, not a frozen dataclass like the other events: one is made for every
    packet, and a tuple is made several times faster (``tuple.__new__(PacketReceived,
    (ifname, src, dst, data))`` faster still)."""

    ifname: str
    src: IPv4Address
    dst: IPv4Address
    data: bytes


@dataclass(frozen=True)
class TimerExpired:
    timer: str


@dataclass(frozen=True)
class SetLinkMetric:
    """Change what we advertise for a link (LDP-IGP sync, RFC 5443: max metric until
    LDP is operational on it); `None` = the configured cost."""

    ifname: str
    metric: int | None


@dataclass(frozen=True)
class LdpStatus:
    """LDP-IGP synchronisation (RFC 5443): the interfaces on which LDP is operational now.
    With `ldp_sync` configured, every other interface is advertised at max metric."""

    operational: frozenset[str]


Event = (Start | Stop | InterfaceUp | InterfaceDown | PacketReceived | TimerExpired | SetLinkMetric
         | LdpStatus)


class SendPacket(NamedTuple):
    """One packet out of `ifname` (a named tuple, like `PacketReceived`)."""

    ifname: str
    dst: IPv4Address
    data: bytes


@dataclass(frozen=True)
class StartTimer:
    timer: str
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    timer: str


@dataclass(frozen=True)
class RoutesChanged:
    """The whole RIB after an SPF run that changed it (prefix -> Route).

    `changed` (when known) names the prefixes whose route differs from `base`, the RIB
    of the previous RoutesChanged: a consumer that still holds `base` (the same object)
    can look at those alone. Neither dict is changed after it is handed out."""

    rib: dict[IPv4Network, Route]
    changed: frozenset[IPv4Network] | None = None
    base: dict[IPv4Network, Route] | None = None


@dataclass(frozen=True)
class NeighborChange:
    """A neighbor changed state (for logs, timelines and `lsr ... ospf neighbors`)."""

    ifname: str
    router_id: IPv4Address
    old: str
    new: str
    event: str


Action = SendPacket | StartTimer | CancelTimer | RoutesChanged | NeighborChange

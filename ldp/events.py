"""Input events and output actions of the sans-I/O LDP speaker.

A driver (the in-memory simulator `lsr.sim`, or the asyncio node runtime)
owns sockets and timers and calls::

    actions = instance.handle(event, now)

`now` is the driver's clock in seconds (virtual time in the simulator,
`time.monotonic()` in the real runtime). `handle` stores it in
`instance.now` before processing; the speaker never reads a clock itself and
only uses `now` for reporting (uptimes, "last seen"). All protocol timing is
expressed as timers the driver runs:

* `StartTimer(timer, seconds)` (re)arms the timer named `timer` to fire
  `seconds` from now; arming an already running timer replaces it.
* `CancelTimer(timer)` disarms it (a no-op if it is not running).
* When a timer fires the driver feeds `TimerExpired(timer)`. A driver must
  never deliver an expiry for a timer that was cancelled or re-armed since.

Timer ids are strings: ``hello:<ifname>``, ``adj:<ifname>:<lsr-id>``,
``ka-send:<lsr-id>``, ``ka-hold:<lsr-id>``, ``init:<lsr-id>``,
``retry:<lsr-id>``, ``accept:<conn>``.

TCP connections are named by integers. Connections the speaker opens
(`TcpConnect`) get positive ids allocated by the speaker (1, 2, 3, ...).
Connections the driver accepts on the listening socket are announced with
`TcpAccepted(conn, local, remote)` and the driver picks the id, which must be
**negative** (-1, -2, ...) so the two spaces never collide. The driver
answers `TcpConnect` with `TcpConnected(conn)` or `TcpClosed(conn, reason)`.
`TcpClose(conn)` from the speaker closes the socket; the driver then feeds
nothing more for that conn (no TcpClosed echo is needed, but one is ignored).

The listening socket: `TcpListen(address, passwords)` is emitted on `Start`;
the driver listens on `address`:646 (TCP MD5 keys per peer address from
`passwords`, RFC 5036 §2.9).

Hellos: `SendHello(ifname, data, src)` is one UDP datagram (an encoded LDP PDU)
from `src`:646 to 224.0.0.2:646 with IP TTL 1 out of `ifname` (§2.4.1).
`HelloReceived(ifname, src, dst, data)` is one datagram received on UDP 646.

Everything here is a frozen dataclass; `to_json(obj)` (or `obj.to_json()`)
gives a JSON-ready dict with a ``"type"`` key, addresses as strings and bytes
as hex. `event_from_json` reverses it for input events (replay, logs).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from lsr.core.igp import Nexthop, Route
from lsr.core.lfib import FtnEntry, IlmEntry, LfibDiff, Nhlfe


class _Json:
    """Mixin: `to_json()` on every event and action."""

    def to_json(self) -> dict[str, Any]:
        return to_json(self)


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Start(_Json):
    """Bring the instance up: start hellos on every LDP interface, listen."""


@dataclass(frozen=True)
class Stop(_Json):
    """Shut down: Notification Shutdown to every peer, close, cancel timers."""


@dataclass(frozen=True)
class HelloReceived(_Json):
    """One UDP datagram received on port 646 on `ifname` (§2.4.1)."""

    ifname: str
    src: IPv4Address
    dst: IPv4Address
    data: bytes


@dataclass(frozen=True)
class TcpConnected(_Json):
    """Our TcpConnect(conn) succeeded (we are the active side, §2.5.2)."""

    conn: int


@dataclass(frozen=True)
class TcpAccepted(_Json):
    """The listener accepted a connection (passive side). `conn` < 0, chosen by the driver."""

    conn: int
    local: IPv4Address
    remote: IPv4Address


@dataclass(frozen=True)
class TcpData(_Json):
    """Bytes read from a connection, any framing (the speaker reassembles PDUs)."""

    conn: int
    data: bytes


@dataclass(frozen=True)
class TcpClosed(_Json):
    """The connection closed, reset, or the connect attempt failed."""

    conn: int
    reason: str = ""


@dataclass(frozen=True)
class TimerExpired(_Json):
    timer: str


@dataclass(frozen=True)
class RibChanged(_Json):
    """The whole current RIB of this router (prefix -> Route), not a delta.

    Optional hint (OSPF's `RoutesChanged` carries it): `changed` names the prefixes whose
    route differs from `base`, the RIB of the previous RibChanged; when the speaker still
    holds `base` (the same object) it looks at those alone. Not part of the JSON form."""

    rib: dict[IPv4Network, Route]
    changed: frozenset[IPv4Network] | None = field(default=None, metadata={"hint": True})
    base: dict[IPv4Network, Route] | None = field(default=None, metadata={"hint": True})


@dataclass(frozen=True)
class InterfaceDown(_Json):
    ifname: str


@dataclass(frozen=True)
class InterfaceUp(_Json):
    ifname: str


@dataclass(frozen=True)
class AddressAdded(_Json):
    """`address` is now the (IPv4) address of the LDP interface `ifname` (replacing any)."""

    ifname: str
    address: IPv4Interface


@dataclass(frozen=True)
class AddressRemoved(_Json):
    """The address `address` was removed from the LDP interface `ifname`."""

    ifname: str
    address: IPv4Interface


Event = (
    Start
    | Stop
    | HelloReceived
    | TcpConnected
    | TcpAccepted
    | TcpData
    | TcpClosed
    | TimerExpired
    | RibChanged
    | InterfaceDown
    | InterfaceUp
    | AddressAdded
    | AddressRemoved
)


# ------------------------------------------------------------------ outputs


@dataclass(frozen=True)
class SendHello(_Json):
    """Send `data` (one LDP PDU) from `src`:646 to 224.0.0.2:646, TTL 1, out of `ifname`."""

    ifname: str
    data: bytes
    src: IPv4Address | None = None


@dataclass(frozen=True)
class TcpListen(_Json):
    """Listen on `address`:646; `passwords` are TCP MD5 keys per peer address.

    `gtsm` (RFC 6720 configured): set IP_TTL 255 on the listening socket, so the
    SYN-ACK and the accepted sockets (which inherit it) send with TTL 255 -- a
    GTSM peer's connecting socket has IP_MINTTL 255 and drops anything lower.
    No IP_MINTTL on the listener: peers without GTSM must still get in; the
    check is per connection (`TcpSetGtsm`).
    """

    address: IPv4Address
    passwords: tuple[tuple[IPv4Address, str], ...] = ()
    gtsm: bool = False


@dataclass(frozen=True)
class TcpConnect(_Json):
    """Open TCP from `local` (our transport address) to `remote`:646 (§2.5.2).

    `gtsm` (RFC 6720 §3, both ends set G in their Link Hellos): before connect(),
    IP_TTL 255 and IP_MINTTL 255 on the socket (send with TTL 255, drop segments
    that arrive with less).
    """

    conn: int
    local: IPv4Address
    remote: IPv4Address
    password: str | None = None
    gtsm: bool = False


@dataclass(frozen=True)
class TcpSend(_Json):
    conn: int
    data: bytes


@dataclass(frozen=True)
class TcpClose(_Json):
    conn: int


@dataclass(frozen=True)
class TcpSetGtsm(_Json):
    """RFC 6720 on an accepted connection, once its peer is known (passive side).

    enabled: IP_TTL 255 and IP_MINTTL 255 on `conn`; disabled: the default TTL
    and no IP_MINTTL (the peer did not set G). Emitted only when GTSM is
    configured (`LdpOptions.gtsm`). A driver that cannot do it may ignore it.
    """

    conn: int
    enabled: bool


@dataclass(frozen=True)
class StartTimer(_Json):
    timer: str
    seconds: float


@dataclass(frozen=True)
class CancelTimer(_Json):
    timer: str


@dataclass(frozen=True)
class ApplyLfib(_Json):
    """Install/remove FTN and ILM entries. Nhlfe.neighbor is the peer's LSR ID (string)."""

    diff: LfibDiff


@dataclass(frozen=True)
class LogEvent(_Json):
    level: str  # "debug" | "info" | "warning" | "error"
    text: str


Action = (
    SendHello
    | TcpListen
    | TcpConnect
    | TcpSend
    | TcpClose
    | TcpSetGtsm
    | StartTimer
    | CancelTimer
    | ApplyLfib
    | LogEvent
)


# ------------------------------------------------------------------ JSON


def plain(v: Any) -> Any:
    """A value as JSON-ready data: addresses as strings, bytes as hex, enums as their
    values, dataclasses as dicts (what `to_json` and the router runtime's views print)."""
    if isinstance(v, (IPv4Address, IPv6Address, IPv4Network, IPv6Network, IPv4Interface)):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, enum.Enum):
        return v.value
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)
                if not f.metadata.get("hint")}
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def to_json(obj: Any) -> dict[str, Any]:
    """JSON-ready dict of an event or action, with its class name under "type"."""
    d = plain(obj)
    return {"type": type(obj).__name__, **d}


def _route(d: dict[str, Any]) -> Route:
    return Route(
        IPv4Network(d["prefix"]),
        d["metric"],
        tuple(Nexthop(n["neighbor"], n["interface"], IPv4Address(n["address"])) for n in d["nexthops"]),
    )


def event_from_json(d: dict[str, Any]) -> Event:
    """Inverse of `to_json` for input events."""
    t = d["type"]
    if t == "Start":
        return Start()
    if t == "Stop":
        return Stop()
    if t == "HelloReceived":
        return HelloReceived(
            d["ifname"], IPv4Address(d["src"]), IPv4Address(d["dst"]), bytes.fromhex(d["data"])
        )
    if t == "TcpConnected":
        return TcpConnected(d["conn"])
    if t == "TcpAccepted":
        return TcpAccepted(d["conn"], IPv4Address(d["local"]), IPv4Address(d["remote"]))
    if t == "TcpData":
        return TcpData(d["conn"], bytes.fromhex(d["data"]))
    if t == "TcpClosed":
        return TcpClosed(d["conn"], d.get("reason", ""))
    if t == "TimerExpired":
        return TimerExpired(d["timer"])
    if t == "RibChanged":
        return RibChanged({IPv4Network(k): _route(v) for k, v in d["rib"].items()})
    if t == "InterfaceDown":
        return InterfaceDown(d["ifname"])
    if t == "InterfaceUp":
        return InterfaceUp(d["ifname"])
    if t == "AddressAdded":
        return AddressAdded(d["ifname"], IPv4Interface(d["address"]))
    if t == "AddressRemoved":
        return AddressRemoved(d["ifname"], IPv4Interface(d["address"]))
    raise ValueError(f"unknown event type {t!r}")


__all__ = [
    "Action", "AddressAdded", "AddressRemoved", "ApplyLfib", "CancelTimer", "Event", "FtnEntry", "HelloReceived", "IlmEntry",
    "InterfaceDown", "InterfaceUp", "LfibDiff", "LogEvent", "Nhlfe", "RibChanged", "SendHello",
    "Start", "StartTimer", "Stop", "TcpAccepted", "TcpClose", "TcpClosed", "TcpConnect",
    "TcpConnected", "TcpData", "TcpListen", "TcpSend", "TcpSetGtsm", "TimerExpired", "event_from_json",
    "to_json",
]

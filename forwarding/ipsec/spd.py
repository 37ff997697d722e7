"""Security Policy Database (RFC 4301 §4.4.1): ordered, first-match policies.

Outbound, the SPD decides for each inner packet: PROTECT (encapsulate on a
named SA), BYPASS (forward in clear) or DISCARD. Inbound, a packet that
arrived in clear but matches a PROTECT entry is discarded (§5.2.1: it should
have come through an SA). Selectors are IPv4 prefixes and an optional IP
protocol. Lookups are pure and return the matching `Policy`; when nothing
matches, the SPD's explicit default (BYPASS unless configured) applies,
which plays the role of §4.4.1's final catch-all entry.

Entries made at run time (a remote-access client's Child SA: the gateway's
subnets -> that client's virtual IP, `set_dynamic`) are looked up before the
configured ones: they are the narrowest, and the configured entry for the
whole address pool behind them has no SA (its packets are dropped as no-sa).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network

ANY_NET = IPv4Network("0.0.0.0/0")


class Action(StrEnum):
    PROTECT = "protect"
    BYPASS = "bypass"
    DISCARD = "discard"


@dataclass(frozen=True)
class Selector:
    """Traffic selector (RFC 4301 §4.4.1.1) on the inner packet."""

    src: IPv4Network = ANY_NET
    dst: IPv4Network = ANY_NET
    protocol: int | None = None  # None = any

    def matches(self, src: IPv4Address, dst: IPv4Address, protocol: int) -> bool:
        return (
            src in self.src
            and dst in self.dst
            and (self.protocol is None or self.protocol == protocol)
        )

    def reversed(self) -> Selector:
        return Selector(self.dst, self.src, self.protocol)

    def __str__(self) -> str:
        proto = "any" if self.protocol is None else str(self.protocol)
        return f"{self.src} -> {self.dst} proto {proto}"


@dataclass(frozen=True)
class Policy:
    selector: Selector
    action: Action
    sa: str | None = None  # SA name, for PROTECT
    name: str = ""

    def __post_init__(self) -> None:
        if (self.action is Action.PROTECT) != (self.sa is not None):
            raise ValueError("a PROTECT policy needs an SA, and only PROTECT policies have one")

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "src": str(self.selector.src),
            "dst": str(self.selector.dst),
            "protocol": self.selector.protocol,
            "action": str(self.action),
            "sa": self.sa,
        }


_Compiled = tuple[tuple[int, int, int, int, "int | None", Policy], ...]


def _compile(policies: Sequence[Policy]) -> _Compiled:
    return tuple(
        (int(p.selector.src.network_address), int(p.selector.src.netmask),
         int(p.selector.dst.network_address), int(p.selector.dst.netmask),
         p.selector.protocol, p)
        for p in policies
    )


class Spd:
    """Ordered outbound and inbound policy lists, first match wins."""

    def __init__(
        self,
        outbound: Iterable[Policy] = (),
        inbound: Iterable[Policy] = (),
        default: Action = Action.BYPASS,
    ) -> None:
        if default is Action.PROTECT:
            raise ValueError("the default action cannot be PROTECT (no SA to use)")
        self.outbound: tuple[Policy, ...] = tuple(outbound)
        self.inbound: tuple[Policy, ...] = tuple(inbound)
        self.default = Policy(Selector(), default, None, name="default")
        self._static_out = _compile(self.outbound)
        self._out = self._static_out
        self._in = _compile(self.inbound)
        self.dynamic: dict[str, tuple[Policy, ...]] = {}  # key -> outbound entries, first

    def _first(self, table: _Compiled, src: int, dst: int, protocol: int) -> Policy:
        for snet, smask, dnet, dmask, proto, policy in table:
            if src & smask == snet and dst & dmask == dnet and (proto is None or proto == protocol):
                return policy
        return self.default

    def set_dynamic(self, key: str, policies: Iterable[Policy]) -> None:
        """Outbound entries made at run time under `key` (replacing those it had)."""
        self.dynamic[key] = tuple(policies)
        self._recompile()

    def clear_dynamic(self, key: str) -> None:
        if self.dynamic.pop(key, None) is not None:
            self._recompile()

    def _recompile(self) -> None:
        dyn = [p for ps in self.dynamic.values() for p in ps]
        self._out = _compile(dyn) + self._static_out

    def lookup(self, src: IPv4Address | int, dst: IPv4Address | int, protocol: int = 0) -> Policy:
        """Outbound decision for an inner packet (RFC 4301 §5.1). Addresses may be ints."""
        return self._first(self._out, int(src), int(dst), protocol)

    def lookup_inbound(self, src: IPv4Address | int, dst: IPv4Address | int, protocol: int = 0) -> Policy:
        """Decision for a packet that arrived in clear (RFC 4301 §5.2)."""
        return self._first(self._in, int(src), int(dst), protocol)

    def to_dict(self) -> dict[str, object]:
        dyn = [p for ps in self.dynamic.values() for p in ps]
        return {
            "outbound": [p.to_dict() for p in (*dyn, *self.outbound)],
            "inbound": [p.to_dict() for p in self.inbound],
            "default": str(self.default.action),
        }

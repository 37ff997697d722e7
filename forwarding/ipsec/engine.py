"""One router's IPsec decisions: SPD + SAD, bytes in, a typed result out.

The dataplane calls `outbound()` on an inner IPv4 packet before it enters the
MPLS core at an edge router, and `inbound()` on an IPv4 packet that leaves the
core at an edge router (after the last label is popped). Both are pure apart
from the SA state they update (sequence numbers, replay windows, counters),
and neither raises on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass

from forwarding.ipsec.esp import (
    IPPROTO_ESP,
    Decapsulated,
    DropReason,
    Encapsulated,
    EspDrop,
    parse_ipv4,
)
from forwarding.ipsec.sad import Sad
from forwarding.ipsec.spd import Action, Spd


@dataclass(frozen=True)
class Bypass:
    """Forward the packet unchanged (SPD BYPASS, or ESP that is not ours)."""

    packet: bytes


class IpsecEngine:
    def __init__(self, spd: Spd, sad: Sad) -> None:
        self.spd = spd
        self.sad = sad

    def outbound(self, inner: bytes, now: float = 0.0) -> Bypass | Encapsulated | EspDrop:
        """RFC 4301 §5.1: SPD lookup on the inner packet, then protect/bypass/discard."""
        ip = parse_ipv4(inner)
        if isinstance(ip, str):
            return EspDrop(DropReason.MALFORMED, ip, time=now)
        _, _, proto, src, dst = ip
        policy = self.spd.lookup(src, dst, proto)
        if policy.action is Action.BYPASS:
            return Bypass(inner)
        where = {"src": str(src), "dst": str(dst), "time": now}
        if policy.action is Action.DISCARD:
            return EspDrop(DropReason.POLICY_DISCARD, f"policy {policy.name}", **where)  # type: ignore[arg-type]
        sa = self.sad.lookup_outbound(policy.sa or "")
        if sa is None:
            return EspDrop(DropReason.NO_SA, f"policy {policy.name}: no SA {policy.sa!r}", sa=policy.sa, **where)  # type: ignore[arg-type]
        return sa.encapsulate(inner, now)

    def inbound(self, packet: bytes, now: float = 0.0) -> Bypass | Decapsulated | EspDrop:
        """RFC 4301 §5.2: ESP to one of our tunnel endpoints is opened; clear traffic
        that a PROTECT policy covers is discarded; anything else bypasses."""
        ip = parse_ipv4(packet)
        if isinstance(ip, str):
            return EspDrop(DropReason.MALFORMED, ip, time=now)
        _, _, proto, src, dst = ip
        if proto == IPPROTO_ESP and dst in self.sad.local_addresses:
            return self.sad.decapsulate(packet, now)
        policy = self.spd.lookup_inbound(src, dst, proto)
        if policy.action is Action.BYPASS:
            return Bypass(packet)
        reason = DropReason.UNPROTECTED if policy.action is Action.PROTECT else DropReason.POLICY_DISCARD
        return EspDrop(reason, f"policy {policy.name}", src=str(src), dst=str(dst), sa=policy.sa, time=now)

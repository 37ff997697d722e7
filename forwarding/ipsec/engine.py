"""One router's IPsec decisions: SPD + SAD, bytes in, a typed result out.

The dataplane calls `outbound()` on an inner IPv4 packet before it enters the
MPLS core at an edge router, and `inbound()` on an IPv4 packet that leaves the
core at an edge router (after the last label is popped). Both are pure apart
from the SA state they update (sequence numbers, replay windows, counters),
and neither raises on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass

from forwarding.ipsec.ah import IPPROTO_AH
from forwarding.ipsec.esp import (
    IPPROTO_ESP,
    Decapsulated,
    DropReason,
    Encapsulated,
    EspDrop,
    addr_str,
    check_ipv4,
    parse_ipv4,
)
from forwarding.ipsec.sad import Sad
from forwarding.ipsec.spd import Action, Spd

_IPSEC_PROTOS = (IPPROTO_ESP, IPPROTO_AH)


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
        ip = check_ipv4(inner)
        if isinstance(ip, str):
            return EspDrop(DropReason.MALFORMED, ip, time=now)
        policy = self.spd.lookup(
            int.from_bytes(inner[12:16], "big"), int.from_bytes(inner[16:20], "big"), ip[2]
        )
        if policy.action is Action.BYPASS:
            return Bypass(inner)
        src, dst = addr_str(inner[12:16]), addr_str(inner[16:20])
        if policy.action is Action.DISCARD:
            return EspDrop(DropReason.POLICY_DISCARD, f"policy {policy.name}", src=src, dst=dst, time=now)
        sa = self.sad.lookup_outbound(policy.sa or "")
        if sa is None:
            return EspDrop(DropReason.NO_SA, f"policy {policy.name}: no SA {policy.sa!r}",
                           sa=policy.sa, src=src, dst=dst, time=now)
        return sa.encapsulate(inner, now)

    def inbound(self, packet: bytes, now: float = 0.0) -> Bypass | Decapsulated | EspDrop:
        """RFC 4301 §5.2: ESP or AH to one of our tunnel endpoints is opened; clear traffic
        that a PROTECT policy covers is discarded; anything else bypasses."""
        if len(packet) >= 20 and packet[9] in _IPSEC_PROTOS and self.sad.is_local(packet[16:20]):
            return self.sad.decapsulate(packet, now)  # checks the header itself
        ip = parse_ipv4(packet)
        if isinstance(ip, str):
            return EspDrop(DropReason.MALFORMED, ip, time=now)
        _, _, proto, src, dst = ip
        policy = self.spd.lookup_inbound(src, dst, proto)
        if policy.action is Action.BYPASS:
            return Bypass(packet)
        reason = DropReason.UNPROTECTED if policy.action is Action.PROTECT else DropReason.POLICY_DISCARD
        return EspDrop(reason, f"policy {policy.name}", src=str(src), dst=str(dst), sa=policy.sa, time=now)

"""Security Association Database (RFC 4301 §4.4.2).

Inbound SAs are found by (SPI, destination address) — the tunnel endpoint the
packet was sent to (§4.1: the SPI alone, plus the destination for
uniqueness); outbound SAs by name, as the SPD's PROTECT entries refer to
them. The two directions are distinct SAs with distinct SPIs and keys.
ESP (RFC 4303) and AH (RFC 4302) SAs share one SPI space per destination
(simpler than §4.1's per-protocol spaces, and enough: our SPIs come from
one file or from IKE); a packet only finds an SA of its own protocol.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address
from typing import Any

from forwarding.ipsec.ah import IPPROTO_AH, AhSecurityAssociation
from forwarding.ipsec.esp import (
    IPPROTO_ESP,
    Decapsulated,
    DropReason,
    EspDrop,
    SecurityAssociation,
    addr_str,
    check_ipv4,
)
from forwarding.ipsec.ipv4 import SHIFT_TOTAL, fast_header_mask

_OUTER_MASK, _OUTER_ESP = fast_header_mask(IPPROTO_ESP)
AnySa = SecurityAssociation | AhSecurityAssociation


def plain_esp(packet: bytes) -> bool:
    """The usual ESP packet, checked in one go (see SecurityAssociation.decapsulate): IPv4
    without options, ESP, not a fragment, total length = the bytes there are, room for SPI
    and sequence number, a good header checksum. Such a packet passes `check_ipv4` and
    the other outer checks, so whoever checked this need not check them again."""
    x = int.from_bytes(packet[:20], "big")
    n = len(packet)
    return x & _OUTER_MASK == _OUTER_ESP and (x >> SHIFT_TOTAL) & 0xFFFF == n and n >= 28 and not x % 0xFFFF


@dataclass
class SadCounters:
    """Drops that cannot be charged to an SA."""

    unknown_spi: int = 0
    malformed: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class Sad:
    def __init__(self) -> None:
        self.inbound: dict[tuple[int, IPv4Address], AnySa] = {}
        self.outbound: dict[str, AnySa] = {}
        self.counters = SadCounters()
        self._wire: dict[bytes, SecurityAssociation] = {}  # ESP: SPI ‖ dst as on the wire
        self._wire_ah: dict[bytes, AhSecurityAssociation] = {}  # AH: the same
        self._local: dict[bytes, int] = {}  # packed dst -> number of inbound SAs

    @staticmethod
    def _wire_key(sa: AnySa) -> bytes:
        return struct.pack("!I", sa.spi) + sa.dst.packed

    def _wire_of(self, sa: AnySa) -> dict[bytes, Any]:
        return self._wire_ah if sa.protocol == "ah" else self._wire

    def add_inbound(self, sa: AnySa) -> None:
        key = (sa.spi, sa.dst)
        if key in self.inbound:
            raise ValueError(f"SPI 0x{sa.spi:08x} to {sa.dst} is already in the SAD")
        self.inbound[key] = sa
        self._wire_of(sa)[self._wire_key(sa)] = sa
        self._local[sa.dst.packed] = self._local.get(sa.dst.packed, 0) + 1

    def add_outbound(self, sa: AnySa) -> None:
        if sa.name in self.outbound:
            raise ValueError(f"outbound SA {sa.name!r} is already in the SAD")
        self.outbound[sa.name] = sa

    def remove(self, sa: AnySa) -> None:
        """Take an SA out (e.g. after a rekey or delete); no error if absent."""
        if self.inbound.get((sa.spi, sa.dst)) is sa:
            del self.inbound[(sa.spi, sa.dst)]
            del self._wire_of(sa)[self._wire_key(sa)]
            self._local[sa.dst.packed] -= 1
            if not self._local[sa.dst.packed]:
                del self._local[sa.dst.packed]
        if self.outbound.get(sa.name) is sa:
            del self.outbound[sa.name]

    def lookup_inbound(self, spi: int, dst: IPv4Address) -> AnySa | None:
        return self.inbound.get((spi, dst))

    def lookup_outbound(self, name: str) -> AnySa | None:
        return self.outbound.get(name)

    @property
    def local_addresses(self) -> frozenset[IPv4Address]:
        """Tunnel endpoints this router receives ESP on."""
        return frozenset(IPv4Address(b) for b in self._local)

    def is_local(self, packed_dst: bytes) -> bool:
        """True if ESP to this (4-byte, packed) address is ours to open."""
        return packed_dst in self._local

    def __iter__(self) -> Iterator[AnySa]:
        yield from self.outbound.values()
        yield from self.inbound.values()

    def decapsulate(self, packet: bytes, now: float = 0.0) -> Decapsulated | EspDrop:
        """Find the inbound SA of an outer IPv4/ESP or IPv4/AH packet and open it. Never raises."""
        if plain_esp(packet):
            return self.open_plain_esp(packet, now)
        return self._decapsulate_checked(packet, now)

    def open_plain_esp(self, packet: bytes, now: float = 0.0) -> Decapsulated | EspDrop:
        """decapsulate() for a packet `plain_esp` accepted (its header is not checked again)."""
        sa = self._wire.get(packet[20:24] + packet[16:20])
        if sa is not None:
            return sa.open20(packet, now)
        return self._decapsulate_checked(packet, now)  # it names the unknown SPI

    def _decapsulate_checked(self, packet: bytes, now: float) -> Decapsulated | EspDrop:
        """decapsulate() step by step: each problem gets its own drop reason and detail."""
        ip = check_ipv4(packet)
        if isinstance(ip, str):
            self.counters.malformed += 1
            return EspDrop(DropReason.MALFORMED, f"outer header: {ip}", time=now)
        hlen, total, proto = ip
        if proto == IPPROTO_AH:
            return self._ah(packet, hlen, total, now)
        problem = None
        if proto != IPPROTO_ESP:
            problem = f"outer protocol {proto}, not ESP"
        elif ((packet[6] << 8) | packet[7]) & 0x3FFF:  # RFC 4303 §3.4.1: reassemble first
            problem = "outer fragment (not reassembled)"
        elif total - hlen < 8:
            problem = "no room for SPI and sequence number"
        if problem is not None:
            self.counters.malformed += 1
            return EspDrop(DropReason.MALFORMED, problem, src=addr_str(packet[12:16]),
                           dst=addr_str(packet[16:20]), time=now)
        sa = self._wire.get(packet[hlen : hlen + 4] + packet[16:20])
        if sa is None:
            self.counters.unknown_spi += 1
            (spi,) = struct.unpack_from("!I", packet, hlen)
            return EspDrop(
                DropReason.UNKNOWN_SPI, f"no inbound SA for SPI 0x{spi:08x} to {addr_str(packet[16:20])}",
                spi=spi, src=addr_str(packet[12:16]), dst=addr_str(packet[16:20]), time=now,
            )
        return sa.open(packet[hlen:total], now, packet[12:20])

    def _ah(self, packet: bytes, hlen: int, total: int, now: float) -> Decapsulated | EspDrop:
        """An IPv4/AH packet (RFC 4302 §3.4.2: SA by SPI and destination)."""
        if total - hlen < 12:
            self.counters.malformed += 1
            return EspDrop(DropReason.MALFORMED, "no room for the AH header", src=addr_str(packet[12:16]),
                           dst=addr_str(packet[16:20]), time=now)
        sa = self._wire_ah.get(packet[hlen + 4 : hlen + 8] + packet[16:20])
        if sa is None:
            self.counters.unknown_spi += 1
            (spi,) = struct.unpack_from("!I", packet, hlen + 4)
            return EspDrop(
                DropReason.UNKNOWN_SPI, f"no inbound AH SA for SPI 0x{spi:08x} to {addr_str(packet[16:20])}",
                spi=spi, src=addr_str(packet[12:16]), dst=addr_str(packet[16:20]), time=now,
            )
        return sa.open_ah(packet, hlen, total, now)

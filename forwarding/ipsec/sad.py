"""Security Association Database (RFC 4301 §4.4.2).

Inbound SAs are found by (SPI, destination address) — the tunnel endpoint the
packet was sent to (§4.1: the SPI alone, plus the destination for
uniqueness); outbound SAs by name, as the SPD's PROTECT entries refer to
them. The two directions are distinct SAs with distinct SPIs and keys.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address

from forwarding.ipsec.esp import (
    IPPROTO_ESP,
    Decapsulated,
    DropReason,
    EspDrop,
    SecurityAssociation,
    parse_ipv4,
)


@dataclass
class SadCounters:
    """Drops that cannot be charged to an SA."""

    unknown_spi: int = 0
    malformed: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class Sad:
    def __init__(self) -> None:
        self.inbound: dict[tuple[int, IPv4Address], SecurityAssociation] = {}
        self.outbound: dict[str, SecurityAssociation] = {}
        self.counters = SadCounters()

    def add_inbound(self, sa: SecurityAssociation) -> None:
        key = (sa.spi, sa.dst)
        if key in self.inbound:
            raise ValueError(f"SPI 0x{sa.spi:08x} to {sa.dst} is already in the SAD")
        self.inbound[key] = sa

    def add_outbound(self, sa: SecurityAssociation) -> None:
        if sa.name in self.outbound:
            raise ValueError(f"outbound SA {sa.name!r} is already in the SAD")
        self.outbound[sa.name] = sa

    def remove(self, sa: SecurityAssociation) -> None:
        """Take an SA out (e.g. after a rekey or delete); no error if absent."""
        if self.inbound.get((sa.spi, sa.dst)) is sa:
            del self.inbound[(sa.spi, sa.dst)]
        if self.outbound.get(sa.name) is sa:
            del self.outbound[sa.name]

    def lookup_inbound(self, spi: int, dst: IPv4Address) -> SecurityAssociation | None:
        return self.inbound.get((spi, dst))

    def lookup_outbound(self, name: str) -> SecurityAssociation | None:
        return self.outbound.get(name)

    @property
    def local_addresses(self) -> frozenset[IPv4Address]:
        """Tunnel endpoints this router receives ESP on."""
        return frozenset(dst for _, dst in self.inbound)

    def __iter__(self) -> Iterator[SecurityAssociation]:
        yield from self.outbound.values()
        yield from self.inbound.values()

    def decapsulate(self, packet: bytes, now: float = 0.0) -> Decapsulated | EspDrop:
        """Find the inbound SA of an outer IPv4/ESP packet and open it. Never raises."""
        ip = parse_ipv4(packet)
        if isinstance(ip, str):
            self.counters.malformed += 1
            return EspDrop(DropReason.MALFORMED, f"outer header: {ip}", time=now)
        hlen, total, proto, src, dst = ip
        where = {"src": str(src), "dst": str(dst), "time": now}
        if proto != IPPROTO_ESP:
            self.counters.malformed += 1
            return EspDrop(DropReason.MALFORMED, f"outer protocol {proto}, not ESP", **where)  # type: ignore[arg-type]
        if ((packet[6] << 8) | packet[7]) & 0x3FFF:
            self.counters.malformed += 1
            return EspDrop(DropReason.MALFORMED, "outer fragment (not reassembled)", **where)  # type: ignore[arg-type]
        if total - hlen < 8:
            self.counters.malformed += 1
            return EspDrop(DropReason.MALFORMED, "no room for SPI and sequence number", **where)  # type: ignore[arg-type]
        (spi,) = struct.unpack_from("!I", packet, hlen)
        sa = self.inbound.get((spi, dst))
        if sa is None:
            self.counters.unknown_spi += 1
            return EspDrop(
                DropReason.UNKNOWN_SPI, f"no inbound SA for SPI 0x{spi:08x} to {dst}", spi=spi, **where  # type: ignore[arg-type]
            )
        return sa.open(packet[hlen:total], str(src), str(dst), now)

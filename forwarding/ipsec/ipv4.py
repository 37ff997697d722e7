"""IPv4 header helpers shared by ESP and AH (pure, on bytes).

Checksums use RFC 1071 arithmetic on one big integer: a header read as a
big-endian number is congruent, modulo 0xFFFF, to the one's-complement sum
of its 16-bit words (2^16 = 1 mod 0xFFFF), so `int.from_bytes(h) % 0xFFFF`
is 0 exactly for a header whose checksum verifies (a header is never all
zeros: its version nibble is not 0), and the checksum to write is
`(-sum) % 0xFFFF`. One C-level call instead of a loop over the words.
"""

from __future__ import annotations

from ipaddress import IPv4Address

_MOD = 0xFFFF

# One 20-byte IPv4 header read as a 160-bit big-endian int: where its fields sit.
SHIFT_VIHL = 152  # byte 0
SHIFT_TOTAL = 128  # bytes 2-3
SHIFT_FRAG = 96  # bytes 6-7 (flags + fragment offset)
SHIFT_PROTO = 80  # byte 9


def ipv4_checksum(header: bytes | bytearray | memoryview) -> int:
    """RFC 791 header checksum (the checksum field must be zero, or included to verify:
    then 0 means it verifies). Odd lengths are padded with a zero byte (RFC 1071)."""
    if len(header) % 2:
        header = bytes(header) + b"\0"
    x = int.from_bytes(header, "big")
    return 0xFFFF if x == 0 else -x % _MOD


def checksum_ok(header: bytes | bytearray | memoryview) -> bool:
    """True if an (even-length, not all-zero) header's checksum verifies."""
    x = int.from_bytes(header, "big")
    return x != 0 and x % _MOD == 0


def fold_words(words: int) -> int:
    """Checksum for a header whose 16-bit words (checksum field 0) add up to `words`."""
    return -words % _MOD if words else 0xFFFF


def check_ipv4(packet: bytes | bytearray | memoryview) -> tuple[int, int, int] | str:
    """(header length, total length, protocol) of a sane IPv4 packet, or the problem."""
    if len(packet) < 20:
        return f"{len(packet)} bytes is shorter than an IPv4 header"
    vihl = packet[0]
    if vihl >> 4 != 4:
        return f"IP version {vihl >> 4}, not 4"
    hlen = (vihl & 0x0F) * 4
    total = (packet[2] << 8) | packet[3]
    if hlen < 20 or total < hlen or total > len(packet):
        return f"bad IPv4 lengths: header {hlen}, total {total}, have {len(packet)}"
    if int.from_bytes(packet[:hlen], "big") % _MOD:  # version 4: never all zeros
        return "bad IPv4 header checksum"
    return hlen, total, packet[9]


def parse_ipv4(packet: bytes) -> tuple[int, int, int, IPv4Address, IPv4Address] | str:
    """(header length, total length, protocol, src, dst) of an IPv4 packet, or a problem."""
    ok = check_ipv4(packet)
    if isinstance(ok, str):
        return ok
    return (*ok, IPv4Address(packet[12:16]), IPv4Address(packet[16:20]))


def addr_str(b: bytes | memoryview) -> str | None:
    return str(IPv4Address(bytes(b))) if len(b) == 4 else None


def fast_header_mask(proto: int) -> tuple[int, int]:
    """(mask, want) such that `x & mask == want` for a 20-byte header read as an int `x`
    means: version 4, no options, not a fragment (MF clear, offset 0), protocol `proto`."""
    mask = (0xFF << SHIFT_VIHL) | (0x3FFF << SHIFT_FRAG) | (0xFF << SHIFT_PROTO)
    return mask, (0x45 << SHIFT_VIHL) | (proto << SHIFT_PROTO)

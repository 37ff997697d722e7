"""MPLS label stack entries and stack operations on bytes (RFC 3032 §2.1, RFC 4182, RFC 5462).

A label stack entry is 32 bits, network order::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                Label                  | TC  |S|      TTL      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Exactly one entry, the bottom one, has S=1. Operations work on a
`bytearray` holding a whole frame or packet at a given offset of the stack
and return new buffers or modify in place as documented. Pure code: struct
only, no scapy, no sockets.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from lsr.core.labels import (
    IMPLICIT_NULL,
    IPV4_EXPLICIT_NULL,
    IPV6_EXPLICIT_NULL,
    MAX_LABEL,
    MIN_UNRESERVED,
    ROUTER_ALERT,
)

__all__ = [
    "ETH_P_MPLS_UC", "ETH_P_MPLS_MC", "ETH_P_IP", "ETH_P_IPV6", "ETH_P_ARP",
    "IPV4_EXPLICIT_NULL", "ROUTER_ALERT", "IPV6_EXPLICIT_NULL", "IMPLICIT_NULL",
    "MIN_UNRESERVED", "MAX_LABEL", "LabelEntry", "LabelError",
    "encode_entry", "decode_entry", "pack_entry", "encode_stack", "parse_stack",
    "stack_labels", "push", "swap", "pop", "ip_set_ttl", "ip_checksum", "checksum16",
]

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_MPLS_UC = 0x8847  # RFC 3032 §5
ETH_P_MPLS_MC = 0x8848
# VLAN tags: IEEE 802.1Q C-tag, 802.1ad S-tag, and the pre-standard QinQ 0x9100
ETH_P_VLAN_TAGS = frozenset((0x8100, 0x88A8, 0x9100))

_I = struct.Struct("!I")
_H = struct.Struct("!H")


class LabelError(ValueError):
    """A label stack that cannot be encoded or parsed (malformed)."""


class LabelEntry(NamedTuple):
    label: int
    tc: int
    s: int
    ttl: int

    def to_json(self) -> dict[str, int]:
        return {"label": self.label, "tc": self.tc, "s": self.s, "ttl": self.ttl}


def encode_entry(label: int, tc: int = 0, s: int = 1, ttl: int = 255) -> int:
    """The 32-bit value of one entry; raises LabelError on out-of-range fields."""
    if not 0 <= label <= MAX_LABEL:
        raise LabelError(f"label {label} out of range 0..{MAX_LABEL}")
    if not 0 <= tc <= 7 or s not in (0, 1) or not 0 <= ttl <= 255:
        raise LabelError(f"bad TC/S/TTL {tc}/{s}/{ttl}")
    return (label << 12) | (tc << 9) | (s << 8) | ttl


def decode_entry(word: int) -> LabelEntry:
    return LabelEntry(word >> 12, (word >> 9) & 7, (word >> 8) & 1, word & 0xFF)


def pack_entry(label: int, tc: int = 0, s: int = 1, ttl: int = 255) -> bytes:
    return _I.pack(encode_entry(label, tc, s, ttl))


def encode_stack(labels: tuple[int, ...] | list[int], tc: int = 0, ttl: int = 255,
                 bottom: bool = True) -> bytes:
    """Entries for `labels` (top first), same TC and TTL; S=1 on the last if `bottom`."""
    n = len(labels)
    return b"".join(
        pack_entry(lbl, tc, 1 if (bottom and i == n - 1) else 0, ttl)
        for i, lbl in enumerate(labels)
    )


def parse_stack(buf: bytes | bytearray | memoryview, offset: int = 0) -> tuple[list[LabelEntry], int]:
    """Decode entries from `offset` down to the one with S=1.

    Returns (entries top first, offset of the payload under the stack).
    Raises LabelError if the buffer ends before a bottom-of-stack entry.
    """
    out: list[LabelEntry] = []
    n = len(buf)
    while True:
        if offset + 4 > n:
            raise LabelError("label stack runs past the end of the frame (no S bit)")
        e = decode_entry(_I.unpack_from(buf, offset)[0])
        out.append(e)
        offset += 4
        if e.s:
            return out, offset


def stack_labels(buf: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, ...]:
    """Just the label values of the stack at `offset` (() if it is malformed)."""
    try:
        return tuple(e.label for e in parse_stack(buf, offset)[0])
    except LabelError:
        return ()


def push(buf: bytes | bytearray, offset: int, labels: tuple[int, ...] | list[int],
         tc: int = 0, ttl: int = 255, onto_stack: bool = False) -> bytearray:
    """Insert entries for `labels` (top first) at `offset`; returns a new bytearray.

    Pushing onto an IP payload (`onto_stack=False`) sets S=1 on the last new
    entry; pushing above an existing stack leaves S=0 on every new entry
    (RFC 3032 §2.1: exactly one S bit, on the bottom entry).
    """
    out = bytearray(buf[:offset])
    out += encode_stack(labels, tc, ttl, bottom=not onto_stack)
    out += buf[offset:]
    return out


def swap(buf: bytearray | memoryview, offset: int, label: int, ttl: int) -> None:
    """Replace the top entry's label and TTL in place; TC and S are kept (RFC 3032 §2.4)."""
    if not 0 <= label <= MAX_LABEL or not 0 <= ttl <= 255:
        raise LabelError(f"bad label/TTL {label}/{ttl}")
    w = _I.unpack_from(buf, offset)[0]
    _I.pack_into(buf, offset, (label << 12) | (w & 0xF00) | ttl)


def pop(buf: bytes | bytearray, offset: int) -> tuple[LabelEntry, bytearray]:
    """Remove the top entry at `offset`; returns (the entry, a new bytearray)."""
    if offset + 4 > len(buf):
        raise LabelError("nothing to pop")
    e = decode_entry(_I.unpack_from(buf, offset)[0])
    out = bytearray(buf[:offset])
    out += buf[offset + 4:]
    return e, out


# ---------------------------------------------------------------- IPv4 header helpers


def checksum16(data: bytes | bytearray | memoryview) -> int:
    """Internet checksum (RFC 1071) of `data` (odd length padded with a zero byte)."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_checksum(buf: bytearray | memoryview, off: int) -> None:
    """Recompute the IPv4 header checksum of the header at `off` in place."""
    ihl = (buf[off] & 0x0F) * 4
    buf[off + 10] = 0
    buf[off + 11] = 0
    _H.pack_into(buf, off + 10, checksum16(buf[off:off + ihl]))


def ip_set_ttl(buf: bytearray | memoryview, off: int, new_ttl: int) -> None:
    """Set the IPv4 TTL at header offset `off`, updating the checksum incrementally.

    RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') over the 16-bit word holding TTL|protocol.
    """
    old = (buf[off + 8] << 8) | buf[off + 9]
    new = (new_ttl << 8) | buf[off + 9]
    hc = (buf[off + 10] << 8) | buf[off + 11]
    s = (~hc & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    hc = ~s & 0xFFFF
    buf[off + 8] = new_ttl
    buf[off + 10] = hc >> 8
    buf[off + 11] = hc & 0xFF

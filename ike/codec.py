"""IKEv2 message codec (RFC 7296 §3), only the payloads our PSK exchanges use.

Messages are `Message(header fields, payloads)`; `encode()` chains the
payloads with their Next Payload fields, `decode()` parses them back and
raises `DecodeError` (never anything else) on malformed input. The SK
payload is kept as raw bytes here; `crypto.seal`/`crypto.open_sk` handle it.

Each payload is a class in the idiom of every codec here (`lsr.core.codec`):
its type `TYPE`, `value()` (the body after the generic payload header, §3.2)
and a `from_value(body, code, next_payload)` classmethod, registered in
`PAYLOADS`; a payload type no class claims is skipped (§2.5).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address
from typing import ClassVar

from lsr.core.codec import DecodeError as _BaseDecodeError
from lsr.core.codec import Registry


class DecodeError(_BaseDecodeError):
    """Malformed IKEv2 message: `ike.session` drops it (no reply, §2.21.1 before
    authentication); INVALID_SYNTAX is sent only for well-formed but unusable input."""


class Exchange(IntEnum):  # RFC 7296 §3.1
    IKE_SA_INIT = 34
    IKE_AUTH = 35
    CREATE_CHILD_SA = 36
    INFORMATIONAL = 37


class PayloadType(IntEnum):  # §3.2
    NONE = 0
    SA = 33
    KE = 34
    IDi = 35
    IDr = 36
    AUTH = 39
    NONCE = 40
    NOTIFY = 41
    DELETE = 42
    TSi = 44
    TSr = 45
    SK = 46


class Notify(IntEnum):  # §3.10.1
    INVALID_SYNTAX = 7
    INVALID_MESSAGE_ID = 9
    NO_PROPOSAL_CHOSEN = 14
    INVALID_KE_PAYLOAD = 17
    AUTH_FAILED = 24
    TS_UNACCEPTABLE = 38
    TEMPORARY_FAILURE = 43  # §2.25: try again later (a rekey or a delete is under way)
    CHILD_SA_NOT_FOUND = 44  # §2.25: no such Child SA to rekey
    REKEY_SA = 16393


class Protocol(IntEnum):
    IKE = 1
    ESP = 3


class TransformType(IntEnum):  # §3.3.2
    ENCR = 1
    PRF = 2
    INTEG = 3
    DH = 4
    ESN = 5


ENCR_AES_GCM_16 = 20  # RFC 5282 / RFC 4106
PRF_HMAC_SHA2_256 = 5  # RFC 4868
DH_CURVE25519 = 31  # RFC 8031
ESN_NONE = 0
DH_NONE = 0  # §3.3.2: "no Diffie-Hellman" (better left out, §1.2)
ID_FQDN = 2
ID_IPV4_ADDR = 1
ID_IPV6_ADDR = 5
# §3.5: an address ID is exactly one address (ID_IPV4_ADDR 4 octets, ID_IPV6_ADDR 16)
ID_ADDR_LEN = {ID_IPV4_ADDR: 4, ID_IPV6_ADDR: 16}
AUTH_PSK = 2  # Shared Key Message Integrity Code
TS_IPV4_ADDR_RANGE = 7
ATTR_KEY_LENGTH = 14

FLAG_INITIATOR = 0x08
FLAG_RESPONSE = 0x20
IKE_VERSION = 0x20  # major 2, minor 0
HEADER_LEN = 28


@dataclass(frozen=True)
class Transform:
    type: int
    id: int
    key_length: int | None = None  # bits, Key Length attribute (TV format)

    def encode(self, last: bool) -> bytes:
        attrs = b""
        if self.key_length is not None:
            attrs = struct.pack("!HH", 0x8000 | ATTR_KEY_LENGTH, self.key_length)
        return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attrs), self.type, 0, self.id) + attrs


@dataclass(frozen=True)
class Proposal:
    number: int
    protocol: int
    spi: bytes
    transforms: tuple[Transform, ...]

    def encode(self, last: bool) -> bytes:
        body = b"".join(t.encode(i == len(self.transforms) - 1) for i, t in enumerate(self.transforms))
        hdr = struct.pack("!BBHBBBB", 0 if last else 2, 0, 8 + len(self.spi) + len(body),
                          self.number, self.protocol, len(self.spi), len(self.transforms))
        return hdr + self.spi + body

    def get(self, ttype: int) -> Transform | None:
        return next((t for t in self.transforms if t.type == ttype), None)


@dataclass(frozen=True)
class TrafficSelector:
    start: IPv4Address
    end: IPv4Address
    protocol: int = 0
    start_port: int = 0
    end_port: int = 65535

    def encode(self) -> bytes:
        return struct.pack("!BBHHH4s4s", TS_IPV4_ADDR_RANGE, self.protocol, 16, self.start_port,
                           self.end_port, self.start.packed, self.end.packed)


# payloads ---------------------------------------------------------------------------------
#
# Generic payload header (§3.2), written by `encode_payloads`; `value()` is what follows:
#                      1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# | Next Payload  |C|  RESERVED   |         Payload Length        |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

PAYLOADS: Registry[Payload] = Registry("IKEv2 payload")


@PAYLOADS.register
@dataclass(frozen=True)
class SaPayload:
    """Security Association (§3.3): proposals, each with its transforms."""

    TYPE: ClassVar[int] = PayloadType.SA
    proposals: tuple[Proposal, ...]

    def value(self) -> bytes:
        return b"".join(p.encode(i == len(self.proposals) - 1) for i, p in enumerate(self.proposals))

    @classmethod
    def from_value(cls, v: bytes, code: int, next_type: int) -> SaPayload:
        return cls(_proposals(v))


@PAYLOADS.register
@dataclass(frozen=True)
class KePayload:
    """Key Exchange (§3.4): DH Group Num (16), RESERVED (16), key exchange data."""

    TYPE: ClassVar[int] = PayloadType.KE
    group: int
    data: bytes

    def value(self) -> bytes:
        return struct.pack("!HH", self.group, 0) + self.data

    @classmethod
    def from_value(cls, v: bytes, code: int, next_type: int) -> KePayload:
        _need(len(v) >= 4, "truncated KE")
        return cls(struct.unpack_from("!H", v)[0], v[4:])


@PAYLOADS.register
@dataclass(frozen=True)
class NoncePayload:
    """Nonce (§3.9): 16 to 256 octets."""

    TYPE: ClassVar[int] = PayloadType.NONCE
    nonce: bytes

    def value(self) -> bytes:
        return self.nonce

    @classmethod
    def from_value(cls, v: bytes, code: int, next_type: int) -> NoncePayload:
        _need(16 <= len(v) <= 256, "nonce must be 16..256 bytes")  # §2.10, §3.9
        return cls(v)


@PAYLOADS.register
@dataclass(frozen=True)
class IdPayload:
    """Identification (§3.5): ID Type (8), RESERVED (24), data. One class, two
    codes: IDi (35) and IDr (36, `responder`)."""

    TYPES: ClassVar[tuple[int, int]] = (PayloadType.IDi, PayloadType.IDr)
    id_type: int
    data: bytes
    responder: bool = False

    @property
    def TYPE(self) -> int:
        return PayloadType.IDr if self.responder else PayloadType.IDi

    def value(self) -> bytes:
        return struct.pack("!B3x", self.id_type) + self.data

    body = value  # AUTH signs the ID payload's body (§2.15); ike.session calls it so

    @classmethod
    def from_value(cls, v: bytes, code: int, next_type: int) -> IdPayload:
        _need(len(v) >= 4, "truncated ID")
        want = ID_ADDR_LEN.get(v[0])
        _need(want is None or len(v) - 4 == want,
              f"ID type {v[0]} carries {len(v) - 4} octets, not {want} (RFC 7296 §3.5)")
        return cls(v[0], v[4:], responder=code == PayloadType.IDr)


@PAYLOADS.register
@dataclass(frozen=True)
class AuthPayload:
    """Authentication (§3.8): Auth Method (8), RESERVED (24), data."""

    TYPE: ClassVar[int] = PayloadType.AUTH
    method: int
    data: bytes

    def value(self) -> bytes:
        return struct.pack("!B3x", self.method) + self.data

    @classmethod
    def from_value(cls, v: bytes, code: int, next_type: int) -> AuthPayload:
        _need(len(v) >= 4, "truncated AUTH")
        return cls(v[0], v[4:])


@PAYLOADS.register
@dataclass(frozen=True)
class TsPayload:
    """Traffic Selectors (§3.13): Number of TSs (8), RESERVED (24), selectors. One
    class, two codes: TSi (44) and TSr (45, `responder`)."""

    TYPES: ClassVar[tuple[int, int]] = (PayloadType.TSi, PayloadType.TSr)
    selectors: tuple[TrafficSelector, ...]
    responder: bool = False

    @property
    def TYPE(self) -> int:
        return PayloadType.TSr if self.responder else PayloadType.TSi

    def value(self) -> bytes:
        return struct.pack("!B3x", len(self.selectors)) + b"".join(s.encode() for s in self.selectors)

    @classmethod
    def from_value(cls, v: bytes, code: int, next_type: int) -> TsPayload:
        return cls(_selectors(v), responder=code == PayloadType.TSr)


@PAYLOADS.register
@dataclass(frozen=True)
class NotifyPayload:
    """Notify (§3.10): Protocol ID (8), SPI Size (8), Notify Message Type (16), SPI, data."""

    TYPE: ClassVar[int] = PayloadType.NOTIFY
    notify: int
    protocol: int = 0
    spi: bytes = b""
    data: bytes = b""

    def value(self) -> bytes:
        return struct.pack("!BBH", self.protocol, len(self.spi), self.notify) + self.spi + self.data

    @classmethod
    def from_value(cls, v: bytes, code: int, next_type: int) -> NotifyPayload:
        _need(len(v) >= 4, "truncated notify")
        proto, spi_size, ntype = struct.unpack_from("!BBH", v)
        _need(len(v) >= 4 + spi_size, "truncated notify SPI")
        return cls(ntype, proto, v[4 : 4 + spi_size], v[4 + spi_size :])


@PAYLOADS.register
@dataclass(frozen=True)
class DeletePayload:
    """Delete (§3.11): Protocol ID (8), SPI Size (8), Num of SPIs (16), SPIs."""

    TYPE: ClassVar[int] = PayloadType.DELETE
    protocol: int
    spis: tuple[bytes, ...] = ()

    def value(self) -> bytes:
        size = len(self.spis[0]) if self.spis else 0
        return struct.pack("!BBH", self.protocol, size, len(self.spis)) + b"".join(self.spis)

    @classmethod
    def from_value(cls, v: bytes, code: int, next_type: int) -> DeletePayload:
        _need(len(v) >= 4, "truncated delete")
        proto, size, n = struct.unpack_from("!BBH", v)
        _need(len(v) == 4 + size * n, "bad delete length")
        return cls(proto, tuple(v[4 + i * size : 4 + (i + 1) * size] for i in range(n)))


@PAYLOADS.register
@dataclass(frozen=True)
class SkPayload:
    """Encrypted and authenticated payload (§3.14), raw: IV ‖ ciphertext ‖ ICV."""

    TYPE: ClassVar[int] = PayloadType.SK
    first: int  # Next Payload of the first inner payload
    data: bytes

    def value(self) -> bytes:
        return self.data

    @classmethod
    def from_value(cls, v: bytes, code: int, next_type: int) -> SkPayload:
        return cls(next_type, v)


Payload = (SaPayload | KePayload | NoncePayload | IdPayload | AuthPayload | TsPayload
           | NotifyPayload | DeletePayload | SkPayload)


@dataclass(frozen=True)
class Message:
    spi_i: bytes
    spi_r: bytes
    exchange: int
    flags: int
    message_id: int
    payloads: tuple[Payload, ...] = field(default_factory=tuple)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_RESPONSE)

    def find(self, cls: type, **match: object) -> list:
        return [p for p in self.payloads if isinstance(p, cls)
                and all(getattr(p, k) == v for k, v in match.items())]

    def notifies(self) -> set[int]:
        return {p.notify for p in self.payloads if isinstance(p, NotifyPayload)}


def encode_payloads(payloads: tuple[Payload, ...] | list[Payload]) -> tuple[int, bytes]:
    """(type of the first payload, the chained payloads)."""
    out = b""
    for i, p in enumerate(payloads):
        nxt = 0
        if i + 1 < len(payloads):
            nxt = payloads[i + 1].TYPE
        if isinstance(p, SkPayload):
            nxt = p.first  # §3.14: SK's Next Payload names its first inner payload
        body = p.value()
        out += struct.pack("!BBH", nxt, 0, 4 + len(body)) + body
    return (payloads[0].TYPE if payloads else 0), out


def encode_header(m: Message, first: int, length: int) -> bytes:
    return struct.pack("!8s8sBBBBII", m.spi_i, m.spi_r, first, IKE_VERSION, m.exchange,
                       m.flags, m.message_id, length)


def encode(m: Message) -> bytes:
    first, body = encode_payloads(m.payloads)
    return encode_header(m, first, HEADER_LEN + len(body)) + body


# decoding --------------------------------------------------------------------------------


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise DecodeError(what)


def _transforms(data: bytes, count: int) -> tuple[Transform, ...]:
    out = []
    off = 0
    for i in range(count):
        _need(len(data) - off >= 8, "truncated transform")
        last, _, length, ttype, _, tid = struct.unpack_from("!BBHBBH", data, off)
        _need(8 <= length <= len(data) - off, "bad transform length")
        _need(last == (0 if i == count - 1 else 3), "bad transform chaining")
        key_length = None
        a = off + 8
        while a < off + length:
            _need(off + length - a >= 4, "truncated attribute")
            atype, aval = struct.unpack_from("!HH", data, a)
            if atype & 0x8000:
                if atype & 0x7FFF == ATTR_KEY_LENGTH:
                    key_length = aval
                a += 4
            else:  # TLV attribute: skip
                _need(a + 4 + aval <= off + length, "bad attribute length")
                a += 4 + aval
        out.append(Transform(ttype, tid, key_length))
        off += length
    _need(off == len(data), "trailing bytes after transforms")
    return tuple(out)


def _proposals(body: bytes) -> tuple[Proposal, ...]:
    out = []
    off = 0
    while True:
        _need(len(body) - off >= 8, "truncated proposal")
        last, _, length, num, proto, spi_size, ntrans = struct.unpack_from("!BBHBBBB", body, off)
        _need(8 + spi_size <= length <= len(body) - off, "bad proposal length")
        _need(last in (0, 2), "bad proposal chaining")
        spi = body[off + 8 : off + 8 + spi_size]
        out.append(Proposal(num, proto, spi, _transforms(body[off + 8 + spi_size : off + length], ntrans)))
        off += length
        if last == 0:
            break
    _need(off == len(body), "trailing bytes after proposals")
    return tuple(out)


def _selectors(body: bytes) -> tuple[TrafficSelector, ...]:
    _need(len(body) >= 4, "truncated TS payload")
    n = body[0]
    out = []
    off = 4
    for _ in range(n):
        _need(len(body) - off >= 4, "truncated selector")
        ts_type, proto, length = struct.unpack_from("!BBH", body, off)
        _need(length >= 8 and off + length <= len(body), "bad selector length")
        if ts_type == TS_IPV4_ADDR_RANGE:
            _need(length == 16, "IPv4 selector length must be 16")
            _, _, _, sp, ep, sa, ea = struct.unpack_from("!BBHHH4s4s", body, off)
            out.append(TrafficSelector(IPv4Address(sa), IPv4Address(ea), proto, sp, ep))
        off += length  # other selector types (IPv6) are skipped
    return tuple(out)


def decode_payload(ptype: int, body: bytes, next_type: int) -> Payload | None:
    """One payload body; None for payloads we do not model (skipped, §2.5)."""
    cls = PAYLOADS.get(ptype)
    return None if cls is None else cls.from_value(body, ptype, next_type)


def decode_payloads(first: int, data: bytes) -> tuple[Payload, ...]:
    out: list[Payload] = []
    ptype = first
    off = 0
    while ptype != 0:
        _need(len(data) - off >= 4, "truncated payload header")
        nxt, crit, length = struct.unpack_from("!BBH", data, off)
        _need(4 <= length <= len(data) - off, "bad payload length")
        p = decode_payload(ptype, data[off + 4 : off + length], nxt)
        if p is None and crit & 0x80:
            raise DecodeError(f"unsupported critical payload {ptype}")  # §2.5
        if p is not None:
            out.append(p)
        off += length
        if ptype == PayloadType.SK:
            _need(off == len(data), "SK must be the last payload")
            break
        ptype = nxt
    _need(off == len(data), "trailing bytes after payloads")
    return tuple(out)


def decode_header(data: bytes) -> tuple[Message, int]:
    """Header fields and the first payload type."""
    _need(len(data) >= HEADER_LEN, "shorter than an IKE header")
    spi_i, spi_r, first, version, exch, flags, mid, length = struct.unpack_from("!8s8sBBBBII", data)
    _need(version >> 4 == 2, f"IKE major version {version >> 4}")
    _need(length == len(data), "length field does not match the datagram")
    return Message(spi_i, spi_r, exch, flags, mid), first


def decode(data: bytes) -> Message:
    """A whole IKEv2 message; SK payloads stay encrypted. Raises only DecodeError."""
    try:
        m, first = decode_header(data)
        payloads = decode_payloads(first, data[HEADER_LEN:])
    except (struct.error, ValueError, IndexError) as e:  # belt and braces
        raise DecodeError(str(e)) from None
    return Message(m.spi_i, m.spi_r, m.exchange, m.flags, m.message_id, payloads)

"""OSPFv2 packets and LSAs on the wire (RFC 2328 Appendix A), with authentication (App. D).

The codec idiom of every protocol here (`lsr.core.codec`): one class per packet body
and per LSA body with `TYPE`, `value()` (the body's bytes) and `from_value(bytes)`,
filed in a `Registry` per type space that refuses a second class for a code.
`encode_packet` / `decode_packet` add the 24-byte header, the checksum and the
authentication trailer. Decoders raise only `DecodeError` (with a short reason
the instance counts as a drop reason).

    OSPF header (A.3.1)
     0                   1                   2                   3
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   Version #   |     Type      |         Packet length         |
    |                          Router ID                            |
    |                           Area ID                             |
    |           Checksum            |             AuType            |
    |                       Authentication (64 bits)                |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from ipaddress import IPv4Address
from typing import ClassVar

from lsr.core.codec import DecodeError as CodecError
from lsr.core.codec import Registry

VERSION = 2
HEADER_LEN = 24
LSA_HEADER_LEN = 20
MD5_LEN = 16
ALL_SPF_ROUTERS = IPv4Address("224.0.0.5")
ALL_D_ROUTERS = IPv4Address("224.0.0.6")
AREA0 = IPv4Address(0)  # the backbone; decoded zero IDs are this object (identity first)
IP_PROTO_OSPF = 89

_HDR = struct.Struct("!BBH4s4sHH8s")
_HDR_INT = struct.Struct("!BBHIIHH8s")  # the same, with the router and area IDs as ints
_LSA_HDR = struct.Struct("!HBB4s4sIHH")
_U16 = struct.Struct("!H")

# Decoding is a pure function of the bytes, and the same bytes arrive again and again (a
# flooded LSA reaches every router, acknowledgments repeat its header, router IDs recur):
# decoded addresses, LSA headers and LSAs are shared, frozen objects, memoised by their
# bytes. Bounded: a full table is emptied, never grown (a router fed garbage stays small).
_MEMO_MAX = 1 << 14
_ZERO4 = bytes(4)
_ADDRS: dict[bytes, IPv4Address] = {_ZERO4: AREA0}
_HEADERS: dict[bytes, LsaHeader] = {}
_LSAS: dict[bytes, Lsa] = {}
_INSTANCES: dict[bytes, Lsa] = {}  # an LSA's bytes but its age -> one decoding of it
# Whole packets without cryptographic authentication: a router floods the same bytes out
# of every interface, so each of its neighbors decodes what the others already have.
_PACKETS: dict[bytes, Packet] = {}
_BODIES: dict[tuple[int, bytes], Body] = {}  # (packet type, body bytes) -> decoded body


def _memo(table: dict, key: bytes, value: object) -> None:
    if len(table) >= _MEMO_MAX:
        table.clear()
        if table is _ADDRS:
            table[_ZERO4] = AREA0
    table[key] = value


def _addr(b: bytes) -> IPv4Address:
    """IPv4Address(b) for 4 bytes, shared."""
    a = _ADDRS.get(b)
    if a is None:
        a = IPv4Address(b)
        _memo(_ADDRS, b, a)
    return a


class DecodeError(CodecError):
    """A packet or LSA we cannot parse; `reason` is a stable counter name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class PacketType(IntEnum):
    HELLO = 1
    DB_DESCRIPTION = 2
    LS_REQUEST = 3
    LS_UPDATE = 4
    LS_ACK = 5


class AuType(IntEnum):
    NULL = 0
    SIMPLE = 1
    CRYPTOGRAPHIC = 2


class LsType(IntEnum):
    ROUTER = 1
    NETWORK = 2
    SUMMARY_NETWORK = 3
    SUMMARY_ASBR = 4
    AS_EXTERNAL = 5


class LinkType(IntEnum):
    """Router-LSA link types (A.4.2)."""

    POINT_TO_POINT = 1
    TRANSIT = 2
    STUB = 3
    VIRTUAL = 4


# Options field (A.2): the E bit says we take AS-external LSAs (area 0 is not a stub).
OPT_E = 0x02
# DD flags (A.3.3)
DD_MS, DD_M, DD_I = 0x01, 0x02, 0x04

MAX_AGE = 3600  # seconds (B)
MAX_AGE_DIFF = 900
LS_REFRESH_TIME = 1800
MIN_LS_ARRIVAL = 1
INITIAL_SEQ = -0x7FFFFFFF  # 0x80000001 (§12.1.6)
MAX_SEQ = 0x7FFFFFFF


def ip_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    # The one's complement sum of the 16-bit words is the number mod 0xFFFF (2**16 = 1
    # mod 0xFFFF), except that a nonzero sum folds to 0xFFFF, never to 0.
    s = int.from_bytes(data, "big") % 0xFFFF
    if s == 0 and any(data):
        s = 0xFFFF
    return ~s & 0xFFFF


def fletcher_checksum(data: bytes, offset: int) -> int:
    """The ISO 8473 Fletcher checksum of an LSA (§12.1.7): `data` is the LSA from the
    Options field on (LS age excluded) with its checksum zeroed; `offset` is where the
    checksum sits in `data`. The result makes both running sums of `data` zero."""
    c0 = c1 = 0
    for b in data:
        c0 += b
        c1 += c0
    c0 %= 255
    c1 %= 255
    x = ((len(data) - offset - 1) * c0 - c1) % 255
    if x == 0:
        x = 255
    y = 510 - c0 - x
    if y > 255:
        y -= 255
    return (x << 8) | y


def fletcher_ok(data: bytes) -> bool:
    c0 = c1 = 0
    for b in data:
        c0 = (c0 + b) % 255
        c1 = (c1 + c0) % 255
    return c0 == 0 and c1 == 0


# ---------------------------------------------------------------- LSAs


@dataclass(frozen=True, order=True)
class LsaKey:
    """What identifies an LSA (§12.1): LS type, Link State ID, Advertising Router."""

    ls_type: int
    ls_id: IPv4Address
    adv_router: IPv4Address

    def __post_init__(self) -> None:
        # Keys are hashed at every database and list lookup; IPv4Address hashes through
        # hex() each time. The hash is computed once (equality stays the fields').
        # `order`: the fields as ints, which sort as the key does.
        order = (self.ls_type, int(self.ls_id), int(self.adv_router))
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "_hash", hash(order))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined, no-any-return]


_KEYS: dict[tuple[int, int, int], LsaKey] = {}


def lsa_key(ls_type: int, ls_id: IPv4Address, adv_router: IPv4Address) -> LsaKey:
    """LsaKey(ls_type, ls_id, adv_router), shared: a lookup by the key already stored
    then matches by identity, without comparing the fields (bounded table)."""
    k = (ls_type, int(ls_id), int(adv_router))
    key = _KEYS.get(k)
    if key is None:
        if len(_KEYS) >= _MEMO_MAX:
            _KEYS.clear()
        key = _KEYS[k] = LsaKey(ls_type, ls_id, adv_router)
    return key

    def to_json(self) -> dict[str, object]:
        return {"type": self.ls_type, "id": str(self.ls_id), "adv_router": str(self.adv_router)}


@dataclass(frozen=True)
class LsaHeader:
    """A.4.1. `age` is the only field that changes as an LSA ages or is flooded."""

    age: int
    options: int
    ls_type: int
    ls_id: IPv4Address
    adv_router: IPv4Address
    seq: int  # signed 32 bit (§12.1.6)
    checksum: int
    length: int
    raw: bytes = field(default=b"", compare=False, repr=False)  # its 20 bytes, when known

    @cached_property
    def key(self) -> LsaKey:
        return lsa_key(self.ls_type, self.ls_id, self.adv_router)

    def encode(self) -> bytes:
        return self.raw or _LSA_HDR.pack(self.age, self.options, self.ls_type,
                                         self.ls_id.packed, self.adv_router.packed,
                                         self.seq & 0xFFFFFFFF, self.checksum, self.length)

    @classmethod
    def decode(cls, b: bytes | memoryview, off: int = 0) -> LsaHeader:
        if len(b) - off < LSA_HEADER_LEN:
            raise DecodeError("bad-length", "LSA header truncated")
        raw = bytes(b[off:off + LSA_HEADER_LEN])
        h = _HEADERS.get(raw)
        if h is None:
            age, opts, t, lid, adv, seq, ck, length = _LSA_HDR.unpack(raw)
            if seq & 0x80000000:
                seq -= 1 << 32
            h = cls(age, opts, t, _addr(lid), _addr(adv), seq, ck, length, raw)
            _memo(_HEADERS, raw, h)
        return h

    def to_json(self) -> dict[str, object]:
        return {"type": self.ls_type, "id": str(self.ls_id), "adv_router": str(self.adv_router),
                "age": self.age, "seq": f"0x{self.seq & 0xFFFFFFFF:08x}",
                "checksum": f"0x{self.checksum:04x}", "length": self.length}


@dataclass(frozen=True)
class RouterLink:
    """One link of a router-LSA (A.4.2); TOS metrics are not used (RFC 2328 drops TOS)."""

    link_id: IPv4Address
    link_data: IPv4Address
    type: int
    metric: int

    def to_json(self) -> dict[str, object]:
        return {"link_id": str(self.link_id), "link_data": str(self.link_data),
                "type": self.type, "metric": self.metric}


@dataclass(frozen=True)
class RouterLsaBody:
    TYPE: ClassVar[int] = LsType.ROUTER
    flags: int  # V, E, B bits
    links: tuple[RouterLink, ...]

    def value(self) -> bytes:
        out = [struct.pack("!BBH", self.flags, 0, len(self.links))]
        for ln in self.links:
            out.append(struct.pack("!4s4sBBH", ln.link_id.packed, ln.link_data.packed, ln.type,
                                   0, ln.metric))
        return b"".join(out)

    @classmethod
    def from_value(cls, v: bytes) -> RouterLsaBody:
        if len(v) < 4:
            raise DecodeError("bad-length", "router-LSA body")
        flags, _, n = struct.unpack_from("!BBH", v)
        off = 4
        links = []
        for _ in range(n):
            if len(v) - off < 12:
                raise DecodeError("bad-length", "router-LSA link")
            lid, ldata, t, ntos, metric = struct.unpack_from("!4s4sBBH", v, off)
            off += 12 + 4 * ntos
            if off > len(v):
                raise DecodeError("bad-length", "router-LSA TOS metrics")
            links.append(RouterLink(_addr(lid), _addr(ldata), t, metric))
        if off != len(v):
            raise DecodeError("bad-length", "router-LSA trailing bytes")
        return cls(flags, tuple(links))

    def to_json(self) -> dict[str, object]:
        return {"flags": self.flags, "links": [ln.to_json() for ln in self.links]}


@dataclass(frozen=True)
class NetworkLsaBody:
    TYPE: ClassVar[int] = LsType.NETWORK
    mask: IPv4Address
    routers: tuple[IPv4Address, ...]

    def value(self) -> bytes:
        return self.mask.packed + b"".join(r.packed for r in self.routers)

    @classmethod
    def from_value(cls, v: bytes) -> NetworkLsaBody:
        if len(v) < 4 or len(v) % 4:
            raise DecodeError("bad-length", "network-LSA body")
        return cls(IPv4Address(v[:4]),
                   tuple(IPv4Address(v[i:i + 4]) for i in range(4, len(v), 4)))

    def to_json(self) -> dict[str, object]:
        return {"mask": str(self.mask), "routers": [str(r) for r in self.routers]}


@dataclass(frozen=True)
class OpaqueBody:
    """An LSA type we flood but do not use (summary, external, opaque, ...): §13 floods
    every LSA it accepts whatever its type."""

    data: bytes

    def value(self) -> bytes:
        return self.data

    def to_json(self) -> dict[str, object]:
        return {"data": self.data.hex()}


LsaBody = RouterLsaBody | NetworkLsaBody | OpaqueBody
LSA_BODIES: Registry = Registry("OSPF LSA")
for _c in (RouterLsaBody, NetworkLsaBody):
    LSA_BODIES.register(_c)


@dataclass(frozen=True)
class Lsa:
    header: LsaHeader
    body: LsaBody
    raw: bytes = field(default=b"", compare=False, repr=False)  # as received (age included)

    @property
    def key(self) -> LsaKey:
        return self.header.key

    @classmethod
    def build(cls, ls_type: int, ls_id: IPv4Address, adv_router: IPv4Address, seq: int,
              body: LsaBody, age: int = 0, options: int = OPT_E) -> Lsa:
        """A new LSA instance with its length and Fletcher checksum computed (§12.1.7)."""
        v = body.value()
        length = LSA_HEADER_LEN + len(v)
        h = LsaHeader(age, options, ls_type, ls_id, adv_router, seq, 0, length)
        data = h.encode()[2:] + v
        ck = fletcher_checksum(data, 14)
        h = LsaHeader(age, options, ls_type, ls_id, adv_router, seq, ck, length)
        return cls(h, body, h.encode() + v)

    def with_age(self, age: int) -> Lsa:
        """The same instance at another age (the checksum does not cover the age).

        Copies are shared: an instance is flooded, acknowledged and listed at the same
        few ages by every router (frozen objects, so sharing is safe)."""
        aged = self.__dict__.get("_aged")
        if aged is None:
            aged = {}
            object.__setattr__(self, "_aged", aged)
        a = aged.get(age)
        if a is None:
            h = self.header
            raw = _U16.pack(age) + self.raw[2:]
            nh = LsaHeader(age, h.options, h.ls_type, h.ls_id, h.adv_router, h.seq,
                           h.checksum, h.length, raw[:LSA_HEADER_LEN])
            a = aged[age] = Lsa(nh, self.body, raw)
        return a

    def encode(self) -> bytes:
        return self.raw

    @classmethod
    def decode(cls, b: bytes | memoryview, off: int = 0) -> Lsa:
        h = LsaHeader.decode(b, off)
        if h.length < LSA_HEADER_LEN or off + h.length > len(b):
            raise DecodeError("bad-length", f"LSA length {h.length}")
        raw = bytes(b[off:off + h.length])
        lsa = _LSAS.get(raw)
        if lsa is not None:
            return lsa
        # Each hop floods an instance one second older: the same bytes but the age,
        # which the checksum does not cover. The instance is checked and parsed once.
        same = _INSTANCES.get(raw[2:])
        if same is not None:
            lsa = cls(h, same.body, raw)
            _memo(_LSAS, raw, lsa)
            return lsa
        if not fletcher_ok(raw[2:]):
            raise DecodeError("bad-lsa-checksum", f"LSA {h.ls_type} {h.ls_id} {h.adv_router}")
        body_cls = LSA_BODIES.get(h.ls_type)
        v = raw[LSA_HEADER_LEN:]
        body: LsaBody = body_cls.from_value(v) if body_cls else OpaqueBody(v)
        lsa = cls(h, body, raw)
        _memo(_LSAS, raw, lsa)
        _memo(_INSTANCES, raw[2:], lsa)
        return lsa

    def to_json(self) -> dict[str, object]:
        return {**self.header.to_json(), **self.body.to_json()}


# ---------------------------------------------------------------- packets


@dataclass(frozen=True)
class Hello:
    """A.3.2."""

    TYPE: ClassVar[int] = PacketType.HELLO
    mask: IPv4Address
    hello_interval: int
    options: int
    priority: int
    dead_interval: int
    dr: IPv4Address
    bdr: IPv4Address
    neighbors: tuple[IPv4Address, ...]

    def value(self) -> bytes:
        return struct.pack("!4sHBBI4s4s", self.mask.packed, self.hello_interval, self.options,
                           self.priority, self.dead_interval, self.dr.packed,
                           self.bdr.packed) + b"".join(n.packed for n in self.neighbors)

    @classmethod
    def from_value(cls, v: bytes) -> Hello:
        if len(v) < 20 or (len(v) - 20) % 4:
            raise DecodeError("bad-length", "Hello")
        mask, hi, opts, pri, dead, dr, bdr = struct.unpack_from("!4sHBBI4s4s", v)
        nbrs = tuple(_addr(v[i:i + 4]) for i in range(20, len(v), 4))
        return cls(_addr(mask), hi, opts, pri, dead, _addr(dr), _addr(bdr), nbrs)


@dataclass(frozen=True)
class DbDescription:
    """A.3.3."""

    TYPE: ClassVar[int] = PacketType.DB_DESCRIPTION
    mtu: int
    options: int
    flags: int
    seq: int
    headers: tuple[LsaHeader, ...]

    def value(self) -> bytes:
        return struct.pack("!HBBI", self.mtu, self.options, self.flags, self.seq) + \
            b"".join(h.encode() for h in self.headers)

    @classmethod
    def from_value(cls, v: bytes) -> DbDescription:
        if len(v) < 8 or (len(v) - 8) % LSA_HEADER_LEN:
            raise DecodeError("bad-length", "Database Description")
        mtu, opts, flags, seq = struct.unpack_from("!HBBI", v)
        hdrs = tuple(LsaHeader.decode(v, off) for off in range(8, len(v), LSA_HEADER_LEN))
        return cls(mtu, opts, flags, seq, hdrs)


@dataclass(frozen=True)
class LsRequest:
    """A.3.4."""

    TYPE: ClassVar[int] = PacketType.LS_REQUEST
    keys: tuple[LsaKey, ...]

    def value(self) -> bytes:
        return b"".join(struct.pack("!I4s4s", k.ls_type, k.ls_id.packed, k.adv_router.packed)
                        for k in self.keys)

    @classmethod
    def from_value(cls, v: bytes) -> LsRequest:
        if len(v) % 12:
            raise DecodeError("bad-length", "Link State Request")
        keys = []
        for off in range(0, len(v), 12):
            t, lid, adv = struct.unpack_from("!I4s4s", v, off)
            keys.append(lsa_key(t, _addr(lid), _addr(adv)))
        return cls(tuple(keys))


@dataclass(frozen=True)
class LsUpdate:
    """A.3.5."""

    TYPE: ClassVar[int] = PacketType.LS_UPDATE
    lsas: tuple[Lsa, ...]

    def value(self) -> bytes:
        return struct.pack("!I", len(self.lsas)) + b"".join(a.encode() for a in self.lsas)

    @classmethod
    def from_value(cls, v: bytes) -> LsUpdate:
        if len(v) < 4:
            raise DecodeError("bad-length", "Link State Update")
        (n,) = struct.unpack_from("!I", v)
        off, lsas = 4, []
        for _ in range(n):
            a = Lsa.decode(v, off)
            lsas.append(a)
            off += a.header.length
        if off != len(v):
            raise DecodeError("bad-length", "Link State Update: LSA count and length differ")
        return cls(tuple(lsas))


@dataclass(frozen=True)
class LsAck:
    """A.3.6."""

    TYPE: ClassVar[int] = PacketType.LS_ACK
    headers: tuple[LsaHeader, ...]

    def value(self) -> bytes:
        return b"".join(h.encode() for h in self.headers)

    @classmethod
    def from_value(cls, v: bytes) -> LsAck:
        if len(v) % LSA_HEADER_LEN:
            raise DecodeError("bad-length", "Link State Acknowledgment")
        return cls(tuple(LsaHeader.decode(v, off) for off in range(0, len(v), LSA_HEADER_LEN)))


Body = Hello | DbDescription | LsRequest | LsUpdate | LsAck
PACKET_BODIES: Registry = Registry("OSPF packet")
for _c in (Hello, DbDescription, LsRequest, LsUpdate, LsAck):
    PACKET_BODIES.register(_c)
del _c
_BODY_CLASSES = {t: PACKET_BODIES.get(t) for t in PacketType}  # PACKET_BODIES.get, per packet


@dataclass(frozen=True)
class Auth:
    """Interface authentication (App. D): none, simple password, or keyed MD5 (D.3)."""

    type: int = AuType.NULL
    key: bytes = b""
    key_id: int = 1

    @classmethod
    def from_config(cls, kind: str, key: str, key_id: int = 1) -> Auth:
        if kind == "null":
            return cls()
        if kind == "simple":
            return cls(AuType.SIMPLE, key.encode()[:8])
        return cls(AuType.CRYPTOGRAPHIC, key.encode()[:16], key_id)


NO_AUTH = Auth()


@dataclass(frozen=True)
class Packet:
    router_id: IPv4Address
    area: IPv4Address
    body: Body
    crypt_seq: int = 0  # cryptographic sequence number (D.3), 0 unless MD5

    @property
    def type(self) -> int:
        return self.body.TYPE


def encode_packet(p: Packet, auth: Auth = NO_AUTH) -> bytes:
    """Header + body; checksum (A.3.1) or MD5 digest appended (D.4.3)."""
    return packet_bytes(p.router_id, p.type, p.body.value(), auth, p.crypt_seq, p.area)


def packet_bytes(router_id: IPv4Address, ptype: int, v: bytes, auth: Auth = NO_AUTH,
                 crypt_seq: int = 0, area: IPv4Address = AREA0) -> bytes:
    """`encode_packet` from the body's bytes `v` (no packet objects to build: the hot
    senders, flooding and acknowledgments, have the bytes at hand)."""
    length = HEADER_LEN + len(v)
    if auth.type == AuType.NULL:  # the usual case: packed once for the checksum, once for good
        rid, aid = int(router_id), int(area)
        ck = ip_checksum(_HDR_INT.pack(VERSION, ptype, length, rid, aid, 0, 0, _ZERO8)[:16] + v)
        return _HDR_INT.pack(VERSION, ptype, length, rid, aid, ck, 0, _ZERO8) + v
    if auth.type == AuType.CRYPTOGRAPHIC:
        authf = struct.pack("!HBBI", 0, auth.key_id, MD5_LEN, crypt_seq & 0xFFFFFFFF)
        hdr = _HDR.pack(VERSION, ptype, length, router_id.packed, area.packed, 0,
                        auth.type, authf)
        key = auth.key.ljust(MD5_LEN, b"\0")
        return hdr + v + hashlib.md5(hdr + v + key).digest()
    hdr0 = _HDR.pack(VERSION, ptype, length, router_id.packed, area.packed, 0, auth.type,
                     b"\0" * 8)
    ck = ip_checksum(hdr0[:16] + v)  # the 64-bit authentication field is excluded
    authf = auth.key.ljust(8, b"\0") if auth.type == AuType.SIMPLE else b"\0" * 8
    return _HDR.pack(VERSION, ptype, length, router_id.packed, area.packed, ck, auth.type,
                     authf) + v


_ZERO8 = bytes(8)


def decode_packet(b: bytes, auth: Auth = NO_AUTH) -> Packet:
    """Check version, length, checksum and authentication (§8.2, D.5), then the body.

    `b` is the OSPF packet without its IP header (may carry an MD5 trailer). Without
    authentication the result is a function of the bytes alone: memoised (a shared,
    frozen Packet; a packet that fails to decode is decoded again, and fails again).
    """
    if auth.type == AuType.NULL and type(b) is bytes:
        p = _PACKETS.get(b)
        if p is None:
            p = _decode_packet(b, auth)
            _memo(_PACKETS, b, p)
        return p
    return _decode_packet(b, auth)


def _decode_packet(b: bytes, auth: Auth) -> Packet:
    if len(b) < HEADER_LEN:
        raise DecodeError("bad-length", f"{len(b)} bytes")
    ver, t, length, rid, area, _ck, autype, authf = _HDR.unpack_from(b)
    if ver != VERSION:
        raise DecodeError("bad-version", str(ver))
    if length < HEADER_LEN or length > len(b):
        raise DecodeError("bad-length", f"length field {length}, {len(b)} received")
    body_cls = _BODY_CLASSES.get(t) or PACKET_BODIES.get(t)
    if body_cls is None:
        raise DecodeError("bad-type", str(t))
    if autype != auth.type:
        raise DecodeError("auth-mismatch", f"AuType {autype}, configured {auth.type}")
    crypt_seq = 0
    if autype == AuType.CRYPTOGRAPHIC:
        _, key_id, alen, crypt_seq = struct.unpack("!HBBI", authf)
        if key_id != auth.key_id or alen != MD5_LEN or len(b) < length + MD5_LEN:
            raise DecodeError("auth-mismatch", f"key id {key_id}")
        key = auth.key.ljust(MD5_LEN, b"\0")
        if hashlib.md5(b[:length] + key).digest() != b[length:length + MD5_LEN]:
            raise DecodeError("auth-mismatch", "MD5 digest")
    else:
        if ip_checksum(b[:16] + b[24:length]) != 0:  # the auth field is not covered
            raise DecodeError("bad-checksum")
        if autype == AuType.SIMPLE and authf != auth.key.ljust(8, b"\0"):
            raise DecodeError("auth-mismatch", "password")
    v = b[HEADER_LEN:length]
    body = _BODIES.get((t, v))  # routers the same distance away flood the same bodies
    if body is None:
        body = body_cls.from_value(v)
        _memo(_BODIES, (t, v), body)  # type: ignore[arg-type]
    return Packet(_addr(rid), _addr(area), body, crypt_seq)

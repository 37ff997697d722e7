"""BGP path attributes (RFC 4271 §4.3, §5) and RFC 7606 revised error handling.

Each attribute is a class on the shared codec idiom (`lsr.core.codec`): `TYPE`,
`value(ctx)` and `from_value(v, ctx)`, filed in `ATTRIBUTES`; `FLAGS` are the
Optional/Transitive bits it must carry, `FIELD` the `PathAttrs` field it fills,
`ON_ERROR` the RFC 7606 §7 approach for a malformed value. `decode_attributes`
parses a Path Attributes field into a `PathAttrs` (what the RIB keeps), the MP
attributes, and the `Problem`s found; `encode_attributes` is its inverse.

    attribute: | Attr. Flags (1) | Attr. Type Code (1) | Length (1 or 2, E bit) | Value |
    flags: O (0x80) optional, T (0x40) transitive, P (0x20) partial, E (0x10) extended length

RFC 7606 approaches, strongest first (§2): session reset (NOTIFICATION Update
Message Error, the session goes), treat-as-withdraw (every NLRI of the UPDATE,
NLRI field and MP_REACH_NLRI alike, is withdrawn; the session stays), attribute
discard (the attribute is dropped and the UPDATE processed without it). When a
message has several errors the strongest approach applies (§3).

AS numbers: with the 4-octet AS capability (RFC 6793) on both ends AS_PATH and
AGGREGATOR carry 4-octet ASNs. On a 2-octet session they carry 2-octet ASNs
(AS_TRANS for larger ones) with AS4_PATH / AS4_AGGREGATOR beside them
(§4.2.2), and a receiver rebuilds the path (§4.2.3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Any, ClassVar

from bgp.nlri import (
    FAMILIES,
    Family,
    Nlri,
    NlriError,
    decode_next_hop,
    decode_nlri,
    encode_next_hop,
    encode_nlri,
    family_name,
)
from lsr.core.codec import DecodeError, Registry

# Flags (RFC 4271 §4.3)
OPTIONAL, TRANSITIVE, PARTIAL, EXTENDED = 0x80, 0x40, 0x20, 0x10
WELL_KNOWN = TRANSITIVE  # well-known attributes are transitive, not optional
OPT_TRANS = OPTIONAL | TRANSITIVE
OPT_NON_TRANS = OPTIONAL

AS_TRANS = 23456  # RFC 6793 §2
ORIGIN_IGP, ORIGIN_EGP, ORIGIN_INCOMPLETE = 0, 1, 2
AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET = 1, 2, 3, 4
NO_EXPORT, NO_ADVERTISE, NO_EXPORT_SUBCONFED = 0xFFFFFF01, 0xFFFFFF02, 0xFFFFFF03


class AttrType(IntEnum):
    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8  # RFC 1997
    ORIGINATOR_ID = 9  # RFC 4456
    CLUSTER_LIST = 10  # RFC 4456
    MP_REACH_NLRI = 14  # RFC 4760
    MP_UNREACH_NLRI = 15
    EXTENDED_COMMUNITIES = 16  # RFC 4360
    AS4_PATH = 17  # RFC 6793
    AS4_AGGREGATOR = 18


class UpdateSubcode(IntEnum):
    """RFC 4271 §4.5 / §6.3: UPDATE Message Error subcodes."""

    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN = 2
    MISSING_WELL_KNOWN = 3
    ATTRIBUTE_FLAGS_ERROR = 4
    ATTRIBUTE_LENGTH_ERROR = 5
    INVALID_ORIGIN = 6
    INVALID_NEXT_HOP = 8
    OPTIONAL_ATTRIBUTE_ERROR = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class Handling(IntEnum):
    """RFC 7606 §2 approaches, ordered weakest to strongest (§3: the strongest wins)."""

    ATTRIBUTE_DISCARD = 1
    TREAT_AS_WITHDRAW = 2
    SESSION_RESET = 3


@dataclass(frozen=True)
class Problem:
    """One error found in an UPDATE: what RFC 7606 says to do, and what a NOTIFICATION
    would carry (subcode, data = the erroneous attribute, RFC 4271 §6.3)."""

    handling: Handling
    subcode: UpdateSubcode
    attr_type: int | None
    reason: str
    data: bytes = b""


class AttrError(DecodeError):
    """Raised by an attribute's `from_value`; the framing turns it into a `Problem`
    with the class's `ON_ERROR` unless `handling` overrides it."""

    def __init__(self, subcode: UpdateSubcode, reason: str,
                 handling: Handling | None = None) -> None:
        self.subcode, self.reason, self.handling = subcode, reason, handling
        super().__init__(reason)


@dataclass(frozen=True)
class Ctx:
    """What decoding and encoding depend on: 4-octet AS numbers negotiated (RFC 6793)."""

    as4: bool = True


AS4 = Ctx(True)
AS2 = Ctx(False)


# ---------------------------------------------------------------- value types


@dataclass(frozen=True)
class AsPath:
    """AS_PATH segments: (type, ASNs) with AS_SET 1, AS_SEQUENCE 2 (RFC 4271 §4.3)."""

    segments: tuple[tuple[int, tuple[int, ...]], ...] = ()

    @property
    def length(self) -> int:
        """§9.1.2.2 a): an AS_SET counts 1, confederation segments 0 (RFC 5065 §5.3)."""
        n = 0
        for t, asns in self.segments:
            n += len(asns) if t == AS_SEQUENCE else 1 if t == AS_SET else 0
        return n

    @property
    def first_as(self) -> int | None:
        """The neighbouring AS (§9.1.2.2 c): the first AS of a leading AS_SEQUENCE."""
        if self.segments and self.segments[0][0] == AS_SEQUENCE and self.segments[0][1]:
            return self.segments[0][1][0]
        return None

    def contains(self, asn: int) -> bool:
        return any(asn in asns for _, asns in self.segments)

    def prepend(self, asn: int) -> AsPath:
        """§5.1.2 b): prepend to a leading AS_SEQUENCE (255 ASNs a segment), else a new one."""
        segs = list(self.segments)
        if segs and segs[0][0] == AS_SEQUENCE and len(segs[0][1]) < 255:
            segs[0] = (AS_SEQUENCE, (asn,) + segs[0][1])
        else:
            segs.insert(0, (AS_SEQUENCE, (asn,)))
        return AsPath(tuple(segs))

    def __str__(self) -> str:
        out = []
        for t, asns in self.segments:
            s = " ".join(map(str, asns))
            out.append({AS_SET: f"{{{s}}}", AS_CONFED_SEQUENCE: f"({s})",
                        AS_CONFED_SET: f"[{s}]"}.get(t, s))
        return " ".join(out)


@dataclass(frozen=True, order=True)
class ExtCommunity:
    """One extended community (RFC 4360 §2): 8 octets, type (high, low) then value.
    Route targets are subtype 0x02 of type 0x00 (2-octet AS : 4-octet number), 0x01
    (IPv4 : 2-octet number, §4) and 0x02 (4-octet AS : 2-octet number, RFC 5668)."""

    raw: bytes

    @classmethod
    def route_target(cls, text: str) -> ExtCommunity:
        return cls._two_part(text, 0x02)

    @classmethod
    def route_origin(cls, text: str) -> ExtCommunity:
        return cls._two_part(text, 0x03)

    @classmethod
    def _two_part(cls, text: str, subtype: int) -> ExtCommunity:
        left, sep, right = str(text).rpartition(":")
        if not sep or not right.isdigit():
            raise ValueError(f"extended community {text!r} is not ADMIN:NUMBER")
        num = int(right)
        if "." in left:
            if num > 0xFFFF:
                raise ValueError(f"{text!r}: number > 65535 with an IPv4 administrator")
            return cls(struct.pack("!BB4sH", 0x01, subtype, IPv4Address(left).packed, num))
        if not left.isdigit():
            raise ValueError(f"extended community {text!r}: {left!r} is not an AS or address")
        asn = int(left)
        if asn <= 0xFFFF and num <= 0xFFFFFFFF:
            return cls(struct.pack("!BBHI", 0x00, subtype, asn, num))
        if asn <= 0xFFFFFFFF and num <= 0xFFFF:
            return cls(struct.pack("!BBIH", 0x02, subtype, asn, num))
        raise ValueError(f"extended community {text!r} does not fit 6 octets")

    @property
    def type(self) -> int:
        return self.raw[0]

    @property
    def subtype(self) -> int:
        return self.raw[1]

    @property
    def is_route_target(self) -> bool:
        return self.raw[0] in (0x00, 0x01, 0x02) and self.raw[1] == 0x02

    def admin_number(self) -> str | None:
        t = self.raw[0]
        if t == 0x00:
            _, _, a, n = struct.unpack("!BBHI", self.raw)
            return f"{a}:{n}"
        if t == 0x01:
            _, _, ip, n = struct.unpack("!BB4sH", self.raw)
            return f"{IPv4Address(ip)}:{n}"
        if t == 0x02:
            _, _, a, n = struct.unpack("!BBIH", self.raw)
            return f"{a}:{n}"
        return None

    def __str__(self) -> str:
        an = self.admin_number()
        if an is not None and self.raw[1] == 0x02:
            return f"RT:{an}"
        if an is not None and self.raw[1] == 0x03:
            return f"SoO:{an}"
        return self.raw.hex()


@dataclass(frozen=True)
class RawAttr:
    """An attribute we keep as bytes: an unrecognized optional transitive one (§9)."""

    flags: int
    type: int
    value: bytes


@dataclass(frozen=True)
class MpReach:
    """MP_REACH_NLRI (RFC 4760 §3): family, next hop, [(nlri, label)]."""

    family: Family
    next_hop: IPv4Address | IPv6Address
    nlri: tuple[tuple[Nlri, int | None], ...]


@dataclass(frozen=True)
class MpUnreach:
    """MP_UNREACH_NLRI (RFC 4760 §4). Empty `nlri`: the End-of-RIB marker (RFC 4724 §2)."""

    family: Family
    nlri: tuple[Nlri, ...]


@dataclass(frozen=True)
class PathAttrs:
    """The attributes of a route, as the RIB keeps them (hashable: UPDATE packing
    groups NLRI by equal PathAttrs). MP_REACH / MP_UNREACH are not here."""

    origin: int = ORIGIN_IGP
    as_path: AsPath = AsPath()
    next_hop: IPv4Address | None = None  # the NEXT_HOP attribute (IPv4 unicast NLRI field)
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: tuple[int, IPv4Address] | None = None
    communities: tuple[int, ...] = ()
    originator_id: IPv4Address | None = None
    cluster_list: tuple[IPv4Address, ...] = ()
    ext_communities: tuple[ExtCommunity, ...] = ()
    as4_path: AsPath | None = None  # only on the wire of 2-octet sessions
    as4_aggregator: tuple[int, IPv4Address] | None = None
    unknown: tuple[RawAttr, ...] = ()

    def route_targets(self) -> tuple[str, ...]:
        return tuple(str(c.admin_number()) for c in self.ext_communities if c.is_route_target)


ATTRIBUTES: Registry[Any] = Registry("BGP path attribute")

# ---------------------------------------------------------------- attribute classes


def _fixed(v: bytes, n: int, name: str) -> None:
    if len(v) != n:
        raise AttrError(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, f"{name} length {len(v)} != {n}")


def _addr4(b: bytes) -> IPv4Address:
    return IPv4Address(b)


@ATTRIBUTES.register
@dataclass(frozen=True)
class Origin:
    TYPE: ClassVar[int] = AttrType.ORIGIN
    FLAGS: ClassVar[int] = WELL_KNOWN
    FIELD: ClassVar[str] = "origin"
    ON_ERROR: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW  # RFC 7606 §7.1
    origin: int

    def value(self, ctx: Ctx = AS4) -> bytes:
        return bytes([self.origin])

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> Origin:
        _fixed(v, 1, "ORIGIN")
        if v[0] > ORIGIN_INCOMPLETE:
            raise AttrError(UpdateSubcode.INVALID_ORIGIN, f"ORIGIN {v[0]} undefined")
        return cls(v[0])


def _pack_path(p: AsPath, width: int) -> bytes:
    fmt = "!I" if width == 4 else "!H"
    out = bytearray()
    for t, asns in p.segments:
        for i in range(0, max(len(asns), 1), 255):
            chunk = asns[i:i + 255]
            out += bytes([t, len(chunk)])
            for a in chunk:
                out += struct.pack(fmt, a if width == 4 or a <= 0xFFFF else AS_TRANS)
    return bytes(out)


def _unpack_path(v: bytes, width: int, name: str) -> AsPath:
    """RFC 4271 §6.3: a segment of unknown type, of no ASNs, or running past the
    attribute is a malformed AS_PATH (RFC 7606 §7.2)."""
    segs: list[tuple[int, tuple[int, ...]]] = []
    off = 0
    fmt = "!I" if width == 4 else "!H"
    while off < len(v):
        if off + 2 > len(v):
            raise AttrError(UpdateSubcode.MALFORMED_AS_PATH, f"{name}: truncated segment header")
        t, n = v[off], v[off + 1]
        off += 2
        if t not in (AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET):
            raise AttrError(UpdateSubcode.MALFORMED_AS_PATH, f"{name}: segment type {t}")
        if n == 0:
            raise AttrError(UpdateSubcode.MALFORMED_AS_PATH, f"{name}: empty segment")
        if off + n * width > len(v):
            raise AttrError(UpdateSubcode.MALFORMED_AS_PATH, f"{name}: segment overruns")
        asns = tuple(struct.unpack_from(fmt, v, off + i * width)[0] for i in range(n))
        off += n * width
        segs.append((t, asns))
    return AsPath(tuple(segs))


@ATTRIBUTES.register
@dataclass(frozen=True)
class AsPathAttr:
    TYPE: ClassVar[int] = AttrType.AS_PATH
    FLAGS: ClassVar[int] = WELL_KNOWN
    FIELD: ClassVar[str] = "as_path"
    ON_ERROR: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW  # RFC 7606 §7.2
    as_path: AsPath

    def value(self, ctx: Ctx = AS4) -> bytes:
        return _pack_path(self.as_path, 4 if ctx.as4 else 2)

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> AsPathAttr:
        p = _unpack_path(v, 4 if ctx.as4 else 2, "AS_PATH")
        if any(t in (AS_CONFED_SEQUENCE, AS_CONFED_SET) for t, _ in p.segments):
            # RFC 7606 §7.2 (RFC 5065 §5): we are in no confederation.
            raise AttrError(UpdateSubcode.MALFORMED_AS_PATH, "AS_PATH: confederation segment")
        return cls(p)


def martian(a: IPv4Address) -> bool:
    """A NEXT_HOP no router can have: 0/8, 127/8, class D and E (RFC 4271 §6.3
    "syntactically incorrect"; FRR's martian check likewise)."""
    first = a.packed[0]
    return first == 0 or first == 127 or first >= 224


@ATTRIBUTES.register
@dataclass(frozen=True)
class NextHop:
    TYPE: ClassVar[int] = AttrType.NEXT_HOP
    FLAGS: ClassVar[int] = WELL_KNOWN
    FIELD: ClassVar[str] = "next_hop"
    ON_ERROR: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW  # RFC 7606 §7.3
    next_hop: IPv4Address

    def value(self, ctx: Ctx = AS4) -> bytes:
        return self.next_hop.packed

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> NextHop:
        _fixed(v, 4, "NEXT_HOP")
        a = _addr4(v)
        if martian(a):
            raise AttrError(UpdateSubcode.INVALID_NEXT_HOP, f"NEXT_HOP {a} is not a unicast address")
        return cls(a)


@ATTRIBUTES.register
@dataclass(frozen=True)
class Med:
    TYPE: ClassVar[int] = AttrType.MULTI_EXIT_DISC
    FLAGS: ClassVar[int] = OPT_NON_TRANS
    FIELD: ClassVar[str] = "med"
    ON_ERROR: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW  # RFC 7606 §7.4
    med: int

    def value(self, ctx: Ctx = AS4) -> bytes:
        return struct.pack("!I", self.med)

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> Med:
        _fixed(v, 4, "MULTI_EXIT_DISC")
        return cls(struct.unpack("!I", v)[0])


@ATTRIBUTES.register
@dataclass(frozen=True)
class LocalPref:
    TYPE: ClassVar[int] = AttrType.LOCAL_PREF
    FLAGS: ClassVar[int] = WELL_KNOWN
    FIELD: ClassVar[str] = "local_pref"
    ON_ERROR: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW  # RFC 7606 §7.5
    local_pref: int

    def value(self, ctx: Ctx = AS4) -> bytes:
        return struct.pack("!I", self.local_pref)

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> LocalPref:
        _fixed(v, 4, "LOCAL_PREF")
        return cls(struct.unpack("!I", v)[0])


@ATTRIBUTES.register
@dataclass(frozen=True)
class AtomicAggregate:
    TYPE: ClassVar[int] = AttrType.ATOMIC_AGGREGATE
    FLAGS: ClassVar[int] = WELL_KNOWN
    FIELD: ClassVar[str] = "atomic_aggregate"
    ON_ERROR: ClassVar[Handling] = Handling.ATTRIBUTE_DISCARD  # RFC 7606 §7.6
    atomic_aggregate: bool = True

    def value(self, ctx: Ctx = AS4) -> bytes:
        return b""

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> AtomicAggregate:
        _fixed(v, 0, "ATOMIC_AGGREGATE")
        return cls(True)


def _aggregator(v: bytes, width: int, name: str) -> tuple[int, IPv4Address]:
    _fixed(v, width + 4, name)
    asn = int.from_bytes(v[:width], "big")
    return asn, _addr4(v[width:])


@ATTRIBUTES.register
@dataclass(frozen=True)
class Aggregator:
    TYPE: ClassVar[int] = AttrType.AGGREGATOR
    FLAGS: ClassVar[int] = OPT_TRANS
    FIELD: ClassVar[str] = "aggregator"
    ON_ERROR: ClassVar[Handling] = Handling.ATTRIBUTE_DISCARD  # RFC 7606 §7.7
    aggregator: tuple[int, IPv4Address]

    def value(self, ctx: Ctx = AS4) -> bytes:
        asn, addr = self.aggregator
        if ctx.as4:
            return struct.pack("!I", asn) + addr.packed
        return struct.pack("!H", asn if asn <= 0xFFFF else AS_TRANS) + addr.packed

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> Aggregator:
        return cls(_aggregator(v, 4 if ctx.as4 else 2, "AGGREGATOR"))


def _u32s(v: bytes, name: str) -> tuple[int, ...]:
    if not v or len(v) % 4:
        raise AttrError(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
                        f"{name} length {len(v)} is not a non-zero multiple of 4")
    return struct.unpack(f"!{len(v) // 4}I", v)


@ATTRIBUTES.register
@dataclass(frozen=True)
class Communities:
    TYPE: ClassVar[int] = AttrType.COMMUNITIES
    FLAGS: ClassVar[int] = OPT_TRANS
    FIELD: ClassVar[str] = "communities"
    ON_ERROR: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW  # RFC 7606 §7.8
    communities: tuple[int, ...]

    def value(self, ctx: Ctx = AS4) -> bytes:
        return struct.pack(f"!{len(self.communities)}I", *self.communities)

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> Communities:
        return cls(tuple(_u32s(v, "COMMUNITIES")))


@ATTRIBUTES.register
@dataclass(frozen=True)
class OriginatorId:
    TYPE: ClassVar[int] = AttrType.ORIGINATOR_ID
    FLAGS: ClassVar[int] = OPT_NON_TRANS
    FIELD: ClassVar[str] = "originator_id"
    ON_ERROR: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW  # RFC 7606 §7.9
    originator_id: IPv4Address

    def value(self, ctx: Ctx = AS4) -> bytes:
        return self.originator_id.packed

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> OriginatorId:
        _fixed(v, 4, "ORIGINATOR_ID")
        return cls(_addr4(v))


@ATTRIBUTES.register
@dataclass(frozen=True)
class ClusterList:
    TYPE: ClassVar[int] = AttrType.CLUSTER_LIST
    FLAGS: ClassVar[int] = OPT_NON_TRANS
    FIELD: ClassVar[str] = "cluster_list"
    ON_ERROR: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW  # RFC 7606 §7.10
    cluster_list: tuple[IPv4Address, ...]

    def value(self, ctx: Ctx = AS4) -> bytes:
        return b"".join(a.packed for a in self.cluster_list)

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> ClusterList:
        return cls(tuple(IPv4Address(x) for x in _u32s(v, "CLUSTER_LIST")))


@ATTRIBUTES.register
@dataclass(frozen=True)
class ExtCommunities:
    TYPE: ClassVar[int] = AttrType.EXTENDED_COMMUNITIES
    FLAGS: ClassVar[int] = OPT_TRANS
    FIELD: ClassVar[str] = "ext_communities"
    ON_ERROR: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW  # RFC 7606 §7.14
    ext_communities: tuple[ExtCommunity, ...]

    def value(self, ctx: Ctx = AS4) -> bytes:
        return b"".join(c.raw for c in self.ext_communities)

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> ExtCommunities:
        if not v or len(v) % 8:
            raise AttrError(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
                            f"EXTENDED_COMMUNITIES length {len(v)} is not a non-zero multiple of 8")
        return cls(tuple(ExtCommunity(v[i:i + 8]) for i in range(0, len(v), 8)))


@ATTRIBUTES.register
@dataclass(frozen=True)
class As4PathAttr:
    TYPE: ClassVar[int] = AttrType.AS4_PATH
    FLAGS: ClassVar[int] = OPT_TRANS
    FIELD: ClassVar[str] = "as4_path"
    ON_ERROR: ClassVar[Handling] = Handling.ATTRIBUTE_DISCARD  # RFC 6793 §6 (RFC 7606 §7.2)
    as4_path: AsPath

    def value(self, ctx: Ctx = AS4) -> bytes:
        return _pack_path(self.as4_path, 4)

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> As4PathAttr:
        return cls(_unpack_path(v, 4, "AS4_PATH"))


@ATTRIBUTES.register
@dataclass(frozen=True)
class As4Aggregator:
    TYPE: ClassVar[int] = AttrType.AS4_AGGREGATOR
    FLAGS: ClassVar[int] = OPT_TRANS
    FIELD: ClassVar[str] = "as4_aggregator"
    ON_ERROR: ClassVar[Handling] = Handling.ATTRIBUTE_DISCARD  # RFC 6793 §6
    as4_aggregator: tuple[int, IPv4Address]

    def value(self, ctx: Ctx = AS4) -> bytes:
        asn, addr = self.as4_aggregator
        return struct.pack("!I", asn) + addr.packed

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> As4Aggregator:
        return cls(_aggregator(v, 4, "AS4_AGGREGATOR"))


@ATTRIBUTES.register
@dataclass(frozen=True)
class MpReachAttr:
    """RFC 4760 §3: AFI (2) | SAFI (1) | NH length (1) | next hop | reserved (1) | NLRI."""

    TYPE: ClassVar[int] = AttrType.MP_REACH_NLRI
    FLAGS: ClassVar[int] = OPT_NON_TRANS
    FIELD: ClassVar[str] = "mp_reach"
    # RFC 7606 §7.11: a next hop of the wrong length hides where the NLRI starts.
    ON_ERROR: ClassVar[Handling] = Handling.SESSION_RESET
    mp_reach: MpReach

    def value(self, ctx: Ctx = AS4) -> bytes:
        r = self.mp_reach
        nh = encode_next_hop(r.family, r.next_hop)
        body = b"".join(encode_nlri(r.family, n, lab) for n, lab in r.nlri)
        return struct.pack("!HBB", r.family[0], r.family[1], len(nh)) + nh + b"\0" + body

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> MpReachAttr:
        if len(v) < 5:
            raise AttrError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "MP_REACH_NLRI too short")
        afi, safi, nhlen = struct.unpack_from("!HBB", v)
        fam = (afi, safi)
        if fam not in FAMILIES:
            raise AttrError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                            f"MP_REACH_NLRI of {family_name(fam)}", Handling.ATTRIBUTE_DISCARD)
        if 4 + nhlen + 1 > len(v):
            raise AttrError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                            f"MP_REACH_NLRI next hop length {nhlen} overruns")
        nh = decode_next_hop(fam, v[4:4 + nhlen])
        if nh is None:
            raise AttrError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                            f"MP_REACH_NLRI: next hop length {nhlen} for {family_name(fam)}")
        try:
            nlri = decode_nlri(fam, v[4 + nhlen + 1:])
        except NlriError as e:  # RFC 7606 §3 j): cannot be parsed -> session reset
            raise AttrError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, f"MP_REACH_NLRI: {e}") from None
        return cls(MpReach(fam, nh, tuple(nlri)))


@ATTRIBUTES.register
@dataclass(frozen=True)
class MpUnreachAttr:
    """RFC 4760 §4: AFI (2) | SAFI (1) | withdrawn routes."""

    TYPE: ClassVar[int] = AttrType.MP_UNREACH_NLRI
    FLAGS: ClassVar[int] = OPT_NON_TRANS
    FIELD: ClassVar[str] = "mp_unreach"
    ON_ERROR: ClassVar[Handling] = Handling.SESSION_RESET  # RFC 7606 §3 j), §7.12
    mp_unreach: MpUnreach

    def value(self, ctx: Ctx = AS4) -> bytes:
        u = self.mp_unreach
        return struct.pack("!HB", *u.family) + b"".join(
            encode_nlri(u.family, n, None) for n in u.nlri)

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> MpUnreachAttr:
        if len(v) < 3:
            raise AttrError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "MP_UNREACH_NLRI too short")
        afi, safi = struct.unpack_from("!HB", v)
        fam = (afi, safi)
        if fam not in FAMILIES:
            raise AttrError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                            f"MP_UNREACH_NLRI of {family_name(fam)}", Handling.ATTRIBUTE_DISCARD)
        try:
            nlri = decode_nlri(fam, v[3:])
        except NlriError as e:
            raise AttrError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, f"MP_UNREACH_NLRI: {e}") from None
        return cls(MpUnreach(fam, tuple(n for n, _ in nlri)))


_DEFAULTS = {f.name: f.default for f in PathAttrs.__dataclass_fields__.values()}  # type: ignore[attr-defined]
# Encoding order: MP attributes first (RFC 7606 §5.1), then by type code.
_ENCODE_ORDER = sorted(ATTRIBUTES.codes(), key=lambda t: (t not in (14, 15), t))


# ---------------------------------------------------------------- framing


def attribute(flags: int, code: int, value: bytes) -> bytes:
    """One attribute on the wire; the Extended Length bit is set when needed (§4.3)."""
    if len(value) > 255:
        return struct.pack("!BBH", flags | EXTENDED, code, len(value)) + value
    return struct.pack("!BBB", flags & ~EXTENDED, code, len(value)) + value


def encode_attributes(attrs: PathAttrs, ctx: Ctx = AS4, mp_reach: MpReach | None = None,
                      mp_unreach: MpUnreach | None = None) -> bytes:
    """The Path Attributes field. On a 2-octet session (RFC 6793 §4.2.2) an AS_PATH or
    AGGREGATOR with an ASN above 65535 also goes out as AS4_PATH / AS4_AGGREGATOR."""
    vals: dict[int, Any] = {}
    for code in _ENCODE_ORDER:
        cls = ATTRIBUTES.get(code)
        assert cls is not None
        if cls.FIELD == "mp_reach":
            v = mp_reach
        elif cls.FIELD == "mp_unreach":
            v = mp_unreach
        else:
            v = getattr(attrs, cls.FIELD)
            if v == _DEFAULTS[cls.FIELD] and cls.FIELD not in ("origin", "as_path"):
                continue
        if v is not None:
            vals[code] = cls(v)
    vals.pop(AttrType.AS4_PATH, None)
    vals.pop(AttrType.AS4_AGGREGATOR, None)
    if not ctx.as4:
        if any(a > 0xFFFF for _, asns in attrs.as_path.segments for a in asns):
            vals[AttrType.AS4_PATH] = As4PathAttr(attrs.as_path)
        if attrs.aggregator is not None and attrs.aggregator[0] > 0xFFFF:
            vals[AttrType.AS4_AGGREGATOR] = As4Aggregator(attrs.aggregator)
    out = bytearray()
    for code in _ENCODE_ORDER:
        obj = vals.get(code)
        if obj is not None:
            out += attribute(obj.FLAGS, code, obj.value(ctx))
    for raw in attrs.unknown:  # §9: passed on with the Partial bit set
        out += attribute(raw.flags | PARTIAL, raw.type, raw.value)
    return bytes(out)


@dataclass
class Decoded:
    """What `decode_attributes` found."""

    attrs: PathAttrs
    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    problems: list[Problem] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)  # type codes present (before any discard)
    broken: bool = False  # the attribute framing broke (RFC 7606 §4): the rest is unread

    @property
    def handling(self) -> Handling | None:
        return max((p.handling for p in self.problems), default=None)


def decode_attributes(data: bytes, ctx: Ctx = AS4) -> Decoded:
    """Parse a Path Attributes field. Never raises: every problem is a `Problem`
    (whether the session goes is the caller's reading of `Decoded.handling`)."""
    fields: dict[str, Any] = {}
    unknown: list[RawAttr] = []
    d = Decoded(PathAttrs())
    off, end = 0, len(data)
    while off < end:
        # RFC 7606 §4: fewer than 3 (4 with E) octets left, or a length past the end:
        # treat-as-withdraw, and the Total Path Attribute Length still finds the NLRI.
        if end - off < 3 or (data[off] & EXTENDED and end - off < 4):
            d.problems.append(Problem(Handling.TREAT_AS_WITHDRAW,
                                      UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, None,
                                      "attribute header truncated"))
            d.broken = True
            break
        flags, code = data[off], data[off + 1]
        if flags & EXTENDED:
            (length,) = struct.unpack_from("!H", data, off + 2)
            hdr = 4
        else:
            length, hdr = data[off + 2], 3
        if off + hdr + length > end:
            d.problems.append(Problem(Handling.TREAT_AS_WITHDRAW,
                                      UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, code,
                                      f"attribute {code} length {length} overruns the field"))
            d.broken = True
            break
        raw = data[off:off + hdr + length]
        v = data[off + hdr:off + hdr + length]
        off += hdr + length
        cls = ATTRIBUTES.get(code)
        if code in d.seen:
            if code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
                # RFC 7606 §3 g): MP attributes twice -> Malformed Attribute List, reset.
                d.problems.append(Problem(Handling.SESSION_RESET,
                                          UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, code,
                                          f"attribute {code} repeated"))
            else:
                # RFC 7606 §3 g): all occurrences but the first are discarded.
                d.problems.append(Problem(Handling.ATTRIBUTE_DISCARD,
                                          UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, code,
                                          f"attribute {code} repeated"))
            continue
        d.seen.add(code)
        if cls is None:
            if not flags & OPTIONAL:
                # RFC 4271 §6.3: an unrecognized well-known attribute (RFC 7606 keeps it).
                d.problems.append(Problem(Handling.SESSION_RESET,
                                          UpdateSubcode.UNRECOGNIZED_WELL_KNOWN, code,
                                          f"unrecognized well-known attribute {code}", raw))
            elif flags & TRANSITIVE:
                unknown.append(RawAttr(flags & ~EXTENDED, code, v))  # RFC 4271 §9
            continue  # optional non-transitive: quietly ignored (§9)
        if (flags & OPT_TRANS) != cls.FLAGS:
            # RFC 7606 §3 c): O/T bits in conflict -> malformed, treat-as-withdraw. The
            # value is still parsed: an MP attribute's NLRI is what gets withdrawn.
            d.problems.append(Problem(Handling.TREAT_AS_WITHDRAW,
                                      UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, code,
                                      f"attribute {code} flags {flags:#04x}", raw))
        try:
            obj = cls.from_value(v, ctx)
        except AttrError as e:
            d.problems.append(Problem(e.handling or cls.ON_ERROR, e.subcode, code, e.reason, raw))
            continue
        fields[cls.FIELD] = getattr(obj, cls.FIELD)
    d.mp_reach = fields.pop("mp_reach", None)
    d.mp_unreach = fields.pop("mp_unreach", None)
    if ctx.as4:
        # RFC 6793 §4.2.2/§4.2.3 (a NEW speaker from a NEW speaker): AS4_* are discarded.
        fields.pop("as4_path", None)
        fields.pop("as4_aggregator", None)
    else:
        _merge_as4(fields)
    d.attrs = PathAttrs(**fields, unknown=tuple(unknown))
    return d


def _merge_as4(fields: dict[str, Any]) -> None:
    """RFC 6793 §4.2.3: rebuild the 4-octet path from AS_PATH and AS4_PATH."""
    as4_path: AsPath | None = fields.pop("as4_path", None)
    as4_agg = fields.pop("as4_aggregator", None)
    agg = fields.get("aggregator")
    if agg is not None and as4_agg is not None:
        if agg[0] != AS_TRANS:  # the AGGREGATOR came from a NEW speaker: ignore AS4_*
            return
        fields["aggregator"] = as4_agg
    path: AsPath = fields.get("as_path", AsPath())
    if as4_path is None or as4_path.length > path.length:
        return
    # Keep the leading (len(AS_PATH) - len(AS4_PATH)) ASes of AS_PATH, then AS4_PATH.
    keep = path.length - as4_path.length
    segs: list[tuple[int, tuple[int, ...]]] = []
    for t, asns in path.segments:
        if keep <= 0:
            break
        if t == AS_SEQUENCE:
            take = asns[:keep]
            segs.append((t, take))
            keep -= len(take)
        elif t == AS_SET:
            segs.append((t, asns))
            keep -= 1
    fields["as_path"] = AsPath(tuple(segs) + as4_path.segments)

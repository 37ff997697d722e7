"""BGP messages (RFC 4271 §4), capabilities (RFC 5492) and ROUTE-REFRESH (RFC 2918).

    header (§4.1): | Marker (16 x 0xff) | Length (2) | Type (1) |     19..4096 octets

One class per message and per capability on the codec idiom (`lsr.core.codec`),
in `MESSAGES` and `CAPABILITIES`. `encode(msg, ctx)` adds the header;
`decode_message(raw, ctx)` parses one whole message; `MessageReader` frames a TCP
byte stream. Decoders raise only `MessageError` (a `DecodeError`) carrying the
NOTIFICATION it calls for (`notification()`): everything that resets the session,
including an UPDATE whose RFC 7606 handling is "session reset". Lesser UPDATE
problems (treat-as-withdraw, attribute discard) come back in `Update.problems`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address
from typing import Any, ClassVar

from bgp.attrs import (
    AS4,
    AS_TRANS,
    AttrType,
    Ctx,
    Handling,
    MpReach,
    MpUnreach,
    PathAttrs,
    Problem,
    UpdateSubcode,
    decode_attributes,
    encode_attributes,
)
from bgp.nlri import IPV4_UNICAST, Family, Nlri, NlriError, decode_nlri, encode_nlri
from lsr.core.codec import DecodeError, Registry

MARKER = b"\xff" * 16
HEADER_LEN = 19
MAX_LEN = 4096  # §4.1 (RFC 8654 extended messages: not supported)
VERSION = 4
PORT = 179
_HDR = struct.Struct("!16sHB")


class MsgType(IntEnum):
    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5  # RFC 2918


class ErrorCode(IntEnum):
    """NOTIFICATION error codes (§4.5; 7 = RFC 7313)."""

    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5
    CEASE = 6
    ROUTE_REFRESH = 7


class HeaderSubcode(IntEnum):
    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenSubcode(IntEnum):
    UNSPECIFIC = 0
    UNSUPPORTED_VERSION = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7  # RFC 5492 §5


class FsmSubcode(IntEnum):
    """RFC 6608 §4."""

    UNSPECIFIED = 0
    OPEN_SENT = 1
    OPEN_CONFIRM = 2
    ESTABLISHED = 3


class CeaseSubcode(IntEnum):
    """RFC 4486 §4."""

    MAX_PREFIXES = 1
    ADMIN_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMIN_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIG_CHANGE = 6
    COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8


class MessageError(DecodeError):
    """A message error that ends the session: the NOTIFICATION to send (§6)."""

    def __init__(self, code: int, subcode: int, reason: str, data: bytes = b"",
                 problems: tuple[Problem, ...] = ()) -> None:
        self.code, self.subcode, self.data, self.reason = code, subcode, data, reason
        self.problems = problems
        super().__init__(reason)

    def notification(self) -> Notification:
        return Notification(self.code, self.subcode, self.data)


MESSAGES: Registry[Any] = Registry("BGP message")
CAPABILITIES: Registry[Any] = Registry("BGP capability")


# ---------------------------------------------------------------- capabilities (RFC 5492)


class CapCode(IntEnum):
    MULTIPROTOCOL = 1  # RFC 4760 §8
    ROUTE_REFRESH = 2  # RFC 2918 §2
    FOUR_OCTET_AS = 65  # RFC 6793 §3


def _cap_len(v: bytes, n: int, name: str) -> None:
    if len(v) != n:
        raise MessageError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSPECIFIC,
                           f"{name} capability length {len(v)} != {n}")


@CAPABILITIES.register
@dataclass(frozen=True, order=True)
class Multiprotocol:
    """RFC 4760 §8: AFI (2) | Reserved (1) | SAFI (1)."""

    TYPE: ClassVar[int] = CapCode.MULTIPROTOCOL
    afi: int
    safi: int

    @property
    def family(self) -> Family:
        return (self.afi, self.safi)

    def value(self) -> bytes:
        return struct.pack("!HBB", self.afi, 0, self.safi)

    @classmethod
    def from_value(cls, v: bytes) -> Multiprotocol:
        _cap_len(v, 4, "Multiprotocol")
        afi, _, safi = struct.unpack("!HBB", v)
        return cls(afi, safi)


@CAPABILITIES.register
@dataclass(frozen=True, order=True)
class RouteRefreshCap:
    TYPE: ClassVar[int] = CapCode.ROUTE_REFRESH

    def value(self) -> bytes:
        return b""

    @classmethod
    def from_value(cls, v: bytes) -> RouteRefreshCap:
        _cap_len(v, 0, "Route Refresh")
        return cls()


@CAPABILITIES.register
@dataclass(frozen=True, order=True)
class FourOctetAs:
    """RFC 6793 §3: the speaker's 4-octet AS number."""

    TYPE: ClassVar[int] = CapCode.FOUR_OCTET_AS
    asn: int

    def value(self) -> bytes:
        return struct.pack("!I", self.asn)

    @classmethod
    def from_value(cls, v: bytes) -> FourOctetAs:
        _cap_len(v, 4, "4-octet AS")
        return cls(struct.unpack("!I", v)[0])


@dataclass(frozen=True, order=True)
class UnknownCapability:
    """A capability we do not implement: ignored (RFC 5492 §3), kept for views."""

    code: int
    raw: bytes

    @property
    def TYPE(self) -> int:  # noqa: N802 - the idiom's name
        return self.code

    def value(self) -> bytes:
        return self.raw


Capability = Multiprotocol | RouteRefreshCap | FourOctetAs | UnknownCapability


# ---------------------------------------------------------------- messages


@MESSAGES.register
@dataclass(frozen=True)
class Open:
    """§4.2: Version | My AS (2) | Hold Time (2) | BGP Identifier (4) | Opt Parm Len |
    Optional Parameters; parameter type 2 carries capabilities (RFC 5492 §4)."""

    TYPE: ClassVar[int] = MsgType.OPEN
    asn: int  # the real AS (the 4-octet capability's, when there is one)
    hold_time: int
    bgp_id: IPv4Address
    capabilities: tuple[Capability, ...] = ()
    version: int = VERSION

    def value(self, ctx: Ctx = AS4) -> bytes:
        my_as = self.asn if self.asn <= 0xFFFF else AS_TRANS  # RFC 6793 §4.1
        params = b"".join(
            struct.pack("!BBBB", 2, len(c.value()) + 2, c.TYPE, len(c.value())) + c.value()
            for c in self.capabilities)
        if len(params) > 255:
            raise ValueError("optional parameters longer than 255 octets")
        return struct.pack("!BHH4sB", self.version, my_as, self.hold_time,
                           self.bgp_id.packed, len(params)) + params

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> Open:
        if len(v) < 10:
            raise MessageError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_LENGTH,
                               "OPEN too short", struct.pack("!H", len(v) + HEADER_LEN))
        version, my_as, hold, bid, plen = struct.unpack_from("!BHH4sB", v)
        if version != VERSION:  # §6.2: data = the largest version we support
            raise MessageError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSUPPORTED_VERSION,
                               f"version {version}", struct.pack("!H", VERSION))
        if 10 + plen != len(v):
            raise MessageError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSPECIFIC,
                               f"optional parameters length {plen} != {len(v) - 10}")
        caps: list[Capability] = []
        off = 10
        while off < len(v):
            if off + 2 > len(v) or off + 2 + v[off + 1] > len(v):
                raise MessageError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSPECIFIC,
                                   "optional parameter overruns")
            ptype, pl = v[off], v[off + 1]
            pv = v[off + 2:off + 2 + pl]
            off += 2 + pl
            if ptype != 2:  # §6.2: only Capabilities (RFC 5492) are known
                raise MessageError(ErrorCode.OPEN_MESSAGE,
                                   OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
                                   f"optional parameter {ptype}")
            coff = 0
            while coff < len(pv):
                if coff + 2 > len(pv) or coff + 2 + pv[coff + 1] > len(pv):
                    raise MessageError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSPECIFIC,
                                       "capability overruns its parameter")
                code, cl = pv[coff], pv[coff + 1]
                cv = pv[coff + 2:coff + 2 + cl]
                coff += 2 + cl
                ccls = CAPABILITIES.get(code)
                caps.append(ccls.from_value(cv) if ccls else UnknownCapability(code, cv))
        asn = my_as
        four = next((c for c in caps if isinstance(c, FourOctetAs)), None)
        if four is not None:
            asn = four.asn  # RFC 6793 §4.1 (My AS is AS_TRANS when it does not fit)
        # §6.2: a Hold Time of 1 or 2 seconds is unacceptable.
        if hold in (1, 2):
            raise MessageError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNACCEPTABLE_HOLD_TIME,
                               f"hold time {hold}")
        # RFC 6286 §2.2: the BGP Identifier is a non-zero 32-bit number.
        if bid == b"\0\0\0\0":
            raise MessageError(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_BGP_IDENTIFIER,
                               "BGP Identifier 0", bid)
        return cls(asn, hold, IPv4Address(bid), tuple(caps), version)

    def families(self) -> set[Family]:
        """RFC 4760 §8: without any Multiprotocol capability, IPv4 unicast only."""
        fams = {c.family for c in self.capabilities if isinstance(c, Multiprotocol)}
        return fams if fams else {IPV4_UNICAST}

    def has(self, kind: type) -> bool:
        return any(isinstance(c, kind) for c in self.capabilities)


@MESSAGES.register
@dataclass(frozen=True)
class Update:
    """§4.3: Withdrawn Routes Length (2) | Withdrawn Routes | Total Path Attribute
    Length (2) | Path Attributes | NLRI. The IPv4 unicast fields are `withdrawn` and
    `nlri`; other families ride in MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760)."""

    TYPE: ClassVar[int] = MsgType.UPDATE
    withdrawn: tuple[Nlri, ...] = ()
    attrs: PathAttrs | None = None  # None: no Path Attributes (a withdrawal only)
    nlri: tuple[Nlri, ...] = ()
    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    problems: tuple[Problem, ...] = ()  # RFC 7606 findings below session reset

    def value(self, ctx: Ctx = AS4) -> bytes:
        w = b"".join(encode_nlri(IPV4_UNICAST, n) for n in self.withdrawn)
        a = b""
        if self.attrs is not None or self.mp_reach or self.mp_unreach:
            a = encode_attributes(self.attrs or PathAttrs(), ctx, self.mp_reach, self.mp_unreach)
            if self.attrs is None:  # MP_UNREACH alone carries no other attribute (RFC 4760 §4)
                a = _only_mp(a)
        n = b"".join(encode_nlri(IPV4_UNICAST, x) for x in self.nlri)
        return struct.pack("!H", len(w)) + w + struct.pack("!H", len(a)) + a + n

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> Update:
        # §6.3: lengths that do not fit the message -> Malformed Attribute List.
        if len(v) < 4:
            raise MessageError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                               "UPDATE too short")
        (wlen,) = struct.unpack_from("!H", v)
        if 2 + wlen + 2 > len(v):
            raise MessageError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                               f"withdrawn routes length {wlen} overruns")
        (alen,) = struct.unpack_from("!H", v, 2 + wlen)
        aoff = 4 + wlen
        if aoff + alen > len(v):
            raise MessageError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                               f"total path attribute length {alen} overruns")
        try:  # RFC 7606 §5.3: an NLRI field we cannot parse cannot be withdrawn: reset
            withdrawn = tuple(n for n, _ in decode_nlri(IPV4_UNICAST, v[2:2 + wlen]))
            nlri = tuple(n for n, _ in decode_nlri(IPV4_UNICAST, v[aoff + alen:]))
        except NlriError as e:
            raise MessageError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.INVALID_NETWORK_FIELD,
                               str(e)) from None
        if alen == 0:
            if nlri:  # §3 d) of RFC 7606: mandatory attributes missing
                return cls(withdrawn, None, nlri, problems=(Problem(
                    Handling.TREAT_AS_WITHDRAW, UpdateSubcode.MISSING_WELL_KNOWN,
                    AttrType.ORIGIN, "NLRI without path attributes"),))
            return cls(withdrawn)
        d = decode_attributes(v[aoff:aoff + alen], ctx)
        problems = list(d.problems)
        reach = d.mp_reach is not None and bool(d.mp_reach.nlri)
        if nlri or reach:
            # RFC 7606 §3 d): a well-known mandatory attribute missing -> treat-as-withdraw
            need = [AttrType.ORIGIN, AttrType.AS_PATH] + ([AttrType.NEXT_HOP] if nlri else [])
            for code in need:
                if code not in d.seen:
                    problems.append(Problem(Handling.TREAT_AS_WITHDRAW,
                                            UpdateSubcode.MISSING_WELL_KNOWN, code,
                                            f"missing {code.name}", bytes([code])))
        worst = max(problems, key=lambda p: p.handling, default=None)
        if worst is not None and worst.handling == Handling.SESSION_RESET:
            raise MessageError(ErrorCode.UPDATE_MESSAGE, worst.subcode, worst.reason,
                               worst.data, tuple(problems))
        if d.broken and not (nlri or d.mp_reach or d.mp_unreach):
            # RFC 7606 §3 j): the attribute list broke before any NLRI could be found (an
            # MP attribute may sit past the break), so nothing can be treated as
            # withdrawn: session reset.
            assert worst is not None
            raise MessageError(ErrorCode.UPDATE_MESSAGE, worst.subcode, worst.reason,
                               worst.data, tuple(problems))
        # An UPDATE of MP attributes alone has no other path attributes (RFC 4760 §4).
        attrs = None if d.seen <= {AttrType.MP_UNREACH_NLRI} else d.attrs
        return cls(withdrawn, attrs, nlri, d.mp_reach, d.mp_unreach, tuple(problems))

    @property
    def handling(self) -> Handling | None:
        return max((p.handling for p in self.problems), default=None)

    def is_end_of_rib(self) -> Family | None:
        """RFC 4724 §2: an empty UPDATE (IPv4 unicast), or one with only an empty
        MP_UNREACH_NLRI (other families)."""
        if self.withdrawn or self.nlri or self.mp_reach:
            return None
        if self.attrs is None and self.mp_unreach is None:
            return IPV4_UNICAST
        if self.mp_unreach is not None and not self.mp_unreach.nlri and \
                (self.attrs is None or self.attrs == PathAttrs()):
            return self.mp_unreach.family
        return None


def _only_mp(a: bytes) -> bytes:
    """Strip the ORIGIN and empty AS_PATH that `encode_attributes` writes by default."""
    out = bytearray()
    off = 0
    while off < len(a):
        flags, code = a[off], a[off + 1]
        if flags & 0x10:
            (n,) = struct.unpack_from("!H", a, off + 2)
            size = 4 + n
        else:
            size = 3 + a[off + 2]
        if code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
            out += a[off:off + size]
        off += size
    return bytes(out)


@MESSAGES.register
@dataclass(frozen=True)
class Notification:
    """§4.5: Error code | Error subcode | Data."""

    TYPE: ClassVar[int] = MsgType.NOTIFICATION
    code: int
    subcode: int = 0
    data: bytes = b""

    def value(self, ctx: Ctx = AS4) -> bytes:
        return bytes([self.code, self.subcode]) + self.data

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> Notification:
        if len(v) < 2:
            raise MessageError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_LENGTH,
                               "NOTIFICATION too short", struct.pack("!H", len(v) + HEADER_LEN))
        return cls(v[0], v[1], bytes(v[2:]))

    def describe(self) -> str:
        try:
            code = ErrorCode(self.code).name
        except ValueError:
            code = str(self.code)
        return f"{code}/{self.subcode}"


@MESSAGES.register
@dataclass(frozen=True)
class Keepalive:
    """§4.4: the header alone."""

    TYPE: ClassVar[int] = MsgType.KEEPALIVE

    def value(self, ctx: Ctx = AS4) -> bytes:
        return b""

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> Keepalive:
        return cls()


@MESSAGES.register
@dataclass(frozen=True)
class RouteRefresh:
    """RFC 2918 §3: AFI (2) | Reserved (1) | SAFI (1)."""

    TYPE: ClassVar[int] = MsgType.ROUTE_REFRESH
    afi: int
    safi: int

    @property
    def family(self) -> Family:
        return (self.afi, self.safi)

    def value(self, ctx: Ctx = AS4) -> bytes:
        return struct.pack("!HBB", self.afi, 0, self.safi)

    @classmethod
    def from_value(cls, v: bytes, ctx: Ctx = AS4) -> RouteRefresh:
        if len(v) != 4:  # RFC 7313 §5: ROUTE-REFRESH Message Error / Invalid Message Length
            raise MessageError(ErrorCode.ROUTE_REFRESH, 1, f"ROUTE-REFRESH length {len(v) + 19}",
                               v)
        afi, _, safi = struct.unpack("!HBB", v)
        return cls(afi, safi)


Message = Open | Update | Notification | Keepalive | RouteRefresh
KEEPALIVE_BYTES = MARKER + struct.pack("!HB", HEADER_LEN, MsgType.KEEPALIVE)
# §6.1: the smallest legal length of each type (KEEPALIVE exactly 19).
_MIN_LEN = {MsgType.OPEN: 29, MsgType.UPDATE: 23, MsgType.NOTIFICATION: 21,
            MsgType.KEEPALIVE: 19, MsgType.ROUTE_REFRESH: 19}


def encode(msg: Message, ctx: Ctx = AS4) -> bytes:
    """One message with its header. ValueError when it would pass 4096 octets."""
    body = msg.value(ctx)
    n = HEADER_LEN + len(body)
    if n > MAX_LEN:
        raise ValueError(f"{type(msg).__name__} of {n} octets > {MAX_LEN}")
    return MARKER + struct.pack("!HB", n, msg.TYPE) + body


def check_header(h: bytes) -> tuple[int, int]:
    """§6.1 checks on a 19-octet header: (length, type) or MessageError."""
    marker, length, mtype = _HDR.unpack(h)
    if marker != MARKER:
        raise MessageError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED,
                           "marker is not all ones")
    if mtype not in MESSAGES:
        raise MessageError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_TYPE,
                           f"message type {mtype}", bytes([mtype]))
    if length < _MIN_LEN[MsgType(mtype)] or length > MAX_LEN or \
            (mtype == MsgType.KEEPALIVE and length != HEADER_LEN):
        raise MessageError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_LENGTH,
                           f"length {length} for type {mtype}", struct.pack("!H", length))
    return length, mtype


def decode_message(raw: bytes, ctx: Ctx = AS4) -> Message:
    """One whole message (header included)."""
    if len(raw) < HEADER_LEN:
        raise MessageError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_LENGTH,
                           f"{len(raw)} octets", struct.pack("!H", len(raw)))
    length, mtype = check_header(raw[:HEADER_LEN])
    if length != len(raw):
        raise MessageError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_LENGTH,
                           f"length field {length} != {len(raw)}", struct.pack("!H", length))
    cls = MESSAGES.get(mtype)
    assert cls is not None
    result: Message = cls.from_value(raw[HEADER_LEN:], ctx)
    return result


class MessageReader:
    """Frames a TCP byte stream into whole messages (§4.1: the Length field)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Each complete message's bytes; MessageError on a bad header (the stream
        cannot be framed past it)."""
        self.buf += data
        while len(self.buf) >= HEADER_LEN:
            length, _ = check_header(bytes(self.buf[:HEADER_LEN]))
            if len(self.buf) < length:
                return
            raw = bytes(self.buf[:length])
            del self.buf[:length]
            yield raw

"""RFC 5036 LDP messages and TLVs: value types that carry their own wire form.

One class per message and per TLV (the idiom of every codec here,
`lsr.core.codec`): its type code `TYPE`, `value()` encoding what follows the
header, and a `from_value` classmethod decoding it, registered in `MESSAGES`
or `TLVS` (a second class for a code is refused at import). The speaker
(`ldp.session`, `ldp.instance`) reasons on the message dataclasses; the
framing (PDU and message headers, the fast paths, `PduReader`) is `ldp.codec`.
IANA code points are `IntEnum`s.

Decoders raise only `DecodeError`; `status_for` is the one function that maps
a decode `Problem` to the LDP status code sent in the Notification (§3.5.1.2).

Decoding policy (documented choices, RFC section in brackets):

* Mandatory TLVs may appear anywhere in the message (we encode them first, as the
  RFC lays them out).
* A TLV type we do not know at all: U=0 -> Unknown TLV, U=1 -> kept in
  ``unknown_tlvs`` [§3.3]. A *known* TLV that the message does not model (Extended
  Status / Returned PDU / Returned Message in a Notification, ATM session
  parameters, a second Transport Address, a duplicate ...) is kept, with its
  U/F bits, in ``unknown_tlvs`` too; only the first occurrence of a modelled
  TLV fills the field.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import ClassVar, Protocol, Self, TypeVar, cast

from lsr.core.codec import DecodeError as _BaseDecodeError
from lsr.core.codec import Registry, type_codes

LDP_PORT = 646  # UDP hellos and TCP sessions (RFC 5036 §3.10)
ALL_ROUTERS = IPv4Address("224.0.0.2")  # link hellos (§2.4.1)
LDP_VERSION = 1
DEFAULT_MAX_PDU = 4096  # §3.5.3: a value <= 255 means the default, 4096


class MsgType(IntEnum):
    NOTIFICATION = 0x0001
    HELLO = 0x0100
    INITIALIZATION = 0x0200
    KEEPALIVE = 0x0201
    ADDRESS = 0x0300
    ADDRESS_WITHDRAW = 0x0301
    LABEL_MAPPING = 0x0400
    LABEL_REQUEST = 0x0401
    LABEL_WITHDRAW = 0x0402
    LABEL_RELEASE = 0x0403
    LABEL_ABORT_REQUEST = 0x0404


class TlvType(IntEnum):
    FEC = 0x0100
    ADDRESS_LIST = 0x0101
    HOP_COUNT = 0x0103
    PATH_VECTOR = 0x0104
    GENERIC_LABEL = 0x0200
    ATM_LABEL = 0x0201
    FRAME_RELAY_LABEL = 0x0202
    STATUS = 0x0300
    EXTENDED_STATUS = 0x0301
    RETURNED_PDU = 0x0302
    RETURNED_MESSAGE = 0x0303
    COMMON_HELLO_PARAMS = 0x0400
    IPV4_TRANSPORT_ADDRESS = 0x0401
    CONFIGURATION_SEQUENCE_NUMBER = 0x0402
    IPV6_TRANSPORT_ADDRESS = 0x0403
    COMMON_SESSION_PARAMS = 0x0500
    ATM_SESSION_PARAMS = 0x0501
    FRAME_RELAY_SESSION_PARAMS = 0x0502
    LABEL_REQUEST_MESSAGE_ID = 0x0600


class FecType(IntEnum):
    WILDCARD = 0x01
    PREFIX = 0x02


class AddressFamily(IntEnum):
    """IANA address family numbers used in FEC and Address List TLVs."""

    IPV4 = 1
    IPV6 = 2


class StatusCode(IntEnum):
    """Status codes (RFC 5036 §3.9 and IANA), values *without* the E/F bits.

    `FATAL_STATUS` says which ones are sent with E=1 (the session closes).
    """

    SUCCESS = 0x00
    BAD_LDP_IDENTIFIER = 0x01
    BAD_PROTOCOL_VERSION = 0x02
    BAD_PDU_LENGTH = 0x03
    UNKNOWN_MESSAGE_TYPE = 0x04
    BAD_MESSAGE_LENGTH = 0x05
    UNKNOWN_TLV = 0x06
    BAD_TLV_LENGTH = 0x07
    MALFORMED_TLV_VALUE = 0x08
    HOLD_TIMER_EXPIRED = 0x09
    SHUTDOWN = 0x0A
    LOOP_DETECTED = 0x0B
    UNKNOWN_FEC = 0x0C
    NO_ROUTE = 0x0D
    NO_LABEL_RESOURCES = 0x0E
    LABEL_RESOURCES_AVAILABLE = 0x0F
    SESSION_REJECTED_NO_HELLO = 0x10
    SESSION_REJECTED_ADVERTISEMENT_MODE = 0x11
    SESSION_REJECTED_MAX_PDU_LENGTH = 0x12
    SESSION_REJECTED_LABEL_RANGE = 0x13
    KEEPALIVE_TIMER_EXPIRED = 0x14
    LABEL_REQUEST_ABORTED = 0x15
    MISSING_MESSAGE_PARAMETERS = 0x16
    UNSUPPORTED_ADDRESS_FAMILY = 0x17
    SESSION_REJECTED_BAD_KEEPALIVE_TIME = 0x18
    INTERNAL_ERROR = 0x19


FATAL_STATUS = frozenset(
    {
        StatusCode.BAD_LDP_IDENTIFIER,
        StatusCode.BAD_PROTOCOL_VERSION,
        StatusCode.BAD_PDU_LENGTH,
        StatusCode.BAD_MESSAGE_LENGTH,
        StatusCode.BAD_TLV_LENGTH,
        StatusCode.MALFORMED_TLV_VALUE,
        StatusCode.HOLD_TIMER_EXPIRED,
        StatusCode.SHUTDOWN,
        StatusCode.SESSION_REJECTED_NO_HELLO,
        StatusCode.SESSION_REJECTED_ADVERTISEMENT_MODE,
        StatusCode.SESSION_REJECTED_MAX_PDU_LENGTH,
        StatusCode.SESSION_REJECTED_LABEL_RANGE,
        StatusCode.KEEPALIVE_TIMER_EXPIRED,
        StatusCode.SESSION_REJECTED_BAD_KEEPALIVE_TIME,
        StatusCode.INTERNAL_ERROR,
    }
)

STATUS_E_BIT = 0x80000000
STATUS_F_BIT = 0x40000000


# Framing constants the TLV and message classes share with `ldp.codec`.
MSG_HEADER_LEN = 8  # U+type(2) + length(2) + message id(4)          (§3.5)
TLV_HEADER_LEN = 4  # U+F+type(2) + length(2)                        (§3.3)
MAX_LABEL = (1 << 20) - 1  # Generic Label is 20 bits (§3.4.2.1)

U_BIT = 0x8000
F_BIT = 0x4000
TLV_TYPE_MASK = 0x3FFF
MSG_TYPE_MASK = 0x7FFF

# Common Hello Parameters flags (§3.5.2; G from RFC 6720 §4).
HELLO_T_BIT = 0x8000
HELLO_R_BIT = 0x4000
HELLO_G_BIT = 0x2000
# Common Session Parameters flags octet (§3.5.3).
CSP_A_BIT = 0x80
CSP_D_BIT = 0x40

_STATUS_CODE_MASK = 0x3FFFFFFF
_AF_ADDR_LEN = {AddressFamily.IPV4: 4, AddressFamily.IPV6: 16}
_AF_MAX_PLEN = {AddressFamily.IPV4: 32, AddressFamily.IPV6: 128}
_KNOWN_TLV_TYPES = frozenset(int(t) for t in TlvType)


# ====================================================================== errors


class Problem(Enum):
    """What went wrong while decoding; mapped to a status by `status_for`."""

    PDU_TRUNCATED = "pdu-truncated"
    BAD_PDU_LENGTH = "bad-pdu-length"
    BAD_VERSION = "bad-version"
    BAD_MESSAGE_LENGTH = "bad-message-length"
    UNKNOWN_MESSAGE = "unknown-message"
    BAD_TLV_LENGTH = "bad-tlv-length"
    UNKNOWN_TLV = "unknown-tlv"
    MALFORMED_VALUE = "malformed-value"
    UNSUPPORTED_AF = "unsupported-af"
    UNKNOWN_FEC = "unknown-fec"
    MISSING_PARAMETER = "missing-parameter"


def status_for(problem: Problem, msg_id: int = 0, msg_type: int = 0) -> Status:
    """THE mapping from decode problems to LDP status codes (§3.5.1.2, §3.9).

    The E (fatal) bit follows `ldp.messages.FATAL_STATUS`.
    """
    code = {
        # §3.5.1.2.1 (PDU header errors): fatal.
        Problem.PDU_TRUNCATED: StatusCode.BAD_PDU_LENGTH,
        Problem.BAD_PDU_LENGTH: StatusCode.BAD_PDU_LENGTH,
        Problem.BAD_VERSION: StatusCode.BAD_PROTOCOL_VERSION,
        # §3.5.1.2.2 (message formatting errors).
        Problem.BAD_MESSAGE_LENGTH: StatusCode.BAD_MESSAGE_LENGTH,  # fatal
        Problem.UNKNOWN_MESSAGE: StatusCode.UNKNOWN_MESSAGE_TYPE,  # only when U=0
        Problem.BAD_TLV_LENGTH: StatusCode.BAD_TLV_LENGTH,  # fatal
        Problem.UNKNOWN_TLV: StatusCode.UNKNOWN_TLV,  # only when U=0
        Problem.MALFORMED_VALUE: StatusCode.MALFORMED_TLV_VALUE,  # fatal
        Problem.MISSING_PARAMETER: StatusCode.MISSING_MESSAGE_PARAMETERS,
        # §3.4.1.1 / §3.5.5.1: unsupported address family, unknown FEC element.
        Problem.UNSUPPORTED_AF: StatusCode.UNSUPPORTED_ADDRESS_FAMILY,
        Problem.UNKNOWN_FEC: StatusCode.UNKNOWN_FEC,
    }[problem]
    return Status.of(code, msg_id, msg_type)


class DecodeError(_BaseDecodeError):
    """The only exception decoders raise. `status` is what to put in the Notification."""

    status: Status
    detail: str
    msg_id: int
    msg_type: int
    problem: Problem

    def __init__(self, problem: Problem, detail: str, msg_id: int = 0, msg_type: int = 0):
        super().__init__(detail)
        self.problem = problem
        self.detail = detail
        self.msg_id = msg_id
        self.msg_type = msg_type
        self.status = status_for(problem, msg_id, msg_type)

    @property
    def fatal(self) -> bool:
        return self.status.fatal

    def __repr__(self) -> str:
        return (
            f"DecodeError({self.problem.name}, {self.detail!r}, "
            f"msg_id={self.msg_id}, msg_type={self.msg_type:#06x})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DecodeError) and (
            self.problem,
            self.detail,
            self.msg_id,
            self.msg_type,
        ) == (other.problem, other.detail, other.msg_id, other.msg_type)

    def __hash__(self) -> int:
        return hash((self.problem, self.detail, self.msg_id, self.msg_type))


def _fail(problem: Problem, detail: str) -> DecodeError:
    return DecodeError(problem, detail)


# ====================================================================== value types


@dataclass(frozen=True, order=True)
class LdpId:
    """LDP Identifier (§2.2.2): LSR ID + label space (0 = per-platform)."""

    lsr_id: IPv4Address
    label_space: int = 0

    def __str__(self) -> str:
        return f"{self.lsr_id}:{self.label_space}"


@dataclass(frozen=True, order=True)
class WildcardFec:
    """Wildcard FEC element (§3.4.1): only in Withdraw and Release."""


@dataclass(frozen=True, order=True)
class PrefixFec:
    """Prefix FEC element (§3.4.1), IPv4 or IPv6."""

    prefix: IPv4Network | IPv6Network


FecElement = WildcardFec | PrefixFec


# ====================================================================== TLV framing
#
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |U|F|        Type               |            Length             |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                                                               |
# |                             Value                             |
# ~                                                               ~
# |                                                               |
# |                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                               |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                  (§3.3 TLV Encoding)

_TLV_HDR = struct.Struct("!HH")


def _tlv(tlv_type: int, value: bytes, u_bit: bool = False, f_bit: bool = False) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"TLV {tlv_type:#06x} value too long ({len(value)} octets)")
    head = (U_BIT if u_bit else 0) | (F_BIT if f_bit else 0) | (tlv_type & TLV_TYPE_MASK)
    return _TLV_HDR.pack(head, len(value)) + value


@dataclass(frozen=True)
class UnknownTlv:
    """A TLV we do not understand, kept with its U and F bits (§3.3)."""

    tlv_type: int  # 14 bits
    value: bytes
    u_bit: bool
    f_bit: bool

    def encode(self) -> bytes:
        return _tlv(self.tlv_type, self.value, self.u_bit, self.f_bit)


class _Tlv(Protocol):
    """What a message needs of a TLV class: its type code(s) and wire form."""

    @property
    def TYPE(self) -> int: ...

    def value(self) -> bytes: ...


def _tlvs(*tlvs: _Tlv | None, unknown: Sequence[UnknownTlv] = ()) -> bytes:
    """The TLVs of a message body, in order (None = an optional TLV left out)."""
    out = [_tlv(t.TYPE, t.value()) for t in tlvs if t is not None]
    for u in unknown:
        out.append(u.encode())
    return b"".join(out)


def _split_tlvs(body: bytes) -> list[UnknownTlv]:
    """Cut a message body into raw TLVs (§3.3); a TLV overrunning the message is fatal."""
    out: list[UnknownTlv] = []
    off = 0
    while off < len(body):
        if len(body) - off < TLV_HEADER_LEN:
            raise _fail(Problem.BAD_TLV_LENGTH, f"{len(body) - off} stray octets after TLVs")
        head, length = _TLV_HDR.unpack_from(body, off)
        off += TLV_HEADER_LEN
        if length > len(body) - off:
            raise _fail(
                Problem.BAD_TLV_LENGTH,
                f"TLV {head & TLV_TYPE_MASK:#06x} length {length} exceeds message ({len(body) - off} left)",
            )
        out.append(
            UnknownTlv(
                head & TLV_TYPE_MASK,
                body[off : off + length],
                bool(head & U_BIT),
                bool(head & F_BIT),
            )
        )
        off += length
    return out


def _expect_len(v: bytes, n: int, code: int) -> None:
    if len(v) != n:
        raise _fail(Problem.BAD_TLV_LENGTH, f"TLV {code:#06x} length {len(v)}, expected {n}")


# The TLV classes below (except Status, also a value the speaker keeps) are
# built to encode a message and read once when decoding one: plain slotted
# dataclasses, as building a frozen one costs twice as much on these paths.
TLVS: Registry[object] = Registry("LDP TLV")


# ====================================================================== FEC TLV
#
# FEC TLV (§3.4.1):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |0|0| FEC (0x0100)              |      Length                   |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                        FEC Element 1                          |
# ~                                                               ~
# |                        FEC Element n                          |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#
# Wildcard element: one octet, type 0x01; it MUST be the only element.
# Prefix element (prefix padded to a byte boundary: ceil(PreLen/8) octets):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |  Prefix (2)   |     Address Family            |     PreLen    |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                     Prefix                                    |
# ~                                                               ~
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+


@TLVS.register
@dataclass(slots=True)
class FecTlv:
    TYPE: ClassVar[int] = TlvType.FEC
    SLOT: ClassVar[str] = "fec"
    fec: tuple[FecElement, ...]

    def value(self) -> bytes:
        fec = self.fec
        if not fec:
            raise ValueError("FEC TLV needs at least one element")
        parts: list[bytes] = []
        for elem in fec:
            if isinstance(elem, WildcardFec):
                if len(fec) != 1:
                    raise ValueError("Wildcard FEC element must be the only element (§3.4.1)")
                parts.append(bytes([FecType.WILDCARD]))
            elif isinstance(elem, PrefixFec):
                net = elem.prefix
                af = AddressFamily.IPV4 if net.version == 4 else AddressFamily.IPV6
                plen = net.prefixlen
                parts.append(
                    struct.pack("!BHB", FecType.PREFIX, af, plen)
                    + net.network_address.packed[: (plen + 7) // 8]
                )
            else:
                raise ValueError(f"not a FEC element: {elem!r}")
        return b"".join(parts)

    @classmethod
    def from_value(cls, v: bytes, code: int) -> FecTlv:
        if not v:
            raise _fail(Problem.BAD_TLV_LENGTH, "empty FEC TLV")
        elems: list[FecElement] = []
        off = 0
        while off < len(v):
            etype = v[off]
            off += 1
            if etype == FecType.WILDCARD:
                if off != 1 or len(v) != 1:
                    raise _fail(Problem.MALFORMED_VALUE, "Wildcard FEC element not alone (§3.4.1)")
                elems.append(WildcardFec())
            elif etype == FecType.PREFIX:
                if len(v) - off < 3:
                    raise _fail(Problem.MALFORMED_VALUE, "truncated Prefix FEC element")
                af, plen = struct.unpack_from("!HB", v, off)
                off += 3
                if af not in _AF_ADDR_LEN:
                    raise _fail(Problem.UNSUPPORTED_AF, f"Prefix FEC address family {af}")
                family = AddressFamily(af)
                if plen > _AF_MAX_PLEN[family]:
                    raise _fail(
                        Problem.MALFORMED_VALUE, f"prefix length {plen} too long for {family.name}"
                    )
                nbytes = (plen + 7) // 8
                if len(v) - off < nbytes:
                    raise _fail(Problem.MALFORMED_VALUE, "truncated Prefix FEC prefix")
                raw = v[off : off + nbytes].ljust(_AF_ADDR_LEN[family], b"\0")
                off += nbytes
                # Bits beyond PreLen in the last octet are ignored (masked).
                net: IPv4Network | IPv6Network
                if family == AddressFamily.IPV4:
                    net = IPv4Network((raw, plen), strict=False)
                else:
                    net = IPv6Network((raw, plen), strict=False)
                elems.append(PrefixFec(net))
            else:
                # §3.4.1.1: a FEC element type we cannot decode -> "Unknown FEC".
                raise _fail(Problem.UNKNOWN_FEC, f"FEC element type {etype}")
        return cls(tuple(elems))


# ====================================================================== Label TLVs
#
# Generic Label TLV (§3.4.2.1):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |0|0| Generic Label (0x0200)    |      Length                   |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |     Label                                                     |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# A 20-bit label in a 4-octet field. Reserved values 1 and 4..15 (RFC 3032 §2.1)
# are never signalled and are malformed here (as FRR and holo do); 0, 2, 3 are fine.


def label_ok(label: int) -> bool:
    """May `label` be signalled in a Generic Label TLV?"""
    return 0 <= label <= MAX_LABEL and not (label == 1 or 4 <= label <= 15)



@TLVS.register
@dataclass(slots=True)
class GenericLabelTlv:
    TYPE: ClassVar[int] = TlvType.GENERIC_LABEL
    SLOT: ClassVar[str] = "label"
    label: int

    def value(self) -> bytes:
        if not label_ok(self.label):
            raise ValueError(f"label {self.label} cannot be signalled")
        return struct.pack("!I", self.label)

    @classmethod
    def from_value(cls, v: bytes, code: int) -> GenericLabelTlv:
        _expect_len(v, 4, code)
        (label,) = struct.unpack("!I", v)
        if not label_ok(label):
            raise _fail(Problem.MALFORMED_VALUE, f"bad Generic Label value {label:#x}")
        return cls(label)


# ====================================================================== Address List TLV
#
# Address List TLV (§3.4.3):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |0|0| Address List (0x0101)     |      Length                   |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |     Address Family            |                               |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
# |                                                               |
# |                        Addresses                              |
# ~                                                               ~
# |                                                               |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+


@TLVS.register
@dataclass(slots=True)
class AddressListTlv:
    TYPE: ClassVar[int] = TlvType.ADDRESS_LIST
    SLOT: ClassVar[str] = "address_list"
    family: AddressFamily
    addresses: tuple[IPv4Address | IPv6Address, ...]

    def value(self) -> bytes:
        family = self.family
        if family not in _AF_ADDR_LEN:
            raise ValueError(f"unsupported address family {family}")
        want = 4 if family == AddressFamily.IPV4 else 6
        for a in self.addresses:
            if a.version != want:
                raise ValueError(f"address {a} does not belong to family {family.name}")
        return struct.pack("!H", family) + b"".join(a.packed for a in self.addresses)

    @classmethod
    def from_value(cls, v: bytes, code: int) -> AddressListTlv:
        if len(v) < 2:
            raise _fail(Problem.BAD_TLV_LENGTH, "Address List TLV shorter than its family field")
        (af,) = struct.unpack_from("!H", v)
        if af not in _AF_ADDR_LEN:
            # §3.5.5.1: "Unsupported Address Family" (non-fatal).
            raise _fail(Problem.UNSUPPORTED_AF, f"Address List family {af}")
        family = AddressFamily(af)
        size = _AF_ADDR_LEN[family]
        if (len(v) - 2) % size:
            raise _fail(
                Problem.BAD_TLV_LENGTH, f"Address List of {len(v) - 2} octets for {family.name}"
            )
        ip = IPv4Address if family == AddressFamily.IPV4 else IPv6Address
        return cls(family, tuple(ip(v[i : i + size]) for i in range(2, len(v), size)))


# ====================================================================== Hop Count / Path Vector
#
# Hop Count TLV (§3.4.4):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |0|0| Hop Count (0x0103)        |      Length                   |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |     HC Value  |
# +-+-+-+-+-+-+-+-+
#
# Path Vector TLV (§3.4.5):
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |0|0| Path Vector (0x0104)      |        Length                 |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                            LSR Id 1                           |
# ~                                                               ~
# |                            LSR Id n                           |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+


@TLVS.register
@dataclass(slots=True)
class HopCountTlv:
    TYPE: ClassVar[int] = TlvType.HOP_COUNT
    SLOT: ClassVar[str] = "hop_count"
    count: int

    def value(self) -> bytes:
        return struct.pack("!B", self.count)

    @classmethod
    def from_value(cls, v: bytes, code: int) -> HopCountTlv:
        _expect_len(v, 1, code)
        return cls(v[0])


@TLVS.register
@dataclass(slots=True)
class PathVectorTlv:
    TYPE: ClassVar[int] = TlvType.PATH_VECTOR
    SLOT: ClassVar[str] = "path_vector"
    lsr_ids: tuple[IPv4Address, ...]

    def value(self) -> bytes:
        return b"".join(IPv4Address(a).packed for a in self.lsr_ids)

    @classmethod
    def from_value(cls, v: bytes, code: int) -> PathVectorTlv:
        if len(v) % 4:
            raise _fail(Problem.BAD_TLV_LENGTH, f"Path Vector length {len(v)} not a multiple of 4")
        return cls(tuple(IPv4Address(v[i : i + 4]) for i in range(0, len(v), 4)))


# ====================================================================== Status TLV
#
# Status TLV (§3.4.6):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |U|F| Status (0x0300)           |      Length                   |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                         Status Code                           |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                         Message ID                            |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |      Message Type             |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# Status Code: |E|F|             Status Data (30 bits)             |


@TLVS.register
@dataclass(frozen=True)
class Status:
    """Status TLV (§3.4.6). `code` is a StatusCode value without E/F bits."""

    TYPE: ClassVar[int] = TlvType.STATUS
    SLOT: ClassVar[str] = "status"
    code: int
    fatal: bool
    forward: bool = False
    message_id: int = 0
    message_type: int = 0

    @classmethod
    def of(cls, code: StatusCode, message_id: int = 0, message_type: int = 0) -> Status:
        return cls(int(code), code in FATAL_STATUS, False, message_id, message_type)

    @property
    def wire_code(self) -> int:
        return (
            (STATUS_E_BIT if self.fatal else 0) | (STATUS_F_BIT if self.forward else 0) | self.code
        )

    def value(self) -> bytes:
        if not 0 <= self.code <= _STATUS_CODE_MASK:
            raise ValueError(f"status code {self.code:#x} does not fit 30 bits")
        return struct.pack("!IIH", self.wire_code, self.message_id, self.message_type)

    @classmethod
    def from_value(cls, v: bytes, code: int) -> Status:
        _expect_len(v, 10, code)
        wire, mid, mtype = struct.unpack("!IIH", v)
        return cls(
            code=wire & _STATUS_CODE_MASK,
            fatal=bool(wire & STATUS_E_BIT),
            forward=bool(wire & STATUS_F_BIT),
            message_id=mid,
            message_type=mtype,
        )


# ====================================================================== Hello TLVs
#
# Common Hello Parameters TLV (§3.5.2; G bit from RFC 6720 §4):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |0|0| Common Hello Parms(0x0400)|      Length                   |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |      Hold Time                |T|R|G|    Reserved             |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#
# IPv4 Transport Address TLV (§3.5.2; IPv6 is type 0x0403 with 16 octets):
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |0|0| IPv4 Transport Addr(0x0401)|      Length (4)              |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                   IPv4 Transport Address                      |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#
# Configuration Sequence Number TLV (§3.5.2):
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |0|0| Config Seq Number (0x0402)|      Length (4)               |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                   Configuration Sequence Number               |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#
# Label Request Message ID TLV (§3.5.7, §3.5.9) has the same shape: type 0x0600,
# length 4, the Message ID of the Label Request.


@TLVS.register
@dataclass(slots=True)
class CommonHelloParamsTlv:
    TYPE: ClassVar[int] = TlvType.COMMON_HELLO_PARAMS
    SLOT: ClassVar[str] = "common_hello"
    holdtime: int
    targeted: bool = False
    request_targeted: bool = False
    gtsm: bool = False

    def value(self) -> bytes:
        flags = (
            (HELLO_T_BIT if self.targeted else 0)
            | (HELLO_R_BIT if self.request_targeted else 0)
            | (HELLO_G_BIT if self.gtsm else 0)
        )
        return struct.pack("!HH", self.holdtime, flags)

    @classmethod
    def from_value(cls, v: bytes, code: int) -> CommonHelloParamsTlv:
        if len(v) != 4:  # holo/FRR: exactly 4 octets, else malformed
            raise _fail(Problem.MALFORMED_VALUE, f"Common Hello Parameters length {len(v)} != 4")
        hold, flags = struct.unpack("!HH", v)
        return cls(
            hold, bool(flags & HELLO_T_BIT), bool(flags & HELLO_R_BIT), bool(flags & HELLO_G_BIT)
        )


@TLVS.register
@dataclass(slots=True)
class TransportAddressTlv:
    """IPv4 (0x0401) or IPv6 (0x0403) Transport Address: one class, two codes."""

    TYPES: ClassVar[tuple[int, int]] = (
        TlvType.IPV4_TRANSPORT_ADDRESS,
        TlvType.IPV6_TRANSPORT_ADDRESS,
    )
    SLOT: ClassVar[str] = "transport_address"
    address: IPv4Address | IPv6Address

    @property
    def TYPE(self) -> int:
        return self.TYPES[0] if self.address.version == 4 else self.TYPES[1]

    def value(self) -> bytes:
        return self.address.packed

    @classmethod
    def from_value(cls, v: bytes, code: int) -> TransportAddressTlv:
        if code == TlvType.IPV4_TRANSPORT_ADDRESS:
            _expect_len(v, 4, code)
            return cls(IPv4Address(v))
        _expect_len(v, 16, code)
        return cls(IPv6Address(v))


@TLVS.register
@dataclass(slots=True)
class ConfigSeqTlv:
    TYPE: ClassVar[int] = TlvType.CONFIGURATION_SEQUENCE_NUMBER
    SLOT: ClassVar[str] = "config_seq"
    seq: int

    def value(self) -> bytes:
        return struct.pack("!I", self.seq)

    @classmethod
    def from_value(cls, v: bytes, code: int) -> ConfigSeqTlv:
        _expect_len(v, 4, code)
        return cls(int(struct.unpack("!I", v)[0]))


@TLVS.register
@dataclass(slots=True)
class LabelRequestIdTlv:
    TYPE: ClassVar[int] = TlvType.LABEL_REQUEST_MESSAGE_ID
    SLOT: ClassVar[str] = "request_msg_id"
    msg_id: int

    def value(self) -> bytes:
        return struct.pack("!I", self.msg_id)

    @classmethod
    def from_value(cls, v: bytes, code: int) -> LabelRequestIdTlv:
        _expect_len(v, 4, code)
        return cls(int(struct.unpack("!I", v)[0]))


# ====================================================================== Session TLV
#
# Common Session Parameters TLV (§3.5.3):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |0|0| Common Sess Parms (0x0500)|      Length                   |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# | Protocol Version              |      KeepAlive Time           |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |A|D|  Reserved |     PVLim     |      Max PDU Length           |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                 Receiver LDP Identifier                       |
# +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                               |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

_CSP = struct.Struct("!HHBBH4sH")


@TLVS.register
@dataclass(slots=True)
class CommonSessionParamsTlv:
    TYPE: ClassVar[int] = TlvType.COMMON_SESSION_PARAMS
    SLOT: ClassVar[str] = "common_session"
    protocol_version: int
    keepalive_time: int
    downstream_on_demand: bool
    loop_detection: bool
    path_vector_limit: int
    max_pdu_length: int
    receiver: LdpId

    def value(self) -> bytes:
        flags = (CSP_A_BIT if self.downstream_on_demand else 0) | (
            CSP_D_BIT if self.loop_detection else 0
        )
        return _CSP.pack(
            self.protocol_version,
            self.keepalive_time,
            flags,
            self.path_vector_limit,
            self.max_pdu_length,
            IPv4Address(self.receiver.lsr_id).packed,
            self.receiver.label_space,
        )

    @classmethod
    def from_value(cls, v: bytes, code: int) -> CommonSessionParamsTlv:
        _expect_len(v, _CSP.size, code)
        ver, ka, flags, pvlim, maxpdu, lsr, space = _CSP.unpack(v)
        return cls(
            ver, ka, bool(flags & CSP_A_BIT), bool(flags & CSP_D_BIT), pvlim, maxpdu,
            LdpId(IPv4Address(lsr), space),
        )  # fmt: skip


# ====================================================================== message bodies
#
# Every message (§3.5):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |U|   Message Type              |      Message Length           |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                     Message ID                                |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                                                               |
# +                                                               +
# |                     Mandatory Parameters                      |
# +                                                               +
# |                                                               |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                                                               |
# +                                                               +
# |                     Optional Parameters                       |
# +                                                               +
# |                                                               |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# Message Length counts the octets after the Length field (Message ID included).
# A message's `value()` is its parameters (the TLVs); `ldp.codec` adds the header.
#
# Per-message layouts (mandatory TLVs first, optional after):
#   Notification (0x0001)        §3.5.1:  Status TLV; opt. Extended Status, Returned PDU/Message
#   Hello (0x0100)               §3.5.2:  Common Hello Params; opt. IPv4/IPv6 Transport Address,
#                                         Configuration Sequence Number
#   Initialization (0x0200)      §3.5.3:  Common Session Params; opt. ATM/FR session params
#   KeepAlive (0x0201)           §3.5.4:  none
#   Address (0x0300)             §3.5.5:  Address List TLV
#   Address Withdraw (0x0301)    §3.5.6:  Address List TLV
#   Label Mapping (0x0400)       §3.5.7:  FEC TLV, Label TLV; opt. Label Request Message ID,
#                                         Hop Count, Path Vector
#   Label Request (0x0401)       §3.5.8:  FEC TLV; opt. Hop Count, Path Vector
#   Label Abort Request (0x0404) §3.5.9:  FEC TLV, Label Request Message ID TLV
#   Label Withdraw (0x0402)      §3.5.10: FEC TLV; opt. Label TLV
#   Label Release (0x0403)       §3.5.11: FEC TLV; opt. Label TLV
#
# Example, Label Mapping (§3.5.7):
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |0|   Label Mapping (0x0400)    |      Message Length           |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                     Message ID                                |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                     FEC TLV                                   |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                     Label TLV                                 |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                     Optional Parameters                       |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# The other messages differ only in the TLV rows listed in the table above.


class _TlvClass(Protocol):
    SLOT: ClassVar[str]  # its name in "missing mandatory ... TLV"

    @classmethod
    def from_value(cls, v: bytes, code: int) -> Self: ...


_S = TypeVar("_S", bound=_TlvClass)
_TlvTable = dict[int, type[_TlvClass]]


def _table(*classes: type[_TlvClass]) -> _TlvTable:
    """Type code -> TLV class, for the TLVs one message models."""
    return {code: cls for cls in classes for code in type_codes(cls)}


class _Params:
    """A message body cut into TLVs (§3.3), walked in order: the first TLV of each
    type the message models is decoded; other known TLVs, and unknown ones with
    U=1, are kept; an unknown TLV with U=0 is an error."""

    __slots__ = ("found", "extra")

    def __init__(self, body: bytes, table: _TlvTable) -> None:
        found: dict[type, _TlvClass] = {}
        kept: list[UnknownTlv] = []
        for tlv in _split_tlvs(body):
            cls = table.get(tlv.tlv_type)
            if cls is not None and cls not in found:
                found[cls] = cls.from_value(tlv.value, tlv.tlv_type)
            elif tlv.tlv_type in _KNOWN_TLV_TYPES or tlv.u_bit:
                kept.append(tlv)
            else:
                raise _fail(Problem.UNKNOWN_TLV, f"unknown TLV {tlv.tlv_type:#06x} with U=0")
        self.found = found
        self.extra = tuple(kept)

    def need(self, cls: type[_S]) -> _S:
        got = self.found.get(cls)
        if got is None:
            raise _fail(Problem.MISSING_PARAMETER, f"missing mandatory {cls.SLOT} TLV")
        return cast(_S, got)

    def get(self, cls: type[_S]) -> _S | None:
        return cast("_S | None", self.found.get(cls))


def _no_wildcard(fec: tuple[FecElement, ...]) -> None:
    # §3.4.1: the Wildcard FEC element is only for Label Withdraw and Label Release
    # (holo answers "Unknown FEC", RFC 5918 §1).
    if any(isinstance(e, WildcardFec) for e in fec):
        raise _fail(Problem.UNKNOWN_FEC, "Wildcard FEC element outside Withdraw/Release")


MESSAGES: Registry[KnownMessage] = Registry("LDP message")

_T_NOTIFICATION = _table(Status)


@MESSAGES.register
@dataclass(frozen=True)
class Notification:
    TYPE: ClassVar[int] = MsgType.NOTIFICATION
    msg_id: int
    status: Status
    unknown_tlvs: tuple[UnknownTlv, ...] = ()

    def value(self) -> bytes:
        return _tlvs(self.status, unknown=self.unknown_tlvs)

    @classmethod
    def from_value(cls, v: bytes, msg_id: int) -> Notification:
        p = _Params(v, _T_NOTIFICATION)
        return cls(msg_id, p.need(Status), p.extra)


_T_HELLO = _table(CommonHelloParamsTlv, TransportAddressTlv, ConfigSeqTlv)


@MESSAGES.register
@dataclass(frozen=True)
class Hello:
    """Hello (§3.5.2) with Common Hello Parameters and optional TLVs."""

    TYPE: ClassVar[int] = MsgType.HELLO
    msg_id: int
    holdtime: int  # 0 = default (15 s link / 45 s targeted), 0xFFFF = infinite
    targeted: bool = False  # T bit
    request_targeted: bool = False  # R bit
    gtsm: bool = False  # G bit (RFC 6720), sent by FRR
    transport_address: IPv4Address | IPv6Address | None = None
    config_seq: int | None = None
    unknown_tlvs: tuple[UnknownTlv, ...] = ()

    def value(self) -> bytes:
        return _tlvs(
            CommonHelloParamsTlv(self.holdtime, self.targeted, self.request_targeted, self.gtsm),
            None if self.transport_address is None else TransportAddressTlv(self.transport_address),
            None if self.config_seq is None else ConfigSeqTlv(self.config_seq),
            unknown=self.unknown_tlvs,
        )

    @classmethod
    def from_value(cls, v: bytes, msg_id: int) -> Hello:
        p = _Params(v, _T_HELLO)
        chp = p.need(CommonHelloParamsTlv)
        ta = p.get(TransportAddressTlv)
        seq = p.get(ConfigSeqTlv)
        return cls(
            msg_id, chp.holdtime, chp.targeted, chp.request_targeted, chp.gtsm,
            None if ta is None else ta.address, None if seq is None else seq.seq, p.extra,
        )  # fmt: skip


_T_INIT = _table(CommonSessionParamsTlv)


@MESSAGES.register
@dataclass(frozen=True)
class Initialization:
    """Initialization (§3.5.3) with Common Session Parameters."""

    TYPE: ClassVar[int] = MsgType.INITIALIZATION
    msg_id: int
    keepalive_time: int
    receiver: LdpId
    downstream_on_demand: bool = False  # A bit
    loop_detection: bool = False  # D bit
    path_vector_limit: int = 0
    max_pdu_length: int = 0  # 0 (or <= 255) = default 4096
    protocol_version: int = LDP_VERSION
    unknown_tlvs: tuple[UnknownTlv, ...] = ()

    def value(self) -> bytes:
        csp = CommonSessionParamsTlv(
            self.protocol_version, self.keepalive_time, self.downstream_on_demand,
            self.loop_detection, self.path_vector_limit, self.max_pdu_length, self.receiver,
        )  # fmt: skip
        return _tlvs(csp, unknown=self.unknown_tlvs)

    @classmethod
    def from_value(cls, v: bytes, msg_id: int) -> Initialization:
        p = _Params(v, _T_INIT)
        c = p.need(CommonSessionParamsTlv)
        return cls(
            msg_id, c.keepalive_time, c.receiver, c.downstream_on_demand, c.loop_detection,
            c.path_vector_limit, c.max_pdu_length, c.protocol_version, p.extra,
        )  # fmt: skip


_T_NONE: _TlvTable = {}


@MESSAGES.register
@dataclass(frozen=True)
class KeepAlive:
    TYPE: ClassVar[int] = MsgType.KEEPALIVE
    msg_id: int
    unknown_tlvs: tuple[UnknownTlv, ...] = ()

    def value(self) -> bytes:
        return _tlvs(unknown=self.unknown_tlvs)

    @classmethod
    def from_value(cls, v: bytes, msg_id: int) -> KeepAlive:
        return cls(msg_id, _Params(v, _T_NONE).extra)


_T_ADDRESS = _table(AddressListTlv)


@dataclass(frozen=True)
class _AddressMessage:
    """Address (§3.5.5) and Address Withdraw (§3.5.6): one Address List TLV."""

    msg_id: int
    addresses: tuple[IPv4Address | IPv6Address, ...]
    family: AddressFamily = AddressFamily.IPV4
    unknown_tlvs: tuple[UnknownTlv, ...] = ()

    def value(self) -> bytes:
        return _tlvs(AddressListTlv(self.family, self.addresses), unknown=self.unknown_tlvs)

    @classmethod
    def from_value(cls, v: bytes, msg_id: int) -> Self:
        p = _Params(v, _T_ADDRESS)
        al = p.need(AddressListTlv)
        return cls(msg_id, al.addresses, al.family, p.extra)


@MESSAGES.register
class Address(_AddressMessage):
    TYPE: ClassVar[int] = MsgType.ADDRESS


@MESSAGES.register
class AddressWithdraw(_AddressMessage):
    TYPE: ClassVar[int] = MsgType.ADDRESS_WITHDRAW


_T_MAPPING = _table(FecTlv, GenericLabelTlv, LabelRequestIdTlv, HopCountTlv, PathVectorTlv)


@MESSAGES.register
@dataclass(frozen=True)
class LabelMapping:
    TYPE: ClassVar[int] = MsgType.LABEL_MAPPING
    msg_id: int
    fec: tuple[FecElement, ...]
    label: int  # Generic Label TLV, 20 bits
    request_msg_id: int | None = None
    hop_count: int | None = None
    path_vector: tuple[IPv4Address, ...] | None = None
    unknown_tlvs: tuple[UnknownTlv, ...] = ()

    def value(self) -> bytes:
        return _tlvs(
            FecTlv(self.fec),
            GenericLabelTlv(self.label),
            None if self.request_msg_id is None else LabelRequestIdTlv(self.request_msg_id),
            None if self.hop_count is None else HopCountTlv(self.hop_count),
            None if self.path_vector is None else PathVectorTlv(self.path_vector),
            unknown=self.unknown_tlvs,
        )

    @classmethod
    def from_value(cls, v: bytes, msg_id: int) -> LabelMapping:
        p = _Params(v, _T_MAPPING)
        fec = p.need(FecTlv).fec
        label = p.need(GenericLabelTlv).label
        _no_wildcard(fec)
        rid, hc, pv = p.get(LabelRequestIdTlv), p.get(HopCountTlv), p.get(PathVectorTlv)
        return cls(
            msg_id, fec, label, None if rid is None else rid.msg_id,
            None if hc is None else hc.count, None if pv is None else pv.lsr_ids, p.extra,
        )  # fmt: skip


_T_REQUEST = _table(FecTlv, HopCountTlv, PathVectorTlv)


@MESSAGES.register
@dataclass(frozen=True)
class LabelRequest:
    TYPE: ClassVar[int] = MsgType.LABEL_REQUEST
    msg_id: int
    fec: tuple[FecElement, ...]
    hop_count: int | None = None
    path_vector: tuple[IPv4Address, ...] | None = None
    unknown_tlvs: tuple[UnknownTlv, ...] = ()

    def value(self) -> bytes:
        return _tlvs(
            FecTlv(self.fec),
            None if self.hop_count is None else HopCountTlv(self.hop_count),
            None if self.path_vector is None else PathVectorTlv(self.path_vector),
            unknown=self.unknown_tlvs,
        )

    @classmethod
    def from_value(cls, v: bytes, msg_id: int) -> LabelRequest:
        p = _Params(v, _T_REQUEST)
        fec = p.need(FecTlv).fec
        _no_wildcard(fec)
        hc, pv = p.get(HopCountTlv), p.get(PathVectorTlv)
        return cls(
            msg_id, fec, None if hc is None else hc.count, None if pv is None else pv.lsr_ids,
            p.extra,
        )  # fmt: skip


_T_WITHDRAW = _table(FecTlv, GenericLabelTlv)


@dataclass(frozen=True)
class _WithdrawMessage:
    """Label Withdraw (§3.5.10) and Label Release (§3.5.11): FEC TLV, optional Label TLV."""

    msg_id: int
    fec: tuple[FecElement, ...]
    label: int | None = None
    unknown_tlvs: tuple[UnknownTlv, ...] = ()

    def value(self) -> bytes:
        return _tlvs(
            FecTlv(self.fec), None if self.label is None else GenericLabelTlv(self.label), unknown=self.unknown_tlvs
        )

    @classmethod
    def from_value(cls, v: bytes, msg_id: int) -> Self:
        p = _Params(v, _T_WITHDRAW)
        fec = p.need(FecTlv).fec
        lbl = p.get(GenericLabelTlv)
        return cls(msg_id, fec, None if lbl is None else lbl.label, p.extra)


@MESSAGES.register
class LabelWithdraw(_WithdrawMessage):
    TYPE: ClassVar[int] = MsgType.LABEL_WITHDRAW


@MESSAGES.register
class LabelRelease(_WithdrawMessage):
    TYPE: ClassVar[int] = MsgType.LABEL_RELEASE


_T_ABORT = _table(FecTlv, LabelRequestIdTlv)


@MESSAGES.register
@dataclass(frozen=True)
class LabelAbortRequest:
    TYPE: ClassVar[int] = MsgType.LABEL_ABORT_REQUEST
    msg_id: int
    fec: tuple[FecElement, ...]
    request_msg_id: int
    unknown_tlvs: tuple[UnknownTlv, ...] = ()

    def value(self) -> bytes:
        return _tlvs(
            FecTlv(self.fec), LabelRequestIdTlv(self.request_msg_id), unknown=self.unknown_tlvs
        )

    @classmethod
    def from_value(cls, v: bytes, msg_id: int) -> LabelAbortRequest:
        p = _Params(v, _T_ABORT)
        fec = p.need(FecTlv).fec
        rid = p.need(LabelRequestIdTlv).msg_id
        _no_wildcard(fec)
        return cls(msg_id, fec, rid, p.extra)


@dataclass(frozen=True)
class UnknownMessage:
    """A message type we do not know; U=1 means ignore it silently (§3.5)."""

    msg_type: int
    msg_id: int
    body: bytes
    u_bit: bool


KnownMessage = (
    Notification
    | Hello
    | Initialization
    | KeepAlive
    | Address
    | AddressWithdraw
    | LabelMapping
    | LabelRequest
    | LabelWithdraw
    | LabelRelease
    | LabelAbortRequest
)
Message = KnownMessage | UnknownMessage


@dataclass(frozen=True)
class MessageError:
    """A message that failed to decode in an otherwise sound PDU.

    The speaker answers it with a Notification carrying `status`; if the
    status is fatal the session closes (§3.5.1.2.2).
    """

    msg_type: int
    msg_id: int
    status: Status
    detail: str = ""


@dataclass(frozen=True)
class Pdu:
    """LDP PDU (§3.1): header plus one or more messages."""

    ldp_id: LdpId
    messages: tuple[Message | MessageError, ...] = field(default_factory=tuple)
    version: int = LDP_VERSION

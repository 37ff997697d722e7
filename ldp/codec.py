"""RFC 5036 LDP wire codec: PDUs, messages and TLVs <-> `ldp.messages` values.

Pure functions over bytes (``struct`` only, no I/O). Layout per RFC 5036 §3:

* ``encode_message`` / ``encode_pdu`` / ``encode_pdus`` build wire bytes and raise
  ``ValueError`` on values that cannot be encoded.
* ``decode_pdu`` raises ``DecodeError`` (and nothing else) for PDU-level problems;
  message-level problems become ``MessageError`` entries in ``Pdu.messages``.
* ``PduReader`` frames a TCP byte stream into PDUs (§3.1: the PDU Length excludes
  the 4 octets of Version and PDU Length).

Every decode problem is a ``Problem``; ``status_for`` is the one function that
maps a problem to the LDP status code sent in the Notification (§3.5.1.2).

Decoding policy (documented choices, RFC section in brackets):

* Mandatory TLVs may appear anywhere in the message (we encode them first, as the
  RFC lays them out).
* A TLV type we do not know at all: U=0 -> Unknown TLV, U=1 -> kept in
  ``unknown_tlvs`` [§3.3]. A *known* TLV that the message does not model (Extended
  Status / Returned PDU / Returned Message in a Notification, ATM session
  parameters, a second Transport Address, a duplicate ...) is kept, with its
  U/F bits, in ``unknown_tlvs`` too; only the first occurrence of a modelled
  TLV fills the field.
* After a fatal ``MessageError`` the rest of the PDU is not decoded (the session
  is closing anyway and the framing of the following messages is suspect).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from ldp.messages import (
    DEFAULT_MAX_PDU,
    LDP_VERSION,
    Address,
    AddressFamily,
    AddressWithdraw,
    FecElement,
    FecType,
    Hello,
    Initialization,
    KeepAlive,
    LabelAbortRequest,
    LabelMapping,
    LabelRelease,
    LabelRequest,
    LabelWithdraw,
    LdpId,
    Message,
    MessageError,
    MsgType,
    Notification,
    Pdu,
    PrefixFec,
    Status,
    StatusCode,
    TlvType,
    UnknownMessage,
    UnknownTlv,
    WildcardFec,
)

__all__ = [
    "PDU_HEADER_LEN",
    "MIN_PDU_LENGTH",
    "MAX_LABEL",
    "DecodeError",
    "Problem",
    "PduReader",
    "decode_message",
    "decode_pdu",
    "encode_message",
    "encode_pdu",
    "encode_pdus",
    "pdu_length",
    "status_for",
]

PDU_HEADER_LEN = 10  # version(2) + length(2) + LDP identifier(6)   (§3.1)
MSG_HEADER_LEN = 8  # U+type(2) + length(2) + message id(4)          (§3.5)
TLV_HEADER_LEN = 4  # U+F+type(2) + length(2)                        (§3.3)
# Smallest legal PDU Length field: LDP identifier + one message with no TLVs.
MIN_PDU_LENGTH = 6 + MSG_HEADER_LEN
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
_KNOWN_MSG_TYPES = frozenset(int(t) for t in MsgType)


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


class DecodeError(Exception):
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


def _expect_len(tlv: UnknownTlv, n: int) -> None:
    if len(tlv.value) != n:
        raise _fail(
            Problem.BAD_TLV_LENGTH,
            f"TLV {tlv.tlv_type:#06x} length {len(tlv.value)}, expected {n}",
        )


def _encode_unknown(tlvs: Sequence[UnknownTlv]) -> bytes:
    return b"".join(_tlv(t.tlv_type, t.value, t.u_bit, t.f_bit) for t in tlvs)


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


def _encode_fec(fec: Sequence[FecElement]) -> bytes:
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
    return _tlv(TlvType.FEC, b"".join(parts))


def _decode_fec(tlv: UnknownTlv) -> tuple[FecElement, ...]:
    v = tlv.value
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
    return tuple(elems)


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


def _label_ok(label: int) -> bool:
    return 0 <= label <= MAX_LABEL and not (label == 1 or 4 <= label <= 15)


def _encode_label(label: int) -> bytes:
    if not _label_ok(label):
        raise ValueError(f"label {label} cannot be signalled")
    return _tlv(TlvType.GENERIC_LABEL, struct.pack("!I", label))


def _decode_label(tlv: UnknownTlv) -> int:
    _expect_len(tlv, 4)
    (label,) = struct.unpack("!I", tlv.value)
    if not _label_ok(label):
        raise _fail(Problem.MALFORMED_VALUE, f"bad Generic Label value {label:#x}")
    return label


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


def _encode_address_list(
    family: AddressFamily, addresses: Sequence[IPv4Address | IPv6Address]
) -> bytes:
    if family not in _AF_ADDR_LEN:
        raise ValueError(f"unsupported address family {family}")
    want = 4 if family == AddressFamily.IPV4 else 6
    for a in addresses:
        if a.version != want:
            raise ValueError(f"address {a} does not belong to family {family.name}")
    return _tlv(
        TlvType.ADDRESS_LIST,
        struct.pack("!H", family) + b"".join(a.packed for a in addresses),
    )


def _decode_address_list(
    tlv: UnknownTlv,
) -> tuple[AddressFamily, tuple[IPv4Address | IPv6Address, ...]]:
    v = tlv.value
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
    cls = IPv4Address if family == AddressFamily.IPV4 else IPv6Address
    return family, tuple(cls(v[i : i + size]) for i in range(2, len(v), size))


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


def _encode_hop_count(hc: int) -> bytes:
    return _tlv(TlvType.HOP_COUNT, struct.pack("!B", hc))


def _decode_hop_count(tlv: UnknownTlv) -> int:
    _expect_len(tlv, 1)
    return tlv.value[0]


def _encode_path_vector(pv: Sequence[IPv4Address]) -> bytes:
    return _tlv(TlvType.PATH_VECTOR, b"".join(IPv4Address(a).packed for a in pv))


def _decode_path_vector(tlv: UnknownTlv) -> tuple[IPv4Address, ...]:
    v = tlv.value
    if len(v) % 4:
        raise _fail(Problem.BAD_TLV_LENGTH, f"Path Vector length {len(v)} not a multiple of 4")
    return tuple(IPv4Address(v[i : i + 4]) for i in range(0, len(v), 4))


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


def _encode_status(st: Status) -> bytes:
    if not 0 <= st.code <= _STATUS_CODE_MASK:
        raise ValueError(f"status code {st.code:#x} does not fit 30 bits")
    return _tlv(TlvType.STATUS, struct.pack("!IIH", st.wire_code, st.message_id, st.message_type))


def _decode_status(tlv: UnknownTlv) -> Status:
    _expect_len(tlv, 10)
    wire, mid, mtype = struct.unpack("!IIH", tlv.value)
    return Status(
        code=wire & _STATUS_CODE_MASK,
        fatal=bool(wire & 0x80000000),
        forward=bool(wire & 0x40000000),
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


def _encode_common_hello(m: Hello) -> bytes:
    flags = (
        (HELLO_T_BIT if m.targeted else 0)
        | (HELLO_R_BIT if m.request_targeted else 0)
        | (HELLO_G_BIT if m.gtsm else 0)
    )
    return _tlv(TlvType.COMMON_HELLO_PARAMS, struct.pack("!HH", m.holdtime, flags))


def _decode_common_hello(tlv: UnknownTlv) -> tuple[int, int]:
    if len(tlv.value) != 4:  # holo/FRR: exactly 4 octets, else malformed
        raise _fail(
            Problem.MALFORMED_VALUE, f"Common Hello Parameters length {len(tlv.value)} != 4"
        )
    hold, flags = struct.unpack("!HH", tlv.value)
    return hold, flags


def _decode_transport(tlv: UnknownTlv) -> IPv4Address | IPv6Address:
    if tlv.tlv_type == TlvType.IPV4_TRANSPORT_ADDRESS:
        _expect_len(tlv, 4)
        return IPv4Address(tlv.value)
    _expect_len(tlv, 16)
    return IPv6Address(tlv.value)


def _decode_u32(tlv: UnknownTlv) -> int:
    _expect_len(tlv, 4)
    return int(struct.unpack("!I", tlv.value)[0])


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


def _encode_common_session(m: Initialization) -> bytes:
    flags = (CSP_A_BIT if m.downstream_on_demand else 0) | (CSP_D_BIT if m.loop_detection else 0)
    return _tlv(
        TlvType.COMMON_SESSION_PARAMS,
        _CSP.pack(
            m.protocol_version,
            m.keepalive_time,
            flags,
            m.path_vector_limit,
            m.max_pdu_length,
            IPv4Address(m.receiver.lsr_id).packed,
            m.receiver.label_space,
        ),
    )


def _decode_common_session(tlv: UnknownTlv) -> dict[str, object]:
    _expect_len(tlv, _CSP.size)
    ver, ka, flags, pvlim, maxpdu, lsr, space = _CSP.unpack(tlv.value)
    return {
        "protocol_version": ver,
        "keepalive_time": ka,
        "downstream_on_demand": bool(flags & CSP_A_BIT),
        "loop_detection": bool(flags & CSP_D_BIT),
        "path_vector_limit": pvlim,
        "max_pdu_length": maxpdu,
        "receiver": LdpId(IPv4Address(lsr), space),
    }


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

_MSG_HDR = struct.Struct("!HHI")


def _message(msg_type: int, msg_id: int, body: bytes, u_bit: bool = False) -> bytes:
    if not 0 <= msg_id <= 0xFFFFFFFF:
        raise ValueError(f"message id {msg_id} does not fit 32 bits")
    if len(body) + 4 > 0xFFFF:
        raise ValueError(f"message {msg_type:#06x} too long ({len(body)} octets)")
    head = (U_BIT if u_bit else 0) | (msg_type & MSG_TYPE_MASK)
    return _MSG_HDR.pack(head, len(body) + 4, msg_id) + body


def _encode_body(msg: Message) -> tuple[int, bytes]:
    """(message type, encoded TLVs) for a known message."""
    if isinstance(msg, Notification):
        return MsgType.NOTIFICATION, _encode_status(msg.status) + _encode_unknown(msg.unknown_tlvs)
    if isinstance(msg, Hello):
        body = _encode_common_hello(msg)
        ta = msg.transport_address
        if ta is not None:
            if ta.version == 4:
                body += _tlv(TlvType.IPV4_TRANSPORT_ADDRESS, ta.packed)
            else:
                body += _tlv(TlvType.IPV6_TRANSPORT_ADDRESS, ta.packed)
        if msg.config_seq is not None:
            body += _tlv(TlvType.CONFIGURATION_SEQUENCE_NUMBER, struct.pack("!I", msg.config_seq))
        return MsgType.HELLO, body + _encode_unknown(msg.unknown_tlvs)
    if isinstance(msg, Initialization):
        return MsgType.INITIALIZATION, _encode_common_session(msg) + _encode_unknown(
            msg.unknown_tlvs
        )
    if isinstance(msg, KeepAlive):
        return MsgType.KEEPALIVE, _encode_unknown(msg.unknown_tlvs)
    if isinstance(msg, Address | AddressWithdraw):
        mtype = MsgType.ADDRESS if isinstance(msg, Address) else MsgType.ADDRESS_WITHDRAW
        return mtype, _encode_address_list(msg.family, msg.addresses) + _encode_unknown(
            msg.unknown_tlvs
        )
    if isinstance(msg, LabelMapping):
        body = _encode_fec(msg.fec) + _encode_label(msg.label)
        if msg.request_msg_id is not None:
            body += _tlv(TlvType.LABEL_REQUEST_MESSAGE_ID, struct.pack("!I", msg.request_msg_id))
        if msg.hop_count is not None:
            body += _encode_hop_count(msg.hop_count)
        if msg.path_vector is not None:
            body += _encode_path_vector(msg.path_vector)
        return MsgType.LABEL_MAPPING, body + _encode_unknown(msg.unknown_tlvs)
    if isinstance(msg, LabelRequest):
        body = _encode_fec(msg.fec)
        if msg.hop_count is not None:
            body += _encode_hop_count(msg.hop_count)
        if msg.path_vector is not None:
            body += _encode_path_vector(msg.path_vector)
        return MsgType.LABEL_REQUEST, body + _encode_unknown(msg.unknown_tlvs)
    if isinstance(msg, LabelWithdraw | LabelRelease):
        mtype = MsgType.LABEL_WITHDRAW if isinstance(msg, LabelWithdraw) else MsgType.LABEL_RELEASE
        body = _encode_fec(msg.fec)
        if msg.label is not None:
            body += _encode_label(msg.label)
        return mtype, body + _encode_unknown(msg.unknown_tlvs)
    if isinstance(msg, LabelAbortRequest):
        body = _encode_fec(msg.fec) + _tlv(
            TlvType.LABEL_REQUEST_MESSAGE_ID, struct.pack("!I", msg.request_msg_id)
        )
        return MsgType.LABEL_ABORT_REQUEST, body + _encode_unknown(msg.unknown_tlvs)
    raise ValueError(f"not an LDP message: {msg!r}")


# element-less FEC TLV bytes of an IPv4 prefix (TLV header + Prefix element), per prefix
_FEC_TLV_CACHE: dict[IPv4Network, bytes] = {}


def _fast_encode(msg: Message) -> bytes | None:
    """Label Mapping (one IPv4 prefix, Generic Label, no optional TLV) and plain
    KeepAlive, in one pack; None if `msg` is not of that shape (general path)."""
    t = type(msg)
    if t is LabelMapping:
        m: LabelMapping = msg  # type: ignore[assignment]
        fec = m.fec
        if (len(fec) != 1 or type(fec[0]) is not PrefixFec or m.request_msg_id is not None
                or m.hop_count is not None or m.path_vector is not None or m.unknown_tlvs):
            return None
        net = fec[0].prefix
        if net.version != 4 or not _label_ok(m.label) or not 0 <= m.msg_id <= 0xFFFFFFFF:
            return None
        tlv = _FEC_TLV_CACHE.get(net)
        if tlv is None:
            tlv = _encode_fec(fec)
            if len(_FEC_TLV_CACHE) >= _CACHE_MAX:
                _FEC_TLV_CACHE.clear()
            _FEC_TLV_CACHE[net] = tlv
        return (_MSG_HDR.pack(MsgType.LABEL_MAPPING, len(tlv) + 12, m.msg_id) + tlv
                + _TLV_U32.pack(TlvType.GENERIC_LABEL, 4, m.label))
    if t is KeepAlive and not msg.unknown_tlvs and 0 <= msg.msg_id <= 0xFFFFFFFF:  # type: ignore[union-attr]
        return _MSG_HDR.pack(MsgType.KEEPALIVE, 4, msg.msg_id)
    return None


def encode_message(msg: Message) -> bytes:
    """Encode one message (header + TLVs), §3.5. Raises ValueError on unencodable values."""
    try:
        fast = _fast_encode(msg)
        if fast is not None:
            return fast
        if isinstance(msg, UnknownMessage):
            return _message(msg.msg_type, msg.msg_id, msg.body, msg.u_bit)
        mtype, body = _encode_body(msg)
        return _message(mtype, msg.msg_id, body)
    except struct.error as exc:  # a field out of its range
        raise ValueError(f"cannot encode {type(msg).__name__}: {exc}") from exc


# ---------------------------------------------------------------------- decoding bodies

# A slot collects the first TLV of some types; a handler decodes its value.
_Handler = Callable[[UnknownTlv], object]


def _collect(
    tlvs: Sequence[UnknownTlv], handlers: dict[int, tuple[str, _Handler]]
) -> tuple[dict[str, object], tuple[UnknownTlv, ...]]:
    """Walk TLVs in order (§3.3): decode modelled ones, keep the others, reject unknown U=0."""
    found: dict[str, object] = {}
    kept: list[UnknownTlv] = []
    for tlv in tlvs:
        entry = handlers.get(tlv.tlv_type)
        if entry is not None and entry[0] not in found:
            found[entry[0]] = entry[1](tlv)
        elif tlv.tlv_type in _KNOWN_TLV_TYPES or tlv.u_bit:
            kept.append(tlv)
        else:
            raise _fail(Problem.UNKNOWN_TLV, f"unknown TLV {tlv.tlv_type:#06x} with U=0")
    return found, tuple(kept)


def _require(found: dict[str, object], *slots: str) -> None:
    for slot in slots:
        if slot not in found:
            raise _fail(Problem.MISSING_PARAMETER, f"missing mandatory {slot} TLV")


_FEC = (TlvType.FEC, ("fec", _decode_fec))
_LABEL = (TlvType.GENERIC_LABEL, ("label", _decode_label))
_HOP = (TlvType.HOP_COUNT, ("hop_count", _decode_hop_count))
_PV = (TlvType.PATH_VECTOR, ("path_vector", _decode_path_vector))
_LRMID = (TlvType.LABEL_REQUEST_MESSAGE_ID, ("request_msg_id", _decode_u32))
_ADDR = (TlvType.ADDRESS_LIST, ("address_list", _decode_address_list))


def _h(*entries: tuple[int, tuple[str, _Handler]]) -> dict[int, tuple[str, _Handler]]:
    return {int(t): e for t, e in entries}


_H_NOTIFICATION = _h((TlvType.STATUS, ("status", _decode_status)))
_H_HELLO = _h(
    (TlvType.COMMON_HELLO_PARAMS, ("common_hello", _decode_common_hello)),
    (TlvType.IPV4_TRANSPORT_ADDRESS, ("transport_address", _decode_transport)),
    (TlvType.IPV6_TRANSPORT_ADDRESS, ("transport_address", _decode_transport)),
    (TlvType.CONFIGURATION_SEQUENCE_NUMBER, ("config_seq", _decode_u32)),
)
_H_INIT = _h((TlvType.COMMON_SESSION_PARAMS, ("common_session", _decode_common_session)))
_H_ADDRESS = _h(_ADDR)
_H_MAPPING = _h(_FEC, _LABEL, _LRMID, _HOP, _PV)
_H_REQUEST = _h(_FEC, _HOP, _PV)
_H_WITHDRAW = _h(_FEC, _LABEL)
_H_ABORT = _h(_FEC, _LRMID)


def _no_wildcard(fec: tuple[FecElement, ...]) -> None:
    # §3.4.1: the Wildcard FEC element is only for Label Withdraw and Label Release
    # (holo answers "Unknown FEC", RFC 5918 §1).
    if any(isinstance(e, WildcardFec) for e in fec):
        raise _fail(Problem.UNKNOWN_FEC, "Wildcard FEC element outside Withdraw/Release")


def _decode_body(mtype: int, mid: int, body: bytes) -> Message:
    tlvs = _split_tlvs(body)
    if mtype == MsgType.NOTIFICATION:
        f, extra = _collect(tlvs, _H_NOTIFICATION)
        _require(f, "status")
        return Notification(mid, f["status"], extra)  # type: ignore[arg-type]
    if mtype == MsgType.HELLO:
        f, extra = _collect(tlvs, _H_HELLO)
        _require(f, "common_hello")
        hold, flags = f["common_hello"]  # type: ignore[misc]
        return Hello(
            mid,
            hold,
            targeted=bool(flags & HELLO_T_BIT),
            request_targeted=bool(flags & HELLO_R_BIT),
            gtsm=bool(flags & HELLO_G_BIT),
            transport_address=f.get("transport_address"),  # type: ignore[arg-type]
            config_seq=f.get("config_seq"),  # type: ignore[arg-type]
            unknown_tlvs=extra,
        )
    if mtype == MsgType.INITIALIZATION:
        f, extra = _collect(tlvs, _H_INIT)
        _require(f, "common_session")
        return Initialization(msg_id=mid, unknown_tlvs=extra, **f["common_session"])  # type: ignore[arg-type]
    if mtype == MsgType.KEEPALIVE:
        _, extra = _collect(tlvs, {})
        return KeepAlive(mid, extra)
    if mtype in (MsgType.ADDRESS, MsgType.ADDRESS_WITHDRAW):
        f, extra = _collect(tlvs, _H_ADDRESS)
        _require(f, "address_list")
        family, addrs = f["address_list"]  # type: ignore[misc]
        cls = Address if mtype == MsgType.ADDRESS else AddressWithdraw
        return cls(mid, addrs, family, extra)
    if mtype == MsgType.LABEL_MAPPING:
        f, extra = _collect(tlvs, _H_MAPPING)
        _require(f, "fec", "label")
        _no_wildcard(f["fec"])  # type: ignore[arg-type]
        return LabelMapping(
            mid,
            f["fec"],  # type: ignore[arg-type]
            f["label"],  # type: ignore[arg-type]
            request_msg_id=f.get("request_msg_id"),  # type: ignore[arg-type]
            hop_count=f.get("hop_count"),  # type: ignore[arg-type]
            path_vector=f.get("path_vector"),  # type: ignore[arg-type]
            unknown_tlvs=extra,
        )
    if mtype == MsgType.LABEL_REQUEST:
        f, extra = _collect(tlvs, _H_REQUEST)
        _require(f, "fec")
        _no_wildcard(f["fec"])  # type: ignore[arg-type]
        return LabelRequest(
            mid,
            f["fec"],  # type: ignore[arg-type]
            hop_count=f.get("hop_count"),  # type: ignore[arg-type]
            path_vector=f.get("path_vector"),  # type: ignore[arg-type]
            unknown_tlvs=extra,
        )
    if mtype in (MsgType.LABEL_WITHDRAW, MsgType.LABEL_RELEASE):
        f, extra = _collect(tlvs, _H_WITHDRAW)
        _require(f, "fec")
        lcls = LabelWithdraw if mtype == MsgType.LABEL_WITHDRAW else LabelRelease
        return lcls(mid, f["fec"], f.get("label"), extra)  # type: ignore[arg-type]
    if mtype == MsgType.LABEL_ABORT_REQUEST:
        f, extra = _collect(tlvs, _H_ABORT)
        _require(f, "fec", "request_msg_id")
        _no_wildcard(f["fec"])  # type: ignore[arg-type]
        return LabelAbortRequest(mid, f["fec"], f["request_msg_id"], extra)  # type: ignore[arg-type]
    raise AssertionError(f"unhandled message type {mtype:#06x}")  # pragma: no cover


def decode_message(data: bytes | memoryview) -> tuple[Message | MessageError, int]:
    """Decode the message at the start of `data`; return it and the octets it used.

    Message-level problems come back as a `MessageError` (never raised). If the
    message header itself is unusable (BAD_MESSAGE_LENGTH) the octet count is
    ``len(data)``: the rest cannot be framed.
    """
    buf = bytes(data)
    return _decode_message_at(buf, 0, len(buf))


# Hot-path layouts, precompiled. A message that matches one of them exactly is
# decoded without cutting it into TLV objects; anything else (optional or unknown
# TLVs, U/F bits, other families, any error) takes the general path below, which
# is the reference behaviour.
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_AF_PLEN = struct.Struct("!HB")
_TLV_U32 = struct.Struct("!HHI")  # a TLV header + a 4-octet value (Generic Label)
_FEC_TLV_PREFIX = 0x0100  # FEC TLV, U=0 F=0 (§3.4.1)
_LABEL_TLV_4 = (0x0200, 4)  # Generic Label TLV, U=0 F=0, length 4 (§3.4.2.1)
_CACHE_MAX = 1 << 16
# element bytes (type, AF, PreLen, prefix octets) -> (PrefixFec,); values are
# immutable, so sharing them between messages is safe.
_FEC_CACHE: dict[bytes, tuple[FecElement, ...]] = {}
_LDP_ID_CACHE: dict[bytes, LdpId] = {}


def _prefix_fec4(elem: bytes) -> tuple[FecElement, ...]:
    fec = _FEC_CACHE.get(elem)
    if fec is None:
        plen = elem[3]
        raw = elem[4:].ljust(4, b"\0")
        # Bits beyond PreLen in the last octet are ignored (masked), as in _decode_fec.
        fec = (PrefixFec(IPv4Network((raw, plen), strict=False)),)
        if len(_FEC_CACHE) >= _CACHE_MAX:
            _FEC_CACHE.clear()
        _FEC_CACHE[elem] = fec
    return fec


def _fast_label_mapping(buf: bytes, off: int, end: int, mid: int) -> Message | None:
    """Label Mapping = one IPv4 Prefix FEC element + Generic Label (§3.5.7), nothing else."""
    if end - off < 24:
        return None
    fhead, flen = _TLV_HDR.unpack_from(buf, off + 8)
    if fhead != _FEC_TLV_PREFIX or buf[off + 12] != FecType.PREFIX:
        return None
    af, plen = _AF_PLEN.unpack_from(buf, off + 13)
    nbytes = (plen + 7) >> 3
    if af != AddressFamily.IPV4 or plen > 32 or flen != 4 + nbytes:
        return None
    lpos = off + 16 + nbytes
    if lpos + 8 != end:
        return None
    lhead, llen, label = _TLV_U32.unpack_from(buf, lpos)
    if (lhead, llen) != _LABEL_TLV_4 or label > MAX_LABEL or label == 1 or 4 <= label <= 15:
        return None
    return LabelMapping(mid, _prefix_fec4(buf[off + 12 : lpos]), label)


def _fast_address(buf: bytes, off: int, end: int, mid: int, mtype: int) -> Message | None:
    """Address / Address Withdraw = one IPv4 Address List TLV (§3.5.5, §3.5.6)."""
    if end - off < 14:
        return None
    thead, tlen = _TLV_HDR.unpack_from(buf, off + 8)
    if thead != TlvType.ADDRESS_LIST or off + 12 + tlen != end or (tlen - 2) & 3:
        return None
    if _U16.unpack_from(buf, off + 12)[0] != AddressFamily.IPV4:
        return None
    n = (tlen - 2) >> 2
    addrs = tuple(map(IPv4Address, struct.unpack_from(f"!{n}I", buf, off + 14)))
    cls = Address if mtype == MsgType.ADDRESS else AddressWithdraw
    return cls(mid, addrs, AddressFamily.IPV4)


def _decode_message_at(buf: bytes, off: int, end: int) -> tuple[Message | MessageError, int]:
    """`decode_message(buf[off:end])` without copying the buffer."""
    left = end - off
    if left < MSG_HEADER_LEN:
        # Not even a message header + Message ID left in the PDU (§3.5).
        mtype = (_U16.unpack_from(buf, off)[0] & MSG_TYPE_MASK) if left >= 2 else 0
        err = status_for(Problem.BAD_MESSAGE_LENGTH, 0, mtype)
        return MessageError(mtype, 0, err, f"{left} octets left, too short for a message"), left
    head, length, mid = _MSG_HDR.unpack_from(buf, off)
    mtype = head & MSG_TYPE_MASK
    if length < 4 or length > left - 4:
        detail = f"message {mtype:#06x} length {length} with {left - 4} octets left"
        return MessageError(
            mtype, mid, status_for(Problem.BAD_MESSAGE_LENGTH, mid, mtype), detail
        ), left
    used = 4 + length
    # Fast paths for the messages a converging network is made of.
    if mtype == MsgType.LABEL_MAPPING:
        fast = _fast_label_mapping(buf, off, off + used, mid)
        if fast is not None:
            return fast, used
    elif mtype == MsgType.KEEPALIVE:
        if length == 4:
            return KeepAlive(mid), used
    elif mtype == MsgType.ADDRESS or mtype == MsgType.ADDRESS_WITHDRAW:
        fast = _fast_address(buf, off, off + used, mid, mtype)
        if fast is not None:
            return fast, used
    body = buf[off + MSG_HEADER_LEN : off + used]
    if mtype not in _KNOWN_MSG_TYPES:
        if head & U_BIT:
            return UnknownMessage(mtype, mid, body, True), used  # §3.5: ignore silently
        st = status_for(Problem.UNKNOWN_MESSAGE, mid, mtype)
        return MessageError(mtype, mid, st, f"unknown message type {mtype:#06x} with U=0"), used
    try:
        return _decode_body(mtype, mid, body), used
    except DecodeError as exc:
        return MessageError(mtype, mid, status_for(exc.problem, mid, mtype), exc.detail), used


# ====================================================================== PDU
#
# LDP PDU header (§3.1, §2.2.2):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |  Version                      |         PDU Length            |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                         LDP Identifier                        |
# +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                               |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# PDU Length excludes Version and PDU Length (so it is len(pdu) - 4).

_PDU_HDR = struct.Struct("!HH4sH")


def _pdu(ldp_id: LdpId, version: int, payload: bytes) -> bytes:
    if not payload:
        raise ValueError("an LDP PDU carries at least one message (§3.1)")
    length = 6 + len(payload)
    if length > 0xFFFF:
        raise ValueError(f"PDU too long ({length} octets)")
    return (
        _PDU_HDR.pack(version, length, IPv4Address(ldp_id.lsr_id).packed, ldp_id.label_space)
        + payload
    )


def encode_pdu(pdu: Pdu) -> bytes:
    """Encode a PDU with all its messages (MessageError entries are rejected)."""
    parts: list[bytes] = []
    for m in pdu.messages:
        if isinstance(m, MessageError):
            raise ValueError("a MessageError cannot be encoded; send a Notification")
        parts.append(encode_message(m))
    try:
        return _pdu(pdu.ldp_id, pdu.version, b"".join(parts))
    except struct.error as exc:
        raise ValueError(f"cannot encode PDU header: {exc}") from exc


def encode_pdus(
    ldp_id: LdpId, messages: Sequence[Message], max_pdu_len: int = DEFAULT_MAX_PDU
) -> list[bytes]:
    """Pack messages, in order, into as few PDUs as possible.

    Every returned PDU is at most `max_pdu_len` octets *in total* (header
    included), which also keeps its PDU Length field below the negotiated
    maximum (§3.5.3). A value <= 255 means the default 4096 (§3.5.3).
    """
    if max_pdu_len <= 255:
        max_pdu_len = DEFAULT_MAX_PDU
    room = max_pdu_len - PDU_HEADER_LEN
    out: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for m in messages:
        raw = encode_message(m)
        if len(raw) > room:
            raise ValueError(f"message of {len(raw)} octets cannot fit a {max_pdu_len}-octet PDU")
        if size + len(raw) > room:
            out.append(_pdu(ldp_id, LDP_VERSION, b"".join(batch)))
            batch, size = [], 0
        batch.append(raw)
        size += len(raw)
    if batch:
        out.append(_pdu(ldp_id, LDP_VERSION, b"".join(batch)))
    return out


def pdu_length(buf: bytes | memoryview) -> int | None:
    """Total octets of the PDU starting at `buf` (PDU Length + 4), None if < 4 octets."""
    if len(buf) < 4:
        return None
    return int(struct.unpack_from("!H", buf, 2)[0]) + 4


def _check_header(buf: bytes, max_pdu_len: int | None, off: int = 0) -> int:
    """Check Version and PDU Length (§3.5.1.2.1); return the total PDU size."""
    version, length = _VER_LEN.unpack_from(buf, off)
    if version != LDP_VERSION:
        raise DecodeError(Problem.BAD_VERSION, f"LDP version {version}")
    if length < MIN_PDU_LENGTH:
        raise DecodeError(Problem.BAD_PDU_LENGTH, f"PDU length {length} < {MIN_PDU_LENGTH}")
    if max_pdu_len is not None and length > max_pdu_len:
        raise DecodeError(Problem.BAD_PDU_LENGTH, f"PDU length {length} > maximum {max_pdu_len}")
    return length + 4


_VER_LEN = struct.Struct("!HH")


def _ldp_id_at(buf: bytes, off: int) -> LdpId:
    key = buf[off : off + 6]
    lid = _LDP_ID_CACHE.get(key)
    if lid is None:
        lid = LdpId(IPv4Address(key[:4]), _U16.unpack_from(key, 4)[0])
        if len(_LDP_ID_CACHE) >= _CACHE_MAX:
            _LDP_ID_CACHE.clear()
        _LDP_ID_CACHE[key] = lid
    return lid


def _decode_pdu_at(buf: bytes, start: int, end: int) -> Pdu:
    """The PDU in buf[start:end], header already checked."""
    messages: list[Message | MessageError] = []
    append = messages.append
    off = start + PDU_HEADER_LEN
    while off < end:
        msg, used = _decode_message_at(buf, off, end)
        append(msg)
        off += used
        if type(msg) is MessageError and msg.status.fatal:
            break
    return Pdu(_ldp_id_at(buf, start + 4), tuple(messages), LDP_VERSION)


def decode_pdu(data: bytes | memoryview, max_pdu_len: int | None = None) -> Pdu:
    """Decode exactly one PDU (`data` must hold it and nothing else).

    PDU-level problems raise a fatal `DecodeError`: bad version, PDU Length below
    the minimum or above `max_pdu_len` (if given; it bounds the PDU Length field),
    truncated or trailing data. Message-level problems are `MessageError`s in
    `Pdu.messages`; decoding stops after a fatal one.
    """
    buf = bytes(data)
    if len(buf) < 4:
        raise DecodeError(Problem.PDU_TRUNCATED, f"{len(buf)} octets, no PDU header")
    total = _check_header(buf, max_pdu_len)
    if len(buf) < total:
        raise DecodeError(Problem.PDU_TRUNCATED, f"PDU of {total} octets truncated to {len(buf)}")
    if len(buf) > total:
        raise DecodeError(Problem.BAD_PDU_LENGTH, f"{len(buf) - total} octets after the PDU")
    return _decode_pdu_at(buf, 0, total)


# ====================================================================== stream framing


class PduReader:
    """Frame a TCP byte stream into PDUs (§3.1; several PDUs per segment and
    PDUs split across segments are normal).

    `feed` returns decoded `Pdu`s and at most one `DecodeError`; after a fatal
    error (every PDU-level error is fatal) the stream is dead and later feeds
    return ``[]``. `max_pdu_len` bounds the PDU Length field: 4096 until the
    session negotiates it (§3.5.3); a value <= 255 means 4096. It may be
    changed between feeds, or between two PDUs taken from `pull`.
    """

    def __init__(self, max_pdu_len: int = DEFAULT_MAX_PDU) -> None:
        self.max_pdu_len = max_pdu_len
        self._buf = b""  # received octets; those before _off are consumed
        self._off = 0
        self.closed = False

    @property
    def buffered(self) -> int:
        """Octets received but not yet part of a complete PDU (or not yet pulled)."""
        return len(self._buf) - self._off

    def feed(self, data: bytes | bytearray | memoryview) -> list[Pdu | DecodeError]:
        return list(self.pull(data))

    def pull(self, data: bytes | bytearray | memoryview = b"") -> Iterator[Pdu | DecodeError]:
        """Buffer `data` now; the iterator frames and decodes one PDU per step.

        Each PDU is checked against `max_pdu_len` as it is taken, so a limit the
        consumer changes while iterating (the session, on accepting the peer's
        Initialization, §3.5.3) applies to the very next PDU, even one from the
        same TCP segment. Octets of PDUs not taken stay buffered.
        """
        if self.closed:
            return iter(())
        if data:
            if self._off < len(self._buf):
                self._buf = self._buf[self._off :] + bytes(data)
            else:
                self._buf = bytes(data)
            self._off = 0
        return self._frames()

    def _frames(self) -> Iterator[Pdu | DecodeError]:
        while not self.closed:
            buf, off = self._buf, self._off
            avail = len(buf) - off
            if avail < 4:
                return
            limit = self.max_pdu_len if self.max_pdu_len > 255 else DEFAULT_MAX_PDU
            try:
                total = _check_header(buf, limit, off)
            except DecodeError as exc:
                self.closed = True
                self._buf, self._off = b"", 0
                yield exc
                return
            if avail < total:
                return
            self._off = off + total
            yield _decode_pdu_at(buf, off, off + total)

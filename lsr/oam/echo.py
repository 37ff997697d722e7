"""MPLS Echo Request / Reply codec (RFC 8029 §3) and the IPv4/UDP packet around it.

Every message is a fixed 32-octet header followed by TLVs (RFC 8029 §3)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |       Version Number          |         Global Flags          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Message Type |   Reply Mode  |  Return Code  | Return Subcode|
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                        Sender's Handle                        |
    |                        Sequence Number                        |
    |                    TimeStamp Sent (seconds)                   |
    |                TimeStamp Sent (seconds fraction)              |
    |                  TimeStamp Received (seconds)                 |
    |                TimeStamp Received (seconds fraction)          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                            TLVs ...                           |

A TLV is Type (16) + Length (16, of the value, padding excluded) + Value,
zero-padded to a 4-octet boundary (§3). Each TLV and sub-TLV is a class in
the idiom of every codec here (`lsr.core.codec`): its code `TYPE`, `value()`
and a `from_value(value, offset)` classmethod, registered in `TLVS` (top-level
TLVs) or `FECS` (Target FEC Stack sub-TLVs). Decoders raise only
`DecodeError`; `return_code_for` is the one place that maps it to a return
code (1, "malformed echo request received"). Unknown TLVs and sub-TLVs are kept
raw (`RawTlv` a.k.a. `UnknownTlv`, `UnknownFec`, `UnknownSubTlv`) so the
responder can apply the mandatory / optional rule (§3: types < 32768 are
mandatory) and copy them into an Errored TLVs TLV (§3.8).

Timestamps are NTP 64-bit (seconds since 1900 + 2^-32 fractions), kept as a
`(seconds, fraction)` pair; `ntp_from_unix` / `ntp_to_unix` convert.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from itertools import islice
from typing import ClassVar

from forwarding.labelops import checksum16 as inet_checksum  # RFC 1071
from lsr.core.codec import DecodeError as _BaseDecodeError
from lsr.core.codec import Registry

UDP_PORT = 3503  # RFC 8029 §4.3 (IANA "lsp-ping")
VERSION = 1
HEADER_LEN = 32
ALL_ROUTERS = IPv4Address("224.0.0.2")  # DDMAP downstream address when unknown (§3.4)
LOCALHOST = IPv4Address("127.0.0.1")
LOOPBACK_NET = IPv4Network("127.0.0.0/8")
# §4.3: an IPv6 echo request goes to an address of ::ffff:127.0.0.0/104 (IPv4-mapped 127/8)
LOCALHOST6 = IPv6Address("::ffff:127.0.0.1")
LOOPBACK_NET6 = IPv6Network("::ffff:127.0.0.0/104")
NTP_UNIX_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01

# Global Flags (§3, IANA "Global Flags"): V = validate FEC stack; T (RFC 6425)
# = respond only if TTL expired; R (RFC 6426) = validate reverse path.
FLAG_V = 0x0001
FLAG_T = 0x0002
FLAG_R = 0x0004

# DDMAP DS Flags (§3.4): I = interface and label stack object requested,
# N = treat as a non-IP packet.
DS_FLAG_N = 0x01
DS_FLAG_I = 0x02


class MessageType(IntEnum):
    ECHO_REQUEST = 1
    ECHO_REPLY = 2


class ReplyMode(IntEnum):
    """§3: how the responder should reply."""

    NO_REPLY = 1
    UDP = 2
    UDP_ROUTER_ALERT = 3
    CONTROL_CHANNEL = 4


class ReturnCode(IntEnum):
    """§3.1 return codes; the subcode is the stack depth (<RSC>) where it applies."""

    NO_RETURN_CODE = 0
    MALFORMED_REQUEST = 1
    TLV_NOT_UNDERSTOOD = 2
    EGRESS = 3
    NO_MAPPING = 4
    DOWNSTREAM_MISMATCH = 5
    UPSTREAM_IF_UNKNOWN = 6
    LABEL_SWITCHED = 8
    LABEL_SWITCHED_NO_MPLS = 9
    NOT_GIVEN_LABEL = 10
    NO_LABEL_ENTRY = 11
    PROTOCOL_NOT_ON_INTERFACE = 12
    PREMATURE_TERMINATION = 13
    SEE_DDMAP = 14
    LABEL_SWITCHED_FEC_CHANGE = 15

    @property
    def description(self) -> str:
        return RETURN_CODE_NAMES[self]


RETURN_CODE_NAMES: dict[ReturnCode, str] = {
    ReturnCode.NO_RETURN_CODE: "no return code",
    ReturnCode.MALFORMED_REQUEST: "malformed echo request received",
    ReturnCode.TLV_NOT_UNDERSTOOD: "one or more TLVs not understood",
    ReturnCode.EGRESS: "replying router is an egress for the FEC at stack depth",
    ReturnCode.NO_MAPPING: "replying router has no mapping for the FEC at stack depth",
    ReturnCode.DOWNSTREAM_MISMATCH: "downstream mapping mismatch",
    ReturnCode.UPSTREAM_IF_UNKNOWN: "upstream interface index unknown",
    ReturnCode.LABEL_SWITCHED: "label switched at stack depth",
    ReturnCode.LABEL_SWITCHED_NO_MPLS: "label switched but no MPLS forwarding at stack depth",
    ReturnCode.NOT_GIVEN_LABEL: "mapping for this FEC is not the given label at stack depth",
    ReturnCode.NO_LABEL_ENTRY: "no label entry at stack depth",
    ReturnCode.PROTOCOL_NOT_ON_INTERFACE: "protocol not associated with interface at FEC stack depth",
    ReturnCode.PREMATURE_TERMINATION: "premature termination of ping due to label stack shrinking to a single label",
    ReturnCode.SEE_DDMAP: "see DDMAP TLV for return code and subcode",
    ReturnCode.LABEL_SWITCHED_FEC_CHANGE: "label switched with FEC change",
}


def return_code_name(code: int) -> str:
    try:
        return ReturnCode(code).description
    except ValueError:
        return f"unknown return code {code}"


class TlvType(IntEnum):
    """§3 TLV types (IANA "TLVs")."""

    TARGET_FEC_STACK = 1
    DOWNSTREAM_MAPPING = 2  # deprecated by DDMAP (§3.3)
    PAD = 3
    VENDOR_ENTERPRISE = 5
    INTERFACE_LABEL_STACK = 7
    ERRORED_TLVS = 9
    REPLY_TOS = 10
    DDMAP = 20


class FecType(IntEnum):
    """§3.2 Target FEC Stack sub-TLVs that this implementation understands."""

    LDP_IPV4 = 1
    LDP_IPV6 = 2
    VPN_IPV4 = 6  # §3.2.5 (IANA "Target FEC Stack Sub-TLVs": 5 is unassigned)
    VPN_IPV6 = 7  # §3.2.6
    BGP_IPV6 = 13  # §3.2.14 BGP labeled IPv6 prefix (RFC 8277 / 6PE, RFC 4798)
    NIL = 16


class DdmapSubType(IntEnum):
    """§3.4.1 DDMAP sub-TLVs."""

    MULTIPATH = 1
    LABEL_STACK = 2
    FEC_STACK_CHANGE = 3


class MultipathType(IntEnum):
    """§3.4.1.1 multipath information encodings."""

    NONE = 0
    IP_ADDRESS = 2
    IP_RANGE = 4
    BITMASK_IP = 8
    BITMASK_LABEL = 9


class AddressType(IntEnum):
    """§3.4 DDMAP / §3.7 Interface and Label Stack address types."""

    IPV4_NUMBERED = 1
    IPV4_UNNUMBERED = 2
    IPV6_NUMBERED = 3
    IPV6_UNNUMBERED = 4


class LabelProtocol(IntEnum):
    """§3.4.1.2 protocol of a downstream label."""

    UNKNOWN = 0
    STATIC = 1
    BGP = 2
    LDP = 3
    RSVP_TE = 4


class PadAction(IntEnum):
    """§3.5 first octet of the Pad TLV."""

    DROP = 1
    COPY = 2


def is_mandatory(tlv_type: int) -> bool:
    """§3: TLV and sub-TLV types below 32768 must be understood (else return code 2)."""
    return tlv_type < 0x8000


# ---------------------------------------------------------------- errors


class DecodeError(_BaseDecodeError):
    """Malformed bytes: the request maps to return code 1 (malformed), §4.4."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.message = message
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (offset {offset})")


def return_code_for(err: DecodeError) -> ReturnCode:
    """The one mapping from decode errors to a return code (§4.4: malformed request)."""
    return ReturnCode.MALFORMED_REQUEST


class _Reader:
    """Bounded big-endian reader; every overrun is a DecodeError."""

    def __init__(self, data: bytes, base: int = 0) -> None:
        self.data = bytes(data)
        self.pos = 0
        self.base = base

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.left < n:
            raise DecodeError(f"truncated {what}: need {n} octets, have {self.left}", self.base + self.pos)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return struct.unpack("!H", self.take(2, what))[0]

    def u32(self, what: str) -> int:
        return struct.unpack("!I", self.take(4, what))[0]

    def tlvs(self, what: str) -> Iterator[tuple[int, bytes, int]]:
        """(type, value, offset) for each padded TLV until the end."""
        while self.left:
            off = self.base + self.pos
            t = self.u16(f"{what} type")
            n = self.u16(f"{what} length")
            value = self.take(n, f"{what} {t} value")
            pad = _pad_len(n)
            if pad:
                # §3: the value is zero-padded to a 4-octet boundary; tolerate a
                # final TLV whose padding was left off.
                self.take(min(pad, self.left), f"{what} {t} padding")
            yield t, value, off


def _pad_len(n: int) -> int:
    return (4 - n % 4) % 4


def _tlv(t: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"TLV {t} value too long ({len(value)} octets)")
    return struct.pack("!HH", t, len(value)) + value + b"\0" * _pad_len(len(value))


TLVS: Registry[KnownTlv] = Registry("echo TLV")  # §3 top-level TLVs
FECS: Registry[KnownFec] = Registry("echo FEC sub-TLV")  # §3.2 Target FEC Stack sub-TLVs


# ---------------------------------------------------------------- label entries


@dataclass(frozen=True)
class LabelEntry:
    """An MPLS label stack entry (RFC 3032 §2.1): label, TC, S, TTL."""

    label: int
    tc: int = 0
    s: bool = False
    ttl: int = 0

    def encode(self) -> bytes:
        if not 0 <= self.label < (1 << 20):
            raise ValueError(f"label {self.label} out of range")
        return struct.pack("!I", (self.label << 12) | (self.tc << 9) | (int(self.s) << 8) | self.ttl)

    @classmethod
    def decode(cls, b: bytes) -> LabelEntry:
        (v,) = struct.unpack("!I", b)
        return cls(v >> 12, (v >> 9) & 7, bool(v & 0x100), v & 0xFF)


def label_stack(labels: Iterable[int], ttl: int = 255) -> tuple[LabelEntry, ...]:
    """Label stack entries, top first, with S set on the last one."""
    ls = list(labels)
    return tuple(LabelEntry(lbl, 0, i == len(ls) - 1, ttl) for i, lbl in enumerate(ls))


# ---------------------------------------------------------------- Target FEC Stack (§3.2)


def _prefix_octets(p: IPv4Network | IPv6Network) -> bytes:
    """A FEC's prefix field and prefix length (§3.2.1, §3.2.2, §3.2.5, §3.2.6, §3.2.14)."""
    return p.network_address.packed + bytes([p.prefixlen])


def _prefix_from(v: bytes, at: int, address: type[IPv4Address] | type[IPv6Address],
                 network: type[IPv4Network] | type[IPv6Network], what: str,
                 off: int) -> IPv4Network | IPv6Network:
    """The prefix and length at `at`, ending the value (the MBZ octets are the TLV's
    padding): DecodeError naming `what` if the length or the prefix is wrong."""
    bits = 32 if address is IPv4Address else 128
    end = at + bits // 8
    if len(v) != end + 1:
        raise DecodeError(f"{what} length {len(v)} != {end + 1}", off)
    plen = v[end]
    if plen > bits:
        raise DecodeError(f"{what} prefix length {plen} > {bits}", off)
    try:
        return network((address(v[at:end]), plen))
    except ValueError as e:
        raise DecodeError(f"{what}: {e}", off) from None


@FECS.register
@dataclass(frozen=True)
class LdpIpv4Fec:
    """§3.2.1 LDP IPv4 prefix: prefix (4), prefix length (1), MBZ (3); Length 5."""

    TYPE: ClassVar[int] = FecType.LDP_IPV4
    prefix: IPv4Network

    def value(self) -> bytes:
        return _prefix_octets(self.prefix)

    @classmethod
    def from_value(cls, v: bytes, off: int) -> LdpIpv4Fec:
        return cls(_prefix_from(v, 0, IPv4Address, IPv4Network, "LDP IPv4 FEC", off))

    def __str__(self) -> str:
        return str(self.prefix)


@FECS.register
@dataclass(frozen=True)
class LdpIpv6Fec:
    """§3.2.2 LDP IPv6 prefix: prefix (16), prefix length (1), MBZ (3); Length 17."""

    TYPE: ClassVar[int] = FecType.LDP_IPV6
    prefix: IPv6Network

    def value(self) -> bytes:
        return _prefix_octets(self.prefix)

    @classmethod
    def from_value(cls, v: bytes, off: int) -> LdpIpv6Fec:
        return cls(_prefix_from(v, 0, IPv6Address, IPv6Network, "LDP IPv6 FEC", off))

    def __str__(self) -> str:
        return str(self.prefix)


_RD = struct.Struct("!HHI")  # a route distinguisher as its type and 6 value octets (RFC 4364 §4.2)


def rd_octets(rd: str) -> bytes:
    """A route distinguisher "65000:1" / "10.0.0.1:1" / "4200000000:1" as its 8 octets
    (RFC 4364 §4.2 types 0, 1, 2: the type follows from the administrator field)."""
    left, _, right = rd.rpartition(":")
    num = int(right)
    if "." in left:
        return struct.pack("!H4sH", 1, IPv4Address(left).packed, num)
    if int(left) > 0xFFFF:
        return struct.pack("!HIH", 2, int(left), num)
    return struct.pack("!HHI", 0, int(left), num)


def rd_text(rd: bytes) -> str:
    """8 route distinguisher octets as ADMIN:NUMBER (RFC 4364 §4.2 types 0, 1, 2)."""
    t = struct.unpack_from("!H", rd)[0]
    if t == 0:
        _, a, n = _RD.unpack(rd)
        return f"{a}:{n}"
    if t == 1:
        a4, n = struct.unpack_from("!4sH", rd, 2)
        return f"{IPv4Address(a4)}:{n}"
    if t == 2:
        a, n = struct.unpack_from("!IH", rd, 2)
        return f"{a}:{n}"
    return f"type{t}:{rd[2:].hex()}"


class _VpnFec:
    """The shared layout of §3.2.5 / §3.2.6: route distinguisher (8), prefix (4 or 16),
    prefix length (1), MBZ (3). The RD is kept as its 8 octets (RFC 4364 §4.2: type 0 is
    2-octet AS : 4-octet number, 1 IPv4 : 2-octet number, 2 4-octet AS : 2-octet number);
    `rd_text` writes it as ADMIN:NUMBER."""

    _FAMILY: ClassVar[str]
    _ADDRESS: ClassVar[type[IPv4Address] | type[IPv6Address]]
    _NETWORK: ClassVar[type[IPv4Network] | type[IPv6Network]]
    rd: bytes
    prefix: IPv4Network | IPv6Network

    def __post_init__(self) -> None:
        if len(self.rd) != 8:
            raise ValueError(f"a route distinguisher has 8 octets, not {len(self.rd)}")

    def value(self) -> bytes:
        return self.rd + _prefix_octets(self.prefix)

    @classmethod
    def _decode(cls, v: bytes, off: int) -> tuple[bytes, IPv4Network | IPv6Network]:
        return bytes(v[:8]), _prefix_from(v, 8, cls._ADDRESS, cls._NETWORK,
                                          f"VPN {cls._FAMILY} FEC", off)

    def rd_text(self) -> str:
        return rd_text(self.rd)

    def __str__(self) -> str:
        return f"{self.rd_text()}:{self.prefix}"


@FECS.register
@dataclass(frozen=True)
class VpnIpv4Fec(_VpnFec):
    """§3.2.5 VPN IPv4 prefix; Length 13."""

    TYPE: ClassVar[int] = FecType.VPN_IPV4
    _FAMILY: ClassVar[str] = "IPv4"
    _ADDRESS: ClassVar[type[IPv4Address]] = IPv4Address
    _NETWORK: ClassVar[type[IPv4Network]] = IPv4Network
    rd: bytes
    prefix: IPv4Network

    @classmethod
    def from_value(cls, v: bytes, off: int) -> VpnIpv4Fec:
        return cls(*cls._decode(v, off))

    @classmethod
    def from_text(cls, rd: str, prefix: IPv4Network) -> VpnIpv4Fec:
        """From "65000:1" / "10.0.0.1:1" / "4200000000:1" (the forms of RFC 4364 §4.2)."""
        return cls(rd_octets(rd), prefix)


@FECS.register
@dataclass(frozen=True)
class VpnIpv6Fec(_VpnFec):
    """§3.2.6 VPN IPv6 prefix; Length 25: the IPv6 routes of a VRF (6VPE, RFC 4659)."""

    TYPE: ClassVar[int] = FecType.VPN_IPV6
    _FAMILY: ClassVar[str] = "IPv6"
    _ADDRESS: ClassVar[type[IPv6Address]] = IPv6Address
    _NETWORK: ClassVar[type[IPv6Network]] = IPv6Network
    rd: bytes
    prefix: IPv6Network

    @classmethod
    def from_value(cls, v: bytes, off: int) -> VpnIpv6Fec:
        return cls(*cls._decode(v, off))

    @classmethod
    def from_text(cls, rd: str, prefix: IPv6Network) -> VpnIpv6Fec:
        return cls(rd_octets(rd), prefix)


@FECS.register
@dataclass(frozen=True)
class BgpIpv6Fec:
    """§3.2.14 BGP labeled IPv6 prefix: prefix (16), prefix length (1), MBZ (3); Length
    17 (the layout of the LDP IPv6 FEC, §3.2.2): a prefix bound to a label by BGP
    (RFC 8277), e.g. a 6PE route (RFC 4798)."""

    TYPE: ClassVar[int] = FecType.BGP_IPV6
    prefix: IPv6Network

    def value(self) -> bytes:
        return _prefix_octets(self.prefix)

    @classmethod
    def from_value(cls, v: bytes, off: int) -> BgpIpv6Fec:
        return cls(_prefix_from(v, 0, IPv6Address, IPv6Network, "BGP labeled IPv6 FEC", off))

    def __str__(self) -> str:
        return str(self.prefix)


@FECS.register
@dataclass(frozen=True)
class NilFec:
    """§3.2.17 Nil FEC: label (20 bits) + MBZ (12); stands for a reserved label in the stack."""

    TYPE: ClassVar[int] = FecType.NIL
    label: int

    def value(self) -> bytes:
        return struct.pack("!I", (self.label & 0xFFFFF) << 12)

    @classmethod
    def from_value(cls, v: bytes, off: int) -> NilFec:
        if len(v) != 4:
            raise DecodeError(f"Nil FEC length {len(v)} != 4", off)
        return cls(struct.unpack("!I", v)[0] >> 12)

    def __str__(self) -> str:
        return f"nil({self.label})"


@dataclass(frozen=True)
class UnknownFec:
    """A FEC sub-TLV this implementation does not understand (kept verbatim)."""

    type: int
    value: bytes

    def encode(self) -> bytes:
        return _tlv(self.type, self.value)

    def __str__(self) -> str:
        return f"fec-type-{self.type}"


KnownFec = LdpIpv4Fec | LdpIpv6Fec | VpnIpv4Fec | VpnIpv6Fec | BgpIpv6Fec | NilFec
Fec = KnownFec | UnknownFec


def _encode_fec(f: Fec) -> bytes:
    return f.encode() if isinstance(f, UnknownFec) else _tlv(f.TYPE, f.value())


def _decode_fec(t: int, v: bytes, off: int) -> Fec:
    cls = FECS.get(t)
    return UnknownFec(t, v) if cls is None else cls.from_value(v, off)


@TLVS.register
@dataclass(frozen=True)
class TargetFecStack:
    """§3.2 Target FEC Stack TLV (type 1): one sub-TLV per label, top first."""

    TYPE: ClassVar[int] = TlvType.TARGET_FEC_STACK
    fecs: tuple[Fec, ...]

    def value(self) -> bytes:
        return b"".join(_encode_fec(f) for f in self.fecs)

    @classmethod
    def from_value(cls, v: bytes, off: int) -> TargetFecStack:
        r = _Reader(v, off)
        fecs = tuple(_decode_fec(t, sv, so) for t, sv, so in r.tlvs("FEC sub-TLV"))
        if not fecs:
            raise DecodeError("empty Target FEC Stack", off)
        return cls(fecs)

    def unknown_mandatory(self) -> bool:
        return any(isinstance(f, UnknownFec) and is_mandatory(f.type) for f in self.fecs)


# ---------------------------------------------------------------- DDMAP (§3.4)


# The most destinations one Multipath sub-TLV is read as: 8,191 ranges of 2^32 addresses
# fit in its 16-bit length, and a responder hashes each one it reads; the first ones are
# the set it answers for (§3.4.1.1.1 lets it describe a subset).
MAX_MULTIPATH_ADDRESSES = 1 << 16


@dataclass(frozen=True)
class Multipath:
    """§3.4.1.1 Multipath Data sub-TLV (type 1)::

        | Multipath Type | Multipath Length (16) | Reserved (MBZ) |
        |                Multipath Information ...                |

    `info` is the raw Multipath Information; `addresses(v6)` expands the IP
    encodings (2: list of addresses, 4: low/high pairs, 8: base address + bit mask
    where bit i (MSB first) selects base + i).

    §3.4.1.1.1: "IPv4 addresses are drawn from the range 127/8; IPv6 addresses are
    drawn from the range 0:0:0:0:0:FFFF:7F00:0/104", 4 and 16 octets each in all three
    IP encodings (its type 8 example: the 16-octet ::ffff:127.2.1.0, then the mask).
    Nothing in the sub-TLV (nor the DDMAP: its address type is the downstream's, an
    IPv4 core for 6PE) says which family it holds: the addresses are destinations of the
    echo request itself (§4.3), so the family is the request's. The codec keeps `info`
    raw and refuses at decode only what fits neither family; `check(v6)` and
    `addresses(v6)` read it as the caller's family and raise DecodeError when it does
    not fit that one.
    """

    TYPE: ClassVar[int] = DdmapSubType.MULTIPATH
    type: int = MultipathType.NONE  # the multipath type, not the sub-TLV's
    info: bytes = b""

    def value(self) -> bytes:
        return struct.pack("!BHB", self.type, len(self.info), 0) + self.info

    @classmethod
    def from_value(cls, v: bytes, off: int) -> Multipath:
        r = _Reader(v, off)
        mtype = r.u8("multipath type")
        mlen = r.u16("multipath length")
        r.u8("multipath reserved")
        info = r.take(mlen, "multipath information")
        if r.left:
            raise DecodeError(f"multipath sub-TLV has {r.left} octets after its information", off)
        mp = cls(mtype, info)
        v4 = mp._problem(False)
        if v4 is not None and mp._problem(True) is not None:
            raise DecodeError(v4, off)
        return mp

    def _pairs(self, w: int) -> Iterator[tuple[int, int]]:
        for i in range(0, len(self.info) - 2 * w + 1, 2 * w):
            yield (int.from_bytes(self.info[i:i + w], "big"),
                   int.from_bytes(self.info[i + w:i + 2 * w], "big"))

    def _problem(self, v6: bool) -> str | None:
        """Why `info` is not valid Multipath Information of the family (None: it is)."""
        n, w = len(self.info), 16 if v6 else 4
        fam = "IPv6" if v6 else "IP"
        if self.type == MultipathType.NONE and n:
            return "multipath type 0 with information"
        if self.type == MultipathType.IP_ADDRESS and n % w:
            return f"multipath {fam} address list length {n} is not a multiple of {w}"
        if self.type == MultipathType.IP_RANGE:
            if n % (2 * w):
                return f"multipath {fam} range length {n} is not a multiple of {2 * w}"
            if any(lo > hi for lo, hi in self._pairs(w)):
                return f"multipath {fam} range low > high"
        if self.type == MultipathType.BITMASK_IP and (n < w or n % 4):
            return f"multipath bit-masked {fam} set length {n} is invalid"
        if self.type == MultipathType.BITMASK_LABEL and (n < 4 or n % 4):
            return f"multipath bit-masked label set length {n} is invalid"
        return None

    def check(self, v6: bool = False) -> None:
        """Raise DecodeError unless `info` is valid for the family (IPv6 with `v6`)."""
        problem = self._problem(v6)
        if problem is not None:
            raise DecodeError(problem)

    # -- constructors: IPv4 or IPv6 addresses, one family per sub-TLV
    @classmethod
    def ip_addresses(cls, addrs: Iterable[IPv4Address | IPv6Address]) -> Multipath:
        return cls(MultipathType.IP_ADDRESS, b"".join(a.packed for a in _one_family(addrs)))

    @classmethod
    def ip_ranges(cls, ranges: Iterable[tuple[IPv4Address, IPv4Address]]
                  | Iterable[tuple[IPv6Address, IPv6Address]]) -> Multipath:
        pairs = list(ranges)
        _one_family(a for p in pairs for a in p)
        return cls(MultipathType.IP_RANGE, b"".join(lo.packed + hi.packed for lo, hi in pairs))

    @classmethod
    def bitmask(cls, addrs: Iterable[IPv4Address | IPv6Address]) -> Multipath:
        """Bit-masked IP address set (type 8) covering `addrs` (empty -> NONE).

        As §3.4.1.1.1 has it, both families: the base is a prefix (its low-order bits
        zero) and the mask 2^(W - prefix length) bits, at least 32 (prefix length 27 /
        123 at most, the RFC's example): a receiver that takes the prefix length from the
        Multipath Length and masks the base reads the same set as one that adds bit
        positions to the base (ours). Before, IPv4 sets were based at their lowest
        address (127.0.0.1), which a receiver of the first kind read one address off.
        """
        found = _one_family(addrs)
        ints = sorted({int(a) for a in found})
        if not ints:
            return cls()
        w = 16 if found[0].version == 6 else 4
        k = 5
        while ints[0] >> k != ints[-1] >> k:
            k += 1
        base, nbits = ints[0] >> k << k, 1 << k
        nbytes = nbits // 8
        if w + nbytes > 0xFFFF:  # Multipath Length is 16 bits
            raise ValueError(f"{len(ints)} addresses span too wide a bit mask")
        mask = bytearray(nbytes)
        for a in ints:
            i = a - base
            mask[i // 8] |= 0x80 >> (i % 8)
        return cls(MultipathType.BITMASK_IP, base.to_bytes(w, "big") + bytes(mask))

    def addresses(self, v6: bool = False) -> tuple[IPv4Address, ...] | tuple[IPv6Address, ...]:
        """The destination addresses this multipath information selects, read as IPv4
        (or IPv6 with `v6`: the family of the request, see the class); DecodeError when
        `info` is not valid for that family."""
        self.check(v6)
        w = 16 if v6 else 4
        make = IPv6Address if v6 else IPv4Address
        if self.type == MultipathType.IP_ADDRESS:
            return tuple(make(self.info[i : i + w]) for i in range(0, len(self.info), w))
        if self.type == MultipathType.IP_RANGE:
            out: list = []
            for lo, hi in self._pairs(w):
                room = MAX_MULTIPATH_ADDRESSES - len(out)
                out.extend(make(a) for a in range(lo, min(hi, lo + room - 1) + 1))
                if len(out) >= MAX_MULTIPATH_ADDRESSES:
                    break
            return tuple(out)
        if self.type == MultipathType.BITMASK_IP:
            base = int.from_bytes(self.info[:w], "big")
            mask = self.info[w:]
            top = (1 << (8 * w)) - 1
            return tuple(islice(
                (make(base + i) for i in range(len(mask) * 8)
                 if mask[i // 8] & (0x80 >> (i % 8)) and base + i <= top),
                MAX_MULTIPATH_ADDRESSES))
        return ()


def _one_family(addrs: Iterable[IPv4Address | IPv6Address]) -> list[IPv4Address | IPv6Address]:
    """`addrs` as a list, ValueError when IPv4 and IPv6 are mixed (§3.4.1.1.1: a
    sub-TLV's addresses are of one family)."""
    out = list(addrs)
    if len({a.version for a in out}) > 1:
        raise ValueError("multipath addresses mix IPv4 and IPv6")
    return out


@dataclass(frozen=True)
class DsLabel:
    """§3.4.1.2 one Label Stack sub-TLV entry: label (20), TC (3), S (1), Protocol (8)."""

    label: int
    protocol: int = LabelProtocol.LDP
    tc: int = 0
    s: bool = True

    def encode(self) -> bytes:
        return struct.pack("!I", (self.label << 12) | (self.tc << 9) | (int(self.s) << 8) | self.protocol)

    @classmethod
    def decode(cls, b: bytes) -> DsLabel:
        (v,) = struct.unpack("!I", b)
        return cls(v >> 12, v & 0xFF, (v >> 9) & 7, bool(v & 0x100))


@dataclass(frozen=True)
class FecStackChange:
    """§3.4.1.3 FEC Stack Change sub-TLV (type 3)::

        | Operation Type | Address Type | FEC-tlv Length | Reserved |
        |            Remote Peer Address (0, 4 or 16 octets)         |
        .                  FEC TLV (one Target FEC sub-TLV)           .

    Operation 1 = push, 2 = pop; address type 0 = unspecified, 1 = IPv4, 2 = IPv6.
    """

    TYPE: ClassVar[int] = DdmapSubType.FEC_STACK_CHANGE
    operation: int
    fec: Fec
    remote_peer: IPv4Address | IPv6Address | None = None
    PUSH = 1
    POP = 2

    def value(self) -> bytes:
        fec_tlv = _encode_fec(self.fec)
        if self.remote_peer is None:
            at, addr = 0, b""
        else:
            at, addr = (1 if self.remote_peer.version == 4 else 2), self.remote_peer.packed
        return struct.pack("!BBBB", self.operation, at, len(fec_tlv), 0) + addr + fec_tlv

    @classmethod
    def from_value(cls, v: bytes, off: int) -> FecStackChange:
        r = _Reader(v, off)
        op = r.u8("FEC stack change operation")
        if op not in (cls.PUSH, cls.POP):
            raise DecodeError(f"FEC stack change operation {op} is not push (1) or pop (2)", off)
        at = r.u8("FEC stack change address type")
        flen = r.u8("FEC stack change FEC-tlv length")
        r.u8("FEC stack change reserved")
        peer: IPv4Address | IPv6Address | None
        if at == 0:
            peer = None
        elif at == 1:
            peer = IPv4Address(r.take(4, "remote peer address"))
        elif at == 2:
            peer = IPv6Address(r.take(16, "remote peer address"))
        else:
            raise DecodeError(f"FEC stack change address type {at} unknown", off)
        fr = _Reader(r.take(flen, "FEC TLV"), off)
        if r.left:
            raise DecodeError("octets after the FEC TLV of a FEC stack change", off)
        fecs = [_decode_fec(t, fv, fo) for t, fv, fo in fr.tlvs("FEC sub-TLV")]
        if len(fecs) != 1:
            raise DecodeError(f"FEC stack change carries {len(fecs)} FECs, not 1", off)
        return cls(op, fecs[0], peer)


@dataclass(frozen=True)
class UnknownSubTlv:
    type: int
    value: bytes

    def encode(self) -> bytes:
        return _tlv(self.type, self.value)


@TLVS.register
@dataclass(frozen=True)
class Ddmap:
    """§3.4 Downstream Detailed Mapping TLV (type 20)::

        |               MTU             | Address Type  |    DS Flags   |
        |               Downstream Address (4 or 16 octets)             |
        |         Downstream Interface Address (4 or 16 octets)         |
        |  Return Code  | Return Subcode|        Sub-tlv Length         |
        .                      List of Sub-TLVs                         .

    For the unnumbered address types the interface "address" is an interface
    index (int). Sub-TLVs are encoded label stack, FEC stack changes, unknown
    ones, then multipath last: RFC 8029 sets no order, and Wireshark 4.0 does
    not advance past a multipath sub-TLV, so anything after it decodes as
    malformed there.
    """

    downstream_address: IPv4Address | IPv6Address = ALL_ROUTERS
    downstream_interface: IPv4Address | IPv6Address | int = ALL_ROUTERS
    mtu: int = 0
    address_type: int = AddressType.IPV4_NUMBERED
    ds_flags: int = 0
    return_code: int = 0
    return_subcode: int = 0
    multipath: Multipath | None = None
    labels: tuple[DsLabel, ...] = ()
    fec_changes: tuple[FecStackChange, ...] = ()
    unknown: tuple[UnknownSubTlv, ...] = ()
    TYPE: ClassVar[int] = TlvType.DDMAP

    def value(self) -> bytes:
        at = self.address_type
        head = struct.pack("!HBB", self.mtu, at, self.ds_flags) + self.downstream_address.packed
        if at in (AddressType.IPV4_UNNUMBERED, AddressType.IPV6_UNNUMBERED):
            head += struct.pack("!I", int(self.downstream_interface))
        else:
            assert not isinstance(self.downstream_interface, int)
            head += self.downstream_interface.packed
        subs = b""
        if self.labels:
            subs += _tlv(DdmapSubType.LABEL_STACK, b"".join(lbl.encode() for lbl in self.labels))
        subs += b"".join(_tlv(c.TYPE, c.value()) for c in self.fec_changes)
        subs += b"".join(u.encode() for u in self.unknown)
        if self.multipath is not None:
            subs += _tlv(Multipath.TYPE, self.multipath.value())
        return head + struct.pack("!BBH", self.return_code, self.return_subcode, len(subs)) + subs

    @classmethod
    def from_value(cls, v: bytes, off: int) -> Ddmap:
        r = _Reader(v, off)
        mtu = r.u16("DDMAP MTU")
        at = r.u8("DDMAP address type")
        flags = r.u8("DDMAP DS flags")
        ds_addr: IPv4Address | IPv6Address
        ds_if: IPv4Address | IPv6Address | int
        if at == AddressType.IPV4_NUMBERED:
            ds_addr, ds_if = IPv4Address(r.take(4, "downstream address")), IPv4Address(r.take(4, "downstream interface"))
        elif at == AddressType.IPV4_UNNUMBERED:
            ds_addr, ds_if = IPv4Address(r.take(4, "downstream address")), r.u32("downstream interface index")
        elif at == AddressType.IPV6_NUMBERED:
            ds_addr, ds_if = IPv6Address(r.take(16, "downstream address")), IPv6Address(r.take(16, "downstream interface"))
        elif at == AddressType.IPV6_UNNUMBERED:
            ds_addr, ds_if = IPv6Address(r.take(16, "downstream address")), r.u32("downstream interface index")
        else:
            raise DecodeError(f"DDMAP address type {at} unknown", off)
        rc = r.u8("DDMAP return code")
        rsc = r.u8("DDMAP return subcode")
        slen = r.u16("DDMAP sub-TLV length")
        if slen != r.left:
            raise DecodeError(f"DDMAP sub-TLV length {slen} != {r.left} octets present", off)
        mp: Multipath | None = None
        labels: list[DsLabel] = []
        changes: list[FecStackChange] = []
        unknown: list[UnknownSubTlv] = []
        for t, sv, so in r.tlvs("DDMAP sub-TLV"):
            if t == DdmapSubType.MULTIPATH:
                if mp is not None:
                    raise DecodeError("two multipath sub-TLVs in one DDMAP", so)
                mp = Multipath.from_value(sv, so)
            elif t == DdmapSubType.LABEL_STACK:
                if len(sv) % 4:
                    raise DecodeError(f"label stack sub-TLV length {len(sv)} not a multiple of 4", so)
                labels.extend(DsLabel.decode(sv[i : i + 4]) for i in range(0, len(sv), 4))
            elif t == DdmapSubType.FEC_STACK_CHANGE:
                changes.append(FecStackChange.from_value(sv, so))
            else:
                unknown.append(UnknownSubTlv(t, sv))
        return cls(ds_addr, ds_if, mtu, at, flags, rc, rsc, mp, tuple(labels), tuple(changes), tuple(unknown))

    def unknown_mandatory(self) -> bool:
        return any(is_mandatory(u.type) for u in self.unknown)

    @property
    def label_values(self) -> tuple[int, ...]:
        return tuple(lbl.label for lbl in self.labels)


# ---------------------------------------------------------------- other TLVs


@TLVS.register
@dataclass(frozen=True)
class Pad:
    """§3.5 Pad TLV (type 3): first octet 1 = drop from reply, 2 = copy to reply."""

    action: int = PadAction.DROP
    data: bytes = b""
    TYPE: ClassVar[int] = TlvType.PAD

    def __post_init__(self) -> None:
        # Keep the value a multiple of 4 octets by padding *inside* it: §3 pads
        # values after Length, but Wireshark reads top-level TLVs unpadded, so
        # an odd-length Pad TLV would be misread there. Pad content is arbitrary.
        object.__setattr__(self, "data", self.data + b"\0" * _pad_len(1 + len(self.data)))

    def value(self) -> bytes:
        return bytes([self.action]) + self.data

    @classmethod
    def from_value(cls, v: bytes, off: int) -> Pad:
        if not v:
            raise DecodeError("empty Pad TLV", off)
        if v[0] not in (PadAction.DROP, PadAction.COPY):
            raise DecodeError(f"Pad action {v[0]} is not drop (1) or copy (2)", off)
        return cls(v[0], v[1:])


@TLVS.register
@dataclass(frozen=True)
class InterfaceLabelStack:
    """§3.7 Interface and Label Stack TLV (type 7)::

        | Address Type  |             Must Be Zero                      |
        |                   IP Address (4 or 16 octets)                 |
        |                   Interface (4 or 16 octets)                  |
        .                Label Stack (4 octets per entry)               .

    The received interface (address, or index when unnumbered) and the label
    stack as the packet arrived (TTL and all).
    """

    address: IPv4Address | IPv6Address
    interface: IPv4Address | IPv6Address | int
    labels: tuple[LabelEntry, ...] = ()
    address_type: int = AddressType.IPV4_NUMBERED
    TYPE: ClassVar[int] = TlvType.INTERFACE_LABEL_STACK

    def value(self) -> bytes:
        out = struct.pack("!B3x", self.address_type) + self.address.packed
        if isinstance(self.interface, int):
            out += struct.pack("!I", self.interface)
        else:
            out += self.interface.packed
        return out + b"".join(e.encode() for e in self.labels)

    @classmethod
    def from_value(cls, v: bytes, off: int) -> InterfaceLabelStack:
        r = _Reader(v, off)
        at = r.u8("interface address type")
        r.take(3, "interface MBZ")
        addr: IPv4Address | IPv6Address
        ifc: IPv4Address | IPv6Address | int
        if at == AddressType.IPV4_NUMBERED:
            addr, ifc = IPv4Address(r.take(4, "address")), IPv4Address(r.take(4, "interface"))
        elif at == AddressType.IPV4_UNNUMBERED:
            addr, ifc = IPv4Address(r.take(4, "address")), r.u32("interface index")
        elif at == AddressType.IPV6_NUMBERED:
            addr, ifc = IPv6Address(r.take(16, "address")), IPv6Address(r.take(16, "interface"))
        elif at == AddressType.IPV6_UNNUMBERED:
            addr, ifc = IPv6Address(r.take(16, "address")), r.u32("interface index")
        else:
            raise DecodeError(f"interface address type {at} unknown", off)
        if r.left % 4:
            raise DecodeError("label stack is not a multiple of 4 octets", off)
        labels = tuple(LabelEntry.decode(r.take(4, "label")) for _ in range(r.left // 4))
        return cls(addr, ifc, labels, at)


@dataclass(frozen=True)
class RawTlv:
    """A TLV as bytes: the content of Errored TLVs, or one we do not understand."""

    type: int
    value: bytes

    def encode(self) -> bytes:
        return _tlv(self.type, self.value)

    @property
    def mandatory(self) -> bool:
        return is_mandatory(self.type)


UnknownTlv = RawTlv


@TLVS.register
@dataclass(frozen=True)
class ErroredTlvs:
    """§3.8 Errored TLVs (type 9): copies of the TLVs that were not understood."""

    tlvs: tuple[RawTlv, ...]
    TYPE: ClassVar[int] = TlvType.ERRORED_TLVS

    def value(self) -> bytes:
        return b"".join(t.encode() for t in self.tlvs)

    @classmethod
    def from_value(cls, v: bytes, off: int) -> ErroredTlvs:
        return cls(tuple(RawTlv(t, tv) for t, tv, _ in _Reader(v, off).tlvs("errored TLV")))


@TLVS.register
@dataclass(frozen=True)
class ReplyTos:
    """§3.9 Reply TOS Byte TLV (type 10): TOS (8) + MBZ (24)."""

    tos: int
    TYPE: ClassVar[int] = TlvType.REPLY_TOS

    def value(self) -> bytes:
        return struct.pack("!B3x", self.tos)

    @classmethod
    def from_value(cls, v: bytes, off: int) -> ReplyTos:
        if len(v) != 4:
            raise DecodeError(f"Reply TOS length {len(v)} != 4", off)
        return cls(v[0])


KnownTlv = TargetFecStack | Ddmap | Pad | InterfaceLabelStack | ErroredTlvs | ReplyTos
Tlv = KnownTlv | RawTlv


def encode_tlv(tlv: Tlv) -> bytes:
    if isinstance(tlv, RawTlv):
        return tlv.encode()
    return _tlv(tlv.TYPE, tlv.value())


def tlv_as_raw(tlv: Tlv) -> RawTlv:
    """Any TLV as type + value bytes (for copying into Errored TLVs)."""
    if isinstance(tlv, RawTlv):
        return tlv
    return RawTlv(int(tlv.TYPE), tlv.value())


# ---------------------------------------------------------------- the message


Timestamp = tuple[int, int]  # NTP (seconds since 1900, 2^-32 fraction)


def ntp_from_unix(t: float) -> Timestamp:
    secs = int(t)
    frac = int((t - secs) * (1 << 32)) & 0xFFFFFFFF
    return ((secs + NTP_UNIX_OFFSET) & 0xFFFFFFFF, frac)


def ntp_to_unix(ts: Timestamp) -> float:
    return ts[0] - NTP_UNIX_OFFSET + ts[1] / (1 << 32)


@dataclass(frozen=True)
class EchoMessage:
    """An MPLS echo request or reply (RFC 8029 §3)."""

    msg_type: int = MessageType.ECHO_REQUEST
    reply_mode: int = ReplyMode.UDP
    return_code: int = ReturnCode.NO_RETURN_CODE
    return_subcode: int = 0
    sender_handle: int = 0
    sequence: int = 0
    ts_sent: Timestamp = (0, 0)
    ts_received: Timestamp = (0, 0)
    flags: int = 0
    tlvs: tuple[Tlv, ...] = field(default_factory=tuple)
    version: int = VERSION

    def encode(self) -> bytes:
        head = struct.pack(
            "!HHBBBBIIIIII",
            self.version,
            self.flags,
            self.msg_type,
            self.reply_mode,
            self.return_code,
            self.return_subcode,
            self.sender_handle,
            self.sequence,
            *self.ts_sent,
            *self.ts_received,
        )
        return head + b"".join(encode_tlv(t) for t in self.tlvs)

    @classmethod
    def decode(cls, data: bytes) -> EchoMessage:
        """Decode a UDP payload; raises only DecodeError."""
        r = _Reader(data)
        if r.left < HEADER_LEN:
            raise DecodeError(f"message of {r.left} octets is shorter than the {HEADER_LEN}-octet header", 0)
        (ver, flags, mt, rm, rc, rsc, handle, seq, s1, s2, r1, r2) = struct.unpack(
            "!HHBBBBIIIIII", r.take(HEADER_LEN, "header")
        )
        if ver != VERSION:
            raise DecodeError(f"version {ver} is not {VERSION}", 0)
        if mt not in (MessageType.ECHO_REQUEST, MessageType.ECHO_REPLY):
            raise DecodeError(f"message type {mt} is not an echo request (1) or reply (2)", 2)
        tlvs: list[Tlv] = []
        for t, v, off in r.tlvs("TLV"):
            tlv_cls = TLVS.get(t)
            tlvs.append(RawTlv(t, v) if tlv_cls is None else tlv_cls.from_value(v, off + 4))
        return cls(mt, rm, rc, rsc, handle, seq, (s1, s2), (r1, r2), flags, tuple(tlvs), ver)

    # -- accessors
    def find(self, kind: type) -> list:
        return [t for t in self.tlvs if isinstance(t, kind)]

    @property
    def fec_stack(self) -> TargetFecStack | None:
        found = self.find(TargetFecStack)
        return found[0] if found else None

    @property
    def ddmaps(self) -> tuple[Ddmap, ...]:
        return tuple(self.find(Ddmap))

    @property
    def validate_fec(self) -> bool:
        return bool(self.flags & FLAG_V)

    def not_understood(self) -> tuple[RawTlv, ...]:
        """TLVs to return in Errored TLVs (§3): unknown mandatory TLVs, and known
        TLVs carrying an unknown mandatory sub-TLV."""
        out: list[RawTlv] = []
        for t in self.tlvs:
            if isinstance(t, RawTlv) and t.mandatory and t.type not in TLVS:
                out.append(t)
            elif isinstance(t, (TargetFecStack, Ddmap)) and t.unknown_mandatory():
                out.append(tlv_as_raw(t))
        return tuple(out)


# ---------------------------------------------------------------- IPv4 / UDP


IPPROTO_UDP = 17
ROUTER_ALERT_OPTION = b"\x94\x04\x00\x00"  # RFC 2113: type 148, length 4, value 0


def udp_checksum(src: IPv4Address, dst: IPv4Address, segment: bytes) -> int:
    """UDP checksum over the IPv4 pseudo-header (RFC 768); 0 is sent as 0xFFFF."""
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, IPPROTO_UDP, len(segment))
    c = inet_checksum(pseudo + segment)
    return c or 0xFFFF


def build_udp_ipv4(
    payload: bytes,
    src: IPv4Address,
    dst: IPv4Address,
    sport: int,
    dport: int,
    ttl: int = 64,
    tos: int = 0,
    ident: int = 0,
    router_alert: bool = False,
) -> bytes:
    """An IPv4 + UDP packet with correct checksums (optionally with Router Alert)."""
    udp_len = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    udp = udp[:6] + struct.pack("!H", udp_checksum(src, dst, udp)) + udp[8:]
    options = ROUTER_ALERT_OPTION if router_alert else b""
    ihl = 5 + len(options) // 4
    total = ihl * 4 + udp_len
    hdr = struct.pack(
        "!BBHHHBBH4s4s", (4 << 4) | ihl, tos, total, ident, 0, ttl, IPPROTO_UDP, 0, src.packed, dst.packed
    ) + options
    hdr = hdr[:10] + struct.pack("!H", inet_checksum(hdr)) + hdr[12:]
    return hdr + udp


def build_echo_request_packet(
    request: EchoMessage,
    src: IPv4Address,
    sport: int,
    dst: IPv4Address = LOCALHOST,
    tos: int = 0,
    ident: int = 0,
) -> bytes:
    """§4.3: the IP packet of an echo request: UDP to port 3503, destination in
    127/8 (so a broken LSP never IP-forwards it), IP TTL 1, Router Alert
    option (RFC 2113), source = the sender's routable address."""
    if dst not in LOOPBACK_NET:
        raise ValueError(f"echo request destination {dst} is not in 127/8 (RFC 8029 §4.3)")
    return build_udp_ipv4(request.encode(), src, dst, sport, UDP_PORT, ttl=1, tos=tos,
                          ident=ident, router_alert=True)


def build_echo_reply_packet(
    reply: EchoMessage,
    src: IPv4Address,
    dst: IPv4Address,
    dport: int,
    tos: int = 0,
    ident: int = 0,
) -> bytes:
    """§4.5: the reply goes to the request's source address and port, from 3503;
    reply mode 3 adds the Router Alert option."""
    ra = reply.reply_mode == ReplyMode.UDP_ROUTER_ALERT
    return build_udp_ipv4(reply.encode(), src, dst, UDP_PORT, dport, ttl=255, tos=tos,
                          ident=ident, router_alert=ra)


@dataclass(frozen=True)
class UdpIpv4:
    """What `parse_udp_ipv4` extracts from an IPv4/UDP packet."""

    src: IPv4Address
    dst: IPv4Address
    sport: int
    dport: int
    ttl: int
    tos: int
    router_alert: bool
    payload: bytes


def parse_udp_ipv4(packet: bytes) -> UdpIpv4:
    """Parse an IPv4/UDP packet and check both checksums; raises DecodeError."""
    r = _Reader(packet)
    if r.left < 20:
        raise DecodeError("IPv4 header truncated", 0)
    vihl = packet[0]
    ihl = (vihl & 0xF) * 4
    if vihl >> 4 != 4 or ihl < 20 or len(packet) < ihl:
        raise DecodeError("not an IPv4 header", 0)
    total = struct.unpack("!H", packet[2:4])[0]
    if total < ihl + 8 or total > len(packet):
        raise DecodeError(f"IPv4 total length {total} is inconsistent", 2)
    if packet[9] != IPPROTO_UDP:
        raise DecodeError(f"IP protocol {packet[9]} is not UDP", 9)
    if inet_checksum(packet[:ihl]):
        raise DecodeError("bad IPv4 header checksum", 10)
    src, dst = IPv4Address(packet[12:16]), IPv4Address(packet[16:20])
    opts = packet[20:ihl]
    ra = False
    i = 0
    while i < len(opts):  # RFC 791 options: EOL, NOP, or type/length/value
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2 or i + opts[i + 1] > len(opts):
            raise DecodeError("bad IPv4 option", 20 + i)
        ra = ra or kind == 0x94
        i += opts[i + 1]
    udp = packet[ihl:total]
    sport, dport, ulen, csum = struct.unpack("!HHHH", udp[:8])
    if ulen < 8 or ulen > len(udp):
        raise DecodeError(f"UDP length {ulen} is inconsistent", ihl + 4)
    udp = udp[:ulen]
    if csum and inet_checksum(src.packed + dst.packed + struct.pack("!BBH", 0, IPPROTO_UDP, ulen) + udp):
        raise DecodeError("bad UDP checksum", ihl + 6)
    return UdpIpv4(src, dst, sport, dport, packet[8], packet[1], ra, udp[8:])


def multipath_range(count: int, start: IPv4Address | IPv6Address = LOCALHOST
                    ) -> tuple[IPv4Address, ...] | tuple[IPv6Address, ...]:
    """`count` consecutive destinations for multipath exploration from `start`: in 127/8,
    or for an IPv6 `start` in ::ffff:127.0.0.0/104 (§4.3, §3.4.1.1.1)."""
    net = LOOPBACK_NET6 if start.version == 6 else LOOPBACK_NET
    make = type(start)
    out = tuple(make(int(start) + i) for i in range(count))
    if not out or out[-1] not in net:
        raise ValueError(f"{count} addresses from {start} leave {net}")
    return out

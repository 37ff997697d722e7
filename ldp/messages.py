"""LDP message and TLV value types (RFC 5036 §3), shared by codec and speaker.

These are plain frozen dataclasses: the codec (`ldp.codec`) turns them into
bytes and back; the speaker (`ldp.session`, `ldp.instance`) reasons on them.
IANA code points are `IntEnum`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

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


@dataclass(frozen=True, order=True)
class LdpId:
    """LDP Identifier (§2.2.2): LSR ID + label space (0 = per-platform)."""

    lsr_id: IPv4Address
    label_space: int = 0

    def __str__(self) -> str:
        return f"{self.lsr_id}:{self.label_space}"


# ------------------------------------------------------------------ FEC


@dataclass(frozen=True, order=True)
class WildcardFec:
    """Wildcard FEC element (§3.4.1): only in Withdraw and Release."""


@dataclass(frozen=True, order=True)
class PrefixFec:
    """Prefix FEC element (§3.4.1), IPv4 or IPv6."""

    prefix: IPv4Network | IPv6Network


FecElement = WildcardFec | PrefixFec


# ------------------------------------------------------------------ TLVs


@dataclass(frozen=True)
class UnknownTlv:
    """A TLV we do not understand, kept with its U and F bits (§3.3)."""

    tlv_type: int  # 14 bits
    value: bytes
    u_bit: bool
    f_bit: bool


@dataclass(frozen=True)
class Status:
    """Status TLV (§3.4.6). `code` is a StatusCode value without E/F bits."""

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


# ------------------------------------------------------------------ messages


@dataclass(frozen=True)
class Notification:
    msg_id: int
    status: Status
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class Hello:
    """Hello (§3.5.2) with Common Hello Parameters and optional TLVs."""

    msg_id: int
    holdtime: int  # 0 = default (15 s link / 45 s targeted), 0xFFFF = infinite
    targeted: bool = False  # T bit
    request_targeted: bool = False  # R bit
    gtsm: bool = False  # G bit (RFC 6720), sent by FRR
    transport_address: IPv4Address | IPv6Address | None = None
    config_seq: int | None = None
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class Initialization:
    """Initialization (§3.5.3) with Common Session Parameters."""

    msg_id: int
    keepalive_time: int
    receiver: LdpId
    downstream_on_demand: bool = False  # A bit
    loop_detection: bool = False  # D bit
    path_vector_limit: int = 0
    max_pdu_length: int = 0  # 0 (or <= 255) = default 4096
    protocol_version: int = LDP_VERSION
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class KeepAlive:
    msg_id: int
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class Address:
    msg_id: int
    addresses: tuple[IPv4Address | IPv6Address, ...]
    family: AddressFamily = AddressFamily.IPV4
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class AddressWithdraw:
    msg_id: int
    addresses: tuple[IPv4Address | IPv6Address, ...]
    family: AddressFamily = AddressFamily.IPV4
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class LabelMapping:
    msg_id: int
    fec: tuple[FecElement, ...]
    label: int  # Generic Label TLV, 20 bits
    request_msg_id: int | None = None
    hop_count: int | None = None
    path_vector: tuple[IPv4Address, ...] | None = None
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class LabelRequest:
    msg_id: int
    fec: tuple[FecElement, ...]
    hop_count: int | None = None
    path_vector: tuple[IPv4Address, ...] | None = None
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class LabelWithdraw:
    msg_id: int
    fec: tuple[FecElement, ...]
    label: int | None = None
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class LabelRelease:
    msg_id: int
    fec: tuple[FecElement, ...]
    label: int | None = None
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class LabelAbortRequest:
    msg_id: int
    fec: tuple[FecElement, ...]
    request_msg_id: int
    unknown_tlvs: tuple[UnknownTlv, ...] = ()


@dataclass(frozen=True)
class UnknownMessage:
    """A message type we do not know; U=1 means ignore it silently (§3.5)."""

    msg_type: int
    msg_id: int
    body: bytes
    u_bit: bool


Message = (
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
    | UnknownMessage
)


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

"""RFC 5036 LDP wire codec: PDU and message framing <-> `ldp.messages` values.

Pure functions over bytes (``struct`` only, no I/O). Each message and TLV
class in `ldp.messages` encodes its own value and decodes it (`value()`,
`from_value`, looked up by type code in `MESSAGES`); this module adds the
message and PDU headers (RFC 5036 §3.1, §3.5):

* ``encode_message`` / ``encode_pdu`` / ``encode_pdus`` build wire bytes and raise
  ``ValueError`` on values that cannot be encoded.
* ``decode_pdu`` raises ``DecodeError`` (and nothing else) for PDU-level problems;
  message-level problems become ``MessageError`` entries in ``Pdu.messages``.
* ``PduReader`` frames a TCP byte stream into PDUs (§3.1: the PDU Length excludes
  the 4 octets of Version and PDU Length).

Every decode problem is a ``Problem``; ``status_for`` is the one function that
maps a problem to the LDP status code sent in the Notification (§3.5.1.2).

Label Mapping, Address (/Withdraw) and KeepAlive of the common layout take fast
paths that skip the TLV objects (a converging network is made of them); any
other shape, and every error, takes the general path, which is the reference
(`tests/test_ldp_codec_props.py` pins the two together). A speaker that takes them
can go further: `encode_label_mapping` makes a mapping's bytes without a message
object (`encode_pdus` takes encoded messages), and `PduReader.pull_runs` hands over
a run of such mappings as one `MappingRun` of (message ID, FEC, label) tuples. After a fatal
``MessageError`` the rest of the PDU is not decoded (the session is closing
anyway and the framing of the following messages is suspect). The decoding
policy for TLVs is in `ldp.messages`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any

from ldp.messages import (
    DEFAULT_MAX_PDU,
    LDP_VERSION,
    MAX_LABEL,
    MESSAGES,
    MSG_HEADER_LEN,
    MSG_TYPE_MASK,
    TLV_HEADER_LEN,
    U_BIT,
    Address,
    AddressFamily,
    AddressWithdraw,
    DecodeError,
    FecElement,
    FecTlv,
    FecType,
    KeepAlive,
    KnownMessage,
    LabelMapping,
    LdpId,
    Message,
    MessageError,
    MsgType,
    Pdu,
    PrefixFec,
    Problem,
    TlvType,
    UnknownMessage,
    label_ok,
    status_for,
)
from lsr.core.prefix import prefix

__all__ = [
    "PDU_HEADER_LEN",
    "MIN_PDU_LENGTH",
    "MAX_LABEL",
    "DecodeError",
    "Problem",
    "MappingRun",
    "PduReader",
    "decode_message",
    "decode_pdu",
    "encode_label_mapping",
    "encode_message",
    "encode_pdu",
    "encode_pdus",
    "pdu_length",
    "status_for",
]

PDU_HEADER_LEN = 10  # version(2) + length(2) + LDP identifier(6)   (§3.1)
# Smallest legal PDU Length field: LDP identifier + one message with no TLVs.
MIN_PDU_LENGTH = 6 + MSG_HEADER_LEN
_KNOWN_MSG_TYPES = MESSAGES.codes()
_TLV_HDR = struct.Struct("!HH")
assert TLV_HEADER_LEN == _TLV_HDR.size


# ====================================================================== message header
#
# Every message (§3.5; the layouts of the bodies are in `ldp.messages`):
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |U|   Message Type              |      Message Length           |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                     Message ID                                |
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                     Parameters (TLVs): the message's value()  |
# ~                                                               ~
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# Message Length counts the octets after the Length field (Message ID included).

_MSG_HDR = struct.Struct("!HHI")


def _message(msg_type: int, msg_id: int, body: bytes, u_bit: bool = False) -> bytes:
    if not 0 <= msg_id <= 0xFFFFFFFF:
        raise ValueError(f"message id {msg_id} does not fit 32 bits")
    if len(body) + 4 > 0xFFFF:
        raise ValueError(f"message {msg_type:#06x} too long ({len(body)} octets)")
    head = (U_BIT if u_bit else 0) | (msg_type & MSG_TYPE_MASK)
    return _MSG_HDR.pack(head, len(body) + 4, msg_id) + body


def _encode_body(msg: Message) -> tuple[int, bytes]:
    """(message type, encoded TLVs) for a known message: the general path."""
    cls = type(msg)
    if isinstance(msg, UnknownMessage) or MESSAGES.get(getattr(cls, "TYPE", -1)) is not cls:
        raise ValueError(f"not an LDP message: {msg!r}")
    return msg.TYPE, msg.value()


# FEC TLV bytes (TLV header + Prefix element) of an IPv4 prefix, per prefix
_FEC_TLV_CACHE: dict[IPv4Network | IPv6Network, bytes] = {}


def _fast_encode(msg: Message) -> bytes | None:
    """Label Mapping (one IPv4 prefix, Generic Label, no optional TLV) and plain
    KeepAlive, in one pack; None if `msg` is not of that shape (general path)."""
    if type(msg) is LabelMapping:
        fec = msg.fec
        if (len(fec) != 1 or type(fec[0]) is not PrefixFec or msg.request_msg_id is not None
                or msg.hop_count is not None or msg.path_vector is not None or msg.unknown_tlvs):
            return None
        net = fec[0].prefix
        if net.version != 4 or not label_ok(msg.label) or not 0 <= msg.msg_id <= 0xFFFFFFFF:
            return None
        tlv = _FEC_TLV_CACHE.get(net)
        if tlv is None:
            value = FecTlv(fec).value()
            tlv = _TLV_HDR.pack(TlvType.FEC, len(value)) + value
            if len(_FEC_TLV_CACHE) >= _CACHE_MAX:
                _FEC_TLV_CACHE.clear()
            _FEC_TLV_CACHE[net] = tlv
        return (_MSG_HDR.pack(MsgType.LABEL_MAPPING, len(tlv) + 12, msg.msg_id) + tlv
                + _TLV_U32.pack(TlvType.GENERIC_LABEL, 4, msg.label))
    if type(msg) is KeepAlive and not msg.unknown_tlvs and 0 <= msg.msg_id <= 0xFFFFFFFF:
        return _MSG_HDR.pack(MsgType.KEEPALIVE, 4, msg.msg_id)
    return None


def encode_label_mapping(msg_id: int, prefix: IPv4Network, label: int) -> bytes:
    """`encode_message(LabelMapping(msg_id, (PrefixFec(prefix),), label))` for an IPv4
    prefix, a label that may be signalled and a 32-bit message ID (the caller's part),
    without building the message."""
    tlv = _FEC_TLV_CACHE.get(prefix)
    if tlv is None or not 0 <= msg_id <= 0xFFFFFFFF or not label_ok(label):
        return encode_message(LabelMapping(msg_id, (PrefixFec(prefix),), label))
    return (_MSG_HDR.pack(MsgType.LABEL_MAPPING, len(tlv) + 12, msg_id) + tlv
            + _TLV_U32.pack(TlvType.GENERIC_LABEL, 4, label))


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


# ---------------------------------------------------------------------- decoding


def _decode_body(mtype: int, mid: int, body: bytes) -> KnownMessage:
    """The message of a known type: the general path. Raises only DecodeError."""
    cls = MESSAGES.get(mtype)
    if cls is None:  # pragma: no cover - callers check _KNOWN_MSG_TYPES
        raise AssertionError(f"unhandled message type {mtype:#06x}")
    return cls.from_value(body, mid)


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
        fec = (PrefixFec(prefix(IPv4Network((raw, plen), strict=False))),)
        if len(_FEC_CACHE) >= _CACHE_MAX:
            _FEC_CACHE.clear()
        _FEC_CACHE[elem] = fec
    return fec


# everything of a Label Mapping after its Message ID (FEC TLV, Label TLV) -> (FEC, label).
# A router sends the same mapping to each of its peers at once: they decode it once, and
# their LIBs share the label's int (ints past 256 are objects of their own).
_MAPPING_CACHE: dict[bytes, tuple[tuple[FecElement, ...], int]] = {}


def _fast_label_mapping(buf: bytes, off: int, end: int, mid: int) -> Message | None:
    """Label Mapping = one IPv4 Prefix FEC element + Generic Label (§3.5.7), nothing else."""
    parts = _mapping_parts(buf, off, end)
    return None if parts is None else LabelMapping(mid, parts[0], parts[1])


def _mapping_parts(buf: bytes, off: int, end: int) -> tuple[tuple[FecElement, ...], int] | None:
    """(FEC elements, label) of the Label Mapping in buf[off:end] if of the common shape."""
    if end - off < 24:
        return None
    key = buf[off + 8 : end]  # what the checks below read (and its length)
    hit = _MAPPING_CACHE.get(key)
    if hit is not None:
        return hit
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
    fec = _prefix_fec4(buf[off + 12 : lpos])
    if len(_MAPPING_CACHE) >= _CACHE_MAX:
        _MAPPING_CACHE.clear()
    hit = _MAPPING_CACHE[key] = (fec, label)
    return hit


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
        raw = m if type(m) is bytes else encode_message(m)  # or already encoded
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


class MappingRun(list):  # type: ignore[type-arg]
    """Consecutive Label Mappings of a PDU, each of the common shape (one IPv4 prefix, a
    Generic Label, nothing else), as (message ID, FEC elements, label) tuples: what
    `PduReader.pull_runs` puts in `Pdu.messages` in their place."""

    def messages(self) -> list[LabelMapping]:
        return [LabelMapping(mid, fec, label) for mid, fec, label in self]


def _decode_pdu_runs(buf: bytes, start: int, end: int) -> Pdu:
    """`_decode_pdu_at`, with each run of common Label Mappings as one `MappingRun`."""
    messages: list[Any] = []
    run: MappingRun | None = None
    off = start + PDU_HEADER_LEN
    get = _MAPPING_CACHE.get
    while off < end:
        if end - off >= 24:
            head, length, mid = _MSG_HDR.unpack_from(buf, off)
            if head & MSG_TYPE_MASK == MsgType.LABEL_MAPPING and 4 <= length <= end - off - 4:
                used = 4 + length
                hit = get(buf[off + 8 : off + used]) or _mapping_parts(buf, off, off + used)
                if hit is not None:
                    if run is None:
                        run = MappingRun()
                        messages.append(run)
                    run.append((mid, hit[0], hit[1]))
                    off += used
                    continue
        run = None
        msg, used = _decode_message_at(buf, off, end)
        messages.append(msg)
        off += used
        if type(msg) is MessageError and msg.status.fatal:
            break
    return Pdu(_ldp_id_at(buf, start + 4), tuple(messages), LDP_VERSION)


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

    def pull_runs(self, data: bytes | bytearray | memoryview = b"") -> Iterator[Pdu | DecodeError]:
        """`pull`, with runs of common Label Mappings as `MappingRun`s (see there)."""
        if self.closed:
            return iter(())
        self._take(data)
        return self._frames(_decode_pdu_runs)

    def pull(self, data: bytes | bytearray | memoryview = b"") -> Iterator[Pdu | DecodeError]:
        """Buffer `data` now; the iterator frames and decodes one PDU per step.

        Each PDU is checked against `max_pdu_len` as it is taken, so a limit the
        consumer changes while iterating (the session, on accepting the peer's
        Initialization, §3.5.3) applies to the very next PDU, even one from the
        same TCP segment. Octets of PDUs not taken stay buffered.
        """
        if self.closed:
            return iter(())
        self._take(data)
        return self._frames(_decode_pdu_at)

    def _take(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            if self._off < len(self._buf):
                self._buf = self._buf[self._off :] + bytes(data)
            else:
                self._buf = bytes(data)
            self._off = 0

    def _frames(self, decode: Any) -> Iterator[Pdu | DecodeError]:
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
            if self._off == len(buf):  # all taken: hold no reference to the segment
                self._buf, self._off = b"", 0
            yield decode(buf, off, off + total)

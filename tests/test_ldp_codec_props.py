"""ldp.codec property tests (hypothesis): round trips and hostile input."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldp.codec import (
    DecodeError,
    PduReader,
    decode_pdu,
    encode_message,
    encode_pdu,
    encode_pdus,
    pdu_length,
)
from ldp.messages import (
    Address,
    AddressFamily,
    AddressWithdraw,
    Hello,
    Initialization,
    KeepAlive,
    LabelAbortRequest,
    LabelMapping,
    LabelRelease,
    LabelRequest,
    LabelWithdraw,
    LdpId,
    MessageError,
    MsgType,
    Notification,
    Pdu,
    PrefixFec,
    Status,
    TlvType,
    UnknownMessage,
    UnknownTlv,
    WildcardFec,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
v4 = st.builds(IPv4Address, u32)
v6 = st.builds(IPv6Address, st.integers(0, (1 << 128) - 1))
ldp_ids = st.builds(LdpId, v4, u16)
# Labels that may be signalled: 0, 2, 3 and 16 .. 2^20-1 (RFC 3032 §2.1).
labels = st.one_of(st.sampled_from([0, 2, 3]), st.integers(16, (1 << 20) - 1))

_known_tlv = {int(t) for t in TlvType}
unknown_tlvs = st.lists(
    st.builds(
        UnknownTlv,
        st.integers(0, 0x3FFF).filter(lambda t: t not in _known_tlv),
        st.binary(max_size=12),
        st.just(True),  # U=1: kept; U=0 would make the message an error
        st.booleans(),
    ),
    max_size=2,
).map(tuple)

prefix_v4 = st.builds(
    lambda a, n: PrefixFec(IPv4Network((a, n), strict=False)), u32, st.integers(0, 32)
)
prefix_v6 = st.builds(
    lambda a, n: PrefixFec(IPv6Network((a, n), strict=False)),
    st.integers(0, (1 << 128) - 1),
    st.integers(0, 128),
)
prefixes = st.one_of(prefix_v4, prefix_v6)
prefix_fecs = st.lists(prefixes, min_size=1, max_size=3).map(tuple)
any_fec = st.one_of(prefix_fecs, st.just((WildcardFec(),)))


def _addresses(cls):
    return st.one_of(
        st.builds(cls, u32, st.lists(v4, max_size=4).map(tuple), st.just(AddressFamily.IPV4),
                  unknown_tlvs),
        st.builds(cls, u32, st.lists(v6, max_size=3).map(tuple), st.just(AddressFamily.IPV6),
                  unknown_tlvs),
    )  # fmt: skip


statuses = st.builds(Status, st.integers(0, 0x3FFFFFFF), st.booleans(), st.booleans(), u32, u16)

messages = st.one_of(
    st.builds(Notification, u32, statuses, unknown_tlvs),
    st.builds(
        Hello, u32, u16, st.booleans(), st.booleans(), st.booleans(),
        st.one_of(st.none(), v4, v6), st.one_of(st.none(), u32), unknown_tlvs,
    ),
    st.builds(
        Initialization, u32, u16, ldp_ids, st.booleans(), st.booleans(), u8, u16, u16,
        unknown_tlvs,
    ),
    st.builds(KeepAlive, u32, unknown_tlvs),
    _addresses(Address),
    _addresses(AddressWithdraw),
    st.builds(
        LabelMapping, u32, prefix_fecs, labels, st.one_of(st.none(), u32),
        st.one_of(st.none(), u8), st.one_of(st.none(), st.lists(v4, max_size=4).map(tuple)),
        unknown_tlvs,
    ),
    st.builds(
        LabelRequest, u32, prefix_fecs, st.one_of(st.none(), u8),
        st.one_of(st.none(), st.lists(v4, max_size=4).map(tuple)), unknown_tlvs,
    ),
    st.builds(LabelWithdraw, u32, any_fec, st.one_of(st.none(), labels), unknown_tlvs),
    st.builds(LabelRelease, u32, any_fec, st.one_of(st.none(), labels), unknown_tlvs),
    st.builds(LabelAbortRequest, u32, prefix_fecs, u32, unknown_tlvs),
    st.builds(
        UnknownMessage,
        st.integers(0, 0x7FFF).filter(lambda t: t not in {int(m) for m in MsgType}),
        u32, st.binary(max_size=16), st.just(True),
    ),
)  # fmt: skip

pdus = st.builds(Pdu, ldp_ids, st.lists(messages, min_size=1, max_size=5).map(tuple))


@FAST
@given(messages)
def test_message_round_trip(msg) -> None:
    wire = encode_message(msg)
    pdu = decode_pdu(encode_pdu(Pdu(LdpId(IPv4Address("10.0.0.1")), (msg,))))
    assert pdu.messages == (msg,)
    assert encode_message(pdu.messages[0]) == wire


@FAST
@given(pdus)
def test_pdu_round_trip(pdu: Pdu) -> None:
    wire = encode_pdu(pdu)
    assert pdu_length(wire) == len(wire)
    assert decode_pdu(wire) == pdu


@FAST
@given(ldp_ids, st.lists(messages, max_size=40), st.integers(256, 1500))
def test_encode_pdus_partitions(lid: LdpId, msgs, limit: int) -> None:
    msgs = [m for m in msgs if len(encode_message(m)) <= limit - 10]
    out = encode_pdus(lid, msgs, max_pdu_len=limit)
    assert all(len(p) <= limit for p in out)
    assert [m for p in out for m in decode_pdu(p).messages] == msgs


def _only_decode_errors(data: bytes) -> None:
    try:
        pdu = decode_pdu(data)
    except DecodeError as exc:
        assert exc.status.fatal
    else:
        assert isinstance(pdu, Pdu)
        for m in pdu.messages:
            assert not isinstance(m, Exception)
            if isinstance(m, MessageError):
                assert m.status.code in range(0x01, 0x1A)


def _reader_only_decode_errors(data: bytes, cut: int) -> None:
    r = PduReader()
    out = r.feed(data[:cut]) + r.feed(data[cut:])
    for item in out:
        assert isinstance(item, Pdu | DecodeError)
    assert sum(isinstance(i, DecodeError) for i in out) <= 1


@MANY
@given(st.binary(max_size=80))
def test_random_bytes_only_decode_error(data: bytes) -> None:
    _only_decode_errors(data)
    _reader_only_decode_errors(data, len(data) // 2)


@MANY
@given(st.binary(min_size=6, max_size=120), u16)
def test_random_body_behind_valid_header(body: bytes, space: int) -> None:
    """Random messages behind a correct PDU header exercise every message path."""
    data = (
        b"\x00\x01"
        + (len(body) + 6).to_bytes(2, "big")
        + b"\x0a\x00\x00\x01"
        + space.to_bytes(2, "big")
        + body
    )
    _only_decode_errors(data)
    _reader_only_decode_errors(data, 7)


@FAST
@given(pdus, st.data())
def test_truncations_and_mutations(pdu: Pdu, data) -> None:
    wire = encode_pdu(pdu)
    cut = data.draw(st.integers(0, len(wire) - 1))
    _only_decode_errors(wire[:cut])
    _reader_only_decode_errors(wire[:cut], cut // 2)
    # Flip one byte anywhere (lengths, types, values): still only DecodeError/MessageError.
    i = data.draw(st.integers(0, len(wire) - 1))
    b = data.draw(u8)
    mutated = wire[:i] + bytes([b]) + wire[i + 1 :]
    _only_decode_errors(mutated)
    _reader_only_decode_errors(mutated, i)


@FAST
@given(st.lists(pdus, min_size=1, max_size=4), st.data())
def test_reader_random_chunking(pdu_list, data) -> None:
    stream = b"".join(encode_pdu(p) for p in pdu_list)
    stream_pdus = [p for p in pdu_list if len(encode_pdu(p)) - 4 <= 4096]
    if len(stream_pdus) != len(pdu_list):
        return
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    r = PduReader()
    out = []
    prev = 0
    for c in [*cuts, len(stream)]:
        out += r.feed(stream[prev:c])
        prev = c
    assert out == pdu_list and r.buffered == 0


# ---------------------------------------------------------------- fast paths == general path
#
# The codec decodes/encodes Label Mapping, Address(/Withdraw) and KeepAlive of the common
# layout without cutting TLV objects; these properties pin them to the general path.

from ldp import codec as _codec  # noqa: E402


def _general_encode(msg) -> bytes:
    mtype, body = _codec._encode_body(msg)
    return _codec._message(mtype, msg.msg_id, body)


def _general_decode(raw: bytes):
    head, length, mid = _codec._MSG_HDR.unpack_from(raw)
    mtype = head & _codec.MSG_TYPE_MASK
    try:
        return _codec._decode_body(mtype, mid, raw[8 : 4 + length])
    except DecodeError as exc:
        return MessageError(mtype, mid, _codec.status_for(exc.problem, mid, mtype), exc.detail)


hot_msgs = st.one_of(
    st.builds(LabelMapping, u32, st.tuples(prefix_v4), labels),
    st.builds(LabelMapping, u32, st.tuples(prefix_v4), labels, st.none(), st.none(), st.none(),
              unknown_tlvs),
    st.builds(KeepAlive, u32),
    st.builds(Address, u32, st.lists(v4, max_size=6).map(tuple)),
    st.builds(AddressWithdraw, u32, st.lists(v4, min_size=1, max_size=6).map(tuple)),
)


@FAST
@given(hot_msgs)
def test_fast_encode_equals_general(msg) -> None:
    raw = encode_message(msg)
    assert raw == _general_encode(msg)
    got, used = _codec.decode_message(raw)
    assert used == len(raw) and got == msg == _general_decode(raw)


@MANY
@given(hot_msgs, st.data())
def test_fast_decode_equals_general_on_mutations(msg, data) -> None:
    """Flip/patch bytes of a hot message: the fast path either declines or agrees."""
    raw = bytearray(encode_message(msg))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(u8)
    raw = bytes(raw)
    head, length, _ = _codec._MSG_HDR.unpack_from(raw)
    if not 4 <= length <= len(raw) - 4 or (head & 0x7FFF) not in _codec._KNOWN_MSG_TYPES:
        return  # header-level cases are shared code
    raw = raw[: 4 + length]
    got, _ = _codec.decode_message(raw)
    assert got == _general_decode(raw)


def test_fast_paths_masks_host_bits_and_reader_pull() -> None:
    # 10.1.3/23 on the wire (a host bit set): decodes to 10.1.2.0/23, like the general path
    raw = bytes.fromhex("0400 0017 00000007 0100 0007 02 0001 17 0a0103 0200 0004 00000010")
    got, _ = _codec.decode_message(raw)
    assert got == LabelMapping(7, (PrefixFec(IPv4Network("10.1.2.0/23")),), 16)
    assert got == _general_decode(raw)
    # pull(): the limit set between two PDUs applies to the next one
    lid = LdpId(IPv4Address("10.0.0.1"))
    big = encode_pdu(Pdu(lid, tuple(KeepAlive(i) for i in range(40))))  # PDU Length 486
    r = PduReader()
    it = r.pull(encode_pdu(Pdu(lid, (KeepAlive(1),))) + big)
    assert isinstance(next(it), Pdu)
    r.max_pdu_len = 300
    err = next(it)
    assert isinstance(err, DecodeError) and r.closed and r.buffered == 0
    # an unconsumed PDU stays buffered
    r = PduReader()
    it = r.pull(big + big)
    next(it)
    assert r.buffered == len(big)
    assert r.feed(b"") == [decode_pdu(big)] and r.buffered == 0

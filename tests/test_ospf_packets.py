"""OSPFv2 codec (RFC 2328 App. A): byte vectors, an independent oracle (scapy's OSPF
layer recomputes our checksums), authentication (App. D) and random bytes."""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ospf.packets import (
    DD_I,
    DD_M,
    DD_MS,
    INITIAL_SEQ,
    LSA_BODIES,
    PACKET_BODIES,
    Auth,
    DbDescription,
    DecodeError,
    Hello,
    LinkType,
    Lsa,
    LsAck,
    LsaKey,
    LsRequest,
    LsUpdate,
    Packet,
    RouterLink,
    RouterLsaBody,
    decode_packet,
    encode_packet,
    fletcher_checksum,
    fletcher_ok,
)

R1, R2, AREA = A("10.255.0.1"), A("10.255.0.2"), A("0.0.0.0")


def router_lsa(seq: int = INITIAL_SEQ) -> Lsa:
    return Lsa.build(1, R1, R1, seq, RouterLsaBody(0, (
        RouterLink(R2, A("10.0.0.1"), LinkType.POINT_TO_POINT, 10),
        RouterLink(A("10.0.0.0"), A("255.255.255.252"), LinkType.STUB, 10),
        RouterLink(R1, A("255.255.255.255"), LinkType.STUB, 0))))


def test_hello_bytes():
    # Checksums in these vectors are scapy's (scapy.contrib.ospf), not ours.
    p = Packet(R1, AREA, Hello(A("255.255.255.252"), 10, 0x02, 1, 40, AREA, AREA, (R2,)))
    b = encode_packet(p)
    assert b.hex() == (
        "0201" "0030" "0aff0001" "00000000" "e59d" "0000" "0000000000000000"  # header
        "fffffffc" "000a" "02" "01" "00000028" "00000000" "00000000" "0aff0002")
    assert decode_packet(b) == p


def test_router_lsa_bytes_and_fletcher():
    lsa = router_lsa()
    assert lsa.raw.hex() == (
        "0000" "02" "01" "0aff0001" "0aff0001" "80000001" "459c" "003c"
        "00" "00" "0003"
        "0aff0002" "0a000001" "01" "00" "000a"
        "0a000000" "fffffffc" "03" "00" "000a"
        "0aff0001" "ffffffff" "03" "00" "0000")
    assert fletcher_ok(lsa.raw[2:])
    # The age is not covered by the checksum (§12.1.7).
    assert fletcher_ok(lsa.with_age(1234).raw[2:])
    assert Lsa.decode(lsa.raw) == lsa


def test_scapy_recomputes_the_same_checksums():
    scapy_ospf = pytest.importorskip("scapy.contrib.ospf")
    b = encode_packet(Packet(R1, AREA, LsUpdate((router_lsa(), router_lsa(INITIAL_SEQ + 5)))))
    s = scapy_ospf.OSPF_Hdr(b)
    ours = (s.chksum, [x.chksum for x in s.lsalist])
    s.chksum = None
    for x in s.lsalist:
        x.chksum = None
    again = scapy_ospf.OSPF_Hdr(bytes(s))
    assert (again.chksum, [x.chksum for x in again.lsalist]) == ours


def test_every_packet_type_round_trips():
    lsa = router_lsa()
    bodies = [
        Hello(A("255.255.255.0"), 1, 2, 0, 3, A("10.0.0.1"), A("10.0.0.2"), ()),
        DbDescription(1500, 2, DD_I | DD_M | DD_MS, 0x12345678, ()),
        DbDescription(1500, 2, 0, 7, (lsa.header, lsa.with_age(7).header)),
        LsRequest((LsaKey(1, R1, R1), LsaKey(2, A("10.0.0.1"), R2))),
        LsUpdate((lsa,)),
        LsAck((lsa.header,)),
    ]
    for body in bodies:
        p = Packet(R2, AREA, body)
        assert decode_packet(encode_packet(p)) == p


def test_md5_authentication():
    a = Auth.from_config("md5", "secret", 7)
    p = Packet(R1, AREA, LsAck((router_lsa().header,)), crypt_seq=42)
    b = encode_packet(p, a)
    assert b[14:16] == b"\x00\x02" and b[18] == 7 and b[19] == 16
    assert len(b) == 24 + 20 + 16  # the digest follows the packet (D.4.3)
    assert decode_packet(b, a) == p
    with pytest.raises(DecodeError) as e:
        decode_packet(b, Auth.from_config("md5", "wrong", 7))
    assert e.value.reason == "auth-mismatch"
    with pytest.raises(DecodeError) as e:
        decode_packet(b)  # null authentication configured here
    assert e.value.reason == "auth-mismatch"
    tampered = bytearray(b)
    tampered[30] ^= 1
    with pytest.raises(DecodeError):
        decode_packet(bytes(tampered), a)


@pytest.mark.parametrize("mutate,reason", [
    (lambda b: b[:20], "bad-length"),
    (lambda b: b"\x03" + b[1:], "bad-version"),
    (lambda b: b[:1] + b"\x09" + b[2:], "bad-type"),
    (lambda b: b[:12] + bytes([b[12] ^ 0xFF]) + b[13:], "bad-checksum"),
    (lambda b: b[:2] + (len(b) + 4).to_bytes(2, "big") + b[4:], "bad-length"),
])
def test_malformed_packets_name_their_reason(mutate, reason):
    b = encode_packet(Packet(R1, AREA, LsUpdate((router_lsa(),))))
    with pytest.raises(DecodeError) as e:
        decode_packet(mutate(b))
    assert e.value.reason == reason


def test_bad_lsa_checksum_is_refused():
    raw = bytearray(router_lsa().raw)
    raw[-1] ^= 1
    with pytest.raises(DecodeError) as e:
        Lsa.decode(bytes(raw))
    assert e.value.reason == "bad-lsa-checksum"


def test_registry_refuses_a_duplicate_type():
    with pytest.raises(ValueError):
        PACKET_BODIES.register(Hello)
    with pytest.raises(ValueError):
        LSA_BODIES.register(RouterLsaBody)
    assert PACKET_BODIES.codes() == {1, 2, 3, 4, 5} and LSA_BODIES.codes() == {1, 2}


def test_fletcher_matches_iso_definition():
    data = bytes(range(14)) + b"\0\0" + bytes(range(16, 40))
    ck = fletcher_checksum(data, 14)
    fixed = data[:14] + ck.to_bytes(2, "big") + data[16:]
    assert fletcher_ok(fixed)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(data):
    try:
        decode_packet(data)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=120), st.integers(0, 200))
def test_random_bodies_after_a_valid_header(body, t):
    # A correct header and checksum over garbage: the body decoder must refuse cleanly.
    good = encode_packet(Packet(R1, AREA, LsAck(())))
    hdr = bytearray(good[:24])
    hdr[1] = t % 6 or 1
    hdr[2:4] = (24 + len(body)).to_bytes(2, "big")
    from ospf.packets import ip_checksum
    hdr[12:14] = b"\0\0"
    hdr[12:14] = ip_checksum(bytes(hdr[:16]) + body).to_bytes(2, "big")
    try:
        decode_packet(bytes(hdr) + body)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120) | st.lists(st.sampled_from([0, 0xFF]), max_size=60).map(bytes))
def test_ip_checksum_is_the_rfc1071_word_sum(data):
    from ospf.packets import ip_checksum

    padded = data + b"\0" * (len(data) % 2)
    s = sum(int.from_bytes(padded[i:i + 2], "big") for i in range(0, len(padded), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    assert ip_checksum(data) == ~s & 0xFFFF


def test_decode_memo_is_bounded_and_never_skips_the_checksum(monkeypatch):
    """Decoded LSAs are memoised by their bytes: equal results, a bounded table, and
    corrupted bytes (a different key) still refused."""
    from ospf import packets

    monkeypatch.setattr(packets, "_MEMO_MAX", 4)
    monkeypatch.setattr(packets, "_LSAS", {})  # what earlier tests memoised is not ours
    monkeypatch.setattr(packets, "_HEADERS", {})
    lsas = [router_lsa(INITIAL_SEQ + i) for i in range(10)]
    for a in lsas + lsas:
        b = Lsa.decode(a.encode())
        assert b == a and b.raw == a.raw and b.key == a.key
        assert len(packets._LSAS) <= 4 and len(packets._HEADERS) <= 4
    good = lsas[0].encode()
    Lsa.decode(good)
    bad = bytearray(good)
    bad[-1] ^= 1
    with pytest.raises(DecodeError) as e:
        Lsa.decode(bytes(bad))
    assert e.value.reason == "bad-lsa-checksum"
    assert hash(LsaKey(1, R1, R2)) == hash(LsaKey(1, A("10.255.0.1"), A("10.255.0.2")))

"""RFC 4302 AH in tunnel mode: scapy known answers, an independent ICV, mutable vs immutable
fields (§3.3.3), anti-replay, parsing failures, ESN, the SAD and the dataplane stage.

Wireshark/tshark 4.0 dissects AH but has no way to check an AH ICV (the ESP
dissector's esp_sa table has no AH counterpart), so ICVs are checked twice
here, independently of forwarding/ipsec/ah.py: by scapy's AH code and by
`icv_of()` below (cryptography's HMAC over the bytes with the mutable fields
zeroed by this file's own code).
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv4Network

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP, IPOption_Router_Alert, IPOption_RR
from scapy.layers.ipsec import AH
from scapy.layers.ipsec import SecurityAssociation as ScapySA
from scapy.packet import Raw

from forwarding.ipsec.ah import IPPROTO_AH, AhSecurityAssociation, zero_mutable
from forwarding.ipsec.esp import (
    Decapsulated,
    DropReason,
    Encapsulated,
    EspDrop,
    SecurityAssociation,
    ipv4_checksum,
)
from forwarding.ipsec.sad import Sad
from forwarding.ipsec.spd import Selector

PE1, PE2 = "192.0.2.1", "192.0.2.2"
CE1, CE2 = "198.51.100.10", "203.0.113.20"
K32 = bytes(range(0x10, 0x30))
K64 = bytes(range(0x80, 0xC0))
SPI = 0x6006


def inner_packet(size: int = 40, *, src: str = CE1, dst: str = CE2, df: bool = False, tos: int = 0) -> bytes:
    return bytes(IP(src=src, dst=dst, tos=tos, flags="DF" if df else 0, ttl=63, id=0x4242)
                 / UDP(sport=4000, dport=7) / Raw(bytes(i & 0xFF for i in range(size))))


def ah_sa(**kw) -> AhSecurityAssociation:
    args = dict(name="ah", spi=SPI, src=PE1, dst=PE2, integrity="hmac-sha2-256-128", auth_key=K32)
    args.update(kw)
    return AhSecurityAssociation(**args)


def ah512(**kw) -> AhSecurityAssociation:
    return ah_sa(integrity="hmac-sha2-512-256", auth_key=K64, **kw)


def enc(sa: AhSecurityAssociation, inner: bytes | None = None) -> bytes:
    r = sa.encapsulate(inner if inner is not None else inner_packet())
    assert isinstance(r, Encapsulated), r
    return r.packet


def fix_checksum(pkt: bytes | bytearray) -> bytes:
    b = bytearray(pkt)
    hlen = (b[0] & 0x0F) * 4
    b[10:12] = b"\0\0"
    b[10:12] = struct.pack("!H", ipv4_checksum(bytes(b[:hlen])))
    return bytes(b)


# ---------------------------------------------------------------- an independent ICV

_IMMUTABLE_TYPES = {0, 1, 130, 133, 134, 148, 149}  # RFC 4302 Appendix A.1


def icv_of(pkt: bytes, key: bytes, digest: str = "sha256", icv_len: int = 16, seq_hi: int | None = None) -> bytes:
    """RFC 4302 §3.3.3, written out again for the tests: zero TOS, flags/offset, TTL,
    checksum and mutable options, zero the ICV field, HMAC the packet (+ seq_hi)."""
    hlen = (pkt[0] & 0x0F) * 4
    b = bytearray(pkt)
    b[1] = 0
    b[6] = b[7] = b[8] = 0
    b[10] = b[11] = 0
    i = 20
    while i < hlen and b[i] != 0:
        if b[i] == 1:
            i += 1
            continue
        n = pkt[i + 1]
        if pkt[i] not in _IMMUTABLE_TYPES:
            b[i : i + n] = bytes(n)
        i += n
    b[hlen + 12 : hlen + 12 + icv_len] = bytes(icv_len)
    h = chmac.HMAC(key, hashes.SHA256() if digest == "sha256" else hashes.SHA512())
    h.update(bytes(b))
    if seq_hi is not None:
        h.update(struct.pack("!I", seq_hi))
    return h.finalize()[:icv_len]


def scapy_sa(integrity: str = "sha256", *, esn: bool = False, esn_hi: int = 0, **hdr) -> ScapySA:
    th = IP(src=PE1, dst=PE2, ttl=64, **hdr)
    if integrity == "sha256":
        return ScapySA(AH, spi=SPI, auth_algo="SHA2-256-128", auth_key=K32, tunnel_header=th,
                       esn_en=esn, esn=esn_hi)
    return ScapySA(AH, spi=SPI, auth_algo="SHA2-512-256", auth_key=K64, tunnel_header=th,
                   esn_en=esn, esn=esn_hi)


# ---------------------------------------------------------------- known answers


@pytest.mark.parametrize("integrity", ["sha256", "sha512"])
@pytest.mark.parametrize("esn", [False, True])
@pytest.mark.parametrize("size", [0, 1, 13, 100, 1400])
@pytest.mark.parametrize("df,tos", [(False, 0), (True, 0xB8)])
def test_bytes_equal_scapy(integrity, esn, size, df, tos):
    seq = ((5 << 32) | 77) if esn else 77
    ours = (ah_sa if integrity == "sha256" else ah512)(esn=esn, seq=seq)
    inner = inner_packet(size, df=df, tos=tos | 0x03)  # ECN bits set: not copied out
    pkt = enc(ours, inner)
    ref = scapy_sa(integrity, esn=esn, esn_hi=seq >> 32, id=seq & 0xFFFF, tos=tos,
                   flags="DF" if df else 0).encrypt(IP(inner), seq_num=seq & 0xFFFFFFFF)
    assert pkt == bytes(ref)


@pytest.mark.parametrize("integrity", ["sha256", "sha512"])
@pytest.mark.parametrize("esn", [False, True])
def test_scapy_verifies_ours_and_we_verify_scapys(integrity, esn):
    seq = ((2 << 32) | 9) if esn else 9
    make = ah_sa if integrity == "sha256" else ah512
    inner = inner_packet(321)
    pkt = enc(make(esn=esn, seq=seq), inner)
    out = scapy_sa(integrity, esn=esn, esn_hi=seq >> 32).decrypt(IP(pkt))  # raises on a bad ICV
    assert bytes(out) == inner
    theirs = bytes(scapy_sa(integrity, esn=esn, esn_hi=seq >> 32, id=7, tos=0x20)
                   .encrypt(IP(inner), seq_num=seq & 0xFFFFFFFF))
    rx = make(esn=esn)
    if esn:
        rx.window.update((2 << 32) | 1)
    r = rx.decapsulate(theirs)
    assert isinstance(r, Decapsulated) and r.inner == inner and r.seq == seq


def test_wire_format_and_independent_icv():
    sa = ah_sa(seq=0x01020304)
    inner = inner_packet(50, df=True, tos=0x2E << 2)
    pkt = enc(sa, inner)
    assert pkt[0] == 0x45 and pkt[9] == IPPROTO_AH and pkt[8] == 64
    assert pkt[1] == 0x2E << 2  # DSCP copied
    assert struct.unpack("!H", pkt[6:8])[0] == 0x4000  # DF copied
    assert struct.unpack("!H", pkt[4:6])[0] == 0x0304  # ID = low bits of seq
    assert struct.unpack("!H", pkt[2:4])[0] == len(pkt) == 20 + 28 + len(inner)
    assert ipv4_checksum(pkt[:20]) == 0
    nh, plen, rsv, spi, seq = struct.unpack("!BBHII", pkt[20:32])
    assert (nh, plen, rsv, spi, seq) == (4, 5, 0, SPI, 0x01020304)  # §2.2: 28 bytes = 7 words - 2
    assert pkt[32:48] == icv_of(pkt, K32)
    assert pkt[48:] == inner  # in clear: AH does not encrypt
    pkt512 = enc(ah512(), inner)
    assert pkt512[21] == 9 and pkt512[32:64] == icv_of(pkt512, K64, "sha512", 32)


def test_overhead_and_counters():
    tx, rx = ah_sa(), ah_sa()
    for size in (0, 10, 1000):
        inner = inner_packet(size)
        pkt = enc(tx, inner)
        assert len(pkt) - len(inner) == tx.overhead == 48
        assert isinstance(rx.decapsulate(pkt), Decapsulated)
    assert ah512().overhead == 64
    assert tx.counters.packets_out == 3 and rx.counters.packets_in == 3
    assert rx.counters.bytes_in == tx.counters.bytes_out
    assert rx.window.top == 3


@pytest.mark.parametrize("mode,inner_df,outer_df", [
    ("copy", True, True), ("copy", False, False), ("set", False, True), ("clear", True, False),
])
def test_df_modes(mode, inner_df, outer_df):
    pkt = enc(ah_sa(df=mode), inner_packet(5, df=inner_df))
    assert bool(pkt[6] & 0x40) == outer_df
    assert isinstance(ah_sa().decapsulate(pkt), Decapsulated)


# ---------------------------------------------------------------- §3.3.3: mutable vs immutable


def _set(pkt: bytes, off: int, value: bytes, checksum: bool = True) -> bytes:
    b = bytearray(pkt)
    b[off : off + len(value)] = value
    return fix_checksum(b) if checksum else bytes(b)


MUTABLE = {
    "ttl": (8, b"\x07"),
    "tos (DSCP + ECN)": (1, b"\xbb"),
    "DF set": (6, b"\x40"),
}


@pytest.mark.parametrize("field", ["ttl", "tos (DSCP + ECN)", "DF set"])
def test_mutable_field_changed_in_flight_still_verifies(field):
    tx, rx = ah_sa(), ah_sa()
    inner = inner_packet(64)
    off, value = MUTABLE[field]
    pkt = _set(enc(tx, inner), off, value)
    r = rx.decapsulate(pkt)
    assert isinstance(r, Decapsulated) and r.inner == inner, r
    assert rx.counters.icv_failures == 0


def test_all_mutable_fields_at_once_still_verify():
    tx, rx = ah_sa(), ah_sa()
    pkt = bytearray(enc(tx))
    pkt[1], pkt[6], pkt[8] = 0xFF, 0x40, 1
    assert isinstance(rx.decapsulate(fix_checksum(pkt)), Decapsulated)


IMMUTABLE = {
    "source address": (12, b"\xc0\x00\x02\x63"),
    "identification": (4, b"\x99\x99"),
    "protocol": (9, b"\x32"),
    "AH next header": (20, b"\x29"),
    "AH reserved": (22, b"\x00\x01"),
    "AH sequence number (forward)": (28, b"\x00\x00\x10\x00"),
    "ICV": (40, b"\x00"),
    "inner destination": (48 + 16, b"\x0a\x00\x00\x01"),
    "payload byte": (48 + 30, b"\xee"),
    "inner TTL": (48 + 8, b"\x01"),
}


@pytest.mark.parametrize("field", list(IMMUTABLE))
def test_immutable_field_changed_is_a_bad_icv(field):
    tx, rx = ah_sa(), ah_sa()
    good = enc(tx, inner_packet(64))
    off, value = IMMUTABLE[field]
    bad = _set(good, off, value)
    r = rx.decapsulate(bad)
    assert isinstance(r, EspDrop), r
    if field == "protocol":  # no longer AH at all
        assert r.reason is DropReason.MALFORMED and "not AH" in r.detail
        return
    assert r.reason is DropReason.ICV_FAILED, r
    assert rx.counters.icv_failures == 1 and rx.counters.packets_in == 0
    assert rx.window.top == 0  # §3.4.3: a bad ICV does not move the window
    assert isinstance(rx.decapsulate(good), Decapsulated)  # the real one still passes


def test_destination_address_changed_finds_no_sa():
    sad = Sad()
    sad.add_inbound(ah_sa())
    bad = _set(enc(ah_sa()), 16, IPv4Address("192.0.2.3").packed)
    r = sad.decapsulate(bad)
    assert isinstance(r, EspDrop) and r.reason is DropReason.UNKNOWN_SPI
    rx = ah_sa(dst="192.0.2.3")  # even an SA there refuses it: the address is in the ICV
    assert rx.decapsulate(bad).reason is DropReason.ICV_FAILED


def test_mutable_change_without_fixing_the_checksum_is_malformed():
    r = ah_sa().decapsulate(_set(enc(ah_sa()), 8, b"\x07", checksum=False))
    assert isinstance(r, EspDrop) and r.reason is DropReason.MALFORMED and "checksum" in r.detail


def test_every_byte_flip_outside_the_mutable_fields_fails():
    tx = ah_sa(seq=500)
    good = enc(tx, inner_packet(30))
    for i in range(len(good)):
        for bit in (0x01, 0x80):
            b = bytearray(good)
            b[i] ^= bit
            bad = fix_checksum(b) if i not in (10, 11) else bytes(b)
            rx = ah_sa(seq=1)
            rx.window.update(499)
            r = rx.decapsulate(bad)
            # TOS, TTL and the reserved flag bit; DF is 0x40, MF and the offset make a fragment
            if i in (1, 8) or (i == 6 and bit == 0x80):
                assert isinstance(r, Decapsulated), (i, bit, r)
            else:
                assert isinstance(r, EspDrop), (i, bit)
                assert r.reason in (DropReason.ICV_FAILED, DropReason.MALFORMED, DropReason.UNKNOWN_SPI,
                                    DropReason.REPLAY), (i, bit, r)
                assert rx.counters.packets_in == 0


# ---------------------------------------------------------------- outer options (Appendix A)


def _with_options(*opts) -> bytes:
    inner = inner_packet(20)
    sa = scapy_sa(options=list(opts))
    return bytes(sa.encrypt(IP(inner), seq_num=3))


def test_options_mutable_zeroed_immutable_covered():
    pkt = _with_options(IPOption_Router_Alert(), IPOption_RR(routers=["0.0.0.0", "0.0.0.0"]))
    assert pkt[0] & 0x0F > 5
    assert isinstance(ah_sa().decapsulate(pkt), Decapsulated)  # scapy's ICV, our zeroing
    hlen = (pkt[0] & 0x0F) * 4
    ra = pkt.index(b"\x94\x04", 20)
    rr = pkt.index(b"\x07", 20, hlen)
    # a router records itself in the Record Route option: mutable, still verifies
    b = bytearray(pkt)
    b[rr + 2] = 8
    b[rr + 3 : rr + 7] = bytes([10, 1, 2, 3])
    assert isinstance(ah_sa().decapsulate(fix_checksum(b)), Decapsulated)
    # the Router Alert value is immutable
    b = bytearray(pkt)
    b[ra + 3] = 1
    r = ah_sa().decapsulate(fix_checksum(b))
    assert isinstance(r, EspDrop) and r.reason is DropReason.ICV_FAILED


def test_zero_mutable_by_hand():
    # IHL 8: Router Alert (4), NOP (1), Record Route with one address (7)
    hdr = bytes.fromhex("48" "ff" "0030" "1234" "4000" "40" "33" "abcd" "c0000201" "c0000202"
                        "94040000" "01" "0707080a010203")
    assert len(hdr) == 32
    z = zero_mutable(hdr)
    assert isinstance(z, bytes) and len(z) == 32
    assert z[:12] == bytes.fromhex("48" "00" "0030" "1234" "0000" "00" "33" "0000")
    assert z[12:20] == hdr[12:20]
    assert z[20:25] == bytes.fromhex("9404000001")  # RA and NOP kept
    assert z[25:32] == bytes(7)  # RR zeroed as a whole (type and length too)
    eol = hdr[:20] + b"\x00\x07\x07\x08" + hdr[24:]  # after End of Options, nothing is looked at
    assert zero_mutable(eol)[20:] == eol[20:]


@pytest.mark.parametrize("opts", [b"\x07", b"\x07\x01\x00\x00", b"\x07\x09\x00\x00", b"\x94\x00\x00\x00"])
def test_bad_options_are_malformed(opts):
    pkt = bytearray(enc(ah_sa()))
    pkt = pkt[:20] + bytearray(opts.ljust(4, b"\0")) + pkt[20:]
    pkt[0] = 0x46
    pkt[2:4] = struct.pack("!H", len(pkt))
    r = ah_sa().decapsulate(fix_checksum(pkt))
    assert isinstance(r, EspDrop) and r.reason is DropReason.MALFORMED and "option" in r.detail


# ---------------------------------------------------------------- anti-replay (§3.4.3)


def test_replay_and_out_of_order():
    tx, rx = ah_sa(), ah_sa()
    pkts = [enc(tx) for _ in range(3)]
    assert isinstance(rx.decapsulate(pkts[2]), Decapsulated)
    assert isinstance(rx.decapsulate(pkts[0]), Decapsulated)  # inside the window, once
    for p in (pkts[0], pkts[2]):
        r = rx.decapsulate(p, now=4.5)
        assert isinstance(r, EspDrop) and r.reason is DropReason.REPLAY and r.time == 4.5
        assert (r.src, r.dst, r.sa, r.spi) == (PE1, PE2, "ah", SPI)
    assert rx.counters.replay_drops == 2
    # a replay with a mutable field changed is still a replay
    assert isinstance(rx.decapsulate(pkts[1]), Decapsulated)
    r = rx.decapsulate(_set(pkts[1], 8, b"\x05"))
    assert isinstance(r, EspDrop) and r.reason is DropReason.REPLAY


def test_left_of_window_and_far_ahead_forgery():
    tx, rx = ah_sa(), ah_sa()
    first = enc(tx)
    for _ in range(70):
        assert isinstance(rx.decapsulate(enc(tx)), Decapsulated)
    r = rx.decapsulate(first)
    assert r.reason is DropReason.REPLAY  # seq 1 is left of a 64-packet window at top 71
    forged = ah_sa(auth_key=bytes(32), seq=5000).encapsulate(inner_packet()).packet
    before = rx.window.snapshot()
    assert rx.decapsulate(forged).reason is DropReason.ICV_FAILED
    assert rx.window.snapshot() == before
    assert isinstance(rx.decapsulate(enc(tx)), Decapsulated)


def test_window_off_lets_duplicates_through():
    tx, rx = ah_sa(), ah_sa(replay_window=0)
    p = enc(tx)
    assert isinstance(rx.decapsulate(p), Decapsulated) and isinstance(rx.decapsulate(p), Decapsulated)


@pytest.mark.parametrize("integrity", ["sha256", "sha512"])
def test_esn_wrap_inference(integrity):
    make = ah_sa if integrity == "sha256" else ah512
    tx, rx = make(esn=True, seq=0xFFFFFFF0), make(esn=True)
    rx.window.update(0xFFFFFFEF)
    pkts = [enc(tx) for _ in range(40)]  # crosses 2^32
    for i, p in enumerate(pkts):
        if i % 5 == 3:
            continue
        r = rx.decapsulate(p)
        assert isinstance(r, Decapsulated) and r.seq == 0xFFFFFFF0 + i, (i, r)
        assert p[24:32][4:] == struct.pack("!I", (0xFFFFFFF0 + i) & 0xFFFFFFFF)
    for i in range(3, 40, 5):
        assert isinstance(rx.decapsulate(pkts[i]), Decapsulated)
    # the independent ICV over the packet plus seq_hi (§2.5.1)
    last = pkts[-1]
    icv_len, digest, key = (16, "sha256", K32) if integrity == "sha256" else (32, "sha512", K64)
    assert last[32 : 32 + icv_len] == icv_of(last, key, digest, icv_len, seq_hi=1)


def test_esn_wrong_guess_fails_icv_and_keeps_state():
    tx, rx = ah_sa(esn=True), ah_sa(esn=True)
    for _ in range(100):
        rx.decapsulate(enc(tx))
    far = ah_sa(esn=True, seq=(2 << 32) | 150)
    before = rx.window.snapshot()
    assert rx.decapsulate(enc(far)).reason is DropReason.ICV_FAILED
    assert rx.window.snapshot() == before


# ---------------------------------------------------------------- parsing failures and limits


def _sealed(payload: bytes, nh: int = 4, seq: int = 1) -> bytes:
    """A valid AH packet around any payload (ICV by icv_of)."""
    total = 20 + 28 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, seq, 0, 64, IPPROTO_AH, 0,
                      IPv4Address(PE1).packed, IPv4Address(PE2).packed)
    pkt = bytearray(fix_checksum(hdr) + struct.pack("!BBHII", nh, 5, 0, SPI, seq) + bytes(16) + payload)
    pkt[32:48] = icv_of(bytes(pkt), K32)
    return bytes(pkt)


def test_sealed_helper_is_valid():
    r = ah_sa().decapsulate(_sealed(inner_packet()))
    assert isinstance(r, Decapsulated) and r.inner == inner_packet()


@pytest.mark.parametrize("nh", [41, 59, 6, 0])
def test_other_next_headers(nh):
    rx = ah_sa()
    r = rx.decapsulate(_sealed(inner_packet(), nh=nh))
    assert isinstance(r, EspDrop) and r.reason is DropReason.BAD_NEXT_HEADER and not r.silent
    assert rx.counters.bad_next_header == 1 and rx.window.top == 1  # authenticated: window moved


@pytest.mark.parametrize("payload,what", [
    (b"\x60" + bytes(39), "version"),
    (b"", "shorter"),
    (inner_packet()[:-1], "lengths"),
    (bytes.fromhex("4500001c00010000400100000a0000010a000002") + bytes(8), "checksum"),
])
def test_inner_not_a_good_ipv4_packet(payload, what):
    r = ah_sa().decapsulate(_sealed(payload))
    assert isinstance(r, EspDrop) and r.reason is DropReason.MALFORMED and "inner" in r.detail
    assert what in r.detail


def test_trailing_bytes_after_inner_are_cut():
    inner = inner_packet(9)
    r = ah_sa().decapsulate(_sealed(inner + b"\0" * 5))
    assert isinstance(r, Decapsulated) and r.inner == inner


def test_payload_length_field_must_match_the_algorithm():
    b = bytearray(enc(ah_sa()))
    b[21] = 9  # claims a 32-byte ICV
    r = ah_sa().decapsulate(bytes(b))
    assert isinstance(r, EspDrop) and r.reason is DropReason.MALFORMED and "AH length 44" in r.detail


def test_every_truncation_is_dropped():
    tx, rx = ah_sa(), ah_sa()
    pkt = enc(tx)
    for n in range(len(pkt)):
        cut = bytearray(pkt[:n])
        if n >= 4:
            cut[2:4] = struct.pack("!H", n)
        if n >= 20:
            cut = bytearray(fix_checksum(cut))
        r = rx.decapsulate(bytes(cut))
        assert isinstance(r, EspDrop), n
        assert r.reason in (DropReason.MALFORMED, DropReason.ICV_FAILED), (n, r)
    assert rx.window.top == 0


def test_fragment_and_wrong_protocol():
    rx = ah_sa()
    for off, val in ((6, b"\x20\x00"), (6, b"\x00\x08")):  # MF, then an offset
        r = rx.decapsulate(_set(enc(ah_sa()), off, val))
        assert isinstance(r, EspDrop) and r.reason is DropReason.MALFORMED and "fragment" in r.detail
    r = rx.decapsulate(SecurityAssociation(name="e", spi=SPI, src=PE1, dst=PE2, encryption="aes-128-cbc",
                                           enc_key=bytes(16), integrity="hmac-sha2-256-128",
                                           auth_key=K32).encapsulate(inner_packet()).packet)
    assert isinstance(r, EspDrop) and r.reason is DropReason.MALFORMED and "not AH" in r.detail


def test_policy_selectors():
    sel = [Selector(IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"), 17)]
    tx, rx = ah_sa(), ah_sa(selectors=sel)
    assert isinstance(rx.decapsulate(enc(tx)), Decapsulated)
    r = rx.decapsulate(enc(tx, inner_packet(src="10.66.0.1")))
    assert isinstance(r, EspDrop) and r.reason is DropReason.POLICY_MISMATCH
    r = rx.decapsulate(enc(tx, bytes(IP(src=CE1, dst=CE2) / ICMP())))
    assert isinstance(r, EspDrop) and r.reason is DropReason.POLICY_MISMATCH  # ICMP, not UDP
    assert rx.counters.policy_mismatches == 2


def test_seq_exhaustion_and_lifetimes():
    tx = ah_sa(seq=0xFFFFFFFF)
    assert isinstance(tx.encapsulate(inner_packet()), Encapsulated)
    assert tx.exhausted
    r = tx.encapsulate(inner_packet(), now=3.0)
    assert isinstance(r, EspDrop) and r.reason is DropReason.SEQ_EXHAUSTED and r.time == 3.0
    assert tx.counters.seq_exhausted == 1
    tx = ah_sa(lifetime_packets=1, lifetime_seconds=10, created=100)
    assert isinstance(tx.encapsulate(inner_packet(), now=100), Encapsulated)
    assert tx.encapsulate(inner_packet(), now=101).reason is DropReason.LIFETIME_EXPIRED
    tx = ah_sa(lifetime_seconds=10, created=100)
    assert tx.encapsulate(inner_packet(), now=110).reason is DropReason.LIFETIME_EXPIRED


def test_encapsulate_rejects_non_ipv4():
    sa = ah_sa()
    for bad in (b"", b"\x60" + bytes(39), inner_packet()[:-1]):
        r = sa.encapsulate(bad)
        assert isinstance(r, EspDrop) and r.reason is DropReason.MALFORMED
    assert sa.next_seq == 1


@pytest.mark.parametrize("kw,msg", [
    ({"spi": 255}, "reserved"), ({"integrity": "none"}, "integrity"), ({"auth_key": bytes(16)}, "32-byte"),
    ({"df": "x"}, "df"), ({"replay_window": 8}, "replay window"),
])
def test_sa_rejects_bad_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        ah_sa(**kw)


def test_status_is_json_ready():
    import json

    st_ = ah_sa().status()
    assert st_["protocol"] == "ah" and st_["integrity"] == "hmac-sha2-256-128" and st_["encryption"] == "none"
    json.dumps(st_)


# ---------------------------------------------------------------- the SAD


def test_sad_finds_ah_and_esp_by_protocol():
    sad = Sad()
    rx = ah_sa()
    esp_rx = SecurityAssociation(name="e", spi=0x7007, src=PE1, dst=PE2, encryption="aes-128-cbc",
                                 enc_key=bytes(16), integrity="hmac-sha2-256-128", auth_key=K32)
    sad.add_inbound(rx)
    sad.add_inbound(esp_rx)
    assert sad.is_local(IPv4Address(PE2).packed)
    r = sad.decapsulate(enc(ah_sa()))
    assert isinstance(r, Decapsulated) and r.sa == "ah"
    # an ESP packet with the AH SA's SPI, and an AH packet with the ESP SA's SPI: no SA
    esp_tx = SecurityAssociation(name="e", spi=SPI, src=PE1, dst=PE2, encryption="aes-128-cbc",
                                 enc_key=bytes(16), integrity="hmac-sha2-256-128", auth_key=K32)
    r = sad.decapsulate(esp_tx.encapsulate(inner_packet()).packet)
    assert isinstance(r, EspDrop) and r.reason is DropReason.UNKNOWN_SPI
    r = sad.decapsulate(enc(ah_sa(spi=0x7007)))
    assert isinstance(r, EspDrop) and r.reason is DropReason.UNKNOWN_SPI and "AH" in r.detail
    assert sad.counters.unknown_spi == 2
    r = sad.decapsulate(refix_total(enc(ah_sa())[:30]))
    assert isinstance(r, EspDrop) and r.reason is DropReason.MALFORMED
    sad.remove(rx)
    assert sad.decapsulate(enc(ah_sa())).reason is DropReason.UNKNOWN_SPI
    with pytest.raises(ValueError):  # one SPI space per destination for ESP and AH
        sad.add_inbound(ah_sa(spi=0x7007))


def refix_total(pkt: bytes) -> bytes:
    b = bytearray(pkt)
    b[2:4] = struct.pack("!H", len(b))
    return fix_checksum(b)


# ---------------------------------------------------------------- never raises


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data):
    assert isinstance(ah_sa().decapsulate(data), EspDrop)
    sad = Sad()
    sad.add_inbound(ah_sa())
    assert isinstance(sad.decapsulate(data), EspDrop)
    hdr = _sealed(inner_packet())[:48]
    r = ah_sa().decapsulate(refix_total(hdr + data))
    assert isinstance(r, Decapsulated | EspDrop)


_VALID = enc(ah_sa(seq=5))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_packets_never_raise_and_never_pass_changed_immutables(data):
    pkt = bytearray(_VALID)
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        i = data.draw(st.integers(min_value=0, max_value=len(pkt) - 1))
        pkt[i] = data.draw(st.integers(min_value=0, max_value=255))
    if data.draw(st.booleans()):
        pkt = bytearray(fix_checksum(pkt)) if (pkt[0] & 0x0F) * 4 <= len(pkt) else pkt
    r = ah_sa().decapsulate(bytes(pkt))
    assert isinstance(r, Decapsulated | EspDrop)
    if isinstance(r, Decapsulated):
        changed = {i for i in range(len(pkt)) if pkt[i] != _VALID[i]}
        assert changed <= {1, 6, 8, 10, 11}, changed  # only TOS, flags (DF/reserved), TTL, checksum


# ---------------------------------------------------------------- the dataplane stage (line3, AH)


def test_stage_protect_label_switch_verify_forward():
    """ce1 -> pe1 (AH, FTN push) -> p1 (PHP) -> pe2 (AH checked, routed) -> ce2, and the
    TTL rewrite at PHP (a mutable field) does not break the ICV; a replay is counted."""
    from pathlib import Path

    from forwarding.ipsec import IpsecEngine
    from forwarding.ipsec.dataplane import IpsecStage
    from forwarding.plane import Dataplane
    from ike.config import ipsec_for_router
    from lsr.core.topology import load_topology
    from tests.fwd_helpers import all_tables, icmp_echo, ip_frame

    topo = load_topology(Path(__file__).parents[1] / "topologies" / "ipsec-ah.yaml")
    tables = all_tables(topo)
    audits: dict[str, list] = {"pe1": [], "pe2": []}
    stages = {r: IpsecStage(IpsecEngine(*ipsec_for_router(topo, r)), tables[r], ["eth1"],
                            audit=audits[r].append) for r in ("pe1", "pe2")}
    pkt = icmp_echo("192.168.1.1", "192.168.2.2", ttl=64, data=b"visible payload")
    (out_if, f), = stages["pe1"].frame(ip_frame(tables["pe1"], "eth1", pkt), "eth1")
    assert out_if == "eth2" and f[12:14] == b"\x88\x47"  # labelled into the core
    outer = f[18:]
    assert outer[9] == IPPROTO_AH and b"visible payload" in f  # AH does not encrypt
    (out2, f2), = Dataplane(tables["p1"]).process(f, "eth1")
    assert f2[12:14] == b"\x08\x00"  # PHP: unlabelled IPv4/AH
    (out3, f3), = stages["pe2"].frame(f2, "eth2")
    assert out3 == "eth1" and f3[14:].endswith(b"visible payload")
    assert f3[14 + 8] == 62  # inner TTL: pe1 and pe2 each took one
    assert stages["pe1"].counters["ah_out"] == 1 and stages["pe2"].counters["ah_in"] == 1
    assert stages["pe2"].frame(f2, "eth2") == []  # replayed
    assert [a.reason for a in audits["pe2"]] == [DropReason.REPLAY]
    assert stages["pe2"].engine.sad.inbound[(0x5001, IPv4Address("10.255.0.3"))].counters.replay_drops == 1


# ---------------------------------------------------------------- the topology file


AH_FILE = __import__("pathlib").Path(__file__).parents[1] / "topologies" / "ipsec-ah.yaml"
AH_TEXT = AH_FILE.read_text()
SA0_KEY = '"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"'


def test_config_builds_ah_sas():
    from ike.config import ipsec_for_router
    from lsr.core.topology import load_topology

    topo = load_topology(AH_FILE)
    a, b = topo.extra["ipsec"].sas
    assert (a.protocol, a.integrity, a.encryption, a.enc_key) == ("ah", "hmac-sha2-256-128", "none", b"")
    assert b.integrity == "hmac-sha2-512-256" and "c0c1" not in repr(b)
    spd, sad = ipsec_for_router(topo, "pe1")
    assert isinstance(sad.outbound["pe1-pe2"], AhSecurityAssociation)
    assert isinstance(sad.inbound[(0x5002, IPv4Address("10.255.0.1"))], AhSecurityAssociation)
    assert sad.outbound["pe1-pe2"].selectors == (Selector(IPv4Network("192.168.1.0/24"),
                                                          IPv4Network("192.168.2.0/24")),)


@pytest.mark.parametrize("old,new,where,msg", [
    ("protocol: ah\n      spi: 0x5001", "protocol: gre\n      spi: 0x5001", "ipsec.sas[0].protocol", "must be esp or ah"),
    ("      integrity: hmac-sha2-256-128\n", "      encryption: aes-128-cbc\n      integrity: hmac-sha2-256-128\n",
     "ipsec.sas[0].encryption", "AH does not encrypt"),
    ("      integrity: hmac-sha2-256-128\n", '      enc_key: "00"\n      integrity: hmac-sha2-256-128\n',
     "ipsec.sas[0].enc_key", "AH does not encrypt"),
    ("      integrity: hmac-sha2-256-128\n", "", "ipsec.sas[0]", "missing 'integrity'"),
    (f"      auth_key: {SA0_KEY}\n", "", "ipsec.sas[0]", "missing 'auth_key'"),
    ("integrity: hmac-sha2-256-128", "integrity: hmac-md5", "ipsec.sas[0].integrity", "not one of"),
    (SA0_KEY, '"a0a1"', "ipsec.sas[0].auth_key", "needs a 32-byte key"),
    ("protocol: ah\n      spi: 0x5001", "protocol: esp\n      spi: 0x5001", "ipsec.sas[0]", "missing 'encryption'"),
    ("spi: 0x5002", "spi: 0x5001\n      # same SPI, other destination: fine", None, None),
    ("dst: pe1\n", "dst: pe1\n      esn: true\n      replay_window: 0\n      df: set\n", None, None),
])
def test_config_errors(old, new, where, msg):
    from lsr.core.topology import TopologyError, parse_topology

    assert old in AH_TEXT
    text = AH_TEXT.replace(old, new, 1)
    if where is None:
        parse_topology(text, "x.yaml")
        return
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "x.yaml")
    assert ei.value.where == where, str(ei.value)
    assert msg in ei.value.message, str(ei.value)


def test_config_key_reuse_across_ah_sas():
    from lsr.core.topology import TopologyError, parse_topology

    key64 = AH_TEXT.split('auth_key: "')[2].split('"')[0]
    text = AH_TEXT.replace(f'"{key64}"', SA0_KEY).replace("hmac-sha2-512-256", "hmac-sha2-256-128")
    with pytest.raises(TopologyError, match="never reuse a key"):
        parse_topology(text, "x.yaml")

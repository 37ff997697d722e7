"""ESP behaviour pinned byte for byte: outputs, drop reasons, details, counters, windows.

`tests/data/esp-vectors.json` was generated from the implementation before its
fast path was written; any change in what `encapsulate`, `decapsulate`, `open`
or `Sad.decapsulate` return for the same keys, IVs, sequence numbers and
packets fails here. Every case is built deterministically (fixed keys, a
counter as the CBC IV source, hand-sealed packets with valid ICVs for the
post-ICV checks). A deliberate change is made by regenerating and reviewing:

    LSR_UPDATE_GOLDEN=1 python -m pytest tests/test_ipsec_esp_vectors.py
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarding.ipsec.esp import (
    Decapsulated,
    Encapsulated,
    EspDrop,
    SecurityAssociation,
    ipv4_checksum,
)
from forwarding.ipsec.sad import Sad
from forwarding.ipsec.spd import Selector

VECTORS = Path(__file__).parent / "data" / "esp-vectors.json"
UPDATE = os.environ.get("LSR_UPDATE_GOLDEN") == "1"

PE1, PE2 = "192.0.2.1", "192.0.2.2"
KEYS = {
    "cbc": dict(encryption="aes-128-cbc", enc_key=bytes(range(16)),
                integrity="hmac-sha2-256-128", auth_key=bytes(range(0x10, 0x30))),
    "cbc512": dict(encryption="aes-256-cbc", enc_key=bytes(range(0x40, 0x60)),
                   integrity="hmac-sha2-512-256", auth_key=bytes(range(0x80, 0xC0))),
    "gcm": dict(encryption="aes-128-gcm-16", enc_key=bytes(range(0x60, 0x74))),
    "gcm256": dict(encryption="aes-256-gcm-16", enc_key=bytes(range(0xA0, 0xC4))),
}
SEL = (Selector(IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24")),
       Selector(IPv4Network("10.9.0.0/16"), IPv4Network("10.8.0.0/16"), 1))


def counter_iv() -> Callable[[int], bytes]:
    n = [0]

    def iv(size: int) -> bytes:
        n[0] += 1
        return hashlib.sha256(b"iv%d" % n[0]).digest()[:size]

    return iv


def sa(kind: str, **kw: Any) -> SecurityAssociation:
    args: dict[str, Any] = dict(name=kind, spi=0x3003, src=PE1, dst=PE2, iv_source=counter_iv(), **KEYS[kind])
    args.update(kw)
    return SecurityAssociation(**args)


def ipv4(payload: bytes, *, src: str = "198.51.100.10", dst: str = "203.0.113.20", proto: int = 17,
         tos: int = 0, flags: int = 0, ttl: int = 63, ident: int = 0x1234, options: bytes = b"",
         fix: bool = True) -> bytes:
    ihl = 5 + len(options) // 4
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, ihl * 4 + len(payload), ident, flags, ttl,
                      proto, 0, IPv4Address(src).packed, IPv4Address(dst).packed) + options
    if fix:
        hdr = hdr[:10] + struct.pack("!H", ipv4_checksum(hdr)) + hdr[12:]
    return hdr + payload


def udp(n: int, **kw: Any) -> bytes:
    return ipv4(struct.pack("!HHHH", 4000, 7, 8 + n, 0) + bytes((i * 7) & 0xFF for i in range(n)), **kw)


def inners() -> list[bytes]:
    out = [udp(n) for n in (0, 1, 2, 3, 13, 100, 1400)]
    out += [udp(50, tos=0xB9, flags=0x4000), udp(51, tos=0x03, flags=0x2000 | 5),
            udp(20, options=b"\x94\x04\x00\x00"), ipv4(b"\x08\x00\xf7\xff\0\0\0\0", proto=1),
            udp(9, src="10.9.1.1", dst="10.8.1.1")]
    return out


def digest(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:32]


def rec(r: object) -> list[Any]:
    if isinstance(r, Encapsulated):
        return ["enc", digest(r.packet), len(r.packet), r.spi, r.seq, r.sa]
    if isinstance(r, Decapsulated):
        return ["dec", digest(r.inner), len(r.inner), r.spi, r.seq, r.sa]
    assert isinstance(r, EspDrop), r
    return ["drop", str(r.reason), r.detail, r.spi, r.seq, r.src, r.dst, r.sa, r.time, r.silent]


def state(s: SecurityAssociation) -> dict[str, Any]:
    return {"counters": s.counters.to_dict(), "window": list(s.window.snapshot()), "next_seq": s.next_seq}


# ---------------------------------------------------------------- hand-sealed packets


def seal(kind: str, plain: bytes, seq: int, *, esn: bool = False, spi: int = 0x3003,
         iv: bytes | None = None) -> bytes:
    """An outer IPv4/ESP packet around `plain` (already padded) with a valid ICV, built
    from `cryptography` alone."""
    k = KEYS[kind]
    head = struct.pack("!II", spi, seq & 0xFFFFFFFF)
    if kind.startswith("gcm"):
        key = k["enc_key"]
        ivb = struct.pack("!Q", seq)
        aad = struct.pack("!IQ", spi, seq) if esn else head
        esp = head + ivb + AESGCM(key[:-4]).encrypt(key[-4:] + ivb, plain, aad)
    else:
        ivb = iv or bytes(range(0xE0, 0xF0))
        e = Cipher(algorithms.AES(k["enc_key"]), modes.CBC(ivb)).encryptor()
        body = head + ivb + e.update(plain) + e.finalize()
        mac = hmac.new(k["auth_key"], body + (struct.pack("!I", seq >> 32) if esn else b""),
                       "sha512" if kind == "cbc512" else "sha256").digest()
        esp = body + mac[: 32 if kind == "cbc512" else 16]
    return ipv4(esp, src=PE1, dst=PE2, proto=50, ttl=64, ident=seq & 0xFFFF)


def pad(body: bytes, kind: str, nh: int = 4, pads: bytes | None = None) -> bytes:
    block = 4 if kind.startswith("gcm") else 16
    n = -(len(body) + 2) % block
    p = bytes(range(1, n + 1)) if pads is None else pads
    return body + p + bytes((len(p), nh))


def refix(pkt: bytes | bytearray) -> bytes:
    """Outer total length and checksum made consistent again (to reach the ESP checks)."""
    b = bytearray(pkt)
    if len(b) >= 4:
        b[2:4] = struct.pack("!H", len(b))
    if len(b) >= 20:
        b[10:12] = b"\0\0"
        b[10:12] = struct.pack("!H", ipv4_checksum(bytes(b[:20])))
    return bytes(b)


# ---------------------------------------------------------------- the cases


def encap_cases() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KEYS:
        for esn in (False, True):
            for df in ("copy", "set", "clear"):
                seq = ((7 << 32) | 0xFFFFFFFD) if esn else 0xFFF0
                tx = sa(kind, esn=esn, df=df, seq=seq)
                recs = [rec(tx.encapsulate(p, now=1.5)) for p in inners()]
                out[f"enc/{kind}/esn={esn}/df={df}"] = {"recs": recs, "state": state(tx)}
        # full packets for the smallest inner, readable in a diff
        out[f"enc-hex/{kind}"] = sa(kind).encapsulate(udp(0)).packet.hex()  # type: ignore[union-attr]
    # drops on the way out
    tx = sa("cbc", seq=0xFFFFFFFE, lifetime_packets=5)
    bad = [b"", b"\x60" + bytes(39), udp(5)[:-1], udp(5) + b"x", bytes(19), b"\x45" + bytes(19)]
    recs = [rec(tx.encapsulate(p, now=2.0)) for p in bad + [udp(1), udp(2), udp(3)]]
    out["enc-drops/exhaust"] = {"recs": recs, "state": state(tx)}
    tx = sa("gcm", lifetime_packets=2, lifetime_seconds=10.0, created=100.0)
    recs = [rec(tx.encapsulate(udp(1), now=t)) for t in (100.0, 109.0, 109.5)]
    tx2 = sa("gcm", lifetime_seconds=10.0, created=100.0)
    recs += [rec(tx2.encapsulate(udp(1), now=t)) for t in (109.99, 110.0, 111.0)]
    out["enc-drops/lifetime"] = {"recs": recs, "state": [state(tx), state(tx2)]}
    return out


def _tampered(good: bytes) -> list[bytes]:
    out = []
    for i in list(range(0, 20)) + list(range(20, len(good), max(1, len(good) // 40))) + [len(good) - 1]:
        for bit in (0x01, 0x80):
            b = bytearray(good)
            b[i] ^= bit
            out.append(bytes(b))
            if 20 <= i:
                out.append(refix(b))
    return out


def _truncated(good: bytes) -> list[bytes]:
    return [refix(good[:n]) for n in range(0, len(good), 3)] + [good[:n] for n in (0, 1, 19, 20, 30)]


def _outer_mangled(good: bytes) -> list[bytes]:
    out = []
    for off, val in ((0, 0x46), (0, 0x55), (0, 0x44), (9, 51), (9, 17), (6, 0x20), (7, 0x01),
                     (6, 0x40), (6, 0x80), (8, 1), (1, 0xFF)):
        b = bytearray(good)
        b[off] = val
        out.append(refix(b))
    b = bytearray(good)
    b[2:4] = struct.pack("!H", len(good) + 1)
    out.append(bytes(b))  # total length beyond the bytes there are
    b = bytearray(good)
    b[2:4] = struct.pack("!H", len(good) - 5)
    b[10:12] = b"\0\0"
    b[10:12] = struct.pack("!H", ipv4_checksum(bytes(b[:20])))
    out.append(bytes(b))  # trailing bytes after total
    opt = good[:20] + b"\x01\x01\x01\x00" + good[20:]  # outer header with options (IHL 6)
    ob = bytearray(opt)
    ob[0] = 0x46
    out.append(refix(ob))
    out.append(good + b"\0\0\0")  # link padding after the packet
    return out


def _sealed(kind: str, esn: bool, base: int) -> list[bytes]:
    u = udp(30)
    s = [
        pad(u, kind),
        pad(u, kind, pads=bytes([1, 9, 3, 4, 5, 6, 7, 8, 9, 10][: max(2, len(pad(u, kind)) - len(u) - 2)])),
        pad(u, kind, nh=59),
        pad(u, kind, nh=41),
        pad(u, kind, nh=0),
        pad(b"\x60" + bytes(39), kind),
        pad(ipv4(b"abc", fix=False), kind),  # bad inner checksum
        pad(udp(30)[:-1], kind),  # inner total > what is there
        pad(u + bytes(7), kind),  # TFC padding after the inner packet
        pad(udp(30, src="10.66.0.1"), kind),  # outside the selectors
        pad(udp(9, src="10.9.1.1", dst="10.8.1.1"), kind),  # UDP where the selector says ICMP
        pad(ipv4(b"\x08\0\xf7\xff\0\0\0\0", src="10.9.1.1", dst="10.8.1.1", proto=1), kind),
        pad(udp(20, options=b"\x94\x04\x00\x00"), kind),
        pad(bytes(12), kind),  # too short to be IPv4
        b"\x45" + bytes(13 if kind.startswith("gcm") else 29) + bytes((200, 4)),  # pad length too long
        pad(b"", kind),  # empty payload
    ]
    plains = [p for p in s if kind.startswith("gcm") or len(p) % 16 == 0]
    return [seal(kind, p, base + i, esn=esn) for i, p in enumerate(plains)]


def decap_cases() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KEYS:
        for esn in (False, True):
            seq0 = ((3 << 32) | 0xFFFFFFF0) if esn else 1000
            tx = sa(kind, esn=esn, seq=seq0)
            pkts = [tx.encapsulate(p).packet for p in inners() * 2]  # type: ignore[union-attr]
            rx = sa(kind, esn=esn, selectors=SEL, replay_window=32)
            if esn:
                rx.window.update(seq0 - 5)
            order = [3, 0, 1, 1, 2, 7, 5, 6, 4, 4, 20, 21, 8, 8, 9, 13, 10, 15, 11, 12, 14, 16,
                     17, 18, 19, 0, 2]
            recs = [rec(rx.decapsulate(pkts[i], now=3.0)) for i in order]
            good = pkts[-1]
            for p in _tampered(good) + _truncated(good) + _outer_mangled(good):
                recs.append(rec(rx.decapsulate(p, now=4.0)))
            recs.append(rec(rx.decapsulate(good, now=5.0)))
            # open() on the ESP part alone
            recs.append(rec(rx.open(good[20:], 6.0, good[12:20])))
            recs.append(rec(rx.open(good[20:40], 6.0)))
            # sealed packets with valid ICVs reach the post-ICV checks
            base = (seq0 + 100) if not esn else seq0 + 100
            for p in _sealed(kind, esn, base):
                recs.append(rec(rx.decapsulate(p, now=7.0)))
            # far ahead: the bitmap is cleared
            far = sa(kind, esn=esn, seq=seq0 + 10_000)
            recs.append(rec(rx.decapsulate(far.encapsulate(udp(3)).packet, now=8.0)))  # type: ignore[union-attr]
            recs.append(rec(rx.decapsulate(pkts[20], now=8.0)))
            # no selectors at all / empty selectors
            for sels in (None, ()):
                r2 = sa(kind, esn=esn, selectors=sels)
                if esn:
                    r2.window.update(seq0 - 5)
                recs.append(rec(r2.decapsulate(pkts[0], now=9.0)))
            # anti-replay off
            r3 = sa(kind, esn=esn, replay_window=0)
            if esn:
                r3.window.update(seq0 - 5)
            recs += [rec(r3.decapsulate(pkts[i], now=9.5)) for i in (2, 2, 0, 0)]
            out[f"dec/{kind}/esn={esn}"] = {"recs": recs, "state": state(rx), "off": state(r3)}
    return out


def sad_cases() -> dict[str, Any]:
    sad = Sad()
    rx = sa("cbc")
    sad.add_inbound(rx)
    sad.add_inbound(sa("gcm", name="g", spi=0x4004))
    good = sa("cbc").encapsulate(udp(10)).packet  # type: ignore[union-attr]
    g2 = sa("gcm", name="g", spi=0x4004).encapsulate(udp(10)).packet  # type: ignore[union-attr]
    other = sa("cbc", spi=0x5005).encapsulate(udp(10)).packet  # type: ignore[union-attr]
    wrong_dst = sa("cbc", dst="192.0.2.9").encapsulate(udp(10)).packet  # type: ignore[union-attr]
    cases = [good, good, g2, other, wrong_dst, b"", b"\x45" + bytes(30), refix(good[:24]),
             refix(good[:28]), refix(bytearray(good[:9]) + b"\x11" + good[10:])]
    b = bytearray(good)
    b[6] = 0x20
    cases.append(refix(b))
    cases += _tampered(good)[:20]
    recs = [rec(sad.decapsulate(p, now=1.0)) for p in cases]
    return {"sad": {"recs": recs, "counters": sad.counters.to_dict(), "state": state(rx)}}


def all_cases() -> dict[str, Any]:
    return {**encap_cases(), **decap_cases(), **sad_cases()}


# ---------------------------------------------------------------- the tests


def dump(cases: dict[str, Any]) -> str:
    """JSON with one record a line, so that a diff shows which packet changed."""
    lines = ["{"]
    for n, name in enumerate(sorted(cases)):
        c = cases[name]
        sep = "," if n < len(cases) - 1 else ""
        if isinstance(c, dict) and "recs" in c:
            rest = {k: v for k, v in c.items() if k != "recs"}
            lines.append(f"{json.dumps(name)}: {{{json.dumps(rest, sort_keys=True)[1:-1]}, \"recs\": [")
            lines += [json.dumps(r) + ("," if i < len(c["recs"]) - 1 else "") for i, r in enumerate(c["recs"])]
            lines.append("]}" + sep)
        else:
            lines.append(f"{json.dumps(name)}: {json.dumps(c, sort_keys=True)}{sep}")
    return "\n".join(lines + ["}"]) + "\n"


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    got = json.loads(json.dumps(all_cases()))
    if UPDATE:
        VECTORS.write_text(dump(got), encoding="utf-8")
    assert VECTORS.exists(), f"{VECTORS} missing: run with LSR_UPDATE_GOLDEN=1"
    return got


def _names() -> list[str]:
    if not VECTORS.exists():
        return ["missing"]
    return sorted(json.loads(VECTORS.read_text(encoding="utf-8")))


@pytest.mark.parametrize("case", _names())
def test_pinned(vectors: dict[str, Any], case: str) -> None:
    want = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert set(vectors) == set(want), "cases added or removed: regenerate and review"
    got, exp = vectors[case], want[case]
    if isinstance(exp, dict) and "recs" in exp:
        for i, (g, e) in enumerate(zip(got["recs"], exp["recs"], strict=True)):
            assert g == e, f"{case} record {i}"
    assert got == exp, case


def test_vectors_cover_every_drop_reason(vectors: dict[str, Any]) -> None:
    reasons = {r[1] for c in vectors.values() if isinstance(c, dict) and "recs" in c
               for r in c["recs"] if r[0] == "drop"}
    assert reasons >= {"unknown-spi", "replay", "icv-failed", "malformed", "bad-padding",
                       "bad-next-header", "dummy", "policy-mismatch", "seq-exhausted",
                       "lifetime-expired"}, reasons


def _checksum_by_words(header: bytes) -> int:
    """RFC 1071 the long way: add 16-bit words, fold the carries, complement."""
    if len(header) % 2:
        header += b"\0"
    s = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_checksum_equals_the_word_sum(data: bytes) -> None:
    assert ipv4_checksum(data) == _checksum_by_words(data)


@pytest.mark.parametrize("data", [b"", b"\0" * 20, b"\xff" * 20, b"\xff\xff", b"\x01", bytes(19) + b"\x01"])
def test_checksum_edge_cases(data: bytes) -> None:
    assert ipv4_checksum(data) == _checksum_by_words(data)

"""Where the time of one ESP round trip goes: each per-packet step of the fast path, timed alone.

Used by `python -m benchmarks.bench_esp --profile`. Each row times one
statement of `SecurityAssociation.encapsulate`/`decapsulate`'s fast path
(forwarding/ipsec/esp.py), with the same operands, with `timeit` (best of 5,
CPU time, the loop's own cost subtracted). The rows are the steps; they do not
add up exactly to a call (the interpreter overlaps some work, and the call
and attribute look-ups are spread over them), but they show which step costs
what next to the `cryptography` calls, which the reference loop also makes.
"""

from __future__ import annotations

import os
import time
import timeit
from ipaddress import IPv4Network
from typing import Any

from forwarding.ipsec import esp
from forwarding.ipsec.esp import SecurityAssociation
from forwarding.ipsec.spd import Selector

GCM = "aes-128-gcm-16"


def _sas(kind: str) -> tuple[SecurityAssociation, SecurityAssociation]:
    sel = [Selector(IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))]
    if kind == GCM:
        kw: dict[str, Any] = dict(encryption=GCM, enc_key=os.urandom(20))
    else:
        kw = dict(encryption="aes-128-cbc", enc_key=os.urandom(16), integrity="hmac-sha2-256-128",
                  auth_key=os.urandom(32))
    common = dict(name="b", spi=0x1234, src="192.0.2.1", dst="192.0.2.2", selectors=sel)
    return SecurityAssociation(**common, **kw), SecurityAssociation(**common, **kw)


def _time(stmt: str, ns: dict[str, Any], number: int = 20000) -> float:
    t = timeit.Timer(stmt, globals=ns, timer=time.process_time)
    empty = timeit.Timer("pass", globals=ns, timer=time.process_time)
    best = min(t.repeat(5, number)) - min(empty.repeat(5, number))
    return max(0.0, best / number * 1e9)


def profile_steps(kind: str, inner: bytes) -> list[tuple[str, float]]:
    """(step, ns) for one packet out and back on the fast path."""
    tx, rx = _sas(kind)
    pkt = tx.encapsulate(inner).packet  # type: ignore[union-attr]
    n = len(inner)
    gcm = kind == GCM
    padlen = -(n + 2) & (3 if gcm else 15)
    plain = inner + esp._TRAILERS[padlen]
    h = int.from_bytes(inner[:8], "big")
    ns: dict[str, Any] = dict(esp=esp, tx=tx, rx=rx, inner=inner, pkt=pkt, n=n, h=h, plain=plain,
                              padlen=padlen, seq=5, fb=int.from_bytes, tnew=tuple.__new__,
                              Enc=esp.Encapsulated, Dec=esp.Decapsulated)
    if gcm:
        hdr = pkt[:36]
        ct = pkt[36:]
        ns.update(hdr=hdr, ct=ct, g=tx._gcm, salt=tx._salt, aad=hdr[20:28], nonce=tx._salt + hdr[28:36])
        crypto_out = ("AESGCM.encrypt (cryptography)", "g.encrypt(nonce, plain, aad)")
        crypto_in = ("AESGCM.decrypt (cryptography)", "g.decrypt(nonce, ct, aad)")
        pack = ("outer IPv4 + SPI + seq + IV: one struct pack",
                "esp._HDR_GCM(0x45, 0, 1484, 5, 0x4000, 64, 50, 1234, tx._src_b, tx._dst_b, 0x1234, 5, 5)")
        args_out = ("nonce = salt + IV, AAD slice", "tx._salt + hdr[28:36]; hdr[20:28]")
        args_in = ("nonce, AAD, ciphertext slices of the packet", "salt + pkt[28:36]; pkt[20:28]; pkt[36:]")
    else:
        iv = pkt[28:44]
        ct = pkt[44:-16]
        ns.update(iv=iv, ct=ct, mac=tx._mac)
        crypto_out = ("AES-CBC (shared context) + HMAC-SHA-256 copy/update/digest",
                      "tx._cbc_encrypt(iv, plain); m = mac.copy(); m.update(pkt[20:28]); m.update(iv); "
                      "m.update(ct); m.digest()")
        crypto_in = ("HMAC-SHA-256 + compare_digest + AES-CBC",
                     "m = mac.copy(); m.update(pkt[20:-16]); esp.hmac.compare_digest(m.digest()[:16], "
                     "pkt[-16:]); rx._cbc_decrypt(iv, ct)")
        pack = ("outer IPv4 + SPI + seq: one struct pack",
                "esp._HDR_CBC(0x45, 0, 1500, 5, 0x4000, 64, 50, 1234, tx._src_b, tx._dst_b, 0x1234, 5)")
        args_out = ("random IV (os.urandom(16))", "tx._iv_source(16)")
        args_in = ("IV and ciphertext slices of the packet", "pkt[28:44]; pkt[44:-16]")
    steps = [
        ("OUT whole encapsulate() (for reference)", "tx.encapsulate(inner)"),
        ("OUT " + crypto_out[0], crypto_out[1]),
        ("OUT inner checks: seq limit, len, header as int, version, length",
         "s = tx.next_seq; s > tx._fast_seq; m = len(inner); x = fb(inner[:8], 'big'); "
         "m < 20 or x >> 60 != 4 or (x >> 32) & 0xFFFF != m"),
        ("OUT padding, TOS/DF, total, ID, checksum arithmetic",
         "p = -(n + 2) & 3; t = (h >> 48) & 0xFC; f = (h & tx._df_mask) | tx._df_set; "
         "tot = n + p + tx._fixed; i = seq & 0xFFFF; c = -(tx._words + t + tot + i + f) % 0xFFFF"),
        ("OUT " + pack[0], pack[1]),
        ("OUT " + args_out[0], args_out[1]),
        ("OUT plaintext = inner + trailer (copy)", "inner + esp._TRAILERS[padlen]"),
        ("OUT packet = header + ciphertext (copy)", "pkt[:36] + pkt[36:]" if gcm else "b''.join((pkt[:28], iv, ct, pkt[-16:]))"),
        ("OUT counters (2) + next_seq", "c = tx.counters; c.packets_out += 1; c.bytes_out += n; tx.next_seq = 5"),
        ("OUT Encapsulated record (tuple.__new__)", "tnew(Enc, (pkt, 0x1234, 5, 'b'))"),
        ("IN  whole decapsulate() (for reference)", "rx.window.top = 0; rx.decapsulate(pkt)"),
        ("IN  " + crypto_in[0], crypto_in[1]),
        ("IN  outer header: as int, mask, length, checksum",
         "x = fb(pkt[:20], 'big'); x & esp._OUTER_MASK == esp._OUTER_ESP; (x >> 128) & 0xFFFF == len(pkt); "
         "x % 0xFFFF"),
        ("IN  lengths, SPI compare, seq", "e = len(pkt) - 20; e < rx._min_len; (e - rx._ct_sub) % rx._block; "
         "pkt[20:24] != rx._spi_b; fb(pkt[24:28], 'big')"),
        ("IN  anti-replay check + update (inlined bitmap)",
         "w = rx.window; s = w.top + 1; s <= w.top; t = w.top; sh = s - t; "
         "w.bitmap = ((w.bitmap << sh) | 1) & w.mask if sh < w.size else 1; w.top = s"),
        ("IN  " + args_in[0], args_in[1]),
        ("IN  trailer check (padding + next header in one compare)",
         "p = plain[-2]; e = len(plain) - 2 - p; e < 20 or plain[e:] != esp._TRAILERS[p]"),
        ("IN  inner header as int: version, length, checksum",
         "x = fb(plain[:20], 'big'); x & esp._INNER_MASK != esp._INNER_45; (x >> 128) & 0xFFFF; x % 0xFFFF"),
        ("IN  selectors (1 prefix pair, mask-compare on that int)",
         "x = fb(plain[:20], 'big')\nfor m, v in rx._selx:\n    if x & m == v: break"),
        ("IN  inner = plain[:end] (copy)", "plain[:n]"),
        ("IN  counters (2)", "c = rx.counters; c.packets_in += 1; c.bytes_in += n"),
        ("IN  Decapsulated record (tuple.__new__)", "tnew(Dec, (inner, 0x1234, 5, 'b'))"),
    ]
    return [(name, _time(stmt, ns)) for name, stmt in steps]

"""Benchmark: ESP encapsulate + decapsulate on one core, against plain `cryptography` loops.

    python -m benchmarks.bench_esp [--seconds 1.0] [--repeat 5] [--clock cpu|wall] [--json]
                                   [--only gcm|cbc] [--sizes 100,1400] [--profile]

For each algorithm (AES-128-GCM-16; AES-128-CBC + HMAC-SHA2-256-128) and inner
UDP payload size, in the same run and interleaved, it times:

* **ours**: `SecurityAssociation.encapsulate` on a batch of 1,000 inner
  packets, then `decapsulate` on the 1,000 outer packets (outer IPv4 checks,
  SPI, anti-replay, ICV, decrypt, padding, inner IPv4 and selector checks,
  counters, result objects);
* **reference**: a plain loop over `cryptography` on the same plaintexts
  (the inner packet and its ESP trailer, the bytes ESP encrypts), same batch
  shape. GCM: `AESGCM.encrypt(salt + counter, plaintext, aad)` then
  `decrypt` (one AESGCM object; the nonce is built per packet from a counter,
  the least a GCM user must do). CBC: per packet a random IV,
  `Cipher(AES, CBC(iv)).encryptor().update() + finalize()` and
  `hmac.new(key, iv + ct, sha256).digest()[:16]`; on the way back the HMAC is
  compared (`hmac.compare_digest`) and a decryptor opens the ciphertext.

For GCM it also times **bare ESP**: the same AESGCM calls inside ESP packets
(outer header, SPI, seq and IV by one struct pack, trailer, then decrypt and
cut the trailer off) with no checks, no anti-replay, no counters and no
result records, which splits our extra time into "being ESP at all" and
"being careful".

It prints packets/s for each and **ratio = ours / reference** (round trips a
second), best of `--repeat` runs each, process CPU time by default (the box
is shared; `--clock wall` for wall clock). `--profile` adds what each
per-packet step of our fast path costs (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from forwarding.ipsec.esp import Decapsulated, Encapsulated, SecurityAssociation  # noqa: E402
from forwarding.ipsec.spd import Selector  # noqa: E402

SIZES = (100, 1400)
BATCH = 1000
GCM = "aes-128-gcm-16"
CBC = "aes-128-cbc+hmac-sha2-256-128"


def inner_packet(payload: int) -> bytes:
    from forwarding.ipsec.esp import ipv4_checksum

    total = 20 + 8 + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 63, 17, 0,
                      bytes([198, 51, 100, 10]), bytes([203, 0, 113, 20]))
    hdr = hdr[:10] + struct.pack("!H", ipv4_checksum(hdr)) + hdr[12:]
    return hdr + struct.pack("!HHHH", 4000, 7, 8 + payload, 0) + b"x" * payload


def esp_plaintext(inner: bytes, block: int) -> bytes:
    """What ESP encrypts: the inner packet, padding 1, 2, ..., pad length, next header 4."""
    padlen = -(len(inner) + 2) % block
    return inner + bytes(range(1, padlen + 1)) + bytes((padlen, 4))


def make(kind: str, keys: dict[str, bytes]) -> tuple[SecurityAssociation, SecurityAssociation]:
    sel = [Selector(IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))]
    if kind == CBC:
        kw: dict[str, Any] = dict(encryption="aes-128-cbc", enc_key=keys["enc"],
                                  integrity="hmac-sha2-256-128", auth_key=keys["auth"])
    else:
        kw = dict(encryption=GCM, enc_key=keys["enc"] + keys["salt"])
    common = dict(name="b", spi=0x1234, src="192.0.2.1", dst="192.0.2.2", selectors=sel)
    return SecurityAssociation(**common, **kw), SecurityAssociation(**common, **kw)


Tick = Callable[[], float]


def run_ours(kind: str, keys: dict[str, bytes], inner: bytes, seconds: float, tick: Tick) -> dict[str, float]:
    tx, rx = make(kind, keys)
    enc, dec = tx.encapsulate, rx.decapsulate
    n = 0
    enc_t = dec_t = 0.0
    start = tick()
    while tick() - start < seconds:
        t0 = tick()
        pkts = [enc(inner).packet for _ in range(BATCH)]  # type: ignore[union-attr]
        t1 = tick()
        outs = [dec(p) for p in pkts]
        t2 = tick()
        assert isinstance(outs[-1], Decapsulated) and outs[-1].inner == inner, outs[-1]
        enc_t += t1 - t0
        dec_t += t2 - t1
        n += BATCH
    r = tx.encapsulate(inner)
    assert isinstance(r, Encapsulated)
    return {"enc_pps": n / enc_t, "dec_pps": n / dec_t, "roundtrip_pps": n / (enc_t + dec_t),
            "wire_bytes": len(r.packet)}


def run_ref_gcm(keys: dict[str, bytes], inner: bytes, seconds: float, tick: Tick) -> dict[str, float]:
    aead = AESGCM(keys["enc"])
    salt = keys["salt"]
    plain = esp_plaintext(inner, 4)
    aad = struct.pack("!II", 0x1234, 1)
    q = struct.Struct("!Q").pack
    n = 0
    enc_t = dec_t = 0.0
    start = tick()
    while tick() - start < seconds:
        t0 = tick()
        cts = [aead.encrypt(salt + q(i), plain, aad) for i in range(BATCH)]
        t1 = tick()
        outs = [aead.decrypt(salt + q(i), ct, aad) for i, ct in enumerate(cts)]
        t2 = tick()
        assert outs[-1] == plain
        enc_t += t1 - t0
        dec_t += t2 - t1
        n += BATCH
    return {"enc_pps": n / enc_t, "dec_pps": n / dec_t, "roundtrip_pps": n / (enc_t + dec_t)}


def run_bare_esp(keys: dict[str, bytes], inner: bytes, seconds: float, tick: Tick) -> dict[str, float]:
    """ESP with AES-GCM and nothing else: header + IV by one struct pack (checksum by
    modulo), encrypt; on the way back decrypt and cut the trailer off. No checks, no
    anti-replay, no counters, no result records: what our extra work is measured against."""
    pack = struct.Struct("!BBHHHBBH4s4sIIQ").pack  # outer IPv4 ‖ SPI ‖ seq ‖ IV
    aead = AESGCM(keys["enc"])
    salt = keys["salt"]
    n = len(inner)
    padlen = -(n + 2) % 4
    trailer = bytes(range(1, padlen + 1)) + bytes((padlen, 4))
    total = n + padlen + 54
    words = 0x4500 + 0x4032 + 0xC000 + 0x0201 + 0xC000 + 0x0202 + total + 0x4000
    count = 0
    enc_t = dec_t = 0.0
    seq = 1
    start = tick()
    while tick() - start < seconds:
        t0 = tick()
        pkts = []
        for _ in range(BATCH):
            hdr = pack(0x45, 0, total, seq & 0xFFFF, 0x4000, 64, 50, -(words + (seq & 0xFFFF)) % 0xFFFF,
                       b"\xc0\0\x02\x01", b"\xc0\0\x02\x02", 0x1234, seq, seq)
            pkts.append(hdr + aead.encrypt(salt + hdr[28:36], inner + trailer, hdr[20:28]))
            seq += 1
        t1 = tick()
        outs = []
        for p in pkts:
            plain = aead.decrypt(salt + p[28:36], p[36:], p[20:28])
            outs.append(plain[: -2 - plain[-2]])
        t2 = tick()
        assert outs[-1] == inner
        enc_t += t1 - t0
        dec_t += t2 - t1
        count += BATCH
    return {"enc_pps": count / enc_t, "dec_pps": count / dec_t, "roundtrip_pps": count / (enc_t + dec_t)}


def run_ref_cbc(keys: dict[str, bytes], inner: bytes, seconds: float, tick: Tick) -> dict[str, float]:
    key, auth = keys["enc"], keys["auth"]
    plain = esp_plaintext(inner, 16)
    sha256 = hashlib.sha256

    def seal() -> tuple[bytes, bytes, bytes]:
        iv = os.urandom(16)
        e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        ct = e.update(plain) + e.finalize()
        return iv, ct, hmac.new(auth, iv + ct, sha256).digest()[:16]

    def open_(iv: bytes, ct: bytes, tag: bytes) -> bytes | None:
        if not hmac.compare_digest(hmac.new(auth, iv + ct, sha256).digest()[:16], tag):
            return None
        d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        return d.update(ct) + d.finalize()

    n = 0
    enc_t = dec_t = 0.0
    start = tick()
    while tick() - start < seconds:
        t0 = tick()
        sealed = [seal() for _ in range(BATCH)]
        t1 = tick()
        outs = [open_(*s) for s in sealed]
        t2 = tick()
        assert outs[-1] == plain
        enc_t += t1 - t0
        dec_t += t2 - t1
        n += BATCH
    return {"enc_pps": n / enc_t, "dec_pps": n / dec_t, "roundtrip_pps": n / (enc_t + dec_t)}


def measure(kind: str, size: int, seconds: float, repeat: int, tick: Tick) -> dict[str, Any]:
    keys = {"enc": os.urandom(16), "salt": os.urandom(4), "auth": os.urandom(32)}
    inner = inner_packet(size)
    ours: list[dict[str, float]] = []
    refs: list[dict[str, float]] = []
    bare: list[dict[str, float]] = []
    for _ in range(repeat):  # interleaved, so all see the same machine
        ours.append(run_ours(kind, keys, inner, seconds, tick))
        if kind == GCM:
            refs.append(run_ref_gcm(keys, inner, seconds, tick))
            bare.append(run_bare_esp(keys, inner, seconds, tick))
        else:
            refs.append(run_ref_cbc(keys, inner, seconds, tick))

    def best(rs: list[dict[str, float]]) -> dict[str, float]:
        return max(rs, key=lambda r: r["roundtrip_pps"])

    o, r = best(ours), best(refs)
    out = {"algorithm": kind, "payload": size, "inner_bytes": size + 28, "ours": o, "reference": r,
           "ratio": o["roundtrip_pps"] / r["roundtrip_pps"],
           "enc_ratio": o["enc_pps"] / r["enc_pps"], "dec_ratio": o["dec_pps"] / r["dec_pps"]}
    if bare:
        b = best(bare)
        out["bare_esp"] = b
        out["bare_ratio"] = b["roundtrip_pps"] / r["roundtrip_pps"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="per run (default 1)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each, best kept (default 5)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--only", choices=("gcm", "cbc"))
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="inner UDP payload bytes")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also time each per-packet step")
    a = ap.parse_args()
    try:
        sizes = [int(s) for s in a.sizes.split(",")]
    except ValueError:
        ap.error(f"--sizes {a.sizes!r}: expected comma-separated integers")
    if a.seconds <= 0 or a.repeat < 1 or any(not 0 <= s <= 60000 for s in sizes):
        ap.error("--seconds > 0, --repeat >= 1, sizes 0..60000")
    tick = time.process_time if a.clock == "cpu" else time.perf_counter
    kinds = {"gcm": [GCM], "cbc": [CBC], None: [GCM, CBC]}[a.only]
    results = [measure(k, s, a.seconds, a.repeat, tick) for k in kinds for s in sizes]
    profile = None
    if a.profile:
        from benchmarks.esp_profile import profile_steps

        profile = {k: {s: profile_steps(k, inner_packet(s)) for s in sizes} for k in kinds}
    if a.json:
        print(json.dumps({"results": results, "profile": profile}, indent=2))
        return
    print(f"ESP on one core ({a.clock} time, best of {a.repeat} x {a.seconds:g} s, batches of {BATCH}); "
          "payload = inner UDP payload bytes; ratio = ours / reference in the same run")
    print(f"{'algorithm':30} {'payload':>7} {'wire B':>6} {'ours enc/s':>11} {'ours dec/s':>11} "
          f"{'ours rt/s':>10} {'ref rt/s':>10} {'ratio':>6} {'enc':>5} {'dec':>5} {'bare ESP':>9}")
    for r in results:
        o, f = r["ours"], r["reference"]
        print(f"{r['algorithm']:30} {r['payload']:>7} {o['wire_bytes']:>6} {o['enc_pps']:>11,.0f} "
              f"{o['dec_pps']:>11,.0f} {o['roundtrip_pps']:>10,.0f} {f['roundtrip_pps']:>10,.0f} "
              f"{r['ratio']:>6.2f} {r['enc_ratio']:>5.2f} {r['dec_ratio']:>5.2f} "
              f"{(format(r['bare_ratio'], '9.2f') if 'bare_ratio' in r else '        -')}")
    print("ratio = ours / reference (round trips); enc, dec: each direction; bare ESP = a loop that\n"
          "builds and opens ESP packets with no checks and no state, / reference (GCM only)")
    if profile:
        for kind, by_size in profile.items():
            for size, steps in by_size.items():
                print(f"\nper-packet steps, {kind}, payload {size} (ns, CPU, best of 5):")
                for name, ns in steps:
                    print(f"  {name:58} {ns:8.0f}")


if __name__ == "__main__":
    main()

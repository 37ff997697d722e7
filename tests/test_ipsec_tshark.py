"""Independent oracle: tshark decrypts our ESP with the keys and finds the ICV correct.

Recipe (Wireshark 4.0): `-o esp.enable_encryption_decode:TRUE` and one
`-o uat:esp_sa:...` per SA, each a record of exactly 8 quoted fields (protocol, source,
destination, SPI as 0x%08x, encryption, key, authentication, key); the GCM key is
AES key ‖ salt.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from forwarding.ipsec.esp import Encapsulated, SecurityAssociation

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

PE1, PE2 = "192.0.2.1", "192.0.2.2"
CE1, CE2 = "198.51.100.10", "203.0.113.20"

# (spi, encryption, enc_key, integrity, auth_key, tshark encryption, tshark integrity)
SAS = [
    (0x2002, "aes-128-cbc", bytes(range(16)), "hmac-sha2-256-128", bytes(range(16, 48)),
     "AES-CBC [RFC3602]", "HMAC-SHA-256-128 [RFC4868]"),
    (0x2003, "aes-256-cbc", bytes(range(100, 132)), "hmac-sha2-512-256", bytes(range(132, 196)),
     "AES-CBC [RFC3602]", "HMAC-SHA-512-256 [RFC4868]"),
    (0x1001, "aes-128-gcm-16", bytes(range(48, 68)), "none", b"",
     "AES-GCM with 16 octet ICV [RFC4106]", "NULL"),
    (0x1002, "aes-256-gcm-16", bytes(range(200, 236)), "none", b"",
     "AES-GCM with 16 octet ICV [RFC4106]", "NULL"),
]


def _uat(spi, enc_name, key, integ_name, auth) -> str:
    a = f"0x{auth.hex()}" if auth else ""
    return (f'uat:esp_sa:"IPv4","{PE1}","{PE2}","0x{spi:08x}","{enc_name}","0x{key.hex()}",'
            f'"{integ_name}","{a}"')


def _frames() -> tuple[list, int]:
    frames = []
    eth = Ether(src="02:4c:53:00:00:01", dst="02:4c:53:00:01:01")
    for i, (spi, enc, key, integ, auth, _, _) in enumerate(SAS):
        sa = SecurityAssociation(name=f"sa{i}", spi=spi, src=PE1, dst=PE2, encryption=enc,
                                 enc_key=key, integrity=integ, auth_key=auth)
        for size in (0, 7, 1000):
            inner = bytes(IP(src=CE1, dst=CE2) / ICMP(type=8, id=i, seq=size) / Raw(b"L" * size))
            r = sa.encapsulate(inner)
            assert isinstance(r, Encapsulated)
            frames.append(eth / IP(r.packet))
            r = sa.encapsulate(inner)  # next sequence number: tshark flags repeats
            assert isinstance(r, Encapsulated)
            frames.append(eth / MPLS(label=16, s=0, ttl=63) / MPLS(label=17, s=1, ttl=63) / IP(r.packet))
    return frames, len(frames)


def _tshark(pcap, *fields: str) -> list[list[str]]:
    cmd = ["tshark", "-r", str(pcap), "-o", "esp.enable_encryption_decode:TRUE",
           "-o", "esp.enable_authentication_check:TRUE"]
    for spi, _, key, _, auth, en, inn in SAS:
        cmd += ["-o", _uat(spi, en, key, inn, auth)]
    cmd += ["-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


def test_tshark_decrypts_our_esp(tmp_path):
    frames, n = _frames()
    pcap = tmp_path / "ours.pcap"
    wrpcap(str(pcap), frames)
    rows = _tshark(pcap, "frame.number", "ip.src", "ip.dst", "icmp.type", "esp.icv_good",
                   "esp.icv_bad", "esp.pad_len", "_ws.malformed", "_ws.expert.severity")
    assert len(rows) == n
    for row in rows:
        num, src, dst, icmp_type, good, bad, _pad, malformed, severity = row
        assert src.split(",") == [PE1, CE1], row  # outer, then the decrypted inner header
        assert dst.split(",") == [PE2, CE2], row
        assert icmp_type == "8", row
        assert good == "1" and bad in ("", "0"), row
        assert malformed == "" and severity == "", row


def test_tshark_sees_tampering(tmp_path):
    # the oracle really checks: a flipped ciphertext bit is "ICV incorrect"
    frames, _ = _frames()
    raw = bytearray(bytes(frames[0]))
    raw[-20] ^= 1
    pcap = tmp_path / "bad.pcap"
    wrpcap(str(pcap), [Ether(bytes(raw))])
    (row,) = _tshark(pcap, "esp.icv_good", "esp.icv_bad")
    assert row[0] == "0" or row[1] == "1"


def _ike_pcap(path, tamper: bool = False) -> tuple[str, str, str, str]:
    from tests.test_ipsec_ikev2 import run, sessions

    log: list = []
    i, r = sessions()
    run(i, r, i.start(), log)
    run(i, r, i.liveness(), log)
    frames = []
    for n, (s, d) in enumerate(log):
        a, b = ("10.255.0.1", "10.255.0.3") if s is i else ("10.255.0.3", "10.255.0.1")
        if tamper and n == 2:
            d = d[:-1] + bytes([d[-1] ^ 1])
        frames.append(Ether(src="02:4c:53:00:00:01", dst="02:4c:53:00:01:01")
                      / IP(src=a, dst=b) / UDP(sport=500, dport=500) / Raw(d))
    wrpcap(str(path), frames)
    return i.spi_i.hex(), i.spi_r.hex(), i.keys.sk_ei.hex(), i.keys.sk_er.hex()


def _ike_fields(pcap, keys, *fields: str) -> list[list[str]]:
    si, sr, ei, er = keys
    cmd = ["tshark", "-r", str(pcap), "-o",
           f'uat:ikev2_decryption_table:{si},{sr},{ei},{er},'
           '"AES-GCM-128 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"',
           "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


def test_tshark_decrypts_our_ikev2(tmp_path):
    keys = _ike_pcap(tmp_path / "ike.pcap")
    rows = _ike_fields(tmp_path / "ike.pcap", keys, "isakmp.exchangetype", "isakmp.id.data.fqdn",
                       "isakmp.ts.start_ipv4", "_ws.expert.message", "_ws.malformed")
    assert [r[0] for r in rows] == ["34", "34", "35", "35", "37", "37"]
    assert rows[2][1] == "pe1.lsr.test" and rows[3][1] == "pe2.lsr.test"
    assert rows[2][2] == "192.168.1.0,192.168.2.0"
    assert all(r[3] == "" and r[4] == "" for r in rows), rows


def test_tshark_flags_tampered_ikev2(tmp_path):
    keys = _ike_pcap(tmp_path / "ike.pcap", tamper=True)
    rows = _ike_fields(tmp_path / "ike.pcap", keys, "isakmp.ikev2.integrity_checksum",
                       "_ws.expert.message")
    assert "Integrity Checksum Data is incorrect" in rows[2][1]
    assert rows[3][1] == ""  # the untampered response is fine

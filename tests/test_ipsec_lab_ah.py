"""AH across the MPLS core in a real lab (root): topologies/ipsec-ah.yaml, manual keys.

ce1 - pe1 ==AH over LSP== p1 - pe2 - ce2. Checks: ping and TCP through the
tunnel; a core capture shows label + IPv4/AH with the customer payload in
clear; tshark dissects it (SPI, sequence, the inner ICMP); the ICVs of the
captured packets, both directions, verify by a computation independent of
our code (cryptography's HMAC over the bytes with the mutable fields zeroed
here, and scapy's AH) since tshark cannot check AH ICVs; a replayed frame is
dropped and counted; frames forged with the SA key and changed in flight in a
mutable field (TTL, TOS) are accepted, in an immutable one (source, ID,
payload) dropped as icv-failed (RFC 4302 §3.3.3).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import is_root
from tests.wait import Capture, pcap_frames, wait_for, wait_tcp_listening

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import host_address, load_topology

TOPO = Path(__file__).parents[1] / "topologies" / "ipsec-ah.yaml"
NAME = f"ha{os.getpid() % 10000}"
SECRET = b"LSR-AH-VISIBLE-PAYLOAD-51"
INJECT = ("import socket,sys;s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW);"
          "s.bind((sys.argv[1],0));[s.send(bytes.fromhex(h)) for h in sys.argv[2:]]")
PE1_LO, PE2_LO = "10.255.0.1", "10.255.0.3"


@pytest.fixture(scope="module")
def L():
    try:
        yield lab.up(load_topology(TOPO), name=NAME, timeout=30)
    finally:
        lab.down(NAME)
    assert f"lsr-{NAME}." not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                text=True).stdout


@pytest.fixture(scope="module")
def addrs(L):
    topo = lab.topology(NAME)
    return str(host_address(topo, "ce1")), str(host_address(topo, "ce2"))


def _sa(L, router: str, name: str, direction: str) -> dict:
    sas = L.query(router, "ipsec", view="sas")["sas"]
    return next(s for s in sas if s["name"] == name and s["direction"] == direction)


def _ping(L, node: str, dst: str, *args: str, count: int = 3) -> subprocess.CompletedProcess:
    return L.run(node, ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", *args, dst])


def _ah_ip(frame: bytes) -> bytes | None:
    """The IPv4/AH packet in a captured frame (after any labels), or None."""
    off = 14
    if frame[12:14] == b"\x88\x47":
        while off + 4 <= len(frame):
            bos = frame[off + 2] & 1
            off += 4
            if bos:
                break
    elif frame[12:14] != b"\x08\x00":
        return None
    ip = frame[off:]
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 51:
        return None
    return ip[: struct.unpack_from("!H", ip, 2)[0]]


def _icv_ok(ip: bytes, key: bytes, digest: str, icv_len: int) -> bool:
    """RFC 4302 §3.3.3 computed here, not by forwarding/ipsec/ah.py."""
    from cryptography.hazmat.primitives import hashes, hmac

    b = bytearray(ip)
    b[1] = b[6] = b[7] = b[8] = b[10] = b[11] = 0  # TOS, flags/offset, TTL, checksum
    b[32 : 32 + icv_len] = bytes(icv_len)  # 20-byte outer header: the ICV starts at 32
    h = hmac.HMAC(key, hashes.SHA256() if digest == "sha256" else hashes.SHA512())
    h.update(bytes(b))
    return h.finalize()[:icv_len] == ip[32 : 32 + icv_len]


def test_ping_and_tcp_through_ah(L, addrs, tmp_path):
    ce1, ce2 = addrs
    r = _ping(L, "ce1", ce2)
    assert r.returncode == 0, r.stdout
    assert _sa(L, "pe1", "pe1-pe2", "out")["counters"]["packets_out"] >= 3
    assert _sa(L, "pe2", "pe1-pe2", "in")["counters"]["packets_in"] >= 3
    assert _sa(L, "pe1", "pe2-pe1", "in")["counters"]["packets_in"] >= 3  # the replies
    stage = L.query("pe2", "ipsec", view="sas")["stage"]
    assert stage["ah_in"] >= 3 and stage["ah_out"] >= 3 and not stage.get("esp_in")
    data = os.urandom(200_000)
    ns2 = f"lsr-{NAME}.ce2"
    out = tmp_path / "out.bin"
    with open(out, "wb") as f:
        srv = subprocess.Popen(["ip", "netns", "exec", ns2, "nc", "-l", "5001"], stdout=f)
        try:
            wait_tcp_listening(ns2, 5001, srv)
            r = subprocess.run(["ip", "netns", "exec", f"lsr-{NAME}.ce1", "nc", "-N", "-w", "10", ce2, "5001"],
                               input=data, capture_output=True, timeout=60)
            assert r.returncode == 0, r.stderr
            srv.wait(timeout=30)
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
    assert out.read_bytes() == data


def test_cli_shows_ah(L):
    from lsr.cli import main

    r = CliRunner().invoke(main, ["lab", "ipsec", NAME, "pe1", "sas"], env={"COLUMNS": "220"})
    assert r.exit_code == 0, r.output
    assert "AH hmac-sha2-256-128" in r.output and "AH hmac-sha2-512-256" in r.output
    r = CliRunner().invoke(main, ["lab", "ipsec", NAME, "pe1", "sas", "--json"])
    data = json.loads(r.output)
    assert {s["protocol"] for s in data["sas"]} == {"ah"}


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_core_capture_label_ah_clear_payload_and_icvs(L, addrs, tmp_path):
    ce1, ce2 = addrs
    cap = Capture(f"lsr-{NAME}.p1", "eth1", tmp_path / "core.pcap", "ah or mpls", count=6)
    try:
        r = _ping(L, "ce1", ce2, "-p", SECRET[:16].hex(), count=3)
        assert r.returncode == 0, r.stdout
        cap.wait_exit()  # 3 requests (labelled) and 3 replies (unlabelled after PHP)
    finally:
        cap.stop()
    frames = pcap_frames(cap.pcap)
    assert SECRET[:16] in cap.pcap.read_bytes()  # AH does not encrypt: the payload is in clear
    requests = [f for f in frames if f[12:14] == b"\x88\x47" and _ah_ip(f)]
    replies = [f for f in frames if f[12:14] == b"\x08\x00" and _ah_ip(f)]
    assert len(requests) == 3 and len(replies) == 3, [f[:40].hex() for f in frames]
    cfg = lab.topology(NAME).extra["ipsec"]
    k12, k21 = cfg.sa("pe1-pe2").auth_key, cfg.sa("pe2-pe1").auth_key
    from scapy.layers.inet import IP
    from scapy.layers.ipsec import AH
    from scapy.layers.ipsec import SecurityAssociation as ScapySA

    for f in requests:
        ip = _ah_ip(f)
        assert ip[12:20] == bytes([10, 255, 0, 1, 10, 255, 0, 3])
        assert struct.unpack_from("!I", ip, 24)[0] == 0x5001
        assert _icv_ok(ip, k12, "sha256", 16), f.hex()
        ScapySA(AH, spi=0x5001, auth_algo="SHA2-256-128", auth_key=k12,
                tunnel_header=IP(src=PE1_LO, dst=PE2_LO)).decrypt(IP(ip))  # raises on a bad ICV
    for f in replies:
        ip = _ah_ip(f)
        assert struct.unpack_from("!I", ip, 24)[0] == 0x5002
        assert _icv_ok(ip, k21, "sha512", 32), f.hex()
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    out = subprocess.run(
        ["tshark", "-r", str(cap.pcap), "-Y", "ah", "-T", "fields", "-E", "separator=|",
         "-e", "mpls.label", "-e", "ip.proto", "-e", "ah.spi", "-e", "ah.sequence", "-e", "ah.icv",
         "-e", "icmp.type", "-e", "data.data", "-e", "_ws.expert"],
        capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [line.split("|") for line in out.splitlines()]
    assert len(rows) == 6, out
    for row in rows:
        assert row[1].startswith("51"), row  # outer protocol AH (then the inner ICMP's 1)
        assert row[2] in ("0x00005001", "0x00005002", "20481", "20482"), row
        assert row[5] in ("8", "0"), row  # the inner ICMP echo, dissected through AH
        assert SECRET[:16].hex() in row[6].replace(":", ""), row
        assert not row[7], row  # no expert info (malformed etc.)
    assert sum(1 for r in rows if r[0]) == 3  # the requests carry a label on this link
    # tshark's ah.icv is the ICV field we checked above
    icvs = {r[4].replace(":", "") for r in rows}
    assert {(_ah_ip(f)[32:48]).hex() for f in requests} <= icvs


def _inject(L, node: str, ifname: str, *frames: bytes) -> None:
    r = L.run(node, [sys.executable, "-c", INJECT, ifname, *(f.hex() for f in frames)])
    assert r.returncode == 0, r.stderr


def _forge(inner: bytes, seq: int, key: bytes) -> bytes:
    """What pe1 would send on pe1-pe2 with sequence number `seq` (scapy's AH, not ours)."""
    from scapy.layers.inet import IP
    from scapy.layers.ipsec import AH
    from scapy.layers.ipsec import SecurityAssociation as ScapySA

    sa = ScapySA(AH, spi=0x5001, auth_algo="SHA2-256-128", auth_key=key,
                 tunnel_header=IP(src=PE1_LO, dst=PE2_LO, ttl=64, id=seq & 0xFFFF))
    return bytes(sa.encrypt(IP(inner), seq_num=seq))


def _with(ip: bytes, off: int, value: bytes) -> bytes:
    from forwarding.ipsec.ipv4 import ipv4_checksum

    b = bytearray(ip)
    b[off : off + len(value)] = value
    b[10:12] = b"\0\0"
    b[10:12] = struct.pack("!H", ipv4_checksum(bytes(b[:20])))
    return bytes(b)


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_replay_and_in_flight_tampering(L, addrs, tmp_path):
    ce1, ce2 = addrs
    cap = Capture(f"lsr-{NAME}.p1", "eth1", tmp_path / "c.pcap", "mpls", count=1)
    try:
        assert _ping(L, "ce1", ce2, count=1).returncode == 0
        cap.wait_exit()
    finally:
        cap.stop()
    (frame,) = [f for f in pcap_frames(cap.pcap) if _ah_ip(f)]
    head = frame[:18]  # Ethernet to p1 + the label pe1 pushed
    key = lab.topology(NAME).extra["ipsec"].sa("pe1-pe2").auth_key
    before = _sa(L, "pe2", "pe1-pe2", "in")
    c0 = before["counters"]
    # 1. the captured frame again: a replay
    _inject(L, "pe1", "eth2", frame)
    wait_for(lambda: _sa(L, "pe2", "pe1-pe2", "in")["counters"]["replay_drops"] > c0["replay_drops"],
             10, "pe2 to drop the replayed AH frame")
    # 2. fresh packets as pe1 would send them, then changed on the way
    from scapy.layers.inet import ICMP, IP

    top = before["replay_top"]
    inner = bytes(IP(src=ce1, dst=ce2, ttl=63) / ICMP(id=0x4148, seq=1) / SECRET)
    mutable = [
        _with(_forge(inner, top + 10, key), 8, b"\x05"),  # TTL
        _with(_forge(inner, top + 11, key), 1, b"\xb9"),  # TOS: DSCP EF + ECN
        _with(_with(_forge(inner, top + 12, key), 8, b"\x21"), 6, b"\x40\x00"),  # TTL and DF
    ]
    immutable = [
        _with(_forge(inner, top + 20, key), 12, bytes([10, 255, 0, 2])),  # source address
        _with(_forge(inner, top + 21, key), 4, b"\x12\x34"),  # identification
        _with(_forge(inner, top + 22, key), 48 + 28 + 3, b"\x00"),  # a payload byte
    ]
    _inject(L, "pe1", "eth2", *(head + p for p in mutable + immutable))

    def settled() -> dict | None:
        sa = _sa(L, "pe2", "pe1-pe2", "in")
        c = sa["counters"]
        done = c["packets_in"] >= c0["packets_in"] + 3 and c["icv_failures"] >= c0["icv_failures"] + 3
        return sa if done else None
    after = wait_for(settled, 10, "pe2 to accept 3 and refuse 3 injected AH frames")
    c1 = after["counters"]
    assert c1["packets_in"] == c0["packets_in"] + 3  # mutable fields changed: accepted
    assert c1["icv_failures"] == c0["icv_failures"] + 3  # immutable fields changed: refused
    assert c1["replay_drops"] == c0["replay_drops"] + 1
    assert after["replay_top"] == top + 12  # the bad ICVs did not move the window
    reasons = [a["reason"] for a in L.query("pe2", "ipsec", view="audit")]
    assert {"replay", "icv-failed"} <= set(reasons)
    log = (Path("/run/lsr") / NAME / "pe2.log")
    if hasattr(lab, "lab_dir"):
        log = lab.lab_dir(NAME) / "pe2.log"
    text = log.read_text()
    assert "ipsec drop replay" in text and "ipsec drop icv-failed" in text
    # the tunnel still works and no router hit an error
    assert _ping(L, "ce1", ce2, count=2).returncode == 0
    for r in ("pe1", "p1", "pe2"):
        rt = L.query(r, "counters")["runtime"]
        assert rt.get("ipsec_errors", 0) == 0 and rt.get("dataplane_errors", 0) == 0

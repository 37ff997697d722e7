"""ESP across the MPLS core in a real lab (root): manual keys, tests/data/ipsec-line.yaml.

ce1 - pe1 ==ESP over LSP== p1 - pe2 - ce2. Checks: ping and TCP through the
tunnel, PMTUD/pre-fragmentation, DISCARD/BYPASS, a core capture with labels +
ESP and no cleartext, tshark decrypting it with a correct ICV, replayed /
tampered / unknown-SPI frames injected into the core dropped and counted
(window unmoved by a bad ICV), sequence-number exhaustion, no crash.
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
    from lsr.core.topology import load_topology

DATA = Path(__file__).parent / "data"
NAME = f"s{os.getpid() % 10000}m"
CE2 = "192.168.2.2"
SECRET = b"LSR-IPSEC-SECRET-PAYLOAD-7f3a"
INJECT = ("import socket,sys;s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW);"
          "s.bind((sys.argv[1],0));[s.send(bytes.fromhex(h)) for h in sys.argv[2:]]")


@pytest.fixture(scope="module")
def L():
    try:
        yield lab.up(load_topology(DATA / "ipsec-line.yaml"), name=NAME, timeout=30)
    finally:
        lab.down(NAME)
    assert f"lsr-{NAME}." not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                text=True).stdout


def _sa(L, router: str, name: str, direction: str) -> dict:
    sas = L.query(router, "ipsec", view="sas")["sas"]
    return next(s for s in sas if s["name"] == name and s["direction"] == direction)


def _ping(L, node: str, dst: str, *args: str, count: int = 3) -> subprocess.CompletedProcess:
    return L.run(node, ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", *args, dst])


def test_ping_through_tunnel_counts(L):
    before = _sa(L, "pe2", "pe1-pe2", "in")["counters"]["packets_in"]
    r = _ping(L, "ce1", CE2)
    assert r.returncode == 0, r.stdout
    assert _sa(L, "pe1", "pe1-pe2", "out")["counters"]["packets_out"] >= 3
    assert _sa(L, "pe2", "pe1-pe2", "in")["counters"]["packets_in"] - before >= 3
    assert _sa(L, "pe1", "pe2-pe1", "in")["counters"]["packets_in"] >= 3  # the replies


def test_cli_sas_and_policies_json(L):
    from lsr.cli import main

    r = CliRunner().invoke(main, ["lab", "ipsec", NAME, "pe1", "sas", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert {s["spi"] for s in data["sas"]} == {"0x00001001", "0x00002002"}
    assert set(data["sas"][0]["counters"]) >= {"packets_out", "bytes_out", "replay_drops", "icv_failures"}
    r = CliRunner().invoke(main, ["lab", "ipsec", NAME, "pe1", "policies", "--json"])
    pol = json.loads(r.output)
    assert [p["action"] for p in pol["outbound"]] == ["protect", "discard"]
    r = CliRunner().invoke(main, ["lab", "ipsec", NAME, "pe2", "sas"])
    assert r.exit_code == 0 and "IPsec SAs" in r.output and "esp_in=" in r.output


def test_discard_and_bypass(L):
    # pe1's SPD: 192.168.1.0/24 -> 10.255.0.0/16 DISCARD; anything else unmatched BYPASS
    r = _ping(L, "ce1", "10.255.0.3", count=1)
    assert r.returncode != 0
    st = L.query("pe1", "ipsec", view="sas")["stage"]
    assert st.get("drop_policy_discard", 0) >= 1
    audit = L.query("pe1", "ipsec", view="audit")
    assert any(a["reason"] == "policy-discard" for a in audit)
    core = lab.topology(NAME).nodes["p1"].interfaces["eth2"].address.ip  # not covered by a policy
    assert _ping(L, "ce1", str(core), count=1).returncode == 0


def test_tcp_byte_identical_and_pmtud(L, tmp_path):
    data = os.urandom(400_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    ns = f"lsr-{NAME}.ce2"
    with open(out, "wb") as f:
        srv = subprocess.Popen(["ip", "netns", "exec", ns, "nc", "-l", "5001"], stdout=f)
        try:
            wait_tcp_listening(ns, 5001, srv)
            with open(src, "rb") as fin:
                r = subprocess.run(["ip", "netns", "exec", f"lsr-{NAME}.ce1", "nc", "-N", "-w", "10",
                                    CE2, "5001"], stdin=fin, capture_output=True, timeout=60)
            assert r.returncode == 0, r.stderr
            srv.wait(timeout=30)
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
    assert out.read_bytes() == data
    # full-size segments do not fit with ESP + a label: ICMP frag-needed taught ce1 the MTU
    assert L.query("pe1", "ipsec", view="sas")["stage"].get("frag_needed_sent", 0) >= 1


def test_mtu_df_and_prefragmentation(L):
    r = _ping(L, "ce1", CE2, "-M", "do", "-s", "1450", count=1)
    assert r.returncode != 0
    assert "mtu = " in r.stdout.lower() or "message too long" in (r.stdout + r.stderr).lower()
    L.run("ce1", ["ip", "route", "flush", "cache"])  # forget the learnt PMTU: pe1 must fragment
    r = _ping(L, "ce1", CE2, "-M", "dont", "-s", "1450", count=2)
    assert r.returncode == 0, r.stdout
    assert L.query("pe1", "ipsec", view="sas")["stage"].get("inner_fragmented", 0) >= 2


def _capture(tmp_path, node: str, ifname: str, count: int) -> Capture:
    """The first `count` labelled or ESP frames on a node's interface."""
    return Capture(f"lsr-{NAME}.{node}", ifname, tmp_path / f"{node}-{ifname}.pcap",
                   "esp or mpls", count=count)


def _esp_frames(pcap: Path) -> list[bytes]:
    out = []
    for b in pcap_frames(pcap):
        if b[12:14] == b"\x88\x47" and b[16] & 1 and b[18] >> 4 == 4 and b[18 + 9] == 50:
            out.append(b)
    return out


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_core_capture_labels_esp_no_cleartext_tshark_decrypts(L, tmp_path):
    cap = _capture(tmp_path, "p1", "eth1", 6)  # pe1 -> p1: labelled
    try:
        r = _ping(L, "ce1", CE2, "-p", SECRET[:16].hex(), count=3)
        assert r.returncode == 0, r.stdout
        cap.wait_exit()  # the 3 requests and 3 replies
    finally:
        cap.stop()
    pcap = cap.pcap
    raw = pcap.read_bytes()
    assert SECRET[:16] not in raw  # no cleartext payload on the core link
    frames = _esp_frames(pcap)
    assert frames, "no MPLS-labelled ESP frames captured"
    assert struct.unpack_from("!I", frames[0], 38)[0] == 0x1001
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    topo = lab.topology(NAME)
    sa = topo.extra["ipsec"].sa("pe1-pe2")
    uat = (f'uat:esp_sa:"IPv4","{sa.src_addr}","{sa.dst_addr}","0x{sa.spi:08x}","AES-CBC [RFC3602]",'
           f'"0x{sa.enc_key.hex()}","HMAC-SHA-256-128 [RFC4868]","0x{sa.auth_key.hex()}"')
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", "esp.enable_encryption_decode:TRUE",
         "-o", "esp.enable_authentication_check:TRUE", "-o", uat, "-Y", "esp",
         "-T", "fields", "-E", "separator=|", "-e", "mpls.label", "-e", "esp.spi",
         "-e", "esp.icv_good", "-e", "ip.dst", "-e", "data.data"],
        capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [line.split("|") for line in out.splitlines()]
    mine = [r for r in rows if r[1] in ("0x00001001", "4097")]
    assert mine, out
    for row in mine:
        assert row[0], row  # a label stack
        assert row[2] in ("1", "True"), row  # ICV verified by tshark
        assert CE2 in row[3], row  # inner destination, decrypted
        assert SECRET[:16].hex() in row[4].replace(":", ""), row  # our payload, decrypted


def _inject(L, node: str, ifname: str, *frames: bytes) -> None:
    r = L.run(node, [sys.executable, "-c", INJECT, ifname, *(f.hex() for f in frames)])
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_replay_tamper_unknown_spi_dropped_and_counted(L, tmp_path):
    cap = _capture(tmp_path, "p1", "eth1", 2)
    try:
        assert _ping(L, "ce1", CE2, count=2).returncode == 0
        cap.wait_exit()
    finally:
        cap.stop()
    frame = _esp_frames(cap.pcap)[0]
    before = _sa(L, "pe2", "pe1-pe2", "in")
    unknown_before = L.query("pe2", "ipsec", view="sas")["sad"]["unknown_spi"]
    # 1. exact replay, re-injected into the core link (pe1 eth2 -> p1 eth1, label as captured)
    _inject(L, "pe1", "eth2", frame)
    # 2. tampered: a fresh sequence number far right of the window, one ciphertext bit flipped
    top = before["replay_top"]
    t = bytearray(frame)
    struct.pack_into("!I", t, 42, top + 1000)
    t[70] ^= 0x01
    # 3. unknown SPI
    u = bytearray(frame)
    struct.pack_into("!I", u, 38, 0xDEADBEEF)
    _inject(L, "pe1", "eth2", bytes(t), bytes(u))

    def all_three_seen() -> dict | None:
        sa = _sa(L, "pe2", "pe1-pe2", "in")
        unknown = L.query("pe2", "ipsec", view="sas")["sad"]["unknown_spi"]
        c0, c = before["counters"], sa["counters"]
        done = (c["replay_drops"] > c0["replay_drops"] and c["icv_failures"] > c0["icv_failures"]
                and unknown > unknown_before)
        return sa if done else None
    after = wait_for(all_three_seen, 10, "pe2 to drop the 3 injected frames")
    c0, c1 = before["counters"], after["counters"]
    assert c1["replay_drops"] == c0["replay_drops"] + 1
    assert c1["icv_failures"] == c0["icv_failures"] + 1
    assert c1["packets_in"] == c0["packets_in"]  # nothing was delivered
    assert after["replay_top"] == top  # the bad ICV did not move the window (RFC 4303 §3.4.3)
    assert L.query("pe2", "ipsec", view="sas")["sad"]["unknown_spi"] == unknown_before + 1
    reasons = [a["reason"] for a in L.query("pe2", "ipsec", view="audit")]
    assert {"replay", "icv-failed", "unknown-spi"} <= set(reasons)
    log = (lab.lab_dir(NAME) / "pe2.log").read_text() if hasattr(lab, "lab_dir") else \
        (Path("/run/lsr") / NAME / "pe2.log").read_text()
    assert "ipsec drop replay" in log and "ipsec drop icv-failed" in log
    # the tunnel still works
    assert _ping(L, "ce1", CE2, count=2).returncode == 0


def test_sequence_exhaustion_then_nothing_crashed(L):
    L.query("pe1", "ipsec", view="set-seq", sa="pe1-pe2", seq=0xFFFFFFFF)
    assert _ping(L, "ce1", CE2, count=1).returncode == 0  # seq 2^32-1 is the last one
    assert _ping(L, "ce1", CE2, count=2).returncode != 0  # then the SA refuses to send
    sa = _sa(L, "pe1", "pe1-pe2", "out")
    assert sa["exhausted"] and sa["counters"]["seq_exhausted"] >= 2
    assert sa["counters"]["packets_out"] >= 1
    assert any(a["reason"] == "seq-exhausted" for a in L.query("pe1", "ipsec", view="audit"))
    st = lab.status(NAME)
    assert all(r["alive"] for r in st["routers"].values())
    for r in ("pe1", "p1", "pe2"):
        rt = L.query(r, "counters")["runtime"]
        assert rt.get("ipsec_errors", 0) == 0 and rt.get("dataplane_errors", 0) == 0

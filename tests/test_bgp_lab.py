"""BGP in a namespace lab (tests/data/bgp-lab.yaml): the speaker the simulator runs, on
TCP 179 between loopbacks, with TCP MD5 and GTSM.

* `lsr lab bgp` shows what `lsr sim bgp` shows (same JSON routes, same tables);
* tshark decodes every BGP message our routers send on a core link, session set-up and
  a NOTIFICATION included, with no malformed or warning item;
* bad input from a raw peer (a script speaking BGP from `raw`'s namespace and loopback,
  a configured eBGP neighbour of pe1) is handled per RFC 7606: treat-as-withdraw and
  attribute discard keep the session and its other routes, an unparsable NLRI and
  random bytes after the OPEN reset the session with the right NOTIFICATION, and pe1
  keeps running (same PID) with its other session up;
* GTSM (RFC 5082): pe1's eBGP session with raw needs TTL 255;
* an idle lab sends only KEEPALIVEs.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lsr import lab
from lsr.core.topology import load_topology
from lsr.lab.state import ns_name

from .bgp_raw import RawPeer
from .conftest import ROOT, needs_root, needs_tool
from .wait import Capture, wait_for

pytestmark = [needs_root, pytest.mark.netns, pytest.mark.slow]

TOPO = ROOT / "tests" / "data" / "bgp-lab.yaml"
NAME = f"hg{os.getpid() % 10000}"
PE1, RAW = "10.255.0.1", "10.255.0.99"
RAW_AS = 65099


@pytest.fixture(scope="module")
def bgplab():
    lab.down(NAME)
    try:
        yield lab.up(load_topology(TOPO), name=NAME, timeout=60)
    finally:
        lab.down(NAME)


def _lsr(*args: str) -> subprocess.CompletedProcess:
    """The CLI of this checkout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


def _peer(router: str, neighbor: str) -> dict:
    (n,) = [n for n in lab.bgp(NAME, router)["routers"][router]["neighbors"]
            if n["neighbor"] == neighbor]
    return n


def _prefixes(router: str, view: str = "unicast") -> dict[str, dict]:
    return {r["prefix"]: r for r in lab.bgp(NAME, router, view)["routers"][router]["routes"]}


# ---------------------------------------------------------------- views


def test_sessions_and_routes_as_in_the_simulator(bgplab):
    st = lab.status(NAME)["routers"]
    assert st["rr"]["bgp"] == {"10.255.0.1": "Established", "10.255.0.2": "Established"}
    assert st["pe1"]["bgp"] == {"10.255.0.10": "Established", RAW: "Active"}  # raw: passive
    for r in ("pe1", "rr", "pe2"):
        for view in ("vpn", "unicast"):
            sim = json.loads(_lsr("sim", "bgp", str(TOPO), r, view, "--json").stdout)
            assert lab.bgp(NAME, r, view) == sim, (r, view)
    # the tables too: same command shape, same text
    sim_text = _lsr("sim", "bgp", str(TOPO), "pe2", "vpn")
    lab_text = _lsr("lab", "bgp", NAME, "pe2", "vpn")
    assert lab_text.returncode == 0 and lab_text.stdout == sim_text.stdout
    assert "65000:2" in lab_text.stdout and "1002" in lab_text.stdout
    table = _lsr("lab", "status", NAME).stdout
    assert "bgp up" in table and any(ln.split("│")[1].strip() == "rr" and "2/2" in ln
                                     for ln in table.splitlines() if "│" in ln), table
    counters = _lsr("lab", "counters", NAME, "pe1").stdout
    assert "bgp sent" in counters and "KEEPALIVE" in counters, counters
    s = lab.bgp(NAME, "pe1")["routers"]["pe1"]
    rr = _peer("pe1", "rr")
    assert rr["md5"] and rr["families"] == ["ipv4-unicast", "ipv4-vpn"]
    assert rr["uptime"] > 0 and (rr["received"], rr["sent"]) == (2, 2)
    assert s["messages"]["sent"]["OPEN"] >= 1 and s["messages"]["received"]["UPDATE"] >= 1


def test_bad_view_and_router_one_line(bgplab):
    r = _lsr("lab", "bgp", NAME, "nosuch", "vpn")
    assert r.returncode == 2 and r.stderr.strip() == f"lsr: lab '{NAME}' has no router 'nosuch'"
    r = _lsr("sim", "bgp", str(TOPO), "pe1", "colours")
    assert r.returncode == 2 and "unknown BGP view 'colours'" in r.stderr
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------- on the wire


def _tshark_bgp(pcap: Path, src: set[str]) -> tuple[dict[int, int], list[str]]:
    """BGP message types our addresses `src` sent, and every frame of theirs tshark finds
    malformed or warns about (expert severity warn or error)."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", "tcp.analyze_sequence_numbers:FALSE", "-Y", "bgp",
         "-T", "fields", "-E", "separator=|", "-e", "frame.number", "-e", "ip.src",
         "-e", "bgp.type", "-e", "_ws.malformed", "-e", "_ws.expert.severity",
         "-e", "_ws.expert.message"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    sent: dict[int, int] = {}
    problems = []
    for line in out.stdout.splitlines():
        _num, ip, types, malformed, sev, _msg = (line.split("|") + [""] * 6)[:6]
        if ip not in src:
            continue
        for t in types.split(","):
            if t:
                sent[int(t)] = sent.get(int(t), 0) + 1
        # expert severities: chat 0x200000, note 0x400000, warn 0x600000, error 0x800000
        if malformed or any(int(x) >= 0x600000 for x in sev.split(",") if x):
            problems.append(line)
    return sent, problems


@needs_tool("tshark")
@needs_tool("tcpdump")
def test_tshark_decodes_every_message_we_send(bgplab, tmp_path):
    """pe2 stopped (Cease) and started again (OPEN, KEEPALIVE, UPDATEs, End-of-RIB):
    captured on the rr-pe2 core link, with TCP MD5 on pe1-rr captured beside it."""
    pcap, md5 = tmp_path / "rr-pe2.pcap", tmp_path / "pe1-rr.pcap"
    cap = Capture(ns_name(NAME, "rr"), "eth2", pcap, "tcp", "port", "179")
    cap_md5 = Capture(ns_name(NAME, "rr"), "eth1", md5, "tcp", "port", "179")
    try:
        _lsr("lab", "node", NAME, "pe2", "stop")
        wait_for(lambda: lab.status(NAME)["routers"]["rr"]["bgp"]["10.255.0.2"] != "Established",
                 10, "rr to see pe2 go")
        r = _lsr("lab", "node", NAME, "pe2", "start")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: "10.20.0.0/16" in _prefixes("pe1"), 20, "pe2's routes back at pe1")
        # a KEEPALIVE of pe1 to rr (every 3 s) in the MD5 capture
        cap_md5.wait(lambda fs: any(len(f) > 54 and f[-19:] == b"\xff" * 16 + b"\x00\x13\x04"
                                    for f in fs), 10, "a KEEPALIVE on pe1-rr")
    finally:
        cap.stop()
        cap_md5.stop()
    sent, problems = _tshark_bgp(pcap, {"10.255.0.10", "10.255.0.2"})
    assert not problems, problems
    assert {1, 2, 3, 4} <= set(sent), sent  # OPEN, UPDATE, NOTIFICATION, KEEPALIVE
    _, problems = _tshark_bgp(md5, {"10.255.0.10", PE1})
    assert not problems, problems
    kinds = subprocess.run(["tshark", "-r", str(md5), "-Y", "tcp.port == 179", "-T", "fields",
                            "-e", "tcp.option_kind"], capture_output=True, text=True).stdout
    rows = [set(x.split(",")) for x in kinds.split()]
    assert rows and all("19" in r for r in rows), kinds[:300]  # RFC 2385: every segment signed


# ---------------------------------------------------------------- bad input (RFC 7606)


def _open_session(peer: RawPeer) -> None:
    from bgp.messages import KEEPALIVE_BYTES, FourOctetAs, Multiprotocol, Open, encode

    peer.wait_connected()
    peer.send(encode(Open(RAW_AS, 0, IPv4Address(RAW),
                          (Multiprotocol(1, 1), Multiprotocol(1, 128), FourOctetAs(RAW_AS)))))
    peer.wait_type(1)  # pe1's OPEN
    peer.wait_type(4)  # its KEEPALIVE
    peer.send(KEEPALIVE_BYTES)


def _update(attrs: bytes, nlri: bytes) -> bytes:
    body = b"\0\0" + struct.pack("!H", len(attrs)) + attrs + nlri
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), 2) + body


ORIGIN = bytes([0x40, 1, 1, 0])
AS_PATH = bytes([0x40, 2, 6, 2, 1]) + struct.pack("!I", RAW_AS)  # 4-octet AS session
NEXT_HOP = bytes([0x40, 3, 4]) + IPv4Address(RAW).packed
P1, P2 = bytes([16, 10, 77]), bytes([16, 10, 78])


def _wait_raw_active() -> None:
    wait_for(lambda: _peer("pe1", "raw")["state"] == "Active", 20,
             lambda: f"pe1 listening for raw again: {_peer('pe1', 'raw')}")


def _established(router: str, neighbor: str) -> int:
    n = _peer(router, neighbor)
    assert n["state"] == "Established", n
    return n["established"]


def test_malformed_updates_are_handled_per_rfc7606(bgplab, tmp_path):
    pid = lab.status(NAME)["routers"]["pe1"]["pid"]
    rr_ups = _established("pe1", "rr")
    before = lab.query(NAME, "pe1", "counters")["bgp"]
    _wait_raw_active()
    pcap = tmp_path / "pe1-raw.pcap"
    cap = Capture(ns_name(NAME, "pe1"), "eth2", pcap, "tcp", "port", "179") \
        if _have("tshark") and _have("tcpdump") else None
    peer = RawPeer(ns_name(NAME, "raw"), RAW, PE1, ttl=255)
    try:
        _open_session(peer)
        wait_for(lambda: _peer("pe1", "raw")["state"] == "Established", 10, "raw Established")
        peer.send(_update(ORIGIN + AS_PATH + NEXT_HOP, P1 + P2))
        wait_for(lambda: {"10.77.0.0/16", "10.78.0.0/16"} <= set(_prefixes("pe2")), 10,
                 "raw's two routes reflected to pe2")

        # RFC 7606 §7.1: ORIGIN 3 -> treat-as-withdraw: P1 goes, P2 and the session stay
        peer.send(_update(bytes([0x40, 1, 1, 3]) + AS_PATH + NEXT_HOP, P1))
        wait_for(lambda: "10.77.0.0/16" not in _prefixes("pe2"), 10, "P1 withdrawn at pe2")
        assert "10.78.0.0/16" in _prefixes("pe1") and "10.78.0.0/16" in _prefixes("pe2")
        raw = _peer("pe1", "raw")
        assert raw["state"] == "Established" and raw["treated_as_withdraw"] == 1

        # §7.6: a malformed ATOMIC_AGGREGATE is discarded, the route kept (P2 again)
        peer.send(_update(ORIGIN + AS_PATH + NEXT_HOP + bytes([0x40, 6, 1, 0]), P2))
        wait_for(lambda: _peer("pe1", "raw")["attributes_discarded"] == 1, 10,
                 "the attribute discarded")
        assert "10.78.0.0/16" in _prefixes("pe2")

        # §5.3: an NLRI that cannot be parsed (length 33) -> session reset, 3/10
        peer.send(_update(ORIGIN + AS_PATH + NEXT_HOP, bytes([33, 10, 79, 0, 0, 1])))
        note = peer.wait_type(3)
        assert note[19:21] == bytes([3, 10]), note.hex()  # UPDATE Message Error/Invalid Network
        peer.wait_eof()
    finally:
        peer.close()
    wait_for(lambda: "10.78.0.0/16" not in _prefixes("pe2"), 10, "raw's routes gone with it")
    st = lab.status(NAME)["routers"]["pe1"]
    assert st["alive"] and st["pid"] == pid
    assert _established("pe1", "rr") == rr_ups  # the other session never dropped
    after = lab.query(NAME, "pe1", "counters")["bgp"]
    assert after["notifications_sent"].get("UPDATE_MESSAGE/10", 0) == \
        before["notifications_sent"].get("UPDATE_MESSAGE/10", 0) + 1
    assert after["treated_as_withdraw"] >= 1 and after["attributes_discarded"] >= 1
    if cap is not None:  # pe1's own messages to raw (its NOTIFICATION too) decode cleanly
        cap.wait(lambda fs: len(fs) >= 6, 10, "the raw session in the capture")
        cap.stop()
        sent, problems = _tshark_bgp(pcap, {PE1})
        assert not problems, problems
        assert {1, 3, 4} <= set(sent), sent


def test_random_bytes_after_open_reset_the_session(bgplab):
    pid = lab.status(NAME)["routers"]["pe1"]["pid"]
    rr_ups = _established("pe1", "rr")
    _wait_raw_active()
    peer = RawPeer(ns_name(NAME, "raw"), RAW, PE1, ttl=255)
    try:
        _open_session(peer)
        junk = random.Random(7).randbytes(64)
        assert junk[:16] != b"\xff" * 16
        peer.send(junk)
        note = peer.wait_type(3)
        # RFC 4271 §6.1: a marker that is not all ones -> Message Header Error /
        # Connection Not Synchronized
        assert note[19:21] == bytes([1, 1]), note.hex()
        peer.wait_eof()
    finally:
        peer.close()
    st = lab.status(NAME)["routers"]["pe1"]
    assert st["alive"] and st["pid"] == pid
    assert _established("pe1", "rr") == rr_ups
    assert _peer("pe1", "raw")["last_error"].startswith("sent MESSAGE_HEADER/1")


def test_idle_routers_send_only_keepalives(bgplab):
    """Over two KEEPALIVE intervals (hold 9 s: every 3 s) nothing but KEEPALIVEs, and
    little CPU."""
    def counts() -> dict[str, dict[str, int]]:
        return {r: lab.query(NAME, r, "counters")["bgp"]["sent"] for r in ("pe1", "rr", "pe2")}

    def cpu(r: str) -> float:
        pid = lab.status(NAME)["routers"][r]["pid"]
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    wait_for(lambda: all(p["state"] != "Idle" for p in
                         lab.bgp(NAME, "pe1")["routers"]["pe1"]["neighbors"]), 20, "pe1 settled")
    c0, t0 = counts(), time.monotonic()
    cpu0 = {r: cpu(r) for r in c0}
    wait_for(lambda: all(counts()[r].get("KEEPALIVE", 0) >= c0[r].get("KEEPALIVE", 0) + 2
                         for r in c0), 15, "two KEEPALIVEs from every router")
    c1, elapsed = counts(), time.monotonic() - t0
    for r in c0:
        changed = {k for k in c1[r] if c1[r][k] != c0[r].get(k)}
        assert changed == {"KEEPALIVE"}, (r, c0[r], c1[r])
        assert (cpu(r) - cpu0[r]) / elapsed < 0.05, r  # the dataplane's idle ticks included


def _have(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


def test_json_prefix_keys(bgplab):
    """The documented keys (docs/cli.md, "BGP")."""
    s = lab.bgp(NAME, "pe1")["routers"]["pe1"]
    assert set(s) == {"router_id", "asn", "route_reflector", "neighbors", "messages",
                      "notifications"}
    assert set(s["neighbors"][0]) == {
        "neighbor", "address", "asn", "type", "rr_client", "passive", "md5", "state", "bgp_id",
        "uptime", "families", "received", "sent", "established", "treated_as_withdraw",
        "attributes_discarded", "last_error", "connect_error"}
    v = lab.bgp(NAME, "pe2", "vpn")["routers"]["pe2"]["routes"][0]
    assert set(v) == {"prefix", "rd", "next_hop", "label", "route_targets", "from", "origin",
                      "as_path", "local_pref", "med", "originator_id", "cluster_list"}
    assert IPv4Network(v["prefix"])


def _min_ttl_drops(node: str) -> int:
    text = subprocess.run(["ip", "netns", "exec", ns_name(NAME, node), "cat",
                           "/proc/net/netstat"], capture_output=True, text=True).stdout
    head, vals = [ln.split() for ln in text.splitlines() if ln.startswith("TcpExt:")][:2]
    return int(dict(zip(head, vals, strict=False)).get("TCPMinTTLDrop", -1))


def test_gtsm_drops_a_peer_below_ttl_255(bgplab):
    """`ttl_security` on pe1: its eBGP session with raw (one hop) needs TTL 255 (RFC 5082
    §3): the same OPEN with TTL 254 is dropped by the kernel (IP_MINTTL), counted in
    TcpExt TCPMinTTLDrop, and never reaches the speaker."""
    drops = _min_ttl_drops("pe1")
    if drops < 0:
        pytest.skip("kernel has no TCPMinTTLDrop counter")
    _wait_raw_active()
    from bgp.messages import FourOctetAs, Multiprotocol, Open, encode

    peer = RawPeer(ns_name(NAME, "raw"), RAW, PE1, ttl=254)
    try:
        peer.wait_connected()  # the handshake is the listener's (no IP_MINTTL there)
        peer.send(encode(Open(RAW_AS, 0, IPv4Address(RAW), (Multiprotocol(1, 1),
                                                          FourOctetAs(RAW_AS)))))
        wait_for(lambda: _min_ttl_drops("pe1") > drops, 10, "pe1's kernel to drop the OPEN")
        # Known race (left open): IP_MINTTL is set on the accepted socket right after
        # accept, so a segment that arrives before that passes; under load the OPEN was
        # once seen (OpenConfirm). The kernel's drop above is the check that holds.
        assert _peer("pe1", "raw")["state"] != "Established"
    finally:
        peer.close()

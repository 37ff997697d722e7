"""Interoperability with FRRouting's ldpd (kind: frr) in real namespace labs.

FRR nodes are control-plane-only LDP peers (no MPLS in this kernel): the
checks compare both sides' LDP state, never labelled forwarding through FRR.
Needs root and FRR (/usr/lib/frr/ldpd, vtysh); the capture test needs
tcpdump and tshark.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, frr_missing, is_root
from tests.wait import Capture, icmp_echo_in_mpls, wait_for, wait_tcp_listening

FRR_WHY = frr_missing()
FRR_OK = FRR_WHY is None
pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not is_root(), reason="needs root"),
    pytest.mark.skipif(not FRR_OK, reason=f"FRR not usable: {FRR_WHY}"),
]

if is_root() and FRR_OK:
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab import frr
    from lsr.lab.state import LabState, lab_dir, pid_alive

DATA = ROOT / "tests" / "data"
UNIQ = os.getpid() % 1000


def _name(k: int) -> str:
    return f"f{UNIQ}{k}"  # lab names: 'f' + digits


def _lsr(*args: str) -> subprocess.CompletedProcess:
    """The CLI of this checkout (not whatever `lsr` is first on PATH)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "import sys; from lsr.cli import main; main()",
                           *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)


def _pids(name: str) -> list[tuple[int, int | None]]:
    return [(p["pid"], p["start"]) for p in LabState(name).read().get("pids", [])]


def _no_leftovers(name: str, pids: list[tuple[int, int | None]]) -> None:
    nss = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"lsr-{name}." not in nss
    assert not lab_dir(name).exists()
    assert not [p for p, st in pids if pid_alive(p, st)]
    assert frr.leftover_processes(name) == []


def _up(topo_file: str, k: int):
    name = _name(k)
    pids: list = []
    try:
        L = lab.up(load_topology(DATA / topo_file), name=name, timeout=40)
        pids = _pids(name)
        assert any(r.startswith("frr:") for r in (p["role"] for p in LabState(name).read()["pids"]))
        yield L
    finally:
        lab.down(name)
    _no_leftovers(name, pids)


@pytest.fixture(scope="module")
def line():
    yield from _up("frr-line.yaml", 1)


@pytest.fixture(scope="module")
def diamond():
    yield from _up("frr-diamond.yaml", 2)


@pytest.fixture(scope="module")
def ring():
    yield from _up("frr-ring.yaml", 3)


# ---------------------------------------------------------------- helpers


def _all_operational(name: str) -> dict[str, dict[str, str]]:
    st = lab.status(name)
    out = {}
    for r, info in st["routers"].items():
        assert info["alive"], (r, info)
        out[r] = info.get("sessions", {})
    return out


def _local(name: str, router: str) -> dict[str, int]:
    return {b["fec"]: b["local_label"] for b in lab.ldp(name, router, "bindings")["bindings"]
            if b["local_label"] is not None}


def _remote(name: str, router: str, peer: str) -> dict[str, int]:
    return {b["fec"]: r["label"] for b in lab.ldp(name, router, "bindings")["bindings"]
            for r in b["remote"] if r["neighbor"] == peer}


def _rib_fecs(L, router: str) -> set[str]:
    from lsr.core.igp import Igp

    down = LabState(L.name).read().get("down_links", [])
    return {str(p) for p in Igp(L.topo, down).rib(router)}


def _check_labels_agree(L) -> int:
    """For every LDP adjacency with an FRR node: each side's remote labels are the other's
    local labels (FECs in the advertiser's RIB). Returns the number of FEC comparisons."""
    topo = L.topo
    n = 0
    for f in frr.frr_routers(topo):
        for iface in f.interfaces.values():
            peer = topo.nodes[iface.peer_node]
            if not peer.is_router:
                continue
            for adv, rcv in ((f.name, peer.name), (peer.name, f.name)):
                live = _rib_fecs(L, adv)
                want = {k: v for k, v in _local(L.name, adv).items() if k in live}
                got = _remote(L.name, rcv, adv)
                assert want, (adv, rcv)
                assert {k: got.get(k) for k in want} == want, f"{rcv}'s labels from {adv}"
                n += len(want)
    return n


# ---------------------------------------------------------------- configuration

OPTIONS = """
name: opts
topology:
  nodes:
    a: {kind: frr, loopback: 10.255.0.1, ldp: {explicit_null: true, fecs: loopbacks,
        control: ordered, keepalive_time: 30, hello_interval: 2, hello_holdtime: 7,
        passwords: {b: k1}}}
    b: {loopback: 10.255.0.2}
    h: {kind: host}
  links:
    - endpoints: [a:eth1, b:eth1]
    - endpoints: [a:eth2, h:eth0]
"""


def test_generated_ldpd_config_is_accepted_by_frr():
    """Every LdpOptions field maps to an ldpd command that FRR's own parser accepts."""
    import tempfile

    from lsr.core.topology import TopologyError, parse_topology

    topo = parse_topology(OPTIONS)
    d = Path(tempfile.mkdtemp(prefix="lsr-frr-conf-"))
    try:
        conf = frr.render(topo, "a", d)["ldpd.conf"]
        for line in ("neighbor 10.255.0.2 password k1", "ordered-control",
                     "discovery hello holdtime 7", "discovery hello interval 2",
                     "session holdtime 30", "label local allocate host-routes",
                     "label local advertise explicit-null", "interface eth1",
                     "discovery transport-address 10.255.0.1"):
            assert f" {line}\n" in conf, line
        assert "interface eth2" not in conf  # host link: no LDP
        (d / "ldpd.conf").write_text(conf)
        shutil.chown(d, "frr", "frr")
        shutil.chown(d / "ldpd.conf", "frr", "frr")
        r = subprocess.run(["/usr/lib/frr/ldpd", "-C", "-f", str(d / "ldpd.conf"),
                            "--vty_socket", str(d), "--ctl_socket", str(d), "-u", "frr",
                            "-g", "frr"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "No such command" not in r.stdout + r.stderr, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)
    # what FRR cannot do is refused with one located line
    for bad, where in (("labels: [100, 200]", "labels"),
                       ("ldp: {retention: conservative}", "retention")):
        with pytest.raises(TopologyError, match=where):
            parse_topology(OPTIONS.replace("a: {kind: frr, loopback: 10.255.0.1, ldp:",
                                           f"a: {{kind: frr, {bad}}}\n    x: {{ldp:"))


# ---------------------------------------------------------------- line: ours - FRR - ours


def test_line_sessions_and_labels_agree(line):
    sess = _all_operational(line.name)
    assert sess["f1"] == {"10.255.0.1": "OPERATIONAL", "10.255.0.3": "OPERATIONAL"}
    assert sess["pe1"] == {"10.255.0.2": "OPERATIONAL"}
    assert sess["pe2"] == {"10.255.0.2": "OPERATIONAL"}
    assert _check_labels_agree(line) >= 4 * 7
    # FRR's own view, through the vtysh wrapper of `lsr lab exec`
    r = _lsr("lab", "exec", line.name, "f1", "--", "vtysh", "-c", "show mpls ldp neighbor json")
    assert r.returncode == 0, r.stderr
    nbrs = json.loads(r.stdout)["neighbors"]
    assert sorted((n["neighborId"], n["state"]) for n in nbrs) == [
        ("10.255.0.1", "OPERATIONAL"), ("10.255.0.3", "OPERATIONAL")]
    # and the translated views of `lsr lab ldp` for an FRR router
    r = _lsr("lab", "ldp", line.name, "f1", "neighbors", "--json")
    assert r.returncode == 0, r.stderr
    assert [(n["neighbor"], n["lsr_id"], n["state"]) for n in json.loads(r.stdout)] == [
        ("pe1", "10.255.0.1", "OPERATIONAL"), ("pe2", "10.255.0.3", "OPERATIONAL")]
    # uptimes in seconds as ours (FRR says "00:00:05"), HH:MM:SS in the table as ours
    assert all(isinstance(n["uptime"], int) for n in json.loads(r.stdout))
    r = _lsr("lab", "ldp", line.name, "f1", "neighbors")
    assert r.returncode == 0 and re.search(r"OPERATIONAL +│ frr +│ [\w,]+ +│ \d\d:\d\d:\d\d", r.stdout)
    r = _lsr("lab", "ldp", line.name, "f1", "bindings", "--json")
    b = {e["fec"]: e for e in json.loads(r.stdout)["bindings"]}
    assert b["10.255.0.2/32"]["local_label"] == 3  # FRR's own loopback: imp-null -> 3
    assert {x["neighbor"]: x["label"] for x in b["10.255.0.1/32"]["remote"]}["pe1"] == 3


def test_line_ftn_pushes_frr_labels(line):
    """pe1's FTN toward pe2 pushes the label FRR (f1) allocated; f1's own loopback: nothing."""
    f1 = _local(line.name, "f1")
    assert all(lbl >= 16 or lbl == 3 for lbl in f1.values())
    pe1 = {e["fec"]: e["nexthops"] for e in lab.lfib(line.name, ["pe1"])["routers"]["pe1"]["ftn"]}
    assert [(nh["neighbor"], nh["out_labels"]) for nh in pe1["10.255.0.3/32"]] == [
        ("f1", [f1["10.255.0.3/32"]])]
    assert [(nh["neighbor"], nh["out_labels"]) for nh in pe1["192.168.2.0/24"]] == [
        ("f1", [f1["192.168.2.0/24"]])]
    assert [nh["out_labels"] for nh in pe1["10.255.0.2/32"]] == [[]]  # PHP toward FRR
    # FRR marks the mappings it would use (In Use) for next hops that are ours
    fb = {e["fec"]: e for e in frr.bindings(line.name, line.topo, "f1")}
    assert [r for r in fb["10.255.0.3/32"]["remote"] if r["neighbor"] == "pe2"][0]["in_use"]
    assert [r for r in fb["10.255.0.1/32"]["remote"] if r["neighbor"] == "pe1"][0]["in_use"]
    # our dataplane in f1 forwards with FRR's labels: ILM in = FRR's local label, out = ours
    j = lab.lfib(line.name, ["f1"])["routers"]["f1"]
    ilm = {e["fec"]: e for e in j["ilm"]}
    pe2 = _local(line.name, "pe2")
    assert ilm["192.168.2.0/24"]["in_label"] == f1["192.168.2.0/24"]
    assert [(n["neighbor"], n["op"]) for n in ilm["192.168.2.0/24"]["nexthops"]] == [("pe2", "pop")]
    assert pe2["192.168.2.0/24"] == 3
    assert [(n["neighbor"], n["out_labels"]) for n in ilm["10.255.0.1/32"]["nexthops"]] == [
        ("pe1", [])]


def test_line_traffic_through_frr_with_frr_labels(line, tmp_path: Path):
    """ce1 -> ce2 across f1: pe1 pushes FRR's label, our dataplane in f1 pops it (PHP).
    Ping and a TCP transfer both ways; the capture shows FRR's label on pe1-f1."""
    from scapy.contrib.mpls import MPLS
    from scapy.layers.inet import ICMP, IP
    from scapy.utils import rdpcap

    label = _local(line.name, "f1")["192.168.2.0/24"]
    pcap = tmp_path / "pe1-f1.pcap"
    cap = Capture(f"lsr-{line.name}.pe1", "eth2", pcap, "mpls")
    try:
        r = line.run("ce1", ["ping", "-c", "3", "-i", "0.2", "-W", "1", "192.168.2.2"])
        assert r.returncode == 0, r.stdout
        cap.wait(lambda fr: sum(map(icmp_echo_in_mpls, fr)) >= 3, 10, "3 labelled echo requests")
    finally:
        cap.stop()
    echo = [p for p in rdpcap(str(pcap)) if p.haslayer(MPLS) and p.haslayer(ICMP)
            and p[ICMP].type == 8]
    assert len(echo) == 3 and all(p[MPLS].label == label and p[IP].dst == "192.168.2.2"
                                  for p in echo)
    data = os.urandom(256 * 1024)
    src, dst = tmp_path / "tx", tmp_path / "rx"
    src.write_bytes(data)
    ns = f"lsr-{line.name}.ce2"
    srv = subprocess.Popen(["ip", "netns", "exec", ns, "sh", "-c", f"nc -l -p 5001 > {dst}"])
    try:
        wait_tcp_listening(ns, 5001, srv)
        r = line.run("ce1", ["sh", "-c", f"nc -q1 -w5 192.168.2.2 5001 < {src}"], timeout=30)
        assert r.returncode == 0, r.stderr
        srv.wait(timeout=10)
    finally:
        srv.kill()
        srv.wait()
    assert dst.read_bytes() == data


def test_line_sessions_survive_keepalives(line):
    """keepalive_time 6 (FRR accepts >= 15 in its config; the session uses min(ours, theirs))."""
    det = json.loads(frr.vtysh(line.name, "f1", "show mpls ldp neighbor 10.255.0.1 detail json"))
    det = det["10.255.0.1"]
    assert (det["sessionHoldtime"], det["keepAliveInterval"]) == (6, 2)
    def keepalives() -> int:
        return lab.query(line.name, "pe1", "counters")["ldp"]["received"].get("KEEPALIVE", 0)

    t0 = time.monotonic()
    before = {n["lsr_id"]: n for n in lab.ldp(line.name, "pe1", "neighbors")}
    ka0 = keepalives()
    assert before["10.255.0.2"]["keepalive"] == 6
    # 7 KeepAlives from FRR (one every 2 s): over 2 hold times, across which nothing may reset
    wait_for(lambda: keepalives() - ka0 >= 7, 30, "7 KeepAlives from f1", interval=0.5)
    after = {n["lsr_id"]: n for n in lab.ldp(line.name, "pe1", "neighbors")}
    elapsed = time.monotonic() - t0
    assert after["10.255.0.2"]["state"] == "OPERATIONAL"
    # never reset: the session's uptime grew with the time that passed
    assert after["10.255.0.2"]["uptime"] >= before["10.255.0.2"]["uptime"] + elapsed - 1.5
    assert _all_operational(line.name)["f1"] == {"10.255.0.1": "OPERATIONAL",
                                                  "10.255.0.3": "OPERATIONAL"}
    det2 = json.loads(frr.vtysh(line.name, "f1", "show mpls ldp neighbor 10.255.0.1 detail json"))
    ka_rx = [m["keepalive"] for m in det2["10.255.0.1"]["receivedMessages"] if "keepalive" in m]
    assert ka_rx and ka_rx[0] >= 7  # FRR got our KeepAlives every 2 s


# ---------------------------------------------------------------- diamond: FRR on one side


def test_diamond_ecmp_over_ours_and_frr(diamond):
    sess = _all_operational(diamond.name)
    assert set(sess["p2"].values()) == {"OPERATIONAL"} and len(sess["p2"]) == 2
    _check_labels_agree(diamond)
    p1, p2 = _local(diamond.name, "p1"), _local(diamond.name, "p2")
    pe1 = {e["fec"]: e["nexthops"] for e in lab.lfib(diamond.name, ["pe1"])["routers"]["pe1"]["ftn"]}
    assert sorted((nh["neighbor"], nh["out_labels"]) for nh in pe1["10.255.0.4/32"]) == [
        ("p1", [p1["10.255.0.4/32"]]), ("p2", [p2["10.255.0.4/32"]])]
    # pe1-p2 is TCP-MD5 protected (same key both sides)
    det = frr.vtysh(diamond.name, "p2", "show mpls ldp neighbor 10.255.0.1 detail")
    assert "Authentication: TCP MD5 Signature" in det


def test_diamond_link_down_withdraw_release_both_ways(diamond):
    """p1-pe2 fails: its subnet leaves every RIB. We withdraw our label for it from FRR
    (FRR releases), FRR withdraws its label from us (we release); then it comes back."""
    name = diamond.name
    fec = str(diamond.topo.links[3].subnet)  # p1:eth2 - pe2:eth2
    assert diamond.topo.links[3].nodes == ("p1", "pe2")
    assert fec in _remote(name, "p2", "pe1") and fec in _remote(name, "pe1", "p2")
    c0 = lab.query(name, "pe1", "counters")["ldp"]
    log = frr.log_path(name, "p2", "ldpd")
    mark = log.stat().st_size
    lab.link(name, "p1", "pe2", up=False)
    lab.wait_converged(name, timeout=20)
    assert fec not in _remote(name, "p2", "pe1")  # FRR dropped our binding (we withdrew)
    assert fec not in _remote(name, "p2", "pe2")
    assert fec not in _remote(name, "pe1", "p2")  # we dropped FRR's (FRR withdrew)
    c1 = lab.query(name, "pe1", "counters")["ldp"]
    for d in ("sent", "received"):
        for m in ("LABEL_WITHDRAW", "LABEL_RELEASE"):
            assert c1[d].get(m, 0) > c0[d].get(m, 0), (d, m)
    text = log.read_text()[mark:]
    for what in (f"msg[in]: label withdraw: lsr-id 10.255.0.1, fec {fec},",
                 f"msg[out]: label release: lsr-id 10.255.0.1, fec {fec},",
                 f"msg[out]: label withdraw: lsr-id 10.255.0.1, fec {fec},",
                 f"msg[in]: label release: lsr-id 10.255.0.1, fec {fec},"):
        assert what in text, what
    lab.link(name, "p1", "pe2", up=True)
    lab.wait_converged(name, timeout=20)
    assert fec in _remote(name, "p2", "pe1") and fec in _remote(name, "pe1", "p2")
    _check_labels_agree(diamond)


# ---------------------------------------------------------------- ring: FRR in several places


def test_ring_frr_next_to_frr_and_between_ours(ring):
    sess = _all_operational(ring.name)
    assert sess["f2"] == {"10.255.0.1": "OPERATIONAL", "10.255.0.3": "OPERATIONAL"}
    assert sess["f3"] == {"10.255.0.2": "OPERATIONAL", "10.255.0.4": "OPERATIONAL"}
    assert sess["f5"] == {"10.255.0.4": "OPERATIONAL", "10.255.0.6": "OPERATIONAL"}
    _check_labels_agree(ring)  # includes the FRR<->FRR session f2-f3
    # r1 reaches r4 over two equal paths: via f2 (FRR label) and via r6 (ours)
    r1 = {e["fec"]: e["nexthops"] for e in lab.lfib(ring.name, ["r1"])["routers"]["r1"]["ftn"]}
    f2, r6 = _local(ring.name, "f2"), _local(ring.name, "r6")
    assert sorted((nh["neighbor"], nh["out_labels"]) for nh in r1["10.255.0.4/32"]) == [
        ("f2", [f2["10.255.0.4/32"]]), ("r6", [r6["10.255.0.4/32"]])]
    # f2 swaps to f3's label (FRR -> FRR, both forwarding with our dataplane)
    f2_ilm = {e["in_label"]: e for e in lab.lfib(ring.name, ["f2"])["routers"]["f2"]["ilm"]}
    f3 = _local(ring.name, "f3")
    e = f2_ilm[f2["10.255.0.4/32"]]
    assert [(n["neighbor"], n["op"], n["out_labels"]) for n in e["nexthops"]] == [
        ("f3", "swap", [f3["10.255.0.4/32"]])]
    # traffic over both ECMP paths (one through two FRR nodes, one through f5)
    for i in range(4):
        r = ring.run("ce1", ["ping", "-c", "2", "-i", "0.2", "-W", "1", "-p", f"{i:02x}",
                             str(ring.topo.interface("ce2", "eth0").address.ip)])
        assert r.returncode == 0, r.stdout
    fwd = {f: lab.status(ring.name)["routers"][f]["alive"] for f in ("f2", "f3", "f5")}
    assert all(fwd.values())


# ---------------------------------------------------------------- TCP MD5


def test_md5_right_then_wrong_password():
    """Right keys: OPERATIONAL in both TCP roles. Wrong keys (changed on FRR): the kernel
    drops the segments, the sessions stay down, and status says why."""
    name = _name(4)
    pids: list = []
    try:
        L = lab.up(load_topology(DATA / "frr-md5.yaml"), name=name, timeout=40)
        pids = _pids(name)
        assert _all_operational(name)["f1"] == {"10.255.0.1": "OPERATIONAL",
                                                 "10.255.0.3": "OPERATIONAL"}
        for lid in ("10.255.0.1", "10.255.0.3"):  # f1 active to pe1, passive to pe2
            det = json.loads(frr.vtysh(name, "f1", f"show mpls ldp neighbor {lid} detail json"))
            assert det[lid]["authentication"] != "none", det[lid]["authentication"]
        frr.vtysh(name, "f1", "configure terminal", "mpls ldp",
                  "neighbor 10.255.0.1 password wrong-1", "neighbor 10.255.0.3 password wrong-3",
                  "end", "clear mpls ldp neighbor")

        def down_with_reason():
            st = lab.status(name)["routers"]
            ok = all(st[r].get("sessions", {}).get("10.255.0.2") == "NON_EXISTENT"
                     and "MD5 mismatch" in st[r].get("reasons", {}).get("10.255.0.2", "")
                     for r in ("pe1", "pe2"))
            return st if ok and st["pe1"].get("md5_drops") else None

        st = wait_for(down_with_reason, 15, "sessions down with an MD5 reason")
        # It stays down (hello adjacencies still up): the next tries are dropped too.
        drops = st["pe1"]["md5_drops"]
        wait_for(lambda: lab.status(name)["routers"]["pe1"].get("md5_drops", 0) >= drops + 2, 15,
                 "two more segments dropped for MD5 at pe1")
        st = lab.status(name)["routers"]
        assert "OPERATIONAL" not in st["f1"]["sessions"].values()
        assert set(st["f1"]["sessions"]) == {"10.255.0.1", "10.255.0.3"}  # PRESENT: adjacency only
        assert "MD5" in st["f1"]["reasons"]["10.255.0.1"]
        assert st["pe1"]["sessions"]["10.255.0.2"] != "OPERATIONAL"
        nb = lab.ldp(name, "pe2", "neighbors")[0]
        assert nb["state"] == "NON_EXISTENT" and nb["adjacencies"] == ["eth2"]
        r = _lsr("lab", "status", name)
        assert "MD5" in r.stdout
        assert L.topo.nodes["f1"].kind == "frr"
    finally:
        lab.down(name)
    _no_leftovers(name, pids)


# ---------------------------------------------------------------- Wireshark-clean PDUs

LDP_TYPES = {0x0001: "Notification", 0x0100: "Hello", 0x0200: "Initialization",
             0x0201: "KeepAlive", 0x0300: "Address", 0x0400: "Label Mapping",
             0x0402: "Label Withdraw", 0x0403: "Label Release"}


@pytest.mark.skipif(shutil.which("tshark") is None or shutil.which("tcpdump") is None,
                    reason="needs tshark and tcpdump")
def test_capture_tshark_decodes_all_our_messages(tmp_path: Path):
    """Capture pe1<->f1 across a flap of that link (session setup), a flap of f1-pe2
    (withdraw/release/remap) and pe1's shutdown (Notification). tshark must decode every
    message type we send with no malformed packet and no expert warning/error."""
    name = _name(5)
    pids: list = []
    pcap = tmp_path / "pe1-f1.pcap"
    try:
        lab.up(load_topology(DATA / "frr-line.yaml"), name=name, timeout=40)
        pids = _pids(name)
        cap = Capture(f"lsr-{name}.pe1", "eth2", pcap)
        try:
            lab.link(name, "pe1", "f1", up=False)
            lab.link(name, "pe1", "f1", up=True)
            lab.wait_converged(name, timeout=20)
            lab.link(name, "f1", "pe2", up=False)
            lab.wait_converged(name, timeout=20)
            lab.link(name, "f1", "pe2", up=True)
            lab.wait_converged(name, timeout=20)
            log = frr.log_path(name, "f1", "ldpd")
            mark = log.stat().st_size
            os.kill(lab.status(name)["routers"]["pe1"]["pid"], signal.SIGTERM)  # -> Shutdown
            wait_for(lambda: "msg[in]: notification: lsr-id 10.255.0.1, status Shutdown"
                     in log.read_text()[mark:], 5, "FRR to receive our Notification")
            wait_for(lambda: subprocess.run(
                ["tshark", "-r", str(pcap), "-Y", "ldp.msg.type == 0x0001 && ip.src == 10.255.0.1",
                 "-T", "fields", "-e", "frame.number"], capture_output=True, text=True).stdout.strip(),
                10, "our Notification in the capture", interval=0.3)
        finally:
            cap.stop()
    finally:
        lab.down(name)
    _no_leftovers(name, pids)
    ours = {"10.255.0.1", "10.0.0.1"}  # pe1's loopback (TCP) and eth2 (Hellos)
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", "tcp.analyze_sequence_numbers:FALSE", "-Y", "ldp",
         "-T", "fields", "-E", "separator=|", "-e", "frame.number", "-e", "ip.src",
         "-e", "ldp.msg.type", "-e", "_ws.malformed", "-e", "_ws.expert.severity",
         "-e", "_ws.expert.message"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    sent: dict[int, int] = {}
    problems = []
    for line in out.stdout.splitlines():
        num, src, types, malformed, sev, msg = (line.split("|") + [""] * 6)[:6]
        if src not in ours:
            continue
        for t in types.split(","):
            if t:
                sent[int(t, 16)] = sent.get(int(t, 16), 0) + 1
        severities = [int(s) for s in sev.split(",") if s]
        # expert severities: chat 0x200000, note 0x400000, warn 0x600000, error 0x800000
        if malformed or any(s >= 0x600000 for s in severities):
            problems.append(line)
    assert not problems, problems
    assert set(LDP_TYPES) <= set(sent), {LDP_TYPES[t] for t in set(LDP_TYPES) - set(sent)}

"""BGP/MPLS IP VPNs (RFC 4364) in a namespace lab (tests/data/vpn-lab.yaml: l3vpn's two
customers with the same addresses at three sites each, and a raw BGP peer of pe3).

* the PEs' LFIBs, VRF tables and VPN-IPv4 Loc-RIBs equal the simulator's, and `lsr lab
  vrf` / `lsr lab bgp ... vpn` print what `lsr sim vrf` / `lsr sim bgp ... vpn` print;
* every site pings its own VPN's other sites; a ping to the other customer's address
  reaches the host of its own VPN that has it (ICMP counters of both hosts);
* a capture on a core link shows the two labels, [LDP label, VPN label], and
  `traceroute -e` from a CE both labels at the P router (RFC 4950);
* a core link flap and a PE restart: the tables equal the simulator's for each new
  state and the sites ping again; tshark decodes every BGP message of the restart
  (OPEN, VPN-IPv4 UPDATEs, KEEPALIVE, NOTIFICATION) with no malformed or warning item;
* malformed VPN-IPv4 UPDATEs from the raw peer (RFC 7606): treat-as-withdraw takes one
  route out of every VRF and keeps the other and the session; an unparsable
  MP_REACH_NLRI resets the session; pe3 keeps running and its other session up.
"""

from __future__ import annotations

import itertools
import os
import struct
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from bgp import views
from bgp.attrs import AsPath, ExtCommunity, MpReach, PathAttrs
from bgp.messages import KEEPALIVE_BYTES, FourOctetAs, Multiprotocol, Open, Update, encode
from bgp.nlri import IPV4_VPN, Nlri, Rd
from lsr import lab
from lsr.core.topology import host_address, load_topology
from lsr.lab import control
from lsr.lab.state import ns_name
from lsr.sim import Simulation, converge

from .bgp_raw import RawPeer
from .conftest import ROOT, needs_root, needs_tool
from .test_bgp_lab import _tshark_bgp
from .wait import Capture, pcap_frames, wait_for

pytestmark = [needs_root, pytest.mark.netns, pytest.mark.slow]

FILE = ROOT / "tests" / "data" / "vpn-lab.yaml"
TOPO = load_topology(FILE)
NAME = f"{os.environ.get('LSR_TEST_LAB_PREFIX', 'vp')}n{os.getpid() % 10000}"
PE3, RAW, RAW_AS = "10.255.0.3", "10.255.0.99", 65099
OURS = [r.name for r in TOPO.routers]


@pytest.fixture(scope="module")
def vpnlab():
    lab.down(NAME)
    try:
        yield lab.up(TOPO, name=NAME, timeout=90)
    finally:
        lab.down(NAME)


def _lsr(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


def _differences(sim: Simulation, routers: list[str]) -> list[str]:
    """Where the lab's tables differ from the simulation's (empty: equal)."""
    out = []
    want, have = sim.lfib_json(routers)["routers"], lab.lfib(NAME, routers)["routers"]
    out += [f"{r} lfib {k}" for r in routers for k in set(want[r]) | set(have[r])
            if want[r].get(k) != have[r].get(k)]
    pes = [r for r in routers if TOPO.nodes[r].vrfs]
    if lab.vrf(NAME, pes) != sim.vrf_json(pes):
        out.append("vrf")
    for r in routers:
        if r in sim.bgp:
            got = lab.bgp(NAME, r, "vpn")["routers"][r]["routes"]
            if got != views.routes(sim.bgp[r], views.VIEWS["vpn"]):
                out.append(f"{r} bgp vpn")
    return out


def _wait_equal(sim: Simulation, routers: list[str] = OURS, timeout: float = 40) -> None:
    last: list[str] = []

    def same() -> bool:
        last[:] = _differences(sim, routers)
        return not last
    wait_for(same, timeout, lambda: f"the lab's tables to equal the simulator's: {last}")


def _ping(src: str, addr: IPv4Address | str) -> bool:
    r = subprocess.run(["ip", "netns", "exec", ns_name(NAME, src), "ping", "-c", "1", "-W", "2",
                        str(addr)], capture_output=True, timeout=10)
    return r.returncode == 0


def _site_pairs() -> list[tuple[str, str]]:
    hosts = [h.name for h in TOPO.hosts]
    return [(a, b) for a, b in itertools.permutations(hosts, 2)
            if TOPO.vrf_of(a) == TOPO.vrf_of(b)]


def _sites_ping() -> None:
    bad = [(a, b) for a, b in _site_pairs() if not _ping(a, host_address(TOPO, b))]
    assert not bad, f"sites that do not reach each other: {bad}"


def _in_echos(host: str) -> int:
    """ICMP echo requests the host's kernel received (its namespace's /proc/net/snmp)."""
    lines = subprocess.run(["ip", "netns", "exec", ns_name(NAME, host), "cat", "/proc/net/snmp"],
                           capture_output=True, text=True, timeout=10).stdout.splitlines()
    head, vals = [x.split() for x in lines if x.startswith("Icmp:")][:2]
    return int(vals[head.index("InEchos")])


# ---------------------------------------------------------------- tables and views


def test_tables_and_views_equal_the_simulators(vpnlab):
    _wait_equal(converge(TOPO).sim)
    for lab_args, sim_args in [(("vrf", NAME), ("vrf", str(FILE))),
                               (("vrf", NAME, "pe2", "--vrf", "blue"),
                                ("vrf", str(FILE), "pe2", "--vrf", "blue")),
                               (("bgp", NAME, "pe1", "vpn"), ("bgp", str(FILE), "pe1", "vpn")),
                               (("bgp", NAME, "rr", "vpn"), ("bgp", str(FILE), "rr", "vpn")),
                               (("lfib", NAME, "-r", "pe3"), ("lfib", str(FILE), "-r", "pe3"))]:
        a, b = _lsr("lab", *lab_args), _lsr("sim", *sim_args)
        assert a.returncode == 0 == b.returncode, (a.stderr, b.stderr)
        assert a.stdout == b.stdout, (lab_args, a.stdout, b.stdout)
        assert ("VRF red" if lab_args[0] == "lfib" else "10.1.2.0/24") in a.stdout
    a, b = _lsr("lab", "vrf", NAME, "--json"), _lsr("sim", "vrf", str(FILE), "--json")
    assert a.stdout == b.stdout
    sim = converge(TOPO).sim
    for r in ("pe1", "rr"):  # summary: the same neighbours, states, families, prefixes
        keys = ("neighbor", "state", "families", "received", "sent")
        have = [{k: n[k] for k in keys} for n in lab.bgp(NAME, r)["routers"][r]["neighbors"]]
        want = [{k: n[k] for k in keys} for n in views.summary(sim.bgp[r], sim.now)["neighbors"]]
        assert have == want
    from lsr.lab.lsp import validate_live

    res = validate_live(NAME, traceroutes=False)  # expect: and invariants on the live tables
    vpn = {r["check"]: r["status"] for r in res["results"] if "vpn" in r["check"]}
    # 3 expect:, 3 invariants and an RFC 8029 LSP ping of every VPN route
    assert len(vpn) == 7 and set(vpn.values()) == {"pass"}, res["results"]
    assert "vpn-lsp-ping" in vpn
    r = _lsr("lab", "vrf", NAME, "p1")
    assert r.returncode == 2 and r.stderr.strip() == "lsr: p1 has no VRFs", r.stderr
    r = _lsr("lab", "vrf", NAME, "pe1", "--vrf", "green")
    assert r.returncode == 2 and "no VRF named 'green'" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- the dataplane


def test_sites_reach_their_own_vpn_only(vpnlab):
    _sites_ping()
    for a in [h.name for h in TOPO.hosts]:
        for b in [h.name for h in TOPO.hosts if TOPO.vrf_of(h.name) != TOPO.vrf_of(a)]:
            if TOPO.pe_of(a) == TOPO.pe_of(b):
                continue
            addr = host_address(TOPO, b)  # the other customer's site ...
            own = TOPO.node_of_address(addr, TOPO.vrf_of(a))  # ... is one of a's own here
            assert own is not None and own.name != b
            before = _in_echos(own.name), _in_echos(b)
            assert _ping(a, addr), (a, b)
            assert (_in_echos(own.name), _in_echos(b)) == (before[0] + 1, before[1]), (a, b)


def _stack(frame: bytes) -> list[int]:
    labels, off = [], 14
    assert frame[12:14] == b"\x88\x47"
    while True:
        (e,) = struct.unpack_from("!I", frame, off)
        labels.append(e >> 12)
        off += 4
        if e & 0x100:
            return labels


@needs_tool("tcpdump")
def test_a_core_link_carries_two_labels(vpnlab, tmp_path):
    """red1 -> red2 leaves pe1 with [LDP label of pe2's loopback, pe2's VPN label]."""
    vrf = converge(TOPO).sim.vrf_json(["pe1"])["routers"]["pe1"]["vrfs"]["red"]
    (route,) = [e for e in vrf["fib"] if e["prefix"] == "10.1.2.0/24"]
    (nh,) = route["nexthops"]
    assert nh["interface"] == "eth3" and len(nh["out_labels"]) == 2
    pcap = tmp_path / "pe1-p1.pcap"
    cap = Capture(ns_name(NAME, "pe1"), "eth3", pcap, "mpls", count=1)
    try:
        assert _ping("red1", host_address(TOPO, "red2"))
        cap.wait_exit()
    finally:
        cap.stop()
    (frame,) = pcap_frames(pcap)
    assert _stack(frame) == nh["out_labels"] == [nh["out_labels"][0], route["vpn_label"]]
    # traceroute -e from the CE: p1's Time Exceeded quotes both labels (RFC 4950), pe2's
    # the VPN label alone
    tr = subprocess.run(["ip", "netns", "exec", ns_name(NAME, "red1"), "traceroute", "-e", "-n",
                         "-q", "1", str(host_address(TOPO, "red2"))],
                        capture_output=True, text=True, timeout=60).stdout
    top, vpn_label = nh["out_labels"]
    assert f"<MPLS:L={top},E=0,S=0,T=1/L={vpn_label},E=0,S=1,T=1>" in tr, tr
    assert f"<MPLS:L={vpn_label},E=0,S=1,T=1>" in tr, tr
    if subprocess.run(["which", "tshark"], capture_output=True).returncode == 0:
        out = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "mpls.label",
                              "-e", "mpls.bottom", "-e", "icmp.type"],
                             capture_output=True, text=True, timeout=60).stdout.split()
        assert out == [",".join(map(str, nh["out_labels"])), "0,1", "8"], out


# ---------------------------------------------------------------- failures


def test_core_link_flap(vpnlab):
    lab.link(NAME, "p1", "pe2", False)
    try:
        lab.wait_converged(NAME, timeout=40)
        _wait_equal(converge(TOPO, ["p1-pe2"]).sim)
        _sites_ping()
    finally:
        lab.link(NAME, "p1", "pe2", True)
    lab.wait_converged(NAME, timeout=40)
    _wait_equal(converge(TOPO).sim)
    _sites_ping()


def test_a_site_link_down_in_the_kernel(vpnlab):
    """red2's link down by carrier (ip link in pe2's namespace): pe2 withdraws red2's
    subnet (its VRF lost the connected route), the tables equal the simulator's with that
    link down, and validate expects red2 cut off, not a failure (names it)."""
    from lsr.lab.lsp import validate_live

    assert lab.exec_in(NAME, "pe2", ["ip", "link", "set", "eth1", "down"]) == 0
    try:
        _wait_equal(converge(TOPO, ["red2-pe2"]).sim)
        v = validate_live(NAME, traceroutes=False)
        assert v["failed"] == 0, [r for r in v["results"] if r["status"] == "fail"]
        (row,) = [r for r in v["results"] if r["check"] == "invariant vpn-reachability"]
        assert "red2 cut off (link red2-pe2 down)" in row["detail"]
    finally:
        assert lab.exec_in(NAME, "pe2", ["ip", "link", "set", "eth1", "up"]) == 0
    _wait_equal(converge(TOPO).sim)
    _sites_ping()


def _stopped_sim(router: str) -> Simulation:
    sim = converge(TOPO).sim
    sim.router_stop(router)
    sim.run(quiet=sim.quiet_time())
    return sim


@needs_tool("tcpdump")
def test_pe_restart_and_tshark_decodes_every_bgp_message(vpnlab, tmp_path):
    """pe2 stopped (Cease to the reflector), the others' VRFs lose its sites; started
    again (OPEN, KEEPALIVE, VPN-IPv4 UPDATEs): the tables of the converged lab again."""
    pcaps = [tmp_path / "rr-eth1.pcap", tmp_path / "rr-eth2.pcap"]
    caps = [Capture(ns_name(NAME, "rr"), f"eth{k}", p, "tcp", "port", "179")
            for k, p in enumerate(pcaps, 1)]
    try:
        control.node_stop(NAME, "pe2")
        others = [r for r in OURS if r != "pe2"]
        _wait_equal(_stopped_sim("pe2"), others)
        assert _ping("red1", host_address(TOPO, "red3"))
        assert not _ping("red1", host_address(TOPO, "red2"))
        control.node_start(NAME, "pe2", timeout=60)
        _wait_equal(converge(TOPO).sim)
        _sites_ping()
    finally:
        for c in caps:
            c.stop()
    if subprocess.run(["which", "tshark"], capture_output=True).returncode != 0:
        pytest.skip("tshark not installed: the capture is not decoded")
    ours = {str(r.lsr_id) for r in TOPO.routers}
    sent: dict[int, int] = {}
    for p in pcaps:
        got, problems = _tshark_bgp(p, ours)
        assert not problems, problems
        for t, n in got.items():
            sent[t] = sent.get(t, 0) + n
    assert {1, 2, 3, 4} <= set(sent), sent  # OPEN, UPDATE, NOTIFICATION, KEEPALIVE
    fields = subprocess.run(["tshark", "-r", str(pcaps[0]), "-Y", "bgp", "-T", "fields",
                             "-e", "bgp.rd", "-e", "bgp.mp_reach_nlri_ipv4_prefix"],
                            capture_output=True, text=True, timeout=60).stdout
    assert "10.255.0.2:1" in fields and "10.1.2.0" in fields  # pe2's VPN routes, decoded


# ---------------------------------------------------------------- bad input (RFC 7606)


def _peer(router: str, neighbor: str) -> dict[str, Any]:
    (n,) = [n for n in lab.bgp(NAME, router)["routers"][router]["neighbors"]
            if n["neighbor"] == neighbor]
    return n


def _red(router: str) -> dict[str, dict[str, Any]]:
    v = lab.vrf(NAME, [router], "red")["routers"][router]["vrfs"]["red"]
    return {e["prefix"]: e for e in v["fib"]}


P1, P2 = IPv4Network("10.77.0.0/16"), IPv4Network("10.78.0.0/16")
RD = Rd.parse("65099:1")


def _vpn_update(*prefixes: IPv4Network) -> bytes:
    attrs = PathAttrs(as_path=AsPath(((2, (RAW_AS,)),)),
                      ext_communities=(ExtCommunity.route_target("65000:1"),))
    nlri = tuple((Nlri(p, RD), 7000 + k) for k, p in enumerate(prefixes, 1))
    return encode(Update(attrs=attrs, mp_reach=MpReach(IPV4_VPN, IPv4Address(RAW), nlri)))


def _attr_value(msg: bytes, code: int) -> int:
    """Where the value of path attribute `code` starts in an UPDATE message."""
    (wlen,) = struct.unpack_from("!H", msg, 19)
    off = 19 + 2 + wlen + 2
    while True:
        flags, t = msg[off], msg[off + 1]
        ext = bool(flags & 0x10)  # extended length: two octets
        n = struct.unpack_from("!H", msg, off + 2)[0] if ext else msg[off + 2]
        start = off + (4 if ext else 3)
        if t == code:
            return start
        off = start + n


def test_malformed_vpn_updates_per_rfc7606(vpnlab):
    pid = lab.status(NAME)["routers"]["pe3"]["pid"]
    wait_for(lambda: _peer("pe3", "raw")["state"] == "Active", 30, "pe3 waiting for raw")
    rr_ups = _peer("pe3", "rr")["established"]
    peer = RawPeer(ns_name(NAME, "raw"), RAW, PE3, ttl=64)
    try:
        peer.wait_connected()
        peer.send(encode(Open(RAW_AS, 0, IPv4Address(RAW),
                              (Multiprotocol(1, 128), FourOctetAs(RAW_AS)))))
        peer.wait_type(1)
        peer.wait_type(4)
        peer.send(KEEPALIVE_BYTES)
        wait_for(lambda: _peer("pe3", "raw")["state"] == "Established", 10, "raw Established")
        peer.send(_vpn_update(P1, P2))
        # into red on every PE (pe3 reflects them to rr), over LDP's LSP to raw's loopback
        wait_for(lambda: {str(P1), str(P2)} <= set(_red("pe1")), 20, "raw's routes in pe1's red")
        assert _red("pe1")[str(P1)]["pe"] == RAW and _red("pe1")[str(P1)]["vpn_label"] == 7001
        assert str(P1) not in {e["prefix"] for e in
                               lab.vrf(NAME, ["pe1"], "blue")["routers"]["pe1"]["vrfs"]["blue"]["fib"]}

        # RFC 7606 §7.1: ORIGIN 3 -> treat-as-withdraw: P1 leaves every VRF, P2 and the
        # session stay
        bad = bytearray(_vpn_update(P1))
        bad[_attr_value(bytes(bad), 1)] = 3
        peer.send(bytes(bad))
        wait_for(lambda: str(P1) not in _red("pe1") and str(P1) not in _red("pe3"), 10,
                 "P1 withdrawn from the VRFs")
        assert str(P2) in _red("pe1") and str(P2) in _red("pe2")
        raw = _peer("pe3", "raw")
        assert raw["state"] == "Established" and raw["treated_as_withdraw"] == 1

        # RFC 7606 §3 j) / §7.11: an MP_REACH_NLRI whose NLRI cannot be parsed (a prefix
        # length past the attribute's end) -> session reset, 3/9 (Optional Attribute Error)
        broken = bytearray(_vpn_update(P2))
        # AFI, SAFI, next hop length, next hop (RD + IPv4), reserved: then the NLRI
        broken[_attr_value(bytes(broken), 14) + 4 + 12 + 1] = 250  # bits past the end
        peer.send(bytes(broken))
        note = peer.wait_type(3)
        assert note[19:21] == bytes([3, 9]), note.hex()
        peer.wait_eof()
    finally:
        peer.close()
    wait_for(lambda: str(P2) not in _red("pe1"), 20, "raw's routes gone with its session")
    st = lab.status(NAME)["routers"]["pe3"]
    assert st["alive"] and st["pid"] == pid
    assert _peer("pe3", "rr")["state"] == "Established"
    assert _peer("pe3", "rr")["established"] == rr_ups  # the other session never dropped
    _wait_equal(converge(TOPO).sim)
    _sites_ping()

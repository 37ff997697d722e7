"""RFC 8029 LSP ping / traceroute of IPv6 FECs in namespace labs: the BGP labeled IPv6 FEC
(§3.2.14) of 6PE routes (topologies/6pe.yaml) and the VPN IPv6 FEC (§3.2.6) of 6VPE
routes (topologies/6vpe.yaml).

* ping and traceroute answer 3 from the egress at FEC stack depth 2, hop by hop what the
  simulator says (router, return code, subcode, labels, interface, address); the
  requests are IPv6 (::ffff:127.0.0.1, from ::ffff:<ingress loopback>) under the
  route's labels, the replies IPv4 from the replier's core address (lsr.oam.echo6);
* the egress validates: a prefix it does not originate is 4, a VPN FEC under its 6PE
  label 10;
* tshark decodes the requests on a core link (both labels, IPv6, the IPv6 FEC) and the
  replies with no malformed item and no expert warning or error;
* the 6PE core link p1-p2 down (`lsr lab link NAME p1 p2 down`): ping and traceroute
  fail and name it; up again: the egress answers 3 again;
* 6VPE through failures: the p1-p2 link down inside p2's namespace (`ip link`), then p2's
  runtime stopped and started: broken while each lasts, naming the cause; after, equal to
  the simulator again;
* `lsr lab validate` pings every 6PE route (sixpe-lsp-ping) and 6VPE route
  (vpn-lsp-ping);
* a multipath traceroute of a 6PE route over ECMP at the ingress and at a P router
  (tests/sixpe_ecmp.py) finds the simulator's four paths with ::ffff:127/104
  destinations and IPv6 bit-masked multipath data both ways (RFC 8029 §3.4.1.1.1), which
  tshark decodes with no malformed item.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from ipaddress import IPv4Network, IPv6Network

import pytest

from tests import sixpe_ecmp
from tests.conftest import TOPOLOGIES, is_root, needs_tool
from tests.wait import Capture, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab.lsp import LabSender, validate_live
    from lsr.lab.state import ns_name
    from lsr.oam.echo import BgpIpv6Fec, LdpIpv4Fec, VpnIpv6Fec
    from lsr.oam.lspping import fib6s_from_json, lfib_network, lsp_ping, lsp_traceroute
    from lsr.oam.responder import SixpeTarget, VpnTarget
    from lsr.oam.trace import ping
    from lsr.oam.validate import lfibs_from_json
    from lsr.sim import simulate

PREFIX = os.environ.get("LSR_TEST_LAB_PREFIX", "vo")
SIXPE = f"{PREFIX}p{os.getpid() % 1000}"
SIXVPE = f"{PREFIX}v{os.getpid() % 1000}"
MP6 = f"mp6{PREFIX}{os.getpid() % 1000}"  # the 6PE ECMP lab
CE1 = IPv6Network("2001:db8:1::/64")
CE2 = IPv6Network("2001:db8:2::/64")
SITE2 = IPv6Network("2001:db8:1:2::/64")


def _up(name: str, file: str):
    topo = load_topology(TOPOLOGIES / file)
    lab.up(topo, name=name, timeout=60)
    sim, _ = simulate(topo)
    doc = sim.lfib_json()
    return topo, lfib_network(topo, lfibs_from_json(doc), fib6s_from_json(doc))


@pytest.fixture(scope="module")
def six():
    try:
        yield _up(SIXPE, "6pe.yaml")
    finally:
        lab.down(SIXPE)


@pytest.fixture(scope="module")
def sixv():
    try:
        yield _up(SIXVPE, "6vpe.yaml")
    finally:
        lab.down(SIXVPE)


@pytest.fixture(scope="module")
def ecmp6():
    topo = sixpe_ecmp.topology()
    try:
        lab.up(topo, name=MP6, timeout=60)
        sim, _ = simulate(topo)
        doc = sim.lfib_json()
        yield topo, lfib_network(topo, lfibs_from_json(doc), fib6s_from_json(doc))
    finally:
        lab.down(MP6)


def _hops(out: dict) -> list[tuple]:
    return [(h["ttl"], h["router"], h["return_code"], h["return_subcode"], tuple(h["labels"]),
             h["interface"], h["address"], h["expected_router"]) for h in out["hops"]]


def _same_but_rtt(lab_out: dict, sim_out: dict) -> None:
    """The lab's JSON is the simulator's but for round-trip times and the back end."""
    def strip(o: dict) -> dict:
        o = json.loads(json.dumps(o))
        o.pop("backend")
        o.pop("rtt_ms", None)
        for h in o.get("hops", []) + o.get("replies", []):
            h.pop("rtt_ms")
        return o
    assert strip(lab_out) == strip(sim_out)


def _ready(name: str, ingress: str, target) -> None:
    """BGP's 6PE / VPN routes reach the ingress a little after LDP converged."""
    s = LabSender(name)
    wait_for(lambda: lsp_ping(s, ingress, target)["result"] == "ok", 30,
             f"{ingress}'s LSP ping of {target} answered 3", interval=0.3)


def test_6pe_ping_and_traceroute_equal_the_simulator(six):
    topo, sim = six
    s = LabSender(SIXPE)
    for src, t, label in (("pe1", SixpeTarget(CE2), 4000), ("pe2", SixpeTarget(CE1), 2)):
        _ready(SIXPE, src, t)
        out = lsp_ping(s, src, t, count=3)
        assert out["result"] == "ok", out
        assert [(r["router"], r["return_code"], r["return_subcode"]) for r in out["replies"]] \
            == [(t.prefix == CE2 and "pe2" or "pe1", 3, 2)] * 3
        assert all(r["rtt_ms"] is not None for r in out["replies"])
        assert out["sixpe"]["label"] == label and out["fec_type"] == "bgp-ipv6"
        _same_but_rtt(out, lsp_ping(sim, src, t, count=3))
        tr = lsp_traceroute(s, src, t)
        assert tr["result"] == "ok", tr
        _same_but_rtt(tr, lsp_traceroute(sim, src, t))
        assert [h["return_code"] for h in tr["hops"]] == [8, 8, 3]
        assert tr["hops"][1]["labels"] == [3, label]  # the PHP router sends the 6PE label on
        mp = lsp_traceroute(s, src, t, multipath=True)
        _same_but_rtt(mp, lsp_traceroute(sim, src, t, multipath=True))


def test_6pe_egress_validates_prefix_and_label(six):
    s = LabSender(SIXPE)
    _ready(SIXPE, "pe1", SixpeTarget(CE2))
    over = s.sender("pe1", SixpeTarget(CE2))  # [LDP label, pe2's 6PE label 4000] on the wire
    pe2 = LdpIpv4Fec(IPv4Network("10.255.0.4/32"))
    for fec, code in ((BgpIpv6Fec(CE2), 3), (BgpIpv6Fec(IPv6Network("2001:db8:99::/64")), 4),
                      (VpnIpv6Fec.from_text("10.255.0.4:1", CE2), 10)):
        res = ping(over, SixpeTarget(CE2), "pe1", handle=0x6161, fecs=(pe2, fec))
        assert [(r["router"], r["return_code"], r["return_subcode"]) for r in res.replies] \
            == [("pe2", code, 2)], fec


def test_6vpe_ping_and_traceroute_equal_the_simulator(sixv):
    topo, sim = sixv
    s = LabSender(SIXVPE)
    for src, t in (("pe1", VpnTarget("red", SITE2)), ("pe1", VpnTarget("blue", SITE2)),
                   ("pe2", VpnTarget("red", IPv6Network("2001:db8:1:1::/64")))):
        _ready(SIXVPE, src, t)
        out = lsp_ping(s, src, t, count=2)
        assert out["result"] == "ok" and out["fec_type"] == "vpn-ipv6", out
        _same_but_rtt(out, lsp_ping(sim, src, t, count=2))
        tr = lsp_traceroute(s, src, t)
        assert tr["result"] == "ok", tr
        _same_but_rtt(tr, lsp_traceroute(sim, src, t))
    # the egress checks the RD: red's RD over blue's labels is 10, an unknown RD 4
    over_blue = s.sender("pe1", VpnTarget("blue", SITE2))
    pe2 = LdpIpv4Fec(IPv4Network("10.255.0.2/32"))
    for rd, code in (("10.255.0.2:2", 3), ("10.255.0.2:1", 10), ("10.255.0.2:7", 4)):
        res = ping(over_blue, VpnTarget("blue", SITE2), "pe1", handle=0x6262,
                   fecs=(pe2, VpnIpv6Fec.from_text(rd, SITE2)))
        assert [(r["router"], r["return_code"]) for r in res.replies] == [("pe2", code)], rd


def _decode(pcap) -> str:
    return subprocess.run(["tshark", "-r", str(pcap), "-V"], capture_output=True, text=True).stdout


def _clean(pcap) -> str:
    res = subprocess.run(["tshark", "-r", str(pcap), "-V"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    dec = res.stdout
    assert "Malformed" not in dec
    assert "Expert Info (Warning" not in dec and "Expert Info (Error" not in dec
    summary = subprocess.run(["tshark", "-r", str(pcap), "-q", "-z", "expert"],
                             capture_output=True, text=True, check=True).stdout
    assert "Malformed" not in summary and "Error" not in summary, summary
    return dec


@needs_tool("tshark")
@needs_tool("tcpdump")
def test_tshark_decodes_ipv6_fec_echo_on_core_links(six, sixv, tmp_path):
    for name, target, needed in (
        (SIXPE, ("pe1", SixpeTarget(CE2)),
         ("FEC Element 2: BGP labeled IPv6 prefix", "IPv6 Prefix: 2001:db8:2::",
          "Destination Address: ::ffff:127.0.0.1", "Source Address: ::ffff:10.255.0.1",
          "Router Alert", "MPLS Label: 4000", "MPLS Echo Reply",
          "Replying router is an egress for the FEC", "Label switched at stack-depth")),
        (SIXVPE, ("pe1", VpnTarget("red", SITE2)),
         ("FEC Element 2: VPN IPv6 prefix", "Route Distinguisher: 00010aff00020001",
          "IPv6 Prefix: 2001:db8:1:2::", "Destination Address: ::ffff:127.0.0.1",
          "MPLS Echo Reply", "Replying router is an egress for the FEC")),
    ):
        pcap = tmp_path / f"{name}.pcap"
        cap = Capture(ns_name(name, "p2"), "eth1", pcap)  # p1 - p2: [LDP, bottom label]
        try:
            s = LabSender(name)
            _ready(name, *target)
            assert lsp_traceroute(s, *target)["result"] == "ok"
            assert lsp_ping(s, *target, count=2)["result"] == "ok"
            wait_for(lambda n=needed, p=pcap: all(x in _decode(p) for x in n), 20,
                     f"{name}: the IPv6 FEC echo requests and replies in the capture",
                     interval=0.3)
        finally:
            cap.stop()
        dec = _clean(pcap)
        assert "MPLS Bottom Of Label Stack: 0" in dec and "MPLS Bottom Of Label Stack: 1" in dec


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120)


def test_core_link_down_names_what_broke_then_egress_again(six):
    _ready(SIXPE, "pe1", SixpeTarget(CE2))
    down = _cli("lab", "link", SIXPE, "p1", "p2", "down")
    assert down.returncode == 0, down.stderr
    try:
        def broken():
            r = _cli("lsp", "traceroute", SIXPE, "pe1", "ce2", "-6", "--json", "--wait", "0.5")
            return r.returncode == 1 and json.loads(r.stdout)
        out = wait_for(broken, 30, "pe1's 6PE LSP to ce2 broken", interval=0.5)
        assert out["result"] == "broken" and out["broken_at"]["router"] == "pe1", out
        assert "no IGP path from pe1 to 10.255.0.4/32 with link p1-p2 down" in out["reason"], out
        table = _cli("lsp", "ping", SIXPE, "pe1", "2001:db8:2::/64", "--wait", "0.5")
        assert table.returncode == 1 and "p1-p2 down" in " ".join(table.stdout.split())
    finally:
        up = _cli("lab", "link", SIXPE, "p1", "p2", "up")
        assert up.returncode == 0, up.stderr
    _ready(SIXPE, "pe1", SixpeTarget(CE2))
    r = _cli("lsp", "ping", SIXPE, "pe1", "ce2", "-6", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["replies"][0]["router"] == "pe2"


def test_lab_validate_pings_every_6pe_and_6vpe_route(six, sixv):
    _ready(SIXPE, "pe2", SixpeTarget(CE1))
    out = validate_live(SIXPE)
    assert out["failed"] == 0, [r for r in out["results"] if r["status"] == "fail"]
    rows = {r["check"]: r for r in out["results"]}
    assert rows["6pe-ping"]["status"] == "pass"  # hosts' ping -6 across the core too
    assert rows["sixpe-lsp-ping"]["status"] == "pass", out["results"]
    assert rows["sixpe-lsp-ping"]["detail"].startswith("2 6PE routes")
    _ready(SIXVPE, "pe2", VpnTarget("blue", IPv6Network("2001:db8:1:1::/64")))
    out = validate_live(SIXVPE)
    assert out["failed"] == 0, [r for r in out["results"] if r["status"] == "fail"]
    rows = {r["check"]: r for r in out["results"]}
    assert rows["vpn-lsp-ping"]["status"] == "pass", out["results"]
    assert rows["vpn-lsp-ping"]["detail"].startswith("8 VPN routes (4 IPv6)")


def test_6vpe_through_ip_link_and_a_router_restart(sixv):
    """The p1-p2 link taken down inside p2's namespace (`ip link set`, the lab learns it
    from netlink), then p2's runtime stopped and started (`lab node`): while each lasts the
    6VPE LSP ping and traceroute fail and name the cause (pe1's VRF lost the route, and
    why); after it the egress answers 3 again and the answers equal the simulator's."""
    from lsr.lab.control import node_start, node_stop

    topo, sim = sixv
    s = LabSender(SIXVPE)
    t = VpnTarget("red", SITE2)
    _ready(SIXVPE, "pe1", t)

    def broken_with(cause: str) -> dict:
        def check():
            out = lsp_traceroute(s, "pe1", t)
            return out["result"] == "broken" and cause in (out["reason"] or "") and out
        return wait_for(check, 60, f"pe1's 6VPE LSP broken, naming {cause!r}", interval=0.5)

    def ip_link(state: str) -> None:
        subprocess.run(["ip", "netns", "exec", ns_name(SIXVPE, "p2"), "ip", "link", "set",
                        "dev", "eth1", state], check=True)
    ip_link("down")
    try:
        out = broken_with("no IGP path from pe1 to 10.255.0.2/32 with link p1-p2 down")
        assert out["reason"].startswith(f"pe1's VRF red has no route to {SITE2}"), out
        assert lsp_ping(s, "pe1", t)["result"] != "ok"
    finally:
        ip_link("up")
    _ready(SIXVPE, "pe1", t)
    _same_but_rtt(lsp_traceroute(s, "pe1", t), lsp_traceroute(sim, "pe1", t))
    node_stop(SIXVPE, "p2")
    try:
        broken_with("p2")
    finally:
        node_start(SIXVPE, "p2")
    _ready(SIXVPE, "pe1", t)
    _same_but_rtt(lsp_traceroute(s, "pe1", t), lsp_traceroute(sim, "pe1", t))
    _same_but_rtt(lsp_ping(s, "pe1", t, count=2), lsp_ping(sim, "pe1", t, count=2))


@needs_tool("tshark")
@needs_tool("tcpdump")
def test_6pe_multipath_traceroute_over_ecmp_is_ipv6_and_decodes(ecmp6, tmp_path):
    """pe1 -> pe2 over two ECMP stages: the lab's multipath traceroute is the simulator's
    (four paths), its requests go to several ::ffff:127/104 destinations with IPv6
    bit-masked data (type 8: a 16-octet prefix, which Wireshark 4.0 shows as "IP Address:
    0.0.0.0" and a mask starting 000000000000ffff7f...), the replies answer in kind, and
    tshark finds nothing malformed. Captured on p3's links to p1 and p2, which every
    request past p1 / p2 and every reply from p3 on crosses."""
    topo, sim = ecmp6
    t = SixpeTarget(sixpe_ecmp.CE2)
    _ready(MP6, "pe1", t)
    pcaps = [tmp_path / f"mp6-{i}.pcap" for i in ("eth1", "eth2")]
    caps = [Capture(ns_name(MP6, "p3"), p.stem[4:], p, "mpls or udp port 3503") for p in pcaps]
    try:
        mp = lsp_traceroute(LabSender(MP6), "pe1", t, multipath=True)
        wait_for(lambda: sum(_decode(p).count("MPLS Echo Reply") for p in pcaps) >= 7, 20,
                 "the multipath traceroute's replies from p3, p4, p5 and pe2", interval=0.3)
    finally:
        for c in caps:
            c.stop()
    assert mp["result"] == "ok", mp
    assert sorted(p["routers"] for p in mp["paths"]) == sorted(sixpe_ecmp.PATHS)
    _same_but_rtt(mp, lsp_traceroute(sim, "pe1", t, multipath=True))
    frames = [f for p in pcaps for f in _clean(p).split("\nFrame ")]
    for kind in ("MPLS Echo Request", "MPLS Echo Reply"):
        with_mp = [f for f in frames if f"Message Type: {kind}" in f
                   and "Multipath Information (IP address prefix and bit mask)" in f]
        assert with_mp, f"no {kind} with multipath data"
        assert all("Mask: 000000000000ffff7f" in f for f in with_mp), kind  # ::ffff:127/104
    dsts = set(re.findall(r"Destination Address: (\S+)", "".join(
        f for f in frames if "Message Type: MPLS Echo Request" in f)))
    assert len(dsts) > 1 and all(d.startswith("::ffff:127.0.0.") for d in dsts), dsts

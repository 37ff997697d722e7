"""RFC 8029 LSP ping / traceroute of VPN IPv4 FECs in a namespace lab (topologies/l3vpn.yaml:
red and blue use the same prefixes at three sites each).

* from pe1 to red's and blue's site 3 (the same 10.1.3.0/24): ping and traceroute answer
  3 from pe3 at FEC stack depth 2, each over its own VPN label with its own RD, hop by
  hop what the simulator says; p2 pops the LDP label and reports the VPN label under it;
  the reply comes from pe3's core address (RFC 8029 §4.5), not from inside a VRF;
* pe3 validates in the VRF the RD names: red's FEC over blue's VPN label is 10, an RD
  it has no VRF for is 4;
* tshark decodes the requests and replies (two FECs, the VPN IPv4 one with its RD) with
  no malformed or warning item;
* `lsr lab validate` pings every VPN route (`vpn-lsp-ping`).
"""

from __future__ import annotations

import os
import subprocess
from ipaddress import IPv4Network

import pytest

from tests.conftest import TOPOLOGIES, is_root, needs_tool
from tests.wait import Capture, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab.lsp import LabSender, validate_live
    from lsr.lab.state import ns_name
    from lsr.oam.echo import LdpIpv4Fec, VpnIpv4Fec
    from lsr.oam.lspping import lfib_network, lsp_ping, lsp_traceroute, resolve_target
    from lsr.oam.responder import VpnTarget
    from lsr.oam.trace import ping
    from lsr.oam.validate import lfibs_from_json
    from lsr.sim import simulate

NAME = f"{os.environ.get('LSR_TEST_LAB_PREFIX', 'vq')}v{os.getpid() % 1000}"
SITE3 = IPv4Network("10.1.3.0/24")


@pytest.fixture(scope="module")
def vlab():
    topo = load_topology(TOPOLOGIES / "l3vpn.yaml")
    try:
        lab.up(topo, name=NAME, timeout=60)
        sim, _ = simulate(topo)
        yield topo, lfib_network(topo, lfibs_from_json(sim.lfib_json()))
    finally:
        lab.down(NAME)


def _hops(out: dict) -> list[tuple]:
    return [(h["ttl"], h["router"], h["return_code"], h["return_subcode"], tuple(h["labels"]),
             h["interface"], h["address"]) for h in out["hops"]]


def test_same_prefix_in_two_vpns_each_answered_from_its_own_vrf(vlab):
    topo, sim = vlab
    s = LabSender(NAME)
    pe3_core = {str(i.address.ip): i.name for i in topo.nodes["pe3"].interfaces.values()
                if i.vrf is None}
    seen = {}
    for site in ("red3", "blue3"):
        t = resolve_target(topo, "pe1", site)
        out = lsp_ping(s, "pe1", t, count=3)
        assert out["result"] == "ok", out
        assert [(r["router"], r["return_code"], r["return_subcode"]) for r in out["replies"]] \
            == [("pe3", 3, 2)] * 3
        assert all(r["rtt_ms"] is not None for r in out["replies"])
        assert out["vpn"] == lsp_ping(sim, "pe1", t)["vpn"]
        seen[site] = out["vpn"]
        tr = lsp_traceroute(s, "pe1", t)
        assert tr["result"] == "ok", tr
        assert _hops(tr) == _hops(lsp_traceroute(sim, "pe1", t))
        (p2, pe3) = tr["hops"]
        assert p2["router"] == "p2" and p2["labels"] == [3, out["vpn"]["vpn_label"]]
        # RFC 8029 §4.5: the reply is IP from pe3's core interface, not from a VRF port
        assert pe3_core.get(pe3["address"]) == pe3["interface"] == "eth3"
    assert seen["red3"]["rd"] == "10.255.0.3:1" and seen["blue3"]["rd"] == "10.255.0.3:2"
    assert seen["red3"]["vpn_label"] != seen["blue3"]["vpn_label"]
    # neighbouring PEs (one label) and multipath: the simulator's branches, live
    for src, site in (("pe2", "blue3"), ("pe2", "red1"), ("pe3", "blue1")):
        t = resolve_target(topo, src, site)
        mp = lsp_traceroute(s, src, t, multipath=True)
        assert mp["result"] == "ok", mp
        assert mp["paths"] == lsp_traceroute(sim, src, t, multipath=True)["paths"]


def test_egress_validates_the_fec_in_the_vrf_its_rd_names(vlab):
    topo, _ = vlab
    s = LabSender(NAME)
    over_blue = s.sender("pe1", VpnTarget("blue", SITE3))  # blue's two labels on the wire
    pe3 = LdpIpv4Fec(IPv4Network("10.255.0.3/32"))
    for rd, code in (("10.255.0.3:2", 3), ("10.255.0.3:1", 10), ("10.255.0.3:7", 4)):
        res = ping(over_blue, VpnTarget("blue", SITE3), "pe1", handle=0x5151,
                   fecs=(pe3, VpnIpv4Fec.from_text(rd, SITE3)))
        assert [(r["router"], r["return_code"], r["return_subcode"]) for r in res.replies] \
            == [("pe3", code, 2)], rd


@needs_tool("tshark")
@needs_tool("tcpdump")
def test_tshark_decodes_vpn_echo_requests_and_replies(vlab, tmp_path):
    topo, _ = vlab
    pcap = tmp_path / "core.pcap"
    cap = Capture(ns_name(NAME, "p2"), "eth1", pcap)  # pe1 - p2
    needed = ("MPLS Echo Request", "MPLS Echo Reply", "FEC Element 2: VPN IPv4 prefix",
              "Route Distinguisher: 00010aff00030001", "Route Distinguisher: 00010aff00030002",
              "Replying router is an egress for the FEC", "Label switched at stack-depth")

    def decoded() -> str:
        return subprocess.run(["tshark", "-r", str(pcap), "-V"], capture_output=True,
                              text=True).stdout
    try:
        s = LabSender(NAME)
        for site in ("red3", "blue3"):
            t = resolve_target(topo, "pe1", site)
            assert lsp_traceroute(s, "pe1", t, multipath=True)["result"] == "ok"
            assert lsp_ping(s, "pe1", t, count=2)["result"] == "ok"
        wait_for(lambda: all(x in decoded() for x in needed), 20,
                 "the VPN echo requests and replies in the capture", interval=0.3)
    finally:
        cap.stop()
    res = subprocess.run(["tshark", "-r", str(pcap), "-V"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    dec = res.stdout
    assert "Malformed" not in dec
    assert "Expert Info (Warning" not in dec and "Expert Info (Error" not in dec
    # the requests carry both labels, the VPN label at the bottom
    assert "MPLS Bottom Of Label Stack: 0" in dec and "MPLS Bottom Of Label Stack: 1" in dec


def test_lab_validate_pings_every_vpn_route(vlab):
    out = validate_live(NAME)
    assert out["failed"] == 0, [r for r in out["results"] if r["status"] == "fail"]
    rows = [r for r in out["results"] if r["check"] == "vpn-lsp-ping"]
    assert [r["status"] for r in rows] == ["pass"] and rows[0]["detail"].startswith("12 VPN routes")

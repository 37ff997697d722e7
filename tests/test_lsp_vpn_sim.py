"""LSP ping / traceroute of VPN IPv4 FECs (RFC 8029 §3.2.5) in the simulator, on l3vpn:
two customers with the same prefixes at three sites; the egress PE validates the RD and
prefix against its VRFs and the VPN label it allocated (§4.4)."""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Network

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.topology import load_topology, parse_topology
from lsr.errors import LsrError
from lsr.oam.echo import FLAG_V, EchoMessage, LdpIpv4Fec, MessageType, TargetFecStack, VpnIpv4Fec
from lsr.oam.lspping import lfib_network, lsp_ping, lsp_traceroute, resolve_target
from lsr.oam.responder import VpnTarget, respond, tables_from_topology
from lsr.oam.trace import ping
from lsr.oam.validate import lfibs_from_json
from lsr.sim import simulate
from tests.conftest import TOPOLOGIES

L3VPN = TOPOLOGIES / "l3vpn.yaml"
SITE3 = IPv4Network("10.1.3.0/24")


@pytest.fixture(scope="module")
def l3vpn():
    topo = load_topology(L3VPN)
    sim, res = simulate(topo)
    assert res.converged
    return topo, lfibs_from_json(sim.lfib_json())


def _codes(out: dict) -> list[tuple[str | None, int | None, int]]:
    return [(r["router"], r["return_code"], r["return_subcode"]) for r in out["replies"]]


def test_same_prefix_in_two_vpns_each_answered_by_its_own_vrf(l3vpn):
    topo, lfibs = l3vpn
    net = lfib_network(topo, lfibs)
    red = lsp_ping(net, "pe1", resolve_target(topo, "pe1", "red3"), count=2)
    blue = lsp_ping(net, "pe1", resolve_target(topo, "pe1", "blue3"))
    # egress at FEC stack depth 2: the VPN IPv4 FEC under pe3's LDP FEC
    assert red["result"] == "ok" and _codes(red) == [("pe3", 3, 2), ("pe3", 3, 2)]
    assert blue["result"] == "ok" and _codes(blue) == [("pe3", 3, 2)]
    assert red["fec"] == blue["fec"] == "10.1.3.0/24"
    assert red["vpn"]["rd"] == "10.255.0.3:1" and blue["vpn"]["rd"] == "10.255.0.3:2"
    assert red["vpn"]["egress"] == blue["vpn"]["egress"] == "pe3"
    assert red["vpn"]["vpn_label"] != blue["vpn"]["vpn_label"]
    assert lsp_ping(net, "pe1", topo_fec(topo))["vpn"] is None  # an LDP FEC has none


def topo_fec(topo):
    return resolve_target(topo, "pe1", "pe3")


def test_traceroute_p_router_switches_the_top_label_egress_validates_the_vpn_fec(l3vpn):
    topo, lfibs = l3vpn
    net = lfib_network(topo, lfibs)
    for site, vrf in (("red3", "red"), ("blue3", "blue")):
        out = lsp_traceroute(net, "pe1", resolve_target(topo, "pe1", site))
        assert out["result"] == "ok", out
        vpn_label = lfibs["pe1"].vrfs[vrf][SITE3].vpn_label
        (p, egress) = out["hops"]
        # the penultimate hop pops the LDP label (PHP) and sends the VPN label on (§3.4)
        assert (p["router"], p["return_code"], p["return_subcode"]) == ("p2", 8, 1)
        assert p["labels"] == [3, vpn_label]
        assert (egress["router"], egress["return_code"], egress["return_subcode"]) == ("pe3", 3, 2)
        assert egress["expected_router"] == "pe3"  # the DDMAP p2 returned named it
    # multipath: every branch the VRF route's LSP has
    mp = lsp_traceroute(net, "pe2", resolve_target(topo, "pe2", "red1"), multipath=True)
    assert mp["result"] == "ok" and {tuple(p["routers"]) for p in mp["paths"]} == {("p1", "pe1")}


def test_neighbouring_pes_one_label_and_per_prefix_labels(l3vpn):
    topo, lfibs = l3vpn
    net = lfib_network(topo, lfibs)
    # pe2 -> pe3 are neighbours: only the VPN label (the LDP label is implicit-null)
    out = lsp_traceroute(net, "pe2", resolve_target(topo, "pe2", "10.1.3.9", "blue"))
    assert out["fec"] == "10.1.3.0/24"  # the VRF route holding the address
    assert [(h["ttl"], h["router"], h["return_code"], h["return_subcode"])
            for h in out["hops"]] == [(1, "pe3", 3, 2)]
    # pe2 allocates a label per prefix: its egress checks the prefix's label
    assert _codes(lsp_ping(net, "pe1", resolve_target(topo, "pe1", "red2"))) == [("pe2", 3, 2)]
    assert _codes(lsp_ping(net, "pe3", resolve_target(topo, "pe3", "blue2"))) == [("pe2", 3, 2)]


def _tampered(lfibs, vrf: str, **change):
    """pe1's VRF route to site 3 changed as given (another egress's view of it)."""
    out = dict(lfibs)
    lf = lfibs["pe1"]
    vrfs = {v: dict(fib) for v, fib in lf.vrfs.items()}
    e = vrfs[vrf][SITE3]
    prefix = change.pop("prefix", SITE3)
    label = change.pop("vpn_label", None)
    if label is not None:  # push another VPN label under the same transport label
        change["nexthops"] = tuple(replace(n, out_labels=n.out_labels[:-1] + (label,))
                                   for n in e.nexthops)
        change["vpn_label"] = label
    vrfs[vrf][prefix] = replace(e, prefix=prefix, **change)
    out["pe1"] = replace(lf, vrfs=vrfs)
    return out


@pytest.mark.parametrize("case,code", [
    ("wrong-rd", 4),        # no VRF of pe3 has the RD: no mapping for the FEC (§3.1)
    ("not-in-vrf", 4),      # the VRF has no route of its own for the prefix
    ("other-vrfs-label", 10),  # mapping for this FEC is not the given label
    ("right", 3),
])
def test_egress_return_codes(l3vpn, case, code):
    topo, lfibs = l3vpn
    blue_label = lfibs["pe1"].vrfs["blue"][SITE3].vpn_label
    target = VpnTarget("red", SITE3)
    if case == "wrong-rd":
        lfibs = _tampered(lfibs, "red", rd="10.255.0.3:9")
    elif case == "not-in-vrf":
        target = VpnTarget("red", IPv4Network("10.1.9.0/24"))
        lfibs = _tampered(lfibs, "red", prefix=target.prefix)
    elif case == "other-vrfs-label":
        lfibs = _tampered(lfibs, "red", vpn_label=blue_label)
    net = lfib_network(topo, lfibs)
    out = lsp_ping(net, "pe1", target)
    assert _codes(out) == [("pe3", code, 2)]
    assert out["result"] == ("ok" if code == 3 else "broken")
    tr = lsp_traceroute(net, "pe1", target)
    assert [h["return_code"] for h in tr["hops"]] == [8, code]


def test_per_prefix_label_of_another_prefix_is_not_the_given_label(l3vpn):
    """pe2 labels per prefix: red2's label with a FEC for pe2's blue2 subnet in red's RD
    -> 10; the same label with red's prefix -> 3."""
    topo, lfibs = l3vpn
    net = lfib_network(topo, lfibs)
    site2 = IPv4Network("10.1.2.0/24")
    red = lfibs["pe1"].vrfs["red"][site2]
    blue = lfibs["pe1"].vrfs["blue"][site2]
    send = net.sender("pe1", VpnTarget("blue", site2))  # blue's labels on the wire
    for fec_rd, code in ((blue.rd, 3), (red.rd, 10)):
        fecs = (LdpIpv4Fec(IPv4Network("10.255.0.2/32")), VpnIpv4Fec.from_text(fec_rd, site2))
        res = ping(send, VpnTarget("blue", site2), "pe1", fecs=fecs)
        assert [r["return_code"] for r in res.replies] == [code]


def test_explicit_null_egress_pops_both(tmp_path):
    """pe3 advertises explicit-null: it receives [0, VPN label]; the VPN FEC is still the
    one at depth 2."""
    text = L3VPN.read_text().replace("      loopback: 10.255.0.3\n",
                                     "      loopback: 10.255.0.3\n      ldp: {explicit_null: true}\n")
    topo = parse_topology(text)
    sim, _ = simulate(topo)
    lfibs = lfibs_from_json(sim.lfib_json())
    net = lfib_network(topo, lfibs)
    # pe2, a neighbour, pushes [0, VPN label]; p2 swaps pe1's LDP label to 0
    assert lfibs["pe2"].vrfs["red"][SITE3].nexthops[0].out_labels[0] == 0
    for src in ("pe1", "pe2"):
        out = lsp_ping(net, src, resolve_target(topo, src, "red3"))
        assert _codes(out) == [("pe3", 3, 2)], (src, out)
        tr = lsp_traceroute(net, src, resolve_target(topo, src, "blue3"))
        assert tr["result"] == "ok" and tr["hops"][-1]["return_subcode"] == 2
    tr = lsp_traceroute(net, "pe1", resolve_target(topo, "pe1", "blue3"))
    assert tr["hops"][0]["labels"] == [0, lfibs["pe1"].vrfs["blue"][SITE3].vpn_label]


def test_responder_ldp_fec_over_a_vpn_label(l3vpn):
    """A request whose FEC at the VPN label's depth is an LDP FEC: with the V flag, the
    label is not bound to it (10, or 4 with no binding at all); without, egress."""
    topo, lfibs = l3vpn
    t = tables_from_topology(topo, "pe3", lfibs["pe3"])
    (label, _) = next((k, e) for k, e in lfibs["pe3"].vpn_ilm.items() if e.vrf == "red")
    for fec, flags, code in ((IPv4Network("10.255.0.3/32"), FLAG_V, 10),
                             (IPv4Network("10.77.0.0/16"), FLAG_V, 4),
                             (IPv4Network("10.77.0.0/16"), 0, 3)):
        req = EchoMessage(msg_type=MessageType.ECHO_REQUEST, flags=flags, sender_handle=1,
                          sequence=1, tlvs=(TargetFecStack((LdpIpv4Fec(fec),)),))
        rep = respond(t, req, [label], "eth3")
        assert rep is not None and rep.return_code == code, (fec, flags)
    # a VPN label above the bottom of the stack: the dataplane has nothing for it
    req = EchoMessage(msg_type=MessageType.ECHO_REQUEST, sender_handle=1, sequence=1,
                      tlvs=(TargetFecStack((VpnIpv4Fec.from_text("10.255.0.3:1", SITE3),
                                            LdpIpv4Fec(IPv4Network("10.255.0.3/32")))),))
    assert respond(t, req, [label, 16], "eth3").return_code == 11


def test_no_lsp_reasons(l3vpn):
    topo, lfibs = l3vpn
    net = lfib_network(topo, lfibs)
    own = lsp_ping(net, "pe1", resolve_target(topo, "pe1", "10.1.1.0/24", "red"))
    assert own["result"] == "broken" and own["replies"] == []
    assert own["reason"] == "pe1's VRF red reaches 10.1.1.0/24 itself (connected): no LSP to another PE"
    none = lsp_traceroute(net, "pe1", resolve_target(topo, "pe1", "172.16.0.0/16", "red"))
    assert none["result"] == "broken" and none["reason"] == "pe1's VRF red has no route to 172.16.0.0/16"
    assert none["broken_at"]["router"] == "pe1"


def test_resolve_target_errors(l3vpn):
    topo, _ = l3vpn
    assert resolve_target(topo, "pe1", "red3") == VpnTarget("red", SITE3)
    assert resolve_target(topo, "pe1", "blue3", "red") == VpnTarget("red", SITE3)
    assert resolve_target(topo, "pe1", "pe3") == IPv4Network("10.255.0.3/32")
    with pytest.raises(LsrError, match="pe1 has no VRF named 'green' \\(it has blue, red\\)"):
        resolve_target(topo, "pe1", "10.1.3.0/24", "green")
    with pytest.raises(LsrError, match="red3 is a site of VPN red, and p1 has no VRFs"):
        resolve_target(topo, "p1", "red3")
    with pytest.raises(LsrError, match="pe3 is a router"):
        resolve_target(topo, "pe1", "pe3", "red")


def test_cli_vpn_fec(l3vpn):
    r = CliRunner().invoke(main, ["lsp", "ping", "--sim", str(L3VPN), "pe1", "red2", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["vpn"]["vrf"] == "red" and d["replies"][0]["return_code"] == 3
    r = CliRunner().invoke(main, ["lsp", "traceroute", "--sim", str(L3VPN), "pe1", "--vrf", "blue",
                                  "10.1.3.0/24"])
    assert r.exit_code == 0, r.output
    assert "in VRF blue (RD 10.255.0.3:2, egress pe3)" in r.output
    assert "path 0: pe1 -> p2 -> pe3: ok" in r.output
    r = CliRunner().invoke(main, ["lsp", "ping", "--sim", str(L3VPN), "pe1", "--vrf", "green", "red3"])
    assert r.exit_code == 2 and "pe1 has no VRF named 'green'" in r.output
    r = CliRunner().invoke(main, ["lsp", "ping", "--sim", str(L3VPN), "pe1", "--vrf", "red",
                                  "10.1.1.0/24"])
    assert r.exit_code == 1 and "reaches 10.1.1.0/24 itself (connected)" in r.output


def test_validate_vpn_lsp_ping_rows(l3vpn, tmp_path):
    """`lsr validate` LSP-pings every VPN route; a route with an RD its egress has no VRF
    for is one fail row naming the route and the egress's answer."""
    topo, _ = l3vpn
    sim, _ = simulate(topo)
    doc = sim.lfib_json()
    for e in doc["routers"]["pe1"]["vrfs"]["red"]:
        if e["prefix"] == "10.1.3.0/24":
            e["rd"] = "10.255.0.3:9"
    f = tmp_path / "lfib.json"
    f.write_text(json.dumps(doc))
    r = CliRunner().invoke(main, ["validate", str(L3VPN), "--lfib", str(f), "--json"])
    assert r.exit_code == 1, r.output
    rows = [x for x in json.loads(r.output)["results"] if x["check"] == "vpn-lsp-ping"]
    assert rows == [{"check": "vpn-lsp-ping", "status": "fail", "detail":
                     "pe1 red 10.1.3.0/24 (RD 10.255.0.3:9, egress pe3): pe3 answered 4 "
                     "(replying router has no mapping for the FEC at stack depth) at depth 2"}]
    r = CliRunner().invoke(main, ["validate", str(L3VPN), "--json"])
    rows = [x for x in json.loads(r.output)["results"] if x["check"] == "vpn-lsp-ping"]
    assert [x["status"] for x in rows] == ["pass"] and rows[0]["detail"].startswith("12 VPN routes")
    r = CliRunner().invoke(main, ["validate", str(TOPOLOGIES / "diamond.yaml"), "--json"])
    assert not [x for x in json.loads(r.output)["results"] if x["check"] == "vpn-lsp-ping"]

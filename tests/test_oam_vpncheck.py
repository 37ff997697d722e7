"""`lsr validate` on VPNs (lsr.oam.vpncheck): the VPN invariants pass on the bundled
l3vpn topology and fail, naming what broke, when a route target is wrong, a route leaks
into a VRF, or a label is not the egress's; `expect: - vpn:` assertions."""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.igp import Igp
from lsr.core.topology import TopologyError, load_topology, parse_topology
from lsr.oam.validate import lfibs_from_json, reference_lfibs, validate, walk_trace
from lsr.sim import simulate
from tests.conftest import TOPOLOGIES

L3VPN = TOPOLOGIES / "l3vpn.yaml"
TEXT = L3VPN.read_text()


def lfibs_of(topo):
    sim, res = simulate(topo)
    assert res.converged
    return lfibs_from_json(sim.lfib_json())


def check(topo, lf):
    rs = validate(topo, lf, trace=walk_trace(topo, lf, Igp(topo)))
    return {r.check: r for r in rs if r.status == "pass"}, [r for r in rs if r.status != "pass"]


def test_bundled_vpn_topology_passes_everything():
    topo = load_topology(L3VPN)
    ok, bad = check(topo, lfibs_of(topo))
    assert not bad, bad
    assert ok["invariant vpn-reachability"].detail == "6 site pairs in 2 VPNs (red, blue)"
    assert "18 site pairs kept apart" in ok["invariant vpn-isolation"].detail
    assert [k for k in ok if k.startswith("expect")] == [
        "expect[0] vpn red1 -> red3 (line 77)", "expect[1] vpn blue2 -> blue1 (line 78)",
        "expect[2] vpn red1 -> blue2 reach false (line 79)",
        "expect[3] lsp pe1 -> pe2 via p1 (line 80)"]


def test_reference_vpn_state_equals_the_simulators():
    topo = load_topology(L3VPN)
    sim, ref = lfibs_of(topo), reference_lfibs(topo)
    for pe in ("pe1", "pe2", "pe3"):
        assert sim[pe].vrfs == ref[pe].vrfs and sim[pe].vpn_ilm == ref[pe].vpn_ilm


def test_a_site_whose_pe_link_is_down_is_cut_off_not_a_failure() -> None:
    """red2's only link down (`--down`, or carrier in a lab): red2 reaches no one by
    design; the other sites still must, and the row says red2 is cut off and why."""
    r = CliRunner().invoke(main, ["validate", str(TOPOLOGIES / "l3vpn.yaml"),
                                  "--down", "pe2-red2", "--json"])
    assert r.exit_code == 0, r.output
    (row,) = [x for x in json.loads(r.stdout)["results"]
              if x["check"] == "invariant vpn-reachability"]
    assert row["status"] == "pass" and row["detail"].startswith("4 site pairs in 2 VPNs")
    assert row["detail"].endswith("; red2 cut off (link red2-pe2 down)")


def test_a_wrong_route_target_breaks_reachability_by_name():
    # pe3 exports and imports red with 65000:9: red3 is cut off from red1 and red2.
    text = TEXT.replace("red: {rd: 10.255.0.3:1, rt: 65000:1,", "red: {rd: 10.255.0.3:1, rt: 65000:9,")
    assert text != TEXT
    topo = parse_topology(text, "l3vpn.yaml")
    ok, bad = check(topo, lfibs_of(topo))
    fails = {(r.check, r.detail.split(":")[0]) for r in bad if r.status == "fail"}
    assert ("invariant vpn-reachability", "red1 <-> red3 (red)") in fails
    assert ("invariant vpn-reachability", "red2 <-> red3 (red)") in fails
    assert ("expect[0] vpn red1 -> red3 (line 77)", "request dropped at pe1 (no-route)") in fails
    # No leak, and the labels that are there are continuous.
    assert "invariant vpn-isolation" in ok and "invariant vpn-label-continuity" in ok
    assert not any("blue" in r.detail.split(":")[0] for r in bad)


def test_an_extranet_by_mistake_sends_blue_to_red():
    # pe3's blue imports red's target too: the same prefixes from red win (lower RD), so
    # blue3's packets to blue1 reach red1.
    text = TEXT.replace("blue: {rd: 10.255.0.3:2, rt: 65000:2,",
                        "blue: {rd: 10.255.0.3:2, rt: 65000:2, import: 65000:1,")
    topo = parse_topology(text, "l3vpn.yaml")
    ok, bad = check(topo, lfibs_of(topo))
    (row,) = [r for r in bad if r.detail.startswith("blue1 <-> blue3")]
    assert row.check == "invariant vpn-reachability" and "reply reached red1" in row.detail


def test_a_leaked_route_fails_isolation():
    """A FIB route the targets do not allow (a bug, not a configuration) is named."""
    topo = load_topology(L3VPN)
    lf = lfibs_of(topo)
    p = IPv4Network("10.1.2.0/24")
    lf["pe3"].vrfs["red"][p] = lf["pe3"].vrfs["blue"][p]  # pe3: blue's route in red
    ok, bad = check(topo, lf)
    details = [r.detail for r in bad if r.check == "invariant vpn-isolation"]
    assert details == ["pe3 red 10.1.2.0/24 from pe2 blue: targets 65000:2, but red imports 65000:1",
                       "red3 -> blue2 (10.1.2.1) reaches blue2: pe3[push 5100] -> pe2[pop] -> blue2"]
    # and the data plane shows it: red3's packets for red2 now go to blue2
    assert any(r.detail.startswith("red2 <-> red3") and "reached blue2" in r.detail
               for r in bad if r.check == "invariant vpn-reachability")


def test_a_wrong_vpn_label_breaks_continuity():
    topo = load_topology(L3VPN)
    lf = lfibs_of(topo)
    p = IPv4Network("10.1.3.0/24")
    e = lf["pe1"].vrfs["red"][p]
    wrong = 6100  # pe3's blue label
    lf["pe1"].vrfs["red"][p] = replace(e, vpn_label=wrong, nexthops=tuple(
        replace(n, out_labels=n.out_labels[:-1] + (wrong,)) for n in e.nexthops))
    ok, bad = check(topo, lf)
    cont = [r.detail for r in bad if r.check == "invariant vpn-label-continuity"]
    assert cont == ["pe1 red 10.1.3.0/24: VPN label 6100 is pe3's for blue, not red 10.1.3.0/24"]
    # The transport label too
    lf = lfibs_of(topo)
    e = lf["pe1"].vrfs["red"][p]
    lf["pe1"].vrfs["red"][p] = replace(e, nexthops=tuple(
        replace(n, out_labels=(9999,) + n.out_labels[-1:]) for n in e.nexthops))
    ok, bad = check(topo, lf)
    cont = [r.detail for r in bad if r.check == "invariant vpn-label-continuity"]
    assert cont == ["pe1 red 10.1.3.0/24: transport labels eth4 [9999] are not LDP's for "
                    "10.255.0.3/32 (eth4 [3006])"]


def test_expect_vpn_fails_when_it_should():
    text = TEXT.replace("  - vpn: {from: red1, to: blue2, reach: false}",
                        "  - vpn: {from: red1, to: red2, reach: false}")
    topo = parse_topology(text, "l3vpn.yaml")
    ok, bad = check(topo, lfibs_of(topo))
    (row,) = bad
    assert row.check == "expect[2] vpn red1 -> red2 reach false (line 79)"
    assert row.detail.startswith("red1 -> red2 (10.1.2.1) reaches red2: pe1[push 2005/5101]")


@pytest.mark.parametrize("item,message", [
    ("{vpn: {from: pe1, to: red2}}", "expect[4].vpn.from: 'pe1' is not a VPN site (a host on a VRF interface)"),
    ("{vpn: {from: red1, to: nowhere}}", "expect[4].vpn.to: unknown node 'nowhere'"),
    ("{vpn: {from: red1, to: red1}}", "expect[4].vpn.to: from and to are the same site"),
    ("{vpn: {from: red1, to: red2, reach: maybe}}", "expect[4].vpn.reach: reach must be true or false, got 'maybe'"),
    ("{vpn: {from: red1, to: red2, via: [p1]}}", "expect[4].vpn.via: unknown key 'via' (allowed: from, to, reach)"),
    ("{vnp: {from: red1, to: red2}}", "expect[4].vnp: unknown assertion 'vnp' (allowed: lsp, ping, vpn)"),
])
def test_bad_vpn_expectations(item, message):
    with pytest.raises(TopologyError) as ei:
        parse_topology(TEXT + f"  - {item}\n", "l3vpn.yaml")
    assert str(ei.value) == f"l3vpn.yaml:81: {message}"


def test_cli_validate_lfib_file_with_a_leak(tmp_path, monkeypatch):
    """`lsr validate --lfib` reads the VRFs of the JSON and names the leak; exit 1."""
    r = CliRunner().invoke(main, ["sim", "lfib", str(L3VPN), "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    red = doc["routers"]["pe2"]["vrfs"]["red"]
    blue3 = next(e for e in doc["routers"]["pe2"]["vrfs"]["blue"] if e["prefix"] == "10.1.3.0/24")
    red[:] = [e for e in red if e["prefix"] != "10.1.3.0/24"] + [blue3]
    f = tmp_path / "lfib.json"
    f.write_text(json.dumps(doc))
    r = CliRunner().invoke(main, ["validate", str(L3VPN), "--lfib", str(f), "--json"])
    assert r.exit_code == 1, r.output
    out = json.loads(r.output)
    fails = [x for x in out["results"] if x["status"] == "fail"]
    assert {x["check"] for x in fails} == {"invariant vpn-isolation", "invariant vpn-reachability"}
    assert any(x["detail"] == "pe2 red 10.1.3.0/24 from pe3 blue: targets 65000:2, but red imports "
               "65000:1" for x in fails)
    assert IPv4Address("10.255.0.3")  # (the leaked route's egress)


def test_lsp_ping_of_a_vpn_site_probes_its_vpn_fec():
    """A VPN site names the VPN IPv4 FEC of its subnet in the ingress's VRF of its VPN
    (RFC 8029 §3.2.5; tests/test_lsp_vpn_sim.py has the rest); from a router without
    that VRF, one line."""
    r = CliRunner().invoke(main, ["lsp", "ping", "pe1", "red2", "--sim", str(L3VPN)])
    assert r.exit_code == 0, r.output
    assert "10.1.2.0/24 in VRF red" in r.output
    r = CliRunner().invoke(main, ["lsp", "ping", "p1", "red2", "--sim", str(L3VPN)])
    assert r.exit_code == 2
    assert "red2 is a site of VPN red, and p1 has no VRFs" in r.output
    r = CliRunner().invoke(main, ["lsp", "ping", "pe1", "pe2", "--sim", str(L3VPN), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["result"] == "ok"

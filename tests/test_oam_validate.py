"""Path validation: the expect: section (load errors with lines), assertions
passing and failing with the right detail, invariants catching corrupted
LFIBs, the LFIB JSON loader, and `lsr validate`."""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Network

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.igp import Igp
from lsr.core.lfib import Lfib
from lsr.core.topology import TopologyError, load_topology, parse_topology
from lsr.oam.validate import (
    INVARIANTS,
    Expectation,
    lfibs_from_json,
    reference_lfibs,
    validate,
    walk_lsp,
    walk_ping,
    walk_trace,
)
from lsr.oam.vpncheck import VPN_INVARIANTS
from lsr.sim import simulate
from tests.conftest import BUNDLED, TOPOLOGIES

# The bundled file's own expect: section is cut off; tests append their own.
DIAMOND = (TOPOLOGIES / "diamond.yaml").read_text().split("\nexpect:")[0] + "\n"
PE2 = IPv4Network("10.255.0.4/32")


def with_expect(block: str, base: str = DIAMOND) -> str:
    return base + "expect:\n" + block


def sim_lfibs(topo) -> dict[str, Lfib]:
    sim, res = simulate(topo)
    assert res.converged
    return lfibs_from_json(sim.lfib_json())


def run(text: str, lfibs: dict[str, Lfib] | None = None, ping: bool = True):
    topo = parse_topology(text, "d.yaml")
    lf = lfibs if lfibs is not None else sim_lfibs(topo)
    igp = Igp(topo)
    return validate(topo, lf, igp, ping=walk_ping(topo, lf, igp) if ping else None)


def by_check(results, prefix: str):
    return [r for r in results if r.check.startswith(prefix)]


# ---------------------------------------------------------------- the section


def test_expect_section_is_parsed_with_lines() -> None:
    topo = parse_topology(with_expect(
        "  - lsp: {from: pe1, to: pe2}\n"
        "  - lsp: {from: pe1, to: 192.168.2.0/24, via_any: [p2], hops: 2}\n"
        "  - ping: {from: ce1, to: 192.168.2.1}\n"), "d.yaml")
    e0, e1, e2 = topo.extra["expect"]
    base = DIAMOND.count("\n") + 2
    assert (e0.kind, e0.src, e0.fec, e0.line) == ("lsp", "pe1", PE2, base)
    assert (e1.fec, e1.via_any, e1.hops, e1.line) == (IPv4Network("192.168.2.0/24"), ("p2",), 2, base + 1)
    assert (e2.kind, e2.src, e2.dst) == ("ping", "ce1", "192.168.2.1")


@pytest.mark.parametrize(
    "item, where, message",
    [
        ("- lsp: {from: pe9, to: pe2}", "expect[0].lsp.from", "unknown node 'pe9'"),
        ("- lsp: {from: pe1, to: pe7}", "expect[0].lsp.to", "unknown node 'pe7'"),
        ("- lsp: {from: pe1, to: pe2, via: [p1, px]}", "expect[0].lsp.via[1]", "unknown node 'px'"),
        ("- lsp: {from: ce1, to: pe2}", "expect[0].lsp.from", "is a host, not a router"),
        ("- lsp: {from: pe1, to: 10.9.9.9/32}", "expect[0].lsp.to", "no router of diamond originates"),
        ("- lsp: {from: pe1, to: 10.255.0.4/24}", "expect[0].lsp.to", "neither a router nor an IPv4 prefix"),
        ("- lsp: {from: pe1, to: pe2, hops: 0}", "expect[0].lsp.hops", "integer 1..255"),
        ("- lsp: {from: pe1, to: pe2, vai: [p1]}", "expect[0].lsp.vai", "unknown key 'vai'"),
        ("- lsp: {from: pe1}", "expect[0].lsp", "missing 'to'"),
        ("- lsp: {from: pe2, to: pe2}", "expect[0].lsp.from", "egress"),
        ("- ping: {from: ce1, to: ce9}", "expect[0].ping.to", "unknown node 'ce9'"),
        ("- ping: {from: ce1, to: 10.99.0.1}", "expect[0].ping.to", "not an address of diamond"),
        ("- trace: {from: pe1, to: pe2}", "expect[0].trace", "unknown assertion"),
        ("- {lsp: {from: pe1, to: pe2}, ping: {from: ce1, to: ce2}}", "expect[0]", "one key"),
    ],
)
def test_bad_expectations_are_load_errors_with_line(item: str, where: str, message: str) -> None:
    text = with_expect("  - lsp: {from: pe1, to: pe2}\n  " + item + "\n")
    with pytest.raises(TopologyError) as ei:
        parse_topology(text.replace("[0]", "[1]"), "d.yaml")
    e = ei.value
    line = DIAMOND.count("\n") + 3
    assert e.line == line and e.source == "d.yaml"
    assert e.where == where.replace("expect[0]", "expect[1]")
    assert message in e.message
    assert str(e).startswith(f"d.yaml:{line}: expect[1]")


def test_expect_must_be_a_list() -> None:
    with pytest.raises(TopologyError, match="expected a list of assertions"):
        parse_topology(DIAMOND + "expect: {lsp: 1}\n", "d.yaml")


# ---------------------------------------------------------------- assertions


def test_correct_assertions_pass() -> None:
    rs = run(with_expect(
        "  - lsp: {from: pe1, to: pe2}\n"
        "  - lsp: {from: pe1, to: pe2, via_any: [p1]}\n"
        "  - lsp: {from: pe1, to: pe2, via_any: [p2], hops: 2}\n"
        "  - lsp: {from: p1, to: 10.255.0.3/32, via_any: [pe1], hops: 2}\n"
        "  - lsp: {from: pe1, to: 192.168.2.0/24}\n"
        "  - ping: {from: ce1, to: ce2}\n"
        "  - ping: {from: ce2, to: pe1}\n"))
    assert [r.status for r in rs] == ["pass"] * (7 + len(INVARIANTS)), [r for r in rs if r.status != "pass"]
    assert rs[0].detail == "pe1 -> p1 -> pe2 | pe1 -> p2 -> pe2"
    assert "request delivered" in rs[5].detail and "reply delivered" in rs[5].detail


def test_wrong_assertions_fail_with_detail() -> None:
    rs = run(with_expect(
        "  - lsp: {from: pe1, to: pe2, via: [p1]}\n"
        "  - lsp: {from: pe1, to: pe2, via_any: [p1, p2]}\n"
        "  - lsp: {from: pe1, to: 10.255.0.4/32, hops: 3}\n"
        "  - lsp: {from: p1, to: pe2, via: [p2]}\n"))
    exp = by_check(rs, "expect")
    assert [r.status for r in exp] == ["fail"] * 4
    assert exp[0].detail == "branch pe1 -> p2 -> pe2 does not pass through p1 (1 of 2 branches)"
    assert exp[1].detail.startswith("no branch passes through p1, p2")
    assert exp[2].detail == "2 hops (pe1 -> p1 -> pe2), expected 3"
    assert exp[3].detail == "branch p1 -> pe2 does not pass through p2"
    line = DIAMOND.count("\n") + 2
    assert exp[0].check == f"expect[0] lsp pe1 -> pe2 via p1 (line {line})"


def test_assertions_on_a_broken_lsp_name_the_break() -> None:
    topo = parse_topology(DIAMOND)
    lf = sim_lfibs(topo)
    lbl = next(e.in_label for e in lf["p1"].ilm.values() if e.fec == PE2)
    del lf["p1"].ilm[lbl]
    rs = run(with_expect("  - lsp: {from: pe1, to: pe2}\n  - ping: {from: pe1, to: 10.255.0.4}\n"), lf)
    lsp, png = by_check(rs, "expect")
    assert lsp.status == "fail"
    assert f"pe1 -> p1: p1 has no ILM entry for label {lbl}" in lsp.detail
    # The data plane hashes this ping onto one branch; the result says which.
    assert png.status in ("pass", "fail") and "request" in png.detail


def test_ping_without_walker_is_skipped() -> None:
    rs = run(with_expect("  - ping: {from: ce1, to: ce2}\n"), ping=False)
    assert by_check(rs, "expect")[0].status == "skip"


def test_ping_fails_when_the_data_plane_drops() -> None:
    topo = parse_topology((TOPOLOGIES / "line3.yaml").read_text())
    lf = sim_lfibs(topo)
    fec = IPv4Network("192.168.2.0/24")
    lbl = next(e.in_label for e in lf["p1"].ilm.values() if e.fec == fec)
    del lf["p1"].ilm[lbl]
    igp = Igp(topo)
    ok, detail = walk_ping(topo, lf, igp)("ce1", "ce2")
    assert not ok and "request dropped" in detail


# ---------------------------------------------------------------- invariants


def fails(rs, check: str) -> list[str]:
    return [r.detail for r in rs if r.check == f"invariant {check}" and r.status == "fail"]


def corrupt(name: str):
    topo = load_topology(TOPOLOGIES / f"{name}.yaml")
    return topo, sim_lfibs(topo), Igp(topo)


def ilm_for(lf: Lfib, fec: IPv4Network):
    return next(e for e in lf.ilm.values() if e.fec == fec)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_simulated_ldp_passes_every_invariant(path) -> None:
    topo = load_topology(path)
    lf = sim_lfibs(topo)
    rs = validate(topo, lf, trace=walk_trace(topo, lf, Igp(topo)))
    inv = [r for r in rs if r.check.startswith("invariant ")]
    vpn = VPN_INVARIANTS if any(r.vrfs for r in topo.routers) else ()
    assert [r.check for r in inv] == [f"invariant {c}" for c in INVARIANTS + vpn]
    # The bundled expect: assertions hold too (ping ones skip without a walker).
    assert all(r.status in ("pass", "skip") for r in rs), [r for r in rs if r.status == "fail"]
    assert all(r.status == "pass" for r in inv)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_reference_model_matches_the_simulator(path) -> None:
    """Two independent derivations of the LFIBs agree up to label values."""
    topo = load_topology(path)

    def shape(lf: Lfib):
        ftn = {f: sorted((n.neighbor, n.interface, len(n.out_labels)) for n in e.nexthops)
               for f, e in lf.ftn.items()}
        ilm = {e.fec: sorted((n.neighbor, n.op, len(n.out_labels)) for n in e.nexthops)
               for e in lf.ilm.values()}
        return ftn, ilm

    sim, ref = sim_lfibs(topo), reference_lfibs(topo)
    assert {r: shape(lf) for r, lf in sim.items()} == {r: shape(lf) for r, lf in ref.items()}


def test_wrong_out_label() -> None:
    topo, lf, igp = corrupt("line3")
    fec = IPv4Network("10.255.0.3/32")
    e = lf["pe1"].ftn[fec]
    (nh,) = e.nexthops
    p1_label = ilm_for(lf["p1"], fec).in_label
    lf["pe1"].ftn[fec] = replace(e, nexthops=(replace(nh, out_labels=(p1_label + 500,)),))
    rs = validate(topo, lf, igp)
    (detail,) = fails(rs, "label-continuity")
    assert detail == (f"pe1 -> p1: out label {p1_label + 500} but p1's label for {fec} is {p1_label} "
                      f"[LSPs from pe1]")
    # A label that exists but belongs to another FEC.
    other = ilm_for(lf["p1"], IPv4Network("10.255.0.1/32")).in_label
    lf["pe1"].ftn[fec] = replace(e, nexthops=(replace(nh, out_labels=(other,)),))
    (detail,) = fails(validate(topo, lf, igp), "label-continuity")
    assert f"out label {other} is p1's label for 10.255.0.1/32, not {fec}" in detail


def test_missing_php() -> None:
    topo, lf, igp = corrupt("line3")
    fec = IPv4Network("10.255.0.3/32")
    e = ilm_for(lf["p1"], fec)
    (nh,) = e.nexthops
    lf["p1"].ilm[e.in_label] = replace(e, nexthops=(replace(nh, out_labels=(99,), op="swap"),))
    rs = validate(topo, lf, igp)
    (detail,) = fails(rs, "php")
    assert detail == "p1 -> pe2: missing PHP, sends label [99] to the egress (expected pop) [LSPs from pe1]"
    assert not fails(rs, "no-black-holes") and not fails(rs, "label-continuity")


def test_premature_pop() -> None:
    topo, lf, igp = corrupt("unequal")
    e = ilm_for(lf["p1"], PE2)
    (nh,) = e.nexthops
    lf["p1"].ilm[e.in_label] = replace(e, nexthops=(replace(nh, out_labels=(), op="pop"),))
    (detail,) = fails(validate(topo, lf, igp), "php")
    assert detail.startswith(f"p1 -> p2: pops before the egress (p2 is not an egress of {PE2})")


def test_loop() -> None:
    topo, lf, igp = corrupt("line3")
    fec = IPv4Network("10.255.0.3/32")
    e = ilm_for(lf["p1"], fec)
    pe1_label = ilm_for(lf["pe1"], fec).in_label
    back = topo.interface("pe1", "eth2").address.ip
    lf["p1"].ilm[e.in_label] = replace(e, nexthops=(
        replace(e.nexthops[0], neighbor="pe1", interface="eth1", nexthop=back, out_labels=(pe1_label,),
                op="swap"),))
    rs = validate(topo, lf, igp)
    loops = fails(rs, "no-loops")
    assert "loop: pe1 -> p1 -> pe1 [LSPs from pe1]" in loops
    assert any(d.startswith(f"p1 ILM {e.in_label} {fec}: next hops {{pe1/eth1}} != IGP ECMP set {{pe2/eth2}}")
               for d in fails(rs, "igp-shortest-path"))


def test_black_hole() -> None:
    topo, lf, igp = corrupt("unequal")
    e = ilm_for(lf["p2"], PE2)
    del lf["p2"].ilm[e.in_label]
    rs = validate(topo, lf, igp)
    holes = fails(rs, "no-black-holes")
    assert holes == [f"p1 -> p2: p2 has no ILM entry for label {e.in_label} (nor any label for {PE2}) "
                     f"[LSPs from p1, pe1]"]
    summary_rows = [r for r in rs if r.check == "invariant no-loops"]
    assert summary_rows[0].status == "pass"


def test_missing_lsp_and_not_shortest_path() -> None:
    topo, lf, igp = corrupt("unequal")
    del lf["p1"].ftn[PE2]
    # pe1 takes the cost-100 link straight to pe2: delivered, but not the IGP path.
    lf["pe1"].ftn[PE2] = replace(lf["pe1"].ftn[PE2], nexthops=(replace(
        lf["pe1"].ftn[PE2].nexthops[0], neighbor="pe2", interface="eth3",
        nexthop=topo.interface("pe2", "eth3").address.ip, out_labels=()),))
    rs = validate(topo, lf, igp)
    assert fails(rs, "lsp-coverage") == [f"p1 has no FTN entry for {PE2} [LSPs from p1]"]
    (sp,) = fails(rs, "igp-shortest-path")
    assert sp == f"pe1 FTN {PE2}: next hops {{pe2/eth3}} != IGP ECMP set {{p1/eth2}}"
    assert walk_lsp(topo, lf, "pe1", PE2).paths == [("pe1", "pe2")]


# ---------------------------------------------------------------- loader


def test_lfib_json_loader_round_trip_and_lsr_ids() -> None:
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    sim, _ = simulate(topo)
    doc = sim.lfib_json()
    lf = lfibs_from_json(doc)
    assert {r: lf[r].to_json() for r in lf} == {r: {k: v for k, v in d.items() if k != "lsr_id"}
                                              for r, d in doc["routers"].items()}
    # LDP's own tables name neighbours by LSR ID: validate maps them.
    raw = {r: i.lfib for r, i in sim.instances.items()}
    assert all(r.status == "pass" for r in validate(topo, raw, expectations=[]))


@pytest.mark.parametrize(
    "doc, where",
    [
        ({}, "missing 'routers'"),
        ({"routers": {"p1": {"ftn": []}}}, "routers.p1: missing 'ilm'"),
        ({"routers": {"p1": {"ftn": [{"fec": "10.0.0.0/33", "nexthops": []}], "ilm": []}}}, "routers.p1.ftn[0].fec"),
        ({"routers": {"p1": {"ftn": [], "ilm": [{"in_label": 16, "fec": "10.0.0.0/8",
                                                  "nexthops": [{"neighbor": "pe2"}]}]}}},
         "routers.p1.ilm[0].nexthops[0]: missing 'out_labels'"),
    ],
)
def test_lfib_json_loader_errors(doc, where: str) -> None:
    with pytest.raises(ValueError, match=where.replace("[", r"\[").replace("]", r"\]")):
        lfibs_from_json(doc)


def test_expectations_can_be_passed_directly() -> None:
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    e = Expectation(0, None, "lsp", "pe1", "pe2", PE2, via=("p2",))
    (r,) = validate(topo, sim_lfibs(topo), expectations=[e], invariants=False)
    assert r.status == "fail" and r.check == "expect[0] lsp pe1 -> pe2 via p2"


# ---------------------------------------------------------------- CLI


def test_cli_validate_exit_codes_and_json(tmp_path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text(with_expect("  - lsp: {from: pe1, to: pe2, via_any: [p1]}\n  - ping: {from: ce1, to: ce2}\n"))
    r = CliRunner().invoke(main, ["validate", str(ok), "--json"])
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    # + the control-plane and igp-routes invariants: simulated LFIBs come with the
    # simulation's sessions and OSPF's routes to check
    assert (j["result"], j["failed"], j["passed"], j["lfib_source"]) == ("ok", 0, 4 + len(INVARIANTS), "sim")
    assert any(x["check"] == "invariant igp-routes" and x["status"] == "pass" for x in j["results"])
    assert j["results"][0] == {"check": "invariant control-plane", "status": "pass",
                               "detail": "4 LDP sessions OPERATIONAL, 4 OSPF adjacencies Full"}
    assert set(j["results"][0]) == {"check", "status", "detail"}

    bad = tmp_path / "bad.yaml"
    bad.write_text(with_expect("  - lsp: {from: pe1, to: pe2, hops: 3}\n"))
    r = CliRunner().invoke(main, ["validate", str(bad)])
    assert r.exit_code == 1
    assert "FAIL" in r.output and "expected 3" in r.output

    worse = tmp_path / "worse.yaml"
    worse.write_text(with_expect("  - lsp: {from: pe9, to: pe2}\n"))
    r = CliRunner().invoke(main, ["validate", str(worse)])
    assert r.exit_code == 2
    assert f"{worse}:{DIAMOND.count(chr(10)) + 2}: expect[0].lsp.from: unknown node 'pe9'" in r.output


def test_cli_validate_lfib_file_and_reference(tmp_path) -> None:
    topo = load_topology(TOPOLOGIES / "line3.yaml")
    sim, _ = simulate(topo)
    doc = sim.lfib_json()
    fec = "10.255.0.3/32"
    for e in doc["routers"]["p1"]["ilm"]:
        if e["fec"] == fec:
            e["nexthops"][0]["out_labels"] = [77]
    f = tmp_path / "lfib.json"
    f.write_text(json.dumps(doc))
    r = CliRunner().invoke(main, ["validate", str(TOPOLOGIES / "line3.yaml"), "--lfib", str(f), "--json"])
    assert r.exit_code == 1
    j = json.loads(r.output)
    assert j["lfib_source"] == str(f)
    assert any(x["check"] == "invariant php" and x["status"] == "fail" for x in j["results"])
    r = CliRunner().invoke(main, ["validate", str(TOPOLOGIES / "line3.yaml"), "--reference"])
    assert r.exit_code == 0, r.output
    f.write_text("{}")
    r = CliRunner().invoke(main, ["validate", str(TOPOLOGIES / "line3.yaml"), "--lfib", str(f)])
    assert r.exit_code == 2 and "missing 'routers'" in r.output

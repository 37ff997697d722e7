"""A misconfiguration does not stop the analysis (issue 17): every analysis command names
the session or adjacency that did not come up and its cause, still shows what converged,
and exits 1 (2 stays bad input); `lsr topo validate` warns from the configs alone.
`--down` on `lsr validate` and `lsr sim trace` works as on `lsr draw`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.topology import load_topology, parse_topology
from lsr.oam.diagnose import LDP, OSPF, config_findings
from lsr.sim import converge

from .conftest import BUNDLED, ROOT, TOPOLOGIES

LINE3 = (TOPOLOGIES / "line3.yaml").read_text()
MD5_EXAMPLE = ROOT / "docs" / "examples" / "line3-md5.yaml"
ONE_SIDED = "pe1-p1: LDP session not established: TCP MD5 password on pe1 only"


def line3_with(pe1: str = "", p1: str = "") -> str:
    """line3 with extra options on pe1 and p1 (YAML flow-mapping items)."""
    return (LINE3.replace("pe1: {loopback: 10.255.0.1}", f"pe1: {{loopback: 10.255.0.1{pe1}}}")
            .replace("p1: {loopback: 10.255.0.2}", f"p1: {{loopback: 10.255.0.2{p1}}}"))


def findings(text: str) -> list[tuple[str, str, str]]:
    return [(s.kind, s.pair, s.cause) for s in config_findings(parse_topology(text))]


# ---------------------------------------------------------------- causes from the configs


def test_ldp_causes_from_both_configs() -> None:
    assert findings(line3_with(", ldp: {passwords: {p1: k}}")) == [
        (LDP, "pe1-p1", "TCP MD5 password on pe1 only")]
    assert findings(line3_with(p1=", ldp: {passwords: {pe1: k}}")) == [
        (LDP, "pe1-p1", "TCP MD5 password on p1 only")]
    assert findings(line3_with(", ldp: {passwords: {p1: a}}", ", ldp: {passwords: {pe1: b}}")) \
        == [(LDP, "pe1-p1", "TCP MD5 passwords differ on pe1 and p1")]
    assert findings(line3_with(", ldp: {passwords: {p1: a}}", ", ldp: {passwords: {pe1: a}}")) \
        == []
    # a password for a router that is not a neighbour keeps nothing down
    assert findings(line3_with(", ldp: {passwords: {pe2: a}}")) == []


def test_ospf_causes_from_both_configs() -> None:
    assert findings(line3_with(", ospf: {hello_interval: 5, dead_interval: 20}")) == [
        (OSPF, "pe1-p1", "OSPF hello intervals differ (pe1 5 s, p1 10 s); "
                         "OSPF dead intervals differ (pe1 20 s, p1 40 s)")]
    assert findings(line3_with(p1=", ospf: {md5_key: k}")) == [
        (OSPF, "pe1-p1", "OSPF MD5 key on p1 only"), (OSPF, "p1-pe2", "OSPF MD5 key on p1 only")]
    assert findings(line3_with(", ospf: {md5_key: k}", ", ospf: {md5_key: k, md5_key_id: 2}"))[0] \
        == (OSPF, "pe1-p1", "OSPF MD5 key IDs differ (pe1 1, p1 2)")
    assert findings(line3_with(", ospf: {md5_key: a}", ", ospf: {md5_key: b}"))[0] == (
        OSPF, "pe1-p1", "OSPF MD5 keys differ on pe1 and p1")


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_topologies_have_no_findings(path: Path) -> None:
    assert config_findings(load_topology(path)) == []


# ---------------------------------------------------------------- what the simulator saw


def test_simulation_names_the_stuck_session_and_stops_once_settled() -> None:
    t0 = time.monotonic()
    o = converge(load_topology(MD5_EXAMPLE))
    assert not o.converged and o.problems() == [ONE_SIDED]
    assert o.result.ended < 200  # settled: no need to run the full hour of virtual time
    assert time.monotonic() - t0 < 5
    # what did converge is there: p1-pe2 is up and pe2 has labels from p1
    assert o.sim.sessions_ok() is False
    assert o.sim.summary_json(o.result)["sessions"] == 1
    assert o.sim.instances["pe2"].lfib.ftn


def test_an_ospf_mismatch_and_what_it_does_to_ldp() -> None:
    o = converge(parse_topology(line3_with(", ospf: {hello_interval: 5, dead_interval: 20}")))
    assert [(s.kind, s.pair) for s in o.stuck] == [(OSPF, "pe1-p1"), (LDP, "pe1-p1")]
    assert o.stuck[1].cause == "no route from pe1 to p1's transport address 10.255.0.2"


def test_a_stopped_router_or_a_down_link_is_not_stuck() -> None:
    o = converge(load_topology(TOPOLOGIES / "diamond.yaml"), ["pe1-p1"])
    assert o.converged and o.stuck == []
    o = converge(load_topology(TOPOLOGIES / "line3.yaml"))
    o.sim.router_stop("pe2")
    o.sim.run(quiet=o.sim.quiet_time())
    assert o.sim.stuck() == []  # a stopped router is expected to be gone: nothing stuck


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_topologies_converge_with_nothing_stuck(path: Path) -> None:
    o = converge(load_topology(path))
    assert o.converged and o.stuck == [] and o.problems() == []


# ---------------------------------------------------------------- every analysis command


def cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


ANALYSES = [
    ("sim", "run"), ("sim", "lfib"), ("sim", "bindings", "-r", "p1"), ("sim", "neighbors"),
    ("sim", "ospf"), ("draw",), ("draw", "--lsp", "pe2:pe1"),
    ("lsp", "ping", "--sim"), ("lsp", "traceroute", "--sim"),
]


@pytest.mark.parametrize("args", ANALYSES, ids=" ".join)
def test_every_analysis_command_names_the_session_and_prints_what_converged(
        args: tuple[str, ...]) -> None:
    # pe1 has no label at all: its LSPs do not exist (from pe2, p1's untagged entry pops
    # like PHP and pe1 answers as the egress: a healthy ping, rightly)
    extra = ("pe1", "pe2") if args[0] == "lsp" else ()
    code, out, err = cli(*args, str(MD5_EXAMPLE), *extra)
    assert code == 1, (out, err)
    said = out + err
    assert ONE_SIDED in said or ONE_SIDED.replace("not established", "cannot come up") in said
    assert "Traceback" not in said
    assert out.strip()  # what converged is still printed


def test_sim_run_reports_what_is_up_and_the_json_names_the_stuck_session() -> None:
    code, out, _ = cli("sim", "run", str(MD5_EXAMPLE))
    assert code == 1
    assert "1 of 2 sessions OPERATIONAL" in out and "NOT converged" in out and ONE_SIDED in out
    assert "messages sent" in out
    code, out, _ = cli("sim", "run", str(MD5_EXAMPLE), "--json")
    j = json.loads(out)
    assert code == 1 and j["converged"] is False
    assert j["stuck"] == [{"kind": "ldp", "session": "pe1-p1", "a": "pe1", "b": "p1",
                           "cause": "TCP MD5 password on pe1 only", "link": None,
                           "text": ONE_SIDED}]
    code, out, _ = cli("sim", "run", str(TOPOLOGIES / "line3.yaml"), "--json")
    assert code == 0 and json.loads(out)["stuck"] == []


def test_validate_reports_the_session_and_the_lsps_it_breaks() -> None:
    code, out, _ = cli("validate", str(MD5_EXAMPLE), "--json")
    j = json.loads(out)
    assert code == 1 and j["result"] == "fail"
    assert j["results"][0] == {"check": "invariant control-plane", "status": "fail",
                               "detail": ONE_SIDED}
    failed = {r["check"] for r in j["results"] if r["status"] == "fail"}
    assert "invariant lsp-coverage" in failed
    # p1's entries for pe1's FECs are untagged (pop, then IP to pe1): no black hole
    assert "invariant no-black-holes" not in failed
    assert any(r["status"] == "pass" for r in j["results"])  # what converged is checked too
    code, out, _ = cli("validate", str(MD5_EXAMPLE), "--no-invariants", "--json")
    assert code == 1 and [r["detail"] for r in json.loads(out)["results"]] == [ONE_SIDED]


def test_draw_marks_the_stuck_session(tmp_path: Path) -> None:
    code, out, err = cli("draw", str(MD5_EXAMPLE), "--lsp", "pe2:pe1")
    assert code == 1 and ONE_SIDED in err
    pe1_p1 = next(ln for ln in out.splitlines() if ln.strip().startswith('"pe1" -> "p1"'))
    assert "LDP session down: TCP MD5 password on pe1 only" in pe1_p1
    assert 'style="dashed"' in pe1_p1
    assert "NOT converged" in out
    code, _, _ = cli("draw", str(MD5_EXAMPLE), "-o", str(tmp_path / "x.dot"))
    assert code == 1 and "LDP session down" in (tmp_path / "x.dot").read_text()


def test_trace_walks_what_exists() -> None:
    code, out, err = cli("sim", "trace", str(MD5_EXAMPLE), "ce2", "ce1", "--json")
    assert code == 1 and ONE_SIDED in err
    w = json.loads(out)
    assert w["result"] == "delivered"  # p1 has no label from pe1: untagged, pops to IP
    assert [(h["router"], h["op"]) for h in w["hops"]] == [("pe2", "push"), ("p1", "pop"),
                                                           ("pe1", "forward")]
    code, out, _ = cli("sim", "trace", str(MD5_EXAMPLE), "ce1", "ce2", "--json")
    assert code == 1 and json.loads(out)["result"] == "delivered"  # unlabelled IP


def test_report_still_writes_the_page(tmp_path: Path) -> None:
    code, out, err = cli("report", str(MD5_EXAMPLE), "-o", str(tmp_path / "r.html"))
    assert code == 1 and ONE_SIDED in err
    assert "report on" in out
    page = (tmp_path / "r.html").read_text()
    assert "TCP MD5 password on pe1 only" in page and "invariant control-plane" in page


def test_topo_validate_warns_with_exit_1() -> None:
    code, out, _ = cli("topo", "validate", str(MD5_EXAMPLE))
    assert code == 1
    assert out.splitlines()[-1] == \
        "warning: pe1-p1: LDP session cannot come up: TCP MD5 password on pe1 only"
    assert "loads with 1 warning" in out
    code, out, _ = cli("topo", "validate", str(TOPOLOGIES / "line3.yaml"))
    assert code == 0 and ": ok: " in out


def test_topo_validate_warns_of_a_bgp_session_passive_at_both_ends(tmp_path: Path) -> None:
    """Neither end opens the connection (RFC 4271 §8.1.1): named by `topo validate`;
    one end active: no warning."""
    src = (ROOT / "tests" / "data" / "bgp-lab.yaml").read_text()
    assert "passive: [raw]" in src
    code, out, _ = cli("topo", "validate", str(ROOT / "tests" / "data" / "bgp-lab.yaml"))
    assert code == 1 and out.count("\nwarning: ") == 1, out
    assert "warning: pe1-raw: BGP session cannot come up: passive at both ends" in \
        " ".join(out.split()), out
    one = tmp_path / "one-passive.yaml"
    one.write_text(src.replace("passive: [raw]", "passive: []"))
    code, out, _ = cli("topo", "validate", str(one))
    assert code == 0 and "ok: bgplab" in " ".join(out.split()), out


# ---------------------------------------------------------------- --down


def test_validate_down_fails_the_link_first() -> None:
    diamond = str(TOPOLOGIES / "diamond.yaml")
    code, out, _ = cli("validate", diamond, "--json")
    assert code == 0
    code, out, _ = cli("validate", diamond, "--down", "pe1-p1", "--json")
    j = json.loads(out)
    assert code == 1  # expect[0] wants an ECMP branch through p1
    fails = [r["check"] for r in j["results"] if r["status"] == "fail"]
    assert len(fails) == 1 and fails[0].startswith("expect[0]")
    assert j["results"][0]["detail"] == "3 LDP sessions OPERATIONAL, 3 OSPF adjacencies Full"
    code, out, _ = cli("validate", diamond, "--down", "pe1-p1", "--reference", "--json")
    assert code == 1 and "pe1 -> p2 -> pe2" in out


def test_trace_down_is_the_walk_over_the_tables_draw_uses() -> None:
    from forwarding.tables import build_all
    from forwarding.walk import walk
    from lsr.core.igp import Igp
    from lsr.teach.net import from_file

    diamond = str(TOPOLOGIES / "diamond.yaml")
    code, out, _ = cli("sim", "trace", diamond, "ce1", "ce2", "--down", "pe1-p1", "--json")
    assert code == 0
    n = from_file(diamond, ["pe1-p1"])  # what `lsr draw --down` draws
    want = walk(n.topo, build_all(n.topo, Igp(n.topo, n.down).ribs(), n.lfibs), "ce1", "ce2",
                "icmp", 64)
    assert json.loads(out) == want
    assert [h["router"] for h in want["hops"]] == ["pe1", "p2", "pe2"]
    code, out, _ = cli("sim", "trace", diamond, "ce1", "ce2", "--down", "pe1-p1",
                       "--down", "pe1-p2", "--json")
    assert code == 0 and json.loads(out)["result"] == "dropped"  # pe1 cut off: no route


@pytest.mark.parametrize("cmd", [("validate",), ("sim", "trace")], ids=" ".join)
def test_down_bad_input_is_one_line_exit_2(cmd: tuple[str, ...]) -> None:
    diamond = str(TOPOLOGIES / "diamond.yaml")
    tail = ("ce1", "ce2") if cmd[0] == "sim" else ()
    for spec, msg in (("pe1-pe2", "no link between pe1 and pe2"),
                      ("pe1", "'pe1' is not A-B with two nodes of diamond (each NODE or "
                                "NODE:INTERFACE)")):
        r = CliRunner().invoke(main, [*cmd, diamond, *tail, "--down", spec])
        assert r.exit_code == 2 and r.stderr.strip().endswith(msg), r.output
        assert len(r.stderr.splitlines()) == 1


def test_validate_lfib_and_down_exclude_each_other(tmp_path: Path) -> None:
    f = tmp_path / "l.json"
    f.write_text("{}")
    r = CliRunner().invoke(main, ["validate", str(TOPOLOGIES / "line3.yaml"), "--lfib", str(f),
                                  "--down", "pe1-p1"])
    assert r.exit_code == 2 and "--down" in r.stderr

"""A BGP session whose TCP MD5 keys disagree (RFC 2385: a key at one end only, or two
different keys) is named with its cause wherever an LDP session's is (tests/test_diagnose.py):
`lsr topo validate`, the simulator's `stuck` (`lsr sim run` text and JSON, every analysis
command's stderr, `lsr validate`'s control-plane row and 6PE detail, `lsr draw`), and
`lsr lab up`'s failure line (what the lab waits for, and the line, checked here without
a lab). The exit status is the LDP case's: 1, with what did converge still shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.oam.diagnose import BGP, LDP, Stuck, bgp_cause, config_findings
from lsr.sim import converge

from .bgp_section import load_bgp_topology
from .conftest import ROOT, TOPOLOGIES

LDP_MD5 = ROOT / "docs" / "examples" / "line3-md5.yaml"  # LDP's one-sided case
# line3 with iBGP between the edge routers (IPv4 only: no 6PE, no VRFs, so nothing but
# the control-plane check can fail when the session is down)
LINE3_BGP = (TOPOLOGIES / "line3.yaml").read_text() + """bgp:
  asn: 65000
  routers:
    pe1: {PE1}
    pe2: {PE2}
"""
ONE = "TCP MD5 password on pe1 only"
DIFF = "TCP MD5 passwords differ on pe1 and pe2"
CASES = {  # name -> (pe1's options, pe2's, the cause)
    "one-sided": ("{passwords: {pe2: sesame}}", "{}", ONE),
    "other-side": ("{}", "{passwords: {pe1: sesame}}", "TCP MD5 password on pe2 only"),
    "different": ("{passwords: {pe2: sesame}}", "{passwords: {pe1: other}}", DIFF),
}


def text_of(cause: str) -> str:
    return f"pe1-pe2: BGP session not Established: {cause}"


def topo_file(tmp_path: Path, pe1: str, pe2: str) -> Path:
    f = tmp_path / "line3-bgp.yaml"
    f.write_text(LINE3_BGP.replace("{PE1}", pe1).replace("{PE2}", pe2))
    return f


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    pe1, pe2, cause = CASES[request.param]
    return topo_file(tmp_path, pe1, pe2), cause


def flat(text: str) -> str:
    """Rich's tables and lines wrap at the terminal's width: one space between words."""
    return " ".join(text.split())


def cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


# ---------------------------------------------------------------- from the configs


def test_causes_from_both_configs(case: tuple[Path, str], tmp_path: Path) -> None:
    f, cause = case
    t = load_bgp_topology(f)
    assert bgp_cause(t, "pe1", "pe2") == cause
    assert [(s.kind, s.pair, s.cause) for s in config_findings(t)] == [(BGP, "pe1-pe2", cause)]
    # the same key on both ends, or none: nothing to say; p1 runs no BGP
    same = load_bgp_topology(topo_file(tmp_path, "{passwords: {pe2: k}}", "{passwords: {pe1: k}}"))
    assert config_findings(same) == [] and bgp_cause(same, "pe1", "pe2") is None
    assert bgp_cause(same, "pe1", "p1") is None
    assert config_findings(load_bgp_topology(topo_file(tmp_path, "{}", "{}"))) == []


def test_topo_validate_warns_as_for_ldp(case: tuple[Path, str]) -> None:
    f, cause = case
    code, out, _ = cli("topo", "validate", str(f))
    assert code == 1 == cli("topo", "validate", str(LDP_MD5))[0]
    assert f"warning: pe1-pe2: BGP session cannot come up: {cause}" in flat(out)


# ---------------------------------------------------------------- the simulator


def test_simulation_names_the_session_and_stops_once_settled(case: tuple[Path, str]) -> None:
    f, cause = case
    o = converge(load_bgp_topology(f))
    assert not o.converged
    assert o.stuck == [Stuck(BGP, "pe1", "pe2", cause)] and o.problems() == [text_of(cause)]
    assert o.stuck[0].to_json() == {"kind": "bgp", "session": "pe1-pe2", "a": "pe1",
                                    "b": "pe2", "cause": cause, "link": None,
                                    "text": text_of(cause)}
    # no SYN got through; everything else converged, and the run stopped there (the
    # session cannot come up: no need to wait for its connect retries)
    s = o.sim
    assert {s.bgp[r].state_of(s.topo.nodes[p].lsr_id).value
            for r, p in (("pe1", "pe2"), ("pe2", "pe1"))} <= {"Idle", "Connect", "Active"}
    assert s.sessions_ok() and s.ospf_settled() and s.bgp_settled()
    assert o.result.ended < 10
    assert s.bgp_blocked() == o.stuck


def test_a_stopped_end_is_not_stuck(case: tuple[Path, str]) -> None:
    o = converge(load_bgp_topology(case[0]))
    o.sim.router_stop("pe2")
    res = o.sim.run(quiet=o.sim.quiet_time())
    assert res.converged and o.sim.stuck() == [] and o.sim.bgp_blocked() == []


def test_keys_that_agree_converge(tmp_path: Path) -> None:
    o = converge(load_bgp_topology(topo_file(tmp_path, "{passwords: {pe2: k}}",
                                             "{passwords: {pe1: k}}")))
    assert o.converged and o.stuck == []


# ---------------------------------------------------------------- the commands


def test_sim_run_text_and_json(case: tuple[Path, str]) -> None:
    f, cause = case
    code, out, _ = cli("sim", "run", str(f))
    assert code == 1 == cli("sim", "run", str(LDP_MD5))[0]
    assert "NOT converged" in out and text_of(cause) in flat(out) and "messages sent" in out
    assert "2 of 2 sessions OPERATIONAL" in flat(out)  # LDP is fine
    code, out, _ = cli("sim", "run", str(f), "--json")
    j = json.loads(out)
    assert code == 1 and j["converged"] is False
    assert j["stuck"] == [{"kind": "bgp", "session": "pe1-pe2", "a": "pe1", "b": "pe2",
                           "cause": cause, "link": None, "text": text_of(cause)}]


@pytest.mark.parametrize("args", [("sim", "lfib"), ("sim", "neighbors"), ("sim", "bgp"),
                                  ("sim", "bgp", "FILE", "pe1", "unicast"), ("draw",),
                                  ("draw", "--lsp", "pe1:pe2")], ids=" ".join)
def test_every_analysis_command_names_it_and_exits_as_for_ldp(
        case: tuple[Path, str], args: tuple[str, ...]) -> None:
    f, cause = case
    argv = [str(f) if a == "FILE" else a for a in args] + ([] if "FILE" in args else [str(f)])
    code, out, err = cli(*argv)
    if args[1:2] != ("bgp",):  # LDP's one-sided case: the same exit status
        assert cli(*[str(LDP_MD5) if a == str(f) else a for a in argv])[0] == 1
    assert code == 1, (out, err)
    said = flat(out + err)
    assert text_of(cause) in said or text_of(cause).replace(
        "not Established", "cannot come up") in said
    assert "Traceback" not in said and out.strip()  # what converged is still shown


def test_sim_bgp_shows_the_session_down(case: tuple[Path, str]) -> None:
    f, cause = case
    code, out, err = cli("sim", "bgp", str(f), "pe1", "--json")
    assert code == 1 and err == f"lsr: not converged: {text_of(cause)}\n"
    (n,) = json.loads(out)["routers"]["pe1"]["neighbors"]
    assert n["neighbor"] == "pe2" and n["state"] != "Established"
    # bad input stays exit 2, one line, before any simulation
    code, _, err = cli("sim", "bgp", str(f), "p1")
    assert code == 2 and err.count("\n") == 1 and "p1 runs no BGP" in err


def test_validate_names_it_in_the_control_plane_row(case: tuple[Path, str]) -> None:
    f, cause = case
    code, out, _ = cli("validate", str(f), "--json")
    j = json.loads(out)
    assert code == 1 == cli("validate", str(LDP_MD5), "--json")[0] and j["result"] == "fail"
    assert j["results"][0] == {"check": "invariant control-plane", "status": "fail",
                               "detail": text_of(cause)}
    assert [r for r in j["results"] if r["status"] == "fail"] == j["results"][:1]
    code, out, _ = cli("validate", str(f), "--no-invariants", "--json")
    assert code == 1 and [r["detail"] for r in json.loads(out)["results"]
                          if r["status"] == "fail"] == [text_of(cause)]
    code, out, _ = cli("validate", str(f))
    assert code == 1 and "BGP session not" in out


def test_draw_names_it_under_the_title(case: tuple[Path, str]) -> None:
    f, cause = case
    code, out, _ = cli("draw", str(f), "--lsp", "pe1:pe2")
    assert code == 1 and text_of(cause) in out
    assert "1 session / adjacency down<" in out  # no red dashes: it runs on no one link


# ---------------------------------------------------------------- the lab, without a lab


def test_lab_up_waits_for_it_and_names_it(case: tuple[Path, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`lab up` expects the session (as LDP's: the lab has not converged without it) and
    its failure line names it from the configs, with the kernels' MD5 drops."""
    from lsr.lab import bgp_lab, diagnose, frr
    from lsr.sim import Simulation

    f, cause = case
    t = load_bgp_topology(f)
    s = Simulation(t)
    s.run(quiet=s.quiet_time())
    exp = bgp_lab.expected(s)
    assert exp["pe1"]["peers"] == [str(t.nodes["pe2"].lsr_id)]
    assert exp["pe2"]["peers"] == [str(t.nodes["pe1"].lsr_id)]
    assert bgp_lab.expected(s, {"pe2"})["pe1"]["peers"] == []
    monkeypatch.setattr(frr, "md5_drops", lambda lab, r: {"pe2": 3}.get(r, 0))
    line = diagnose.explain("md5n", t, ["pe1", "pe2"], lambda *a, **k: [])
    assert line == f"{text_of(cause)} (pe2: 3 TCP segments dropped for MD5)"
    assert diagnose.explain("md5n", t, ["p1"], lambda *a, **k: []) == ""


def test_ldp_and_bgp_findings_together(tmp_path: Path) -> None:
    f = tmp_path / "both.yaml"
    f.write_text(LINE3_BGP.replace("{PE1}", "{passwords: {pe2: a}}").replace("{PE2}", "{}")
                 .replace("pe1: {loopback: 10.255.0.1}",
                          "pe1: {loopback: 10.255.0.1, ldp: {passwords: {p1: b}}}"))
    t = load_bgp_topology(f)
    assert [(s.kind, s.pair) for s in config_findings(t)] == [(LDP, "pe1-p1"), (BGP, "pe1-pe2")]
    o = converge(t)
    assert o.problems() == ["pe1-p1: LDP session not established: TCP MD5 password on pe1 only",
                            text_of(ONE)]

"""A label range too small for a router's FECs (no root): RFC 5036 A.2.1 SL.9-12 in the
simulator, named by validate."""

from __future__ import annotations

import json

from click.testing import CliRunner

from lsr.cli import main
from tests.conftest import TOPOLOGIES


def test_a_label_range_too_small_is_named_not_a_traceback(tmp_path):
    """p1 with 3 labels for 4 FECs: the simulation runs (the LDE leaves one FEC without a
    local label, RFC 5036 A.2.1 SL.9-12, instead of raising out of the router) and
    validate names the cause in one row beside what it breaks."""
    text = (TOPOLOGIES / "line3.yaml").read_text().replace(
        "p1: {loopback: 10.255.0.2}", "p1: {loopback: 10.255.0.2, labels: [16, 18]}")
    f = tmp_path / "small.yaml"
    f.write_text(text)
    r = CliRunner().invoke(main, ["validate", str(f), "--json"])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    rows = json.loads(r.stdout)["results"]
    assert {"check": "label-range", "status": "fail",
            "detail": "p1's LDP labels [16, 18] are 3 for 4 FECs (every IGP prefix but its "
                      "own): 1 of them get no local label (RFC 5036 A.2.1 SL.9-12)"} in rows
    # what it costs: the FEC after the range (in FEC order) has no LSP through p1
    assert any(x["check"] == "invariant lsp-coverage" and x["status"] == "fail" for x in rows)
    ok = CliRunner().invoke(main, ["validate", str(TOPOLOGIES / "line3.yaml"), "--json"])
    assert not [x for x in json.loads(ok.stdout)["results"] if x["check"] == "label-range"]


def test_a_starved_fec_through_link_failures():
    """Through failures the plan holds: the FEC left without a label (the last in FEC
    order) stays so while a FEC with a planned label is gone (its label stays planned
    for it), and after each change the run equals a simulation of the new state from
    scratch, label for label (what a lab is compared with)."""
    from lsr.core.topology import parse_topology
    from lsr.sim import Simulation, converge

    t = parse_topology(_small())
    sim = Simulation(t)
    sim.run(quiet=sim.quiet_time())
    starved = {"192.168.2.0/24"}

    def p1_ilm(s) -> dict[str, int]:
        return {e["fec"]: e["in_label"] for e in s.lfib_json()["routers"]["p1"]["ilm"]}

    assert p1_ilm(sim) == {"10.255.0.1/32": 16, "10.255.0.3/32": 17, "192.168.1.0/24": 18}
    assert {str(p) for p in sim.instances["p1"].lde.starved} == starved
    for name in ("ce1-pe1", "ce2-pe2", "pe1-p1"):
        i = t.find_link(*name.split("-")).index
        sim.link_down(i)
        sim.run(quiet=sim.quiet_time())
        assert sim.lfib_json() == converge(t, [name]).sim.lfib_json(), name
        assert {str(p) for p in sim.instances["p1"].lde.starved} <= starved
        sim.link_up(i)
        sim.run(quiet=sim.quiet_time())
        assert sim.lfib_json() == converge(t, []).sim.lfib_json(), name
        assert {str(p) for p in sim.instances["p1"].lde.starved} == starved


def _small() -> str:
    return (TOPOLOGIES / "line3.yaml").read_text().replace(
        "p1: {loopback: 10.255.0.2}", "p1: {loopback: 10.255.0.2, labels: [16, 18]}")

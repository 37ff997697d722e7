"""One renderer for the tables of `lsr sim ...` and `lsr lab ...` (lsr/render.py): the
same layout, labels spelled as FRR's ldpd does (imp-null, exp-null; JSON keeps numbers),
uptimes HH:MM:SS (JSON keeps seconds). tests/test_lab_tables.py compares a live lab's."""

from __future__ import annotations

import json

from click.testing import CliRunner

from lsr import render
from lsr.cli import main
from lsr.sim import simulate

from .conftest import TOPOLOGIES
from .test_diagnose import line3_with


def test_spellings() -> None:
    assert [render.label_text(x) for x in (3, 0, 2, 16, 2001, None)] == [
        "imp-null", "exp-null", "exp-null", "16", "2001", "-"]
    assert render.stack_text([], "push") == "(none)" and render.stack_text([], "pop") == "-"
    assert render.stack_text([0], "swap") == "exp-null"
    assert render.stack_text([2001, 17], "push") == "2001 17"
    assert [render.hms(x) for x in (0, 5.153971, 59.9, 3600, 93784, None)] == [
        "00:00:00", "00:00:05", "00:00:59", "01:00:00", "26:03:04", "-"]


def test_frr_uptimes_become_seconds_like_ours() -> None:
    from lsr.lab.frr import uptime_seconds

    assert uptime_seconds("00:00:05") == 5
    assert uptime_seconds("01:02:03") == 3723
    assert uptime_seconds("1d02h03m") == 93780
    assert uptime_seconds("02w1d03h") == (15 * 24 + 3) * 3600
    assert [uptime_seconds(x) for x in (None, "", "soon", 7)] == [None] * 4


def test_tables_take_what_an_frr_router_gives() -> None:
    """FRR's views lack our routers' role, keepalive, uptime and retransmit fields."""
    _, _, rows = render.ldp_neighbors_table("f1", [{"neighbor": "pe1", "lsr_id": "10.255.0.1",
                                                    "state": "OPERATIONAL", "uptime": 65}])
    assert rows == [("pe1", "10.255.0.1", "OPERATIONAL", "-", "", "00:01:05")]
    _, cols, rows = render.ospf_neighbors_table("f1", [
        {"neighbor": "pe1", "router_id": "10.255.0.1", "interface": "eth1",
         "address": "10.0.0.1", "state": "Full"}])
    assert rows == [("pe1", "10.255.0.1", "eth1", "10.0.0.1", "Full", "-", "-")]
    assert cols[5] == "uptime"


def test_bindings_and_lfib_tables_spell_the_null_labels(tmp_path) -> None:
    f = tmp_path / "xnull.yaml"
    f.write_text(line3_with().replace("pe2: {loopback: 10.255.0.3}",
                                      "pe2: {loopback: 10.255.0.3, ldp: {explicit_null: true}}"))
    r = CliRunner().invoke(main, ["sim", "bindings", str(f), "-r", "p1"])
    assert r.exit_code == 0 and "exp-null" in r.stdout and "imp-null" in r.stdout
    r = CliRunner().invoke(main, ["sim", "lfib", str(f), "-r", "p1"])
    assert r.exit_code == 0 and "│ swap │ exp-null │ pe2" in r.stdout
    r = CliRunner().invoke(main, ["sim", "bindings", str(f), "-r", "p1", "--json"])
    labels = {rm["label"] for b in json.loads(r.stdout)["bindings"] for rm in b["remote"]}
    assert 0 in labels and "exp-null" not in r.stdout  # JSON keeps the numbers


def test_sim_uptime_is_hms_in_tables_and_seconds_in_json() -> None:
    line3 = str(TOPOLOGIES / "line3.yaml")
    r = CliRunner().invoke(main, ["sim", "neighbors", line3, "-r", "p1"])
    assert r.exit_code == 0 and "00:00:00" in r.stdout and "uptime" in r.stdout
    r = CliRunner().invoke(main, ["sim", "neighbors", line3, "-r", "p1", "--json"])
    up = json.loads(r.stdout)["routers"]["p1"]["neighbors"][0]["uptime"]
    assert isinstance(up, float)
    r = CliRunner().invoke(main, ["sim", "ospf", line3, "-r", "p1"])
    assert r.exit_code == 0 and "00:00:0" in r.stdout


def test_lab_commands_print_through_the_same_functions(monkeypatch) -> None:
    """`lsr lab lfib` / `lab ldp` with the lab library replaced by the simulator's JSON
    print exactly what `lsr sim lfib` / `sim bindings` / `sim neighbors` print."""
    import lsr.cli.lab as lab_cli
    from lsr.core.topology import load_topology

    path = str(TOPOLOGIES / "diamond.yaml")
    topo = load_topology(path)
    sim, _ = simulate(topo)

    class FakeLab:
        @staticmethod
        def topology(name: str):
            return topo

        @staticmethod
        def lfib(name: str, routers=None):
            return sim.lfib_json(routers)

        @staticmethod
        def ldp(name: str, router: str, what: str):
            return sim.neighbors_json(router) if what == "neighbors" else \
                sim.bindings_json(router)

    monkeypatch.setattr(lab_cli, "lab_api", lambda: FakeLab)
    monkeypatch.setattr(lab_cli, "require_root", lambda: None)

    def out(*args: str) -> str:
        r = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return r.stdout

    assert out("lab", "lfib", "x") == out("sim", "lfib", path)
    assert out("lab", "lfib", "x", "-r", "p2") == out("sim", "lfib", path, "-r", "p2")
    assert out("lab", "ldp", "x", "p1", "bindings") == out("sim", "bindings", path, "-r", "p1")
    assert out("lab", "ldp", "x", "pe1", "neighbors") == out("sim", "neighbors", path, "-r", "pe1")

"""LSP ping / traceroute against the simulator (`--sim`), the node-side helpers, no root."""

from __future__ import annotations

import json
import struct
from ipaddress import IPv4Address, IPv4Network

import pytest
from click.testing import CliRunner

from forwarding.labelops import encode_stack
from forwarding.plane import Forward, decide
from forwarding.tables import RouterTables
from lsr.cli import main
from lsr.core.igp import Igp
from lsr.core.lfib import Lfib
from lsr.core.topology import load_topology
from lsr.lab.node_oam import ldp_message_types
from lsr.oam.echo import UDP_PORT, build_echo_request_packet, multipath_range
from lsr.oam.lspping import lfib_network, lsp_ping, lsp_traceroute, resolve_fec
from lsr.oam.responder import ecmp_for
from lsr.oam.trace import echo_request
from lsr.oam.validate import expected_lsps, lfibs_from_json, walk_lsp
from lsr.sim import simulate
from tests.conftest import BUNDLED, TOPOLOGIES


@pytest.fixture(scope="module")
def line3():
    topo = load_topology(TOPOLOGIES / "line3.yaml")
    sim, res = simulate(topo)
    assert res.converged
    return topo, lfibs_from_json(sim.lfib_json())


@pytest.fixture(scope="module")
def diamond():
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    sim, res = simulate(topo)
    assert res.converged
    return topo, lfibs_from_json(sim.lfib_json())


def test_resolve_fec(line3):
    topo, _ = line3
    assert resolve_fec(topo, "pe2") == IPv4Network("10.255.0.3/32")
    assert resolve_fec(topo, "ce2") == IPv4Network("192.168.2.0/24")
    assert resolve_fec(topo, "10.255.0.3") == IPv4Network("10.255.0.3/32")
    with pytest.raises(Exception, match="neither a node"):
        resolve_fec(topo, "nowhere")


def test_ping_egress_code_3(line3):
    topo, lfibs = line3
    out = lsp_ping(lfib_network(topo, lfibs), "pe1", resolve_fec(topo, "pe2"), count=3)
    assert out["result"] == "ok"
    assert [r["return_code"] for r in out["replies"]] == [3, 3, 3]
    assert {r["router"] for r in out["replies"]} == {"pe2"}


def test_traceroute_8_then_3_matches_lfib_path(line3):
    topo, lfibs = line3
    fec = resolve_fec(topo, "pe2")
    out = lsp_traceroute(lfib_network(topo, lfibs), "pe1", fec)
    assert [(h["router"], h["return_code"]) for h in out["hops"]] == [("p1", 8), ("pe2", 3)]
    assert out["hops"][0]["labels"] == [3]  # p1 pops (PHP)
    assert out["hops"][0]["interface"] == "eth1"
    assert [("pe1", *p["routers"]) for p in out["paths"]] == walk_lsp(topo, lfibs, "pe1", fec).paths


def test_multipath_finds_both_branches(diamond):
    topo, lfibs = diamond
    fec = resolve_fec(topo, "pe2")
    out = lsp_traceroute(lfib_network(topo, lfibs), "pe1", fec, multipath=True)
    assert out["result"] == "ok"
    assert sorted(tuple(p["routers"]) for p in out["paths"]) == [("p1", "pe2"), ("p2", "pe2")]
    single = lsp_traceroute(lfib_network(topo, lfibs), "pe1", fec)
    assert len(single["paths"]) == 1


def test_broken_lsp_no_label_entry(line3):
    """p1 loses its ILM entry for pe2's FEC: traceroute names p1 with return code 11."""
    topo, lfibs = line3
    fec = resolve_fec(topo, "pe2")
    lf = lfibs["p1"]
    broken = dict(lfibs)
    broken["p1"] = Lfib(dict(lf.ftn), {k: v for k, v in lf.ilm.items() if v.fec != fec})
    net = lfib_network(topo, broken)
    tr = lsp_traceroute(net, "pe1", fec)
    assert tr["result"] == "broken"
    assert tr["broken_at"]["router"] == "p1" and tr["broken_at"]["return_code"] == 11
    ping = lsp_ping(net, "pe1", fec)
    assert ping["result"] == "broken" and ping["replies"][0]["return_code"] is None  # dropped


def test_no_lsp_at_ingress(line3):
    topo, lfibs = line3
    fec = resolve_fec(topo, "pe2")
    broken = dict(lfibs)
    broken["pe1"] = Lfib({}, dict(lfibs["pe1"].ilm))
    tr = lsp_traceroute(lfib_network(topo, broken), "pe1", fec)
    assert tr["result"] == "broken" and tr["broken_at"]["router"] == "pe1"
    assert "no FTN" in tr["reason"]


def test_cli_sim_json_and_exit_codes():
    r = CliRunner().invoke(main, ["lsp", "traceroute", "--sim", str(TOPOLOGIES / "diamond.yaml"),
                                  "pe1", "pe2", "--multipath", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["backend"] == "sim" and len(d["paths"]) == 2
    r = CliRunner().invoke(main, ["lsp", "ping", "--sim", str(TOPOLOGIES / "line3.yaml"), "pe1", "pe2",
                                  "--json", "--count", "2"])
    assert r.exit_code == 0, r.output
    assert [x["return_code"] for x in json.loads(r.output)["replies"]] == [3, 3]
    r = CliRunner().invoke(main, ["lsp", "ping", "--sim", str(TOPOLOGIES / "line3.yaml"), "pe1"])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["lsp", "ping", "--sim", str(TOPOLOGIES / "line3.yaml"), "ce1", "pe2"])
    assert r.exit_code != 0 and "no router named" in r.output


def test_ecmp_prediction_matches_dataplane(diamond):
    """The responder's ECMP function picks the NHLFE the forwarding plane uses for a
    labelled echo request (pe1's ILM entry for pe2's FEC has two next hops)."""
    topo, lfibs = diamond
    fec = resolve_fec(topo, "pe2")
    t = RouterTables.build(topo, "pe1", Igp(topo).rib("pe1"), lfibs["pe1"])
    ilm = next(e for e in t.lfib.ilm.values() if e.fec == fec)
    assert len(ilm.nexthops) == 2
    src = IPv4Address("10.255.0.9")
    pick = ecmp_for(t.seed, src, UDP_PORT)
    seen = set()
    for dst in multipath_range(32):
        ip = build_echo_request_packet(echo_request(fec), src, UDP_PORT, dst)
        frame = (t.interfaces["eth2"].mac + b"\x02" * 6 + b"\x88\x47"
                 + encode_stack((ilm.in_label,), 0, 64) + ip)
        r = decide(frame, "eth2", t)
        assert isinstance(r, Forward)
        assert r.out_if == pick(dst, list(ilm.nexthops)).interface
        seen.add(r.out_if)
    assert seen == {"eth2", "eth3"}


def test_ldp_message_types():
    pdu_body = struct.pack("!HHI", 0x0402, 4, 7) + struct.pack("!HHI", 0x0400, 4, 8)
    pdu = struct.pack("!HH", 1, 6 + len(pdu_body)) + bytes(6) + pdu_body
    assert ldp_message_types(pdu + pdu) == [0x0402, 0x0400, 0x0402, 0x0400]


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_multipath_traceroute_finds_every_lfib_branch(path):
    """What `lsr lab validate`'s cp-dp-agreement compares, in the simulator: for every
    LSP of a bundled topology the multipath LSP traceroute (hashed as the dataplane
    hashes) finds exactly the LFIB walk's branches. Before the ECMP hash mixed its
    seed in non-linearly, a transit router sent every probe the ingress sent its way
    down one of its branches (l3vpn: pe2 -> 10.0.0.4/30 missed pe2 -> p1 -> pe1)."""
    topo = load_topology(path)
    sim, _ = simulate(topo)
    lfibs = lfibs_from_json(sim.lfib_json())
    net = lfib_network(topo, lfibs)
    bad = []
    for ingress, fec in expected_lsps(topo, Igp(topo)):
        tr = lsp_traceroute(net, ingress, fec, multipath=True)
        traced = {(ingress, *p["routers"]) for p in tr["paths"]}
        walked = set(walk_lsp(topo, lfibs, ingress, fec).paths)
        if tr["result"] != "ok" or traced != walked:
            bad.append(f"{ingress} -> {fec}: {sorted(traced)} != {sorted(walked)}")
    assert not bad, bad


@pytest.mark.parametrize("cmd", ["ping", "traceroute"])
def test_no_ftn_entry_sends_nothing_and_says_so(cmd: str) -> None:
    """A FEC the ingress has no FTN entry for: no echo request goes out (what Cisco marks
    'Q'); ping and traceroute both say why. Ping used to send into nothing and report a
    timeout with no reason."""
    r = CliRunner().invoke(main, ["lsp", cmd, "--sim", str(TOPOLOGIES / "diamond.yaml"),
                                  "pe1", "10.9.9.9/32", "--json"])
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout)
    assert out["result"] == "broken"
    assert out["reason"] == "pe1 has no FTN entry (no LSP) for 10.9.9.9/32"
    if cmd == "ping":
        assert out["replies"] == []

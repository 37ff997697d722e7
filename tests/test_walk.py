"""Hop-by-hop walk: `decide` along the path; LSPs equal IGP shortest paths; `lsr sim trace`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from forwarding.tables import build_all
from forwarding.walk import make_packet, walk, walk_json
from lsr.cli import main
from lsr.core.igp import Igp
from lsr.core.topology import load_topology
from tests.conftest import BUNDLED, TOPOLOGIES
from tests.fwd_helpers import all_tables, ilm_label, line3, line4

HOP_KEYS = {"router", "in_interface", "labels_in", "op", "labels_out", "ttl_in", "ttl",
            "out_interface", "neighbor", "reason", "table", "fec", "ecmp", "icmp"}


def ops(w):
    return [(h["router"], h["op"]) for h in w["hops"]]


def test_line4_push_swap_pop_forward():
    topo = line4()
    T = all_tables(topo)
    w = walk(topo, T, "ce1", "ce2", "udp", 64)
    assert w["result"] == "delivered"
    assert ops(w) == [("pe1", "push"), ("p1", "swap"), ("p2", "pop"), ("pe2", "forward")]
    h = w["hops"]
    assert all(set(x) == HOP_KEYS for x in h)
    assert h[0]["labels_out"] == [ilm_label(T["p1"], "192.168.2.0/24")]
    assert h[1]["labels_in"] == h[0]["labels_out"]
    assert h[1]["labels_out"] == [ilm_label(T["p2"], "192.168.2.0/24")]
    assert h[2]["labels_out"] == []
    assert [x["ttl"] for x in h] == [63, 62, 61, 60]
    assert [x["ttl_in"] for x in h] == [64, 63, 62, 61]
    assert [x["neighbor"] for x in h] == ["p1", "p2", "pe2", "ce2"]


@pytest.mark.parametrize("proto", ["icmp", "udp", "tcp"])
def test_protocols(proto):
    topo = line3()
    w = walk(topo, all_tables(topo), "ce1", "ce2", proto)
    assert w["result"] == "delivered" and w["proto"] == proto


def test_traceroute_uniform_shows_every_lsr():
    topo = line4()
    T = all_tables(topo)
    seen = []
    for ttl in range(1, 6):
        w = walk(topo, T, "ce1", "ce2", "udp", ttl)
        last = w["hops"][-1]
        if w["result"] == "delivered":
            seen.append("ce2")
            break
        assert last["op"] == "drop" and last["reason"] == "ttl-expired"
        assert last["icmp"]["type"] == 11 and last["icmp"]["dst"] == "192.168.1.1"
        seen.append(last["router"])
    assert seen == ["pe1", "p1", "p2", "pe2", "ce2"]


def test_traceroute_pipe_hides_the_core():
    opts = {r: "ttl_model: pipe" for r in ("pe1", "p1", "p2", "pe2")}
    topo = line4(**opts)
    T = all_tables(topo)
    seen = []
    for ttl in range(1, 6):
        w = walk(topo, T, "ce1", "ce2", "udp", ttl)
        if w["result"] == "delivered":
            seen.append("ce2")
            break
        seen.append(w["hops"][-1]["router"])
    assert seen == ["pe1", "pe2", "ce2"]  # the LSP counts as one hop


def test_ttl_expiry_icmp_is_tunnelled_along_lsp():
    topo = line4()
    T = all_tables(topo)
    w = walk(topo, T, "ce1", "ce2", "udp", 2)
    last = w["hops"][-1]
    assert last["router"] == "p1" and last["labels_in"] == [ilm_label(T["p1"], "192.168.2.0/24")]
    assert last["icmp"]["labels_out"] == [ilm_label(T["p2"], "192.168.2.0/24")]
    assert last["icmp"]["out_interface"] == "eth2"


def test_icmp_error_is_walked_to_the_egress_and_back():
    """RFC 3032 §2.3.2: p1 (a swapping P router) sends the Time Exceeded on along the
    LSP; p2 pops it (PHP), the egress pe2 routes it back to ce1 over the reverse LSP."""
    topo = line4()
    T = all_tables(topo)
    w = walk(topo, T, "ce1", "ce2", "udp", 2)
    drop = w["hops"][-1]
    assert (drop["table"], drop["fec"]) == ("ilm", "192.168.2.0/24")
    ic = drop["icmp"]
    assert ic["onward"] is True and ic["result"] == "delivered"
    assert all(set(x) == HOP_KEYS for x in ic["hops"])
    assert [(h["router"], h["op"]) for h in ic["hops"]] == [
        ("p1", "push"), ("p2", "pop"), ("pe2", "push"), ("p2", "swap"), ("p1", "pop"),
        ("pe1", "forward")]
    first = ic["hops"][0]
    assert first["in_interface"] is None and first["labels_out"] == ic["labels_out"]
    assert first["ttl"] == 255 and first["fec"] == "192.168.2.0/24"
    assert ic["hops"][2]["fec"] == "192.168.1.0/24"  # the egress routes it to the source
    assert ic["hops"][-1]["neighbor"] == "ce1"


def test_icmp_error_after_php_is_routed_back():
    """A PHP router has no onward label: it routes the error back by IP at once."""
    topo = line3()
    T = all_tables(topo)
    w = walk(topo, T, "ce1", "ce2", "icmp", 2)
    ic = w["hops"][-1]["icmp"]
    assert ic["onward"] is False and ic["result"] == "delivered"
    assert [(h["router"], h["op"]) for h in ic["hops"]] == [("p1", "forward"), ("pe1", "forward")]
    # an ICMP error about the error is never sent: a 1-hop TTL still reaches ce1
    w = walk(topo, T, "ce1", "ce2", "icmp", 1)
    assert w["hops"][-1]["icmp"]["hops"][0]["router"] == "pe1"


def test_router_source_icmp_is_delivered_to_the_router():
    topo = line4()
    w = walk(topo, all_tables(topo), "pe1", "pe2", "udp", 2)
    ic = w["hops"][-1]["icmp"]
    assert w["hops"][-1]["router"] == "p2" and ic["result"] == "delivered"
    assert ic["hops"][-1]["router"] == "pe1" and ic["hops"][-1]["op"] == "deliver"


def test_ecmp_choice_follows_the_ports():
    """diamond: pe1 has two next hops to ce2; the hash of the 5-tuple picks one, and
    different source ports reach both branches."""
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    T = _sim_tables(topo)
    seen = {}
    for sport in range(40000, 40016):
        w = walk(topo, T, "ce1", "ce2", "udp", 64, sport, 53)
        assert (w["sport"], w["dport"]) == (sport, 53)
        first = w["hops"][0]
        e = first["ecmp"]
        assert e["choices"] == ["p1", "p2"] and e["index"] == e["hash"] % 2
        assert first["neighbor"] == e["choices"][e["index"]]
        assert all(h["ecmp"] is None for h in w["hops"][1:])
        seen.setdefault(first["neighbor"], sport)
        again = walk(topo, T, "ce1", "ce2", "udp", 64, sport, 53)
        assert again["hops"][0]["neighbor"] == first["neighbor"]  # one flow, one path
    assert set(seen) == {"p1", "p2"}
    w = walk(topo, T, "ce1", "ce2")
    assert (w["sport"], w["dport"]) == (None, None)  # ICMP: no ports hashed


def test_router_source_and_address_destination():
    topo = line4()
    T = all_tables(topo)
    w = walk(topo, T, "pe1", "10.255.0.4")
    assert w["result"] == "delivered"
    assert w["hops"][0]["in_interface"] is None and w["hops"][0]["op"] == "push"
    assert w["hops"][-1]["router"] == "pe2" and w["hops"][-1]["op"] == "deliver"
    w = walk(topo, T, "ce1", "pe1")
    assert ops(w) == [("pe1", "deliver")]
    w = walk(topo, T, "pe1", "pe1")
    assert w["result"] == "delivered"


def test_unknown_endpoint():
    topo = line3()
    with pytest.raises(ValueError):
        walk(topo, all_tables(topo), "ce1", "nowhere")
    with pytest.raises(ValueError):
        walk(topo, all_tables(topo), "ce1", "8.8.8.8")
    with pytest.raises(ValueError):
        make_packet(topo.nodes["pe1"].lsr_id, topo.nodes["pe2"].lsr_id, "sctp")


def test_missing_ilm_entry_is_a_drop():
    topo = line4()
    T = all_tables(topo)
    T["p1"].ilm.clear()
    T["p1"].fast_ilm.clear()
    w = walk_json(topo, T, "ce1", "ce2")
    assert w["result"] == "dropped"
    assert w["hops"][-1]["router"] == "p1" and w["hops"][-1]["reason"] == "no-ilm-entry"


def _sim_tables(topo):
    from lsr.cli.trace import lfibs_for

    return build_all(topo, Igp(topo).ribs(), lfibs_for(topo))


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_every_lsp_follows_an_igp_shortest_path(path):
    """Walk host to host and router to router over the simulator's LFIBs: delivered,
    labelled end to end, and the sum of link costs equals the IGP metric. (Hosts in VRFs
    are the VPN tests' business, tests/test_vpn_sim.py.)"""
    topo = load_topology(path)
    igp = Igp(topo)
    T = _sim_tables(topo)
    ends = [h.name for h in topo.hosts if topo.vrf_of(h.name) is None] + \
        [r.name for r in topo.routers]
    cost = {}
    for link in topo.links:
        cost[(link.a[0], link.a[1])] = link.cost
        cost[(link.b[0], link.b[1])] = link.cost
    for s in ends:
        for d in ends:
            if s == d:
                continue
            w = walk(topo, T, s, d, "udp")
            assert w["result"] == "delivered", (s, d, w)
            hops = w["hops"]
            routers = [h for h in hops if h["op"] != "deliver"]
            total = sum(cost[(h["router"], h["out_interface"])] for h in routers
                        if topo.nodes[h["neighbor"]].is_router)
            src_r = hops[0]["router"]
            dst_r = hops[-1]["router"] if hops[-1]["op"] == "deliver" else hops[-1]["neighbor"]
            if not topo.nodes[dst_r].is_router:
                dst_r = hops[-1]["router"]
            if src_r != dst_r:
                assert total == igp.spf(src_r)[dst_r][0], (s, d)
            # Between distinct edge routers the path is labelled: push ... pop/forward
            if len(hops) > 2:
                assert hops[0]["op"] == "push", (s, d, hops)
                assert all(h["op"] in ("swap", "pop") for h in hops[1:-1] if h["labels_in"])


def test_forward_neighbor_is_a_node_name_with_simulated_lfibs():
    from forwarding.plane import decide
    from tests.fwd_helpers import ip_frame, udp

    topo = load_topology(TOPOLOGIES / "line3.yaml")
    T = _sim_tables(topo)
    r = decide(ip_frame(T["pe1"], "eth1", udp("192.168.1.1", "192.168.2.2")), "eth1", T["pe1"])
    assert r.op == "push" and r.neighbor == "p1"


def test_cli_trace_json():
    r = CliRunner().invoke(main, ["sim", "trace", str(TOPOLOGIES / "line3.yaml"), "ce1", "ce2",
                                  "--proto", "tcp", "--ttl", "9", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["result"] == "delivered" and d["proto"] == "tcp" and d["ttl"] == 9
    assert [h["op"] for h in d["hops"]] == ["push", "pop", "forward"]
    assert [h["ttl"] for h in d["hops"]] == [8, 7, 6]


def test_cli_trace_table_and_errors():
    f = str(TOPOLOGIES / "line3.yaml")
    r = CliRunner().invoke(main, ["sim", "trace", f, "ce1", "ce2", "--ttl", "2"])
    assert r.exit_code == 0, r.output
    assert "ttl-expired" in r.output and "result: dropped" in r.output
    r = CliRunner().invoke(main, ["sim", "trace", f, "ce1", "nowhere"])
    assert r.exit_code == 2 and "nowhere" in r.output
    r = CliRunner().invoke(main, ["sim", "trace", f, "ce1", "ce2", "--ttl", "0"])
    assert r.exit_code == 2


def test_cli_trace_icmp_table_and_ecmp_notes():
    f = str(TOPOLOGIES / "unequal.yaml")
    r = CliRunner().invoke(main, ["sim", "trace", f, "ce1", "ce2", "--ttl", "2"],
                           terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "ICMP 11/0 10.0.0.2 -> 192.168.0.1 from p1, on along the LSP" in " ".join(r.output.split())
    assert "ICMP error: delivered" in r.output and r.output.rstrip().endswith("result: dropped")
    d = str(TOPOLOGIES / "diamond.yaml")
    r = CliRunner().invoke(main, ["sim", "trace", d, "ce1", "ce2", "--proto", "tcp",
                                  "--sport", "1234", "--dport", "80", "--json"])
    w = json.loads(r.output)
    assert (w["sport"], w["dport"]) == (1234, 80) and w["hops"][0]["ecmp"]["choices"] == ["p1", "p2"]
    r = CliRunner().invoke(main, ["sim", "trace", d, "ce1", "ce2", "--proto", "tcp",
                                  "--sport", "1234", "--dport", "80"])
    assert "ECMP hash inputs: 192.168.1.1 -> 192.168.2.2, tcp, ports 1234 -> 80" in \
        " ".join(r.output.split())
    assert "hop 1 pe1: ECMP hash 0x" in r.output


def test_a_host_whose_link_is_down_sends_and_receives_nothing():
    """The routers route around a link down, but a host's own link is the walk's to see:
    `lsr sim trace ce1 ce2 --down ce1-pe1` said "delivered" (the walk began at pe1)."""
    r = CliRunner().invoke(main, ["sim", "trace", str(TOPOLOGIES / "diamond.yaml"), "ce1", "ce2",
                                  "--down", "ce1-pe1", "--json"])
    assert r.exit_code == 0, r.output
    w = json.loads(r.output)
    assert w["result"] == "dropped"
    assert [(h["router"], h["op"], h["reason"]) for h in w["hops"]] == [
        ("ce1", "drop", "link ce1-pe1 down")]
    # towards it: the last router's way out is down
    topo = load_topology(TOPOLOGIES / "line3.yaml")
    tables = all_tables(topo)
    idx = topo.parse_link("pe2-ce2").index
    w = walk(topo, tables, "ce1", "ce2", down={idx})
    assert w["result"] == "dropped" and w["hops"][-1]["router"] == "pe2"
    assert (w["hops"][-1]["op"], w["hops"][-1]["reason"]) == ("drop", "link pe2-ce2 down")
    assert walk(topo, tables, "ce1", "ce2")["result"] == "delivered"  # no down: as ever

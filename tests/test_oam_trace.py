"""LSP ping / traceroute engine over simulated paths: healthy LSPs, ECMP
multipath exploration, a broken hop (code 11), timeouts, stray replies."""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from lsr.core.lfib import Lfib
from lsr.core.topology import load_topology
from lsr.oam.echo import LOCALHOST, EchoMessage, ReturnCode
from lsr.oam.responder import tables_from_topology
from lsr.oam.trace import LfibNetwork, Reply, echo_request, ping, traceroute
from lsr.oam.validate import reference_lfibs
from tests.conftest import TOPOLOGIES


def network(name: str, lfibs: dict[str, Lfib] | None = None):
    topo = load_topology(TOPOLOGIES / f"{name}.yaml")
    lf = lfibs or reference_lfibs(topo)
    tables = {r.name: tables_from_topology(topo, r.name, lf[r.name]) for r in topo.routers}
    return topo, lf, LfibNetwork.from_topology(topo, tables)


def trace(net: LfibNetwork, ingress: str, fec: IPv4Network, multipath: bool = False, **kw):
    return traceroute(net.sender(ingress, fec), fec, ingress, multipath=multipath,
                      first_ddmaps=net.first_ddmaps(ingress, fec, multipath), **kw)


def test_line3_traceroute_and_ping() -> None:
    topo, lf, net = network("line3")
    fec = IPv4Network("10.255.0.3/32")
    tr = trace(net, "pe1", fec)
    assert tr.result == "ok" and tr.broken_at is None
    assert [(h.ttl, h.router, h.return_code, h.labels) for h in tr.hops] == [
        (1, "p1", ReturnCode.LABEL_SWITCHED, (3,)),
        (2, "pe2", ReturnCode.EGRESS, ()),
    ]
    j = json.loads(json.dumps(tr.to_json()))
    assert j["fec"] == "10.255.0.3/32" and j["from"] == "pe1" and j["result"] == "ok"
    assert j["broken_at"] is None
    h0 = j["hops"][0]
    assert {"ttl", "router", "address", "return_code", "return_code_name", "labels", "interface",
            "rtt_ms"} <= set(h0)
    assert (h0["return_code"], h0["return_code_name"]) == (8, "label switched at stack depth")
    assert (h0["address"], h0["interface"]) == (str(topo.interface("p1", "eth1").address.ip), "eth1")
    p = ping(net.sender("pe1", fec), fec, "pe1", count=3)
    assert p.result == "ok" and [r["return_code"] for r in p.replies] == [3, 3, 3]


def test_longer_path_labels_per_hop() -> None:
    topo, lf, net = network("unequal")
    fec = IPv4Network("10.255.0.4/32")
    tr = trace(net, "pe1", fec)
    assert [h.router for h in tr.hops] == ["p1", "p2", "pe2"]
    p2_label = next(e.in_label for e in lf["p2"].ilm.values() if e.fec == fec)
    assert tr.hops[0].labels == (p2_label,)  # p1 swaps to p2's label
    assert tr.hops[1].labels == (3,)  # p2 pops (PHP)
    assert [h.return_code for h in tr.hops] == [8, 8, 3]


def test_diamond_multipath_explores_every_branch() -> None:
    topo, lf, net = network("diamond")
    fec = IPv4Network("10.255.0.4/32")
    tr = trace(net, "pe1", fec, multipath=True)
    assert tr.result == "ok"
    assert sorted(tuple(p["routers"]) for p in tr.paths) == [("p1", "pe2"), ("p2", "pe2")]
    assert {h.path for h in tr.hops} == {0, 1}
    single = trace(net, "pe1", fec)
    assert single.result == "ok" and len(single.paths) == 1 and len(single.hops) == 2


def test_ring_multipath_from_each_router() -> None:
    topo, lf, net = network("ring")
    for r in topo.routers:
        for fec in [IPv4Network(f"{o.lsr_id}/32") for o in topo.routers if o.name != r.name]:
            tr = trace(net, r.name, fec, multipath=True)
            assert tr.result == "ok", (r.name, fec, tr.to_json())
            # each branch ends at the FEC's router
            owner = topo.node_of_address(fec.network_address).name
            assert all(p["routers"][-1] == owner for p in tr.paths)


def test_broken_hop_reports_no_label_entry_at_the_broken_router() -> None:
    topo, lf, net = network("unequal")
    fec = IPv4Network("10.255.0.4/32")
    p2_label = next(e.in_label for e in lf["p2"].ilm.values() if e.fec == fec)
    del lf["p2"].ilm[p2_label]  # p2 lost its entry: p1 still swaps to it
    tr = trace(net, "pe1", fec)
    assert tr.result == "broken"
    assert [(h.router, h.return_code) for h in tr.hops] == [("p1", 8), ("p2", ReturnCode.NO_LABEL_ENTRY)]
    b = tr.to_json()["broken_at"]
    assert (b["ttl"], b["router"], b["return_code"], b["return_code_name"]) == \
        (2, "p2", 11, "no label entry at stack depth")
    assert ping(net.sender("pe1", fec), fec, "pe1").result == "broken"  # dropped: timeout


def test_broken_branch_in_multipath() -> None:
    topo, lf, net = network("diamond")
    fec = IPv4Network("10.255.0.4/32")
    lbl = next(e.in_label for e in lf["p2"].ilm.values() if e.fec == fec)
    del lf["p2"].ilm[lbl]
    tr = trace(net, "pe1", fec, multipath=True)
    assert tr.result == "broken"
    res = {tuple(p["routers"]): p["result"] for p in tr.paths}
    assert res == {("p1", "pe2"): "ok", ("p2",): "broken"}
    assert tr.broken_at.router == "p2" and tr.broken_at.return_code == 11


def test_timeouts_end_the_trace() -> None:
    fec = IPv4Network("10.255.0.3/32")
    calls = []

    def send(ttl: int, request: EchoMessage):
        calls.append(ttl)
        return None

    tr = traceroute(send, fec, "pe1", timeouts=3)
    assert calls == [1, 2, 3]
    assert tr.result == "broken" and tr.paths == [{"path": 0, "result": "timeout", "routers": []}]
    assert tr.to_json()["broken_at"]["return_code_name"] == "timeout"


def test_replies_for_other_probes_are_ignored() -> None:
    topo, lf, net = network("line3")
    fec = IPv4Network("10.255.0.3/32")
    real = net.sender("pe1", fec)

    def send(ttl: int, request: EchoMessage):
        r = real(ttl, request)
        return Reply(replace(r.message, sequence=r.message.sequence + 1000), r.router, r.address)

    tr = traceroute(send, fec, "pe1", timeouts=2)
    assert tr.result == "broken" and all(h.return_code is None for h in tr.hops)


def test_max_ttl_bounds_a_trace_that_never_ends() -> None:
    fec = IPv4Network("10.255.0.3/32")

    def send(ttl: int, request: EchoMessage):
        return Reply(EchoMessage(msg_type=2, return_code=8, return_subcode=1,
                                 sender_handle=request.sender_handle, sequence=request.sequence),
                     f"r{ttl}", IPv4Address("10.0.0.1"))

    tr = traceroute(send, fec, "pe1", max_ttl=5)
    assert len(tr.hops) == 5 and tr.result == "broken" and tr.paths[0]["result"] == "max-ttl"


def test_request_shape() -> None:
    fec = IPv4Network("10.255.0.3/32")
    req = echo_request(fec, sequence=3, handle=9)
    assert req.validate_fec and req.fec_stack.fecs[0].prefix == fec and req.ddmaps == ()
    assert EchoMessage.decode(req.encode()) == req


def _silent(net: LfibNetwork, ingress: str, fec: IPv4Network, quiet: str):
    """A `send` through `net` in which router `quiet` forwards but never answers (as an
    LSR without an RFC 8029 responder, e.g. FRR on its own)."""
    real = net.sender(ingress, fec)

    def send(ttl: int, request: EchoMessage, dst: IPv4Address = LOCALHOST):
        r = real(ttl, request, dst)
        return None if r is not None and r.router == quiet else r
    return send


def _names(net: LfibNetwork):
    return {a: n for n, t in net.tables.items() for a in t.addresses()}.get


def test_silent_transit_hop_is_never_ok() -> None:
    """p1 label-switches but does not answer: the egress answers at TTL 3, yet the trace
    is not `ok` with p1 missing - it is a timeout at p1 (named by pe1's DDMAP)."""
    topo, lf, net = network("unequal")
    fec = IPv4Network("10.255.0.4/32")
    tr = traceroute(_silent(net, "pe1", fec, "p1"), fec, "pe1",
                    first_ddmaps=net.first_ddmaps("pe1", fec, False), name_of=_names(net))
    assert [(h.router, h.return_code) for h in tr.hops] == [(None, None), ("p2", 8), ("pe2", 3)]
    assert tr.result == "broken"
    assert tr.paths == [{"path": 0, "result": "timeout", "routers": ["p2", "pe2"]}]
    j = tr.to_json()
    assert j["hops"][0]["expected_router"] == "p1"
    assert (j["broken_at"]["ttl"], j["broken_at"]["router"], j["broken_at"]["return_code_name"]) \
        == (1, "p1", "timeout")


def test_silent_hop_on_one_multipath_branch() -> None:
    topo, lf, net = network("diamond")
    fec = IPv4Network("10.255.0.4/32")
    tr = traceroute(_silent(net, "pe1", fec, "p2"), fec, "pe1", multipath=True,
                    first_ddmaps=net.first_ddmaps("pe1", fec, True), name_of=_names(net))
    res = {p["path"]: p["result"] for p in tr.paths}
    assert sorted(res.values()) == ["ok", "timeout"] and tr.result == "broken"
    assert tr.to_json()["broken_at"]["router"] == "p2"


def test_lsp_traceroute_names_expected_routers() -> None:
    from lsr.oam.lspping import lsp_traceroute

    topo, lf, net = network("unequal")
    out = lsp_traceroute(net, "pe1", IPv4Network("10.255.0.4/32"))
    assert [(h["router"], h["expected_router"]) for h in out["hops"]] == \
        [("p1", "p1"), ("p2", "p2"), ("pe2", "pe2")]

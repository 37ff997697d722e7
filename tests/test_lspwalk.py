"""One LSP walker (`lsr.oam.lspwalk`) and the views built on it (issue 14, item 2).

Before the walk was one, `lsr.oam.validate.walk_lsp` (invariants, `expect:`),
`lsr.teach.net.lsp_hops` (drawings, `lsr draw --lsp`) and
`lsr.oam.trace.LfibNetwork.probe` (the simulator's RFC 8029 ping) each
followed LFIBs their own way. On line3 (pe1 - p1 - pe2), FEC pe2/32, they
disagreed (the first commit of this file recorded it):

* A: pe1 pushes p1's label for ANOTHER FEC (pe2's host subnet), whose ILM
  entry also ends at pe2: walk_lsp said label-continuity, lsp_hops drew a
  healthy LSP (LSP ping succeeds; LSP traceroute answers return code 10).
* B: p1 swaps to a label (99) towards the egress pe2, which advertised
  implicit-null: walk_lsp said php, lsp_hops a healthy LSP; the probe is
  dropped at pe2.
* C: p1 sends explicit-null to pe2, which advertised implicit-null: walk_lsp
  said php, lsp_hops a healthy LSP.
* D: pe1 pushes two labels: both followed the top label only and called the
  LSP healthy; the packet reaches pe2 with label 77 left.
* E: the ingress is the FEC's egress: walk_lsp said lsp-coverage, lsp_hops
  one complete branch (pe2,).
* F: 66 hops: walk_lsp fine, lsp_hops "loop" past 64 hops, the probe gave up
  after 64 hops.

Now each case has one answer (RFC 3031 §3.1 label continuity, RFC 3032 §2.1
null labels and TTL): A-D are broken LSPs for both views, E and F healthy.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from ipaddress import IPv4Network

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsr.core.lfib import FtnEntry, IlmEntry, Lfib, Nhlfe
from lsr.core.topology import Topology, load_topology, parse_topology
from lsr.oam import lspwalk
from lsr.oam.responder import tables_from_topology
from lsr.oam.trace import LfibNetwork, ping, traceroute
from lsr.oam.validate import reference_lfibs, walk_lsp
from lsr.teach.net import Network, lsp_hops
from tests.conftest import TOPOLOGIES

PE2 = IPv4Network("10.255.0.3/32")
PE2_HOSTS = IPv4Network("192.168.2.0/24")


def line3() -> tuple[Topology, dict[str, Lfib]]:
    topo = load_topology(TOPOLOGIES / "line3.yaml")
    return topo, copy.deepcopy(reference_lfibs(topo))


def ilm_for(lf: Lfib, fec: IPv4Network) -> IlmEntry:
    return next(e for e in lf.ilm.values() if e.fec == fec)


def set_ftn_labels(lf: Lfib, fec: IPv4Network, labels: tuple[int, ...]) -> None:
    e = lf.ftn[fec]
    (nh,) = e.nexthops
    lf.ftn[fec] = replace(e, nexthops=(replace(nh, out_labels=labels),))


def set_ilm_labels(lf: Lfib, fec: IPv4Network, labels: tuple[int, ...]) -> None:
    e = ilm_for(lf, fec)
    (nh,) = e.nexthops
    lf.ilm[e.in_label] = replace(e, nexthops=(replace(nh, out_labels=labels,
                                                      op="swap" if labels else "pop"),))


def lfib_network(topo: Topology, lf: dict[str, Lfib]) -> LfibNetwork:
    return LfibNetwork.from_topology(
        topo, {r.name: tables_from_topology(topo, r.name, lf.get(r.name, Lfib())) for r in topo.routers})


def views(topo: Topology, lf: dict[str, Lfib], ingress: str, fec: IPv4Network) -> dict:
    """What each consumer says about the LSP."""
    w = walk_lsp(topo, lf, ingress, fec)
    t = lsp_hops(Network(topo, {}, {}, "sim", set(), lf), ingress, fec)
    net = lfib_network(topo, lf)
    tr = traceroute(net.sender(ingress, fec), fec, ingress,
                    first_ddmaps=net.first_ddmaps(ingress, fec, False)) if fec in lf[ingress].ftn else None
    return {
        "walk_lsp": (w.paths, [(x.check, x.detail) for x in w.problems]),
        "lsp_hops": (t.branches, t.problems),
        "ping": ping(net.sender(ingress, fec), fec, ingress).result,
        "trace": None if tr is None else (tr.result, [(h.router, h.return_code) for h in tr.hops]),
    }


# ---------------------------------------------------------------- the cases that disagreed


def test_a_label_of_another_fec() -> None:
    topo, lf = line3()
    other = ilm_for(lf["p1"], PE2_HOSTS).in_label
    set_ftn_labels(lf["pe1"], PE2, (other,))
    v = views(topo, lf, "pe1", PE2)
    detail = f"pe1 -> p1: out label {other} is p1's label for {PE2_HOSTS}, not {PE2}"
    assert v["walk_lsp"] == ([], [("label-continuity", detail)])
    assert v["lsp_hops"] == ([], [detail])
    # The data plane still delivers it; the RFC 8029 FEC check at p1 sees the break.
    assert v["ping"] == "ok"
    assert v["trace"] == ("broken", [("p1", 10)])


def test_b_label_sent_to_the_egress() -> None:
    topo, lf = line3()
    set_ilm_labels(lf["p1"], PE2, (99,))
    v = views(topo, lf, "pe1", PE2)
    detail = "p1 -> pe2: missing PHP, sends label [99] to the egress (expected pop)"
    assert v["walk_lsp"] == ([], [("php", detail)])
    assert v["lsp_hops"] == ([], [detail])
    assert v["ping"] == "broken"
    assert v["trace"] == ("broken", [("p1", 8), ("pe2", 11)])


def test_c_explicit_null_the_egress_did_not_ask_for() -> None:
    topo, lf = line3()
    set_ilm_labels(lf["p1"], PE2, (0,))
    v = views(topo, lf, "pe1", PE2)
    detail = "p1 -> pe2: missing PHP, sends label [0] to the egress (expected pop)"
    assert v["walk_lsp"] == ([], [("php", detail)])
    assert v["lsp_hops"] == ([], [detail])
    assert v["ping"] == "ok"  # pe2 pops explicit-null (RFC 3032 §2.1): tolerated, not what it asked


def test_c_explicit_null_the_egress_asked_for() -> None:
    topo = load_topology(TOPOLOGIES / "line3.yaml")
    topo.nodes["pe2"] = replace(topo.nodes["pe2"], ldp=replace(topo.nodes["pe2"].ldp, explicit_null=True))
    lf = reference_lfibs(topo)
    assert ilm_for(lf["p1"], PE2).nexthops[0].out_labels == (0,)
    v = views(topo, lf, "pe1", PE2)
    assert v["walk_lsp"] == ([("pe1", "p1", "pe2")], []) and v["lsp_hops"] == ([("pe1", "p1", "pe2")], [])
    set_ilm_labels(lf["p1"], PE2, ())
    v = views(topo, lf, "pe1", PE2)
    detail = "p1 -> pe2: sends unlabelled to the egress, which asked for explicit-null"
    assert v["walk_lsp"] == ([], [("php", detail)]) and v["lsp_hops"] == ([], [detail])


def test_d_two_labels_pushed() -> None:
    topo, lf = line3()
    top = lf["pe1"].ftn[PE2].nexthops[0].out_labels[0]
    set_ftn_labels(lf["pe1"], PE2, (top, 77))
    v = views(topo, lf, "pe1", PE2)
    detail = "p1 -> pe2: missing PHP, sends label [77] to the egress (expected pop)"
    assert v["walk_lsp"] == ([], [("php", detail)])  # the label under the top one is carried
    assert v["lsp_hops"] == ([], [detail])
    assert v["ping"] == "broken"


def test_e_ingress_is_the_egress() -> None:
    topo, lf = line3()
    w = walk_lsp(topo, lf, "pe2", PE2)
    t = lsp_hops(Network(topo, {}, {}, "sim", set(), lf), "pe2", PE2)
    assert (w.paths, w.problems) == ([("pe2",)], [])
    assert (t.branches, t.problems, t.hops) == ([("pe2",)], [], [])


def chain(n: int) -> Topology:
    return parse_topology(
        "name: chain\ntopology:\n  nodes:\n" + "".join(f"    r{i}: {{}}\n" for i in range(n))
        + "  links:\n" + "".join(f"    - endpoints: [r{i}:eth1, r{i + 1}:eth2]\n" for i in range(n - 1)))


def chain_lfibs(topo: Topology, fec: IPv4Network) -> dict[str, Lfib]:
    """r0 .. rN-1 in a line, one LSP to rN-1: ri's label for it is 100 + i, PHP at rN-2."""
    n = len(topo.routers)
    out: dict[str, Lfib] = {}
    for i in range(n - 1):
        peer = topo.interface(f"r{i + 1}", "eth2")
        out_labels = (101 + i,) if i < n - 2 else ()
        nh = Nhlfe(f"r{i + 1}", "eth1", peer.address.ip, out_labels)
        out[f"r{i}"] = Lfib({fec: FtnEntry(fec, (nh,))}, {100 + i: IlmEntry(
            100 + i, fec, (replace(nh, op="swap" if out_labels else "pop"),))})
    out[f"r{n - 1}"] = Lfib()
    return out


def test_f_more_than_64_hops() -> None:
    topo = chain(67)
    fec = IPv4Network(f"{topo.nodes['r66'].lsr_id}/32")
    lf = chain_lfibs(topo, fec)
    w = walk_lsp(topo, lf, "r0", fec)
    t = lsp_hops(Network(topo, {}, {}, "sim", set(), lf), "r0", fec)
    assert len(w.paths[0]) == 67 and not w.problems
    assert t.branches == w.paths and not t.problems
    assert ping(lfib_network(topo, lf).sender("r0", fec), fec, "r0").result == "ok"
    # The limit is the label TTL's (RFC 3032 §2.4), or the caller's.
    short = lspwalk.walk(topo, lf, "r0", fec, max_hops=10)
    (p,) = short.problems
    assert (p.kind, p.router, len(short.branches[0].hops)) == (lspwalk.MAX_HOPS_EXCEEDED, "r10", 11)
    assert p.detail.startswith("more than 10 hops: r0 -> r1 -> ")
    assert lsp_hops(Network(topo, {}, {}, "sim", set(), lf), "r0", fec, max_hops=10).problems == [p.detail]


# ---------------------------------------------------------------- the walk itself


def test_ecmp_branches_hops_and_operations() -> None:
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    lf = reference_lfibs(topo)
    fec = IPv4Network("10.255.0.4/32")
    w = lspwalk.walk(topo, lf, "pe1", fec)
    assert w.ok and not w.truncated
    assert [b.routers for b in w.branches] == [("pe1", "p1", "pe2"), ("pe1", "p2", "pe2")]
    push, php = w.branches[0].hops
    p1_label = ilm_for(lf["p1"], fec).in_label
    assert (push.router, push.in_label, push.op, push.stack, push.neighbor) == ("pe1", None, "push",
                                                                               (p1_label,), "p1")
    assert (php.router, php.in_label, php.op, php.stack, php.interface) == ("p1", p1_label, "php", (), "eth2")
    # p1 -> pe2 is PHP to the egress: from p1 the FTN sends IP.
    (b,) = lspwalk.walk(topo, lf, "p1", fec).branches
    assert [h.op for h in b.hops] == ["ip"]


def test_pop_with_labels_below_and_implicit_null_never_sent() -> None:
    nh = Nhlfe("p1", "eth2", IPv4Network("10.0.0.0/30").network_address, (3,), "pop")
    assert lspwalk.wire_labels(nh) == ()
    assert lspwalk.step("pe1", (20, 77), nh).op == "pop" and lspwalk.step("pe1", (20, 77), nh).stack == (77,)
    assert lspwalk.step("pe1", (20,), nh).op == "php"
    assert lspwalk.step("pe1", (20, 77), replace(nh, out_labels=(30, 40))).stack == (30, 40, 77)
    assert lspwalk.step("pe1", None, nh).op == "ip"


def test_problems_have_stable_kinds() -> None:
    topo, lf = line3()
    assert [p.kind for p in lspwalk.walk(topo, {}, "pe1", PE2).problems] == [lspwalk.NO_FTN]
    e = ilm_for(lf["p1"], PE2)
    lf["p1"].ilm[e.in_label] = replace(e, nexthops=())
    (p,) = lspwalk.walk(topo, lf, "pe1", PE2).problems
    assert (p.kind, p.router) == (lspwalk.BLACKHOLE, "p1")
    del lf["p1"].ilm[e.in_label]
    (p,) = lspwalk.walk(topo, lf, "pe1", PE2).problems
    assert (p.kind, p.router, p.hop and p.hop.stack) == (lspwalk.MISSING_ILM, "pe1", (e.in_label,))
    lf["p1"].ilm[e.in_label + 7] = replace(e, in_label=e.in_label + 7)
    (p,) = lspwalk.walk(topo, lf, "pe1", PE2).problems
    assert p.kind == lspwalk.LABEL_DISCONTINUITY
    assert p.detail == f"pe1 -> p1: out label {e.in_label} but p1's label for {PE2} is {e.in_label + 7}"
    topo, lf = line3()
    set_ftn_labels(lf["pe1"], PE2, ())
    (p,) = lspwalk.walk(topo, lf, "pe1", PE2).problems
    assert p.kind == lspwalk.EARLY_POP
    e = lf["pe1"].ftn[PE2]
    lf["pe1"].ftn[PE2] = replace(e, nexthops=(replace(e.nexthops[0], neighbor="ce1"),))
    (p,) = lspwalk.walk(topo, lf, "pe1", PE2).problems
    assert p.kind == lspwalk.NOT_A_ROUTER
    assert set(lspwalk.PROBLEMS) == {lspwalk.NO_FTN, lspwalk.LOOP, lspwalk.MAX_HOPS_EXCEEDED,
                                     lspwalk.NOT_A_ROUTER, lspwalk.EGRESS_LABEL, lspwalk.EARLY_POP,
                                     lspwalk.LABEL_DISCONTINUITY, lspwalk.MISSING_ILM, lspwalk.BLACKHOLE}


def test_loop_and_truncation() -> None:
    topo, lf = line3()
    e = ilm_for(lf["p1"], PE2)
    back = topo.interface("pe1", "eth2").address.ip
    lf["p1"].ilm[e.in_label] = replace(e, nexthops=(replace(
        e.nexthops[0], neighbor="pe1", interface="eth1", nexthop=back,
        out_labels=(ilm_for(lf["pe1"], PE2).in_label,), op="swap"),))
    w = lspwalk.walk(topo, lf, "pe1", PE2)
    (p,) = w.problems
    assert (p.kind, p.detail, w.branches[0].routers) == (lspwalk.LOOP, "loop: pe1 -> p1 -> pe1",
                                                          ("pe1", "p1", "pe1"))
    diamond = load_topology(TOPOLOGIES / "diamond.yaml")
    w = lspwalk.walk(diamond, reference_lfibs(diamond), "pe1", IPv4Network("10.255.0.4/32"),
                     max_branches=1)
    assert w.truncated and len(w.branches) == 1


# ---------------------------------------------------------------- random LFIBs

DIAMOND = load_topology(TOPOLOGIES / "diamond.yaml")
EXPLICIT = parse_topology((TOPOLOGIES / "diamond.yaml").read_text().replace(
    "pe2: {loopback: 10.255.0.4}", "pe2: {loopback: 10.255.0.4, ldp: {explicit_null: true}}"))
REFERENCE = {id(t): reference_lfibs(t) for t in (DIAMOND, EXPLICIT)}
FECS = [IPv4Network(f) for f in ("10.255.0.1/32", "10.255.0.4/32", "192.168.2.0/24")]


@st.composite
def lfib_sets(draw: st.DrawFn) -> tuple[Topology, dict[str, Lfib], IPv4Network]:
    """A FEC and the diamond's converged LFIBs (one incoming label per router
    and FEC, as LDP's per-platform label space has) with up to four of the
    FEC's entries changed: other out labels (another FEC's, a stray one, a
    null, two labels), a next hop towards another neighbour, added (ECMP) or
    removed, or the entry deleted."""
    topo = draw(st.sampled_from([DIAMOND, EXPLICIT]))
    fec = draw(st.sampled_from(FECS))
    lfibs = copy.deepcopy(REFERENCE[id(topo)])
    labels_of = {(r, e.fec): e.in_label for r, lf in lfibs.items() for e in lf.ilm.values()}

    def some_nexthop(router: str, fec: IPv4Network, op: bool) -> Nhlfe:
        links = [(i.name, i.peer_node, i.peer_interface) for i in topo.nodes[router].interfaces.values()
                 if topo.nodes[i.peer_node].is_router]
        ifname, peer, peer_if = draw(st.sampled_from(links))
        right = (lspwalk.egress_binding(topo, peer) if peer in lspwalk.egresses(topo, fec)
                 else (labels_of.get((peer, fec), 999),))
        others = [(lbl,) for (r, f), lbl in labels_of.items() if r == peer and f != fec]
        out = draw(st.sampled_from([right, right + (77,), (999,), (), (3,), (0,), *others]))
        return Nhlfe(peer, ifname, topo.interface(peer, peer_if).address.ip, out,
                     ("swap" if out else "pop") if op else "push")

    for _ in range(draw(st.integers(0, 4))):
        router = draw(st.sampled_from([r.name for r in topo.routers]))
        lf = lfibs[router]
        keys = [("ftn", f) for f in lf.ftn if f == fec] + [("ilm", k) for k, e in lf.ilm.items()
                                                           if e.fec == fec]
        if not keys:
            continue
        table, key = draw(st.sampled_from(keys))
        entries = lf.ftn if table == "ftn" else lf.ilm
        e = entries[key]
        how = draw(st.sampled_from(["replace", "add", "drop", "delete"]))
        if how == "delete":
            del entries[key]
            continue
        nhs = list(e.nexthops)
        if how == "drop" and nhs:
            nhs.pop(draw(st.integers(0, len(nhs) - 1)))
        elif how == "add":
            nhs.append(some_nexthop(router, e.fec, table == "ilm"))
        elif nhs:
            nhs[draw(st.integers(0, len(nhs) - 1))] = some_nexthop(router, e.fec, table == "ilm")
        entries[key] = replace(e, nexthops=tuple(dict.fromkeys(nhs)))
    return topo, lfibs, fec


def null_mismatch(p: lspwalk.Problem) -> bool:
    """Explicit-null sent where implicit-null was asked, or the other way round:
    a wrong binding the data plane forwards all the same (the egress pops 0)."""
    return p.kind == lspwalk.EGRESS_LABEL and p.hop is not None and p.hop.stack in ((), (0,))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lfib_sets(), st.sampled_from(["pe1", "p1", "p2", "pe2"]))
def test_views_agree_on_random_lfibs(case: tuple[Topology, dict[str, Lfib], IPv4Network],
                                     ingress: str) -> None:
    topo, lfibs, fec = case
    wk = lspwalk.walk(topo, lfibs, ingress, fec)
    w = walk_lsp(topo, lfibs, ingress, fec)
    t = lsp_hops(Network(topo, {}, {}, "sim", set(), lfibs), ingress, fec)
    # validation and teaching: the same branches, the same breaks
    assert w.paths == t.branches == [b.routers for b in wk.complete]
    assert len(w.problems) == len(t.problems) == len(wk.problems)
    assert [p.detail for p in w.problems] == [p.detail for p in wk.problems]
    assert [[(h.router, h.neighbor, h.interface, h.in_label, h.out_labels) for h in b.hops]
            for b in wk.complete] == [[(h.router, h.neighbor, h.interface, h.in_label, h.out_labels)
                                       for h in hs] for hs in t.branch_hops]
    ftn = lfibs[ingress].ftn.get(fec)
    if ftn is None or not ftn.nexthops:  # (the traceroute engine needs a next hop to start)
        return
    # the RFC 8029 probe, which moves labels on its own: a healthy walk is a
    # healthy ping and traceroute on one of the walked branches
    net = lfib_network(topo, lfibs)
    pg = ping(net.sender(ingress, fec), fec, ingress)
    tr = traceroute(net.sender(ingress, fec), fec, ingress,
                    first_ddmaps=net.first_ddmaps(ingress, fec, False))
    if wk.ok:
        assert pg.result == "ok" and tr.result == "ok", (pg.to_json(), tr.to_json())
        assert (ingress, *tr.paths[0]["routers"]) in w.paths
    elif len(wk.branches) == 1 and not null_mismatch(wk.problems[0]):
        assert tr.result == "broken", (wk.problems, tr.to_json())

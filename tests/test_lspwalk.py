"""The LSP walkers on hand-made LFIBs where they disagreed (issue 14, item 2).

Three places follow an LSP over per-router LFIBs: `lsr.oam.validate.walk_lsp`
(invariants, `expect:`), `lsr.teach.net.lsp_hops` (drawings, `lsr draw --lsp`)
and `lsr.oam.trace.LfibNetwork.probe` (the simulator's RFC 8029 ping and
traceroute). On line3 (pe1 - p1 - pe2), FEC pe2/32, they disagree today:

* A: pe1 pushes p1's label for ANOTHER FEC (pe2's host subnet), whose ILM
  entry also ends at pe2: walk_lsp reports label-continuity, lsp_hops draws a
  healthy LSP, LSP ping succeeds and LSP traceroute fails with return code 10
  (RFC 8029: the label is not mapped to the FEC).
* B: p1 swaps to a label (99) towards the egress pe2, which advertised
  implicit-null and has no ILM entry for it: walk_lsp reports php, lsp_hops a
  healthy LSP, the probe is dropped at pe2.
* C: p1 sends explicit-null to pe2, which advertised implicit-null: walk_lsp
  reports php, lsp_hops a healthy LSP.
* D: pe1 pushes two labels: walk_lsp and lsp_hops follow the top label only
  and call the LSP healthy; the probe reaches pe2 with label 77 left.
* E: the ingress is the FEC's egress: walk_lsp reports lsp-coverage,
  lsp_hops one complete branch (pe2,).
* F: a chain of 67 routers (66 hops): walk_lsp is fine, lsp_hops reports
  "loop" past 64 hops and the probe gives up after 64 hops (ping broken).

These tests record that state of the code.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from ipaddress import IPv4Network

from lsr.core.lfib import FtnEntry, IlmEntry, Lfib, Nhlfe
from lsr.core.topology import Topology, load_topology, parse_topology
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


def ilm_for(lf: Lfib, fec: IPv4Network):
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


def views(topo: Topology, lf: dict[str, Lfib], ingress: str, fec: IPv4Network) -> dict:
    """What each walker says about the LSP."""
    w = walk_lsp(topo, lf, ingress, fec)
    t = lsp_hops(Network(topo, {}, {}, "sim", set(), lf), ingress, fec)
    net = LfibNetwork.from_topology(
        topo, {r.name: tables_from_topology(topo, r.name, lf.get(r.name, Lfib())) for r in topo.routers})
    p = ping(net.sender(ingress, fec), fec, ingress)
    tr = traceroute(net.sender(ingress, fec), fec, ingress,
                    first_ddmaps=net.first_ddmaps(ingress, fec, False)) if fec in lf[ingress].ftn else None
    return {
        "walk_lsp": (w.paths, [(x.check, x.detail) for x in w.problems]),
        "lsp_hops": (t.branches, t.problems),
        "ping": p.result,
        "trace": None if tr is None else (tr.result, [(h.router, h.return_code) for h in tr.hops]),
    }


def test_a_label_of_another_fec() -> None:
    topo, lf = line3()
    other = ilm_for(lf["p1"], PE2_HOSTS).in_label
    set_ftn_labels(lf["pe1"], PE2, (other,))
    v = views(topo, lf, "pe1", PE2)
    assert v["walk_lsp"] == ([], [("label-continuity",
                                   f"pe1 -> p1: out label {other} is p1's label for {PE2_HOSTS}, not {PE2}")])
    assert v["lsp_hops"] == ([("pe1", "p1", "pe2")], [])  # disagrees: a healthy drawing
    assert v["ping"] == "ok"
    assert v["trace"] == ("broken", [("p1", 10)])


def test_b_label_sent_to_the_egress() -> None:
    topo, lf = line3()
    set_ilm_labels(lf["p1"], PE2, (99,))
    v = views(topo, lf, "pe1", PE2)
    assert v["walk_lsp"] == ([], [("php", "p1 -> pe2: missing PHP, sends label [99] to the egress "
                                          "(expected pop)")])
    assert v["lsp_hops"] == ([("pe1", "p1", "pe2")], [])  # disagrees
    assert v["ping"] == "broken"
    assert v["trace"] == ("broken", [("p1", 8), ("pe2", 11)])


def test_c_explicit_null_the_egress_did_not_ask_for() -> None:
    topo, lf = line3()
    set_ilm_labels(lf["p1"], PE2, (0,))
    v = views(topo, lf, "pe1", PE2)
    assert v["walk_lsp"] == ([], [("php", "p1 -> pe2: missing PHP, sends label [0] to the egress "
                                          "(expected pop)")])
    assert v["lsp_hops"] == ([("pe1", "p1", "pe2")], [])  # disagrees
    assert v["ping"] == "ok"


def test_d_two_labels_pushed() -> None:
    topo, lf = line3()
    top = lf["pe1"].ftn[PE2].nexthops[0].out_labels[0]
    set_ftn_labels(lf["pe1"], PE2, (top, 77))
    v = views(topo, lf, "pe1", PE2)
    assert v["walk_lsp"] == ([("pe1", "p1", "pe2")], [])  # the label under the top is not followed
    assert v["lsp_hops"] == ([("pe1", "p1", "pe2")], [])
    assert v["ping"] == "broken"


def test_e_ingress_is_the_egress() -> None:
    topo, lf = line3()
    w = walk_lsp(topo, lf, "pe2", PE2)
    t = lsp_hops(Network(topo, {}, {}, "sim", set(), lf), "pe2", PE2)
    assert (w.paths, [p.check for p in w.problems]) == ([], ["lsp-coverage"])
    assert (t.branches, t.problems) == ([("pe2",)], [])


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
    assert not t.branches and t.problems[0].startswith("loop: r0 -> r1")  # disagrees
    net = LfibNetwork.from_topology(topo, {r.name: tables_from_topology(topo, r.name, lf[r.name])
                                           for r in topo.routers})
    assert ping(net.sender("r0", fec), fec, "r0").result == "broken"

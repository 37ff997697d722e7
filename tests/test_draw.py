"""lsr draw: DOT text of topologies and LSPs, rendered by Graphviz."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.topology import load_topology
from lsr.teach import draw, net
from tests.conftest import BUNDLED, TOPOLOGIES, needs_tool

DIAMOND = str(TOPOLOGIES / "diamond.yaml")
UNEQUAL = str(TOPOLOGIES / "unequal.yaml")
BACKBONE = str(TOPOLOGIES / "backbone.yaml")


@pytest.fixture(scope="module")
def diamond() -> net.Network:
    return net.from_file(DIAMOND)


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
@pytest.mark.parametrize("engine", ["dot", "neato"])
def test_every_node_and_link(path: Path, engine: str) -> None:
    topo = load_topology(path)
    dot = draw.dot_source(topo, engine=engine)
    for n in topo.nodes.values():
        assert re.search(rf'^  "{re.escape(n.name)}" \[label=<<b>{re.escape(n.name)}</b>', dot,
                         re.M), n.name
        if n.is_router:
            assert str(n.lsr_id) in dot
        for i in n.interfaces.values():
            assert f"{n.name}:{i.name} " in dot  # "node:interface .host-part"
    for link in topo.links:
        assert str(link.subnet) in dot
        a, b = (f'"{x}"' for x in link.nodes)
        if engine == "dot":
            assert f"{a} -> {b} [" in dot
        else:
            m = f'"_link{link.index}"'
            assert f"{a} -> {m} [" in dot and f"{m} -> {b} [" in dot
    routers_links = [lk for lk in topo.links
                     if all(topo.nodes[x].is_router for x in lk.nodes)]
    for lk in routers_links:
        assert f"{lk.subnet} / {lk.cost}" in dot


def test_lsp_hops_in_order_with_operations() -> None:
    n = net.from_file(UNEQUAL)
    fec = net.resolve_fec(n.topo, "pe2")
    tr = net.lsp_hops(n, "pe1", fec)
    assert tr.branches == [("pe1", "p1", "p2", "pe2")] and not tr.problems
    hops = [h for _, h in tr.hops]
    assert [d for d, _ in tr.hops] == [1, 2, 3]
    assert [h.router for h in hops] == ["pe1", "p1", "p2"]
    assert [h.op for h in hops] == ["push", "swap", "pop"]
    push, swap, pop = hops
    # label continuity: what one router sends is what the next one swaps or pops
    assert swap.in_label == push.out_labels[0] and pop.in_label == swap.out_labels[0]
    assert pop.out_labels == ()
    dot = html.unescape(draw.dot_source(n, [draw.lsp_overlay(n, tr, "#d62728")]))
    texts = [f"1: push {push.out_labels[0]}", f"2: swap {swap.in_label}->{swap.out_labels[0]}",
             f"3: pop {pop.in_label}"]
    pos = [dot.index(t) for t in texts]
    assert pos == sorted(pos)  # links are listed in file order, which is the LSP's order here
    assert "egress: IP lookup" in dot and "ingress" in dot
    # the direct pe1-pe2 link (cost 100) is not on the LSP
    direct = next(lk for lk in n.topo.links if set(lk.nodes) == {"pe1", "pe2"})
    line = next(x for x in dot.splitlines() if f"{direct.subnet} / 100" in x)
    assert "penwidth" not in line


def test_ecmp_branches_all_drawn(diamond: net.Network) -> None:
    tr = net.lsp_hops(diamond, "pe1", net.resolve_fec(diamond.topo, "pe2"))
    assert sorted(tr.branches) == [("pe1", "p1", "pe2"), ("pe1", "p2", "pe2")]
    dot = draw.dot_source(diamond, [draw.lsp_overlay(diamond, tr, "#d62728")])
    coloured = [x for x in dot.splitlines() if "penwidth=2.5" in x]
    assert len(coloured) == 4  # pe1-p1, pe1-p2, p1-pe2, p2-pe2
    assert len(re.findall(r"1: push \d+", dot)) == 2 and len(re.findall(r"2: pop \d+", dot)) == 2
    lines = net.branch_lines(diamond, tr)
    assert len(lines) == 2 and all(x.startswith("pe1 [push ") for x in lines)


def test_fec_tree_and_down_link() -> None:
    n = net.from_file(DIAMOND, down=["pe1-p1"])
    fec = net.resolve_fec(n.topo, "ce2")
    assert str(fec) == "192.168.2.0/24"
    dot = draw.dot_source(n, [draw.fec_overlay(n, fec, net.fec_hops(n, fec), "#1f77b4")])
    assert "DOWN" in dot and 'style="dashed"' in dot
    tr = net.lsp_hops(n, "pe1", fec)
    assert tr.branches == [("pe1", "p2", "pe2")]


def test_parse_link_with_dashes() -> None:
    topo = load_topology(BACKBONE)
    assert topo.links[net.parse_link(topo, "ce-lon-lon")].nodes in (("ce-lon", "lon"),
                                                                  ("lon", "ce-lon"))
    from lsr.errors import LsrError

    with pytest.raises(LsrError):
        net.parse_link(topo, "lon-bud")


def test_cli_dot_to_stdout_and_errors() -> None:
    r = CliRunner().invoke(main, ["draw", DIAMOND, "--lsp", "pe1:pe2"])
    assert r.exit_code == 0 and r.output.startswith('digraph "diamond"')
    r = CliRunner().invoke(main, ["draw", DIAMOND, "--lsp", "pe1"])
    assert r.exit_code == 2 and "FROM:FEC" in r.output
    r = CliRunner().invoke(main, ["draw", DIAMOND, "--lsp", "pe9:pe2"])
    assert r.exit_code == 2 and "pe9" in r.output
    r = CliRunner().invoke(main, ["draw", DIAMOND, "--down", "pe1-pe2"])
    assert r.exit_code == 2 and "no link between pe1 and pe2" in r.output


@needs_tool("dot")
def test_svg_produced(tmp_path: Path) -> None:
    out = tmp_path / "d.svg"
    r = CliRunner().invoke(main, ["draw", DIAMOND, "--lsp", "pe1:pe2", "-o", str(out)])
    assert r.exit_code == 0, r.output
    svg = out.read_text()
    assert "<svg" in svg and "push" in svg and "pe2" in svg
    assert "LSP pe1 -> 10.255.0.4/32 (2 ECMP branches)" in r.output


@needs_tool("neato")
def test_backbone_png(tmp_path: Path) -> None:
    out = tmp_path / "bb.png"
    r = CliRunner().invoke(main, ["draw", BACKBONE, "--lsp", "lon:bud", "--lsp", "mad:sto",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 800 < w < 4000 and 800 < h < 4000


def test_untagged_pop_is_named() -> None:
    """diamond-md5: p1 has no label from pe1 (session down), so its entries toward pe1
    are untagged: the LSP says so instead of an ordinary PHP pop."""
    n = net.from_file(str(TOPOLOGIES.parent / "docs" / "examples" / "diamond-md5.yaml"))
    tr = net.lsp_hops(n, "pe2", net.resolve_fec(n.topo, "ce1"))
    texts = [h.text for _, h in tr.hops]
    assert any(t.endswith("(untagged)") and t.startswith("pop ") for t in texts), texts
    assert any(t.startswith("pop ") and "untagged" not in t for t in texts)  # p2: real PHP


def test_compact_drawing_for_the_report() -> None:
    """compact: costs only on links (no subnets, no interface ends), bigger fonts."""
    n = net.from_file(BACKBONE)
    full = draw.dot_source(n, engine="neato")
    small = draw.dot_source(n, engine="neato", compact=True)
    assert "10.0.0.0/30" in full and "10.0.0.0/30" not in small
    assert "fontsize=24" in small and "link: IGP cost" in small


@pytest.mark.parametrize("spec", ["ce1:ce2", "[2001:db8:1::1]:[2001:db8:2::2]",
                                  "ce1:[2001:db8:2::2]", "2001:db8:1::1,2001:db8:2::2"])
def test_trace_ipv6_6pe_shows_both_labels(spec: str) -> None:
    """6PE (RFC 4798): an IPv6 walk drawn with its two labels on every core link; node
    names with -6, IPv6 addresses in brackets (or SRC,DST) without."""
    args = ["draw", str(TOPOLOGIES / "6pe.yaml"), "--trace", spec] + (
        ["-6"] if spec == "ce1:ce2" else [])
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    for s in ("1: push 2003/4000", "2: swap 3003/4000", "3: pop 4000", "(2001:db8:2::2): delivered"):
        assert s in r.output, s


def test_trace_ipv6_6vpe_and_pair_errors() -> None:
    r = CliRunner().invoke(main, ["draw", str(TOPOLOGIES / "6vpe.yaml"), "-6", "--trace",
                                  "red1:red2"])
    assert r.exit_code == 0 and "1: push 2002/4102" in r.output, r.output
    for bad in ("2001:db8:1::1:2001:db8:2::2", "[ce1]:ce2", "ce1", "[2001:db8:1::1]ce2"):
        r = CliRunner().invoke(main, ["draw", str(TOPOLOGIES / "6pe.yaml"), "--trace", bad])
        assert r.exit_code != 0 and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1 and bad in r.output, r.output

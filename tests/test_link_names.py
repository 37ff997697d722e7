"""Naming a link: NODE or NODE:IFACE ends, names with '-', parallel links (no root).

Two routers joined twice are a common lab (a bundle's members, ECMP over parallel links);
naming only the nodes must not fail one of them silently."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.topology import load_topology
from lsr.errors import LsrError
from tests.conftest import ROOT, TOPOLOGIES

PARALLEL = ROOT / "tests" / "data" / "parallel.yaml"


@pytest.fixture(scope="module")
def par():
    return load_topology(PARALLEL)


def _ends(ln) -> set[str]:
    return {f"{n}:{i}" for n, i in (ln.a, ln.b)}


def test_an_interface_picks_one_of_parallel_links(par):
    assert _ends(par.find_link("r1:eth3", "r-2")) == {"r1:eth3", "r-2:eth2"}
    assert _ends(par.find_link("r-2:eth1", "r1")) == {"r1:eth2", "r-2:eth1"}
    assert _ends(par.find_link("r1:eth2", "r-2:eth1")) == {"r1:eth2", "r-2:eth1"}
    assert _ends(par.find_link("ce1", "r1")) == {"ce1:eth0", "r1:eth1"}  # one link: nodes do


@pytest.mark.parametrize("a, b, message", [
    ("r1", "r-2", "parallel: 2 links join r1 and r-2 (r1:eth2-r-2:eth1, r1:eth3-r-2:eth2): "
                  "name one by an interface, e.g. r1:eth2 r-2"),
    ("r1:eth3", "r-2:eth1", "parallel: no link between r1:eth3 and r-2:eth1"),
    ("r1:eth9", "r-2", "parallel: r1 has no interface 'eth9'"),
    ("r9", "r-2", "parallel: no node 'r9'"),
    ("r1", "r3", "parallel: no link between r1 and r3"),
    ("r1", "r1", "parallel: no link between r1 and r1"),
])
def test_what_names_no_link_or_several_is_one_clear_error(par, a, b, message):
    with pytest.raises(LsrError) as e:
        par.find_link(a, b)
    assert str(e.value) == message


@pytest.mark.parametrize("spec, ends", [
    ("r1:eth3-r-2", {"r1:eth3", "r-2:eth2"}),
    ("r-2-r1:eth2", {"r1:eth2", "r-2:eth1"}),  # a dash in the first node's name
    ("r-2:eth4-r3:eth2", {"r-2:eth4", "r3:eth2"}),
    ("r3:eth3-ce2", {"r3:eth3", "ce2:eth0"}),
])
def test_a_b_specs_split_where_both_sides_are_endpoints(par, spec, ends):
    assert _ends(par.parse_link(spec)) == ends


def test_link_names_say_the_interfaces_only_where_needed(par):
    names = [par.link_name(ln) for ln in par.links]
    assert names == ["ce1-r1", "r1:eth2-r-2:eth1", "r1:eth3-r-2:eth2", "r-2:eth3-r3:eth1",
                     "r-2:eth4-r3:eth2", "r3-ce2"]
    # and each name finds its own link back
    assert [par.parse_link(n).index for n in names] == [ln.index for ln in par.links]


def _lfib(*args: str) -> dict:
    r = CliRunner().invoke(main, ["sim", "lfib", str(PARALLEL), "--json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _nexthops(lfib: dict, router: str) -> set[str]:
    return {nh["interface"] for e in lfib["routers"][router]["ftn"] for nh in e["nexthops"]}


def test_sim_fails_the_named_member_of_parallel_links():
    both = _lfib()
    assert _nexthops(both, "r1") == {"eth2", "eth3"}  # ECMP over both members
    assert _nexthops(_lfib("--down", "r1:eth3-r-2"), "r1") == {"eth2"}
    assert _nexthops(_lfib("--down", "r-2:eth1-r1"), "r1") == {"eth3"}
    assert _nexthops(_lfib("--down", "r1:eth2-r-2", "--down", "r1:eth3-r-2:eth2"), "r1") == set()


def test_sim_refuses_an_ambiguous_pair_in_one_line():
    r = CliRunner().invoke(main, ["sim", "lfib", str(PARALLEL), "--down", "r1-r-2"])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        "lsr: parallel: 2 links join r1 and r-2 (r1:eth2-r-2:eth1, r1:eth3-r-2:eth2): "
        "name one by an interface, e.g. r1:eth2 r-2"]


def test_single_links_are_named_by_nodes_as_before():
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    assert all("-" in topo.link_name(ln) and ":" not in topo.link_name(ln) for ln in topo.links)


"""Parallel links in a lab (root): each member fails on its own, by `lsr lab link` with an
interface or by `ip link` inside a namespace, and after each change the LFIBs equal the
simulator's for that state; traffic keeps flowing over the member left; naming only the
nodes of a pair with two links is refused, naming which ones."""

from __future__ import annotations

import os

import pytest

import lsr.lab as lab
from lsr.core.topology import host_address, load_topology
from lsr.errors import LsrError
from lsr.lab.lsp import validate_live
from lsr.sim import converge
from tests.conftest import ROOT, needs_root
from tests.wait import wait_for

pytestmark = [pytest.mark.netns, needs_root]

PARALLEL = ROOT / "tests" / "data" / "parallel.yaml"


@pytest.fixture(scope="module")
def par():
    name = f"{os.environ.get('LSR_TEST_LAB_PREFIX', 'u')}{os.getpid() % 1000}par"
    try:
        yield lab.up(load_topology(PARALLEL), name=name, timeout=60)
    finally:
        lab.down(name)


def _equal_to_sim(L: lab.Lab, down: list[str], what: str) -> None:
    want = converge(L.topo, down).sim.lfib_json()
    wait_for(lambda: lab.lfib(L.name) == want, 20,
             lambda: f"{L.name}'s LFIBs equal to the simulator's with {down or 'all up'} "
                     f"after {what}")


def _ping(L: lab.Lab) -> bool:
    r = L.run("ce1", ["ping", "-c", "1", "-W", "2", str(host_address(L.topo, "ce2"))])
    return r.returncode == 0


def _r1_nexthops(L: lab.Lab) -> set[str]:
    ftn = lab.lfib(L.name, ["r1"])["routers"]["r1"]["ftn"]
    return {nh["interface"] for e in ftn for nh in e["nexthops"]}


def test_each_member_of_parallel_links_fails_on_its_own(par):
    L = par
    _equal_to_sim(L, [], "lab up")
    assert _r1_nexthops(L) == {"eth2", "eth3"}

    with pytest.raises(LsrError, match="2 links join r1 and r-2"):
        lab.link(L.name, "r1", "r-2", False)
    assert lab.status(L.name)["down_links"] == []  # refused: nothing changed

    lab.link(L.name, "r1:eth3", "r-2", False)
    lab.wait_converged(L.name)
    _equal_to_sim(L, ["r1:eth3-r-2"], "lsr lab link r1:eth3 r-2 down")
    assert _r1_nexthops(L) == {"eth2"} and _ping(L)

    # the other member by the kernel, inside r-2's namespace: both down, r1 cut off
    assert L.exec("r-2", ["ip", "link", "set", "eth1", "down"]) == 0
    _equal_to_sim(L, ["r1:eth3-r-2", "r-2:eth1-r1"], "ip link set eth1 down in r-2")
    assert _r1_nexthops(L) == set() and not _ping(L)
    # validate knows r1 is cut off (one link down by carrier only): nothing else fails
    v = validate_live(L.name)
    assert v["down_links"] == [1, 2] and v["failed"] == 0, \
        [r for r in v["results"] if r["status"] == "fail"]

    lab.link(L.name, "r-2:eth2", "r1:eth3", True)
    lab.wait_converged(L.name)
    _equal_to_sim(L, ["r-2:eth1-r1"], "lsr lab link r-2:eth2 r1:eth3 up")
    assert _r1_nexthops(L) == {"eth3"} and _ping(L)

    assert L.exec("r-2", ["ip", "link", "set", "eth1", "up"]) == 0
    _equal_to_sim(L, [], "ip link set eth1 up in r-2")
    assert _r1_nexthops(L) == {"eth2", "eth3"} and _ping(L)
    assert validate_live(L.name)["failed"] == 0

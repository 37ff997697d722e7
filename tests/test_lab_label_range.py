"""A router whose label range is too small (RFC 5036 A.2.1 SL.9-12) in a lab (root),
through failures: p1 of line3 with 3 labels for 4 FECs. After lab up and after each
link change, by `ip link` inside a namespace and by `lsr lab link`, the LFIBs equal the
simulator's for the new state label for label, the router keeps running, and
`lab validate` names the cause."""

from __future__ import annotations

import os

import pytest

from tests.conftest import TOPOLOGIES, needs_root
from tests.wait import wait_for

pytestmark = [pytest.mark.netns, needs_root]

TEXT = (TOPOLOGIES / "line3.yaml").read_text().replace(
    "p1: {loopback: 10.255.0.2}", "p1: {loopback: 10.255.0.2, labels: [16, 18]}")


@pytest.fixture(scope="module")
def small():
    import lsr.lab as lab
    from lsr.core.topology import parse_topology

    name = f"{os.environ.get('LSR_TEST_LAB_PREFIX', 'u')}{os.getpid() % 1000}lr"
    try:
        yield lab.up(parse_topology(TEXT), name=name, timeout=60)
    finally:
        lab.down(name)


def _equal_to_sim(L, down: list[str], what: str) -> None:
    import lsr.lab as lab
    from lsr.sim import converge

    want = converge(L.topo, down).sim.lfib_json()
    wait_for(lambda: lab.lfib(L.name) == want, 20,
             lambda: f"LFIBs equal to the simulator's with {down or 'all up'} after {what}: "
                     f"{lab.lfib(L.name, ['p1'])['routers']['p1']['ilm']}")


def test_label_range_too_small_through_failures(small):
    import lsr.lab as lab
    from lsr.lab.lsp import validate_live

    L = small
    _equal_to_sim(L, [], "lab up")
    ilm = {e["fec"]: e["in_label"] for e in lab.lfib(L.name, ["p1"])["routers"]["p1"]["ilm"]}
    assert ilm == {"10.255.0.1/32": 16, "10.255.0.3/32": 17, "192.168.1.0/24": 18}
    rows = validate_live(L.name, traceroutes=False)["results"]
    assert any(r["check"] == "label-range" and r["status"] == "fail"
               and r["detail"].startswith("p1's LDP labels [16, 18] are 3 for 4 FECs")
               for r in rows), rows

    # pe1's port to ce1 down by the kernel: 192.168.1.0/24 leaves the IGP
    assert L.exec("pe1", ["ip", "link", "set", "eth1", "down"]) == 0
    _equal_to_sim(L, ["ce1-pe1"], "ip link set eth1 down in pe1")
    assert L.exec("pe1", ["ip", "link", "set", "eth1", "up"]) == 0
    _equal_to_sim(L, [], "ip link set eth1 up in pe1")
    # the core link by `lsr lab link`: p1 loses pe1's FECs and gets them back
    lab.link(L.name, "pe1", "p1", False)
    lab.wait_converged(L.name)
    _equal_to_sim(L, ["pe1-p1"], "lsr lab link pe1 p1 down")
    lab.link(L.name, "pe1", "p1", True)
    lab.wait_converged(L.name)
    _equal_to_sim(L, [], "lsr lab link pe1 p1 up")
    assert all(r["alive"] for r in lab.status(L.name)["routers"].values())

"""A transit router restarts under a 100 pps probe stream: one outage (root).

`lsr lab converge --restart` (lsr.lab.converge.restart) stops the router's runtime -- a
crash (SIGKILL) or `lsr lab node stop` (SIGTERM) -- and starts it again at once, while
probes run between hosts whose LSP crosses it. The loss must be one contiguous run that
begins before the router is started again: nothing is lost once it is back (before the
fix, labels it advertised at once were dropped until its downstream session came up, and
its OSPF neighbours answered it only at their next Hello). Durations are reported (-s),
not asserted beyond a generous bound.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import TOPOLOGIES, is_root

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology, parse_topology
    from lsr.lab.converge import restart

UNIQ = os.getpid() % 1000

# p1 is the path (cost 20 end to end), p2 the backup (40)
ALT = """
name: alt
topology:
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1}
    p1: {loopback: 10.255.0.2}
    p2: {loopback: 10.255.0.3}
    pe2: {loopback: 10.255.0.4}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
    - endpoints: [pe1:eth2, p1:eth1]
    - endpoints: [pe1:eth3, p2:eth1]
      cost: 20
    - endpoints: [p1:eth2, pe2:eth2]
    - endpoints: [p2:eth2, pe2:eth3]
      cost: 20
    - endpoints: [pe2:eth1, ce2:eth0]
"""


def _timeline(out: dict) -> str:
    return "\n".join(f"{e['t_ms']:9.1f} {e['router'] or '':4} {e['event']}: {e['detail']}"
                     for e in out["timeline"])


@pytest.fixture(scope="module", params=["line3", "alt"])
def lab_name(request):
    name = f"hr{UNIQ}{request.param[0]}"
    topo = load_topology(TOPOLOGIES / "line3.yaml") if request.param == "line3" \
        else parse_topology(ALT)
    try:
        lab.up(topo, name=name, timeout=60)
        yield name
    finally:
        lab.down(name)


@pytest.mark.parametrize("kill", [True, False], ids=["kill-9", "stop"])
def test_restart_of_a_transit_router_is_one_outage(lab_name, kill):
    out = restart(lab_name, "p1", kill=kill, rate=100, before=1.0, after=8.0)
    p = out["probe"]
    started = next(e["t_ms"] for e in out["timeline"] if e["event"] == "router started")
    gaps = [(g["lost"], g["from_ms"], g["gap_ms"]) for g in p["outages"]]
    print(f"\n{lab_name} {out['signal']}: {len(gaps)} outage(s) (lost, from ms, gap ms): {gaps}; "
          f"router started at {started:.0f} ms")
    assert (p["from"], p["to"]) == ("ce1", "ce2")
    assert p["recovered"], out["timeline"]
    assert len(p["outages"]) <= 1, f"traffic came back, then was lost again: {gaps}\n" + \
        _timeline(out)
    for g in p["outages"]:  # the stop's outage, not one after the router came back
        assert g["from_ms"] < started, f"loss began at {g['from_ms']} ms, after the start: " \
                                       f"{gaps}\n" + _timeline(out)
        assert g["gap_ms"] < 8000, gaps
    if lab_name.endswith("l"):  # line3: p1 is the only path
        assert len(p["outages"]) == 1
    assert p["lost"] == p["receiver_lost"] or p["capture_drops"] or p["receiver_drops"], p
    assert out["reconverged_seconds"] is not None

"""IPv6 in the teaching and checking views, against real labs (root, namespaces):

* `lsr report --lab` on a running 6PE lab (topologies/6pe.yaml) follows the same IPv6
  walk over the same table rows as the simulator's report: the walk, the rows it used,
  the 6PE routes and labels, the routers' tables and the validation sections are equal
  (only the header, which names where the tables come from, differs);
* an IPv6 static route in a VRF (6VPE, RFC 4659; inline YAML on 6vpe.yaml): `ping -6`
  from the other site of the VPN reaches an address behind the CE, through the VPN-IPv6
  route pe2 imported and pe1's static route; the other customer has no route to it.
"""

from __future__ import annotations

import os
import re

import pytest

from .conftest import ROOT, needs_root
from .wait import wait_for

pytestmark = [needs_root, pytest.mark.netns]

PREFIX = os.environ.get("LSR_TEST_LAB_PREFIX", "vv")
SIXPE = ROOT / "topologies" / "6pe.yaml"
SIXVPE = ROOT / "topologies" / "6vpe.yaml"
STATIC6, BEHIND = "2001:db8:99::/48", "2001:db8:99::1"


def _sections(h: str) -> dict[str, str]:
    """Each <section>'s text, the header left out."""
    return {m.group(1): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(2)))
            for m in re.finditer(r'<section id="(\w+)">(.*?)</section>', h, re.S)}


def test_report_lab_equals_sim_for_the_ipv6_walk() -> None:
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.teach import net, report

    name = f"{PREFIX}6p{os.getpid() % 1000}"
    topo = load_topology(SIXPE)
    sim_net = net.from_topology(topo)
    lab.down(name)
    try:
        lab.up(load_topology(SIXPE), name=name, timeout=90)
        last: list[str] = []

        def same() -> bool:  # BGP's 6PE routes come after LDP's: wait for both
            live = net.from_lab(name)
            a = _sections(report.build(live, "ce1", "ce2", family=6, engine="dot"))
            b = _sections(report.build(sim_net, "ce1", "ce2", family=6, engine="dot"))
            last[:] = [k for k in b if k != "topology" and a.get(k) != b[k]]
            return not last
        wait_for(same, 60, lambda: f"the lab report's sections to equal the sim's: {last}")
        h = report.build(net.from_lab(name), "ce1", "ce2", family=6)
        s = _sections(h)
        assert "6PE route 2001:db8:2::/64 push 2003 4000 via p1" in s["walk"]
        assert "6PE label 4000 pop, IPv6 lookup" in s["walk"]
        assert 'class="used" id="6pelabel-pe2-4000"' in h
        assert f"tables from: lab {name}" in h
        assert "invariant 6pe-reachability pass" in s["validation"]
    finally:
        lab.down(name)


def test_ipv6_static_route_in_a_vrf_pings(tmp_path) -> None:
    import lsr.lab as lab
    from lsr.core.topology import load_topology

    old = "red: {rd: 10.255.0.1:1, rt: 65000:1, interfaces: [eth1]}"
    text = SIXVPE.read_text()
    assert old in text
    f = tmp_path / "6vpe-static.yaml"
    f.write_text(text.replace(old, old[:-1] + f", routes: [{{to: '{STATIC6}', via: "
                                              "'2001:db8:1:1::1'}]}"))
    name = f"{PREFIX}6s{os.getpid() % 1000}"
    lab.down(name)
    try:
        lb = lab.up(load_topology(f), name=name, timeout=90)
        # the address behind red1 (the CE): on its loopback, reached via its own link
        r = lb.run("red1", ["ip", "-6", "addr", "add", f"{BEHIND}/128", "dev", "lo"])
        assert r.returncode == 0, r.stderr

        def reached() -> bool:
            return lb.run("red2", ["ping", "-6", "-c", "1", "-W", "1", BEHIND]).returncode == 0
        wait_for(reached, 60, lambda: f"red2 to reach {BEHIND} behind red1 (static route)")
        r = lb.run("red2", ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", BEHIND])
        assert r.returncode == 0 and " 0% packet loss" in r.stdout, r.stdout
        # blue imports no red route: blue2's ping has no route at pe2
        r = lb.run("blue2", ["ping", "-6", "-c", "1", "-W", "1", BEHIND])
        assert r.returncode != 0, r.stdout
        vrf = lab.vrf(name, ["pe2"])["routers"]["pe2"]["vrfs"]
        assert any(e["prefix"] == STATIC6 and e["source"] == "vpn" for e in vrf["red"]["fib"])
        assert not any(e["prefix"] == STATIC6 for e in vrf["blue"]["fib"])
    finally:
        lab.down(name)

"""The `bgp:` section: sessions derived from reflectors / neighbours, located errors."""

from __future__ import annotations

import pytest

from bgp.config import validate
from lsr.core import topology as t

BASE = """name: b
topology:
  nodes: {a: {}, b: {}, c: {}}
  links:
    - endpoints: [a:eth1, b:eth1]
    - endpoints: [b:eth2, c:eth1]
"""


def parse(bgp: str) -> t.Topology:
    t.register_section("bgp", validate)
    try:
        return t.parse_topology(BASE + bgp, "f.yaml")
    finally:
        t.EXTRA_SECTIONS.pop("bgp", None)


def test_full_mesh_reflector_and_ebgp():
    mesh = parse("bgp:\n  asn: 1\n  routers: {a: {}, b: {}, c: {}}\n").extra["bgp"]
    assert {tuple(sorted(p)) for p in mesh.sessions} == {("a", "b"), ("a", "c"), ("b", "c")}
    rr = parse("bgp:\n  asn: 1\n  routers: {a: {}, b: {route_reflector: true}, c: {}}\n")
    sec = rr.extra["bgp"]
    assert {tuple(sorted(p)) for p in sec.sessions} == {("a", "b"), ("b", "c")}
    assert sec.clients == {("b", "a"), ("b", "c")}
    eb = parse("bgp:\n  asn: 1\n  routers: {a: {neighbors: [c]}, c: {asn: 2}}\n").extra["bgp"]
    assert {tuple(sorted(p)) for p in eb.sessions} == {("a", "c")}


@pytest.mark.parametrize("bgp,msg", [
    ("bgp:\n  routers: {a: {}}\n", "f.yaml:8: bgp.routers.a: no asn (set bgp.asn or this router's asn)"),
    ("bgp:\n  asn: 1\n  hold_time: 2\n  routers: {a: {}}\n",
     "f.yaml:9: bgp.hold_time: hold_time must be 0 or at least 3 seconds (RFC 4271 §4.2)"),
    ("bgp:\n  asn: 1\n  routers: {z: {}}\n", "f.yaml:9: bgp.routers.z: 'z' is not a router of this topology"),
    ("bgp:\n  asn: 1\n  routers: {a: {neighbors: [q]}}\n",
     "f.yaml:9: bgp.routers.a.neighbors[0]: 'q' is not a router of bgp.routers"),
    ("bgp:\n  asn: 1\n  routers: {a: {colour: red}}\n",
     "f.yaml:9: bgp.routers.a.colour: unknown key 'colour' (allowed: asn, router_id, neighbors,"
     " route_reflector, rr_clients, cluster_id, networks, hold_time, keepalive, connect_retry,"
     " families)"),
    ("bgp:\n  asn: 1\n  families: [ipv9]\n  routers: {a: {}}\n",
     "f.yaml:9: bgp.families[0]: unknown family 'ipv9' (allowed: ipv4-unicast, ipv4-vpn,"
     " ipv6-labelled)"),
])
def test_located_one_line_errors(bgp, msg):
    with pytest.raises(t.TopologyError) as e:
        parse(bgp)
    assert str(e.value) == msg

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


def test_lab_keys_reach_the_peer_configs():
    from bgp.config import from_topology

    topo = parse("bgp:\n  asn: 1\n  routers:\n"
                 "    a: {passwords: {b: k1}, passive: [b], ttl_security: true,\n"
                 "        vpn_networks: [{prefix: 10.1.0.0/16, rd: '1:7', label: 100, rt: '1:7'}]}\n"
                 "    b: {asn: 2, neighbors: [a, c]}\n    c: {passive: true}\n")
    a = from_topology(topo, "a")
    assert [(p.name, p.password, p.passive, p.ttl_security) for p in a.peers] == [
        ("b", "k1", True, True), ("c", None, False, False)]  # c: iBGP, no GTSM
    (v,) = a.vpn_networks
    assert (str(v.prefix), str(v.rd), v.label, v.route_targets) == ("10.1.0.0/16", "1:7", 100,
                                                                    ("1:7",))
    b = from_topology(topo, "b")
    assert [(p.name, p.password, p.passive, p.ttl_security) for p in b.peers] == [
        ("a", None, False, False), ("c", None, False, False)]
    assert [(p.name, p.passive) for p in from_topology(topo, "c").peers] == [
        ("a", True), ("b", True)]


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
     " families, passwords, passive, ttl_security, vpn_networks, ipv6_explicit_null)"),
    ("bgp:\n  asn: 1\n  routers: {a: {passwords: {b: x}}, b: {}, c: {route_reflector: true}}\n",
     "f.yaml:9: bgp.routers.a.passwords: b is not a BGP neighbour of a"),
    ("bgp:\n  asn: 1\n  routers: {a: {passwords: {b: 7}}, b: {}}\n",
     "f.yaml:9: bgp.routers.a.passwords.b: password must be a string of 1..80 characters"),
    ("bgp:\n  asn: 1\n  routers: {a: {passive: yes please}, b: {}}\n",
     "f.yaml:9: bgp.routers.a.passive: passive must be true, false or a list of neighbour names"),
    ("bgp:\n  asn: 1\n  routers: {a: {ttl_security: true, neighbors: [c]}, c: {asn: 2}}\n",
     "f.yaml:9: bgp.routers.a.ttl_security: eBGP neighbour c is not directly linked to a"
     " (GTSM here is for one-hop sessions)"),
    ("bgp:\n  asn: 1\n  routers: {a: {vpn_networks: [{prefix: 10.1.0.0/16, rd: x, label: 99}]}}\n",
     "f.yaml:9: bgp.routers.a.vpn_networks[0].rd: route distinguisher 'x' is not ADMIN:NUMBER"),
    ("bgp:\n  asn: 1\n  routers: {a: {vpn_networks: [{prefix: 10.1.0.0/16, rd: '1:1', label: 3}]}}\n",
     "f.yaml:9: bgp.routers.a.vpn_networks[0].label: label must be an integer 16..1048575, got 3"),
    ("bgp:\n  asn: 1\n  routers: {a: {vpn_networks: [{prefix: 10.1.0.0/16, rd: '1:1', label: 16,"
     " rt: 'x:1'}]}}\n",
     "f.yaml:9: bgp.routers.a.vpn_networks[0].rt[0]: extended community 'x:1': 'x' is not an AS"
     " or address"),
    ("bgp:\n  asn: 1\n  families: [ipv9]\n  routers: {a: {}}\n",
     "f.yaml:9: bgp.families[0]: unknown family 'ipv9' (allowed: ipv4-unicast, ipv4-vpn,"
     " ipv6-labelled, ipv6-vpn)"),
])
def test_located_one_line_errors(bgp, msg):
    with pytest.raises(t.TopologyError) as e:
        parse(bgp)
    assert str(e.value) == msg

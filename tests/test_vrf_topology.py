"""VRFs in topology files (lsr.core.vrf, lsr.core.topology): the `vrfs:` key of a router,
overlapping customer addresses, VRF subnets kept out of the global table (OSPF, LDP),
the label split, and located one-line errors."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from ldp.instance import LdpInstance
from lsr.core.topology import TopologyError, parse_topology
from lsr.core.vrf import admin_number
from ospf.config import from_topology as ospf_config

BASE = """\
name: v
topology:
  nodes:
    a1: {kind: host}
    b1: {kind: host}
    pe1:
      loopback: 10.255.0.1
      vrfs:
        red: {rd: 65000:1, rt: 65000:1, interfaces: [eth1]}
        blue: {rd: 10.255.0.1:2, rt: [65000:2], interfaces: [eth2]}
    p1: {}
    pe2:
      vrfs:
        red: {rd: 65000:11, rt: 65000:1, interfaces: [eth1]}
        blue: {rd: 65000:12, import: [65000:2], export: [65000:2], interfaces: [eth2]}
    a2: {kind: host}
    b2: {kind: host}
    c: {kind: host}
  links:
    - endpoints: [a1:eth0, pe1:eth1]
      subnet: 10.1.1.0/24
    - endpoints: [b1:eth0, pe1:eth2]
      subnet: 10.1.1.0/24
    - endpoints: [pe1:eth3, p1:eth1]
    - endpoints: [p1:eth2, pe2:eth3]
    - endpoints: [pe2:eth1, a2:eth0]
    - endpoints: [pe2:eth2, b2:eth0]
    - endpoints: [pe2:eth4, c:eth0]
"""


def test_overlapping_customers_and_auto_subnets():
    t = parse_topology(BASE)
    assert str(t.interface("a1", "eth0").address) == str(t.interface("b1", "eth0").address) \
        == "10.1.1.1/24"
    # Auto-assigned VRF subnets come from the host pool of each VRF's own plan: the same
    # subnet for red and blue, clear of the global host link (c) that took 192.168.0.0/24.
    assert t.links[4].subnet == t.links[5].subnet == IPv4Network("192.168.1.0/24")
    assert t.links[6].subnet == IPv4Network("192.168.0.0/24")
    assert t.links[0].vrf == "red" and t.links[1].vrf == "blue" and t.links[6].vrf is None
    assert t.interface("pe1", "eth1").vrf == "red" and t.interface("a1", "eth0").vrf == "red"
    assert t.vrf_of("b2") == "blue" and t.vrf_of("c") is None and t.vrf_of("pe1") is None
    assert t.pe_of("b2") == "pe2"
    v = t.nodes["pe1"].vrfs["blue"]
    assert (v.rd, v.import_rts, v.export_rts, v.interfaces, v.label_mode) == (
        "10.255.0.1:2", ("65000:2",), ("65000:2",), ("eth2",), "per-vrf")
    # One address, one node per VRF
    a = IPv4Address("10.1.1.1")
    assert t.node_of_address(a) is None
    assert t.node_of_address(a, "red").name == "a1" and t.node_of_address(a, "blue").name == "b1"


def test_vrf_subnets_stay_out_of_the_global_table():
    t = parse_topology(BASE)
    prefixes = set(t.prefixes())
    assert IPv4Network("10.1.1.0/24") not in prefixes
    assert IPv4Network("192.168.1.0/24") not in prefixes
    assert IPv4Network("192.168.0.0/24") in prefixes  # c: a global customer
    ospf = {i.name for i in ospf_config(t, "pe1").interfaces}
    assert ospf == {"eth3"}
    ldp = LdpInstance.from_topology(t, "pe1")
    assert set(ldp.interfaces) == {"eth3"}  # no VRF address in LDP's Address messages
    assert t.label_ranges("pe1") == ((1000, 1099), (1100, 1048575))
    assert t.label_ranges("p1") == (t.nodes["p1"].labels, None)
    assert ldp.lde.labels.hi == 1099


def test_sexagesimal_yaml_is_read_as_text():
    # YAML 1.1 reads 65000:1 as 3900001; a route target must stay 65000:1.
    t = parse_topology(BASE)
    assert t.nodes["pe1"].vrfs["red"].rd == "65000:1"
    assert t.nodes["pe2"].vrfs["red"].export_rts == ("65000:1",)


def test_admin_number_forms():
    assert admin_number("65000:1") == "65000:1"
    assert admin_number("10.0.0.1:65535") == "10.0.0.1:65535"
    assert admin_number("4200000000:7") == "4200000000:7"
    assert admin_number("65535:4294967295") == "65535:4294967295"
    for bad in ("65000", "x:1", "10.0.0.1:70000", "4200000000:70000", "1.2.3:4", ":5"):
        with pytest.raises(ValueError):
            admin_number(bad)


def test_static_routes_resolve_their_port():
    t = parse_topology(BASE.replace(
        "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth1]}",
        "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth1], routes: [{to: 10.9.0.0/16, via: 10.1.1.1}]}"))
    (r,) = t.nodes["pe1"].vrfs["red"].routes
    assert (r.prefix, r.via, r.interface) == (IPv4Network("10.9.0.0/16"), IPv4Address("10.1.1.1"), "eth1")


def test_label_mode_per_prefix_counts_labels():
    t = parse_topology(BASE.replace("interfaces: [eth2]}\n    p1", "interfaces: [eth2], label_mode: per-prefix}\n    p1"))
    assert t.nodes["pe1"].vrfs["blue"].label_count() == 1
    assert t.nodes["pe1"].vrfs["red"].label_count() == 1


RED = "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth1]}"


@pytest.mark.parametrize("old,new,message", [
    (RED, "red: {rt: 65000:1, interfaces: [eth1]}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red: missing 'rd' (route distinguisher, e.g. 65000:1)"),
    (RED, "red: {rd: 65000, rt: 65000:1, interfaces: [eth1]}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red.rd: route distinguisher 65000 is not ADMIN:NUMBER "
     "(e.g. 65000:1 or 10.255.0.1:1)"),
    (RED, "red: {rd: 10.255.0.1:2, rt: 65000:1, interfaces: [eth1]}",
     "v.yaml:10: topology.nodes.pe1.vrfs.blue.rd: route distinguisher 10.255.0.1:2 is also VRF red's"),
    (RED, "red: {rd: 65000:1, rt: [65000:1, 1.2.3.4:99999], interfaces: [eth1]}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red.rt[1]: route target '1.2.3.4:99999': the number must "
     "be 0..65535 after an IPv4 address"),
    (RED, "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth9]}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red.interfaces[0]: pe1 has no interface 'eth9' (no link names it)"),
    (RED, "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth2]}",
     "v.yaml:10: topology.nodes.pe1.vrfs.blue.interfaces[0]: pe1:eth2 is already in VRF red"),
    (RED, "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth3]}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red.interfaces[0]: pe1:eth3 leads to router p1: a VRF "
     "interface leads to a host (a CE)"),
    (RED, "red: {rd: 65000:1, rt: 65000:1, interfaces: []}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red.interfaces: expected a non-empty list of interface names"),
    (RED, "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth1], label_mode: per-site}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red.label_mode: 'per-site' is not one of: per-vrf, per-prefix"),
    (RED, "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth1], colour: red}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red.colour: unknown key 'colour' (allowed: rd, rt, import, "
     "export, interfaces, routes, label_mode)"),
    (RED, "Red: {rd: 65000:1, rt: 65000:1, interfaces: [eth1]}",
     "v.yaml:9: topology.nodes.pe1.vrfs.Red: VRF name 'Red' must be lowercase letters, digits and "
     "'-', start with a letter, at most 12 characters"),
    (RED, "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth1], routes: [{to: 10.9.0.0/16, via: 10.2.0.1}]}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red.routes[0].via: 10.2.0.1 is on no subnet of VRF red's interfaces"),
    (RED, "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth1], routes: [{to: 10.9.0.0/16, via: 10.1.1.2}]}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red.routes[0].via: 10.1.1.2 is pe1's own address"),
    (RED, "red: {rd: 65000:1, rt: 65000:1, interfaces: [eth1], routes: [{to: 10.9.0.1/16, via: 10.1.1.1}]}",
     "v.yaml:9: topology.nodes.pe1.vrfs.red.routes[0].to: bad IPv4 prefix '10.9.0.1/16': "
     "10.9.0.1/16 has host bits set"),
    # Same VRF, same subnet on two PEs: one address space, a conflict.
    ("    - endpoints: [pe2:eth1, a2:eth0]\n",
     "    - endpoints: [pe2:eth1, a2:eth0]\n      subnet: 10.1.1.0/24\n",
     "v.yaml:27: topology.links[4].subnet: 10.1.1.0/24 overlaps 10.1.1.0/24 (topology.links[0].subnet)"),
    # A VRF subnet may not overlap the provider's (global) addresses.
    ("      subnet: 10.1.1.0/24\n    - endpoints: [b1",
     "      subnet: 10.255.0.0/24\n    - endpoints: [b1",
     "v.yaml:21: topology.links[0].subnet: 10.255.0.0/24 overlaps 10.255.0.1/32 "
     "(topology.nodes.pe1.loopback)"),
    ("    pe2:\n      vrfs:", "    pe2:\n      kind: frr\n      vrfs:",
     "v.yaml:14: topology.nodes.pe2.vrfs: VRFs run on lsr routers, not on a frr node"),
    ("    p1: {}", "    p1: {labels: [16, 20]}\n    px: {vrfs: {x: {rd: 1:1, rt: 1:1, interfaces: [e]}}}",
     "v.yaml:12: topology.nodes.px.vrfs.x.interfaces[0]: px has no interface 'e' (no link names it)"),
])
def test_vrf_errors(old, new, message):
    assert old in BASE, old
    with pytest.raises(TopologyError) as ei:
        parse_topology(BASE.replace(old, new, 1), "v.yaml")
    assert str(ei.value) == message


def test_label_range_too_small_for_ldp_and_vpn():
    text = BASE.replace("      loopback: 10.255.0.1\n", "      loopback: 10.255.0.1\n      labels: [100, 105]\n")
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "v.yaml")
    assert str(ei.value) == ("v.yaml:8: topology.nodes.pe1.labels: labels [100, 105] are too few "
                             "for 6 LDP and 2 VPN labels")

"""IPv6 on customer links in topology files: `subnet6` (a prefix or `auto` from the lab's
ULA /48), the addresses endpoints get, the errors, and the 6PE label a PE keeps."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest

from ldp.instance import LdpInstance
from lsr.core.ipv6 import auto_subnet, sixpe_label, ula_block
from lsr.core.topology import TopologyError, parse_topology

BASE = """
name: six
topology:
  nodes:
    ce1: {kind: host}
    pe1: {}
    p1: {}
    pe2: {}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      LINK0
    - endpoints: [pe1:eth2, p1:eth1]
      LINK1
    - endpoints: [p1:eth2, pe2:eth2]
    - endpoints: [pe2:eth1, ce2:eth0]
      LINK3
"""


def topo(link0: str = "subnet6: auto", link1: str = "cost: 10",
         link3: str = "subnet6: 2001:db8:2::/64"):
    return parse_topology(BASE.replace("LINK0", link0).replace("LINK1", link1)
                          .replace("LINK3", link3), "six.yaml")


def test_auto_and_explicit_subnets():
    t = topo()
    block = ula_block("six")
    assert block.prefixlen == 48 and block.subnet_of(IPv6Network("fd00::/8"))
    assert t.links[0].subnet6 == auto_subnet("six", 0) == IPv6Network((block.network_address, 64))
    ce1, pe1 = t.nodes["ce1"].interfaces["eth0"], t.nodes["pe1"].interfaces["eth1"]
    assert ce1.address6.ip == block.network_address + 1 and pe1.address6.ip == block.network_address + 2
    assert t.nodes["pe2"].interfaces["eth1"].address6.ip == IPv6Address("2001:db8:2::1")
    assert t.nodes["ce2"].gateway6(t) == IPv6Address("2001:db8:2::1")
    assert t.nodes["pe1"].interfaces["eth2"].address6 is None and t.links[1].subnet6 is None
    assert t.has_ipv6 and t.node_of_address6(IPv6Address("2001:db8:2::2")).name == "ce2"
    # deterministic: the same name gives the same block, another name another one
    assert ula_block("six") == block != ula_block("seven")
    assert auto_subnet("six", 3) == IPv6Network((int(block.network_address) | 3 << 64, 64))


@pytest.mark.parametrize("kw,where,msg", [
    ({"link1": "subnet6: auto"}, "topology.links[1].subnet6",
     "subnet6 is for customer (host) links: the core stays IPv4"),
    ({"link0": "subnet6: fe80::/64"}, "topology.links[0].subnet6", "is link-local"),
    ({"link0": "subnet6: ff02::/64"}, "topology.links[0].subnet6", "is multicast"),
    ({"link0": "subnet6: ::ffff:0:0/112"}, "topology.links[0].subnet6", "not a usable unicast"),
    ({"link0": "subnet6: 2001:db8::/32"}, "topology.links[0].subnet6", "/48 to /127"),
    ({"link0": "subnet6: 2001:db8::1/64"}, "topology.links[0].subnet6", "bad IPv6 subnet"),
    ({"link0": "subnet6: 10.0.0.0/24"}, "topology.links[0].subnet6", "bad IPv6 subnet"),
    ({"link0": "subnet6: 2001:db8:2::/56"}, "topology.links[3].subnet6", "overlaps 2001:db8:2::/56"),
    ({"link0": "mtu: 1000\n      subnet6: auto"}, "topology.links[0].subnet6",
     "at least 1280 (RFC 8200 §5)"),
])
def test_errors(kw, where, msg):
    with pytest.raises(TopologyError) as ei:
        topo(**kw)
    assert where in str(ei.value) and msg in str(ei.value), str(ei.value)


def test_sixpe_label_is_kept_out_of_ldp():
    t = topo()
    pe1, p1 = t.nodes["pe1"], t.nodes["p1"]
    assert sixpe_label(pe1) == 1000 and t.label_ranges("pe1")[0] == (1001, 1048575)
    assert sixpe_label(p1) is None and t.label_ranges("p1")[0] == p1.labels  # a P router: no IPv6
    inst = LdpInstance.from_topology(t, "pe1")
    assert min(inst.lde.labels.plan.values()) == 1001
    plain = topo(link0="cost: 10", link3="cost: 10")
    assert sixpe_label(plain.nodes["pe1"]) is None and not plain.has_ipv6


VPN6 = """
name: six
topology:
  nodes:
    ce1: {kind: host}
    red1: {kind: host}
    pe1:
      vrfs:
        red: {rd: 65000:1, rt: 65000:1, interfaces: [eth3]}
    p1: {}
    pe2: {}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet6: auto
    - endpoints: [red1:eth0, pe1:eth3]
      RED
    - endpoints: [pe1:eth2, p1:eth1]
    - endpoints: [p1:eth2, pe2:eth2]
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet6: auto
"""


def test_one_label_split_for_6pe_ldp_and_vpn():
    """A PE that is a 6PE router too: its 6PE label, then LDP's block, then VPN labels."""
    t = parse_topology(VPN6.replace("RED", "cost: 10"), "six.yaml")
    pe1 = t.nodes["pe1"]
    ldp, vpn = t.label_ranges("pe1")
    assert sixpe_label(pe1) == 1000 and ldp == (1001, 1099) and vpn == (1100, pe1.labels[1])
    inst = LdpInstance.from_topology(t, "pe1")
    assert min(inst.lde.labels.plan.values()) == 1001


def test_ipv6_in_vrfs_is_an_address_space_per_vrf():
    """6VPE (RFC 4659): a VRF link's subnet6 may be another VRF's too, never the global
    one's nor another link's of its own VRF; a router with IPv6 in VRFs only keeps no 6PE
    label."""
    t = parse_topology(sites6(), "s.yaml")
    red, blue = t.nodes["pe1"].interfaces["eth3"], t.nodes["pe1"].interfaces["eth4"]
    assert red.address6 == blue.address6 and (red.vrf, blue.vrf) == ("red", "blue")
    assert t.node_of_address6(red.address6.ip, "red").name == "pe1"
    assert t.node_of_address6(IPv6Address("2001:db8:1:1::1"), "blue").name == "blue1"
    assert t.node_of_address6(IPv6Address("2001:db8:1:1::1")) is None  # not global
    assert sixpe_label(t.nodes["pe1"]) is None
    with pytest.raises(TopologyError) as ei:  # a VRF's may not overlap a global subnet
        parse_topology(sites6("2001:db8:9::/64"), "s.yaml")
    assert "links[3].subnet6: 2001:db8:9::/64 overlaps 2001:db8:9::/64" in str(ei.value)
    with pytest.raises(TopologyError) as ei:  # one VRF, one address space
        parse_topology(sites6().replace("interfaces: [eth3]", "interfaces: [eth3, eth4]")
                       .replace("blue: {rd: 65000:2, rt: 65000:2, interfaces: [eth4]}", ""),
                       "s.yaml")
    assert "links[1].subnet6: 2001:db8:1:1::/64 overlaps" in str(ei.value), str(ei.value)


SITES6 = """
name: six
topology:
  nodes:
    red1: {kind: host}
    blue1: {kind: host}
    ce1: {kind: host}
    pe1:
      vrfs:
        red: {rd: 65000:1, rt: 65000:1, interfaces: [eth3], label_mode: per-prefix}
        blue: {rd: 65000:2, rt: 65000:2, interfaces: [eth4]}
    pe2: {}
  links:
    - endpoints: [red1:eth0, pe1:eth3]
      subnet6: 2001:db8:1:1::/64
    - endpoints: [blue1:eth0, pe1:eth4]
      subnet6: BLUE
    - endpoints: [pe1:eth2, pe2:eth1]
    - endpoints: [ce1:eth0, pe2:eth2]
      subnet6: GLOBAL
"""


def sites6(blue: str = "2001:db8:1:1::/64", glob: str = "2001:db8:9::/64") -> str:
    return SITES6.replace("BLUE", blue).replace("GLOBAL", glob)


def test_per_prefix_vrf_labels_its_ipv6_subnet():
    t = parse_topology(sites6(), "s.yaml")
    from bgp.vpn import allocate_labels

    labels = allocate_labels(t, "pe1")
    keys = [(v, str(p) if p else None) for v, p in labels]
    assert keys == [("blue", None), ("red", "192.168.1.0/24"), ("red", "2001:db8:1:1::/64")]
    _, vpn = t.label_ranges("pe1")
    assert sorted(labels.values()) == list(range(vpn[0], vpn[0] + 3))

"""A 6PE topology with ECMP at the ingress and at a P router, for the IPv6 multipath LSP
traceroute (RFC 8029 §3.4.1.1.1: ::ffff:127/104) of tests/test_lsp_v6_sim.py and
tests/test_lsp_v6_netns.py (not bundled: topologies/ have goldens).

                 +-- p1 --+          +-- p4 --+
    ce1 --- pe1 -+        +-- p3 ---+         +- pe2 --- ce2
                 +-- p2 --+          +-- p5 --+

pe1 splits pe2's LSP over p1 and p2, p3 over p4 and p5: four paths.
"""

from __future__ import annotations

from ipaddress import IPv6Network

from lsr.core.topology import Topology, parse_topology

CE1 = IPv6Network("2001:db8:1::/64")
CE2 = IPv6Network("2001:db8:2::/64")
PATHS = [["p1", "p3", "p4", "pe2"], ["p1", "p3", "p5", "pe2"],
         ["p2", "p3", "p4", "pe2"], ["p2", "p3", "p5", "pe2"]]

YAML = """
name: sixecmp
topology:
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1}
    p1: {loopback: 10.255.0.11}
    p2: {loopback: 10.255.0.12}
    p3: {loopback: 10.255.0.13}
    p4: {loopback: 10.255.0.14}
    p5: {loopback: 10.255.0.15}
    pe2: {loopback: 10.255.0.2}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet: 192.168.1.0/24
      subnet6: 2001:db8:1::/64
    - endpoints: [pe1:eth2, p1:eth1]
    - endpoints: [pe1:eth3, p2:eth1]
    - endpoints: [p1:eth2, p3:eth1]
    - endpoints: [p2:eth2, p3:eth2]
    - endpoints: [p3:eth3, p4:eth1]
    - endpoints: [p3:eth4, p5:eth1]
    - endpoints: [p4:eth2, pe2:eth2]
    - endpoints: [p5:eth2, pe2:eth3]
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet: 192.168.2.0/24
      subnet6: 2001:db8:2::/64
bgp:
  asn: 65000
  routers:
    pe1: {}
    pe2: {}
"""


def topology() -> Topology:
    return parse_topology(YAML, "tests/sixpe_ecmp.py")

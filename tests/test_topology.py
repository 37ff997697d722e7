"""Topology loader: bundled files load; broken files give one located line, exit 2."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address, IPv4Network

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.topology import TopologyError, load_topology, parse_topology

GOOD = """\
name: t1
topology:
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1}
    p1: {}
    pe2: {}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet: 192.168.1.0/24
    - endpoints: [pe1:eth2, p1:eth1]
      cost: 5
    - endpoints: [p1:eth2, pe2:eth2]
    - endpoints: [pe2:eth1, ce2:eth0]
"""


def test_good_file_auto_assigns_deterministically():
    t = parse_topology(GOOD)
    assert t.nodes["pe1"].loopback == IPv4Address("10.255.0.1")
    assert t.nodes["p1"].loopback == IPv4Address("10.255.0.2")
    assert t.nodes["pe2"].loopback == IPv4Address("10.255.0.3")
    assert t.links[0].subnet == IPv4Network("192.168.1.0/24")
    # first endpoint gets the first host address
    assert str(t.interface("ce1", "eth0").address) == "192.168.1.1/24"
    assert str(t.interface("pe1", "eth1").address) == "192.168.1.2/24"
    assert t.links[1].subnet == IPv4Network("10.0.0.0/30")
    assert t.links[1].cost == 5 and t.links[2].cost == 10
    assert t.links[3].subnet == IPv4Network("192.168.0.0/24")
    assert t.interface("pe1", "eth2").peer_node == "p1"
    macs = [i.mac for n in t.nodes.values() for i in n.interfaces.values()]
    assert len(set(macs)) == len(macs)
    assert t.nodes["ce1"].gateway(t) == IPv4Address("192.168.1.2")
    assert parse_topology(GOOD).links == t.links  # same input, same plan


def test_auto_subnets_avoid_explicit_ones():
    t = parse_topology(
        GOOD.replace("      cost: 5\n", "      cost: 5\n    - endpoints: [pe1:eth9, pe2:eth9]\n      subnet: 10.0.0.4/30\n")
    )
    subnets = [lk.subnet for lk in t.links]
    assert len(set(subnets)) == len(subnets)
    assert IPv4Network("10.0.0.4/30") in subnets


BROKEN = [
    # (description, yaml text, expected fragment of the error, expected line or None)
    ("yaml syntax", "name: x\ntopology: [\n", "YAML syntax error", None),
    ("empty file", "", "file is empty", None),
    ("not a mapping", "- a\n- b\n", "expected a mapping", 1),
    ("unknown top key", GOOD + "colour: red\n", "unknown key 'colour'", 16),
    ("missing name", GOOD.replace("name: t1\n", ""), "missing 'name'", None),
    ("name too long", GOOD.replace("name: t1", "name: abcdefghijklm"), "at most 12", 1),
    ("name uppercase", GOOD.replace("name: t1", "name: Lab"), "lowercase", 1),
    ("unknown node key", GOOD.replace("p1: {}", "p1: {colour: red}"), "unknown key 'colour'", 6),
    ("unknown kind", GOOD.replace("p1: {}", "p1: {kind: switch}"), "'switch' is not one of", 6),
    ("unknown node in link", GOOD.replace("[p1:eth2, pe2:eth2]", "[p9:eth2, pe2:eth2]"), "unknown node 'p9'", 14),
    ("duplicate interface", GOOD.replace("[p1:eth2, pe2:eth2]", "[p1:eth1, pe2:eth2]"), "already used by link 1", 14),
    ("bad endpoint", GOOD.replace("[p1:eth2, pe2:eth2]", "[p1, pe2:eth2]"), "must be 'node:interface'", 14),
    ("one endpoint", GOOD.replace("[p1:eth2, pe2:eth2]", "[p1:eth2]"), "two 'node:interface'", 14),
    ("self link", GOOD.replace("[p1:eth2, pe2:eth2]", "[p1:eth2, p1:eth3]"), "to itself", 14),
    ("ifname too long", GOOD.replace("p1:eth2,", "p1:abcdefghijklmnop,"), "longer than 15", 14),
    ("ifname bad char", GOOD.replace("p1:eth2,", "p1:et h2,"), "not a valid Linux interface name", 14),
    ("ifname lo", GOOD.replace("p1:eth2,", "p1:lo,"), "not a valid Linux interface name", 14),
    ("bad subnet", GOOD.replace("192.168.1.0/24", "192.168.1.0/33"), "bad IPv4 subnet", 11),
    ("host bits set", GOOD.replace("192.168.1.0/24", "192.168.1.5/24"), "bad IPv4 subnet", 11),
    ("subnet too small", GOOD.replace("192.168.1.0/24", "192.168.1.0/31"), "too small", 11),
    ("bad loopback", GOOD.replace("10.255.0.1", "10.255.0.300"), "bad IPv4 address", 5),
    ("multicast loopback", GOOD.replace("10.255.0.1", "224.0.0.5"), "not a usable unicast", 5),
    ("127 loopback", GOOD.replace("10.255.0.1", "127.0.0.1"), "not a usable unicast", 5),
    ("overlap subnets", GOOD.replace("      cost: 5\n", "      cost: 5\n      subnet: 192.168.1.0/30\n"), "overlaps 192.168.1.0/24", 14),
    ("loopback in subnet", GOOD.replace("10.255.0.1", "192.168.1.9"), "overlaps", 11),
    ("duplicate loopback", GOOD.replace("p1: {}", "p1: {loopback: 10.255.0.1}"), "already used by pe1", 6),
    ("label range low", GOOD.replace("p1: {}", "p1: {labels: [15, 100]}"), "out of range 16..1048575", 6),
    ("label range high", GOOD.replace("p1: {}", "p1: {labels: [16, 1048576]}"), "out of range", 6),
    ("label range empty", GOOD.replace("p1: {}", "p1: {labels: [200, 100]}"), "is empty", 6),
    ("label range shape", GOOD.replace("p1: {}", "p1: {labels: 100}"), "list [first, last]", 6),
    ("host two links", GOOD.replace("[pe2:eth1, ce2:eth0]", "[pe2:eth1, ce1:eth5]"), "exactly one link, it has 2", 4),
    ("host no link", GOOD.replace("    ce2: {kind: host}\n", "    ce2: {kind: host}\n    ce3: {kind: host}\n"), "exactly one link, it has 0", 9),
    ("host to host", GOOD + "    - endpoints: [ce1:eth7, ce2:eth7]\n", "not to another host", 16),
    ("host with loopback", GOOD.replace("ce1: {kind: host}", "ce1: {kind: host, loopback: 10.1.1.1}"), "does not apply to a host", 4),
    ("disconnected", GOOD.replace("    - endpoints: [p1:eth2, pe2:eth2]\n", ""), "not all connected", None),
    ("cost zero", GOOD.replace("cost: 5", "cost: 0"), "out of range 1..65535", 13),
    ("cost string", GOOD.replace("cost: 5", "cost: five"), "expected an integer", 13),
    ("cost bool", GOOD.replace("cost: 5", "cost: true"), "expected an integer", 13),
    ("mtu low", GOOD.replace("cost: 5", "mtu: 100"), "out of range 576..9000", 13),
    ("duplicate key", GOOD.replace("    p1: {}\n", "    p1: {}\n    p1: {}\n"), "duplicate key 'p1'", 7),
    ("no routers", "name: x\ntopology:\n  nodes:\n    h: {kind: host}\n", "at least one router", 3),
    ("nodes not mapping", "name: x\ntopology:\n  nodes: [a, b]\n", "non-empty mapping", 3),
    ("links not list", GOOD.replace("  links:\n", "  links: 3\n  linkz:\n"), "unknown key 'linkz'", None),
    ("bad ttl model", GOOD.replace("p1: {}", "p1: {ttl_model: tube}"), "'tube' is not one of", 6),
    ("bad ldp key", GOOD.replace("p1: {}", "p1: {ldp: {hello: 1}}"), "unknown key 'hello'", 6),
    ("holdtime < interval", GOOD.replace("p1: {}", "p1: {ldp: {hello_interval: 10, hello_holdtime: 5}}"), "at least hello_interval", 6),
    ("bad defaults key", GOOD.replace("topology:\n", "topology:\n  defaults: {loopback: 10.1.1.1}\n"), "unknown key 'loopback'", 3),
    ("password unknown router", GOOD.replace("p1: {}", "p1: {ldp: {passwords: {zz: secret}}}"), "unknown router 'zz'", 6),
    ("node name bad", GOOD.replace("p1: {}", "P1: {}"), "node name 'P1'", 6),
]


@pytest.mark.parametrize("desc,text,fragment,line", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_files_give_located_errors(desc, text, fragment, line):
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "bad.yaml")
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith("bad.yaml")
    assert fragment in msg, msg
    if line is not None:
        assert ei.value.line == line, msg


def test_cli_broken_file_exit_2_one_line_no_traceback(tmp_path):
    runner = CliRunner()
    for desc, text, fragment, _ in BROKEN:
        f = tmp_path / "bad.yaml"
        f.write_text(text)
        r = runner.invoke(main, ["topo", "validate", str(f)])
        assert r.exit_code == 2, (desc, r.output)
        out = r.stderr if hasattr(r, "stderr") else r.output
        assert "Traceback" not in r.output
        assert fragment in out, (desc, out)
        assert len(out.strip().splitlines()) == 1, (desc, out)


def test_cli_missing_file_and_unknown_router(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["topo", "validate", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2 and "no such file" in r.output
    r = runner.invoke(main, ["igp", "routes", "topologies/line3.yaml", "--router", "zz"])
    assert r.exit_code == 2 and "no router named 'zz'" in r.output


def test_load_topology_reads_file(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text(textwrap.dedent(GOOD))
    assert load_topology(f).name == "t1"

"""Topology loader: bundled files load; broken files give one located line, exit 2."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address, IPv4Network

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.topology import TopologyError, load_topology, parse_topology, section_names

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
    ("ifname lo", GOOD.replace("p1:eth2,", "p1:lo,"), "reserved for Linux's own use", 14),
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


# Every message parse_topology gives, exactly, and which one wins when a file has several
# problems (the order of the checks). (id, old, new, message): `new` replaces `old` in GOOD;
# with old None, `new` is the whole file.
EXACT = [
    # --- file and top level
    ("empty", None, "",
     'bad.yaml:1: file is empty'),
    ("comment only", None, "# nothing\n",
     'bad.yaml:1: file is empty'),
    ("top list", None, "- a\n- b\n",
     'bad.yaml:1: expected a mapping, got a list'),
    ("top scalar", None, "hello\n",
     'bad.yaml:1: expected a mapping, got a string'),
    ("top unknown key", "name: t1\n", "name: t1\ncolour: red\n",
     "bad.yaml:2: colour: unknown key 'colour' (allowed: {TOP})"),
    ("top int key", "name: t1\n", "name: t1\n7: x\n",
     "bad.yaml:2: [7]: unknown key '7' (allowed: {TOP})"),
    ("unknown key before missing name", "name: t1\n", "colour: red\n",
     "bad.yaml:1: colour: unknown key 'colour' (allowed: {TOP})"),
    ("missing name", "name: t1\n", "",
     "bad.yaml:1: missing 'name'"),
    ("name int", "name: t1", "name: 12",
     "bad.yaml:1: name: lab name 12 must be lowercase letters, digits and '-', start with a letter, at most 12 characters"),
    ("name too long", "name: t1", "name: abcdefghijklm",
     "bad.yaml:1: name: lab name 'abcdefghijklm' must be lowercase letters, digits and '-', start with a letter, at most 12 characters"),
    ("name uppercase", "name: t1", "name: Lab",
     "bad.yaml:1: name: lab name 'Lab' must be lowercase letters, digits and '-', start with a letter, at most 12 characters"),
    ("name digit first", "name: t1", "name: 1lab",
     "bad.yaml:1: name: lab name '1lab' must be lowercase letters, digits and '-', start with a letter, at most 12 characters"),
    ("name trailing newline", "name: t1", 'name: "t1\\n"',
     "bad.yaml:1: name: lab name 't1\\n' must be lowercase letters, digits and '-', start with a letter, at most 12 characters"),
    ("bad name before missing topology", None, "name: Lab\n",
     "bad.yaml:1: name: lab name 'Lab' must be lowercase letters, digits and '-', start with a letter, at most 12 characters"),
    ("missing topology", None, "name: t1\n",
     "bad.yaml:1: missing 'topology'"),
    ("topology list", None, "name: t1\ntopology: [1]\n",
     'bad.yaml:2: topology: expected a mapping, got a list'),
    ("topology null", None, "name: t1\ntopology:\n",
     'bad.yaml:2: topology.nodes: expected a non-empty mapping of nodes'),
    ("topology unknown key", "topology:\n", "topology:\n  routers: {}\n",
     "bad.yaml:3: topology.routers: unknown key 'routers' (allowed: defaults, nodes, links)"),
    ("defaults not mapping", "topology:\n", "topology:\n  defaults: 3\n",
     'bad.yaml:3: topology.defaults: expected a mapping, got int'),
    ("defaults unknown key", "topology:\n", "topology:\n  defaults: {loopback: 10.1.1.1}\n",
     "bad.yaml:3: topology.defaults.loopback: unknown key 'loopback' (allowed: labels, ttl_model, ldp, ospf)"),
    ("nodes empty", None, "name: t1\ntopology:\n  nodes: {}\n",
     'bad.yaml:3: topology.nodes: expected a non-empty mapping of nodes'),
    ("nodes list", None, "name: t1\ntopology:\n  nodes: [a, b]\n",
     'bad.yaml:3: topology.nodes: expected a non-empty mapping of nodes'),
    ("nodes before links shape", None, "name: t1\ntopology:\n  nodes: {}\n  links: 3\n",
     'bad.yaml:3: topology.nodes: expected a non-empty mapping of nodes'),
    ("links not list", "  links:\n", "  links: 3\n  linkx:\n",
     "bad.yaml:10: topology.linkx: unknown key 'linkx' (allowed: defaults, nodes, links)"),
    ("links mapping", None, "name: t1\ntopology:\n  nodes: {pe1: {}}\n  links: {a: 1}\n",
     'bad.yaml:4: topology.links: expected a list of links'),
    ("links shape before defaults", None,
     "name: t1\ntopology:\n  defaults: {ttl_model: tube}\n  nodes: {pe1: {}}\n  links: 3\n",
     'bad.yaml:5: topology.links: expected a list of links'),
    # --- defaults
    ("defaults labels", "topology:\n", "topology:\n  defaults: {labels: [10, 20]}\n",
     'bad.yaml:3: topology.defaults.labels[0]: 10 is out of range 16..1048575'),
    ("defaults labels shape", "topology:\n", "topology:\n  defaults: {labels: [100]}\n",
     'bad.yaml:3: topology.defaults.labels: labels must be a list [first, last]'),
    ("defaults ttl", "topology:\n", "topology:\n  defaults: {ttl_model: tube}\n",
     "bad.yaml:3: topology.defaults.ttl_model: 'tube' is not one of: uniform, pipe, short-pipe"),
    ("defaults ldp key", "topology:\n", "topology:\n  defaults: {ldp: {hello: 1}}\n",
     "bad.yaml:3: topology.defaults.ldp.hello: unknown key 'hello' (allowed: hello_interval, hello_holdtime, keepalive_time, explicit_null, control, retention, fecs, passwords, gtsm, igp_sync, max_adjacencies, adjacency_rate)"),
    ("defaults ldp holdtime", "topology:\n", "topology:\n  defaults: {ldp: {hello_interval: 20}}\n",
     'bad.yaml:3: topology.defaults.ldp: hello_holdtime must be at least hello_interval'),
    ("defaults labels before ttl", "topology:\n", "topology:\n  defaults: {ttl_model: tube, labels: 5}\n",
     'bad.yaml:3: topology.defaults.labels: labels must be a list [first, last]'),
    ("defaults ttl before ldp", "topology:\n", "topology:\n  defaults: {ldp: {x: 1}, ttl_model: tube}\n",
     "bad.yaml:3: topology.defaults.ttl_model: 'tube' is not one of: uniform, pipe, short-pipe"),
    ("defaults before nodes", None, "name: t1\ntopology:\n  defaults: {ttl_model: tube}\n  nodes: {P: {}}\n",
     "bad.yaml:3: topology.defaults.ttl_model: 'tube' is not one of: uniform, pipe, short-pipe"),
    ("defaults retention reaches frr", None,
     "name: t1\ntopology:\n  defaults: {ldp: {retention: conservative}}\n  nodes: {r: {kind: frr}}\n",
     "bad.yaml:4: topology.nodes.r.ldp.retention: FRR's ldpd supports only liberal retention"),
    # --- node names and kinds
    ("node name upper", "p1: {}", "P1: {}",
     "bad.yaml:6: topology.nodes.P1: node name 'P1' must be lowercase letters, digits and '-', start with a letter, at most 15 characters"),
    ("node name int", "p1: {}", "7: {}",
     "bad.yaml:6: topology.nodes[7]: node name 7 must be lowercase letters, digits and '-', start with a letter, at most 15 characters"),
    ("node name long", "p1: {}", "abcdefghijklmnop: {}",
     "bad.yaml:6: topology.nodes.abcdefghijklmnop: node name 'abcdefghijklmnop' must be lowercase letters, digits and '-', start with a letter, at most 15 characters"),
    ("node name trailing newline", "p1: {}", '"p1\\n": {}',
     "bad.yaml:6: topology.nodes['p1\\n']: node name 'p1\\n' must be lowercase letters, digits and '-', start with a letter, at most 15 characters"),
    ("node not mapping", "p1: {}", "p1: 3",
     'bad.yaml:6: topology.nodes.p1: expected a mapping, got int'),
    ("node list", "p1: {}", "p1: [kind]",
     'bad.yaml:6: topology.nodes.p1: expected a mapping, got a list'),
    ("node unknown key", "p1: {}", "p1: {colour: red}",
     "bad.yaml:6: topology.nodes.p1.colour: unknown key 'colour' (allowed: kind, loopback, labels, ttl_model, ldp, ospf)"),
    ("unknown key before kind", "p1: {}", "p1: {kind: switch, colour: red}",
     "bad.yaml:6: topology.nodes.p1.colour: unknown key 'colour' (allowed: kind, loopback, labels, ttl_model, ldp, ospf)"),
    ("unknown kind", "p1: {}", "p1: {kind: switch}",
     "bad.yaml:6: topology.nodes.p1.kind: 'switch' is not one of: lsr, frr, host, strongswan"),
    ("null kind", "p1: {}", "p1: {kind: null}",
     'bad.yaml:6: topology.nodes.p1.kind: None is not one of: lsr, frr, host, strongswan'),
    ("host with loopback", "ce1: {kind: host}", "ce1: {kind: host, loopback: 10.1.1.1}",
     "bad.yaml:4: topology.nodes.ce1.loopback: 'loopback' does not apply to a host node"),
    ("host key before kind", "ce1: {kind: host}", "ce1: {ttl_model: pipe, kind: host, loopback: 10.1.1.1}",
     "bad.yaml:4: topology.nodes.ce1.ttl_model: 'ttl_model' does not apply to a host node"),
    ("strongswan with labels", "ce1: {kind: host}", "ce1: {kind: strongswan, labels: [16, 20]}",
     "bad.yaml:4: topology.nodes.ce1.labels: 'labels' does not apply to a strongswan node"),
    ("bad node before later node", "p1: {}", "p1: {kind: switch}\n    p2: {colour: red}",
     "bad.yaml:6: topology.nodes.p1.kind: 'switch' is not one of: lsr, frr, host, strongswan"),
    # --- router fields
    ("bad loopback", "10.255.0.1", "10.255.0.300",
     "bad.yaml:5: topology.nodes.pe1.loopback: bad IPv4 address '10.255.0.300'"),
    ("loopback int", "{loopback: 10.255.0.1}", "{loopback: 7}",
     'bad.yaml:5: topology.nodes.pe1.loopback: bad IPv4 address 7'),
    ("multicast loopback", "10.255.0.1", "224.0.0.5",
     'bad.yaml:5: topology.nodes.pe1.loopback: 224.0.0.5 is not a usable unicast address'),
    ("127 loopback", "10.255.0.1", "127.0.0.1",
     'bad.yaml:5: topology.nodes.pe1.loopback: 127.0.0.1 is not a usable unicast address'),
    ("zero loopback", "10.255.0.1", "0.0.0.0",
     'bad.yaml:5: topology.nodes.pe1.loopback: 0.0.0.0 is not a usable unicast address'),
    ("broadcast loopback", "10.255.0.1", "255.255.255.255",
     'bad.yaml:5: topology.nodes.pe1.loopback: 255.255.255.255 is not a usable unicast address'),
    ("link-local loopback", "10.255.0.1", "169.254.0.1",
     'bad.yaml:5: topology.nodes.pe1.loopback: 169.254.0.1 is not a usable unicast address'),
    ("duplicate loopback", "p1: {}", "p1: {loopback: 10.255.0.1}",
     'bad.yaml:6: topology.nodes.p1.loopback: loopback 10.255.0.1 is already used by pe1'),
    ("labels low", "p1: {}", "p1: {labels: [15, 100]}",
     'bad.yaml:6: topology.nodes.p1.labels[0]: 15 is out of range 16..1048575'),
    ("labels high", "p1: {}", "p1: {labels: [16, 1048576]}",
     'bad.yaml:6: topology.nodes.p1.labels[1]: 1048576 is out of range 16..1048575'),
    ("labels empty", "p1: {}", "p1: {labels: [200, 100]}",
     'bad.yaml:6: topology.nodes.p1.labels: label range [200, 100] is empty'),
    ("labels scalar", "p1: {}", "p1: {labels: 100}",
     'bad.yaml:6: topology.nodes.p1.labels: labels must be a list [first, last]'),
    ("labels three", "p1: {}", "p1: {labels: [16, 20, 30]}",
     'bad.yaml:6: topology.nodes.p1.labels: labels must be a list [first, last]'),
    ("labels str", "p1: {}", "p1: {labels: [a, 20]}",
     "bad.yaml:6: topology.nodes.p1.labels[0]: expected an integer, got a string 'a'"),
    ("labels both bad", "p1: {}", "p1: {labels: [1, 2]}",
     'bad.yaml:6: topology.nodes.p1.labels[0]: 1 is out of range 16..1048575'),
    ("bad ttl model", "p1: {}", "p1: {ttl_model: tube}",
     "bad.yaml:6: topology.nodes.p1.ttl_model: 'tube' is not one of: uniform, pipe, short-pipe"),
    ("loopback before labels", "p1: {}", "p1: {labels: 5, loopback: 1.2.3}",
     "bad.yaml:6: topology.nodes.p1.loopback: bad IPv4 address '1.2.3'"),
    ("labels before ttl", "p1: {}", "p1: {ttl_model: tube, labels: 5}",
     'bad.yaml:6: topology.nodes.p1.labels: labels must be a list [first, last]'),
    ("ttl before ldp", "p1: {}", "p1: {ldp: {x: 1}, ttl_model: tube}",
     "bad.yaml:6: topology.nodes.p1.ttl_model: 'tube' is not one of: uniform, pipe, short-pipe"),
    # --- ldp options
    ("ldp not mapping", "p1: {}", "p1: {ldp: 5}",
     'bad.yaml:6: topology.nodes.p1.ldp: expected a mapping, got int'),
    ("ldp unknown key", "p1: {}", "p1: {ldp: {hello: 1}}",
     "bad.yaml:6: topology.nodes.p1.ldp.hello: unknown key 'hello' (allowed: hello_interval, hello_holdtime, keepalive_time, explicit_null, control, retention, fecs, passwords, gtsm, igp_sync, max_adjacencies, adjacency_rate)"),
    ("hello_interval 0", "p1: {}", "p1: {ldp: {hello_interval: 0}}",
     'bad.yaml:6: topology.nodes.p1.ldp.hello_interval: 0 is out of range 1..21845'),
    ("hello_interval high", "p1: {}", "p1: {ldp: {hello_interval: 21846}}",
     'bad.yaml:6: topology.nodes.p1.ldp.hello_interval: 21846 is out of range 1..21845'),
    ("hello_holdtime high", "p1: {}", "p1: {ldp: {hello_holdtime: 65535}}",
     'bad.yaml:6: topology.nodes.p1.ldp.hello_holdtime: 65535 is out of range 1..65534'),
    ("keepalive str", "p1: {}", "p1: {ldp: {keepalive_time: soon}}",
     "bad.yaml:6: topology.nodes.p1.ldp.keepalive_time: expected an integer, got a string 'soon'"),
    ("keepalive bool", "p1: {}", "p1: {ldp: {keepalive_time: true}}",
     'bad.yaml:6: topology.nodes.p1.ldp.keepalive_time: expected an integer, got a boolean True'),
    ("explicit_null str", "p1: {}", "p1: {ldp: {explicit_null: 'yes'}}",
     "bad.yaml:6: topology.nodes.p1.ldp.explicit_null: expected true or false, got 'yes'"),
    ("gtsm int", "p1: {}", "p1: {ldp: {gtsm: 1}}",
     'bad.yaml:6: topology.nodes.p1.ldp.gtsm: expected true or false, got 1'),
    ("control bad", "p1: {}", "p1: {ldp: {control: eager}}",
     "bad.yaml:6: topology.nodes.p1.ldp.control: 'eager' is not one of: independent, ordered"),
    ("retention bad", "p1: {}", "p1: {ldp: {retention: forever}}",
     "bad.yaml:6: topology.nodes.p1.ldp.retention: 'forever' is not one of: liberal, conservative"),
    ("fecs bad", "p1: {}", "p1: {ldp: {fecs: some}}",
     "bad.yaml:6: topology.nodes.p1.ldp.fecs: 'some' is not one of: all, loopbacks"),
    ("passwords list", "p1: {}", "p1: {ldp: {passwords: [pe1]}}",
     'bad.yaml:6: topology.nodes.p1.ldp.passwords: expected a mapping of neighbour name to password'),
    ("password int", "p1: {}", "p1: {ldp: {passwords: {pe1: 1234}}}",
     'bad.yaml:6: topology.nodes.p1.ldp.passwords.pe1: password must be a string of 1..80 characters'),
    ("password long", "p1: {}", "p1: {ldp: {passwords: {pe1: " + "x" * 81 + "}}}",
     'bad.yaml:6: topology.nodes.p1.ldp.passwords.pe1: password must be a string of 1..80 characters'),
    ("password empty", "p1: {}", "p1: {ldp: {passwords: {pe1: ''}}}",
     'bad.yaml:6: topology.nodes.p1.ldp.passwords.pe1: password must be a string of 1..80 characters'),
    ("holdtime < interval", "p1: {}", "p1: {ldp: {hello_interval: 10, hello_holdtime: 5}}",
     'bad.yaml:6: topology.nodes.p1.ldp: hello_holdtime must be at least hello_interval'),
    ("holdtime < inherited interval", None,
     "name: t1\ntopology:\n  defaults: {ldp: {hello_interval: 10, hello_holdtime: 30}}\n  nodes: {r: {ldp: {hello_holdtime: 5}}}\n",
     'bad.yaml:4: topology.nodes.r.ldp: hello_holdtime must be at least hello_interval'),
    ("ldp keys in file order", "p1: {}", "p1: {ldp: {control: eager, hello_interval: 0}}",
     "bad.yaml:6: topology.nodes.p1.ldp.control: 'eager' is not one of: independent, ordered"),
    ("ldp key before holdtime", "p1: {}", "p1: {ldp: {hello_interval: 10, hello_holdtime: 5, gtsm: 2}}",
     'bad.yaml:6: topology.nodes.p1.ldp.gtsm: expected true or false, got 2'),
    # --- frr
    ("frr labels", "p1: {}", "p1: {kind: frr, labels: [16, 100]}",
     "bad.yaml:6: topology.nodes.p1.labels: an frr node allocates its own labels (FRR's label manager); 'labels' does not apply"),
    ("frr conservative", "p1: {}", "p1: {kind: frr, ldp: {retention: conservative}}",
     "bad.yaml:6: topology.nodes.p1.ldp.retention: FRR's ldpd supports only liberal retention"),
    ("frr labels before retention", "p1: {}", "p1: {kind: frr, ldp: {retention: conservative}, labels: [16, 100]}",
     "bad.yaml:6: topology.nodes.p1.labels: an frr node allocates its own labels (FRR's label manager); 'labels' does not apply"),
    ("frr bad ldp first", "p1: {}", "p1: {kind: frr, ldp: {retention: x}, labels: [16, 100]}",
     "bad.yaml:6: topology.nodes.p1.ldp.retention: 'x' is not one of: liberal, conservative"),
    # --- routers
    ("no routers", None, "name: x\ntopology:\n  nodes:\n    h: {kind: host}\n",
     'bad.yaml:3: topology.nodes: a topology needs at least one router'),
    ("node errors before no routers", None, "name: x\ntopology:\n  nodes:\n    h: {kind: host, cost: 1}\n",
     "bad.yaml:4: topology.nodes.h.cost: unknown key 'cost' (allowed: kind, loopback, labels, ttl_model, ldp, ospf)"),
    ("no routers before links", None,
     "name: x\ntopology:\n  nodes:\n    h: {kind: host}\n  links:\n    - 5\n",
     'bad.yaml:3: topology.nodes: a topology needs at least one router'),
    # --- links
    ("link not mapping", "    - endpoints: [p1:eth2, pe2:eth2]\n", "    - 5\n",
     'bad.yaml:14: topology.links[2]: expected a mapping, got int'),
    ("link unknown key", "    - endpoints: [p1:eth2, pe2:eth2]\n", "    - endpoints: [p1:eth2, pe2:eth2]\n      colour: red\n",
     "bad.yaml:15: topology.links[2].colour: unknown key 'colour' (allowed: endpoints, subnet, cost, mtu, delay, jitter, loss, rate, queue)"),
    ("link unknown key before endpoints", "    - endpoints: [p1:eth2, pe2:eth2]\n", "    - endpoints: [p1:eth2]\n      colour: red\n",
     "bad.yaml:15: topology.links[2].colour: unknown key 'colour' (allowed: endpoints, subnet, cost, mtu, delay, jitter, loss, rate, queue)"),
    ("no endpoints", "    - endpoints: [p1:eth2, pe2:eth2]\n", "    - cost: 3\n",
     "bad.yaml:14: topology.links[2].endpoints: endpoints must be a list of two 'node:interface' strings"),
    ("one endpoint", "[p1:eth2, pe2:eth2]", "[p1:eth2]",
     "bad.yaml:14: topology.links[2].endpoints: endpoints must be a list of two 'node:interface' strings"),
    ("three endpoints", "[p1:eth2, pe2:eth2]", "[p1:eth2, pe2:eth2, pe1:eth7]",
     "bad.yaml:14: topology.links[2].endpoints: endpoints must be a list of two 'node:interface' strings"),
    ("endpoint string", "[p1:eth2, pe2:eth2]", "p1:eth2",
     "bad.yaml:14: topology.links[2].endpoints: endpoints must be a list of two 'node:interface' strings"),
    ("endpoint no colon", "[p1:eth2, pe2:eth2]", "[p1, pe2:eth2]",
     "bad.yaml:14: topology.links[2].endpoints[0]: endpoint 'p1' must be 'node:interface'"),
    ("endpoint two colons", "[p1:eth2, pe2:eth2]", "[p1:eth2:x, pe2:eth2]",
     "bad.yaml:14: topology.links[2].endpoints[0]: endpoint 'p1:eth2:x' must be 'node:interface'"),
    ("endpoint int", "[p1:eth2, pe2:eth2]", "[p1:eth2, 5]",
     "bad.yaml:14: topology.links[2].endpoints[1]: endpoint 5 must be 'node:interface'"),
    ("unknown node", "[p1:eth2, pe2:eth2]", "[p9:eth2, pe2:eth2]",
     "bad.yaml:14: topology.links[2].endpoints[0]: unknown node 'p9'"),
    ("empty ifname", "[p1:eth2, pe2:eth2]", "[p1:eth2, 'pe2:']",
     'bad.yaml:14: topology.links[2].endpoints[1]: empty interface name'),
    ("ifname long", "p1:eth2,", "p1:abcdefghijklmnop,",
     "bad.yaml:14: topology.links[2].endpoints[0]: interface name 'abcdefghijklmnop' is longer than 15 characters"),
    ("ifname space", "p1:eth2,", "p1:et h2,",
     "bad.yaml:14: topology.links[2].endpoints[0]: 'et h2' is not a valid Linux interface name (letters, digits, '_', '.', '-'; not starting with '.' or '-')"),
    ("ifname lo", "p1:eth2,", "p1:lo,",
     "bad.yaml:14: topology.links[2].endpoints[0]: 'lo' is reserved for Linux's own use (lo, all, default, bonding_masters)"),
    ("ifname dotdot", "p1:eth2,", "p1:..,",
     "bad.yaml:14: topology.links[2].endpoints[0]: '..' is not a valid Linux interface name (letters, digits, '_', '.', '-'; not starting with '.' or '-')"),
    ("ifname bad char", "p1:eth2,", "p1:eth+2,",
     "bad.yaml:14: topology.links[2].endpoints[0]: 'eth+2' is not a valid Linux interface name (letters, digits, '_', '.', '-'; not starting with '.' or '-')"),
    ("ifname slash", "p1:eth2,", "p1:e/2,",
     "bad.yaml:14: topology.links[2].endpoints[0]: 'e/2' is not a valid Linux interface name (letters, digits, '_', '.', '-'; not starting with '.' or '-')"),
    ("ifname all", "p1:eth2,", "p1:all,",
     "bad.yaml:14: topology.links[2].endpoints[0]: 'all' is reserved for Linux's own use (lo, all, default, bonding_masters)"),
    ("ifname default", "p1:eth2,", "p1:default,",
     "bad.yaml:14: topology.links[2].endpoints[0]: 'default' is reserved for Linux's own use (lo, all, default, bonding_masters)"),
    ("ifname bonding_masters", "p1:eth2,", "p1:bonding_masters,",
     "bad.yaml:14: topology.links[2].endpoints[0]: 'bonding_masters' is reserved for Linux's own use (lo, all, default, bonding_masters)"),
    ("ifname leading dash", "p1:eth2,", "p1:-x,",
     "bad.yaml:14: topology.links[2].endpoints[0]: '-x' is not a valid Linux interface name (letters, digits, '_', '.', '-'; not starting with '.' or '-')"),
    ("ifname leading dot", "p1:eth2,", "p1:.x,",
     "bad.yaml:14: topology.links[2].endpoints[0]: '.x' is not a valid Linux interface name (letters, digits, '_', '.', '-'; not starting with '.' or '-')"),
    ("ifname template", "p1:eth2,", "p1:eth%d,",
     "bad.yaml:14: topology.links[2].endpoints[0]: 'eth%d' is not a valid Linux interface name (letters, digits, '_', '.', '-'; not starting with '.' or '-')"),
    ("ifname trailing newline", "[p1:eth2, pe2:eth2]", '["p1:eth2\\n", pe2:eth2]',
     "bad.yaml:14: topology.links[2].endpoints[0]: 'eth2\\n' is not a valid Linux interface name (letters, digits, '_', '.', '-'; not starting with '.' or '-')"),
    ("ifname tab", "[p1:eth2, pe2:eth2]", '["p1:et\\th2", pe2:eth2]',
     "bad.yaml:14: topology.links[2].endpoints[0]: 'et\\th2' is not a valid Linux interface name (letters, digits, '_', '.', '-'; not starting with '.' or '-')"),
    ("duplicate interface", "[p1:eth2, pe2:eth2]", "[p1:eth1, pe2:eth2]",
     'bad.yaml:14: topology.links[2].endpoints[0]: interface p1:eth1 is already used by link 1'),
    ("duplicate in one link", "[p1:eth2, pe2:eth2]", "[p1:eth2, p1:eth2]",
     'bad.yaml:14: topology.links[2].endpoints[1]: interface p1:eth2 is already used by link 2'),
    ("first endpoint first", "[p1:eth2, pe2:eth2]", "[p9:eth2, pe2]",
     "bad.yaml:14: topology.links[2].endpoints[0]: unknown node 'p9'"),
    ("unknown node before ifname", "[p1:eth2, pe2:eth2]", "[p9:lo, pe2:eth2]",
     "bad.yaml:14: topology.links[2].endpoints[0]: unknown node 'p9'"),
    ("self link", "[p1:eth2, pe2:eth2]", "[p1:eth2, p1:eth3]",
     'bad.yaml:14: topology.links[2].endpoints: a link cannot connect p1 to itself'),
    ("host to host", "    - endpoints: [pe2:eth1, ce2:eth0]\n", "    - endpoints: [pe2:eth1, ce2:eth0]\n    - endpoints: [ce1:eth7, ce2:eth7]\n",
     'bad.yaml:16: topology.links[4].endpoints: a host must connect to a router, not to another host'),
    ("self link before subnet", "[p1:eth2, pe2:eth2]", "[p1:eth2, p1:eth3]\n      subnet: 300.1.1.0/30",
     'bad.yaml:14: topology.links[2].endpoints: a link cannot connect p1 to itself'),
    ("host-host before cost", "    - endpoints: [pe2:eth1, ce2:eth0]\n", "    - endpoints: [pe2:eth1, ce2:eth0]\n    - endpoints: [ce1:eth7, ce2:eth7]\n      cost: 0\n",
     'bad.yaml:16: topology.links[4].endpoints: a host must connect to a router, not to another host'),
    ("bad subnet", "192.168.1.0/24", "192.168.1.0/33",
     "bad.yaml:11: topology.links[0].subnet: bad IPv4 subnet '192.168.1.0/33': '33' is not a valid netmask"),
    ("host bits", "192.168.1.0/24", "192.168.1.5/24",
     "bad.yaml:11: topology.links[0].subnet: bad IPv4 subnet '192.168.1.5/24': 192.168.1.5/24 has host bits set"),
    ("subnet int", "192.168.1.0/24", "7",
     "bad.yaml:11: topology.links[0].subnet: bad IPv4 subnet 7: Expected 4 octets in '7'"),
    ("host subnet /31", "192.168.1.0/24", "192.168.1.0/31",
     'bad.yaml:11: topology.links[0].subnet: 192.168.1.0/31 is too small for a link (at most /30)'),
    ("core subnet /32", "      cost: 5\n", "      cost: 5\n      subnet: 10.1.1.1/32\n",
     'bad.yaml:14: topology.links[1].subnet: 10.1.1.1/32 is too small for a link (at most /31)'),
    ("core subnet /31 ok + loop", "      cost: 5\n", "      cost: 5\n      subnet: 127.0.0.0/31\n",
     'bad.yaml:14: topology.links[1].subnet: 127.0.0.0/31 is not a usable unicast subnet'),
    ("multicast subnet", "192.168.1.0/24", "224.0.0.0/24",
     'bad.yaml:11: topology.links[0].subnet: 224.0.0.0/24 is not a usable unicast subnet'),
    ("zero subnet", "192.168.1.0/24", "0.0.0.0/24",
     'bad.yaml:11: topology.links[0].subnet: 0.0.0.0/24 is not a usable unicast subnet'),
    ("link-local subnet", "192.168.1.0/24", "169.254.1.0/24",
     'bad.yaml:11: topology.links[0].subnet: 169.254.1.0/24 is not a usable unicast subnet'),
    ("cost zero", "cost: 5", "cost: 0",
     'bad.yaml:13: topology.links[1].cost: 0 is out of range 1..65535'),
    ("cost string", "cost: 5", "cost: five",
     "bad.yaml:13: topology.links[1].cost: expected an integer, got a string 'five'"),
    ("cost bool", "cost: 5", "cost: true",
     'bad.yaml:13: topology.links[1].cost: expected an integer, got a boolean True'),
    ("cost float", "cost: 5", "cost: 5.5",
     'bad.yaml:13: topology.links[1].cost: expected an integer, got float 5.5'),
    ("cost high", "cost: 5", "cost: 65536",
     'bad.yaml:13: topology.links[1].cost: 65536 is out of range 1..65535'),
    ("mtu low", "cost: 5", "mtu: 100",
     'bad.yaml:13: topology.links[1].mtu: 100 is out of range 576..9000'),
    ("mtu high", "cost: 5", "mtu: 9001",
     'bad.yaml:13: topology.links[1].mtu: 9001 is out of range 576..9000'),
    ("subnet before cost", "      cost: 5\n", "      cost: 0\n      subnet: 1.2.3.5/30\n",
     "bad.yaml:14: topology.links[1].subnet: bad IPv4 subnet '1.2.3.5/30': 1.2.3.5/30 has host bits set"),
    ("cost before mtu", "      cost: 5\n", "      mtu: 1\n      cost: 0\n",
     'bad.yaml:14: topology.links[1].cost: 0 is out of range 1..65535'),
    ("first link first", "    - endpoints: [pe2:eth1, ce2:eth0]\n", "    - endpoints: [pe2:eth1, ce2:eth0]\n      cost: 0\n",
     'bad.yaml:16: topology.links[3].cost: 0 is out of range 1..65535'),
    # --- hosts, plan, graph
    ("host two links", "[pe2:eth1, ce2:eth0]", "[pe2:eth1, ce1:eth5]",
     'bad.yaml:4: topology.nodes.ce1: a host needs exactly one link, it has 2'),
    ("host no link", "    ce2: {kind: host}\n", "    ce2: {kind: host}\n    ce3: {kind: host}\n",
     'bad.yaml:9: topology.nodes.ce3: a host needs exactly one link, it has 0'),
    ("strongswan no link", "    ce2: {kind: host}\n", "    ce2: {kind: host}\n    sw: {kind: strongswan}\n",
     'bad.yaml:9: topology.nodes.sw: a host needs exactly one link, it has 0'),
    ("link error before host count", None, "name: t1\ntopology:\n  nodes: {ce1: {kind: host}, pe1: {}, ce3: {kind: host}}\n"
     "  links:\n    - endpoints: [ce1:eth0, pe1:eth1]\n      cost: 0\n",
     'bad.yaml:6: topology.links[0].cost: 0 is out of range 1..65535'),
    ("host count before overlap", "    ce2: {kind: host}\n", "    ce2: {kind: host}\n    ce3: {kind: host}\n    pz: {loopback: 192.168.1.1}\n",
     'bad.yaml:9: topology.nodes.ce3: a host needs exactly one link, it has 0'),
    ("overlap subnets", "      cost: 5\n", "      cost: 5\n      subnet: 192.168.1.0/30\n",
     'bad.yaml:14: topology.links[1].subnet: 192.168.1.0/30 overlaps 192.168.1.0/24 (topology.links[0].subnet)'),
    ("loopback in subnet", "10.255.0.1", "192.168.1.9",
     'bad.yaml:11: topology.links[0].subnet: 192.168.1.0/24 overlaps 192.168.1.9/32 (topology.nodes.pe1.loopback)'),
    ("core pool full", "192.168.1.0/24", "10.0.0.0/9",
     'bad.yaml:12: topology.links[1]: no free /30 left in 10.0.0.0/9 to assign'),
    ("loopback pool full", None, "name: t1\ntopology:\n  nodes: {pe1: {}, p1: {}}\n"
     "  links:\n    - endpoints: [pe1:e1, p1:e1]\n      subnet: 10.255.0.0/16\n",
     'bad.yaml:3: topology.nodes.pe1: no free /32 left in 10.255.0.0/16 to assign'),
    ("overlap before disconnected", "      cost: 5\n    - endpoints: [p1:eth2, pe2:eth2]\n", "      cost: 5\n      subnet: 192.168.1.0/30\n",
     'bad.yaml:14: topology.links[1].subnet: 192.168.1.0/30 overlaps 192.168.1.0/24 (topology.links[0].subnet)'),
    ("disconnected", "    - endpoints: [p1:eth2, pe2:eth2]\n", "",
     'bad.yaml:9: topology.links: routers are not all connected: p1, pe1 | pe2'),
    ("disconnected many", None, "name: t1\ntopology:\n  nodes: {a: {}, b: {}, c: {}, d: {}, e: {}, f: {}, g: {}, h: {}}\n"
     "  links:\n    - endpoints: [a:e1, b:e1]\n    - endpoints: [b:e2, c:e1]\n    - endpoints: [c:e2, d:e1]\n    - endpoints: [d:e2, e:e1]\n",
     'bad.yaml:4: topology.links: routers are not all connected: a, b, c, d ... | f | g'),
    ("disconnected before password", "p1: {}", "p1: {ldp: {passwords: {zz: secret}}}\n    p9: {}",
     'bad.yaml:10: topology.links: routers are not all connected: p1, pe1, pe2 | p9'),
    ("password unknown router", "p1: {}", "p1: {ldp: {passwords: {zz: secret}}}",
     "bad.yaml:6: topology.nodes.p1.ldp.passwords.zz: unknown router 'zz'"),
    ("password to a host", "p1: {}", "p1: {ldp: {passwords: {ce1: secret}}}",
     "bad.yaml:6: topology.nodes.p1.ldp.passwords.ce1: unknown router 'ce1'"),
    ("passwords sorted", "p1: {}", "p1: {ldp: {passwords: {zz: secret, aa: secret}}}",
     "bad.yaml:6: topology.nodes.p1.ldp.passwords.aa: unknown router 'aa'"),
    ("passwords file order of routers", "pe1: {loopback: 10.255.0.1}", "pe1: {loopback: 10.255.0.1, ldp: {passwords: {yy: secret}}}",
     "bad.yaml:5: topology.nodes.pe1.ldp.passwords.yy: unknown router 'yy'"),
    ("password from defaults", "topology:\n", "topology:\n  defaults: {ldp: {passwords: {qq: secret}}}\n",
     "bad.yaml:6: topology.nodes.pe1.ldp.passwords.qq: unknown router 'qq'"),
    # --- sections
    ("expect not list", "[pe2:eth1, ce2:eth0]\n", "[pe2:eth1, ce2:eth0]\nexpect: 3\n",
     'bad.yaml:16: expect: expected a list of assertions (- lsp: {...} or - ping: {...})'),
    ("password before section", None, "name: t1\ntopology:\n  nodes:\n    pe1: {ldp: {passwords: {zz: secret}}}\n    p1: {}\n"
     "  links:\n    - endpoints: [pe1:e1, p1:e1]\nexpect: 3\n",
     "bad.yaml:4: topology.nodes.pe1.ldp.passwords.zz: unknown router 'zz'"),

]


@pytest.mark.parametrize("old,new,message", [c[1:] for c in EXACT], ids=[c[0] for c in EXACT])
def test_exact_messages_and_which_wins(old, new, message):
    if old is None:
        text = new
    else:
        assert old in GOOD, old
        text = GOOD.replace(old, new, 1)
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "bad.yaml")
    # {TOP}: the top-level keys, optional sections included (entry points: lsr.sections)
    assert str(ei.value) == message.replace("{TOP}", ", ".join(("name", "topology",
                                                                 *section_names())))


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


def test_a_network_of_20000_routers_loads():
    """The limits are sized for real networks: 20,000 routers and 40,000 links (a ring plus
    chords, each with a cost) load; the old 100,000-value guard refused them."""
    n = 20_000
    nodes = "".join(f"    r{i}: {{}}\n" for i in range(n))
    links = "".join(f"    - endpoints: [r{i}:a{i % 7}, r{(i + 1) % n}:b{i % 7}]\n      cost: {1 + i % 9}\n"
                    for i in range(n))
    links += "".join(f"    - endpoints: [r{i}:c, r{(i + n // 2 + 1) % n}:d]\n" for i in range(n))
    topo = parse_topology(f"name: big\ntopology:\n  nodes:\n{nodes}  links:\n{links}", "big.yaml")
    assert len(topo.routers) == n and len(topo.links) == 2 * n
    # Past the 16,384 /30s of 10.0.0.0/16 the core pool goes on (10.1.0.0, 10.2.0.0, ...).
    assert topo.links[-1].subnet == IPv4Network("10.2.112.252/30")

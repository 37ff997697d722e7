"""Topologies from where people have them: containerlab files (containerlab's own examples
in tests/data/containerlab) and GML/GraphML graphs (Topology Zoo maps in tests/data/zoo),
loaded directly and through `lsr topo import`, round trip included. The lab that comes up
from a containerlab example is tests/test_lab_import.py."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.importers import containerlab, graph, sanitize
from lsr.core.importers.containerlab import linux_ifname, recognise
from lsr.core.topology import Topology, TopologyError, load_topology, parse_topology
from lsr.core.yamlpos import load_located
from tests.conftest import BUNDLED

DATA = Path(__file__).parent / "data"
CLAB = DATA / "containerlab"
ZOO = DATA / "zoo"
EXAMPLES = sorted(p for p in CLAB.glob("*.clab.yml") if p.name != "br01.clab.yml")

# (file, routers, hosts, links)
SHAPES = {
    "clos01.clab.yml": (3, 2, 4), "clos02.clab.yml": (10, 4, 16), "frr01.clab.yml": (3, 3, 6),
    "setup.clos02.clab.yml": (10, 4, 16), "sros4.clab.yml": (4, 0, 4),
    "srl02.clab.yml": (2, 0, 1), "srlceos01.clab.yml": (2, 0, 1),
    "srlcrpd01.clab.yml": (2, 0, 1), "srlfrr01.clab.yml": (2, 0, 1),
}


def _same(a: Topology, b: Topology) -> None:
    assert a.name == b.name
    assert a.nodes == b.nodes
    assert a.links == b.links


def _run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


# ------------------------------------------------------------ containerlab examples


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_containerlab_example_loads_and_validates(path):
    t = load_topology(path)
    assert (len(t.routers), len(t.hosts), len(t.links)) == SHAPES[path.name]
    assert any(n.startswith(containerlab.MAP) for n in t.notes)
    code, out, err = _run("topo", "validate", str(path))
    assert code == 0 and out.startswith(f"{path}: ok: "), (out, err)
    assert f"a containerlab file, loaded as {len(t.routers)} routers" in err


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_containerlab_import_round_trip(path, tmp_path):
    direct = load_topology(path)
    out = tmp_path / "x.yaml"
    code, stdout, err = _run("topo", "import", str(path), "-o", str(out))
    assert code == 0, err
    assert " ".join(stdout.split()) == f"wrote {out}: {direct.summary()}"
    imported = load_topology(out)
    assert not imported.notes  # ours now: nothing to convert
    _same(direct, imported)
    text = out.read_text()
    assert text.startswith(f"# Imported by `lsr topo import` from {path.name} (containerlab).")
    # standard output gives the same file
    code, stdout, _ = _run("topo", "import", str(path))
    assert code == 0 and stdout == text


def test_containerlab_mapping_in_the_notes():
    t = load_topology(CLAB / "frr01.clab.yml")
    notes = "\n".join(t.notes)
    assert "map: router1: linux, image quay.io/frrouting/frr:10.5.1 -> lsr" in notes
    assert "map: pc1: linux, image wbitt/network-multitool:3.22.2 -> host" in notes
    assert "node 'PC1' -> 'pc1'" in notes
    assert "ignored (containerlab only): binds (router1, router2, router3); exec (pc1, pc2, " \
           "pc3)" in notes
    t = load_topology(CLAB / "setup.clos02.clab.yml")
    assert "mgmt (top level)" in t.notes[-1] and "mgmt-ipv4 (leaf1" in t.notes[-1]
    t = load_topology(CLAB / "srlceos01.clab.yml")
    assert "interface srl:ethernet-1/1 -> srl:e1-1" in t.notes
    assert set(t.nodes["srl"].interfaces) == {"e1-1"}
    t = load_topology(CLAB / "sros4.clab.yml")  # kind and image from topology.defaults
    assert t.name == "conf1" and all(n.kind == "lsr" for n in t.nodes.values())


def test_bridge_node_is_one_located_line():
    with pytest.raises(TopologyError) as ei:
        load_topology(CLAB / "br01.clab.yml")
    assert ei.value.line == 18
    assert "topology.nodes.br-clab.kind: kind 'bridge' cannot be mapped" in str(ei.value)
    code, _, err = _run("lab", "up", str(CLAB / "br01.clab.yml"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------ the mapping, piece by piece

CLAB_FILE = """\
name: My_Lab.2024
mgmt: {network: custom}
prefix: ""
topology:
  defaults: {env: {A: b}, ldp: {hello_interval: 2}}
  kinds:
    linux: {image: alpine:3, binds: [x:y]}
    ceos: {image: ceos:4.30}
  groups:
    core: {kind: nokia_srlinux, image: ghcr.io/nokia/srlinux}
  nodes:
    R1: {group: core, loopback: 10.9.9.1, labels: {team: a}}
    r2: {kind: ceos, labels: [5000, 5999], startup-config: r2.cfg}
    r3: {kind: linux, image: "quay.io/frrouting/frr:9"}
    client: {kind: linux}
    dual: {kind: linux}
    lonely: {kind: linux}
  links:
    - endpoints: ["R1:ethernet-1/1", "r2:Ethernet1/1"]
      mtu: 9500
      vars: {x: 1}
    - type: veth
      endpoints: [{node: r2, interface: eth2}, {node: r3, interface: eth1}]
      delay: 5ms
    - endpoints: ["client:eth1", "r3:eth2"]
    - endpoints: ["dual:eth1", "r3:eth3"]
    - endpoints: ["dual:eth2", "R1:ethernet-1/2"]
    - endpoints: ["host:veth-r3", "r3:eth9"]
    - type: macvlan
      endpoint: {node: r3, interface: eth8}
      host-interface: enp0s3
"""


def test_containerlab_mapping_rules():
    t = parse_topology(CLAB_FILE, "x.clab.yml")
    assert t.name == "my-lab-2024"
    kinds = {n: x.kind for n, x in t.nodes.items()}
    assert kinds == {"r1": "lsr", "r2": "lsr", "r3": "lsr", "client": "host", "dual": "lsr"}
    # lonely (no link) left out
    r1 = t.nodes["r1"]
    assert str(r1.loopback) == "10.9.9.1" and r1.ldp.hello_interval == 2  # ours kept
    assert t.nodes["r2"].labels == (5000, 5999)  # our [first, last], not containerlab's map
    assert set(r1.interfaces) == {"e1-1", "e1-2"}
    assert set(t.nodes["r2"].interfaces) == {"Ethernet1-1", "eth2"}
    assert t.links[0].mtu == 9000 and t.links[1].impair.delay == 0.005
    assert len(t.links) == 5  # host: and macvlan links left out
    notes = "\n".join(t.notes)
    for fragment in ("lab name 'My_Lab.2024' -> 'my-lab-2024'", "node 'R1' -> 'r1'",
                     "interface r2:Ethernet1/1 -> r2:Ethernet1-1", "mtu 9500 -> 9000",
                     "endpoint host:veth-r3 (outside the lab) left out",
                     "type 'macvlan' left out", "lonely (linux, image alpine:3): a host "
                     "without links, left out", "dual (linux, image alpine:3): a router, not "
                     "a host (2 links", "mgmt (top level)", "prefix (top level)",
                     "env (topology.defaults)", "binds (kinds.linux)", "labels (r1)",
                     "startup-config (r2)", "vars (link 0)"):
        assert fragment in notes, fragment


def test_two_linked_linux_nodes_become_host_and_router():
    t = parse_topology("name: pair\ntopology:\n  nodes:\n    c1: {kind: linux}\n"
                       "    c2: {kind: linux}\n  links:\n    - endpoints: [c1:eth1, c2:eth1]\n")
    assert (t.nodes["c1"].kind, t.nodes["c2"].kind) == ("host", "lsr")
    assert "c2 (linux): a router, not a host (linked to host c1" in "\n".join(t.notes)


def test_containerlab_errors_point_into_the_file():
    bad = CLAB_FILE.replace('"client:eth1"', '"cleint:eth1"')
    with pytest.raises(TopologyError) as ei:
        parse_topology(bad, "x.clab.yml")
    assert "unknown node 'cleint'" in str(ei.value) and ei.value.line == 25, str(ei.value)
    bad = CLAB_FILE.replace("group: core", "group: edge")
    with pytest.raises(TopologyError) as ei:
        parse_topology(bad, "x.clab.yml")
    assert str(ei.value) == "x.clab.yml:12: topology.nodes.R1.group: unknown group 'edge'"
    bad = CLAB_FILE.replace("loopback: 10.9.9.1", "loopback: 10.9.9.300")
    with pytest.raises(TopologyError) as ei:
        parse_topology(bad, "x.clab.yml")
    assert ei.value.line == 12 and "topology.nodes.r1.loopback: bad IPv4" in str(ei.value)


def test_our_files_are_never_taken_for_containerlab():
    for p in BUNDLED:
        assert not recognise(load_located(p.read_text()).data), p
    # a typo in one of ours stays an error of ours
    for node in ("p1: {kind: switch}", "p1: {colour: red}", "P1: {}"):
        text = f"name: t\ntopology:\n  nodes:\n    {node}\n"
        assert not recognise(load_located(text).data)


@pytest.mark.parametrize("name,linux", [
    ("eth1", "eth1"), ("e1-1", "e1-1"), ("Ethernet1", "Ethernet1"),
    ("ethernet-1/1", "e1-1"), ("ethernet-1/3/2", "e1-3-2"), ("Ethernet1/1", "Ethernet1-1"),
    ("GigabitEthernet0/0/0/1", "gi0-0-0-1"), ("ge-0/0/0", "ge-0-0-0"), ("lo", "if-lo"),
    ("xe 1", "xe-1"), ("TenGigabitEthernet1/0/48", "te1-0-48"),
])
def test_linux_interface_names(name, linux):
    assert linux_ifname(name) == linux
    assert len(linux) <= 15


def test_sanitize():
    assert sanitize("New York") == "new-york"
    assert sanitize("1st street") == "n-1st-street"
    assert sanitize("Washington DC Metro Area") == "washington-dc-m"


# ------------------------------------------------------------ graphs


def test_topology_zoo_gml_loads_directly():
    t = load_topology(ZOO / "Abilene.gml")
    assert t.name == "abilene"
    assert (len(t.routers), len(t.hosts), len(t.links)) == (11, 2, 16)
    assert "new-york" in t.nodes and "washington-dc" in t.nodes
    hosts = sorted(h.name for h in t.hosts)
    assert hosts == ["ce-new-york", "ce-seattle"]  # the diameter's ends
    code, out, err = _run("topo", "validate", str(ZOO / "Abilene.gml"))
    assert code == 0 and "abilene: 11 routers, 2 hosts, 16 links" in " ".join(out.split())
    assert "lsr: note: hosts on new-york, seattle" in err


def test_topology_zoo_converges_in_the_simulator():
    from lsr.sim import simulate

    text, notes = graph.to_yaml(ZOO / "Geant2012.gml", bandwidth_attr="LinkSpeedRaw", hosts=3)
    t = parse_topology(text, "geant")
    assert len(t.routers) == 40 and len(t.hosts) == 3
    costs = {lk.cost for lk in t.links}
    assert {10, 40, 100, 645} <= costs  # 10G, 2.5G, 1G, 155M against 100 Gbit/s
    sim, res = simulate(t)
    assert res.converged
    loopbacks = {f"{r.loopback}/32" for r in t.routers}
    for r, j in sim.lfib_json()["routers"].items():
        fecs = {e["fec"] for e in j["ftn"]}
        assert loopbacks - {f"{t.nodes[r].loopback}/32"} <= fecs, r


def test_gml_import_options(tmp_path):
    out = tmp_path / "att.yaml"
    code, _, err = _run("topo", "import", str(ZOO / "AttMpls.gml"), "--hosts", "4",
                        "--name", "att", "-o", str(out))
    assert code == 0, err
    assert "an edge appears twice: parallel links" in err
    t = load_topology(out)
    assert t.name == "att" and len(t.hosts) == 4 and len(t.links) == 57 + 4
    code, stdout, _ = _run("topo", "import", str(ZOO / "Abilene.gml"), "--hosts", "leaves")
    assert code == 0 and "no leaf router" in stdout  # Abilene has none: a note in the header
    code, stdout, _ = _run("topo", "import", str(ZOO / "Geant2012.gml"), "--hosts", "0",
                           "--cost-attr", "LinkSpeed")  # "10", "2.5", "155": the value as cost
    assert code == 0 and "edges have no usable" not in stdout
    assert "kind: host" not in stdout
    assert "cost: 155" in stdout and "cost: 3" in stdout
    code, stdout, _ = _run("topo", "import", str(ZOO / "Abilene.gml"), "--cost-attr", "Nope")
    assert code == 0 and "14 of 14 edges have no usable 'Nope': cost 10" in stdout


def test_graphml_directed_and_in_pieces(tmp_path):
    g = nx.DiGraph()
    g.add_edge("a", "b")
    g.add_edge("b", "a")
    g.add_edge("b", "c", weight=7)
    g.add_edge("x", "y")  # a second piece
    g.add_edge("c", "c")  # a self-loop
    p = tmp_path / "net.graphml"
    nx.write_graphml(g, p)
    text, notes = graph.to_yaml(p, cost_attr="weight", hosts=0)
    t = parse_topology(text)
    assert sorted(t.nodes) == ["a", "b", "c"] and [lk.cost for lk in t.links] == [10, 7]
    assert "directed graph: edges taken as undirected links" in notes
    assert any("in 2 pieces" in n and "left out 2: x, y" in n for n in notes)
    assert "1 self-loop edge(s) left out" in notes
    assert load_topology(p).name == "net"


@pytest.mark.parametrize("content,msg", [
    ("graph [ node [ id 0 ] edge [ source 0 target 9 ] ]", "not a valid GML file"),
    ("this is not gml", "not a valid GML file"),
    ("graph [ ]", "the graph has no nodes"),
])
def test_bad_graph_files_are_one_line(tmp_path, content, msg):
    p = tmp_path / "bad.gml"
    p.write_text(content)
    code, _, err = _run("topo", "validate", str(p))
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    code, _, err = _run("topo", "import", str(p))
    assert code == 2 and msg in err, err


def test_import_refuses_what_is_not_an_import(tmp_path):
    code, _, err = _run("topo", "import", str(BUNDLED[0]))
    assert code != 0 and "is an lsr topology already" in err
    code, _, err = _run("topo", "import", str(CLAB / "srl02.clab.yml"), "--hosts", "2")
    assert code != 0 and "apply to GML/GraphML graphs only" in err
    code, _, err = _run("topo", "import", str(ZOO / "Abilene.gml"), "--hosts", "99")
    assert code == 2 and "99 hosts asked, the graph has 11 routers" in err
    code, _, err = _run("topo", "import", str(ZOO / "Abilene.gml"), "--hosts", "many")
    assert code != 0 and "a number of hosts, or 'leaves'" in err
    code, _, err = _run("topo", "import", str(tmp_path / "none.gml"))
    assert code == 2 and "no such file" in err

"""Placement of a lab over several machines (lsr.lab.placement): the `placement:` section,
the automatic partition (balanced, few links cut: the optimum on every bundled topology),
the crossing links and their VNIs; the coordinator's plan and the VXLAN device command
(no root, no Ray)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import tomllib

import pytest

from lsr.core.topology import (
    TopologyError,
    load_topology,
    parse_topology,
    register_section,
    section_names,
)
from lsr.errors import LsrError
from lsr.lab import placement as plc
from lsr.lab.vxlan import End, stitch_commands, transit_ns, veth_command, vxlan_command
from tests.conftest import BUNDLED, ROOT, TOPOLOGIES

if "placement" not in section_names():  # an install from before the entry point was added
    register_section("placement", plc.validate)

DIAMOND = (TOPOLOGIES / "diamond.yaml").read_text()


def _with(section: str) -> str:
    return DIAMOND.split("expect:")[0] + section


def test_the_section_is_an_entry_point() -> None:
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert eps["lsr.sections"]["placement"] == "lsr.lab.placement:validate"


def test_section_forms() -> None:
    topo = parse_topology(_with("""
placement:
  vxlan_port: 8472
  vni_base: 7000
  machines:
    m1: [ce1, pe1]
    m2: {nodes: [pe2], underlay: 198.18.0.2}
    m3:
"""))
    sec = plc.section(topo)
    assert sec.vxlan_port == 8472 and sec.vni_base == 7000
    assert sec.machines["m1"].nodes == ("ce1", "pe1") and sec.machines["m1"].underlay is None
    assert str(sec.machines["m2"].underlay) == "198.18.0.2"
    assert sec.machines["m3"].nodes == ()
    assert sec.pinned() == {"ce1": "m1", "pe1": "m1", "pe2": "m2"}


@pytest.mark.parametrize("section, line, message", [
    ("placement: [m1]", 28, "expected a mapping with machines"),
    ("placement:\n  machines: {m1: [pe1]}\n  vlan: 3", 30, "unknown key 'vlan'"),
    ("placement:\n  machines: {}", 29, "expected a mapping of machine name"),
    ("placement:\n  machines: {M1: [pe1]}", 29, "machine name 'M1'"),
    ("placement:\n  machines: {m1: [pe9]}", 29, "unknown node 'pe9'"),
    ("placement:\n  machines: {m1: [pe1], m2: [pe1]}", 29, "pe1 is already placed on m1"),
    ("placement:\n  machines: {m1: {nodes: [pe1], rack: 3}}", 29, "unknown key 'rack'"),
    ("placement:\n  machines: {m1: {underlay: 300.1.1.1}}", 29, "not an IPv4 address"),
    ("placement:\n  machines: {m1: 7}", 29, "expected a list of nodes"),
    ("placement:\n  machines: {m1: []}\n  vxlan_port: 0", 30, "from 1 to 65535"),
    ("placement:\n  machines: {m1: []}\n  vni_base: 16777215", 30, "from 1 to 16777210"),
])
def test_section_errors_are_one_located_line(section: str, line: int, message: str) -> None:
    with pytest.raises(TopologyError) as e:
        parse_topology(_with(section), "d.yaml")
    assert message in str(e.value) and "\n" not in str(e.value)
    assert e.value.line == line, str(e.value)


def _optimum(topo, k: int = 2) -> int:
    """The fewest cut links of any partition with the same part sizes (brute force)."""
    rs = sorted(r.name for r in topo.routers)
    best = len(topo.links)
    for part in itertools.combinations(rs, len(rs) // k):
        side = set(part)
        where = {r: "a" if r in side else "b" for r in rs}
        for h in topo.hosts:
            where[h.name] = where[next(iter(h.interfaces.values())).peer_node]
        best = min(best, plc.cut(topo, where))
    return best


@pytest.mark.parametrize("path", [p for p in BUNDLED if p.stem != "backbone"],
                         ids=lambda p: p.stem)
def test_partition_cuts_as_few_links_as_possible(path) -> None:
    topo = load_topology(path)
    where = plc.partition(topo, ["m1", "m2"])
    assert plc.cut(topo, where) == _optimum(topo)


def test_backbone_partitions_well() -> None:
    topo = load_topology(TOPOLOGIES / "backbone.yaml")
    where = plc.partition(topo, ["m1", "m2"])
    assert plc.cut(topo, where) == 3  # the optimum of 184,756 balanced halves
    sizes = [sum(1 for r in topo.routers if where[r.name] == m) for m in ("m1", "m2", "m3")]
    assert sizes == [10, 10, 0]
    three = plc.partition(topo, ["m1", "m2", "m3"])
    assert sorted(sum(1 for r in topo.routers if three[r.name] == m)
                  for m in ("m1", "m2", "m3")) == [6, 7, 7]
    assert plc.cut(topo, three) <= 7


def test_partition_keeps_pins_balance_and_hosts_with_routers() -> None:
    topo = load_topology(TOPOLOGIES / "ring.yaml")
    pinned = {"ce1": "m2", "r1": "m2"}
    where = plc.partition(topo, ["m1", "m2"], pinned)
    assert where["ce1"] == where["r1"] == "m2"
    routers = [r.name for r in topo.routers]
    assert sorted(sum(1 for r in routers if where[r] == m) for m in ("m1", "m2")) == [3, 3]
    for h in topo.hosts:  # with their router
        assert where[h.name] == where[next(iter(h.interfaces.values())).peer_node]
    assert where == plc.partition(topo, ["m1", "m2"], pinned)  # deterministic
    # a host pinned away from its router: its link crosses
    away = plc.partition(topo, ["m1", "m2"], {"ce1": "m1", "r1": "m2"})
    assert away["ce1"] == "m1" and away["r1"] == "m2"


def test_partition_edge_cases() -> None:
    topo = load_topology(TOPOLOGIES / "line3.yaml")
    assert set(plc.partition(topo, ["solo"]).values()) == {"solo"}
    many = plc.partition(topo, ["a", "b", "c", "d"])  # more machines than routers
    assert sorted(many[r.name] for r in topo.routers) == ["a", "b", "c"]
    # pins beyond a machine's share: the others get fewer
    pinned = plc.partition(topo, ["a", "b"], {"pe1": "a", "p1": "a", "pe2": "a"})
    assert {pinned[r.name] for r in topo.routers} == {"a"}
    with pytest.raises(LsrError, match="pinned to 'z'"):
        plc.partition(topo, ["a", "b"], {"pe1": "z"})
    with pytest.raises(LsrError, match="unknown node 'x9'"):
        plc.partition(topo, ["a", "b"], {"x9": "a"})
    with pytest.raises(LsrError, match="no machines"):
        plc.partition(topo, [])


def test_crossings_and_vnis() -> None:
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    where = {"ce1": "m1", "pe1": "m1", "p1": "m1", "p2": "m2", "pe2": "m2", "ce2": "m2"}
    cs = plc.crossings(topo, where, 5000)
    assert [(c.link, c.vni, c.a, c.b) for c in cs] == [
        (2, 5002, ("pe1", "eth3", "m1"), ("p2", "eth1", "m2")),
        (3, 5003, ("p1", "eth2", "m1"), ("pe2", "eth2", "m2")),
    ]
    base = plc.vni_base_for("diamond", len(topo.links))
    assert base == plc.vni_base_for("diamond", 6) and base % 4096 == 0
    assert 4096 <= base and base + 4095 <= plc.MAX_VNI
    assert plc.vni_base_for("other", 6) != base
    big = plc.vni_base_for("x", 10_000)  # a span that holds every link
    assert big % 12288 == 0 and big + 10_000 <= plc.MAX_VNI


def test_vxlan_device_commands() -> None:
    end = End("pe1", "eth3", "02:00:00:00:01:03", 1516, 5002, "198.18.0.1", "198.18.0.2", 4789,
              "m2")
    assert transit_ns("d1", "m1") == "lsr-d1.0vx-m1"
    assert vxlan_command("d1", "m1", end) == (
        "link add name vx5002 netns lsr-d1.0vx-m1 mtu 1516 type vxlan id 5002 "
        "local 198.18.0.1 remote 198.18.0.2 dstport 4789 nolearning")
    assert veth_command("d1", "m1", end) == (
        "link add name eth3 netns lsr-d1.pe1 address 02:00:00:00:01:03 mtu 1516 type veth "
        "peer name t5002 netns lsr-d1.0vx-m1 mtu 1516")
    assert stitch_commands(end) == [
        "qdisc add dev t5002 ingress",
        "filter add dev t5002 ingress protocol all prio 1 u32 match u8 0 0 action mirred "
        "egress redirect dev vx5002",
        "qdisc add dev vx5002 ingress",
        "filter add dev vx5002 ingress protocol all prio 1 u32 match u8 0 0 action mirred "
        "egress redirect dev t5002"]


def test_plan_and_options() -> None:
    from lsr.lab import multihost

    topo = parse_topology(_with("placement:\n  machines: {m1: [pe1], m2: [pe2]}\n"))
    cluster = {"m1": {"ip": "10.0.0.1"}, "m2": {"ip": "10.0.0.2"}, "m3": {"ip": "10.0.0.3"}}
    used, where = multihost.plan(topo, cluster, None, {"p1": "m2"})
    assert used == ["m1", "m2"] and where["pe1"] == "m1" and where["p1"] == where["pe2"] == "m2"
    used, where = multihost.plan(load_topology(TOPOLOGIES / "line3.yaml"), cluster, None, {})
    assert used == ["m1", "m2", "m3"]  # no section: every machine of the cluster
    with pytest.raises(LsrError, match="machine m9: no alive Ray node has the resource "
                                       "lsr_machine_m9"):
        multihost.plan(topo, cluster, ["m1", "m9"], {})
    with pytest.raises(LsrError, match="no Ray node of the cluster is a lab machine"):
        multihost.plan(load_topology(TOPOLOGIES / "line3.yaml"), {}, None, {})
    assert multihost.parse_place(["pe1,p1=m2", "ce1=m1"]) == {"pe1": "m2", "p1": "m2",
                                                               "ce1": "m1"}
    with pytest.raises(LsrError, match="expected NODE=MACHINE"):
        multihost.parse_place(["pe1"])
    with pytest.raises(LsrError, match="runs lsr routers and hosts only"):
        multihost.check_supported(load_topology(ROOT / "tests" / "data" / "frr-line.yaml"))


def test_ray_is_imported_only_to_use_a_cluster() -> None:
    code = ("import sys, lsr.lab, lsr.lab.remote, lsr.lab.multihost, lsr.lab.agent, lsr.cli; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60, cwd=ROOT).stdout
    assert out.strip() == "False"


def test_the_simulator_ignores_placement() -> None:
    from lsr.sim import simulate

    topo = parse_topology(_with("placement:\n  machines: {m1: [pe1]}\n"))
    plain = parse_topology(DIAMOND)
    assert simulate(topo)[0].lfib_json() == simulate(plain)[0].lfib_json()

"""A lab over two machines (lsr.lab.multihost): two Ray nodes on this machine, each
"machine" a network namespace of its own joined to the other by a veth, the underlay
(tests/multihost_cluster.py). The diamond is split so that both of its ECMP branches
cross machines as VXLAN, and the lab passes what tests/test_lab_bundled.py asks of a
one-machine lab (LFIBs as the simulator's, every host pair pings, TCP across); the
underlay carries MPLS in VXLAN that tshark decodes cleanly; a crossing link taken down
and up (`lsr lab link`, and `ip link` in one node's namespace: the other machine's end
loses its carrier as a veth's would) leaves tables as the simulator's; the CLI brings a
lab up over Ray, and takes it down on both machines after one agent was killed."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import lsr.lab as lab
from lsr.core.topology import load_topology, parse_topology
from lsr.lab import multihost, remote
from lsr.lab.state import ns_name
from lsr.lab.vxlan import transit_ns
from lsr.sim import converge, simulate
from tests.conftest import BUNDLED, TOPOLOGIES, needs_root
from tests.multihost_cluster import cluster, wait_nodes
from tests.test_lab_bundled import bundled_checks
from tests.wait import Capture, wait_for, wait_tcp_listening

pytestmark = [
    pytest.mark.netns, needs_root,
    pytest.mark.skipif(shutil.which("ray") is None or importlib.util.find_spec("ray") is None,
                       reason="needs Ray (pip install 'lsr[ray]')"),
]
PREFIX = os.environ.get("LSR_TEST_LAB_PREFIX", "vx")
SPLIT = {"ce1": "m1", "pe1": "m1", "p1": "m1", "p2": "m2", "pe2": "m2", "ce2": "m2"}


@pytest.fixture(scope="module")
def cl(ray_cluster_turn):
    # A short scratch dir of our own: Ray's AF_UNIX socket paths under it must stay within
    # 107 bytes, which pytest's per-worker temp paths (popen-gwN/...) exceed.
    tmp = Path(tempfile.mkdtemp(prefix="lsrmh", dir="/tmp"))
    try:
        with cluster(tmp, f"{PREFIX}{os.getpid()}") as c:
            wait_nodes(remote.connect(c.address))
            yield c
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _left(name: str) -> list[str]:
    return [n for n in os.listdir("/run/netns") if n.startswith(f"lsr-{name}.")]


@pytest.fixture(scope="module")
def diamond(cl):
    name = f"{PREFIX}{os.getpid() % 1000}dm"
    try:
        yield multihost.up(load_topology(TOPOLOGIES / "diamond.yaml"), cl.address, name=name,
                           place=SPLIT, timeout=60)
    finally:
        lab.down(name)
    assert not _left(name)
    for m in ("m1", "m2"):
        assert not (cl.tmp / f"run-{m}" / name).exists()


def test_bundled_checks_pass_over_two_machines(cl, diamond) -> None:
    bundled_checks(diamond)
    name, topo = diamond.name, diamond.topo
    st = lab.status(name)
    assert {r: i["machine"] for r, i in st["routers"].items()} == \
        {r.name: SPLIT[r.name] for r in topo.routers}
    for r, info in st["routers"].items():
        assert info["alive"] and set(info["sessions"].values()) == {"OPERATIONAL"}, (r, info)
    assert st["machines"]["m2"]["nodes"] == ["p2", "pe2", "ce2"]
    assert st["machines"]["m1"]["underlay"] == cl.underlay["m1"]
    # each machine's part has its registry on that machine's disk
    for m in ("m1", "m2"):
        part = json.loads((cl.tmp / f"run-{m}" / name / f"part-{m}" / "state.json").read_text())
        assert part["nodes"] == [n for n in topo.nodes if SPLIT[n] == m]
        assert transit_ns(name, m) in part["namespaces"]
    # pe1-p2 (link 2): a veth in pe1's namespace, stitched to VXLAN in m1's transit one
    base = lab.LabState(name).read()["multihost"]["vni_base"]
    vx = subprocess.run(["ip", "-n", transit_ns(name, "m1"), "-d", "link", "show",
                         f"vx{base + 2}"], capture_output=True, text=True, check=True).stdout
    assert f"vxlan id {base + 2} remote {cl.underlay['m2']} local {cl.underlay['m1']}" in vx
    assert "dstport 4789" in vx
    eth3 = subprocess.run(["ip", "-n", ns_name(name, "pe1"), "-d", "link", "show", "eth3"],
                          capture_output=True, text=True, check=True).stdout
    assert "veth" in eth3 and "mtu 1516" in eth3
    # traceroute across both machines: the same four hops as on one
    r = diamond.run("ce1", ["traceroute", "-n", "-w", "2", "-q", "1", "192.168.2.2"])
    hops = [line.split()[1] for line in r.stdout.splitlines()[1:]]
    assert len(hops) == 4 and hops[0] == "192.168.1.2" and hops[-1] == "192.168.2.2", r.stdout
    # a router on the other machine answers as one here does
    nb = {e["neighbor"]: e for e in lab.ldp(name, "p2", "neighbors")}
    assert {"pe1", "pe2"} <= set(nb)


def _tshark(pcap: Path) -> list[tuple[list[str], list[str]]]:
    """(protocols, problems) of each frame as tshark decodes it: its expert infos above
    Chat (a Chat is a remark, such as an LDP Hello without RFC 6720's GTSM flag, which a
    capture holds whenever a Hello falls in it)."""
    out = subprocess.run(["tshark", "-r", str(pcap), "-T", "pdml"], capture_output=True,
                         timeout=120, check=True).stdout
    frames = []
    for pkt in ET.fromstring(out).iter("packet"):
        protos = [p.get("name", "") for p in pkt.iter("proto")]
        problems = [f.get("showname", "") for f in pkt.iter("field")
                    if f.get("name", "") == "_ws.expert" and f.get("showname")
                    and not f.get("showname", "").startswith("Expert Info (Chat/")]
        problems += [p for p in protos if p == "_ws.malformed"]
        frames.append((protos, problems))
    return frames


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_underlay_carries_mpls_in_vxlan(cl, diamond, tmp_path) -> None:
    pcap = tmp_path / "underlay.pcap"
    cap = Capture(cl.machine_ns["m1"], cl.underlay_if, pcap, "udp", "port", "4789")
    try:
        r = diamond.run("ce1", ["ping", "-c", "4", "-i", "0.2", "-W", "2", "192.168.2.2"])
        assert r.returncode == 0, r.stdout
        cap.wait(lambda f: len(f) >= 8, 10, "the echoes both ways on the underlay")
    finally:
        cap.stop()
    frames = _tshark(pcap)
    echoes = [p for p, _ in frames if {"vxlan", "mpls", "icmp"} <= set(p)]
    assert len(echoes) >= 4, [p for p, _ in frames]
    assert echoes[0][:6] == ["geninfo", "frame", "eth", "ip", "udp", "vxlan"]
    assert all(not problems for _, problems in frames), [x for x in frames if x[1]]


def _shapes(name: str, topo, down: list[str]) -> None:
    """Every router's LFIB has the simulator's structure with `down` links down (labels
    may differ after a flap)."""
    sim = converge(topo, down).sim if down else simulate(topo)[0]
    names = {str(n.lsr_id): n.name for n in topo.routers}
    want = sim.lfib_json()["routers"]
    for r, got in lab.lfib(name)["routers"].items():
        assert lab._shape(got, names) == lab._shape(want[r], names), (r, down)


def _carrier(name: str, node: str, ifname: str) -> bool:
    out = subprocess.run(["ip", "-n", ns_name(name, node), "link", "show", ifname],
                         capture_output=True, text=True, check=True).stdout
    return "LOWER_UP" in out


@pytest.mark.parametrize("how", ["lab link", "ip link"])
def test_crossing_link_down_and_up_as_the_simulator(cl, diamond, how) -> None:
    name, topo = diamond.name, diamond.topo
    # pe1:eth3 (m1) - p2:eth1 (m2)
    if how == "lab link":
        lab.link(name, "pe1", "p2", up=False)
    else:  # one end only, in its namespace: the other machine's end loses its carrier
        r = diamond.run("pe1", ["ip", "link", "set", "eth3", "down"])
        assert r.returncode == 0, r.stderr
        wait_for(lambda: not _carrier(name, "p2", "eth1"), 5, "p2:eth1 without carrier")
    lab.wait_converged(name, timeout=30)
    assert lab.status(name)["down_link_names"] == ["pe1-p2"]
    _shapes(name, topo, ["pe1-p2"])
    assert diamond.run("ce1", ["ping", "-c", "2", "-W", "2", "192.168.2.2"]).returncode == 0
    if how == "lab link":
        lab.link(name, "pe1", "p2", up=True)
    else:
        assert diamond.run("pe1", ["ip", "link", "set", "eth3", "up"]).returncode == 0
        wait_for(lambda: _carrier(name, "p2", "eth1"), 5, "p2:eth1 with carrier again")
    lab.wait_converged(name, timeout=30)
    assert lab.status(name)["down_links"] == []
    _shapes(name, topo, [])


def _lsr(cl, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["lsr", *args], capture_output=True, text=True, timeout=timeout,
                          env=cl.env)


def test_cli_up_and_down_on_both_machines_after_an_agent_crash(cl) -> None:
    name = f"{PREFIX}{os.getpid() % 1000}cl"
    topo = load_topology(TOPOLOGIES / "line3.yaml")
    try:
        r = _lsr(cl, "lab", "up", str(TOPOLOGIES / "line3.yaml"), "--name", name,
                 "--machines", "m1,m2", "--ray", cl.address)
        assert r.returncode == 0, r.stderr
        assert "m1 (" in r.stdout and "m2 (" in r.stdout, r.stdout
        st = json.loads(_lsr(cl, "lab", "status", name, "--json").stdout)
        where = {r: i["machine"] for r, i in st["routers"].items()}
        assert set(where.values()) == {"m1", "m2"}  # partitioned: both machines used
        lfib = json.loads(_lsr(cl, "lab", "lfib", name, "--json").stdout)
        assert lfib == simulate(topo)[0].lfib_json()
        table = _lsr(cl, "lab", "status", name)
        assert "machine" in table.stdout and "m2 (" in table.stdout, table.stdout
        r = _lsr(cl, "lab", "capture", name, "p1:eth1", "-c", "1")
        assert r.returncode == 2 and "spans machines (m1, m2): 'lsr lab capture' works on a " \
            "lab of one machine only" in r.stderr, r.stderr
        r = _lsr(cl, "lab", "exec", name, "pe2", "ip", "-br", "addr", "show", "dev", "lo")
        assert r.returncode == 0 and "10.255.0.3/32" in r.stdout, r.stderr
        # what reads the routers works across machines as on one
        r = _lsr(cl, "lab", "validate", name)
        assert r.returncode == 0 and " 0 failed" in r.stdout, r.stdout + r.stderr
        r = _lsr(cl, "lsp", "traceroute", name, "pe1", "10.255.0.3/32", "--json")
        assert r.returncode == 0, r.stderr
        hops = json.loads(r.stdout)["hops"]
        assert [h["return_code"] for h in hops] == [8, 3], hops  # label switched, egress
        ospf = json.loads(_lsr(cl, "lab", "ospf", name, "pe2", "neighbors", "--json").stdout)
        assert "Full" in json.dumps(ospf), ospf
        r = _lsr(cl, "lab", "link", name, "p1", "pe2", "set", "delay", "5ms")
        assert r.returncode == 0, r.stderr
        rtt = lab.run_in(name, "ce1", ["ping", "-c", "2", "-i", "0.2", "192.168.2.2"]).stdout
        assert min(float(x) for x in re.findall(r"time=([\d.]+)", rtt)) >= 5, rtt
        assert _lsr(cl, "lab", "link", name, "p1", "pe2", "clear").returncode == 0
        # the agent of m2 dies (kill -9): a new one serves, and tears down, its part
        ray = remote.connect(cl.address)
        pid = remote.result(ray, "m2", remote.agent(ray, name, "m2").info.remote(), 60)["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "the agent to be gone")
        # Ray starts it again; its routers were never its children: they run on
        st = json.loads(_lsr(cl, "lab", "status", name, "--json").stdout)
        assert all(i["alive"] for i in st["routers"].values()), st["routers"]
        # `lab down` on m2 itself (its /run/lsr has no record of the lab, only its part):
        # its part goes, without Ray; the coordinator's `lab down` takes the rest
        m2 = st["machines"]["m2"]["nodes"]
        r = subprocess.run(["lsr", "lab", "down", name], capture_output=True, text=True,
                           timeout=60, env={**cl.env, "LSR_RUN_DIR": str(cl.tmp / "run-m2")})
        assert r.returncode == 0 and f"lab {name} down" in r.stdout, r.stderr
        assert not (cl.tmp / "run-m2" / name).exists()
        assert sorted(_left(name)) == sorted([f"lsr-{name}.{n}" for n in topo.nodes
                                              if n not in m2] + [transit_ns(name, "m1")])
        r = _lsr(cl, "lab", "down", name)
        assert r.returncode == 0 and f"lab {name} down" in r.stdout, r.stderr
        assert not _left(name)
        for m in ("m1", "m2"):
            assert not (cl.tmp / f"run-{m}" / name).exists()
        with pytest.raises(ValueError):  # the lab's agents end with it
            ray.get_actor(f"{name}@m1", namespace="lsr")
    finally:
        lab.down(name)


@pytest.mark.parametrize("path", [p for p in BUNDLED if p.stem not in ("diamond", "ipsec-roam")],
                         ids=lambda p: p.stem)
def test_bundled_topology_over_two_machines(cl, path) -> None:
    """Every bundled topology (but ipsec-roam: strongSwan nodes run on one machine only),
    partitioned automatically over the two machines."""
    topo = load_topology(path)
    name = f"{PREFIX}{os.getpid() % 1000}{path.stem[:4]}"
    try:
        L = multihost.up(topo, cl.address, name=name, machines=["m1", "m2"], timeout=90)
        assert {m for m in lab.LabState(name).read()["multihost"]["where"].values()} == \
            {"m1", "m2"}
        bundled_checks(L)
    finally:
        lab.down(name)
    assert not _left(name)


def _frag_creates(ns: str) -> int:
    """IPv4 fragments the namespace's kernel made (the VXLAN sockets live in it)."""
    lines = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    head, vals = [x.split() for x in lines if x.startswith("Ip:")][:2]
    return int(vals[head.index("FragCreates")])


def _tcp(L: lab.Lab, size: int = 300_000) -> None:
    recv = subprocess.Popen(["ip", "netns", "exec", ns_name(L.name, "ce2"), "sh", "-c",
                             "nc -l -p 5002 | wc -c"], stdout=subprocess.PIPE, text=True)
    try:
        wait_tcp_listening(ns_name(L.name, "ce2"), 5002, recv)
        L.run("ce1", ["sh", "-c", f"head -c {size} /dev/urandom | nc -N 192.168.2.2 5002"])
        assert recv.communicate(timeout=30)[0].strip() == str(size)
    finally:
        if recv.poll() is None:
            recv.kill()


def test_underlay_mtu_fragments_or_lowered_link_mtu(cl) -> None:
    """On a 1500-byte underlay, full frames (1516 + 50) are fragmented outside (`lab up`
    warns, and it works); with the crossing links' mtu lowered by the 66 bytes nothing is,
    and a DF packet too big for the crossing link gets our dataplane's Fragmentation
    Needed with the link MTU less the label (RFC 3032 §3), as on one machine."""
    for ns in cl.machine_ns.values():
        subprocess.run(["ip", "-n", ns, "link", "set", "u0", "mtu", "1500"], check=True)
    name = f"{PREFIX}{os.getpid() % 1000}mt"
    m1 = cl.machine_ns["m1"]
    try:
        text = (TOPOLOGIES / "diamond.yaml").read_text()
        L = multihost.up(parse_topology(text, "diamond"), cl.address, name=name, place=SPLIT)
        warnings = lab.LabState(name).read()["warnings"]
        assert any("MTU 1500 < 1566" in w for w in warnings), warnings
        before = _frag_creates(m1)
        _tcp(L)
        assert _frag_creates(m1) > before  # carried, in two pieces a frame
        lab.down(name)
        for link in ("[pe1:eth3, p2:eth1]", "[p1:eth2, pe2:eth2]"):
            text = text.replace(f"- endpoints: {link}\n",
                                f"- endpoints: {link}\n      mtu: 1434\n")
        L = multihost.up(parse_topology(text, "diamond-1434"), cl.address, name=name,
                         place=SPLIT)
        assert not lab.LabState(name).read().get("warnings")
        before = _frag_creates(m1)
        # 1438 bytes: too big for a crossing link, which the flow's ECMP branch crosses
        # labelled (pe1-p2: 1434 - 4) or after the penultimate hop popped (p1-pe2: 1434)
        r = L.run("ce1", ["ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1410", "192.168.2.2"])
        assert r.returncode != 0 and re.search(r"mtu = 14(30|34)\)", r.stdout), r.stdout
        r = L.run("ce1", ["ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1402", "192.168.2.2"])
        assert r.returncode == 0, r.stdout
        _tcp(L)
        assert _frag_creates(m1) == before
    finally:
        lab.down(name)
        for ns in cl.machine_ns.values():
            subprocess.run(["ip", "-n", ns, "link", "set", "u0", "mtu", "9000"], check=True)

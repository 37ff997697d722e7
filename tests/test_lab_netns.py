"""Real labs on network namespaces (root only): convergence, traffic, captures, failures."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TOPOLOGIES, is_root
from tests.wait import Capture, icmp_echo_in_mpls, wait_for, wait_tcp_listening

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab.state import lab_dir

UNIQ = os.getpid() % 10000


def _lab_name(kind: str) -> str:
    # LSR_TEST_LAB_PREFIX: labs of parallel runs on one machine never share a name
    return f"{os.environ.get('LSR_TEST_LAB_PREFIX', 't')}{kind}{UNIQ}"


def _pids(name: str) -> list[tuple[int, int]]:
    from lsr.lab.state import LabState

    return [(p["pid"], p["start"]) for p in LabState(name).read().get("pids", [])]


def _no_leftovers(name: str, pids: list[tuple[int, int]] = ()) -> None:
    from lsr.lab.state import pid_alive

    nss = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"lsr-{name}." not in nss
    assert not lab_dir(name).exists()
    assert not [p for p, st in pids if pid_alive(p, st)]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"lsr/{name}" not in ps and f"lsr-{name}." not in ps


@pytest.fixture(scope="module")
def line3():
    name = _lab_name("l")
    pids = []
    try:
        yield lab.up(load_topology(TOPOLOGIES / "line3.yaml"), name=name, timeout=30)
        pids = _pids(name)
    finally:
        lab.down(name)
    _no_leftovers(name, pids)


@pytest.fixture(scope="module")
def diamond():
    name = _lab_name("d")
    pids = []
    try:
        # the other way of starting routers: `ip netns exec python -m lsr.lab.node`
        yield lab.up(load_topology(TOPOLOGIES / "diamond.yaml"), name=name, timeout=30,
                     spawn="exec")
        pids = _pids(name)
    finally:
        lab.down(name)
    _no_leftovers(name, pids)


def test_line3_converged(line3):
    st = lab.status(line3.name)
    assert all(r["alive"] for r in st["routers"].values())
    assert st["routers"]["p1"]["sessions"] == {"10.255.0.1": "OPERATIONAL",
                                               "10.255.0.3": "OPERATIONAL"}
    assert line3.converge_seconds > 0  # how fast: benchmarks/bench_lab.py (up, failover)


def test_lfib_equals_simulation(line3):
    from lsr.sim import simulate

    sim, _ = simulate(line3.topo)
    # Labels included: allocation is deterministic, nothing here is chosen by the kernel.
    assert lab.lfib(line3.name) == sim.lfib_json()


def test_ping_across_core(line3):
    r = line3.run("ce1", ["ping", "-c", "5", "-i", "0.1", "-W", "1", "192.168.2.2"])
    assert r.returncode == 0, r.stdout
    assert " 0% packet loss" in r.stdout
    pe1 = lab.query(line3.name, "pe1", "counters")["dataplane"]
    assert pe1["ftn"]["192.168.2.0/24"]["packets"] >= 5


def test_tcp_transfer(line3, tmp_path: Path):
    data = os.urandom(1 << 20)
    src, dst = tmp_path / "tx", tmp_path / "rx"
    src.write_bytes(data)
    ns = f"lsr-{line3.name}.ce2"
    srv = subprocess.Popen(["ip", "netns", "exec", ns, "sh", "-c", f"nc -l -p 5001 > {dst}"])
    try:
        wait_tcp_listening(ns, 5001, srv)
        r = line3.run("ce1", ["sh", "-c", f"nc -q1 -w5 192.168.2.2 5001 < {src}"], timeout=30)
        assert r.returncode == 0, r.stderr
        srv.wait(timeout=10)
    finally:
        srv.kill()
        srv.wait()
    assert dst.read_bytes() == data


def test_traceroute_shows_core_with_labels(line3):
    r = line3.run("ce1", ["traceroute", "-n", "-e", "-w", "1", "-q", "1", "192.168.2.2"])
    assert r.returncode == 0, r.stderr
    hops = [ln.split()[1] for ln in r.stdout.splitlines()[1:]]
    assert hops == ["192.168.1.2", "10.0.0.2", "10.0.0.6", "192.168.2.2"]
    # p1 answers with the label stack it received (RFC 4950): pe1's label for 192.168.2.0/24
    pe1 = lab.lfib(line3.name, ["pe1"])["routers"]["pe1"]
    label = next(e for e in pe1["ftn"] if e["fec"] == "192.168.2.0/24")["nexthops"][0]["out_labels"][0]
    assert re.search(rf"10\.0\.0\.2 <MPLS:L={label},E=0,S=1,T=1>", r.stdout), r.stdout


def test_capture_shows_expected_label(line3, tmp_path: Path):
    from scapy.contrib.mpls import MPLS
    from scapy.layers.inet import ICMP, IP
    from scapy.utils import rdpcap

    pcap = tmp_path / "p1.pcap"
    cap = Capture(f"lsr-{line3.name}.p1", "eth1", pcap, "mpls")
    try:
        line3.run("ce1", ["ping", "-c", "3", "-i", "0.1", "192.168.2.2"])
        cap.wait(lambda fr: sum(map(icmp_echo_in_mpls, fr)) >= 3, 10, "3 labelled echo requests")
    finally:
        cap.stop()
    pe1 = lab.lfib(line3.name, ["pe1"])["routers"]["pe1"]
    label = next(e for e in pe1["ftn"] if e["fec"] == "192.168.2.0/24")["nexthops"][0]["out_labels"][0]
    pkts = [p for p in rdpcap(str(pcap)) if p.haslayer(MPLS)]
    echo = [p for p in pkts if p.haslayer(ICMP) and p[ICMP].type == 8]
    assert len(echo) == 3
    for p in echo:
        assert p[MPLS].label == label and p[MPLS].s == 1
        assert p[IP].dst == "192.168.2.2"
        assert p[MPLS].ttl == 63  # uniform: ce1 sent 64, pe1 decremented once


def test_diamond_ecmp_and_link_failure(diamond):
    name = diamond.name
    r = diamond.run("ce1", ["ping", "-c", "3", "-i", "0.1", "-W", "1", "192.168.2.2"])
    assert r.returncode == 0, r.stdout
    # Which core router carries this flow (one path per flow, ECMP hash)?
    fwd = {p: lab.query(name, p, "counters")["runtime"].get("forwarded", 0) for p in ("p1", "p2")}
    used = max(fwd, key=fwd.get)  # type: ignore[arg-type]
    other = ({"p1", "p2"} - {used}).pop()
    # The used link fails: traffic moves to the other P (how long it is lost for:
    # benchmarks/bench_lab.py, failover).
    lab.link(name, "pe1", used, up=False)
    lab.wait_converged(name, timeout=20)
    st = lab.status(name)
    assert str(diamond.topo.nodes[used].lsr_id) not in st["routers"]["pe1"]["sessions"] or \
        st["routers"]["pe1"]["sessions"][str(diamond.topo.nodes[used].lsr_id)] != "OPERATIONAL"
    before = lab.query(name, other, "counters")["runtime"].get("forwarded", 0)
    r = diamond.run("ce1", ["ping", "-c", "3", "-i", "0.1", "-W", "1", "192.168.2.2"])
    assert r.returncode == 0
    assert lab.query(name, other, "counters")["runtime"].get("forwarded", 0) - before >= 3
    # and back
    lab.link(name, "pe1", used, up=True)
    lab.wait_converged(name, timeout=20)
    from lsr.sim import simulate

    sim, _ = simulate(diamond.topo)
    shape = lab._shape  # labels may differ after a flap; the structure must not
    names = {str(n.lsr_id): n.name for n in diamond.topo.routers}
    for rname, j in lab.lfib(name)["routers"].items():
        assert shape(j, names) == shape(sim.lfib_json()["routers"][rname], names)


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["lsr", "lab", *args], capture_output=True, text=True, timeout=120, **kw)


def test_teardown_after_kill9_of_router_and_up():
    name = _lab_name("k")
    topo = str(TOPOLOGIES / "line3.yaml")
    try:
        # kill -9 of the `up` process once routers run
        up = subprocess.Popen(["lsr", "lab", "up", topo, "--name", name],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: len(list(lab_dir(name).glob("*.ready"))) == 3, 20,
                 "the 3 routers to be ready")
        up.kill()
        up.wait()
        st = lab.status(name)
        pids = _pids(name)
        assert len(pids) == 3
        # kill -9 of a router too
        pid = st["routers"]["p1"]["pid"]
        os.kill(pid, 9)
        r = _cli("down", name)
        assert r.returncode == 0, r.stderr
        _no_leftovers(name, pids)
        r = _cli("down", name)  # twice: a no-op
        assert r.returncode == 0 and "no lab" in r.stdout
    finally:
        lab.down(name)
    _no_leftovers(name)


def test_ctrl_c_during_up_tears_down(tmp_path: Path):
    name = _lab_name("c")
    # Mismatched MD5 keys: pe1-p1 never comes up, so `up` is still waiting when Ctrl-C
    # arrives, however fast or slow the machine is.
    topo = tmp_path / "stuck.yaml"
    topo.write_text((TOPOLOGIES / "diamond.yaml").read_text()
                    .replace("pe1: {loopback: 10.255.0.1}",
                             "pe1: {loopback: 10.255.0.1, ldp: {passwords: {p1: one}}}")
                    .replace("p1: {loopback: 10.255.0.2}",
                             "p1: {loopback: 10.255.0.2, ldp: {passwords: {pe1: two}}}"))
    try:
        up = subprocess.Popen(["lsr", "lab", "up", str(topo), "--name", name, "--timeout", "60"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Ctrl-C once every router runs: `up` then waits for a convergence that never comes.
        wait_for(lambda: len(list(lab_dir(name).glob("*.ready"))) == 4, 20,
                 "the 4 routers to be ready")
        assert up.poll() is None, "lab up finished before Ctrl-C"
        up.send_signal(2)
        _, err = up.communicate(timeout=30)
        assert up.returncode != 0
        _no_leftovers(name)
    finally:
        lab.down(name)


def test_two_labs_coexist_and_cli_errors(line3):
    r = _cli("up", str(TOPOLOGIES / "line3.yaml"), "--name", line3.name)
    assert r.returncode != 0 and "already up" in r.stderr and len(r.stderr.splitlines()) == 1
    r = _cli("lfib", line3.name, "--json")
    assert r.returncode == 0 and '"pe1"' in r.stdout
    r = _cli("exec", line3.name, "ce1", "--", "sh", "-c", "exit 7")
    assert r.returncode == 7


def test_non_root_is_one_line_exit_2(monkeypatch):
    from click.testing import CliRunner

    from lsr.cli import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    r = CliRunner().invoke(main, ["lab", "up", str(TOPOLOGIES / "line3.yaml")])
    assert r.exit_code == 2
    assert r.output.strip() == "lsr: lab commands need root"


MD5_LINE3 = """
name: md5
topology:
  defaults:
    ldp: {hello_interval: 1, hello_holdtime: 3}
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1, ldp: {passwords: {p1: %s}}}
    p1: {loopback: 10.255.0.2, ldp: {passwords: {pe1: s3cret}}}
    pe2: {loopback: 10.255.0.3}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet: 192.168.1.0/24
    - endpoints: [pe1:eth2, p1:eth1]
    - endpoints: [p1:eth2, pe2:eth2]
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet: 192.168.2.0/24
"""


def test_md5_sessions_and_bad_input_survival():
    from lsr.core.topology import parse_topology

    name = _lab_name("m")
    try:
        L = lab.up(parse_topology(MD5_LINE3 % "s3cret"), name=name, timeout=30)
        assert lab.status(name)["routers"]["pe1"]["sessions"] == {"10.255.0.2": "OPERATIONAL"}
        # Garbage at every edge: raw frames to p1's MAC (MPLS and IPv4), UDP and TCP to 646.
        p1_mac = L.topo.interface("p1", "eth1").mac.replace(":", "")
        pe1_mac = L.topo.interface("pe1", "eth2").mac.replace(":", "")
        junk = (
            "import os, socket\n"
            "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth2', 0))\n"
            f"hdr = bytes.fromhex('{p1_mac}{pe1_mac}')\n"
            "for i in range(300):\n"
            "    et = (b'\\x88\\x47', b'\\x08\\x00', b'\\x88\\x48')[i % 3]\n"
            "    s.send(hdr + et + os.urandom(i % 80))\n"
            "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for i in range(50): u.sendto(os.urandom(i), ('10.0.0.2', 646))\n"
            "t = socket.create_connection(('10.255.0.2', 646), timeout=2)\n"
            "t.sendall(os.urandom(500)); t.close()\n"
        )
        def p1_counters() -> dict:
            return lab.query(name, "p1", "counters")["runtime"]

        c0 = p1_counters()
        r = L.run("pe1", ["python3", "-c", junk])
        assert r.returncode == 0, r.stderr

        def p1_took_it_all() -> bool:  # the frames, the datagrams and the TCP bytes
            c = p1_counters()
            return all(c.get(k, 0) - c0.get(k, 0) >= n
                       for k, n in (("rx_eth1", 200), ("hello_rx", 50), ("tcp_rx_bytes", 500)))
        wait_for(p1_took_it_all, 10, "p1 to read all the garbage")
        st = lab.status(name)
        assert all(v["alive"] for v in st["routers"].values())
        assert st["routers"]["p1"]["sessions"]["10.255.0.3"] == "OPERATIONAL"
        ping = L.run("ce1", ["ping", "-c", "2", "-i", "0.2", "-W", "1", "192.168.2.2"])
        assert ping.returncode == 0
    finally:
        lab.down(name)
    _no_leftovers(name)


def test_up_timeout_names_what_did_not_converge():
    from lsr.core.topology import parse_topology

    name = _lab_name("x")
    try:
        with pytest.raises(lab.LabError) as e:
            lab.up(parse_topology(MD5_LINE3 % "wrong"), name=name, timeout=4)
        msg = str(e.value)
        assert "did not converge" in msg and "p1" in msg and "pe1" in msg and "\n" not in msg
        _no_leftovers(name)  # a failed up removes its partial lab
    finally:
        lab.down(name)


def test_ctrl_c_while_a_router_is_forked_is_kept_and_the_router_recorded(monkeypatch):
    """A Ctrl-C that arrives while `up` forks a router is held until the router is in the
    lab state (so `down` ends it), then raised: never lost, never an orphan router."""
    import signal

    from lsr.lab import node
    from lsr.lab.state import LabState, teardown

    name = _lab_name("f")
    child = subprocess.Popen(["sleep", "30"])

    def fork_and_ctrl_c(ns, argv, log_path, close=()):
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, right inside the fork
        return child.pid

    monkeypatch.setattr(node, "spawn_forked", fork_and_ctrl_c)
    topo = load_topology(TOPOLOGIES / "line3.yaml")
    st = LabState(name)
    st.create({"topology": "line3", "source": "test", "up_pid": os.getpid()})
    try:
        with pytest.raises(KeyboardInterrupt):
            lab._start_routers(topo, name, st, ring=True, spawn="fork")
        assert [p["pid"] for p in st.read()["pids"]] == [child.pid]  # the first router only
    finally:
        teardown(name)
        try:
            assert child.wait(timeout=10) is not None  # `down` ended the recorded router
        finally:
            child.kill()  # ours, by PID: gone in any case

"""Spoofed Hello floods against a live router (root): 400 LDP or OSPF Hellos a second with
made-up LSR IDs / Router IDs / transport addresses, from a host port and from a core
link. Neighbours, fds and TCP connects stay bounded, the management socket answers,
the real LDP sessions and OSPF adjacencies stay up, the refusal counters say what was
refused; and with file descriptors run out, the router's log stays bounded.

Numbers measured here (worst management answer, fds, connects) are printed with -s.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lsr import lab
from lsr.core.topology import LdpOptions, load_topology
from lsr.lab.state import LabState, lab_dir, ns_name

from .conftest import ROOT, TOPOLOGIES, needs_root
from .wait import wait_for

pytestmark = [needs_root, pytest.mark.netns, pytest.mark.slow]

NAME = f"hf{os.getpid() % 10000}"
RATE = 400
LOG_CAP = 32768  # LSR_LOG_BYTES for this lab's routers
CAP = LdpOptions().max_adjacencies


@pytest.fixture(scope="module")
def line3():
    old = os.environ.get("LSR_LOG_BYTES")
    os.environ["LSR_LOG_BYTES"] = str(LOG_CAP)  # the routers inherit it
    lab.down(NAME)
    try:
        yield lab.up(load_topology(TOPOLOGIES / "line3.yaml"), name=NAME, timeout=60)
    finally:
        if old is None:
            os.environ.pop("LSR_LOG_BYTES", None)
        else:
            os.environ["LSR_LOG_BYTES"] = old
        lab.down(NAME)


def pid_of(router: str) -> int:
    return next(p["pid"] for p in LabState(NAME).read()["pids"]
                if p["role"].split(":", 1)[-1] == router)


def fds(router: str) -> int:
    return len(os.listdir(f"/proc/{pid_of(router)}/fd"))


def active_opens(router: str) -> int:
    """TCP connects the router's namespace has sent a SYN for (/proc/net/snmp ActiveOpens)."""
    out = subprocess.run(["ip", "netns", "exec", ns_name(NAME, router), "cat", "/proc/net/snmp"],
                         capture_output=True, text=True, check=True).stdout
    head, vals = [ln.split() for ln in out.splitlines() if ln.startswith("Tcp:")]
    return int(dict(zip(head[1:], vals[1:], strict=True))["ActiveOpens"])


def healthy(router: str, sessions: int, full: int) -> bool:
    try:
        st = lab.query(NAME, router, "status")
    except lab.LabError:  # e.g. its accept queue still full after the fd test
        return False
    up = [k for k, v in st["sessions"].items() if v == "OPERATIONAL"]
    return len(up) == sessions and st["ospf_full"] == full


def flood(node: str, ifname: str, seconds: float, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(["ip", "netns", "exec", ns_name(NAME, node), sys.executable, "-m",
                             "tests.flood", "--ifname", ifname, "--rate", str(RATE),
                             "--seconds", str(seconds), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def watch(router: str, proc: subprocess.Popen, sessions: int, full: int) -> dict:
    """While `proc` floods: the management socket's worst answer time, the most fds and
    LDP neighbours, and whether the real sessions and adjacencies stayed up."""
    worst, max_fds, max_nbrs, always_up = 0.0, fds(router), 0, True
    while proc.poll() is None:
        t = time.monotonic()
        try:
            st = lab.query(NAME, router, "status", timeout=10)
        except lab.LabError:  # no answer within 10 s: as bad as it gets
            st = None
        worst = max(worst, time.monotonic() - t)
        max_fds = max(max_fds, fds(router))
        if st is None:
            always_up = False
            continue
        up = [k for k, v in st["sessions"].items() if v == "OPERATIONAL"]
        always_up &= len(up) == sessions and st["ospf_full"] == full
        max_nbrs = max(max_nbrs, len(st["sessions"]))
        time.sleep(0.05)  # paces the sampling, not a wait for an event
    sent = int(proc.stdout.read())
    assert proc.wait() == 0
    return {"worst": worst, "fds": max_fds, "neighbors": max_nbrs, "up": always_up,
            "sent": sent}


def test_ldp_hello_flood_on_a_core_link(line3):
    """From pe1's namespace onto p1's eth1, where LDP legitimately runs: made-up LSR IDs
    with transports p1 can reach (it is the active side towards them) and some it cannot."""
    wait_for(lambda: healthy("p1", 2, 2), 30, "p1 converged")
    fds0, opens0 = fds("p1"), active_opens("p1")
    seconds = 6
    proc = flood("pe1", "eth2", seconds, "--transport=10.255.0.1/32", "--transport=10.0.0.1/32",
                 "--transport=10.0.0.0/30", "--transport=1.0.0.0/8")
    w = watch("p1", proc, sessions=2, full=2)
    opens = active_opens("p1") - opens0
    print(f"\ncore-link LDP flood: {w['sent']} Hellos in {seconds} s; neighbours <= "
          f"{w['neighbors']}; fds {fds0} -> <= {w['fds']}; management worst "
          f"{w['worst'] * 1000:.0f} ms; TCP connects (ActiveOpens) {opens}")
    refused = lab.query(NAME, "p1", "status", timeout=30).get("refused", {}).get("ldp", {})
    print(f"refused: {refused}")
    assert w["sent"] >= RATE * seconds * 0.95
    assert w["up"], "a real LDP session or OSPF adjacency went down during the flood"
    assert w["neighbors"] <= CAP + 1  # eth1's cap (pe1 among them) and pe2 on eth2
    assert w["fds"] - fds0 <= 12  # connects in flight (8) and a management connection
    assert w["worst"] < 0.5
    # new adjacencies: a burst of 4 then 2 a second, each connects and retries (2 s, 4 s)
    assert opens <= 60
    assert refused["hello-adjacency-limit"] and refused["hello-rate-limit"]
    assert sum(refused.values()) >= w["sent"] - 100  # (10.0.0.2 is p1's: bad transport)
    c = lab.query(NAME, "p1", "counters")
    assert c["ldp"]["refused"] == refused


def test_hellos_from_a_host_port_reach_no_protocol(line3):
    """ce1 floods pe1's customer port with LDP Hellos (multicast) and OSPF Hellos (unicast
    to pe1's address): LDP and OSPF do not run there, nothing forms, the frames arrived."""
    pe1_if = line3.topo.nodes["pe1"].interfaces["eth1"]
    rx = Path("/sys/class/net/eth1/statistics/rx_packets")

    def rx_frames() -> int:
        return int(subprocess.run(["ip", "netns", "exec", ns_name(NAME, "pe1"), "cat", str(rx)],
                                  capture_output=True, text=True, check=True).stdout)

    wait_for(lambda: healthy("pe1", 1, 1), 30, "pe1 converged")
    before = lab.query(NAME, "pe1", "counters")["runtime"]
    frames0, opens0 = rx_frames(), active_opens("pe1")
    w = watch("pe1", flood("ce1", "eth0", 3, "--transport=10.0.0.0/8"), sessions=1, full=1)
    u = watch("pe1", flood("ce1", "eth0", 2, "--ospf", f"--dst={pe1_if.address.ip}",
                           f"--dst-mac={pe1_if.mac}"), sessions=1, full=1)
    after = lab.query(NAME, "pe1", "counters")["runtime"]
    refused = lab.query(NAME, "pe1", "status").get("refused", {})
    print(f"\nhost-port floods: LDP {w['sent']} (management worst {w['worst'] * 1000:.0f} ms), "
          f"OSPF unicast {u['sent']} (worst {u['worst'] * 1000:.0f} ms); refused {refused}")
    assert rx_frames() - frames0 >= w["sent"] + u["sent"]  # they did arrive
    assert w["up"] and u["up"] and w["neighbors"] == 1 and u["neighbors"] == 1
    assert after.get("hello_rx", 0) - before.get("hello_rx", 0) <= 10  # p1's, every 5 s
    assert active_opens("pe1") == opens0
    assert max(w["worst"], u["worst"]) < 0.5
    assert refused["ospf"]["not-ospf-interface"] >= u["sent"]


def test_ospf_hello_flood_on_a_core_link(line3):
    wait_for(lambda: healthy("p1", 2, 2), 30, "p1 converged")
    tx0 = lab.query(NAME, "p1", "counters")["runtime"].get("ospf_tx", 0)
    w = watch("p1", flood("pe1", "eth2", 4, "--ospf"), sessions=2, full=2)
    tx = lab.query(NAME, "p1", "counters")["runtime"].get("ospf_tx", 0) - tx0
    refused = lab.query(NAME, "p1", "status").get("refused", {}).get("ospf", {})
    print(f"\ncore-link OSPF flood: {w['sent']} Hellos; OSPF packets sent meanwhile {tx}; "
          f"management worst {w['worst'] * 1000:.0f} ms; refused {refused}")
    assert w["up"], "pe1's OSPF adjacency (or an LDP session) went down"
    assert tx <= 20  # its own Hellos and refreshes, no Hello back per spoofed one
    assert w["worst"] < 0.5
    assert refused["hello-second-neighbor"] >= w["sent"]


def test_log_bounded_when_file_descriptors_run_out(line3):
    """p1 at its fd limit, flooded with Hellos (each new neighbour connects) and with
    management connections (each accept fails with EMFILE): its log stays small."""
    wait_for(lambda: healthy("p1", 2, 2), 30, "p1 converged")
    pid, logf = pid_of("p1"), lab_dir(NAME) / "p1.log"
    old = lab_dir(NAME) / "p1.log.1"
    soft, hard = (int(x) for x in subprocess.run(
        ["prlimit", "--pid", str(pid), "--nofile", "--noheadings", "--raw", "-o", "SOFT,HARD"],
        capture_output=True, text=True, check=True).stdout.split())
    subprocess.run(["prlimit", "--pid", str(pid), f"--nofile={fds('p1') + 1}:{hard}"], check=True)
    stop = threading.Event()

    def hammer() -> None:  # connections to the management socket
        while not stop.is_set():
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.2)
                try:
                    s.connect(str(lab_dir(NAME) / "p1.sock"))
                except OSError:
                    pass

    t = threading.Thread(target=hammer, daemon=True)
    t.start()
    try:
        proc = flood("pe1", "eth2", 8, "--transport=10.255.0.1/32", "--transport=10.0.0.1/32")
        proc.wait(timeout=60)
    finally:
        stop.set()
        t.join()
        subprocess.run(["prlimit", "--pid", str(pid), f"--nofile={soft}:{hard}"], check=True)
    text = logf.read_text(errors="replace") + (old.read_text(errors="replace")
                                               if old.exists() else "")
    sizes = [p.stat().st_size for p in (logf, old) if p.exists()]
    print(f"\nfd exhaustion: log files {sizes} bytes (cap {LOG_CAP}), "
          f"{text.count('Traceback')} tracebacks, {text.count('suppressed')} 'suppressed' lines")
    assert "Too many open files" in text  # the failure path was driven
    assert all(s <= LOG_CAP + 4096 for s in sizes)
    assert text.count("Traceback (most recent call last)") <= 4
    assert "suppressed" in text
    wait_for(lambda: healthy("p1", 2, 2), 60, "p1 back to its real sessions")

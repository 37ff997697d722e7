"""Link impairments measured on a real lab (root): delay with ping, loss with a probe stream,
rate with iperf3, a file's impairment on a host link, the fast path back after `clear`, and
a restarted router that applies the impairment set at run time.

RTTs are compared at their 10th percentile: the machine is shared (two cores, several
labs), and a router woken late by the scheduler delays a few pings by milliseconds, with
or without an impairment; the low percentile measures the path, as a minimum RTT does.
The median is printed for the record (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from tests.conftest import TOPOLOGIES, is_root
from tests.wait import wait_for

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import parse_topology
    from lsr.lab import control
    from lsr.lab.converge import PROBE_SCRIPT
    from lsr.lab.state import ns_name

UNIQ = os.getpid() % 10000
NAME = f"hci{UNIQ}"
CE2 = "192.168.2.2"


@pytest.fixture(scope="module")
def line3():
    # line3 with 5 ms of delay on the ce2 host link in the file: pe2 delays what it sends
    # to ce2 and, on receive, what ce2 sends (a host is not ours to run)
    text = (TOPOLOGIES / "line3.yaml").read_text()
    text = text.replace("      subnet: 192.168.2.0/24\n",
                        "      subnet: 192.168.2.0/24\n      delay: 5ms\n")
    try:
        yield lab.up(parse_topology(text, "line3-delay"), name=NAME, timeout=60)
    finally:
        lab.down(NAME)


def _cli(*args: str) -> str:
    r = CliRunner().invoke(__import__("lsr.cli", fromlist=["main"]).main, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def _rtts(lab_, n: int = 200) -> list[float]:
    r = lab_.run("ce1", ["ping", "-c", str(n), "-i", "0.01", "-W", "2", CE2], timeout=60)
    rtts = sorted(float(x) for x in re.findall(r"time=([0-9.]+) ms", r.stdout))
    assert len(rtts) >= n * 0.95, r.stdout[-300:]
    return rtts


def _q(xs: list[float], q: float) -> float:
    return xs[int(q * (len(xs) - 1))]


def test_file_delay_on_host_link_both_directions(line3):
    with_file = _rtts(line3)
    _cli("lab", "link", NAME, "pe2", "ce2", "clear")
    without = _rtts(line3)
    added = _q(with_file, 0.1) - _q(without, 0.1)
    print(f"host link 5 ms: p10 +{added:.2f} ms, median +{_q(with_file, .5) - _q(without, .5):.2f}")
    assert abs(added - 10.0) <= 2.0, (added, with_file[:5], without[:5])


def test_delay_20ms_adds_40ms_to_rtt(line3):
    _cli("lab", "link", NAME, "pe2", "ce2", "clear")
    base = _rtts(line3)
    out = _cli("lab", "link", NAME, "pe1", "p1", "set", "delay", "20ms")
    assert "delay 20ms (each direction)" in out
    try:
        slow = _rtts(line3)
    finally:
        _cli("lab", "link", NAME, "pe1", "p1", "clear")
    added = _q(slow, 0.1) - _q(base, 0.1)
    print(f"20 ms: p10 +{added:.2f} ms, median +{_q(slow, .5) - _q(base, .5):.2f} ms, "
          f"min +{slow[0] - base[0]:.2f} ms")
    assert abs(added - 40.0) <= 2.0, (added, base[:5], slow[:5])


def _spawn(node: str, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns_name(NAME, node), sys.executable,
                             PROBE_SCRIPT, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _last_json(out: str) -> dict:
    return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])


def test_loss_10pct_of_2000_probes(line3):
    _cli("lab", "link", NAME, "pe1", "p1", "set", "loss", "10%")
    try:
        before = lab.query(NAME, "pe1", "counters")["impair"]["eth2 out"]["impair-loss"]
        recv = _spawn("ce2", ["recv", "5001", str(time.time() + 60)])
        assert recv.stdout.readline().strip() == "ready"
        send = _spawn("ce1", ["send", CE2, "5001", "500", "4"])  # 2,000 probes, one way
        sent = _last_json(send.communicate(timeout=60)[0])
        got = _last_json(recv.communicate(f"{time.time() + 1.0!r}\n", timeout=60)[0])
        view = lab.link_view(NAME, "pe1", "p1")
        st = lab.status(NAME)
    finally:
        _cli("lab", "link", NAME, "pe1", "p1", "clear")
    assert sent["sent"] == 2000
    loss = 1 - got["received"] / sent["sent"]
    print(f"loss 10%: {sent['sent'] - got['received']} of {sent['sent']} lost ({loss:.1%})")
    assert 0.07 <= loss <= 0.13, got
    # every probe lost was an impair-loss at pe1 (the probes cross pe1 -> p1 only)
    counted = view["applied_by"]["pe1"]["eth2 out"]["impair-loss"] - before
    assert counted == sent["sent"] - got["received"] - got["drops"], (counted, got)
    assert [i["name"] for i in st["impairments"]] == ["pe1-p1"]
    assert st["impairments"][0]["impair-loss"] >= counted


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 not installed")
def test_rate_10mbit_limits_tcp(line3):
    _cli("lab", "link", NAME, "pe1", "p1", "set", "rate", "10mbit")
    srv = subprocess.Popen(["ip", "netns", "exec", ns_name(NAME, "ce2"), "iperf3", "-s", "-1",
                            "-p", "5202"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from tests.wait import wait_tcp_listening

        wait_tcp_listening(ns_name(NAME, "ce2"), 5202, srv)
        r = line3.run("ce1", ["iperf3", "-c", CE2, "-p", "5202", "-t", "5", "-J"], timeout=60)
        end = json.loads(r.stdout)["end"]
    finally:
        srv.kill()
        srv.wait()
        _cli("lab", "link", NAME, "pe1", "p1", "clear")
    mbit = end["sum_received"]["bits_per_second"] / 1e6
    print(f"rate 10mbit: iperf3 TCP {mbit:.2f} Mbit/s received")
    assert 9.0 <= mbit <= 11.0, end["sum_received"]


def test_clear_gives_the_fast_path_back(line3):
    def general() -> int:
        return lab.query(NAME, "pe1", "counters")["runtime"].get("rx_general", 0)

    _cli("lab", "link", NAME, "pe1", "p1", "set", "delay", "1ms")
    g0 = general()
    line3.run("ce1", ["ping", "-c", "20", "-i", "0.01", CE2])
    impaired = general() - g0
    _cli("lab", "link", NAME, "pe1", "p1", "clear")
    g1 = general()
    line3.run("ce1", ["ping", "-c", "20", "-i", "0.01", CE2])
    # impaired: pe1's pushes to p1 take the general path; cleared: the ring fast path again
    assert impaired >= 20 and general() - g1 < 5, (impaired, general() - g1)


def test_restarted_router_applies_runtime_impairment(line3):
    _cli("lab", "link", NAME, "p1", "pe2", "set", "loss", "1%", "delay", "2ms")
    try:
        control.node_stop(NAME, "p1")
        control.node_start(NAME, "p1", timeout=60)
        imp = wait_for(lambda: lab.query(NAME, "p1", "counters").get("impair"), 10,
                       "p1's impairment after its restart")
        assert imp["eth2 out"]["impair"] == {"delay": 0.002, "jitter": 0.0, "loss": 0.01,
                                             "rate": 0, "queue": 1000}
    finally:
        _cli("lab", "link", NAME, "p1", "pe2", "clear")
    assert lab.link_view(NAME, "p1", "pe2")["impair"] is None


def test_cli_errors_are_one_line(line3):
    for args, msg in ((["set", "delay", "soon"], "expected a duration"),
                      (["set", "delay"], "KEY VALUE pairs"),
                      (["set", "loss", "1%", "colour", "red"], "unknown impairment 'colour'"),
                      (["set", "jitter", "5ms"], "larger than the delay"),
                      (["clear", "now"], "takes no values")):
        r = CliRunner().invoke(__import__("lsr.cli", fromlist=["main"]).main,
                               ["lab", "link", NAME, "pe1", "p1", *args])
        assert r.exit_code != 0 and msg in r.output, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1, r.output

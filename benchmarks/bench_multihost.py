"""A lab over two machines against the same lab on one (root, Ray): numbers to report.

    python -m benchmarks.bench_multihost [--runs 3] [--json OUT]

The two machines are played as tests/test_lab_multihost.py plays them: two network
namespaces joined by a veth (the underlay, MTU 9000), a Ray node for each (in the root
namespace, on a loopback address). The diamond is split so that the flow between its
hosts crosses one VXLAN link whichever ECMP branch it takes (ce1 pe1 p1 | p2 pe2 ce2).
For the diamond on one machine and over two:

- `lab up` time (connecting to Ray, the parts built at once, convergence), median of runs;
- RTT host to host (ping, 200 x 10 ms: min / median / p99), through both dataplanes;
- RTT router to router over one link, kernel to kernel (no dataplane): pe1 -> p1 (a veth
  on both), pe1 -> p2 (over two machines: veth, tc, VXLAN, the underlay and back);
- TCP host to host (iperf3, 5 s, one stream), three runs;
- how long after pe1's end of pe1-p2 is set down (`ip link`) p2's end has no carrier.

Everything is on one 2-core VM, so the two "machines" share its cores: a real second
machine adds its own CPU, and its network's latency to the VXLAN hop.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lsr.lab as lab  # noqa: E402
from lsr.core.topology import load_topology  # noqa: E402
from lsr.lab import multihost, remote  # noqa: E402
from tests.multihost_cluster import cluster, wait_nodes  # noqa: E402

SPLIT = {"ce1": "m1", "pe1": "m1", "p1": "m1", "p2": "m2", "pe2": "m2", "ce2": "m2"}


def _rtts(L: lab.Lab, node: str, addr: str, n: int = 200) -> dict[str, float]:
    out = L.run(node, ["ping", "-c", str(n), "-i", "0.01", "-W", "1", addr], timeout=120).stdout
    t = sorted(float(x) for x in re.findall(r"time=([\d.]+) ms", out))
    if not t:
        return {"min": -1, "median": -1, "p99": -1, "received": 0}
    return {"min": t[0], "median": statistics.median(t), "p99": t[int(len(t) * 0.99) - 1],
            "received": len(t)}


def _tcp(L: lab.Lab) -> float:
    """Mbit/s of one TCP stream ce1 -> ce2 for 5 s (iperf3; the server in ce2)."""
    srv = subprocess.Popen(["ip", "netns", "exec", f"lsr-{L.name}.ce2", "iperf3", "-s", "-1",
                            "-p", "5301"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if L.run("ce2", ["ss", "-Hltn", "sport", "=", ":5301"]).stdout.strip():
                break
            time.sleep(0.1)
        r = L.run("ce1", ["iperf3", "-c", "192.168.2.2", "-p", "5301", "-t", "5", "-J"],
                  timeout=60)
        return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        srv.wait(timeout=30)


def _carrier_ms(L: lab.Lab) -> float:
    """ms from `ip link set eth3 down` in pe1 until p2:eth1 (the far end, on the other
    machine) has lost its carrier (seen by `ip monitor` in p2's namespace): the agents'
    relay over two machines, the veth itself on one."""
    mon = subprocess.Popen(["ip", "-n", f"lsr-{L.name}.p2", "monitor", "link"],
                           stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        time.sleep(0.3)  # (the monitor's socket is bound by then)
        t0 = time.monotonic()
        subprocess.run(["ip", "-n", f"lsr-{L.name}.pe1", "link", "set", "eth3", "down"],
                       check=True)
        assert mon.stdout is not None
        for line in mon.stdout:
            if "eth1" in line and "NO-CARRIER" in line:
                break
        ms = (time.monotonic() - t0) * 1000
    finally:
        mon.kill()
        mon.wait()
    subprocess.run(["ip", "-n", f"lsr-{L.name}.pe1", "link", "set", "eth3", "up"], check=True)
    lab.wait_converged(L.name, 30)
    return round(ms, 1)


def measure(L: lab.Lab) -> dict[str, object]:
    topo = L.topo
    p1 = str(topo.interface("p1", "eth1").address.ip)
    p2 = str(topo.interface("p2", "eth1").address.ip)
    return {"host_rtt_ms": _rtts(L, "ce1", "192.168.2.2"),
            "link_rtt_pe1_p1_ms": _rtts(L, "pe1", p1), "link_rtt_pe1_p2_ms": _rtts(L, "pe1", p2),
            "tcp_mbit_s": sorted(round(_tcp(L), 1) for _ in range(3)),
            "far_carrier_lost_ms": sorted(_carrier_ms(L) for _ in range(3))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="lab up runs (median)")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    topo = load_topology(ROOT / "topologies" / "diamond.yaml")
    name = f"vxb{os.getpid() % 1000}"
    res: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="vxb") as tmp, \
            cluster(Path(tmp), f"vxb{os.getpid()}") as c:
        t0 = time.monotonic()
        wait_nodes(remote.connect(c.address))
        res["cluster"] = {"ray_cluster_up_s": round(time.monotonic() - t0, 2)}
        for where in ("one machine", "two machines"):
            ups, L = [], None
            for i in range(args.runs):
                t0 = time.monotonic()
                if where == "one machine":
                    L = lab.up(topo, name=name, timeout=60)
                else:
                    L = multihost.up(topo, c.address, name=name, place=SPLIT, timeout=60)
                ups.append(time.monotonic() - t0)
                if i < args.runs - 1:
                    lab.down(name)
            assert L is not None
            try:
                res[where] = {"lab_up_s": round(statistics.median(ups), 2),
                              "lab_up_runs_s": [round(u, 2) for u in ups], **measure(L)}
            finally:
                t0 = time.monotonic()
                lab.down(name)
                res[where]["lab_down_s"] = round(time.monotonic() - t0, 2)
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

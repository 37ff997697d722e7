"""End-to-end tunnel throughput in a lab (root): ESP across the MPLS core vs no IPsec.

    sudo python benchmarks/bench_ipsec_lab.py [--seconds 5] [--json OUT]

Same line3 shape (ce1 - pe1 - p1 - pe2 - ce2), same runtime, three labs:
`plain` (topologies/line3.yaml), `manual` (tests/data/ipsec-line.yaml:
AES-128-CBC + HMAC-SHA-256-128 one way, AES-256-CBC + HMAC-SHA-512-256 back)
and `ike` (tests/data/ipsec-ike.yaml: AES-128-GCM-16 from IKEv2, rekeyed every
3 s during the run). iperf3 TCP ce1 -> ce2 (goodput) and UDP 1000-byte
datagrams at an unlimited rate (received rate). Ratios are tunnel / plain.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsr.core.topology import load_topology  # noqa: E402
from lsr.lab.state import ns_name  # noqa: E402

LABS = {
    "plain": ROOT / "topologies" / "line3.yaml",
    "manual": ROOT / "tests" / "data" / "ipsec-line.yaml",
    "ike": ROOT / "tests" / "data" / "ipsec-ike.yaml",
}


def iperf(lab: str, dst: str, secs: float, udp: bool) -> float:
    srv = subprocess.Popen(["ip", "netns", "exec", ns_name(lab, "ce2"), "iperf3", "-s", "-1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.4)
        argv = ["ip", "netns", "exec", ns_name(lab, "ce1"), "iperf3", "-c", dst, "-t", str(secs), "-J"]
        if udp:
            argv += ["-u", "-b", "2G", "-l", "1000"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=secs + 30).stdout
    finally:
        srv.wait(timeout=10)
    end = json.loads(out)["end"]
    if udp:
        s = end["sum"]
        return s["bits_per_second"] * (1 - s["lost_percent"] / 100) / 1e6
    return end["sum_received"]["bits_per_second"] / 1e6


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json")
    args = ap.parse_args()
    import lsr.lab as L

    res: dict = {}
    for kind, path in LABS.items():
        topo = load_topology(path)
        dst = str(topo.interface("ce2", "eth0").address.ip)
        name = f"sb{kind[:3]}{os.getpid() % 1000}"
        try:
            L.up(topo, name=name, timeout=60)
            time.sleep(1.0)  # IKE: Child SA up
            res[kind] = {"tcp_mbps": round(iperf(name, dst, args.seconds, False), 1),
                         "udp1000_mbps": round(iperf(name, dst, args.seconds, True), 1)}
            if kind != "plain":
                sas = L.query(name, "pe1", "ipsec", view="sas")
                res[kind]["pe1_stage"] = sas["stage"]
        finally:
            L.down(name)
        print(kind, res[kind], flush=True)
    for kind in ("manual", "ike"):
        for k in ("tcp_mbps", "udp1000_mbps"):
            res[kind][k.replace("_mbps", "_ratio")] = round(res[kind][k] / res["plain"][k], 3)
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

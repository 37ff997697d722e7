"""Interop timing (root, FRR, tcpdump, tshark): LDP session setup ours<->FRR vs FRR<->FRR.

    sudo python benchmarks/bench_interop.py [--rounds N] [--json OUT]

One mixed lab, a line  pe1 (ours) - f1 (FRR) - f2 (FRR) - pe2 (ours),  hello 1 s.
Its three sessions cover every pairing in the same run:

    pe1-f1  ours passive, FRR active   (10.255.0.2 > 10.255.0.1 opens TCP)
    f1-f2   FRR <-> FRR
    f2-pe2  ours active,  FRR passive

Each link is flapped `rounds` times (one link at a time) while tcpdump runs on
it. From the pcap timestamps of each re-establishment:

    syn -> operational   first SYN to the KeepAlive that completes the Init exchange
    syn -> bindings      first SYN to the last Label Mapping of the initial burst
    up  -> bindings      first Hello after link up to that last Label Mapping
                         (includes discovery: waiting for the peer's Hello)

Also `lab up` to converged for the whole lab. Numbers to report, nothing asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lsr.lab as lab  # noqa: E402
from lsr.core.topology import parse_topology  # noqa: E402

TOPO = """
name: interop
topology:
  defaults:
    ldp: {hello_interval: 1, hello_holdtime: 3}
  nodes:
    pe1: {loopback: 10.255.0.1}
    f1: {kind: frr, loopback: 10.255.0.2}
    f2: {kind: frr, loopback: 10.255.0.3}
    pe2: {loopback: 10.255.0.4}
  links:
    - endpoints: [pe1:eth1, f1:eth1]
    - endpoints: [f1:eth2, f2:eth1]
    - endpoints: [f2:eth2, pe2:eth1]
"""
SESSIONS = [("pe1", "f1", "eth1", "ours(passive)<->FRR(active)"),
            ("f1", "f2", "eth2", "FRR<->FRR"),
            ("pe2", "f2", "eth1", "ours(active)<->FRR(passive)")]


def _tshark(pcap: Path) -> list[tuple[float, str, int, int, list[int]]]:
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", "tcp.analyze_sequence_numbers:FALSE", "-Y",
         "ldp || tcp.flags.syn==1", "-T", "fields", "-E", "separator=|",
         "-e", "frame.time_epoch", "-e", "ip.src", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack",
         "-e", "ldp.msg.type"], capture_output=True, text=True, timeout=120).stdout
    rows = []
    for line in out.splitlines():
        t, src, syn, ack, types = (line.split("|") + [""] * 5)[:5]
        rows.append((float(t), src, int(syn or 0), int(ack or 0),
                     [int(x, 16) for x in types.split(",") if x]))
    return rows


def _measure(rows, t_up: float) -> dict[str, float] | None:
    """One re-establishment after `t_up` (wall clock of the link-up command)."""
    after = [r for r in rows if r[0] >= t_up]
    hello = next((r[0] for r in after if 0x0100 in r[4]), None)
    syn = next((r[0] for r in after if r[2] and not r[3]), None)
    if hello is None or syn is None:
        return None
    kas = [r[0] for r in after if r[0] >= syn and 0x0201 in r[4]]
    if len(kas) < 2:
        return None
    op = kas[1]  # both sides' first KeepAlive: OPERATIONAL on both
    maps = [r[0] for r in after if r[0] >= syn and 0x0400 in r[4]]
    burst = [t for t in maps if t - op < 0.5]
    if not burst:
        return None
    return {"syn_to_operational": op - syn, "syn_to_bindings": max(burst) - syn,
            "up_to_bindings": max(burst) - hello}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true", help="keep the pcaps")
    args = ap.parse_args()
    name = f"f{os.getpid() % 10000}b"
    tmp = Path(tempfile.mkdtemp(prefix="bench-interop-"))
    results: dict[str, dict[str, list[float]]] = {s[3]: {} for s in SESSIONS}
    t0 = time.monotonic()
    L = lab.up(parse_topology(TOPO), name=name, timeout=60)
    up_s = time.monotonic() - t0
    print(f"lab up (4 routers, 2 FRR): converged in {up_s:.2f} s "
          f"(FRR daemons started in {L.timings.get('frr_started', 0):.2f} s)")
    try:
        for a, b, ifname, label in SESSIONS:
            pcap = tmp / f"{a}-{b}.pcap"
            cap = subprocess.Popen(["ip", "netns", "exec", f"lsr-{name}.{a}", "tcpdump", "-i",
                                    ifname, "-U", "--immediate-mode", "-w", str(pcap)],
                                   stderr=subprocess.PIPE, text=True)
            assert cap.stderr is not None and "listening" in cap.stderr.readline()
            ups = []
            try:
                for _ in range(args.rounds):
                    lab.link(name, a, b, up=False)
                    lab.wait_converged(name, timeout=30)
                    time.sleep(0.3)
                    ups.append(time.time())
                    lab.link(name, a, b, up=True)
                    lab.wait_converged(name, timeout=30)
                    time.sleep(0.7)
            finally:
                cap.send_signal(signal.SIGINT)
                cap.wait(timeout=10)
            rows = _tshark(pcap)
            for i, t_up in enumerate(ups):
                end = ups[i + 1] if i + 1 < len(ups) else float("inf")
                m = _measure([r for r in rows if r[0] < end], t_up)
                if m is None:
                    print(f"  {label}: round {i}: incomplete capture")
                    continue
                for k, v in m.items():
                    results[label].setdefault(k, []).append(v)
    finally:
        lab.down(name)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"pcaps in {tmp}")
    print(f"\nLDP session re-establishment after a link flap, {args.rounds} rounds, "
          "pcap timestamps (ms, median [min-max]):")
    print(f"{'session':32} {'SYN->OPERATIONAL':>22} {'SYN->all bindings':>22} "
          f"{'link up->all bindings':>24}")
    for label, m in results.items():
        def fmt(k: str, m: dict[str, list[float]] = m) -> str:
            v = [x * 1000 for x in m.get(k, [])]
            if not v:
                return "-"
            return f"{statistics.median(v):.2f} [{min(v):.2f}-{max(v):.2f}]"
        print(f"{label:32} {fmt('syn_to_operational'):>22} {fmt('syn_to_bindings'):>22} "
              f"{fmt('up_to_bindings'):>24}")
    if args.json:
        Path(args.json).write_text(json.dumps({"lab_up_s": up_s, "sessions": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

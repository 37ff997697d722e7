"""Lab benchmarks (root): numbers to report, not timed tests.

    sudo python benchmarks/bench_lab.py [--quick] [--only swap|e2e|up|failover|isp] [--json OUT]
    sudo python benchmarks/bench_lab.py --only isp --routers 50,100,200 [--idle 30]

1. LSR swap forwarding (our runtime, one label) vs Linux kernel IPv4
   forwarding through an identical namespace chain snd -> mid -> rcv, same
   run: offered rates and flat-out ("flooded"), 60 B and 1000 B frames.
   Forwarded = frames counted by the receiving veth (rx_packets).
2. End-to-end UDP host to host (iperf3) across pe-p-pe (line3 lab) vs the
   same namespaces with kernel IP forwarding.
3. `lab up` time and router memory for line3, the backbone and a 50-router topology.
4. failover: on the diamond, the link carrying a 100-pings-a-second flow fails;
   seconds until LDP has reconverged and the pings lost (outage = lost x 10 ms).
5. isp (only with --only isp): real-ISP-shaped labs of --routers sizes (issue 20: 200
   routers up and converged in < 60 s, < 6 GB PSS): phases, PSS/RSS summed, peak load,
   idle CPU per converged router, `lab down` time.

For the issue-9 numbers use `python -m benchmarks.bench_dataplane`: its sender
(TPACKET_V2 TX ring, paced) out-runs a plain `send()` loop, and it searches the
loss-free rate by bisection with kernel and LSR measured back to back; 1 and 2
here are the older, sender-limited measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsr.core.igp import Igp  # noqa: E402
from lsr.core.lfib import IlmEntry, Lfib, Nhlfe  # noqa: E402
from lsr.core.topology import load_topology, parse_topology  # noqa: E402
from lsr.lab import netns  # noqa: E402
from lsr.lab.state import LabState, ns_name, teardown  # noqa: E402

CHAIN = """
name: chain
topology:
  nodes:
    snd: {loopback: 10.255.9.1}
    mid: {loopback: 10.255.9.2}
    rcv: {loopback: 10.255.9.3}
  links:
    - endpoints: [snd:eth0, mid:eth1]
      subnet: 10.9.0.0/30
    - endpoints: [mid:eth2, rcv:eth0]
      subnet: 10.9.0.4/30
"""

SENDER = r"""
import socket, struct, sys, time
ifname, frame_hex, rate, dur = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
f = bytes.fromhex(frame_hex)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
send = s.send
sent = 0
t0 = time.perf_counter()
end = t0 + dur
if rate <= 0:
    while True:
        for _ in range(256):
            try:
                send(f); sent += 1
            except OSError:
                pass
        if time.perf_counter() >= end:
            break
else:
    per_tick = max(1, rate // 2000)          # 0.5 ms ticks
    tick = per_tick / rate
    nxt = t0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if now < nxt:
            continue
        for _ in range(per_tick):
            try:
                send(f); sent += 1
            except OSError:
                pass
        nxt += tick
print(sent, time.perf_counter() - t0)
"""


def sh(argv: list[str], **kw) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kw).stdout


def ip_csum(h: bytes) -> int:
    s = sum(int.from_bytes(h[i:i + 2], "big") for i in range(0, len(h), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_udp(src: str, dst: str, total: int) -> bytes:
    hdr = bytearray(20)
    hdr[0], hdr[8], hdr[9] = 0x45, 64, 17
    hdr[2:4] = total.to_bytes(2, "big")
    hdr[12:16] = IPv4Address(src).packed
    hdr[16:20] = IPv4Address(dst).packed
    hdr[10:12] = ip_csum(bytes(hdr)).to_bytes(2, "big")
    udp = (1234).to_bytes(2, "big") + (5678).to_bytes(2, "big") + (total - 20).to_bytes(2, "big") + b"\0\0"
    return bytes(hdr) + udp + bytes(total - 28)


def mac(m: str) -> bytes:
    return bytes.fromhex(m.replace(":", ""))


def rx_packets(lab: str, node: str, ifname: str) -> int:
    return int(sh(["ip", "netns", "exec", ns_name(lab, node), "cat",
                   f"/sys/class/net/{ifname}/statistics/rx_packets"]))


def build_chain(lab: str, mode: str):
    topo = parse_topology(CHAIN, "<chain>")
    st = LabState(lab)
    st.create({"topology": "chain", "source": "bench", "up_pid": os.getpid()})
    netns.create_namespaces(topo, lab, st)
    netns.create_links(topo, lab)
    netns.configure_nodes(topo, lab)
    mid = ns_name(lab, "mid")
    proc = None
    if mode == "kernel":
        sh(["ip", "netns", "exec", mid, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    else:
        rcv_if = topo.interface("rcv", "eth0")
        nh = Nhlfe("10.255.9.3", "eth2", rcv_if.address.ip, (200,), "swap")
        lfib = Lfib(ilm={100: IlmEntry(100, IPv4Network("10.9.0.4/30"), (nh,))})
        (st.dir / "topology.pickle").write_bytes(pickle.dumps(topo))
        (st.dir / "lfib.pickle").write_bytes(pickle.dumps(lfib))
        log = open(st.dir / "mid.log", "ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", mid, "taskset", "-c", "1", sys.executable, "-m", "lsr.lab.node",
             "--state-dir", str(st.dir), "--router", "mid", "--static-lfib",
             str(st.dir / "lfib.pickle")] + (["--no-ring"] if mode == "lsr-plain" else []),
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            start_new_session=True)
        st.add_pid(proc.pid, "router:mid")
        deadline = time.monotonic() + 20
        while not (st.dir / "mid.ready").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("bench router did not start")
            time.sleep(0.05)
    return topo, proc


def frame_for(topo, mode: str, size: int) -> bytes:
    snd, mid = topo.interface("snd", "eth0"), topo.interface("mid", "eth1")
    dst_ip = str(topo.interface("rcv", "eth0").address.ip)
    eth = mac(mid.mac) + mac(snd.mac)
    if mode == "kernel":
        return eth + b"\x08\x00" + ipv4_udp(str(snd.address.ip), dst_ip, size - 14)
    label = ((100 << 12) | 0x100 | 64).to_bytes(4, "big")
    return eth + b"\x88\x47" + label + ipv4_udp(str(snd.address.ip), dst_ip, size - 18)


def run_rate(lab: str, frame: bytes, rate: int, dur: float) -> dict:
    before = rx_packets(lab, "rcv", "eth0")
    out = sh(["ip", "netns", "exec", ns_name(lab, "snd"), "taskset", "-c", "0", sys.executable,
              "-c", SENDER, "eth0", frame.hex(), str(rate), str(dur)])
    time.sleep(0.2)
    got = rx_packets(lab, "rcv", "eth0") - before
    sent, took = out.split()
    sent_i, took_f = int(sent), float(took)
    return {"offered_pps": round(sent_i / took_f), "forwarded_pps": round(got / took_f),
            "loss": round(1 - got / sent_i, 4) if sent_i else None}


def bench_swap(quick: bool) -> dict:
    rates = [50_000, 100_000, 200_000, 0] if quick else [50_000, 100_000, 200_000, 300_000, 0]
    dur = 1.5 if quick else 2.0
    res: dict = {}
    for mode in ("kernel", "lsr", "lsr-plain"):
        lab = f"tbch{mode[-1]}{os.getpid() % 1000}"
        try:
            topo, _ = build_chain(lab, mode)
            time.sleep(0.5)
            for size in (60, 1000):
                f = frame_for(topo, mode, size)
                for rate in rates:
                    r = run_rate(lab, f, rate, dur)
                    key = f"{size}B@{'flood' if rate == 0 else rate}"
                    res.setdefault(key, {})[mode] = r
                    print(f"  {mode:6s} {key:12s} {r}", flush=True)
        finally:
            teardown(lab)
    for v in res.values():
        if v.get("kernel", {}).get("forwarded_pps"):
            v["ratio"] = round(v["lsr"]["forwarded_pps"] / v["kernel"]["forwarded_pps"], 3)
            v["ratio_plain"] = round(v["lsr-plain"]["forwarded_pps"] / v["kernel"]["forwarded_pps"], 3)
    return res


def iperf(lab: str, src: str, dst_ip: str, length: int, dur: float) -> dict:
    srv = subprocess.Popen(["ip", "netns", "exec", ns_name(lab, "ce2"), "iperf3", "-s", "-1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.4)
        out = sh(["ip", "netns", "exec", ns_name(lab, src), "iperf3", "-u", "-c", dst_ip, "-b",
                  "2G", "-l", str(length), "-t", str(dur), "-J"], timeout=dur + 30)
    finally:
        srv.wait(timeout=10)
    j = json.loads(out)["end"]["sum"]
    return {"sent_pps": round(j["packets"] / j["seconds"]), "recv_mbps": round(
        j["bits_per_second"] * (1 - j["lost_percent"] / 100) / 1e6, 1),
        "lost_percent": round(j["lost_percent"], 2),
        "recv_pps": round((j["packets"] - j["lost_packets"]) / j["seconds"])}


def bench_e2e(quick: bool) -> dict:
    import lsr.lab as L

    topo = load_topology(ROOT / "topologies" / "line3.yaml")
    dst = str(topo.interface("ce2", "eth0").address.ip)
    dur = 2.0 if quick else 3.0
    res: dict = {}
    lab = f"tbe{os.getpid() % 1000}"
    try:
        L.up(topo, name=lab, timeout=60)
        for length in (64, 1000):
            res.setdefault(f"udp{length}", {})["lsr"] = iperf(lab, "ce1", dst, length, dur)
    finally:
        L.down(lab)
    lab = f"tbk{os.getpid() % 1000}"
    try:
        st = LabState(lab)
        st.create({"topology": "line3", "source": "bench", "up_pid": os.getpid()})
        netns.create_namespaces(topo, lab, st)
        netns.create_links(topo, lab)
        netns.configure_nodes(topo, lab)
        igp = Igp(topo)
        for r in topo.routers:
            ns = ns_name(lab, r.name)
            sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            cmds, _ = netns.route_commands(igp.rib(r.name), set())
            netns.ip_batch(cmds, ns)
        for length in (64, 1000):
            res[f"udp{length}"]["kernel"] = iperf(lab, "ce1", dst, length, dur)
    finally:
        teardown(lab)
    for v in res.values():
        v["ratio_recv_pps"] = round(v["lsr"]["recv_pps"] / max(1, v["kernel"]["recv_pps"]), 3)
    for k, v in res.items():
        print(f"  {k}: {v}", flush=True)
    return res


def router_mem_mb(lab: str, field: str) -> float:
    """Sum of Rss or Pss (shared pages split between sharers) over the lab's routers."""
    total = 0
    for p in LabState(lab).read().get("pids", []):
        try:
            for line in Path(f"/proc/{p['pid']}/smaps_rollup").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def bench_up(quick: bool) -> dict:
    import lsr.lab as L
    from benchmarks.topogen import random_topology_yaml

    res = {}
    cases = [("line3", load_topology(ROOT / "topologies" / "line3.yaml")),
             ("backbone", load_topology(ROOT / "topologies" / "backbone.yaml"))]
    if not quick:
        cases.append(("rnd50", parse_topology(random_topology_yaml(50, 25, seed=7, hosts=2), "<rnd50>")))
    for label, topo in cases:
        lab = f"tbu{os.getpid() % 1000}"
        t0 = time.monotonic()
        try:
            lab_ = L.up(topo, name=lab, timeout=180)
            res[label] = {"routers": len(topo.routers), "links": len(topo.links),
                          "up_seconds": round(time.monotonic() - t0, 2),
                          "phases": {k: round(v, 2) for k, v in lab_.timings.items()},
                          "router_rss_mb_total": router_mem_mb(lab, "Rss"),
                          "router_pss_mb_total": router_mem_mb(lab, "Pss")}
            res[label]["router_pss_mb_each"] = round(res[label]["router_pss_mb_total"] / len(topo.routers), 1)
        finally:
            L.down(lab)
        print(f"  {label}: {res[label]}", flush=True)
    return res


def _router_pids(lab: str) -> list[int]:
    return [p["pid"] for p in LabState(lab).read().get("pids", [])
            if p["role"].startswith("router:")]


def _cpu_ticks(pids: list[int]) -> int:
    """utime + stime of `pids` (clock ticks)."""
    total = 0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def _log_phases(lab: str, barrier: float) -> dict:
    """From the routers' logs: seconds after the start barrier until the last OSPF
    adjacency reached Full and the last LDP session became OPERATIONAL."""
    import datetime

    last = {"ospf_full": 0.0, "ldp_operational": 0.0}
    for f in LabState(lab).dir.glob("*.log"):
        for line in f.read_text(errors="replace").splitlines():
            key = ("ospf_full" if "-> Full" in line else
                   "ldp_operational" if line.endswith("OPERATIONAL") else None)
            if key is None:
                continue
            try:
                t = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                continue
            last[key] = max(last[key], t - barrier)
    return {k: round(v, 2) for k, v in last.items()}


class _LoadWatch:
    """The highest 1-minute load average seen while a lab comes up."""

    def __init__(self) -> None:
        import threading

        self.peak = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.peak = max(self.peak, float(Path("/proc/loadavg").read_text().split()[0]))

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return round(self.peak, 1)


def bench_isp(sizes: list[int], idle: float = 30.0) -> dict:
    """`lab up` of real-ISP-shaped maps (benchmarks.topogen.isp_topology, OSPF and LDP on
    the wire, no hosts): wall time by phase, the routers' PSS and RSS summed, peak load,
    CPU of the converged routers while idle, `lab down` time (issue 20: 200 routers in
    < 60 s and < 6 GB PSS)."""
    import lsr.lab as L
    from benchmarks.topogen import isp_topology

    res = {}
    for n in sizes:
        topo = isp_topology(n)
        lab = f"ls{n}"
        watch = _LoadWatch()
        t0 = time.monotonic()
        wall0 = time.time()
        r: dict = {"routers": len(topo.routers), "links": len(topo.links)}
        try:
            lab_ = L.up(topo, name=lab, timeout=900)
            r["up_seconds"] = round(time.monotonic() - t0, 2)
            r["load_peak"] = watch.stop()
            r["phases"] = {k: round(v, 2) for k, v in lab_.timings.items()}
            r["after_barrier"] = _log_phases(lab, wall0 + lab_.timings["routers"])
            r["router_rss_mb_total"] = router_mem_mb(lab, "Rss")
            r["router_pss_mb_total"] = router_mem_mb(lab, "Pss")
            r["router_pss_mb_each"] = round(r["router_pss_mb_total"] / n, 1)
            pids = _router_pids(lab)
            c0, i0 = _cpu_ticks(pids), time.monotonic()
            time.sleep(idle)
            ticks = _cpu_ticks(pids) - c0
            hz = os.sysconf("SC_CLK_TCK")
            r["idle_cpu_pct_per_router"] = round(100 * ticks / hz / (time.monotonic() - i0) / n, 3)
        finally:
            if "load_peak" not in r:
                watch.stop()
            t1 = time.monotonic()
            L.down(lab)
            r["down_seconds"] = round(time.monotonic() - t1, 2)
        res[f"isp{n}"] = r
        print(f"  isp{n}: {json.dumps(r)}", flush=True)
    return res


def bench_failover(quick: bool) -> dict:
    """Diamond: fail pe1's link to the P that carries the flow, under a 10-ms ping stream."""
    import re

    import lsr.lab as L

    interval, reps = 0.01, 1 if quick else 3
    topo = load_topology(ROOT / "topologies" / "diamond.yaml")
    runs = []
    for _ in range(reps):
        lab = f"tbf{os.getpid() % 1000}"
        try:
            lab_ = L.up(topo, name=lab, timeout=60)
            lab_.run("ce1", ["ping", "-c", "3", "-i", "0.1", "-W", "1", "192.168.2.2"])
            fwd = {p: L.query(lab, p, "counters")["runtime"].get("forwarded", 0) for p in ("p1", "p2")}
            used = max(fwd, key=fwd.get)  # type: ignore[arg-type]
            ping = subprocess.Popen(["ip", "netns", "exec", ns_name(lab, "ce1"), "ping", "-i",
                                     str(interval), "-c", "300", "-W", "1", "192.168.2.2"],
                                    stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)  # the stream runs before the failure
            L.link(lab, "pe1", used, up=False)
            reconverge = L.wait_converged(lab, timeout=20)
            out, _ = ping.communicate(timeout=30)
            m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
            lost = int(m.group(1)) - int(m.group(2)) if m else None
            runs.append({"reconverge_s": round(reconverge, 3), "lost_pings": lost,
                         "outage_ms": None if lost is None else round(lost * interval * 1000)})
        finally:
            L.down(lab)
        print(f"  failover: {runs[-1]}", flush=True)
    return {"runs": runs}


def main() -> int:
    if os.geteuid() != 0:
        print("bench_lab: needs root", file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--only", choices=["swap", "e2e", "up", "failover", "isp"])
    ap.add_argument("--routers", default="200",
                    help="isp: comma-separated sizes of the ISP-shaped labs (default 200)")
    ap.add_argument("--idle", type=float, default=30.0,
                    help="isp: seconds the converged routers' CPU is measured over")
    a = ap.parse_args()
    out = {}
    if a.only == "isp":  # heavy (a 200-router lab): only when asked for
        try:
            sizes = [int(x) for x in a.routers.split(",")]
        except ValueError:
            print(f"bench_lab: --routers {a.routers!r}: expected sizes like 50,100,200",
                  file=sys.stderr)
            return 2
        print("isp:", flush=True)
        out["isp"] = bench_isp(sizes, a.idle)
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=1))
        return 0
    for name, fn in (("swap", bench_swap), ("e2e", bench_e2e), ("up", bench_up),
                     ("failover", bench_failover)):
        if a.only and a.only != name:
            continue
        print(f"{name}:", flush=True)
        out[name] = fn(a.quick)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

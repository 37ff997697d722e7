"""Dataplane benchmarks (root): our LSR vs Linux kernel forwarding, same run.

    sudo python -m benchmarks.bench_dataplane [--reps 3] [--dur 1.0] [--only swap|e2e|up|inproc]
                                              [--json OUT]

Numbers to report, not timed tests (issue 9, "Benchmarks").

Traffic generator: a Python TPACKET_V2 TX_RING sender (every slot pre-filled
with the frame, so sending k frames = k one-byte status writes + one `send()`),
PACKET_QDISC_BYPASS, paced at an offered rate in 0.2 ms steps or flat out.
Counter: the receiving veth's rx_packets (sysfs, read by a helper in the
receiving namespace): every frame that reached the receiver.

CPU placement (2 cores): the sender is pinned to core 0 (`taskset -c 0`); our
LSR process(es) to core 1 (`taskset -c 1`, nice -10: the kernel forwards in
softirq, above every process, and other users' processes share this machine;
BENCH_LSR_NICE=0 for plain). The kernel reference gets the same core: RPS steers
the receive processing of the first router's ingress veth to core 1, so its
forwarding (and, veth being synchronous, every later hop and the receiver's
stack) runs on core 1. For our LSR, veth's default applies: its RX ring is
filled in the sender's softirq on core 0; its Python loop, its transmissions
and the receiver's stack run on core 1. The sender on core 0 cannot out-run the
kernel on core 1 (rows marked generator-limited: no loss even flat out); the
cpu1 idle share in the JSON says how much headroom the kernel had left.

1. swap: one LSR, chain snd -> mid -> rcv; mid swaps one label (static LFIB, our
   runtime `lsr.lab.node`) vs mid with ip_forward=1 (IPv4 frames, same sizes).
   Loss-free rate: bisection on the offered rate, highest with <= 0.1% loss;
   flooded: the sender flat out. 60 B (64 B on the wire with FCS) and 1000 B.
2. e2e: host -> pe1 (push) -> p1 (PHP pop) -> pe2 (IP) -> host, the line3 lab
   with LDP vs the same namespaces with kernel forwarding; UDP frames from the
   TX-ring sender in ce1, counted at ce2. Loss-free rate by bisection too.
3. up: `lab up` time and router memory (benchmarks.bench_lab.bench_up).
4. inproc (no root, no namespaces): the ring-to-ring fast path (`forwarding.ioloop`,
   `forwarding.vector`) in this process on anonymous mmaps laid out like TPACKET_V2
   RX/TX rings: CPU nanoseconds per frame for each case (scalar: 32-frame runs, the
   vector path off; vector: 256-frame runs). For A/B checks of fast-path edits.
5. ipv6 (IPv6 rows, 6PE RFC 4798, each with its ratio to the IPv4 row of the same run):
   in process, CPU ns a frame of `Dataplane.process` (the per-frame path IPv6 takes in a
   lab: its frames come on the plain socket beside the rings) for an IPv4 push (one label)
   and a 6PE push (two labels), a swap with IPv4 and with IPv6 under the labels, the
   egress (IPv4 PHP pop, 6PE label pop + IPv6 lookup); the ring fast path's swap with
   IPv6 under two labels against IPv4 under one; and (root) the swap chain of part 1 with
   labelled IPv6 frames ([100, 4000] over IPv6 UDP) against labelled IPv4, same sizes.

Each measurement is repeated (`--reps`, kernel and LSR alternately, both chains
up at once) and the median reported, with the load average seen.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from ipaddress import IPv4Network
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_lab import CHAIN, ipv4_udp, mac  # noqa: E402
from lsr.core.igp import Igp  # noqa: E402
from lsr.core.lfib import IlmEntry, Lfib, Nhlfe  # noqa: E402
from lsr.core.topology import load_topology, parse_topology  # noqa: E402
from lsr.lab import netns  # noqa: E402
from lsr.lab.state import LabState, ns_name, teardown  # noqa: E402

SENDER_CPU = "0"
LSR_CPU = "1"
LOSS_TOL = 0.001
# The kernel forwards in softirq, above every process; our LSR is a process among other
# users' processes on this shared machine: it runs at this nice value (0: like any process).
LSR_NICE = int(os.environ.get("BENCH_LSR_NICE", "-10"))

# Persistent sender: reads "rate dur" lines (rate 0 = flat out), answers "sent seconds".
SENDER = r"""
import mmap, socket, struct, sys, time
ifname, frame = sys.argv[1], bytes.fromhex(sys.argv[2])
FS, NF = 2048, 4096
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.setsockopt(263, 10, 1)                       # PACKET_VERSION = TPACKET_V2
try:
    s.setsockopt(263, 20, 1)                   # PACKET_QDISC_BYPASS
except OSError:
    pass
s.setsockopt(263, 13, struct.pack("IIII", 1 << 16, NF * FS >> 16, FS, NF))  # PACKET_TX_RING
s.bind((ifname, 0))
ring = mmap.mmap(s.fileno(), NF * FS, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
n = len(frame)
for k in range(NF):
    o = k * FS
    ring[o + 32:o + 32 + n] = frame
    struct.pack_into("II", ring, o + 4, n, n)
st = memoryview(ring)[0::FS]                   # the low byte of every slot's tp_status
ONES = b"\x01" * NF
idx = 0
def push(k):
    global idx
    e = idx + k
    if e <= NF:
        st[idx:e] = ONES[:k]
    else:
        st[idx:] = ONES[:NF - idx]
        st[:e - NF] = ONES[:e - NF]
    idx = e % NF
    try:
        s.send(b"")                            # blocking: veth transmits synchronously
    except OSError:
        pass
print("ready", flush=True)
for line in sys.stdin:
    rate, dur = line.split()
    rate, dur = int(rate), float(dur)
    sent = 0
    t0 = time.perf_counter()
    end = t0 + dur
    if rate <= 0:
        while time.perf_counter() < end:
            push(256)
            sent += 256
    else:
        cap = max(32, rate // 2000)            # at most 0.5 ms worth at once: a sender
        skipped = 0                            # descheduled for a while forgives its deficit
        while True:                            # instead of bursting (offered = what was sent)
            now = time.perf_counter()
            if now >= end:
                break
            due = int((now - t0) * rate) - skipped - sent
            if due > cap:
                skipped += due - cap
                due = cap
            if due > 0:
                push(due)
                sent += due
            else:
                time.sleep(0.0002)
    print(sent, time.perf_counter() - t0, flush=True)
"""

# Persistent counter in the receiving namespace: prints rx_packets on each line read.
# Optionally binds a UDP port and never reads it (UDP to a closed port would make ICMP).
COUNTER = r"""
import socket, sys
ifname, port = sys.argv[1], int(sys.argv[2])
if port:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    u.bind(("0.0.0.0", port))
p = f"/sys/class/net/{ifname}/statistics/rx_packets"
print("ready", flush=True)
for _ in sys.stdin:
    with open(p) as f:
        print(f.read().strip(), flush=True)
"""


def sh(argv: list[str], **kw) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kw).stdout


def cpu_times(cpu: str) -> tuple[int, int, int, int]:
    """(user+nice, system, softirq+irq, idle+iowait) jiffies of one CPU (/proc/stat)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            return v[0] + v[1], v[2], v[5] + v[6], v[3] + v[4]
    return 0, 0, 0, 0


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


class Helper:
    """A line-protocol helper process inside a namespace."""

    def __init__(self, ns: str, script: str, args: list[str], cpu: str | None = None) -> None:
        pre = ["taskset", "-c", cpu] if cpu is not None else []
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, *pre, sys.executable, "-c", script, *args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self.p.stdout.readline().strip()  # type: ignore[union-attr]
        if first != "ready":
            raise RuntimeError(f"helper in {ns} failed to start: {first!r}")

    def ask(self, line: str) -> str:
        self.p.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.p.stdin.flush()  # type: ignore[union-attr]
        return self.p.stdout.readline().strip()  # type: ignore[union-attr]

    def close(self) -> None:
        self.p.stdin.close()  # type: ignore[union-attr]
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


class Path_:
    """One traffic path: a sender helper and a counter helper."""

    def __init__(self, snd_ns: str, snd_if: str, rcv_ns: str, rcv_if: str, frame: bytes,
                 udp_port: int = 0) -> None:
        self.snd = Helper(snd_ns, SENDER, [snd_if, frame.hex()], SENDER_CPU)
        self.cnt = Helper(rcv_ns, COUNTER, [rcv_if, str(udp_port)])

    def trial(self, rate: int, dur: float) -> dict:
        before = int(self.cnt.ask(""))
        c0 = cpu_times(LSR_CPU)
        sent_s, took_s = self.snd.ask(f"{rate} {dur}").split()
        c1 = cpu_times(LSR_CPU)
        time.sleep(0.15)  # let rings drain
        got = int(self.cnt.ask("")) - before
        sent, took = int(sent_s), float(took_s)
        tot = max(1, sum(c1) - sum(c0))
        usr, sys_, sirq, idle = ((c1[k] - c0[k]) / tot for k in range(4))
        return {"offered": round(sent / took), "forwarded": round(got / took),
                "loss": (1 - got / sent) if sent else 1.0,
                "cpu1": {"user": round(usr, 2), "sys": round(sys_, 2), "softirq": round(sirq, 2),
                         "idle": round(idle, 2)}}

    def close(self) -> None:
        self.snd.close()
        self.cnt.close()


def loss_free(path: Path_, dur: float, steps: int = 7) -> dict:
    """Flat-out trial, then bisection on the offered rate for the highest with <= 0.1% loss."""
    flood = path.trial(0, dur)
    if flood["loss"] <= LOSS_TOL:
        return {"loss_free": flood["forwarded"], "flood": flood["forwarded"],
                "flood_offered": flood["offered"], "flood_loss": flood["loss"],
                "generator_limited": True, "flood_cpu1": flood["cpu1"]}
    lo, hi = 0, flood["offered"]
    best = 0
    for _ in range(steps):
        mid = (lo + hi) // 2 if lo else hi // 2
        r = path.trial(mid, dur)
        ok = r["loss"] <= LOSS_TOL and r["offered"] >= 0.9 * mid
        if not ok:  # a second chance (kernel and LSR alike): other users' load comes in bursts
            r = path.trial(mid, dur)
            ok = r["loss"] <= LOSS_TOL and r["offered"] >= 0.9 * mid
        if ok:
            lo, best = mid, max(best, r["forwarded"])
        else:
            hi = mid
        if hi - lo < flood["offered"] / 100:
            break
    return {"loss_free": best, "flood": flood["forwarded"], "flood_offered": flood["offered"],
            "flood_loss": round(flood["loss"], 4), "generator_limited": False,
            "flood_cpu1": flood["cpu1"]}


# ---------------------------------------------------------------- swap (one LSR)


def set_rps(ns: str, ifname: str, cpu: str) -> None:
    """Steer the interface's receive processing (softirq) to `cpu` (RPS)."""
    sh(["ip", "netns", "exec", ns, "sh", "-c",
        f"echo {1 << int(cpu):x} > /sys/class/net/{ifname}/queues/rx-0/rps_cpus"])


def build_chain(lab: str, mode: str, procs: int = 1, rps: bool = False):
    topo = parse_topology(CHAIN, "<chain>")
    st = LabState(lab)
    st.create({"topology": "chain", "source": "bench", "up_pid": os.getpid()})
    netns.create_namespaces(topo, lab, st)
    netns.create_links(topo, lab)
    netns.configure_nodes(topo, lab)
    mid = ns_name(lab, "mid")
    if mode == "kernel":
        sh(["ip", "netns", "exec", mid, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        if rps:
            set_rps(mid, "eth1", LSR_CPU)
        return topo
    # lsr and lsr6 alike: mid swaps label 100 for 200 (what is under it is not looked at)
    if rps:
        set_rps(mid, "eth1", LSR_CPU)
    rcv_if = topo.interface("rcv", "eth0")
    nh = Nhlfe("10.255.9.3", "eth2", rcv_if.address.ip, (200,), "swap")
    lfib = Lfib(ilm={100: IlmEntry(100, IPv4Network("10.9.0.4/30"), (nh,))})
    (st.dir / "topology.pickle").write_bytes(pickle.dumps(topo))
    (st.dir / "lfib.pickle").write_bytes(pickle.dumps(lfib))
    log = open(st.dir / "mid.log", "ab")  # noqa: SIM115 (handed to the child)
    p = subprocess.Popen(
        ["ip", "netns", "exec", mid, "nice", "-n", str(LSR_NICE), "taskset", "-c", LSR_CPU,
         sys.executable, "-m",
         "lsr.lab.node", "--state-dir", str(st.dir), "--router", "mid", "--static-lfib",
         str(st.dir / "lfib.pickle")] + (["--fanout", str(procs)] if procs > 1 else []),
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True)
    log.close()
    st.add_pid(p.pid, "router:mid")
    deadline = time.monotonic() + 20
    while not (st.dir / "mid.ready").exists():
        if time.monotonic() > deadline or p.poll() is not None:
            raise RuntimeError("bench router did not start")
        time.sleep(0.05)
    return topo


def chain_frame(topo, mode: str, size: int) -> bytes:
    snd, mid = topo.interface("snd", "eth0"), topo.interface("mid", "eth1")
    dst_ip = str(topo.interface("rcv", "eth0").address.ip)
    eth = mac(mid.mac) + mac(snd.mac)
    if mode == "kernel":
        return eth + b"\x08\x00" + ipv4_udp(str(snd.address.ip), dst_ip, size - 14)
    if mode == "lsr6":  # labelled IPv6 as 6PE puts it on the core: [LDP label, 6PE label]
        stack = ((100 << 12) | 64).to_bytes(4, "big") + ((4000 << 12) | 0x100 | 64).to_bytes(4, "big")
        # at least 70 octets: the smallest labelled IPv6 UDP frame (the 60 B row is 70 B)
        return eth + b"\x88\x47" + stack + ipv6_udp("2001:db8:1::1", "2001:db8:2::2",
                                                     max(size, 70) - 22)
    label = ((100 << 12) | 0x100 | 64).to_bytes(4, "big")
    return eth + b"\x88\x47" + label + ipv4_udp(str(snd.address.ip), dst_ip, size - 18)


def ipv6_udp(src: str, dst: str, total: int) -> bytes:
    """An IPv6 UDP packet of `total` octets (at least 48), checksum filled in."""
    from ipaddress import IPv6Address

    from forwarding import ip6

    body = (1234).to_bytes(2, "big") + (5678).to_bytes(2, "big") \
        + (total - 40).to_bytes(2, "big") + b"\0\0" + bytes(total - 48)
    return ip6.packet(IPv6Address(src).packed, IPv6Address(dst).packed, ip6.NH_UDP, body, 64,
                      csum_at=6)


SWAP_MODES = {
    # name: (kind, RPS on mid's ingress veth to the LSR core)
    "kernel": ("kernel", True),          # kernel forwarding on core 1, like our LSR
    "lsr": ("lsr", False),               # veth default: mid's receive softirq on core 0
    "kernel-inline": ("kernel", False),  # forwarding in the sender's softirq (core 0)
    "lsr-rps": ("lsr", True),            # ring filled on core 1 too
    "lsr-ipv6": ("lsr6", False),         # as lsr, the frames labelled IPv6 (6PE's two labels)
}


def bench_swap(reps: int, dur: float, sizes: list[int], modes: list[str]) -> dict:
    base = f"b{os.getpid() % 1000}"
    labs = {m: f"{base}{i + 1}" for i, m in enumerate(modes)}
    res: dict = {}
    try:
        topos = {m: build_chain(lab, SWAP_MODES[m][0], rps=SWAP_MODES[m][1])
                 for m, lab in labs.items()}
        time.sleep(0.5)
        for size in sizes:
            paths = {m: Path_(ns_name(lab, "snd"), "eth0", ns_name(lab, "rcv"), "eth0",
                              chain_frame(topos[m], SWAP_MODES[m][0], size), 5678)
                     for m, lab in labs.items()}
            try:
                for _m, p in paths.items():  # warm-up (ARP, caches)
                    p.trial(10_000, 0.3)
                runs: dict[str, list] = {m: [] for m in labs}
                for rep in range(reps):
                    for m, p in paths.items():
                        la = loadavg()
                        r = loss_free(p, dur)
                        r["load"] = la
                        runs[m].append(r)
                        print(f"  swap {size}B rep{rep} {m:13s} {r}", flush=True)
                res[f"{size}B"] = summarize(runs)
            finally:
                for p in paths.values():
                    p.close()
    finally:
        for lab in labs.values():
            teardown(lab)
    return res


def summarize(runs: dict[str, list]) -> dict:
    out: dict = {}
    for m, rs in runs.items():
        out[m] = {"loss_free": int(statistics.median(r["loss_free"] for r in rs)),
                  "flood": int(statistics.median(r["flood"] for r in rs)),
                  "flood_offered": int(statistics.median(r["flood_offered"] for r in rs)),
                  "all_loss_free": [r["loss_free"] for r in rs],
                  "all_flood": [r["flood"] for r in rs],
                  "generator_limited": any(r["generator_limited"] for r in rs),
                  "load": [r["load"] for r in rs]}
    k, ls = out["kernel"], out["lsr"]
    for m in runs:
        if m not in ("kernel", "lsr"):
            out[m]["ratio_to_kernel"] = round(out[m]["loss_free"] / max(1, k["loss_free"]), 3)
    if "lsr-ipv6" in runs:  # labelled IPv6 against labelled IPv4, same run, paired
        out["lsr-ipv6"]["ratio_to_ipv4"] = round(statistics.median(
            b["loss_free"] / max(1, a["loss_free"])
            for a, b in zip(runs["lsr"], runs["lsr-ipv6"], strict=True)), 3)
    out["ratio"] = round(ls["loss_free"] / max(1, k["loss_free"]), 3)
    # kernel and LSR run back to back in each repetition: the median of those paired ratios
    # is steadier than the ratio of medians when other users' load comes and goes
    out["ratio_paired_median"] = round(statistics.median(
        b["loss_free"] / max(1, a["loss_free"]) for a, b in zip(runs["kernel"], runs["lsr"], strict=True)), 3)
    out["lsr_flood_vs_own_loss_free"] = round(ls["flood"] / max(1, ls["loss_free"]), 3)
    return out


# ---------------------------------------------------------------- end to end


def pin_lab_routers(lab: str, cpu: str) -> None:
    for p in LabState(lab).read().get("pids", []):
        subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(p["pid"])], capture_output=True)
        os.setpriority(os.PRIO_PROCESS, int(p["pid"]), LSR_NICE)


def bench_e2e(reps: int, dur: float, sizes: list[int], extra: bool = False) -> dict:
    import lsr.lab as L

    topo = load_topology(ROOT / "topologies" / "line3.yaml")
    ce1, pe1, ce2 = (topo.interface("ce1", "eth0"), topo.interface("pe1", "eth1"),
                     topo.interface("ce2", "eth0"))
    base = f"b{os.getpid() % 1000}"
    labs = {"kernel": base + "3", "lsr": base + "4"}
    if extra:  # our three routers free to run on both cores (the sender keeps core 0)
        labs["lsr-2cores"] = base + "6"
    res: dict = {}
    try:
        st = LabState(labs["kernel"])
        st.create({"topology": "line3", "source": "bench", "up_pid": os.getpid()})
        netns.create_namespaces(topo, labs["kernel"], st)
        netns.create_links(topo, labs["kernel"])
        netns.configure_nodes(topo, labs["kernel"])
        igp = Igp(topo)
        for r in topo.routers:
            ns = ns_name(labs["kernel"], r.name)
            sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            cmds, _ = netns.route_commands(igp.rib(r.name), set())
            netns.ip_batch(cmds, ns)
        # Kernel forwarding of the whole chain on the routers' core (our routers are pinned there)
        set_rps(ns_name(labs["kernel"], "pe1"), "eth1", LSR_CPU)
        L.up(topo, name=labs["lsr"], timeout=60)
        pin_lab_routers(labs["lsr"], LSR_CPU)
        if extra:
            L.up(topo, name=labs["lsr-2cores"], timeout=60)
            pin_lab_routers(labs["lsr-2cores"], "0,1")
        for lab in labs.values():  # ARP / neighbour warm-up
            subprocess.run(["ip", "netns", "exec", ns_name(lab, "ce1"), "ping", "-c", "2", "-i",
                            "0.2", "-W", "1", str(ce2.address.ip)], capture_output=True)
        for size in sizes:
            frame = (mac(pe1.mac) + mac(ce1.mac) + b"\x08\x00"
                     + ipv4_udp(str(ce1.address.ip), str(ce2.address.ip), size - 14))
            paths = {m: Path_(ns_name(lab, "ce1"), "eth0", ns_name(lab, "ce2"), "eth0", frame, 5678)
                     for m, lab in labs.items()}
            try:
                for p in paths.values():
                    p.trial(5_000, 0.3)
                runs: dict[str, list] = {m: [] for m in labs}
                for rep in range(reps):
                    for m, p in paths.items():
                        la = loadavg()
                        r = loss_free(p, dur)
                        r["load"] = la
                        runs[m].append(r)
                        print(f"  e2e {size}B rep{rep} {m:6s} {r}", flush=True)
                res[f"{size}B"] = summarize(runs)
            finally:
                for p in paths.values():
                    p.close()
    finally:
        for m, lab in labs.items():
            if m != "kernel":
                L.down(lab)
        teardown(labs["kernel"])
    return res


# ---------------------------------------------------------------- lab up


def bench_up() -> dict:
    import lsr.lab as L
    from benchmarks.bench_lab import router_mem_mb
    from benchmarks.topogen import random_topology_yaml

    res = {}
    cases = [("backbone", load_topology(ROOT / "topologies" / "backbone.yaml")),
             ("rnd50", parse_topology(random_topology_yaml(50, 25, seed=7, hosts=2), "<rnd50>"))]
    for label, topo in cases:
        lab = f"b{os.getpid() % 1000}5"
        t0 = time.monotonic()
        la = loadavg()
        try:
            lab_ = L.up(topo, name=lab, timeout=180)
            res[label] = {"routers": len(topo.routers), "links": len(topo.links),
                          "up_seconds": round(time.monotonic() - t0, 2),
                          "phases": {k: round(v, 2) for k, v in lab_.timings.items()},
                          "router_rss_mb_total": router_mem_mb(lab, "Rss"),
                          "router_pss_mb_total": router_mem_mb(lab, "Pss"), "load": la}
            res[label]["router_pss_mb_each"] = round(res[label]["router_pss_mb_total"]
                                                     / len(topo.routers), 1)
        finally:
            L.down(lab)
        print(f"  {label}: {res[label]}", flush=True)
    return res


# ---------------------------------------------------------------- in process

INPROC_FS = 2048


def _inproc_rings(frames: list[bytes], ntx: int = 512):
    """An RX ring holding `frames` (every slot ready) and a factory of TX rings, as in
    tests/test_ioloop.py: anonymous mmaps, no sockets."""
    import mmap
    import struct

    from forwarding.afpacket import TX_DATA, RingPort, TxRing

    class _Sock:
        def send(self, data: bytes) -> int:
            return 0

    fs, n = INPROC_FS, len(frames)
    rx = object.__new__(RingPort)
    rx.ring = mmap.mmap(-1, n * fs)
    rx.view = memoryview(rx.ring)
    rx.frame_size, rx.nframes, rx.index, rx._slots = fs, n, 0, None
    for k, f in enumerate(frames):
        struct.pack_into("=IIIH", rx.ring, k * fs, 1, len(f), len(f), 66)
        rx.ring[k * fs + 66:k * fs + 66 + len(f)] = f

    def tx() -> TxRing:
        t = object.__new__(TxRing)
        t.ring = mmap.mmap(-1, ntx * fs)
        t.frame_size, t.nframes, t.index, t.pending, t.tx_errors = fs, ntx, 0, 0, 0
        t._slots = None
        t.max_len = fs - TX_DATA
        t.sock = _Sock()
        return t

    return rx, tx


def _inproc_case(router: str, in_if: str, mk, mpls: bool, vector: bool, run: int,
                 seconds: float) -> float:
    """CPU nanoseconds per frame of FastPath.mpls/.ipv4 on runs of `run` ready frames: the
    best block of 20 calls (others' load on a shared machine only ever adds time)."""
    import numpy as np

    from forwarding.ioloop import FastPath
    from tests.fwd_helpers import all_tables, line4

    t = all_tables(line4())[router]
    frames = [mk(t, k) for k in range(run)]
    rx, txf = _inproc_rings(frames)
    txs = {name: txf() for name in t.interfaces}
    fp = FastPath(t, txs, vector=vector)
    step = fp.mpls if mpls else fp.ipv4
    mac = t.interfaces[in_if].mac
    rx_st = np.frombuffer(rx.ring, np.uint32).reshape(run, -1)[:, 0]
    tx_st = [np.frombuffer(x.ring, np.uint32).reshape(x.nframes, -1)[:, 0] for x in txs.values()]
    got, fwd, slow = step(rx, mac, run)
    assert got == fwd == run and not slow, (router, got, fwd, len(slow))  # all on the fast path
    clock = time.thread_time_ns
    best = float("inf")
    end = time.process_time() + seconds
    while time.process_time() < end:
        spent = 0
        for _ in range(20):
            rx_st[:] = 1  # the kernel filled the ring again; TX slots were sent
            for s in tx_st:
                s[:] = 0
            t0 = clock()
            step(rx, mac, run)
            spent += clock() - t0
        best = min(best, spent / (20 * run))
    return best


def bench_inproc(reps: int, dur: float, sizes: list[int]) -> dict:
    """ns per frame of the fast path in this process, median of `reps` trials per case."""
    from tests.fwd_helpers import ilm_label, ip_frame, mpls_frame, udp

    def pkt(size: int, labelled: bool, dst: str = "192.168.2.2") -> bytes:
        return udp("192.168.1.2", dst, data=bytes(max(0, size - 42 - (4 if labelled else 0))))

    def cases(size: int) -> dict:
        return {  # name: (router, in_if, frame maker, MPLS ring?)
            "swap": ("p1", "eth1", lambda t, k: mpls_frame(
                t, "eth1", (ilm_label(t, "192.168.2.0/24"),), pkt(size, True)), True),
            "php": ("p2", "eth1", lambda t, k: mpls_frame(
                t, "eth1", (ilm_label(t, "192.168.2.0/24"),), pkt(size, True)), True),
            "swap+php, 2 egress": ("p2", "eth1", lambda t, k: mpls_frame(  # alternating
                t, "eth1", (ilm_label(t, ("192.168.1.0/24", "192.168.2.0/24")[k % 2]),),
                pkt(size, True)), True),
            "push": ("pe1", "eth1", lambda t, k: ip_frame(t, "eth1", pkt(size, False)), False),
            "ip forward": ("pe2", "eth2", lambda t, k: ip_frame(t, "eth2", pkt(size, False)),
                           False),
        }

    out: dict = {}
    for size in sizes:
        for mode, vector, run in (("scalar", False, 32), ("vector", True, 256)):
            for name, (router, in_if, mk, mpls) in cases(size).items():
                ns = [_inproc_case(router, in_if, mk, mpls, vector, run, dur) for _ in range(reps)]
                key = f"{mode} {name} {size} B"
                out[key] = {"ns_per_frame": round(statistics.median(ns), 1),
                            "trials": [round(x, 1) for x in ns]}
                print(f"  {key}: {out[key]}", flush=True)
    return out


# ---------------------------------------------------------------- IPv6 (6PE)


def _process_case(router: str, in_if: str, frame: bytes, seconds: float) -> float:
    """CPU ns a frame of `Dataplane.process` on one frame kind (line4_6 of tests.v6_helpers:
    6PE routes as the simulator composes them), the best block of 2000 calls."""
    from forwarding.plane import Dataplane
    from tests.v6_helpers import line4_6, v6_tables

    t = v6_tables(line4_6())[router]
    proc = Dataplane(t).process
    out = proc(frame, in_if)
    assert out and out[0][0] != in_if, (router, out)  # forwarded, not an error
    clock = time.thread_time_ns
    best = float("inf")
    end = time.process_time() + seconds
    while time.process_time() < end:
        t0 = clock()
        for _ in range(2000):
            proc(frame, in_if)
        best = min(best, (clock() - t0) / 2000)
    return best


def bench_ipv6_inproc(reps: int, dur: float, sizes: list[int]) -> dict:
    """IPv6 rows in process (module docstring, part 5), each with `ratio_to_ipv4`."""
    from tests.fwd_helpers import mpls_frame, udp
    from tests.v6_helpers import CE1, CE2, frame6, line4_6, udp6, v6_tables
    from tests.v6_helpers import v6_tables as tables

    T = v6_tables(line4_6())
    out: dict = {}

    def v4(size: int, labels: int) -> bytes:
        return udp("192.168.1.1", "192.168.2.2", data=bytes(max(0, size - 42 - 4 * labels)))

    def v6(size: int, labels: int) -> bytes:
        return udp6(CE1, CE2, data=bytes(max(0, size - 62 - 4 * labels)))

    def lbl(r: str, fec: str) -> int:
        return next(k for k, e in T[r].ilm.items() if str(e.entry.fec) == fec)

    lo2 = "10.255.0.4/32"  # pe2's loopback: the LSP 6PE rides on
    for size in sizes:
        pairs = {  # name: ((router, in_if, IPv4 frame), (router, in_if, IPv6 frame))
            "push": (("pe1", "eth1", frame6(T["pe1"], "eth1", b"")[:12] + b"\x08\x00" + v4(size, 0)),
                     ("pe1", "eth1", frame6(T["pe1"], "eth1", v6(size, 0)))),
            "swap": (("p1", "eth1", mpls_frame(T["p1"], "eth1", (lbl("p1", "192.168.2.0/24"),),
                                               v4(size, 1))),
                     ("p1", "eth1", mpls_frame(T["p1"], "eth1", (lbl("p1", lo2), 4000),
                                               v6(size, 2)))),
            "egress": (("p2", "eth1", mpls_frame(T["p2"], "eth1", (lbl("p2", "192.168.2.0/24"),),
                                                 v4(size, 1))),
                       ("pe2", "eth2", mpls_frame(T["pe2"], "eth2", (4000,), v6(size, 1)))),
        }
        for name, (a, b) in pairs.items():
            ns4 = [_process_case(*a, dur) for _ in range(reps)]
            ns6 = [_process_case(*b, dur) for _ in range(reps)]
            m4, m6 = statistics.median(ns4), statistics.median(ns6)
            what6 = {"push": "6PE push (2 labels)", "swap": "swap, IPv6 under 2 labels",
                     "egress": "6PE egress (pop + IPv6 lookup)"}[name]
            what4 = {"push": "IPv4 push (1 label)", "swap": "swap, IPv4 under 1 label",
                     "egress": "IPv4 PHP pop"}[name]
            out[f"process {what4} {size} B"] = {"ns_per_frame": round(m4, 1),
                                                "trials": [round(x, 1) for x in ns4]}
            out[f"process {what6} {size} B"] = {"ns_per_frame": round(m6, 1),
                                                "trials": [round(x, 1) for x in ns6],
                                                "ratio_to_ipv4": round(m6 / m4, 3)}
            print(f"  {name} {size} B: IPv4 {m4:.0f} ns, IPv6 {m6:.0f} ns", flush=True)
        # the ring fast path swaps without looking under the labels
        ring = {}
        for key, labels, pkt in (("IPv4 under 1 label", 1, v4), ("IPv6 under 2 labels", 2, v6)):
            def mk(t, k, labels=labels, pkt=pkt, size=size):
                stack = (lbl("p1", lo2),) if labels == 1 else (lbl("p1", lo2), 4000)
                return mpls_frame(t, "eth1", stack, pkt(size, labels))
            ring[key] = [_inproc_case6("p1", "eth1", mk, 32, dur, tables) for _ in range(reps)]
        m4, m6 = (statistics.median(ring[k]) for k in ring)
        out[f"ring swap, IPv4 under 1 label {size} B"] = {
            "ns_per_frame": round(m4, 1), "trials": [round(x, 1) for x in ring["IPv4 under 1 label"]]}
        out[f"ring swap, IPv6 under 2 labels {size} B"] = {
            "ns_per_frame": round(m6, 1), "trials": [round(x, 1) for x in ring["IPv6 under 2 labels"]],
            "ratio_to_ipv4": round(m6 / m4, 3)}
        print(f"  ring swap {size} B: IPv4 {m4:.0f} ns, IPv6 {m6:.0f} ns", flush=True)
    return out


def _inproc_case6(router: str, in_if: str, mk, run: int, seconds: float, tables) -> float:
    """`_inproc_case` (FastPath.mpls, scalar) on the line4_6 tables."""
    import numpy as np

    from forwarding.ioloop import FastPath
    from tests.v6_helpers import line4_6

    t = tables(line4_6())[router]
    frames = [mk(t, k) for k in range(run)]
    rx, txf = _inproc_rings(frames)
    txs = {name: txf() for name in t.interfaces}
    fp = FastPath(t, txs, vector=False)
    mac_ = t.interfaces[in_if].mac
    rx_st = np.frombuffer(rx.ring, np.uint32).reshape(run, -1)[:, 0]
    tx_st = [np.frombuffer(x.ring, np.uint32).reshape(x.nframes, -1)[:, 0] for x in txs.values()]
    got, fwd, slow = fp.mpls(rx, mac_, run)
    assert got == fwd == run and not slow, (router, got, fwd, len(slow))
    clock = time.thread_time_ns
    best = float("inf")
    end = time.process_time() + seconds
    while time.process_time() < end:
        spent = 0
        for _ in range(20):
            rx_st[:] = 1
            for st in tx_st:
                st[:] = 0
            t0 = clock()
            fp.mpls(rx, mac_, run)
            spent += clock() - t0
        best = min(best, spent / (20 * run))
    return best


# ---------------------------------------------------------------- report


def table(out: dict) -> str:
    rows = ["| test | kernel loss-free | LSR loss-free | ratio (paired) | LSR flooded "
            "| flooded / own loss-free | kernel flooded | load |", "|---|---|---|---|---|---|---|---|"]
    for part in ("swap", "e2e"):
        for size, v in out.get(part, {}).items():
            k, ls = v["kernel"], v["lsr"]
            lim = " (generator-limited)" if k["generator_limited"] else ""
            rows.append(f"| {part} {size} | {k['loss_free']:,}/s{lim} | {ls['loss_free']:,}/s | "
                        f"{v['ratio']:.2f} ({v['ratio_paired_median']:.2f}) | {ls['flood']:,}/s | {v['lsr_flood_vs_own_loss_free']:.2f} | "
                        f"{k['flood']:,}/s | {min(k['load'] + ls['load']):.1f}-"
                        f"{max(k['load'] + ls['load']):.1f} |")
            for m, x in v.items():
                if isinstance(x, dict) and m not in ("kernel", "lsr"):
                    rows.append(f"| {part} {size} {m} | | {x['loss_free']:,}/s | "
                                f"{x['ratio_to_kernel']:.2f} | {x['flood']:,}/s | | | |")
    for name, v in out.get("up", {}).items():
        rows.append(f"| lab up {name} ({v['routers']} routers) | | {v['up_seconds']} s | | "
                    f"PSS {v['router_pss_mb_total']} MB total, {v['router_pss_mb_each']} MB/router | | | |")
    if "inproc" in out:  # a table of its own
        if len(rows) == 2:
            rows = []
        rows += ["", "| in-process fast path | ns/frame (CPU) | frames/s of CPU | trials |",
                 "|---|---|---|---|"]
        for name, v in out["inproc"].items():
            rows.append(f"| {name} | {v['ns_per_frame']:,.0f} | {1e9 / v['ns_per_frame']:,.0f} | "
                        f"{' / '.join(f'{x:,.0f}' for x in v['trials'])} |")
    if "ipv6" in out:
        if len(rows) == 2:
            rows = []
        rows += ["", "| IPv6 (6PE) in process | ns/frame (CPU) | frames/s of CPU | IPv6 / IPv4 |",
                 "|---|---|---|---|"]
        for name, v in out["ipv6"].items():
            r = f"{v['ratio_to_ipv4']:.2f}" if "ratio_to_ipv4" in v else ""
            rows.append(f"| {name} | {v['ns_per_frame']:,.0f} | {1e9 / v['ns_per_frame']:,.0f} "
                        f"| {r} |")
        for size, v in out.get("swap6", {}).items():
            x, k = v["lsr-ipv6"], v["lsr"]
            rows.append(f"| swap chain {size}: labelled IPv6 {x['loss_free']:,}/s, labelled IPv4 "
                        f"{k['loss_free']:,}/s (loss-free, lab) | | | {x['ratio_to_ipv4']:.2f} |")
    return "\n".join(rows).strip("\n")


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_dataplane")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dur", type=float, default=1.0, help="seconds per trial")
    ap.add_argument("--sizes", default="60,1000", help="frame sizes without FCS")
    ap.add_argument("--only", choices=["swap", "e2e", "up", "inproc", "ipv6", "ipv6-inproc"],
                    help="inproc: the fast path in this process, ns per frame (no root); "
                    "ipv6: the IPv6 rows (6PE), ipv6-inproc: those of them needing no root")
    ap.add_argument("--extra", action="store_true",
                    help="also kernel-inline (no RPS) and lsr-rps (RPS to the LSR core) for swap, "
                    "lsr-2cores (routers not pinned) for e2e")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.only not in ("inproc", "ipv6-inproc") and os.geteuid() != 0:
        print("bench_dataplane: needs root (except --only inproc)", file=sys.stderr)
        return 2
    sizes = [int(x) for x in a.sizes.split(",")]
    out: dict = {"cpus": {"sender": SENDER_CPU, "lsr": LSR_CPU}, "load_start": loadavg()}
    if a.only in (None, "inproc"):
        print("inproc:", flush=True)
        out["inproc"] = bench_inproc(a.reps, a.dur, sizes)
    if a.only in (None, "swap"):
        print("swap:", flush=True)
        out["swap"] = bench_swap(a.reps, a.dur, sizes, ["kernel", "lsr"] + (
            ["kernel-inline", "lsr-rps"] if a.extra else []))
    if a.only in (None, "e2e"):
        print("e2e:", flush=True)
        out["e2e"] = bench_e2e(a.reps, a.dur, sizes, a.extra)
    if a.only in (None, "up"):
        print("up:", flush=True)
        out["up"] = bench_up()
    if a.only in (None, "ipv6", "ipv6-inproc"):
        print("ipv6:", flush=True)
        out["ipv6"] = bench_ipv6_inproc(a.reps, a.dur, sizes)
    if a.only in (None, "ipv6"):
        print("swap6:", flush=True)
        out["swap6"] = bench_swap(a.reps, a.dur, sizes, ["kernel", "lsr", "lsr-ipv6"])
    out["load_end"] = loadavg()
    print(table(out))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

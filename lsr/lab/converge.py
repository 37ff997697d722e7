"""`lsr lab converge NAME --fail A-B`: fail a link under a probe stream, report the timeline.

A sender in a host namespace sends a steady UDP stream (default 1000 packets/s,
sequence numbers) to a host behind the other end of the affected LSPs (chosen
automatically: hosts whose LFIB path crosses A-B), while two processes in the
destination host's namespace watch it: a capture (AF_PACKET, arrival time per
sequence number) from which this report computes the loss, the outage and the
first packet after it (on the new path), and an ordinary UDP receiver that
counts distinct sequence numbers on its own (`receiver_lost`, the independent
count the report's loss must equal). Router events (LDP session / adjacency
loss, Label Withdraws sent, LFIB updates) come with timestamps from every
router's runtime (`oam_events`). Times are milliseconds from the moment the
link was set down. The link is restored afterwards unless `keep_down`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lsr
from lsr.errors import LsrError

PROBE_PORT = 47000


def _host_ip(topo: Any, host: str) -> str:
    return str(next(iter(topo.nodes[host].interfaces.values())).address.ip)


def _host_if(topo: Any, host: str) -> str:
    return next(iter(topo.nodes[host].interfaces))


def _pe(topo: Any, host: str) -> str:
    return next(iter(topo.nodes[host].interfaces.values())).peer_node


def choose_hosts(name: str, topo: Any, a: str, b: str) -> tuple[str, str]:
    """The first (source, destination) host pair whose LFIB path crosses the a-b link."""
    from lsr.lab.lsp import live_lfibs
    from lsr.oam.validate import walk_lsp

    lfibs, _ = live_lfibs(name)
    hosts = [h.name for h in topo.hosts]
    for h1 in hosts:
        for h2 in hosts:
            if h1 == h2:
                continue
            fec = next(iter(topo.nodes[h2].interfaces.values())).address.network
            w = walk_lsp(topo, lfibs, _pe(topo, h1), fec)
            for p in w.paths:
                if any({x, y} == {a, b} for x, y in zip(p, p[1:], strict=False)):
                    return h1, h2
    raise LsrError(f"no host pair of lab '{name}' has an LSP across {a}-{b}: give --from/--to")


def _spawn(name: str, node: str, args: list[str]) -> subprocess.Popen:
    from lsr.lab.state import ns_name

    env = dict(os.environ)
    root = str(Path(lsr.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.Popen(["ip", "netns", "exec", ns_name(name, node), sys.executable, "-m",
                          "lsr.lab.probe_stream", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline() if p.stdout else ""
    if line.strip() != "ready":
        p.kill()
        err = p.stderr.read() if p.stderr else ""
        raise LsrError(f"probe {args[0]} in {node} failed to start: {err.strip()[-200:]}")
    return p


def _result(p: subprocess.Popen, timeout: float) -> dict[str, Any]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise LsrError("probe process did not finish") from None
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise LsrError(f"probe process failed: {err.strip()[-200:]}")
    return json.loads(lines[-1])


def analyse(arrivals: list[list[float]], total: int, t_fail: float) -> dict[str, Any]:
    """Loss, outage and first packet after the outage from (seq, arrival time) pairs."""
    got = {int(s): t for s, t in arrivals}
    lost = [s for s in range(total) if s not in got]
    out: dict[str, Any] = {"received": len(got), "lost": len(lost), "outage_ms": 0.0,
                           "last_before": None, "first_after": None}
    if not lost:
        return out
    before = [s for s in got if s < lost[0]]
    after = [s for s in got if s > lost[-1]]
    if before:
        out["last_before"] = {"seq": max(before), "t_ms": round((got[max(before)] - t_fail) * 1000, 3)}
    if after:
        out["first_after"] = {"seq": min(after), "t_ms": round((got[min(after)] - t_fail) * 1000, 3)}
    if before and after:
        out["outage_ms"] = round((got[min(after)] - got[max(before)]) * 1000, 3)
    return out


def converge(name: str, a: str, b: str, *, src: str | None = None, dst: str | None = None,
             rate: int = 1000, before: float = 1.0, after: float = 2.0,
             keep_down: bool = False) -> dict[str, Any]:
    """Run the measurement; returns the JSON of `lsr lab converge --json` (docs/cli.md)."""
    import lsr.lab
    from lsr.lab import netns

    topo = lsr.lab.topology(name)
    for n in (a, b):
        if n not in topo.nodes:
            raise LsrError(f"lab '{name}' has no node '{n}'")
    netns.find_link(topo, a, b)
    if (src is None) != (dst is None):
        raise LsrError("give both --from and --to, or neither (chosen automatically)")
    if src is None or dst is None:
        src, dst = choose_hosts(name, topo, a, b)
    for h in (src, dst):
        if h not in topo.nodes or topo.nodes[h].is_router:
            raise LsrError(f"lab '{name}' has no host '{h}'")
    seconds = before + after
    until = time.time() + seconds + 3.0
    port = PROBE_PORT
    recv = _spawn(name, dst, ["recv", str(port), repr(until)])
    sniff = _spawn(name, dst, ["sniff", _host_if(topo, dst), str(port), repr(until)])
    send = None
    try:
        send = _spawn(name, src, ["send", _host_ip(topo, dst), str(port), str(rate), str(seconds)])
        time.sleep(before)
        t_fail = time.time()
        lsr.lab.link(name, a, b, up=False)
        t_cmd = time.time()
        sent = _result(send, seconds + 10)
        rx = _result(recv, until - time.time() + 10)
        cap = _result(sniff, until - time.time() + 10)
    finally:
        for p in (send, recv, sniff):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()
    events = []
    for r in topo.routers:
        try:
            ev = lsr.lab.query(name, r.name, "oam_events", since=t_fail - 0.001)
        except (OSError, LsrError):
            continue
        for e in ev["events"]:
            events.append({**e, "router": r.name})
    converged = None
    if not keep_down:
        lsr.lab.link(name, a, b, up=True)
        converged = round(lsr.lab.wait_converged(name, 30), 3)
    stats = analyse(cap["arrivals"], sent["total"], t_fail)
    timeline = [{"t_ms": 0.0, "router": None, "event": "link down", "detail": f"{a}-{b}"},
                {"t_ms": round((t_cmd - t_fail) * 1000, 3), "router": None,
                 "event": "link down applied", "detail": "veths down, every router told"}]
    firsts: dict[tuple[str, str], dict[str, Any]] = {}
    withdraws = 0
    lfib_updates = 0
    for e in sorted(events, key=lambda e: e["t"]):
        kind = e["event"]
        if kind == "withdraw_sent":
            withdraws += e["count"]
        if kind == "lfib":
            lfib_updates += 1
        label = {"ldp": "LDP", "withdraw_sent": "withdraws sent", "lfib": "LFIB updated",
                 "mapping_sent": "mappings sent"}[kind]
        key = (e["router"], label if kind != "ldp" else e["text"])
        if key in firsts:
            continue
        detail = e.get("text") or (f"{e['count']} messages" if "count" in e else
                                   f"ftn +{e['ftn_set']}/-{e['ftn_del']} ilm +{e['ilm_set']}/-{e['ilm_del']}")
        firsts[key] = {"t_ms": round((e["t"] - t_fail) * 1000, 3), "router": e["router"],
                       "event": label if kind != "ldp" else "LDP " + ("adjacency/session loss"
                                                                        if "down" in e["text"] or "adjacency" in e["text"]
                                                                        else "session up"),
                       "detail": detail}
    timeline += list(firsts.values())
    if stats["last_before"]:
        timeline.append({"t_ms": stats["last_before"]["t_ms"], "router": None,
                         "event": "last probe before the outage", "detail": f"seq {stats['last_before']['seq']}"})
    if stats["first_after"]:
        timeline.append({"t_ms": stats["first_after"]["t_ms"], "router": None,
                         "event": "first probe on the new path", "detail": f"seq {stats['first_after']['seq']}"})
    timeline.sort(key=lambda e: e["t_ms"])
    return {
        "lab": name, "link": f"{a}-{b}", "restored": not keep_down, "reconverged_seconds": converged,
        "probe": {"from": src, "to": dst, "rate": rate, "sent": sent["sent"], "received": stats["received"],
                  "lost": sent["total"] - stats["received"], "outage_ms": stats["outage_ms"],
                  "receiver_received": rx["received"], "receiver_lost": rx["lost"],
                  "receiver_duplicates": rx["duplicates"]},
        "withdraws_sent": withdraws, "lfib_updates": lfib_updates, "timeline": timeline,
    }

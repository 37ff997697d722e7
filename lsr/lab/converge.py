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
link was set down. The link is restored afterwards unless `keep_down` (also when
the measurement fails half-way).

Both receivers stop at the same moment, a grace period after the sender's last
probe (they are told on their standard input), so they count the same probes
however long the three processes took to start on a loaded machine. `analyse` is
the pure computation on the resulting timeline.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lsr.errors import LsrError

PROBE_PORT = 47000
GRACE = 0.5  # s after the last probe was sent: the receivers stop then (stragglers)
PROBE_SCRIPT = str(Path(__file__).with_name("probe_stream.py"))  # stdlib only: starts fast


def _host_ip(topo: Any, host: str) -> str:
    return str(next(iter(topo.nodes[host].interfaces.values())).address.ip)


def _host_if(topo: Any, host: str) -> str:
    return next(iter(topo.nodes[host].interfaces))


def _pe(topo: Any, host: str) -> str:
    return next(iter(topo.nodes[host].interfaces.values())).peer_node


def choose_hosts(name: str, topo: Any, a: str, b: str) -> tuple[str, str]:
    """The first (source, destination) host pair whose LFIB path crosses the a-b link."""
    return _hosts_where(name, topo, lambda p: any({x, y} == {a, b} for x, y in
                                                  zip(p, p[1:], strict=False)),
                        f"an LSP across {a}-{b}")


def choose_hosts_via(name: str, topo: Any, router: str) -> tuple[str, str]:
    """The first (source, destination) host pair whose LFIB path has `router` in transit."""
    return _hosts_where(name, topo, lambda p: router in p[1:-1], f"an LSP through {router}")


def _hosts_where(name: str, topo: Any, crosses: Callable[[list[str]], bool],
                 what: str) -> tuple[str, str]:
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
            if any(crosses(list(p)) for p in w.paths):
                return h1, h2
    raise LsrError(f"no host pair of lab '{name}' has {what}: give --from/--to")


def _spawn(name: str, node: str, args: list[str]) -> subprocess.Popen:
    """Start a probe_stream process in `node`'s namespace (`_ready` waits for it)."""
    from lsr.lab.state import ns_name

    return subprocess.Popen(["ip", "netns", "exec", ns_name(name, node), sys.executable,
                             PROBE_SCRIPT, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ready(p: subprocess.Popen, node: str, mode: str) -> None:
    line = p.stdout.readline() if p.stdout else ""
    if line.strip() != "ready":
        p.kill()
        err = p.stderr.read() if p.stderr else ""
        raise LsrError(f"probe {mode} in {node} failed to start: {err.strip()[-200:]}")


def _result(p: subprocess.Popen, timeout: float, stop_at: float | None = None) -> dict[str, Any]:
    """The JSON a probe process prints; `stop_at`: tell a receiver when to stop."""
    try:
        out, err = p.communicate(None if stop_at is None else f"{stop_at!r}\n", timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise LsrError("probe process did not finish") from None
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise LsrError(f"probe process failed: {err.strip()[-200:]}")
    return json.loads(lines[-1])


def analyse(sent_at: Sequence[float], arrivals: Sequence[Sequence[float]],
            t_fail: float) -> dict[str, Any]:
    """Loss, outage and recovery from a probe timeline: `sent_at[s]` is when probe s was
    sent, `arrivals` (seq, arrival time[, IP TTL]) entries, `t_fail` when the link was set
    down (absolute seconds, one clock).

    Probes sent before `t_fail` and lost are not the failure's loss: `lost_before_failure`
    counts them (the path was losing traffic already). The outage is the gap in arrivals
    around the loss after the failure: from the last probe that arrived before it (the
    lost probes right before the first one lost after `t_fail` belong to the gap, even
    if sent before `t_fail`) to the first probe that arrived after the last lost one.
    If none arrived after it, traffic did not recover within the window: `recovered`
    is false, `outage_ms` None and `outage_at_least_ms` runs to the last probe sent.
    `new_path` is the first probe that arrived on the path of another length the flow
    settled on (`path_change`), whether or not any was lost; `looped` the probes that went
    round a transient loop meanwhile (`looped`).
    """
    total = len(sent_at)
    got = {int(a[0]): a[1] for a in arrivals if 0 <= int(a[0]) < total}
    lost = [s for s in range(total) if s not in got]
    early = [s for s in lost if sent_at[s] < t_fail]
    late = [s for s in lost if sent_at[s] >= t_fail]

    def at(seq: int, t: float) -> dict[str, Any]:
        return {"seq": seq, "t_ms": round((t - t_fail) * 1000, 3)}

    out: dict[str, Any] = {
        "received": len(got), "lost": len(lost), "lost_before_failure": len(early),
        "first_lost_before_failure": at(early[0], sent_at[early[0]]) if early else None,
        "recovered": True, "outage_ms": 0.0, "outage_at_least_ms": None,
        "last_before": None, "first_after": None,
        "outages": gaps(sent_at, got, late[0], t_fail) if late else [],
        "new_path": path_change([a for a in arrivals if 0 <= int(a[0]) < total], t_fail),
        "looped": looped([a for a in arrivals if 0 <= int(a[0]) < total], t_fail)}
    if not late:
        return out
    start, end = late[0], late[-1]  # end is the last lost probe: end + 1 arrived
    while start > 0 and start - 1 not in got:
        start -= 1
    if start > 0:
        out["last_before"] = at(start - 1, got[start - 1])
    t_from = got[start - 1] if start > 0 else sent_at[0]  # nothing ever arrived before
    if end + 1 < total:
        out["first_after"] = at(end + 1, got[end + 1])
        out["outage_ms"] = round((got[end + 1] - t_from) * 1000, 3)
    else:
        out["recovered"] = False
        out["outage_ms"] = None
        out["outage_at_least_ms"] = round(max(0.0, sent_at[-1] - t_from) * 1000, 3)
    return out


def path_change(arrivals: Sequence[Sequence[float]], t_fail: float) -> dict[str, Any] | None:
    """The first probe to arrive after `t_fail` on the path the flow settled on: with the
    IP TTL of the last arrivals, another than the last one before `t_fail` (each router
    on the way takes one off). Found even when no probe was lost (a failure the routers
    repair before the next probe), which a gap in arrivals cannot show. Probes that
    crossed more routers than both paths (a transient loop while the routers converge)
    are not it: `looped` counts them. None if the settled TTL is the old one (a path of
    the same length, the pipe TTL model), nothing arrived before `t_fail`, or the
    arrivals carry no TTL."""
    timed = sorted((a[1], int(a[0]), int(a[2])) for a in arrivals if len(a) > 2)
    before = [ttl for t, _, ttl in timed if t < t_fail]
    if not before:
        return None
    old, final = before[-1], timed[-1][2]
    if final == old:
        return None
    for t, seq, ttl in timed:
        if t >= t_fail and ttl == final:
            return {"seq": seq, "t_ms": round((t - t_fail) * 1000, 3), "ttl_before": old,
                    "ttl": ttl}
    return None


def looped(arrivals: Sequence[Sequence[float]], t_fail: float) -> dict[str, Any] | None:
    """Probes that arrived after `t_fail` with a lower IP TTL than both the path before
    and the one settled on: they went round a loop between routers that had not all
    converged (a micro-loop) before getting out. None if there were none."""
    timed = sorted((a[1], int(a[0]), int(a[2])) for a in arrivals if len(a) > 2)
    before = [ttl for t, _, ttl in timed if t < t_fail]
    if not before:
        return None
    floor = min(before[-1], timed[-1][2])
    hit = [(t, seq, ttl) for t, seq, ttl in timed if t >= t_fail and ttl < floor]
    if not hit:
        return None
    t, seq, ttl = hit[0]
    return {"probes": len(hit), "first_seq": seq, "t_ms": round((t - t_fail) * 1000, 3),
            "lowest_ttl": min(x[2] for x in hit), "ttl_floor": floor}
    old = before[-1]
    for t, seq, ttl in timed:
        if t >= t_fail and ttl != old:
            return {"seq": seq, "t_ms": round((t - t_fail) * 1000, 3), "ttl_before": old,
                    "ttl": ttl}
    return None


def gaps(sent_at: Sequence[float], got: dict[int, float], first: int,
         t_ref: float) -> list[dict[str, Any]]:
    """Every run of consecutive lost probes from probe `first` on, each an outage of its
    own: `got` maps sequence -> arrival time. A run's gap is measured like `analyse`'s
    outage, from the arrival of the probe before it to the arrival of the probe after it
    (None if none arrived after it: not recovered); times in ms from `t_ref`. Two runs
    mean traffic came back in between and was lost again (a second outage)."""
    total = len(sent_at)
    runs: list[dict[str, Any]] = []
    seq = first
    while seq < total:
        if seq in got:
            seq += 1
            continue
        start = seq
        while start > 0 and start - 1 not in got:  # the run began before `first`
            start -= 1
        end = seq
        while end + 1 < total and end + 1 not in got:
            end += 1
        t_from = got[start - 1] if start > 0 else sent_at[0]
        t_to = got.get(end + 1)
        runs.append({"first_lost": start, "last_lost": end, "lost": end - start + 1,
                     "from_ms": round((t_from - t_ref) * 1000, 3),
                     "to_ms": None if t_to is None else round((t_to - t_ref) * 1000, 3),
                     "gap_ms": None if t_to is None else round((t_to - t_from) * 1000, 3)})
        seq = end + 2
    return runs


def converge(name: str, a: str, b: str, *, src: str | None = None, dst: str | None = None,
             rate: int = 1000, before: float = 1.0, after: float = 2.0,
             keep_down: bool = False) -> dict[str, Any]:
    """Run the measurement; returns the JSON of `lsr lab converge --json` (docs/cli.md)."""
    import lsr.lab
    from lsr.lab import netns

    topo = lsr.lab.topology(name)
    link = topo.links[netns.find_link(topo, a, b)]
    src, dst = _endpoints(topo, src, dst,
                          lambda: choose_hosts(name, topo, link.a[0], link.b[0]))

    def fail() -> list[dict[str, Any]]:
        lsr.lab.link(name, a, b, up=False)
        return [{"event": "link down applied", "detail": "both veth ends down (carrier)"}]

    def restore() -> None:
        if not keep_down:
            lsr.lab.link(name, a, b, up=True)

    run = _probe_run(name, topo, src, dst, rate, before, after, fail, restore)
    converged = None
    if not keep_down:
        restore()
        converged = round(lsr.lab.wait_converged(name, 30), 3)
    first = {"t_ms": 0.0, "router": None, "event": "link down", "detail": topo.link_name(link)}
    return {"lab": name, "link": topo.link_name(link), "restored": not keep_down,
            "reconverged_seconds": converged, **_report(topo, run, first, rate, src, dst)}


def restart(name: str, router: str, *, kill: bool = False, src: str | None = None,
            dst: str | None = None, rate: int = 100, before: float = 1.0,
            after: float = 10.0) -> dict[str, Any]:
    """Restart `router`'s runtime under a probe stream through it: stop it (SIGTERM, or
    SIGKILL with `kill`), start it again at once, and report every outage the stream saw
    (`probe.outages`: one when the restart costs one gap; a second means traffic came
    back and was lost again). The JSON of `lsr lab converge --restart R --json`."""
    import lsr.lab
    from lsr.lab.control import node_start, node_stop, running

    topo = lsr.lab.topology(name)
    if router not in topo.nodes or not topo.nodes[router].is_router:
        raise LsrError(f"lab '{name}' has no router '{router}'")
    if not running(name, router):
        raise LsrError(f"router {router} of lab '{name}' is not running (lsr lab node start)")
    src, dst = _endpoints(topo, src, dst, lambda: choose_hosts_via(name, topo, router))

    def bounce() -> list[dict[str, Any]]:
        stopped = node_stop(name, router, sig=signal.SIGKILL if kill else signal.SIGTERM)
        t = time.time()
        node_start(name, router, wait=False)
        return [{"event": "router stopped", "t": t,
                 "detail": f"pids {stopped['stopped_pids']} ({'SIGKILL' if kill else 'SIGTERM'})"},
                {"event": "router started", "detail": "runtime spawned, start barrier released"}]

    def ensure_running() -> None:
        if not running(name, router):
            node_start(name, router, wait=False)

    run = _probe_run(name, topo, src, dst, rate, before, after, bounce, ensure_running)
    converged = round(lsr.lab.wait_converged(name, 30), 3)
    first = {"t_ms": 0.0, "router": router, "event": "restart",
             "detail": "kill -9, then start" if kill else "stop (SIGTERM), then start"}
    return {"lab": name, "router": router, "signal": "SIGKILL" if kill else "SIGTERM",
            "reconverged_seconds": converged, **_report(topo, run, first, rate, src, dst)}


def _endpoints(topo: Any, src: str | None, dst: str | None,
               choose: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    if (src is None) != (dst is None):
        raise LsrError("give both --from and --to, or neither (chosen automatically)")
    if src is None or dst is None:
        src, dst = choose()
    for h in (src, dst):
        if h not in topo.nodes or topo.nodes[h].is_router:
            raise LsrError(f"lab '{topo.name}' has no host '{h}'")
    return src, dst


def _probe_run(name: str, topo: Any, src: str, dst: str, rate: int, before: float,
               after: float, event: Callable[[], list[dict[str, Any]]],
               undo: Callable[[], None]) -> dict[str, Any]:
    """Probes src -> dst for before + after seconds; `event()` runs after `before` seconds
    (t = 0) and returns timeline entries (their own "t" or the time it returned). If the
    measurement fails once the event ran, `undo()` repairs the lab before the error is
    raised. Returns the probe results, t_event and the routers' events since it."""
    import lsr.lab

    seconds = before + after
    until = time.time() + seconds + 120.0  # a cap only: the receivers are told when to stop
    port = PROBE_PORT
    recv = sniff = send = None
    happened = False  # from here on undo the event whatever happens
    try:
        recv = _spawn(name, dst, ["recv", str(port), repr(until)])
        sniff = _spawn(name, dst, ["sniff", _host_if(topo, dst), str(port), repr(until)])
        _ready(recv, dst, "recv")
        _ready(sniff, dst, "sniff")
        send = _spawn(name, src, ["send", _host_ip(topo, dst), str(port), str(rate), str(seconds)])
        _ready(send, src, "send")
        time.sleep(before)
        t_event = time.time()
        happened = True
        marks = event()
        t_cmd = time.time()
        sent = _result(send, seconds + 30)
        stop_at = sent["t1"] + GRACE
        rx = _result(recv, stop_at - time.time() + 30, stop_at)
        cap = _result(sniff, stop_at - time.time() + 30, stop_at)
    except BaseException:
        if happened:
            with contextlib.suppress(Exception):  # the first error is the one to report
                undo()
        raise
    finally:
        for p in (send, recv, sniff):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()
    events = []
    for r in topo.routers:
        try:
            ev = lsr.lab.query(name, r.name, "oam_events", since=t_event - 0.001)
        except (OSError, LsrError):
            continue
        for e in ev["events"]:
            events.append({**e, "router": r.name})
    return {"sent": sent, "rx": rx, "cap": cap, "t_event": t_event, "events": events,
            "marks": [{"t": m.get("t", t_cmd), **m} for m in marks]}


def _report(topo: Any, run: dict[str, Any], first: dict[str, Any], rate: int, src: str,
            dst: str) -> dict[str, Any]:
    """The probe statistics and the timeline of one `_probe_run`."""
    sent, rx, cap, t_fail = run["sent"], run["rx"], run["cap"], run["t_event"]
    sent_at = [sent["t0"] + t for t in sent["sent_at"]]
    stats = analyse(sent_at, cap["arrivals"], t_fail)
    timeline = [first] + [{"t_ms": round((m["t"] - t_fail) * 1000, 3), "router": None,
                           "event": m["event"], "detail": m["detail"]} for m in run["marks"]]
    firsts: dict[tuple[str, str], dict[str, Any]] = {}
    withdraws = 0
    lfib_updates = 0
    for e in sorted(run["events"], key=lambda e: e["t"]):
        kind = e["event"]
        if kind == "withdraw_sent":
            withdraws += e["count"]
        if kind == "lfib":
            lfib_updates += 1
        label = {"ldp": "LDP", "ospf": "OSPF", "withdraw_sent": "withdraws sent",
                 "lfib": "LFIB updated", "mapping_sent": "mappings sent"}.get(kind, kind)
        key = (e["router"], label if kind not in ("ldp", "ospf") else e["text"])
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
    if stats["first_lost_before_failure"]:
        fl = stats["first_lost_before_failure"]
        timeline.append({"t_ms": fl["t_ms"], "router": None, "event": "loss before the failure",
                         "detail": f"seq {fl['seq']}: {stats['lost_before_failure']} probes "
                                   "sent before the link went down were lost"})
    if stats["last_before"]:
        timeline.append({"t_ms": stats["last_before"]["t_ms"], "router": None,
                         "event": "last probe before the outage", "detail": f"seq {stats['last_before']['seq']}"})
    for g in stats["outages"][1:]:
        timeline.append({"t_ms": g["from_ms"], "router": None, "event": "loss again",
                         "detail": f"seq {g['first_lost']}..{g['last_lost']}: {g['lost']} probes "
                                   "lost after traffic had come back"})
    loop = stats.get("looped")
    if loop:  # micro-loop: some probes went round between routers mid-convergence
        timeline.append({"t_ms": loop["t_ms"], "router": None, "event": "probes looped",
                         "detail": f"{loop['probes']} probe{'s' if loop['probes'] != 1 else ''} "
                                   f"from seq {loop['first_seq']} arrived with TTL down to "
                                   f"{loop['lowest_ttl']} (either path: {loop['ttl_floor']} or "
                                   "more): a transient loop while the routers converged"})
    moved, after = stats["new_path"], stats["first_after"]
    if moved:  # seen by its TTL: found even when nothing was lost
        hops = moved["ttl_before"] - moved["ttl"]
        timeline.append({"t_ms": moved["t_ms"], "router": None, "event": "first probe on the new path",
                         "detail": f"seq {moved['seq']}: TTL {moved['ttl_before']} -> {moved['ttl']} "
                                   f"({abs(hops)} hop{'s' if abs(hops) != 1 else ''} "
                                   f"{'more' if hops > 0 else 'fewer'})"})
    if after and not moved:  # the old path broke: the first probe after the gap took another
        timeline.append({"t_ms": after["t_ms"], "router": None, "event": "first probe on the new path",
                         "detail": f"seq {after['seq']} (the first after the outage)"})
    elif after and after["seq"] != moved["seq"]:
        timeline.append({"t_ms": after["t_ms"], "router": None, "event": "first probe after the outage",
                         "detail": f"seq {after['seq']}"})
    if not stats["recovered"]:
        timeline.append({"t_ms": round((sent_at[-1] - t_fail) * 1000, 3), "router": None,
                         "event": "not recovered", "detail": "no probe arrived after the outage "
                                                             "(end of the stream)"})
    timeline.sort(key=lambda e: e["t_ms"])
    return {
        "probe": {"from": src, "to": dst, "rate": rate, "sent": sent["sent"], "received": stats["received"],
                  "lost": sent["total"] - stats["received"], "outage_ms": stats["outage_ms"],
                  "recovered": stats["recovered"], "outage_at_least_ms": stats["outage_at_least_ms"],
                  "lost_before_failure": stats["lost_before_failure"],
                  "outages": stats["outages"], "new_path": stats["new_path"], "looped": stats["looped"],
                  "receiver_received": rx["received"], "receiver_lost": sent["total"] - rx["received"],
                  "receiver_duplicates": rx["duplicates"],
                  "capture_drops": cap["drops"], "receiver_drops": rx["drops"]},
        "withdraws_sent": withdraws, "lfib_updates": lfib_updates, "timeline": timeline,
    }

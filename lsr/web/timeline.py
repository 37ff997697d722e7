"""Snapshots of a running lab and what changed between two of them (pure: no I/O, no clock).

The page's event timeline is derived here: `lsr.web.collect` takes a `Snapshot`
every second or so, and `diff(prev, cur)` names what changed in between, stamped
with the later snapshot's time — a router's runtime stopping or starting, a link
going down or up, an LDP session or OSPF adjacency coming up or going down, LFIB
entries added, removed or changed. `link_rates` turns two snapshots' interface
counters into packets and bits per second per link direction. An event is seen
one sampling interval late at most; transitions inside one interval (a session
flapping twice) are not seen.

A router whose tables could not be read in a snapshot (no answer on its management
socket) is absent from that snapshot's `sessions` / `ospf` / `lfib`: nothing is
diffed for it, so a missed answer never shows up as a session going down.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lsr.teach.net import op_text

OPERATIONAL = "OPERATIONAL"  # RFC 5036 §2.5.4 session state
FULL = "Full"  # RFC 2328 §10.1 neighbor state
MAX_DETAILS = 8  # detail lines kept per LFIB event


@dataclass(frozen=True)
class LinkCounters:
    """Cumulative kernel counters of one link, read at one end: (a->b, b->a)."""

    packets: tuple[int, int]
    bytes: tuple[int, int]


@dataclass(frozen=True)
class Snapshot:
    t: float  # wall clock, seconds since the epoch
    alive: Mapping[str, bool]  # router -> its runtime (or FRR daemons) running
    sessions: Mapping[str, Mapping[str, str]]  # router -> LDP peer (node name) -> state
    ospf: Mapping[str, Mapping[str, str]]  # router -> OSPF neighbour -> state
    down_links: frozenset[int]
    lfib: Mapping[str, Mapping[str, str]]  # router -> entry key -> entry text
    counters: Mapping[int, LinkCounters] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)  # router -> why it was not read


@dataclass(frozen=True)
class Event:
    t: float
    kind: str  # lab | router | link | ldp | ospf | lfib | action
    level: str  # up | down | change | info
    text: str
    router: str | None = None
    details: tuple[str, ...] = ()

    def to_json(self, seq: int) -> dict[str, Any]:
        return {"seq": seq, "t": round(self.t, 3), "kind": self.kind, "level": self.level,
                "text": self.text, "router": self.router, "details": list(self.details)}


# ---------------------------------------------------------------- LFIB entries


def _nexthop_text(op: str, in_label: int | None, nh: Mapping[str, Any]) -> str:
    return (f"{op_text(op, in_label, tuple(nh.get('out_labels', ())))} via "
            f"{nh.get('neighbor')} ({nh.get('interface')})")


def lfib_entries(lfib: Mapping[str, Any]) -> dict[str, str]:
    """One router's LFIB (the JSON of `lsr lab lfib`) as entry key -> text, the form
    `diff` compares: `FTN 10.255.0.3/32` -> `push 2003 via p1 (eth2)`, `ILM 1005` ->
    `10.255.0.5/32: swap 1005->2005 via p1 (eth2)`; ECMP next hops joined by ` | `."""
    out: dict[str, str] = {}
    for e in lfib.get("ftn", []):
        nhs = sorted(_nexthop_text("push", None, nh) for nh in e.get("nexthops", []))
        out[f"FTN {e['fec']}"] = " | ".join(nhs) or "no next hop"
    for e in lfib.get("ilm", []):
        nhs = sorted(_nexthop_text(nh.get("op", "swap"), e["in_label"], nh)
                     for nh in e.get("nexthops", []))
        out[f"ILM {e['in_label']}"] = f"{e.get('fec')}: " + (" | ".join(nhs) or "no next hop")
    return out


# ---------------------------------------------------------------- diff


def _base(prev: Snapshot, table: Mapping[str, Mapping[str, str]], r: str) -> Mapping[str, str] | None:
    """The previous table of router r to diff against: its last one, an empty one if the
    router was not running then (a restart: everything it has is new), else None (it
    was running but not read: nothing to compare with)."""
    if r in table:
        return table[r]
    return None if prev.alive.get(r) else {}


Tables = Mapping[str, Mapping[str, str]]


def _flips(prev: Snapshot, cur: Snapshot, table: Callable[[Snapshot], Tables], kind: str,
           what: str, good: str) -> list[Event]:
    """Peers whose state in `table` (sessions, OSPF neighbours) crossed `good`
    (OPERATIONAL, Full) in either direction."""
    out = []
    for r, now in table(cur).items():
        before = _base(prev, table(prev), r)
        if before is None:
            continue
        for peer in sorted(set(before) | set(now)):
            was, is_ = before.get(peer, "none"), now.get(peer, "none")
            if (was == good) == (is_ == good):
                continue
            if is_ == good:
                out.append(Event(cur.t, kind, "up", f"{r}: {what} with {peer} up", r))
            else:
                # a peer missing from the table has no session/adjacency at all any more
                why = f"no {what.split()[-1]}" if is_ == "none" else is_
                out.append(Event(cur.t, kind, "down",
                                 f"{r}: {what} with {peer} down ({why})", r))
    return out


def _lfib_events(prev: Snapshot, cur: Snapshot, max_details: int) -> list[Event]:
    out = []
    for r, now in cur.lfib.items():
        before = _base(prev, prev.lfib, r)
        if before is None or before == now:
            continue
        added = [k for k in now if k not in before]
        removed = [k for k in before if k not in now]
        changed = [k for k in now if k in before and before[k] != now[k]]
        lines = ([f"~ {k}: {before[k]} -> {now[k]}" for k in changed]
                 + [f"+ {k}: {now[k]}" for k in added] + [f"- {k}: {before[k]}" for k in removed])
        if len(lines) > max_details:
            lines = lines[:max_details] + [f"... {len(lines) - max_details} more"]
        parts = [f"{len(xs)} {w}" for xs, w in ((changed, "changed"), (added, "added"),
                                                (removed, "removed")) if xs]
        out.append(Event(cur.t, "lfib", "change", f"{r}: LFIB " + ", ".join(parts), r,
                         tuple(lines)))
    return out


def diff(prev: Snapshot | None, cur: Snapshot, link_names: Mapping[int, str],
         max_details: int = MAX_DETAILS) -> list[Event]:
    """What changed from `prev` to `cur`, in this order: routers, links, LDP sessions,
    OSPF adjacencies, LFIBs. The first snapshot (`prev` None) gives one summary event."""
    if prev is None:
        alive = sum(1 for v in cur.alive.values() if v)
        down = ", ".join(link_names.get(i, str(i)) for i in sorted(cur.down_links)) or "none"
        return [Event(cur.t, "lab", "info",
                      f"watching: {alive}/{len(cur.alive)} routers running, links down: {down}")]
    out: list[Event] = []
    for r in [*cur.alive, *(r for r in prev.alive if r not in cur.alive)]:
        was, is_ = bool(prev.alive.get(r)), bool(cur.alive.get(r))
        if was != is_:
            out.append(Event(cur.t, "router", "up" if is_ else "down",
                             f"{r}: runtime {'running' if is_ else 'stopped'}", r))
    for i in sorted(cur.down_links ^ prev.down_links):
        up = i in prev.down_links
        out.append(Event(cur.t, "link", "up" if up else "down",
                         f"link {link_names.get(i, str(i))} {'up' if up else 'down'}"))
    out += _flips(prev, cur, lambda s: s.sessions, "ldp", "LDP session", OPERATIONAL)
    out += _flips(prev, cur, lambda s: s.ospf, "ospf", "OSPF adjacency", FULL)
    out += _lfib_events(prev, cur, max_details)
    return out


# ---------------------------------------------------------------- rates


@dataclass(frozen=True)
class LinkRate:
    pps: tuple[float, float]  # a->b, b->a
    bps: tuple[float, float]


def link_rates(prev: Snapshot | None, cur: Snapshot) -> dict[int, LinkRate]:
    """Per link, packets and bits per second over the interval between the two
    snapshots; a link is left out where either snapshot lacks its counters or one
    went backwards (its interface was recreated)."""
    out: dict[int, LinkRate] = {}
    if prev is None:
        return out
    dt = cur.t - prev.t
    if dt <= 0:
        return out
    for i, c in cur.counters.items():
        p = prev.counters.get(i)
        if p is None:
            continue
        dp = [c.packets[k] - p.packets[k] for k in (0, 1)]
        db = [c.bytes[k] - p.bytes[k] for k in (0, 1)]
        if min(*dp, *db) < 0:
            continue
        out[i] = LinkRate((dp[0] / dt, dp[1] / dt), (8 * db[0] / dt, 8 * db[1] / dt))
    return out


# ---------------------------------------------------------------- the page's state


def state_json(cur: Snapshot, rates: Mapping[int, LinkRate], links: Sequence[int],
               error: str | None = None) -> dict[str, Any]:
    """What the page draws: every router's health and every link's state and rates."""
    routers = {}
    for r, alive in cur.alive.items():
        sess = cur.sessions.get(r, {})
        nbrs = cur.ospf.get(r, {})
        routers[r] = {
            "alive": alive, "sessions": dict(sess),
            "sessions_up": sum(1 for s in sess.values() if s == OPERATIONAL),
            "ospf": dict(nbrs), "ospf_full": sum(1 for s in nbrs.values() if s == FULL),
            "lfib_entries": len(cur.lfib[r]) if r in cur.lfib else None,
            "error": cur.errors.get(r),
        }
    out_links = []
    for i in links:
        rate = rates.get(i)
        out_links.append({
            "index": i, "up": i not in cur.down_links,
            "pps": None if rate is None else [round(x, 1) for x in rate.pps],
            "bps": None if rate is None else [round(x) for x in rate.bps],
        })
    return {"time": round(cur.t, 3), "routers": routers, "links": out_links, "error": error}


class Timeline:
    """The last `size` events, numbered from 1 so the page asks only for newer ones."""

    def __init__(self, size: int = 1000) -> None:
        self.events: deque[tuple[int, Event]] = deque(maxlen=size)
        self.last = 0

    def add(self, events: Iterable[Event]) -> None:
        for e in events:
            self.last += 1
            self.events.append((self.last, e))

    def since(self, seq: int, limit: int = 200) -> list[dict[str, Any]]:
        """Events numbered above `seq`, oldest first, at most the newest `limit`."""
        new = [(s, e) for s, e in self.events if s > seq]
        return [e.to_json(s) for s, e in new[-limit:]]

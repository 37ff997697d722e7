"""The packet a report walks, and the table rows it used.

`pick_walk` chooses the default walk of `lsr report` (the rule is in its
docstring and in docs/cli.md); `used_rows` turns a `forwarding.walk` JSON into
the LFIB and LIB rows each hop used (`UsedRow`), so a report can list them
first and highlight them in every router's tables (`Used`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any

from forwarding.tables import RouterTables
from lsr.teach.net import Network, lsp_hops, pop_reason, resolve_fec

WALK_RULE = ("of every ordered pair of hosts (of routers when there are fewer than two "
             "hosts), the one whose packet is delivered across the most routers; a tie goes to "
             "the pair whose LSP has the most ECMP branches, then to the first in the file")


@dataclass(frozen=True)
class Choice:
    """The walk's two ends and why they were chosen."""

    src: str
    dst: str
    why: str


def _walk(topo: Any, tables: Mapping[str, RouterTables], a: str, b: str,
          family: int = 4) -> dict[str, Any]:
    from forwarding.walk import walk

    return walk(topo, tables, a, b, family=family)


def has_ipv6(topo: Any, node: str) -> bool:
    """Whether `node` has an IPv6 address (a `subnet6` link)."""
    return any(i.address6 is not None for i in topo.nodes[node].interfaces.values())


def _branches(net: Network, w: dict[str, Any]) -> int:
    """ECMP branches of the LSP the walk's first router takes toward its destination."""
    if not w["hops"] or ":" in w["dst"]:  # an IPv6 walk: its LSP is to the egress PE
        return 0
    try:
        tr = lsp_hops(net, w["hops"][0]["router"], resolve_fec(net.topo, w["dst"]))
    except Exception:  # noqa: BLE001  (a destination with no FEC: no LSP to count)
        return 0
    return len(tr.branches)


def pick_walk(net: Network, tables: Mapping[str, RouterTables], src: str | None = None,
              dst: str | None = None, family: int = 4) -> Choice | None:
    """SRC and DST when both are given; else the longest walk (WALK_RULE) among the pairs
    that keep the given end (`family` 6: among the nodes with IPv6 addresses). None when
    there are not two nodes to walk between."""
    topo = net.topo
    if src and dst:
        return Choice(src, dst, "given with --from/--to")
    hosts = [h.name for h in topo.hosts]
    routers = [r.name for r in topo.routers]
    if family == 6:
        hosts = [h for h in hosts if has_ipv6(topo, h)]
        routers = [r for r in routers if has_ipv6(topo, r)]
    ends = hosts if len(hosts) >= 2 else routers
    pairs = [(a, b) for a in ([src] if src else ends) for b in ([dst] if dst else ends)
             if a != b]
    if not pairs:
        return None
    walks = [(_walk(topo, tables, a, b, family), k) for k, (a, b) in enumerate(pairs)]

    def length(w: dict[str, Any]) -> tuple[bool, int]:
        return w["result"] == "delivered", sum(1 for h in w["hops"] if h["op"] != "deliver")

    top = max(length(w) for w, _ in walks)
    tied = [(w, k) for w, k in walks if length(w) == top]
    w, k = max(tied, key=lambda x: (_branches(net, x[0]) if len(tied) > 1 else 0, -x[1]))
    a, b = pairs[k]
    ecmp = _branches(net, w)
    one = "a host" if ends is hosts else "a router"
    if src:
        span = f"from {src} to {one}"
    elif dst:
        span = f"from {one} to {dst}"
    else:
        span = f"between two {'hosts' if ends is hosts else 'routers'}"
    why = f"the longest walk {span}: {top[1]} routers" + (
        f", {ecmp} ECMP branches" if ecmp > 1 else "")
    return Choice(a, b, why)


# ---------------------------------------------------------------- the rows a walk used


@dataclass
class UsedRow:
    """What one hop of a walk looked up: its LFIB row and the LDP binding behind it."""

    hop: int  # 1-based
    router: str
    table: str | None  # "ftn" | "ilm" | "rib" | "vrf" | "vpn" | "6pe" | None (delivered)
    key: str  # the FEC (FTN, RIB) or the in label (ILM)
    fec: str | None
    action: str  # "push 3047 via ams", "swap 10045 via pra", "forward to ce-bud"
    binding: str  # "local 3047; fra advertised 10045" or ""
    why: str  # "pops: egress ...", ECMP choice, drop reason
    anchor: str  # the id of the highlighted row in the router's tables ("" if none)
    leg: str = "packet"  # "packet" or "icmp"


@dataclass
class Used:
    """Rows to highlight: (router, FEC, neighbour) of FTN and LIB rows, (router, in label,
    neighbour) of ILM rows."""

    ftn: set[tuple[str, str, str]] = field(default_factory=set)
    ilm: set[tuple[str, int, str]] = field(default_factory=set)
    lib: set[tuple[str, str, str]] = field(default_factory=set)
    rows: list[UsedRow] = field(default_factory=list)
    # 6PE (RFC 4798): (router, IPv6 prefix) of the routes pushed, (router, label) popped
    six: set[tuple[str, str]] = field(default_factory=set)
    six_labels: set[tuple[str, int]] = field(default_factory=set)
    # VRF routes looked up (router, VRF, prefix) and VPN labels popped (router, label)
    vrf: set[tuple[str, str, str]] = field(default_factory=set)
    vpn: set[tuple[str, int]] = field(default_factory=set)

    def merge(self, other: Used) -> None:
        """Highlight `other`'s rows too (its `rows` stay its own)."""
        for k in ("ftn", "ilm", "lib", "six", "six_labels", "vrf", "vpn"):
            getattr(self, k).update(getattr(other, k))

    def routers(self) -> list[str]:
        """The routers of the packet's walk, in walk order, each once."""
        return list(dict.fromkeys(r.router for r in self.rows if r.leg == "packet"))


def anchor(kind: str, router: str, key: object) -> str:
    """An HTML id for a table row: 'ilm-p1-2003', 'ftn-pe1-192-168-2-0-24'."""
    safe = "".join(c if c.isalnum() else "-" for c in f"{router}-{key}")
    return f"{kind}-{safe}"


def _labels(xs: list[int]) -> str:
    return " ".join("imp-null" if x == 3 else str(x) for x in xs) if xs else "-"


def _binding(net: Network, router: str, fec: str, neighbor: str | None) -> tuple[str, str]:
    """(local label, the label `neighbor` advertised) for `fec` in `router`'s LIB."""
    for e in net.bindings.get(router, []):
        if e["fec"] != fec:
            continue
        local = e.get("local_label")
        remote = next((rm["label"] for rm in e.get("remote") or []
                       if rm["neighbor"] == neighbor), None)
        return (_labels([local]) if local is not None else "-",
                _labels([remote]) if remote is not None else "none")
    return "-", "none"


def _ilm_op(net: Network, router: str, label: int, neighbor: str | None) -> tuple[str, list[int]]:
    """The NHLFE op (`pop`, `swap`, `untagged`) and out labels the ILM row has."""
    for e in net.lfib_json["routers"].get(router, {}).get("ilm", []):
        if e["in_label"] == label:
            for nh in e["nexthops"]:
                if nh["neighbor"] == neighbor:
                    return nh.get("op", "swap"), nh["out_labels"]
    return "", []


def used_rows(net: Network, w: dict[str, Any]) -> Used:
    """The rows each hop of walk `w` used (and those of the ICMP error it caused)."""
    used = Used()
    _add(net, w["hops"], used, "packet")
    for h in w["hops"]:
        if h.get("icmp") and h["icmp"].get("hops"):
            _add(net, h["icmp"]["hops"], used, "icmp")
    return used


def _add(net: Network, hops: list[dict[str, Any]], used: Used, leg: str) -> None:
    from lsr.teach.walktext import ecmp_text

    for k, h in enumerate(hops, 1):
        r, nb, fec = h["router"], h["neighbor"], h.get("fec")
        notes = [ecmp_text(h)] if h.get("ecmp") else []
        if h["reason"]:
            notes.append(f"dropped: {h['reason']}")
        table = h.get("table")
        out = _labels(h["labels_out"])
        label = next((x for x in h["labels_in"] if x >= 16), None)
        if table == "ilm" and label is None:  # an ICMP error sent on along the LSP
            used.rows.append(UsedRow(k, r, "ilm", "", fec, f"push {out} via {nb}", "",
                                     "; ".join(["sent on along the LSP (RFC 3032 §2.3.2)",
                                                *notes]), "", leg))
        elif table == "ilm" and label is not None:
            op, outs = _ilm_op(net, r, label, nb)
            local, remote = _binding(net, r, fec, nb) if fec else ("-", "none")
            action = (f"{h['op']} {out}" if h["op"] != "pop" else "pop") + (
                f" via {nb}" if nb else "")
            if h["op"] == "drop":
                action = f"(would {op} {_labels(outs)})" if op else "drop"
            why = pop_reason(op, nb or "", outs) if op and h["op"] != "drop" else None
            notes = ([why] if why else []) + notes
            used.rows.append(UsedRow(k, r, "ilm", str(label), fec, action,
                                     f"local {local}; {nb} advertised {remote}" if nb else
                                     f"local {local}", "; ".join(notes),
                                     anchor("ilm", r, label), leg))
            if nb:
                used.ilm.add((r, label, nb))
                used.lib.add((r, fec or "", nb))
        elif table == "ftn":
            _, remote = _binding(net, r, fec or "", nb)
            if h["labels_out"]:
                action = f"push {out} via {nb}"
            else:
                action = f"no label, IP to {nb}"
                notes.insert(0, f"{nb} is the egress: it advertised imp-null")
            used.rows.append(UsedRow(k, r, "ftn", fec or "", fec, action,
                                     f"{nb} advertised {remote}", "; ".join(notes),
                                     anchor("ftn", r, fec), leg))
            if nb:
                used.ftn.add((r, fec or "", nb))
                used.lib.add((r, fec or "", nb))
        elif table in ("vrf", "vpn"):  # RFC 4364: a VRF port's lookup, or a VPN label
            key = fec or ""
            vrf = _vrf_of(net, r, h, label)
            if table == "vpn":
                key = str(label) if label is not None else ""
                action = "pop the VPN label, " + (f"to {nb}" if nb else "then the VRF decides")
                if label is not None:
                    used.vpn.add((r, label))
                if vrf and fec:
                    used.vrf.add((r, vrf, fec))
            else:
                action = (f"push {out} via {nb}" if h["labels_out"] else
                          f"IP forward to {nb}" if nb else h["op"])
                if vrf and fec:
                    used.vrf.add((r, vrf, fec))
            used.rows.append(UsedRow(k, r, table, key, fec, action, "(VPN: BGP, not LDP)",
                                     "; ".join(notes),
                                     anchor("vrf", r, f"{vrf}-{fec}") if vrf and fec else "",
                                     leg))
        elif table == "6pe":  # RFC 4798: the ingress's 6PE route, or the egress's label
            f6 = net.fib6s.get(r)
            route = f6.routes.get(ip_network(fec)) if f6 is not None and fec else None
            if not h["labels_in"]:
                egress = route.egress if route is not None and route.egress else "?"
                bound = f"{egress} bound {_labels([route.label])}" if route is not None else ""
                used.rows.append(UsedRow(k, r, "6pe", fec or "", fec, f"push {out} via {nb}",
                                         f"BGP: {bound}; LDP: {nb} advertised "
                                         f"{_labels(h['labels_out'][:-1])}", "; ".join(notes),
                                         anchor("6pe", r, fec), leg))
                used.six.add((r, fec or ""))
            else:
                popped = h["labels_in"][-1]
                what = "IPv6 explicit-null" if popped == 2 else "our 6PE label"
                used.rows.append(UsedRow(k, r, "6pe", str(popped), fec,
                                         f"pop, IPv6 lookup ({fec}): to {nb}",
                                         f"{what} (BGP)", "; ".join(notes),
                                         anchor("6pelabel", r, popped), leg))
                used.six_labels.add((r, popped))
        elif table == "rib":
            action = f"IP forward to {nb}" if nb else h["op"]
            used.rows.append(UsedRow(k, r, "rib", fec or "", fec, action, "(no label: IP)",
                                     "; ".join(notes), "", leg))
        else:
            used.rows.append(UsedRow(k, r, None, "", None,
                                     "delivered here" if h["op"] == "deliver" else h["op"], "",
                                     "; ".join(notes), "", leg))


def _vrf_of(net: Network, router: str, h: dict[str, Any], label: int | None) -> str | None:
    """The VRF a "vrf" hop looked up in (its in-port's) or a "vpn" hop's label belongs to."""
    if h.get("table") == "vpn" and label is not None:
        lf = net.lfibs.get(router)
        v = lf.vpn_ilm.get(label) if lf is not None else None
        return v.vrf if v is not None else None
    if h["in_interface"]:
        return net.topo.interface(router, h["in_interface"]).vrf
    return None

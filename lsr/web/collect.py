"""A running lab seen through the lab library, for the web page (`LabView`).

Everything is read the way the CLI reads it, in the same JSON: `lsr lab status`
(`lsr.lab.status`: runtimes, LDP sessions, links down by any means), `lsr lab lfib`,
`lsr lab ldp`, `lsr lab ospf` (the router's management socket), LSPs as `lsr draw
--lsp` walks them over the live LFIBs (`lsr.teach.net.lsp_hops`) and, on request, as
`lsr lsp traceroute --multipath` probes them (RFC 8029). Link changes go through
`lsr.lab.link`, as `lsr lab link` does.

Link rates come from the kernel's counters of each link's veth, read at one end:
`/proc/PID/net/dev` of a process running in that end's namespace (a router's
runtime, an FRR daemon) — a file read, no subprocess — or `ip -n NS -s -j link`
where neither end has one (a host behind a stopped router).
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import lsr.lab as lab
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.lab import frr
from lsr.lab.state import LabState, ns_name, pid_alive
from lsr.web import layout
from lsr.web.timeline import LinkCounters, Snapshot, lfib_entries

IfCounters = dict[str, tuple[int, int, int, int]]  # ifname -> rx bytes, rx pkts, tx bytes, tx pkts


def parse_net_dev(text: str) -> IfCounters:
    """/proc/net/dev -> interface -> (rx bytes, rx packets, tx bytes, tx packets)."""
    out: IfCounters = {}
    for line in text.splitlines()[2:]:
        if ":" not in line:
            continue
        name, rest = line.split(":", 1)
        f = rest.split()
        if len(f) >= 10:
            out[name.strip()] = (int(f[0]), int(f[1]), int(f[8]), int(f[9]))
    return out


def link_counters(topo: Topology, read: dict[str, IfCounters]) -> dict[int, LinkCounters]:
    """Per link, (a->b, b->a) packets and bytes from whichever end's counters were read:
    at end a, a->b is what a transmitted; at end b, what b received."""
    out: dict[int, LinkCounters] = {}
    for link in topo.links:
        for (node, ifname), forward in ((link.a, True), (link.b, False)):
            c = read.get(node, {}).get(ifname)
            if c is None:
                continue
            rxb, rxp, txb, txp = c
            if forward:
                out[link.index] = LinkCounters((txp, rxp), (txb, rxb))
            else:
                out[link.index] = LinkCounters((rxp, txp), (rxb, txb))
            break
    return out


class LabView:
    """One running lab: its layout, snapshots, tables, LSPs; link changes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.topo = lab.topology(name)  # "no lab named ..." if it is not up
        self.names = {str(n.lsr_id): n.name for n in self.topo.routers}
        self.pos, self.height = layout.positions(self.topo)

    # ------------------------------------------------------------ the drawing

    def link_names(self) -> dict[int, str]:
        return {ln.index: self.topo.link_name(ln) for ln in self.topo.links}

    def topology_json(self) -> dict[str, Any]:
        nodes = []
        for n in self.topo.nodes.values():
            x, y = self.pos[n.name]
            addr = [str(i.address) for i in n.interfaces.values()]
            nodes.append({"name": n.name, "kind": n.kind, "router": n.is_router,
                          "lsr_id": str(n.lsr_id) if n.is_router else None,
                          "address": None if n.is_router else ", ".join(addr), "x": x, "y": y})
        links = [{"index": ln.index, "name": self.topo.link_name(ln), "a": ln.a[0], "a_if": ln.a[1],
                  "b": ln.b[0], "b_if": ln.b[1], "subnet": str(ln.subnet), "cost": ln.cost}
                 for ln in self.topo.links]
        return {"lab": self.name, "topology": self.topo.name, "width": layout.WIDTH,
                "height": self.height, "nodes": nodes, "links": links}

    # ------------------------------------------------------------ snapshots

    def snapshot(self) -> Snapshot:
        t = time.time()
        st = lab.status(self.name)
        alive: dict[str, bool] = {}
        sessions: dict[str, dict[str, str]] = {}
        ospf: dict[str, dict[str, str]] = {}
        lfib: dict[str, dict[str, str]] = {}
        errors: dict[str, str] = {}
        for r in self.topo.routers:
            info = st["routers"].get(r.name, {})
            alive[r.name] = bool(info.get("alive"))
            if not alive[r.name]:
                continue
            if "error" in info:
                errors[r.name] = info["error"]
            elif "sessions" in info:
                sessions[r.name] = {self.names.get(p, p): str(s).rsplit(".", 1)[-1]
                                    for p, s in info["sessions"].items()}
            if r.kind == "lsr":  # FRR's through vtysh: only when its panel asks
                try:
                    ospf[r.name] = {n["neighbor"]: n["state"] for n in
                                    lab.query(self.name, r.name, "ospf", timeout=2)["neighbors"]}
                except (OSError, LsrError, KeyError) as e:
                    errors.setdefault(r.name, str(e))
        for r, doc in self._lfibs([r for r, a in alive.items() if a], errors).items():
            lfib[r] = lfib_entries(doc)
        return Snapshot(t, alive, sessions, ospf, frozenset(st["down_links"]), lfib,
                        self.counters(), errors)

    def _lfibs(self, routers: list[str], errors: dict[str, str]) -> dict[str, Any]:
        """The LFIBs of `routers` (`lsr lab lfib --json`): in one call (the lab's topology
        read once), or router by router when one of them does not answer."""
        try:
            return lab.lfib(self.name, routers)["routers"]
        except (OSError, LsrError):
            pass
        out = {}
        for r in routers:
            try:
                out.update(lab.lfib(self.name, [r])["routers"])
            except (OSError, LsrError) as e:
                errors.setdefault(r, str(e))
        return out

    def counters(self) -> dict[int, LinkCounters]:
        pids: dict[str, int] = {}
        for p in LabState(self.name).read().get("pids", []):
            parts = p["role"].split(":")
            if len(parts) >= 2 and parts[1] not in pids and pid_alive(p["pid"], p.get("start")):
                pids[parts[1]] = p["pid"]
        read: dict[str, IfCounters] = {}
        for link in self.topo.links:
            ends = [n for n in link.nodes if n in pids] or list(link.nodes)
            node = ends[0]
            if node in read:
                continue
            try:
                if node in pids:
                    with open(f"/proc/{pids[node]}/net/dev") as f:
                        read[node] = parse_net_dev(f.read())
                else:
                    read[node] = self._ip_counters(node)
            except (OSError, ValueError, subprocess.SubprocessError):
                continue  # the process just ended: the next sample reads the other end
        return link_counters(self.topo, read)

    def _ip_counters(self, node: str) -> IfCounters:
        p = subprocess.run(["ip", "-n", ns_name(self.name, node), "-s", "-j", "link", "show"],
                           capture_output=True, text=True, timeout=5)
        out: IfCounters = {}
        for i in json.loads(p.stdout or "[]"):
            s = i.get("stats64") or i.get("stats") or {}
            rx, tx = s.get("rx", {}), s.get("tx", {})
            out[i["ifname"]] = (rx.get("bytes", 0), rx.get("packets", 0), tx.get("bytes", 0),
                                tx.get("packets", 0))
        return out

    # ------------------------------------------------------------ one router

    def _router(self, router: str) -> None:
        n = self.topo.nodes.get(router)
        if n is None or not n.is_router:
            raise LsrError(f"lab '{self.name}' has no router '{router}'")

    def router(self, router: str) -> dict[str, Any]:
        """A router's tables in the JSON of the CLI: `lfib` as one router of `lsr lab lfib
        --json`, `ldp_neighbors` and `bindings` as `lsr lab ldp`, `ospf_neighbors` as `lsr
        lab ospf`; a table that could not be read is left out and named in `errors`."""
        self._router(router)
        n = self.topo.nodes[router]
        out: dict[str, Any] = {"router": router, "kind": n.kind, "lsr_id": str(n.lsr_id),
                               "errors": {}}
        parts = {
            "lfib": lambda: lab.lfib(self.name, [router])["routers"][router],
            "ldp_neighbors": lambda: lab.ldp(self.name, router, "neighbors"),
            "bindings": lambda: lab.ldp(self.name, router, "bindings")["bindings"],
            "ospf_neighbors": lambda: (frr.ospf_neighbors(self.name, self.topo, router)
                                       if frr.is_frr(self.topo, router) else
                                       lab.query(self.name, router, "ospf")["neighbors"]),
        }
        for key, get in parts.items():
            try:
                out[key] = get()
            except (OSError, LsrError, KeyError) as e:
                out["errors"][key] = str(e)
        return out

    # ------------------------------------------------------------ LSPs

    def ingress_of(self, node: str) -> str:
        """A router is its own ingress; a host's is the router it is attached to."""
        n = self.topo.nodes.get(node)
        if n is None:
            raise LsrError(f"lab '{self.name}' has no node '{node}'")
        if n.is_router:
            return node
        for iface in n.interfaces.values():
            if self.topo.nodes[iface.peer_node].is_router:
                return iface.peer_node
        raise LsrError(f"{node} is attached to no router")

    def lsp(self, src: str, dst: str, traceroute: bool = False) -> dict[str, Any]:
        """The LSP from `src` to `dst` (nodes; a host stands for its router at the ingress
        and for its subnet as the FEC): every ECMP branch with each hop's label operation,
        walked over the live LFIBs; with `traceroute`, also the RFC 8029 multipath LSP
        traceroute (the JSON of `lsr lsp traceroute --multipath --json`)."""
        from lsr.lab.lsp import LabSender, live_lfibs
        from lsr.teach.net import Network, egress_text, lsp_hops, resolve_fec

        ingress = self.ingress_of(src)
        if dst not in self.topo.nodes:
            raise LsrError(f"lab '{self.name}' has no node '{dst}'")
        if src == dst:
            raise LsrError("pick two different nodes")
        fec = resolve_fec(self.topo, dst)
        lfibs, stopped = live_lfibs(self.name)
        down = set(lab.status(self.name)["down_links"])  # by `lab link` or carrier
        net = Network(self.topo, {}, {}, f"lab {self.name}", down, lfibs)
        tr = lsp_hops(net, ingress, fec)

        def hop(h: Any) -> dict[str, Any]:
            return {"router": h.router, "neighbor": h.neighbor, "interface": h.interface,
                    "op": h.op, "in_label": h.in_label, "out_labels": list(h.out_labels),
                    "text": h.text}

        out: dict[str, Any] = {
            "from": src, "to": dst, "ingress": ingress, "fec": str(fec),
            "branches": [{"hops": [hop(h) for h in hops],
                          "egress": {"router": hops[-1].neighbor,
                                     "text": egress_text(net, hops[-1].neighbor)}}
                         for hops in tr.branch_hops if hops],
            "edges": [{"depths": sorted(d), **hop(h)} for d, h in tr.edges().values()],
            "problems": tr.problems, "stopped_routers": stopped,
        }
        if traceroute:
            from lsr.oam.lspping import lsp_traceroute

            out["traceroute"] = lsp_traceroute(LabSender(self.name, wait=0.5), ingress, fec,
                                               multipath=True)
        return out

    # ------------------------------------------------------------ changes

    def set_link(self, a: str, b: str, up: bool) -> dict[str, Any]:
        """Link a-b down or up, as `lsr lab link NAME A B down|up --no-wait`."""
        lab.link(self.name, a, b, up)
        return {"link": f"{a}-{b}", "state": "up" if up else "down"}

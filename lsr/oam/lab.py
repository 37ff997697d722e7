"""LSP ping / traceroute (RFC 8029) against a live lab or the simulator, and live validation.

Both back ends give the engines of `lsr.oam.trace` a `send(ttl, request[, dst])`:

* `LabSender`: real echo requests injected at the ingress router of a running
  lab through its management socket (`oam_probe`, see `lsr.lab.oam`): the
  router's runtime pushes the FTN labels with the asked label TTL, sends the
  frame through its dataplane and awaits the reply on UDP 3503 (§4.3, §4.6).
  The replying router is named from the reply's source address (the address of
  the interface the request arrived on).
* `sim_network(topo)`: `trace.LfibNetwork` over the LDP simulator's converged LFIBs.

`lsp_ping` / `lsp_traceroute` return the JSON documented in docs/cli.md
("lsr lsp"); `validate_live` checks a running lab: the topology's `expect:`
assertions and invariants over the live LFIBs, real pings between hosts, and
control plane vs data plane (the LSP traceroute path equals the LFIB path).
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import time
from collections.abc import Callable, Collection, Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from lsr.core.igp import Igp
from lsr.core.lfib import Lfib
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.oam.echo import LOCALHOST, Ddmap, EchoMessage, multipath_range
from lsr.oam.responder import tables_from_topology
from lsr.oam.trace import (
    DEFAULT_MULTIPATH_ADDRESSES,
    LfibNetwork,
    Reply,
    Sender,
    TraceResult,
    ping,
    traceroute,
)
from lsr.oam.validate import (
    CheckResult,
    expected_lsps,
    lfibs_from_json,
    normalize_neighbors,
    validate,
    walk_lsp,
)

DEFAULT_WAIT = 1.0  # seconds to wait for each echo reply
SAMPLE_PAIRS = 40  # (ingress, FEC) pairs traced by `validate_live` on big labs
_handles = itertools.count((os.getpid() & 0x7FFF) << 16)


def resolve_fec(topo: Topology, fec: str) -> IPv4Network:
    """A router name (its loopback /32), a host name (its subnet) or a prefix."""
    node = topo.nodes.get(fec)
    if node is not None:
        if node.is_router:
            return IPv4Network(f"{node.lsr_id}/32")
        for i in node.interfaces.values():
            return i.address.network
    try:
        return IPv4Network(fec, strict=False)
    except ValueError:
        raise LsrError(f"FEC '{fec}' is neither a node of {topo.name} nor an IPv4 prefix") from None


def check_router(topo: Topology, name: str) -> None:
    if name not in topo.nodes or not topo.nodes[name].is_router:
        raise LsrError(f"{topo.name}: no router named '{name}'")


def address_owners(topo: Topology) -> dict[IPv4Address, tuple[str, str | None]]:
    """Every router address -> (router, interface or None for the loopback)."""
    out: dict[IPv4Address, tuple[str, str | None]] = {}
    for r in topo.routers:
        out[r.lsr_id] = (r.name, None)
        for i in r.interfaces.values():
            out[i.address.ip] = (r.name, i.name)
    return out


# ---------------------------------------------------------------- live lab


class LabSender:
    """Echo requests from one router of a running lab (`oam_probe`)."""

    def __init__(self, name: str, wait: float = DEFAULT_WAIT,
                 query: Callable[..., Any] | None = None) -> None:
        import lsr.lab

        self.name = name
        self.wait = wait
        self.query = query or lsr.lab.query
        self.topo = lsr.lab.topology(name)
        self.owners = address_owners(self.topo)
        self.last_reason: str | None = None

    def sender(self, ingress: str, fec: IPv4Network) -> Sender:
        def send(ttl: int, request: EchoMessage, dst: IPv4Address = LOCALHOST) -> Reply | None:
            r = self.query(self.name, ingress, "oam_probe", timeout=self.wait + 5, fec=str(fec),
                           ttl=ttl, request=request.encode().hex(), dst=str(dst), wait=self.wait)
            if r.get("reply") is None:
                self.last_reason = r.get("reason")
                return None
            msg = EchoMessage.decode(bytes.fromhex(r["reply"]))
            addr = IPv4Address(r["from"])
            router, ifname = self.owners.get(addr, (None, None))
            return Reply(msg, router, addr, ifname, r.get("rtt_ms"))
        return send

    def first_ddmaps(self, ingress: str, fec: IPv4Network, multipath: bool,
                     destinations: int = DEFAULT_MULTIPATH_ADDRESSES) -> tuple[Ddmap, ...]:
        r = self.query(self.name, ingress, "oam_ddmaps", fec=str(fec),
                       destinations=destinations if multipath else 0)
        return EchoMessage.decode(bytes.fromhex(r["message"])).ddmaps

    def has_ftn(self, ingress: str, fec: IPv4Network) -> bool:
        lf = self.query(self.name, ingress, "lfib")
        return any(e["fec"] == str(fec) and e["nexthops"] for e in lf.get("ftn", []))


def sim_network(topo: Topology, lfibs: Mapping[str, Lfib] | None = None) -> LfibNetwork:
    """`LfibNetwork` over the simulator's converged LFIBs (or the ones given)."""
    if lfibs is None:
        from lsr.sim import simulate

        sim, res = simulate(topo)
        if not res.converged:
            raise LsrError(f"{topo.source}: LDP did not converge in the simulation")
        lfibs = lfibs_from_json(sim.lfib_json())
    lfibs = normalize_neighbors(topo, lfibs)
    tables = {r.name: tables_from_topology(topo, r.name, lfibs.get(r.name, Lfib()))
              for r in topo.routers}
    return LfibNetwork.from_topology(topo, tables)


def _no_lsp(fec: IPv4Network, source: str, multipath: bool) -> TraceResult:
    res = TraceResult(fec, source, multipath)
    res.paths.append({"path": 0, "result": "no-lsp", "routers": []})
    return res


def lsp_traceroute(backend: LabSender | LfibNetwork, source: str, fec: IPv4Network, *,
                   multipath: bool = False, max_ttl: int = 30) -> dict[str, Any]:
    """LSP traceroute JSON (`TraceResult.to_json` + `reason`, `backend`)."""
    handle = next(_handles) & 0xFFFFFFFF
    live = isinstance(backend, LabSender)
    reason = None
    if live and not backend.has_ftn(source, fec) or not live and (
            fec not in backend.tables[source].lfib.ftn):
        res = _no_lsp(fec, source, multipath)
        reason = f"{source} has no FTN entry (no LSP) for {fec}"
    else:
        first = backend.first_ddmaps(source, fec, multipath)
        res = traceroute(backend.sender(source, fec), fec, source, multipath=multipath,
                         first_ddmaps=first, handle=handle, max_ttl=max_ttl,
                         clock=time.time if live else None)
    out = res.to_json()
    out["backend"] = "lab" if live else "sim"
    out["reason"] = reason
    if reason and out["broken_at"] is None:
        out["broken_at"] = {"ttl": 0, "path": 0, "router": source, "return_code": None,
                            "return_code_name": "no LSP at the ingress"}
    return out


def lsp_ping(backend: LabSender | LfibNetwork, source: str, fec: IPv4Network, *,
             count: int = 1) -> dict[str, Any]:
    """LSP ping JSON (`PingResult.to_json` + `backend`, `reason`)."""
    handle = next(_handles) & 0xFFFFFFFF
    live = isinstance(backend, LabSender)
    res = ping(backend.sender(source, fec), fec, source, count=count, handle=handle)
    out = res.to_json()
    out["backend"] = "lab" if live else "sim"
    out["reason"] = backend.last_reason if live and out["result"] != "ok" else None
    rtts = [r["rtt_ms"] for r in out["replies"] if r["rtt_ms"] is not None]
    out["rtt_ms"] = {"min": min(rtts), "avg": round(sum(rtts) / len(rtts), 3), "max": max(rtts)} \
        if rtts else None
    return out


# ---------------------------------------------------------------- live validation


def live_lfibs(name: str) -> tuple[dict[str, Lfib], list[str]]:
    """Every running router's LFIB; routers whose runtime is stopped get an empty one."""
    import lsr.lab

    topo = lsr.lab.topology(name)
    docs: dict[str, Any] = {}
    stopped = []
    for r in topo.routers:
        try:
            docs.update(lsr.lab.lfib(name, [r.name])["routers"])
        except (OSError, LsrError):
            stopped.append(r.name)
            docs[r.name] = {"lsr_id": str(r.lsr_id), "ftn": [], "ilm": []}
    return lfibs_from_json({"routers": docs}), stopped


def _host_address(topo: Topology, node: str) -> IPv4Address:
    n = topo.nodes[node]
    if n.is_router:
        return n.lsr_id
    return next(iter(n.interfaces.values())).address.ip


def live_ping(name: str, topo: Topology) -> Callable[[str, str], tuple[bool, str]]:
    """A `ping` assertion checker running the real `ping` in the source node's namespace."""
    from lsr.lab.state import ns_name

    def check(src: str, dst: str) -> tuple[bool, str]:
        addr = _host_address(topo, dst)
        p = subprocess.run(["ip", "netns", "exec", ns_name(name, src), "ping", "-c", "3", "-i", "0.2",
                            "-W", "1", "-q", str(addr)], capture_output=True, text=True, timeout=20)
        summary = next((ln.strip() for ln in p.stdout.splitlines() if "transmitted" in ln), p.stderr.strip())
        return p.returncode == 0, f"ping {src} -> {dst} ({addr}): {summary}"
    return check


def _path_str(p: tuple[str, ...] | list[str]) -> str:
    return " -> ".join(p)


def cp_dp_results(name: str, topo: Topology, lfibs: Mapping[str, Lfib], igp: Igp,
                  sample: int = SAMPLE_PAIRS, wait: float = 0.5,
                  stopped: Collection[str] = ()) -> list[CheckResult]:
    """Control plane vs data plane: for (ingress, FEC) pairs (all, or a deterministic
    sample on big labs) the multipath LSP traceroute's paths equal the LFIB walk's."""
    pairs = [(i, f) for i, f in expected_lsps(topo, igp) if i not in stopped]
    if len(pairs) > sample:
        pairs = sorted(random.Random(0).sample(pairs, sample), key=lambda p: (p[0], int(p[1].network_address)))
    sender = LabSender(name, wait=wait)
    out: list[CheckResult] = []
    agree = 0
    for ingress, fec in pairs:
        w = walk_lsp(topo, lfibs, ingress, fec)
        tr = lsp_traceroute(sender, ingress, fec, multipath=True)
        where = f"{ingress} -> {fec}"
        if tr["result"] != "ok":
            b = tr["broken_at"] or {}
            code = b.get("return_code")
            what = b.get("return_code_name") if code is None else f"return code {code} ({b.get('return_code_name')})"
            hop = f"hop {b.get('ttl')}" + (f" {b['router']}" if b.get("router") else "")
            lfib_view = " | ".join(_path_str(p) for p in w.paths) if w.paths else \
                "; ".join(p.detail for p in w.problems[:2]) or "no LFIB path"
            out.append(CheckResult("lsp-traceroute", "fail",
                                   f"{where}: broken at {hop}: {what} (LFIB: {lfib_view})"))
            continue
        traced = {tuple([ingress, *p["routers"]]) for p in tr["paths"]}
        walked = set(w.paths)
        if traced != walked:
            out.append(CheckResult("cp-dp-agreement", "fail",
                                   f"{where}: traceroute {' | '.join(sorted(map(_path_str, traced)))}"
                                   f" but LFIB {' | '.join(sorted(map(_path_str, walked))) or 'none'}"))
            continue
        agree += 1
    if agree == len(pairs):
        out.append(CheckResult("cp-dp-agreement", "pass",
                               f"{len(pairs)} LSP traceroutes equal their LFIB paths"))
    return out


def validate_live(name: str, *, sample: int = SAMPLE_PAIRS, traceroutes: bool = True) -> dict[str, Any]:
    """`lsr lab validate NAME` JSON: expect: + invariants on the live LFIBs, real pings,
    control plane vs data plane by LSP traceroute."""
    import lsr.lab
    from lsr.lab.state import LabState
    from lsr.oam.validate import summary

    topo = lsr.lab.topology(name)
    down = LabState(name).read().get("down_links", [])
    igp = Igp(topo, down)
    lfibs, stopped = live_lfibs(name)
    results = [CheckResult("router-runtime", "fail", f"{r}: runtime stopped (no LDP, no forwarding)")
               for r in stopped]
    results += validate(topo, lfibs, igp, ping=live_ping(name, topo))
    if traceroutes:
        results += cp_dp_results(name, topo, lfibs, igp, sample, stopped=stopped)
    return {"lab": name, "topology": topo.name, "lfib_source": "lab", "down_links": down,
            "stopped_routers": stopped, **summary(results)}


__all__ = [
    "LabSender", "address_owners", "check_router", "cp_dp_results", "live_lfibs", "live_ping",
    "lsp_ping", "lsp_traceroute", "multipath_range", "resolve_fec", "sim_network", "validate_live",
]

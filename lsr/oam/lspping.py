"""LSP ping / traceroute (RFC 8029) as `lsr lsp` reports them, over either back end.

Both back ends give the engines of `lsr.oam.trace` a `send(ttl, request[, dst])`:

* `trace.LfibNetwork` over a set of LFIBs (`lfib_network`; `lsr.sim.sim_network`
  builds it from the LDP simulator's converged LFIBs);
* a `LiveBackend`: real echo requests injected at the ingress router of a
  running lab (`lsr.lab.lsp.LabSender`, the edge driver).

`lsp_ping` / `lsp_traceroute` return the JSON documented in docs/cli.md
("lsr lsp"). Pure: no sockets, no clock (a live back end brings its own).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Protocol

from lsr.core.lfib import Lfib
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.oam.echo import Ddmap
from lsr.oam.responder import tables_from_topology
from lsr.oam.trace import (
    DEFAULT_MULTIPATH_ADDRESSES,
    LfibNetwork,
    Sender,
    TraceResult,
    ping,
    traceroute,
)
from lsr.oam.validate import normalize_neighbors

# Sender's Handles (RFC 8029 §3) unique per process, so two `lsr lsp` runs never
# take each other's replies.
_handles = itertools.count((os.getpid() & 0x7FFF) << 16)


class LiveBackend(Protocol):
    """What `lsp_ping` / `lsp_traceroute` need from a live back end (`lsr.lab.lsp.LabSender`)."""

    last_reason: str | None  # why the last probe got no reply (the router's word)
    clock: Callable[[], float]  # wall clock for the echo timestamps
    owners: Mapping[IPv4Address, tuple[str, str | None]]  # `address_owners` of the lab

    def sender(self, ingress: str, fec: IPv4Network) -> Sender: ...

    def first_ddmaps(self, ingress: str, fec: IPv4Network, multipath: bool,
                     destinations: int = DEFAULT_MULTIPATH_ADDRESSES) -> tuple[Ddmap, ...]: ...

    def has_ftn(self, ingress: str, fec: IPv4Network) -> bool: ...

    def no_lsp_hint(self, ingress: str, fec: IPv4Network) -> str | None: ...


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


def _owner_names(backend: LiveBackend | LfibNetwork) -> dict[IPv4Address, str]:
    """Router address -> router name, to name the hop a DDMAP points at."""
    if isinstance(backend, LfibNetwork):
        return {a: name for name, t in backend.tables.items() for a in t.addresses()}
    return {a: r for a, (r, _i) in backend.owners.items()}


def _no_lsp(fec: IPv4Network, source: str, multipath: bool) -> TraceResult:
    res = TraceResult(fec, source, multipath)
    res.paths.append({"path": 0, "result": "no-lsp", "routers": []})
    return res


def lsp_traceroute(backend: LiveBackend | LfibNetwork, source: str, fec: IPv4Network, *,
                   multipath: bool = False, max_ttl: int = 30) -> dict[str, Any]:
    """LSP traceroute JSON (`TraceResult.to_json` + `reason`, `backend`)."""
    handle = next(_handles) & 0xFFFFFFFF
    reason = None
    why = None
    if isinstance(backend, LfibNetwork):
        live, clock = False, None
        has_ftn = fec in backend.tables[source].lfib.ftn
    else:
        live, clock = True, backend.clock
        has_ftn = backend.has_ftn(source, fec)
        if not has_ftn:  # the lab's word: a stopped router on the IGP path
            why = backend.no_lsp_hint(source, fec)
    if not has_ftn:
        res = _no_lsp(fec, source, multipath)
        reason = f"{source} has no FTN entry (no LSP) for {fec}"
        if why:
            reason += f": {why}"
    else:
        first = backend.first_ddmaps(source, fec, multipath)
        res = traceroute(backend.sender(source, fec), fec, source, multipath=multipath,
                         first_ddmaps=first, handle=handle, max_ttl=max_ttl, clock=clock,
                         name_of=_owner_names(backend).get)
    out = res.to_json()
    out["backend"] = "lab" if live else "sim"
    out["reason"] = reason
    if reason and out["broken_at"] is None:
        out["broken_at"] = {"ttl": 0, "path": 0, "router": source, "return_code": None,
                            "return_code_name": "no LSP at the ingress"}
    return out


def lsp_ping(backend: LiveBackend | LfibNetwork, source: str, fec: IPv4Network, *,
             count: int = 1) -> dict[str, Any]:
    """LSP ping JSON (`PingResult.to_json` + `backend`, `reason`)."""
    handle = next(_handles) & 0xFFFFFFFF
    res = ping(backend.sender(source, fec), fec, source, count=count, handle=handle)
    out = res.to_json()
    if isinstance(backend, LfibNetwork):
        out["backend"], out["reason"] = "sim", None
    else:
        out["backend"] = "lab"
        out["reason"] = backend.last_reason if out["result"] != "ok" else None
    rtts = [r["rtt_ms"] for r in out["replies"] if r["rtt_ms"] is not None]
    out["rtt_ms"] = {"min": min(rtts), "avg": round(sum(rtts) / len(rtts), 3), "max": max(rtts)} \
        if rtts else None
    return out


def lfib_network(topo: Topology, lfibs: Mapping[str, Lfib]) -> LfibNetwork:
    """`LfibNetwork` over the given LFIBs (neighbours as LSR IDs or names)."""
    lfibs = normalize_neighbors(topo, lfibs)
    tables = {r.name: tables_from_topology(topo, r.name, lfibs.get(r.name, Lfib()))
              for r in topo.routers}
    return LfibNetwork.from_topology(topo, tables)


__all__ = [
    "LiveBackend", "address_owners", "check_router", "lfib_network", "lsp_ping",
    "lsp_traceroute", "resolve_fec",
]

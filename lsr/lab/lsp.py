"""LSP ping / traceroute (RFC 8029) and LSP validation against a running lab.

* `LabSender`: real echo requests injected at the ingress router of a running
  lab through its management socket (`oam_probe`, see `lsr.lab.node_oam`): the
  router's runtime pushes the FTN labels with the asked label TTL, sends the
  frame through its dataplane and awaits the reply on UDP 3503 (§4.3, §4.6).
  The replying router is named from the reply's source address (the address of
  the interface the request arrived on). It is the live back end of the pure
  `lsr.oam.lspping.lsp_ping` / `lsp_traceroute`.
* `validate_live` checks a running lab: the topology's `expect:` assertions and
  invariants over the live LFIBs (`lsr.oam.validate`), real pings between hosts,
  and control plane vs data plane (the LSP traceroute path equals the LFIB path).
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable, Collection, Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import lsr.lab
from lsr.core.igp import Igp
from lsr.core.lfib import Lfib
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.lab.state import LabState, ns_name
from lsr.oam.echo import LOCALHOST, Ddmap, EchoMessage
from lsr.oam.lspping import address_owners, lsp_traceroute
from lsr.oam.trace import DEFAULT_MULTIPATH_ADDRESSES, Reply, Sender
from lsr.oam.validate import (
    CheckResult,
    expected_lsps,
    lfibs_from_json,
    summary,
    validate,
    walk_lsp,
)

DEFAULT_WAIT = 1.0  # seconds to wait for each echo reply
SAMPLE_PAIRS = 40  # (ingress, FEC) pairs traced by `validate_live` on big labs


class LabSender:
    """Echo requests from one router of a running lab (`oam_probe`)."""

    def __init__(self, name: str, wait: float = DEFAULT_WAIT,
                 query: Callable[..., Any] | None = None) -> None:
        self.name = name
        self.wait = wait
        self.query = query or lsr.lab.query
        self.topo = lsr.lab.topology(name)
        self.owners = address_owners(self.topo)
        self.last_reason: str | None = None
        self.clock = time.time  # echo timestamps (RFC 8029 §3: NTP format, wall clock)

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


# ---------------------------------------------------------------- live validation


def live_lfibs(name: str) -> tuple[dict[str, Lfib], list[str]]:
    """Every running router's LFIB; routers whose runtime is stopped get an empty one."""
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


__all__ = ["LabSender", "cp_dp_results", "live_lfibs", "live_ping", "validate_live"]

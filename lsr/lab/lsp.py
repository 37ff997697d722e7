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
import time
from collections.abc import Callable, Collection, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

import lsr.lab
from lsr.core.fib6 import Fib6
from lsr.core.igp import Igp
from lsr.core.lfib import Lfib, VrfEntry
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.lab import frr
from lsr.lab.state import LabState
from lsr.oam.echo import Ddmap, EchoMessage
from lsr.oam.lspping import address_owners, fib6s_from_json, lsp_traceroute, vpn_lsp_ping_results
from lsr.oam.responder import Target, VpnTarget, ingress_nexthops
from lsr.oam.trace import DEFAULT_MULTIPATH_ADDRESSES, Reply, Sender
from lsr.oam.validate import (
    CheckResult,
    expected_lsps,
    lfibs_from_json,
    summary,
    validate,
    walk_lsp,
    walk_trace,
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

    def sender(self, ingress: str, fec: Target) -> Sender:
        where = _fec_args(fec)

        def send(ttl: int, request: EchoMessage,
                 dst: IPv4Address | IPv6Address | None = None) -> Reply | None:
            # dst: 127/8, ::ffff:127/104 for an IPv6 FEC (the router's default: .1)
            at = {} if dst is None else {"dst": str(dst)}
            r = self.query(self.name, ingress, "oam_probe", timeout=self.wait + 5, **where,
                           ttl=ttl, request=request.encode().hex(), wait=self.wait, **at)
            if r.get("reply") is None:
                self.last_reason = r.get("reason")
                return None
            msg = EchoMessage.decode(bytes.fromhex(r["reply"]))
            addr = IPv4Address(r["from"])
            router, ifname = self.owners.get(addr, (None, None))
            return Reply(msg, router, addr, ifname, r.get("rtt_ms"))
        return send

    def first_ddmaps(self, ingress: str, fec: Target, multipath: bool,
                     destinations: int = DEFAULT_MULTIPATH_ADDRESSES) -> tuple[Ddmap, ...]:
        r = self.query(self.name, ingress, "oam_ddmaps", **_fec_args(fec),
                       destinations=destinations if multipath else 0)
        return EchoMessage.decode(bytes.fromhex(r["message"])).ddmaps

    def _lfib(self, ingress: str) -> Lfib:
        doc = self.query(self.name, ingress, "lfib")
        return lfibs_from_json({"routers": {ingress: doc}})[ingress]

    def fib6(self, ingress: str) -> Fib6 | None:
        """`ingress`'s 6PE routes as its runtime has them (the `ipv6` part of its `lfib`)."""
        doc = self.query(self.name, ingress, "lfib")
        return fib6s_from_json({"routers": {ingress: doc}}).get(ingress)

    def has_ftn(self, ingress: str, fec: Target) -> bool:
        return bool(ingress_nexthops(self._lfib(ingress), fec, self.fib6(ingress)))

    def vrf_routes(self, ingress: str, vrf: str) -> Mapping[IPv4Network, VrfEntry]:
        """`ingress`'s FIB of VRF `vrf` as its dataplane has it (empty: no such VRF)."""
        return self._lfib(ingress).vrfs.get(vrf, {})

    def no_lsp_hint(self, ingress: str, fec: IPv4Network | IPv6Network,
                    vpn: bool = False) -> str | None:
        """Why `ingress` may have no LSP for `fec` (a 6PE prefix, or with `vpn` a VRF's
        prefix: for the loopback of the PE attaching it): stopped routers on its IGP path,
        or no IGP path left with the lab's down links."""
        if isinstance(fec, IPv6Network) or vpn:
            egress = next((r for r in self.topo.routers for i in r.interfaces.values()
                           if (i.vrf is not None) == vpn and _attaches(i, fec)), None)
            if egress is None or egress.name == ingress:
                return None
            fec = IPv4Network((egress.lsr_id, 32))
        st = LabState(self.name).read()
        # down by whatever means: `lab link`, or carrier lost (`ip link` in a namespace)
        down = lsr.lab.status(self.name)["down_links"]
        igp = Igp(self.topo, down)
        on = stopped_on_path(self.topo, igp, ingress, fec, stopped_routers(self.name, self.topo, st))
        hint = _stopped_text(on)
        if hint is None and down and igp.rib(ingress).get(fec) is None:
            links = ", ".join(self.topo.link_name(self.topo.links[i]) for i in sorted(down))
            hint = f"no IGP path from {ingress} to {fec} with link {links} down"
        return hint


def _attaches(iface: Any, prefix: IPv4Network | IPv6Network) -> bool:
    """Does the interface's subnet (of the prefix's family) hold the prefix?"""
    a = iface.address6 if prefix.version == 6 else iface.address
    return a is not None and prefix.subnet_of(a.network)


def _fec_args(fec: Target) -> dict[str, str]:
    """How `oam_probe` / `oam_ddmaps` name a FEC: its prefix, and a VPN one's VRF."""
    if isinstance(fec, VpnTarget):
        return {"fec": str(fec.prefix), "vrf": fec.vrf}
    return {"fec": str(fec)}


def stopped_routers(name: str, topo: Topology, st: Mapping[str, Any] | None = None) -> set[str]:
    """Routers of a lab stopped with `lab node stop`, and FRR nodes not (fully) running."""
    st = LabState(name).read() if st is None else st
    pids = st.get("pids", [])
    return set(st.get("stopped_routers", [])) | {
        n.name for n in frr.frr_routers(topo) if frr.not_running(name, n.name, pids)}


def stopped_on_path(topo: Topology, igp: Igp, ingress: str, fec: IPv4Network,
                    stopped: Collection[str]) -> list[str]:
    """The stopped routers on the reference IGP paths (every ECMP branch) from `ingress`
    to `fec`: the silent hops that break its LSP."""
    seen: set[str] = set()
    todo, hit = [ingress], []
    while todo:
        r = todo.pop()
        if r in seen or not topo.nodes[r].is_router:
            continue
        seen.add(r)
        if r in stopped and r != ingress:
            hit.append(r)
            continue
        route = igp.rib(r).get(fec)
        todo += [nh.neighbor for nh in route.nexthops] if route is not None else []
    return sorted(hit)


def _stopped_text(routers: list[str], hung: Collection[str] = ()) -> str | None:
    if not routers:
        return None
    return "; ".join(f"{r} on its IGP path {'does not answer' if r in hung else 'is stopped'}"
                     for r in routers)


# ---------------------------------------------------------------- live validation


def live_lfibs(name: str) -> tuple[dict[str, Lfib], list[str]]:
    """Every running router's LFIB; routers whose runtime is stopped get an empty one
    (an FRR node is stopped when a daemon or our dataplane in it is not running)."""
    return _live_lfibs(name)[:2]


def _live_lfibs(name: str) -> tuple[dict[str, Lfib], list[str], dict[str, str]]:
    """`live_lfibs` and why each router with a runtime problem fails. A stopped one gets
    an empty LFIB; an FRR node whose dataplane still runs (a daemon of it stopped, or
    the dataplane hung) keeps its LFIB (FRR's bindings, as on file) but is not probed
    from."""
    topo = lsr.lab.topology(name)
    pids = LabState(name).read().get("pids", [])
    docs: dict[str, Any] = {}
    why: dict[str, str] = {}
    stopped: list[str] = []
    for r in topo.routers:
        forwarding = True
        if frr.is_frr(topo, r.name):
            gone = frr.not_running(name, r.name, pids)
            if gone:
                why[r.name] = f"FRR router not running ({', '.join(gone)} stopped)"
                forwarding = "dataplane" not in gone and not set(frr.DAEMONS) <= set(gone)
            elif hung := _frr_dataplane_silent(name, r.name, pids):
                why[r.name] = hung
        if forwarding:
            try:
                docs.update(lsr.lab.lfib(name, [r.name])["routers"])
                continue
            except (OSError, LsrError) as e:
                why[r.name] = ("runtime stopped (no LDP, no forwarding)"
                               if not frr.is_frr(topo, r.name) else str(e))
        docs[r.name] = {"lsr_id": str(r.lsr_id), "ftn": [], "ilm": []}
        stopped.append(r.name)
    return lfibs_from_json({"routers": docs}), stopped, why


def _frr_dataplane_silent(name: str, node: str, pids: list[dict[str, Any]]) -> str | None:
    """Why our dataplane in a running FRR node does not answer its management socket
    (hung, stopped with SIGSTOP), or None; its LFIB file alone would not tell."""
    if not any(p["role"] == f"frr:{node}:dataplane" for p in pids):
        return None  # run without our dataplane (LSR_FRR_DATAPLANE=0)
    try:
        lsr.lab.query(name, node, "lfib", timeout=2)
    except (OSError, LsrError) as e:
        return f"FRR dataplane not answering ({e})"
    return None


def _host_address(topo: Topology, node: str) -> IPv4Address:
    n = topo.nodes[node]
    if n.is_router:
        return n.lsr_id
    return next(iter(n.interfaces.values())).address.ip


def live_ping(name: str, topo: Topology) -> Callable[[str, str], tuple[bool, str]]:
    """A `ping` assertion checker running the real `ping` in the source node's namespace."""
    def check(src: str, dst: str) -> tuple[bool, str]:
        addr = _host_address(topo, dst)
        p = lsr.lab.run_in(name, src, ["ping", "-c", "3", "-i", "0.2", "-W", "1", "-q",
                                       str(addr)], timeout=20)
        summary = next((ln.strip() for ln in p.stdout.splitlines() if "transmitted" in ln), p.stderr.strip())
        return p.returncode == 0, f"ping {src} -> {dst} ({addr}): {summary}"
    return check


def _path_str(p: tuple[str, ...] | list[str]) -> str:
    return " -> ".join(p)


def cp_dp_results(name: str, topo: Topology, lfibs: Mapping[str, Lfib], igp: Igp,
                  sample: int = SAMPLE_PAIRS, wait: float = 0.5,
                  stopped: Collection[str] = (), hung: Collection[str] = ()) -> list[CheckResult]:
    """Control plane vs data plane: for (ingress, FEC) pairs (all, or a deterministic
    sample on big labs) the multipath LSP traceroute's paths equal the LFIB walk's.
    Neither `stopped` routers nor `hung` ones (running, but not answering or partly
    stopped) are probed from."""
    silent = set(stopped) | set(hung)
    pairs = [(i, f) for i, f in expected_lsps(topo, igp) if i not in silent]
    if len(pairs) > sample:
        pairs = sorted(random.Random(0).sample(pairs, sample), key=lambda p: (p[0], int(p[1].network_address)))
    sender = LabSender(name, wait=wait)
    out: list[CheckResult] = []
    agree = 0
    unanswered: dict[str, str] = {}  # ingress -> why its management socket failed
    for ingress, fec in pairs:
        w = walk_lsp(topo, lfibs, ingress, fec)
        where = f"{ingress} -> {fec}"
        if ingress in unanswered:  # a hung runtime: one timeout, not one per FEC
            out.append(CheckResult("lsp-traceroute", "fail", f"{where}: {unanswered[ingress]}"))
            continue
        try:
            tr = lsp_traceroute(sender, ingress, fec, multipath=True)
        except LsrError as e:  # the ingress's runtime does not answer (hung, dying)
            unanswered[ingress] = f"not probed: {e}"
            out.append(CheckResult("lsp-traceroute", "fail", f"{where}: {unanswered[ingress]}"))
            continue
        if tr["result"] != "ok":
            hint = _stopped_text(stopped_on_path(topo, igp, ingress, fec, silent), hung)
            b = tr["broken_at"] or {}
            code = b.get("return_code")
            what = b.get("return_code_name") if code is None else f"return code {code} ({b.get('return_code_name')})"
            hop = f"hop {b.get('ttl')}" + (f" {b['router']}" if b.get("router") else "")
            lfib_view = " | ".join(_path_str(p) for p in w.paths) if w.paths else \
                "; ".join(p.detail for p in w.problems[:2]) or "no LFIB path"
            out.append(CheckResult("lsp-traceroute", "fail",
                                   f"{where}: broken at {hop}: {what} (LFIB: {lfib_view})"
                                   + (f"; {hint}" if hint else "")))
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
    # links down by any means (`lab link`, `ip link` in a namespace): the IGP the routers see
    status = lsr.lab.status(name)  # asks every router: once
    down = status["down_links"]
    igp = Igp(topo, down)
    lfibs, stopped, why = _live_lfibs(name)
    hung = [r for r in why if r not in stopped]
    results = [CheckResult("router-runtime", "fail", f"{r}: {w}") for r, w in why.items()]
    if "bgp" in topo.extra:  # every BGP session, and why one is down (RFC 4271 §8)
        from lsr.lab import bgp_lab

        up, bad = bgp_lab.session_problems(name, topo, status["routers"],
                                           lsr.lab.query, stopped_routers(name, topo))
        results += [CheckResult("bgp-session", "fail", t) for t in bad] or [
            CheckResult("bgp-session", "pass", f"{up} BGP sessions Established")]
    # VPN checks (RFC 4364) walk packets through the live tables, VRFs included
    trace = walk_trace(topo, lfibs, igp) if any(r.vrfs for r in topo.routers) else None
    results += validate(topo, lfibs, igp, ping=live_ping(name, topo), trace=trace)
    # RFC 8029 LSP ping of every PE's VPN routes (VPN IPv4 / IPv6 FECs) and 6PE routes
    # (BGP labeled IPv6 FECs): the egress PE validates
    results += vpn_lsp_ping_results(topo, LabSender(name, wait=0.5), lfibs,
                                    skip=set(stopped) | set(hung))
    if topo.has_ipv6:
        from lsr.oam.sixpe_check import sixpe_lsp_ping_results

        results += sixpe_lsp_ping_results(topo, LabSender(name, wait=0.5),
                                          skip=set(stopped) | set(hung), down=down)
    if traceroutes:
        results += cp_dp_results(name, topo, lfibs, igp, sample, stopped=stopped, hung=hung)
    if topo.has_ipv6:
        results += sixpe_live_results(name, topo, lfibs, igp)
    return {"lab": name, "topology": topo.name, "lfib_source": "lab", "down_links": down,
            "stopped_routers": stopped, "unhealthy_routers": hung, **summary(results)}


def sixpe_live_results(name: str, topo: Topology, lfibs: Mapping[str, Lfib],
                       igp: Igp) -> list[CheckResult]:
    """6PE on the live lab: the invariants of `lsr.oam.sixpe_check` over the routers' own
    6PE routes (their `lfib` answers' `ipv6` part), and a real `ping -6` between every
    pair of IPv6 hosts (6pe-ping)."""
    from lsr.core.fib6 import fib6_from_json
    from lsr.oam.sixpe_check import cut_off, sixpe_results

    fib6s = {}
    for r in topo.routers:
        try:
            d = lsr.lab.lfib(name, [r.name])["routers"].get(r.name, {})
        except (OSError, LsrError):
            continue
        if "ipv6" in d:
            fib6s[r.name] = fib6_from_json(d["ipv6"])
    out = sixpe_results(topo, lfibs, igp, fib6s)
    if not out:
        return out
    hosts = [h for h in topo.hosts if topo.vrf_of(h.name) is None  # 6VPE sites: VPN checks
             and any(i.address6 for i in h.interfaces.values())]
    cut = cut_off(topo, [h.name for h in hosts], igp.down)  # a port down: expected silent
    hosts = [h for h in hosts if h.name not in cut]
    fails, n = [], 0
    for a in hosts:
        for b in hosts:
            if a is b:
                continue
            n += 1
            (dst,) = [i.address6.ip for i in b.interfaces.values() if i.address6]
            p = lsr.lab.run_in(name, a.name, ["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1",
                                              "-q", str(dst)], timeout=20)
            if p.returncode != 0:
                summary = next((ln.strip() for ln in p.stdout.splitlines()
                                if "transmitted" in ln), p.stderr.strip())
                fails.append(f"ping -6 {a.name} -> {b.name} ({dst}): {summary}")
    out += [CheckResult("6pe-ping", "fail", f) for f in fails] or [
        CheckResult("6pe-ping", "pass", f"{n} IPv6 host pairs answer ping -6"
                    + "".join(f"; {h} cut off (link {ln} down)" for h, ln in sorted(cut.items())))]
    return out


__all__ = ["LabSender", "cp_dp_results", "live_lfibs", "live_ping", "stopped_on_path",
           "stopped_routers", "sixpe_live_results", "validate_live"]

"""Why an LDP session, an OSPF adjacency or a BGP session does not come up, named from
both ends' configs.

Pure: reads a `Topology`. `ldp_cause(topo, a, b)`, `ospf_cause(topo, link)` and
`bgp_cause(topo, a, b)` compare what the two ends were told and name the first thing
that keeps them apart (a TCP MD5 password on one side only, different passwords,
different OSPF timers or keys); `config_findings(topo)` lists every such router pair and
link (`lsr topo validate` warns about them). The drivers turn what did not converge into `Stuck` items: the
simulator (`lsr.sim.Simulation.stuck`) from its instances' states, falling back on what
it saw (no route to the peer's transport address, a session state) when the configs
agree; the lab (`lsr lab up`) from the routers' answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bgp.config import PeerConfig
from bgp.config import from_topology as bgp_config
from lsr.core.topology import Link, Topology

LDP = "ldp"
OSPF = "ospf"
BGP = "bgp"
_WHAT = {LDP: "LDP session", OSPF: "OSPF adjacency", BGP: "BGP session"}
_NOT_UP = {LDP: "not established", OSPF: "not Full", BGP: "not Established"}


@dataclass(frozen=True)
class Stuck:
    """One LDP or BGP session (router pair) or OSPF adjacency (link) that is not up, and
    why."""

    kind: str  # LDP | OSPF | BGP
    a: str
    b: str
    cause: str
    link: int | None = None  # OSPF: the link's index

    @property
    def pair(self) -> str:
        return f"{self.a}-{self.b}"

    def text(self, verb: str = "") -> str:
        """'pe1-p1: LDP session not established: TCP MD5 password on pe1 only' (or with
        `verb`, e.g. 'cannot come up', for a finding from the configuration alone)."""
        return f"{self.pair}: {_WHAT[self.kind]} {verb or _NOT_UP[self.kind]}: {self.cause}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "session": self.pair, "a": self.a, "b": self.b,
                "cause": self.cause, "link": self.link, "text": self.text()}


def ldp_cause(topo: Topology, a: str, b: str) -> str | None:
    """What in the two routers' LDP configs keeps their session down (RFC 5036 §2.9: the
    TCP MD5 option must be configured on both ends with the same key), or None."""
    return _md5_cause(a, b, topo.nodes[a].ldp.password_for(b), topo.nodes[b].ldp.password_for(a))


def bgp_cause(topo: Topology, a: str, b: str) -> str | None:
    """What in the two routers' BGP configs keeps their session down (RFC 2385: a TCP MD5
    key at one end only, or two different keys, and no segment gets through), or None."""
    pa, pb = _bgp_peer(topo, a, b), _bgp_peer(topo, b, a)
    if pa is None or pb is None:  # not a configured session
        return None
    return _md5_cause(a, b, pa.password, pb.password)


def _bgp_peer(topo: Topology, router: str, peer: str) -> PeerConfig | None:
    cfg = bgp_config(topo, router)
    return next((p for p in cfg.peers if p.name == peer), None) if cfg is not None else None


def _md5_cause(a: str, b: str, pa: str | None, pb: str | None) -> str | None:
    """'TCP MD5 password on a only' / '... on b only' / 'TCP MD5 passwords differ on a
    and b' (each end's key for the other, '' or None: none), or None when they agree."""
    if (pa or None) == (pb or None):
        return None
    if not pb:
        return f"TCP MD5 password on {a} only"
    if not pa:
        return f"TCP MD5 password on {b} only"
    return f"TCP MD5 passwords differ on {a} and {b}"


def ospf_cause(topo: Topology, link: Link) -> str | None:
    """What in the two ends' OSPF configs keeps the adjacency on `link` down, or None:
    HelloInterval and RouterDeadInterval must match (RFC 2328 §10.5), and so must the
    authentication type, key ID and key (App. D.3)."""
    a, b = link.nodes
    oa, ob = topo.nodes[a].ospf, topo.nodes[b].ospf
    why = []
    for field, what in (("hello_interval", "hello intervals"), ("dead_interval", "dead intervals")):
        x, y = getattr(oa, field), getattr(ob, field)
        if x != y:
            why.append(f"OSPF {what} differ ({a} {x} s, {b} {y} s)")
    if bool(oa.md5_key) != bool(ob.md5_key):
        why.append(f"OSPF MD5 key on {a if oa.md5_key else b} only")
    elif oa.md5_key and oa.md5_key_id != ob.md5_key_id:
        why.append(f"OSPF MD5 key IDs differ ({a} {oa.md5_key_id}, {b} {ob.md5_key_id})")
    elif oa.md5_key != ob.md5_key:
        why.append(f"OSPF MD5 keys differ on {a} and {b}")
    return "; ".join(why) or None


def router_links(topo: Topology) -> list[Link]:
    """Links with a router at both ends: where OSPF adjacencies and LDP sessions form."""
    return [ln for ln in topo.links if all(topo.nodes[n].is_router for n in ln.nodes)]


def router_pairs(topo: Topology) -> list[tuple[str, str]]:
    """Router pairs joined by at least one link, each once, in link order."""
    seen: dict[frozenset[str], tuple[str, str]] = {}
    for ln in router_links(topo):
        seen.setdefault(frozenset(ln.nodes), ln.nodes)
    return list(seen.values())


def _bgp_sessions(topo: Topology) -> Iterator[tuple[str, str, PeerConfig, PeerConfig]]:
    """(a, b, a's peer config of b, b's of a) of every BGP session both ends configure,
    once, a before b in the file."""
    cfgs = {r.name: c for r in topo.routers if (c := bgp_config(topo, r.name)) is not None}
    peers = {r: {p.name: p for p in c.peers} for r, c in cfgs.items()}
    for a in cfgs:
        for b, pa in peers[a].items():
            pb = peers.get(b, {}).get(a)
            if pb is not None and topo.nodes[a].index < topo.nodes[b].index:
                yield a, b, pa, pb


def _in_file_order(topo: Topology, found: list[Stuck]) -> list[Stuck]:
    return sorted(found, key=lambda s: (topo.nodes[s.a].index, topo.nodes[s.b].index))


def bgp_findings(topo: Topology) -> list[Stuck]:
    """Every BGP session (the `bgp:` section) the configuration keeps from coming up, in
    file order (a before b in the file)."""
    return _in_file_order(topo, [Stuck(BGP, a, b, cause) for a, b, pa, pb in _bgp_sessions(topo)
                                 if (cause := _md5_cause(a, b, pa.password, pb.password))])


def bgp_passive_findings(topo: Topology) -> list[Stuck]:
    """The BGP sessions passive at both ends: neither opens the TCP connection (RFC 4271
    §8.1.1, PassiveTcpEstablishment), so they never come up. Only `topo validate` warns
    of them: a lab leaves them out of what it waits for, as it may on purpose (a test
    speaker that connects by itself, tests/data/bgp-lab.yaml)."""
    return _in_file_order(topo, [
        Stuck(BGP, a, b, "passive at both ends: neither opens the TCP connection "
                         "(RFC 4271 §8.1.1)")
        for a, b, pa, pb in _bgp_sessions(topo) if pa.passive and pb.passive])


def config_findings(topo: Topology) -> list[Stuck]:
    """Every OSPF adjacency, LDP session and BGP session the configuration keeps from
    coming up."""
    out = []
    for ln in router_links(topo):
        cause = ospf_cause(topo, ln)
        if cause:
            out.append(Stuck(OSPF, *ln.nodes, cause, ln.index))
    for a, b in router_pairs(topo):
        cause = ldp_cause(topo, a, b)
        if cause:
            out.append(Stuck(LDP, a, b, cause))
    return out + bgp_findings(topo)

"""`lsr exercise list|start N|check N [FILE|ANSWER]`: small label-switching tasks.

Each exercise ships its starting topology (inline YAML below, so it installs
with the package). `start` copies it into a directory and prints the task;
`check` loads the student's file (or takes their answer), runs the LDP
simulation and asks the validation engine (`lsr.oam.validate.validate` with
`Expectation`s, plus the built-in invariants) whether the goal holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from lsr.core.topology import Topology, TopologyError, load_topology, parse_topology
from lsr.errors import LsrError

DIAMOND = """\
# diamond: two paths from pe1 to pe2, through p1 and through p2.
#
#                  +---- p1 ----+
#            eth2 /  10     10   \\ eth2
#   ce1 --- pe1                   pe2 --- ce2
#            eth3 \\  {c13}     10   / eth3
#                  +---- p2 ----+
name: diamond
topology:
  nodes:
    ce1: {{kind: host}}
    pe1: {{loopback: 10.255.0.1}}
    p1: {{loopback: 10.255.0.2}}
    p2: {{loopback: 10.255.0.3}}
    pe2: {{loopback: 10.255.0.4}}
    ce2: {{kind: host}}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet: 192.168.1.0/24
    - endpoints: [pe1:eth2, p1:eth1]
      cost: 10
    - endpoints: [pe1:eth3, p2:eth1]
      cost: {c13}
    - endpoints: [p1:eth2, pe2:eth2]
      cost: 10
    - endpoints: [p2:eth2, pe2:eth3]
      cost: 10
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet: 192.168.2.0/24
"""

LINE3 = """\
# line3: three routers in a line, a host at each end.
#
#   ce1 ---- pe1 ---- p1 ---- pe2 ---- ce2
name: line3
topology:
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1}
    p1: {loopback: 10.255.0.2}
    pe2: {loopback: 10.255.0.3}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet: 192.168.1.0/24
    - endpoints: [pe1:eth2, p1:eth1]
    - endpoints: [p1:eth2, pe2:eth2]
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet: 192.168.2.0/24
"""

LEASED = """\
# leased: the direct pe1-pe2 link is a leased line paid per gigabyte.
#
#                 cost 25 (leased line)
#        +----------------------+
#        |                      |
#   ce1-pe1 --- p1 --- p2 --- pe2-ce2
#          10     10     10
name: leased
topology:
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1}
    p1: {loopback: 10.255.0.2}
    p2: {loopback: 10.255.0.3}
    pe2: {loopback: 10.255.0.4}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
    - endpoints: [pe1:eth2, p1:eth1]
      cost: 10
    - endpoints: [p1:eth2, p2:eth1]
      cost: 10
    - endpoints: [p2:eth2, pe2:eth2]
      cost: 10
    - endpoints: [pe1:eth3, pe2:eth3]
      cost: 25
    - endpoints: [pe2:eth1, ce2:eth0]
"""


def _vpn_exercise() -> str:
    """topologies/l3vpn.yaml with pe3's route targets swapped (exercise 8)."""
    p = Path(__file__).resolve().parents[2] / "topologies" / "l3vpn.yaml"
    try:
        text = p.read_text()
    except OSError:
        raise LsrError(f"{p}: not found (exercise 8 needs the source tree's topologies/)") from None
    text = text.replace("red: {rd: 10.255.0.3:1, rt: 65000:1,", "red: {rd: 10.255.0.3:1, rt: 65000:2,")
    text = text.replace("blue: {rd: 10.255.0.3:2, rt: 65000:2,", "blue: {rd: 10.255.0.3:2, rt: 65000:1,")
    head, _, _ = text.partition("expect:\n")  # the assertions would give the answer away
    return head.replace("name: l3vpn", "name: vpn")


def _backbone() -> str:
    """The bundled 20-router backbone (topologies/backbone.yaml of the source tree)."""
    p = Path(__file__).resolve().parents[2] / "topologies" / "backbone.yaml"
    try:
        return p.read_text()
    except OSError:
        raise LsrError(f"{p}: not found (exercise 2 needs the source tree's topologies/)") from None


@dataclass
class Outcome:
    ok: bool
    checks: list[dict[str, str]] = field(default_factory=list)  # CheckResult JSON
    message: str = ""


@dataclass
class Exercise:
    number: int
    slug: str
    title: str
    task: str
    hint: str
    files: dict[str, Callable[[], str]]  # file name -> its starting text
    kind: str  # "file" (edit the topology) or "answer" (give an answer)
    checker: Callable[[Exercise, Path, str | None], Outcome]

    @property
    def main_file(self) -> str:
        return next(iter(self.files))

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "slug": self.slug, "title": self.title,
                "kind": self.kind, "files": list(self.files)}


# ---------------------------------------------------------------- helpers


def _load(path: Path) -> Topology:
    import lsr.oam.validate  # noqa: F401  (registers the expect: section)

    if not path.exists():
        raise LsrError(f"{path}: no such file (run `lsr exercise start` first, or give FILE)", 1)
    return load_topology(path)


def _lfibs(topo: Topology) -> dict:
    from lsr.teach.net import from_topology

    return from_topology(topo).lfibs


def _validate(topo: Topology, exps: list[tuple[str, str, dict[str, Any]]]) -> Outcome:
    """Run the validation engine: the given lsp expectations + the invariants (and a
    failure for each session or adjacency the edited file keeps down)."""
    from lsr.core.igp import Igp
    from lsr.oam.validate import CheckResult, Expectation, validate
    from lsr.teach.net import from_topology, resolve_fec

    net = from_topology(topo)
    e = [Expectation(i, None, "lsp", src, dst, resolve_fec(topo, dst), tuple(kw.get("via", ())),
                     tuple(kw.get("via_any", ())), kw.get("hops"))
         for i, (src, dst, kw) in enumerate(exps)]
    res = [CheckResult("invariant control-plane", "fail", p) for p in net.problems]
    res += validate(topo, net.lfibs, Igp(topo), expectations=e)
    checks = [r.to_json() for r in res]
    return Outcome(all(r.status != "fail" for r in res), checks)


def _same_wiring(topo: Topology, start: str) -> str | None:
    """The student may change costs and options, not the wiring."""
    ref = parse_topology(start)

    def wiring(t: Topology) -> set[frozenset[str]]:
        return {frozenset((f"{ln.a[0]}:{ln.a[1]}", f"{ln.b[0]}:{ln.b[1]}")) for ln in t.links}

    if set(topo.nodes) != set(ref.nodes):
        return "the nodes were changed: only edit costs and router options"
    if wiring(topo) != wiring(ref):
        return "the links were rewired: only edit costs and router options"
    return None


def _file_check(goal: Callable[[Topology], Outcome]) -> Callable[[Exercise, Path, str | None],
                                                                  Outcome]:
    def check(ex: Exercise, path: Path, answer: str | None) -> Outcome:
        try:
            topo = _load(path)
        except TopologyError as e:
            return Outcome(False, message=f"the file does not load: {e}")
        bad = _same_wiring(topo, ex.files[ex.main_file]())
        if bad:
            return Outcome(False, message=bad)
        return goal(topo)

    return check


# ---------------------------------------------------------------- the exercises


def _through_p2(topo: Topology) -> Outcome:
    return _validate(topo, [("pe1", "pe2", {"via": ["p2"]})])


def _ecmp(topo: Topology) -> Outcome:
    return _validate(topo, [("pe1", "pe2", {"via_any": ["p1"]}),
                            ("pe1", "pe2", {"via_any": ["p2"]})])


def _avoid(topo: Topology) -> Outcome:
    return _validate(topo, [("pe1", "pe2", {"via": ["p1", "p2"], "hops": 3}),
                            ("pe2", "pe1", {"via": ["p1", "p2"], "hops": 3})])


def _label_range(topo: Topology) -> Outcome:
    lo, hi = topo.nodes["p1"].labels
    if (lo, hi) != (5000, 5999):
        return Outcome(False, message=f"p1's label range is {lo}-{hi}, not 5000-5999")
    o = _validate(topo, [("pe1", "pe2", {})])
    from lsr.teach.net import from_topology

    net = from_topology(topo)
    ilm = sorted(net.lfibs["p1"].ilm)
    outside = [x for x in ilm if not 5000 <= x <= 5999]
    ok = bool(ilm) and not outside
    o.checks.append({"check": "p1 ILM labels in 5000-5999",
                     "status": "pass" if ok else "fail",
                     "detail": f"p1's ILM in-labels: {ilm[0]}..{ilm[-1]}" if ilm else "empty ILM"})
    o.ok = o.ok and ok
    return o


def _explicit_null(topo: Topology) -> Outcome:
    if not topo.nodes["pe2"].ldp.explicit_null:
        return Outcome(False, message="pe2 still advertises implicit-null (label 3)")
    o = _validate(topo, [("pe1", "pe2", {})])
    from lsr.teach.net import from_topology

    net = from_topology(topo)
    fec = IPv4Network(f"{topo.nodes['pe2'].lsr_id}/32")
    outs = [nh.out_labels for e in net.lfibs["p1"].ilm.values() if e.fec == fec
            for nh in e.nexthops]
    ok = bool(outs) and all(x == (0,) for x in outs)
    o.checks.append({"check": "p1 swaps to explicit-null (0) toward pe2",
                     "status": "pass" if ok else "fail", "detail": "p1 out labels: " + ", ".join(str(list(x)) for x in outs)})
    o.ok = o.ok and ok
    return o


def _vpn_sites(topo: Topology) -> Outcome:
    """Every site reaches its own customer's sites and never the other's: the VPN
    invariants of `lsr validate` (and no VRF's RD or ports moved)."""
    from lsr.core.igp import Igp
    from lsr.oam.validate import validate, walk_trace

    start = parse_topology(_vpn_exercise(), "vpn.yaml")
    for r in start.routers:
        mine = topo.nodes[r.name].vrfs if r.name in topo.nodes else {}
        want = {(v.name, v.rd, v.interfaces) for v in r.vrfs.values()}
        if {(v.name, v.rd, v.interfaces) for v in mine.values()} != want:
            return Outcome(False, message=f"{r.name}'s VRFs changed: edit only route targets "
                                          "(rt, import, export)")
    lfibs = _lfibs(topo)
    igp = Igp(topo)
    res = validate(topo, lfibs, igp, expectations=[], trace=walk_trace(topo, lfibs, igp))
    res = [r for r in res if r.check.startswith("invariant vpn")]
    return Outcome(all(r.status == "pass" for r in res), [r.to_json() for r in res])


def _who_pops(ex: Exercise, path: Path, answer: str | None) -> Outcome:
    import lsr.oam.validate as v
    from lsr.core.igp import Igp

    if not answer:
        return Outcome(False, message="give your answer: lsr exercise check 2 ROUTER")
    topo = parse_topology(ex.files[ex.main_file](), "backbone.yaml")
    lfibs = _lfibs(topo)
    fec = IPv4Network(f"{topo.nodes['sto'].lsr_id}/32")
    w = v.walk_lsp(topo, lfibs, "mad", fec)
    poppers = sorted({p[-2] for p in w.paths})
    ok = answer.strip() in poppers and len(poppers) == 1
    detail = "the penultimate hop pops (PHP)" if ok else f"{answer} does not pop on this LSP"
    res = v.validate(topo, lfibs, Igp(topo), expectations=[], invariants=True)
    php = [r.to_json() for r in res if r.check == "invariant php"]
    return Outcome(ok, [{"check": f"router that pops on mad -> {fec}",
                         "status": "pass" if ok else "fail", "detail": detail}, *php])


def _ttl(ex: Exercise, path: Path, answer: str | None) -> Outcome:
    from forwarding.tables import build_all
    from forwarding.walk import walk
    from lsr.core.igp import Igp

    if not answer:
        return Outcome(False, message="give your answer: lsr exercise check 7 ROUTER")
    topo = parse_topology(ex.files[ex.main_file](), "line3.yaml")
    tables = build_all(topo, Igp(topo).ribs(), _lfibs(topo))
    w = walk(topo, tables, "ce1", "ce2", "udp", 2)
    who = next((h["router"] for h in w["hops"] if h["icmp"]), None)
    ok = answer.strip() == who
    return Outcome(ok, [{"check": "router that answers TTL 2 from ce1 to ce2",
                         "status": "pass" if ok else "fail",
                         "detail": "it decremented the label TTL to 0" if ok
                         else f"{answer} does not send the Time Exceeded"}])


EXERCISES: list[Exercise] = [
    Exercise(
        1, "through-p2", "Make pe1 reach pe2 through p2",
        "In diamond.yaml pe1 reaches pe2 over two equal-cost paths (ECMP), through p1 and\n"
        "through p2. Change link costs (only costs) so that every LSP branch from pe1 to\n"
        "pe2 passes through p2.\n"
        "Look:  lsr draw diamond.yaml --lsp pe1:pe2 -o lsp.svg ; lsr igp routes diamond.yaml "
        "--router pe1\nCheck: lsr exercise check 1",
        "SPF takes the cheapest path; make the pe1-p1 side cost more than the pe1-p2 side.",
        {"diamond.yaml": lambda: DIAMOND.format(c13=10)}, "file", _file_check(_through_p2)),
    Exercise(
        2, "who-pops", "Find the router that pops",
        "backbone.yaml is a 20-router backbone. On the LSP from mad to sto's loopback,\n"
        "which router pops the label (penultimate hop popping)?\n"
        "Look:  lsr sim trace backbone.yaml mad sto ; lsr draw backbone.yaml --lsp mad:sto "
        "-o lsp.png\nCheck: lsr exercise check 2 ROUTER",
        "The egress advertises implicit-null (label 3) for its loopback: the router just "
        "before it has an ILM entry with op 'pop'.",
        {"backbone.yaml": _backbone}, "answer", _who_pops),
    Exercise(
        3, "label-range", "Give p1 the label range 5000-5999",
        "In line3.yaml give router p1 its own label range, 5000 to 5999, and check that\n"
        "its ILM uses it and that pe1 now pushes one of those labels.\n"
        "Look:  lsr sim lfib line3.yaml --router p1\nCheck: lsr exercise check 3",
        "A router option: `labels: [first, last]` on the node, e.g. p1: {loopback: ..., "
        "labels: [5000, 5999]}.",
        {"line3.yaml": lambda: LINE3}, "file", _file_check(_label_range)),
    Exercise(
        4, "avoid-leased", "Make the path avoid the expensive link",
        "In leased.yaml the direct pe1-pe2 link is a leased line (cost 25), and the LSPs\n"
        "between pe1 and pe2 use it because 25 < 30. Change costs so that the LSPs in\n"
        "both directions go pe1 - p1 - p2 - pe2 instead (3 hops).\n"
        "Look:  lsr draw leased.yaml --lsp pe1:pe2 -o lsp.svg\nCheck: lsr exercise check 4",
        "The IGP compares sums of costs: make the leased line dearer than the 3-hop path.",
        {"leased.yaml": lambda: LEASED}, "file", _file_check(_avoid)),
    Exercise(
        5, "explicit-null", "Turn on explicit-null and see the egress label change",
        "In line3.yaml make pe2 advertise explicit-null (label 0) instead of implicit-null,\n"
        "then see what p1 sends to pe2 now.\n"
        "Look:  lsr sim lfib line3.yaml --router p1 ; lsr sim trace line3.yaml ce1 ce2\n"
        "Check: lsr exercise check 5",
        "An LDP option of the router: pe2: {loopback: ..., ldp: {explicit_null: true}}.",
        {"line3.yaml": lambda: LINE3}, "file", _file_check(_explicit_null)),
    Exercise(
        6, "ecmp", "Use both paths (ECMP)",
        "In diamond.yaml the pe1-p2 link costs 15, so pe1 reaches pe2 only through p1.\n"
        "Change costs so that pe1 load-balances over both p1 and p2 (two LSP branches).\n"
        "Look:  lsr igp routes diamond.yaml --router pe1\nCheck: lsr exercise check 6",
        "Equal-cost multipath needs exactly equal sums: both paths must cost the same.",
        {"diamond.yaml": lambda: DIAMOND.format(c13=15)}, "file", _file_check(_ecmp)),
    Exercise(
        7, "ttl", "Who answers the traceroute?",
        "In line3.yaml a UDP packet from ce1 to ce2 starts with IP TTL 2. Which router\n"
        "sends the ICMP Time Exceeded back to ce1?\n"
        "Look:  lsr sim trace line3.yaml ce1 ce2 --proto udp --ttl 2 --step\n"
        "Check: lsr exercise check 7 ROUTER",
        "Every router decrements the TTL once; with the uniform model the label TTL is "
        "the IP TTL.",
        {"line3.yaml": lambda: LINE3}, "answer", _ttl),
    Exercise(
        8, "vpn", "Two customers, the same addresses: fix the route targets",
        "vpn.yaml carries two customers, red and blue, across one MPLS core; both use\n"
        "10.1.1.0/24, 10.1.2.0/24 and 10.1.3.0/24 at their three sites. Something is\n"
        "wrong at pe3: red3 reaches blue's sites. Fix the route targets (only rt, import,\n"
        "export) so that every site reaches its own customer's other sites and never the\n"
        "other customer's.\n"
        "Look:  lsr sim vrf vpn.yaml pe3 ; lsr sim trace vpn.yaml red3 red1 ; "
        "lsr validate vpn.yaml\nCheck: lsr exercise check 8",
        "A VRF imports the routes that carry one of its import targets: every red VRF must "
        "export and import red's target (65000:1), every blue VRF blue's (65000:2).",
        {"vpn.yaml": _vpn_exercise}, "file", _file_check(_vpn_sites)),
]


def get(number: int) -> Exercise:
    for ex in EXERCISES:
        if ex.number == number:
            return ex
    raise LsrError(f"no exercise {number} (lsr exercise list)")


def start(number: int, directory: Path, force: bool = False) -> list[Path]:
    """Copy the starting files of exercise `number` into `directory`."""
    ex = get(number)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in ex.files.items():
        p = directory / name
        if p.exists() and not force:
            raise LsrError(f"{p} exists: use --force to overwrite it, or -d DIR")
        p.write_text(text())
        written.append(p)
    return written


def check(number: int, arg: str | None, directory: Path) -> Outcome:
    """FILE (file exercises; default: the starting file in `directory`) or ANSWER."""
    ex = get(number)
    if ex.kind == "answer":
        return ex.checker(ex, directory / ex.main_file, arg)
    path = Path(arg) if arg else directory / ex.main_file
    return ex.checker(ex, path, None)

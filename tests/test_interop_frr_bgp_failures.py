"""BGP with FRR's bgpd through failures: the lab stays right through its life.

One lab (tests/data/6vpe-frr.yaml: our three PEs with VPN-IPv4 and VPN-IPv6 customers,
FRR's bgpd the route reflector rr, reachable over p1 and over p2) is driven through
real failures, and after each the tables equal what they should for the new state:

* rr stopped (`lsr lab node NAME rr stop`): its bgpd stops with the rest of the node
  (Cease, RFC 4271 §6.7 / RFC 4486), our PEs' sessions go down and name why, the VPN
  routes learnt through it are withdrawn (RFC 4271 §9: the Loc-RIB and the VRFs lose
  them, RFC 4364 §4.3.3); started again, FRR's tables, ours and the VRFs equal the
  simulator's;
* `clear bgp *` in FRR's vtysh and bgpd alone killed (a crash): the sessions reset and
  come back with the same routes and labels;
* one of our PEs stopped: FRR withdraws its routes from the other PEs (RFC 4456 §8:
  the reflector re-advertises the change) and re-learns them when it starts;
* rr's links: one taken down inside its namespace (`ip link set eth1 down`), the IGP
  reroutes and the sessions between loopbacks survive; the other one too (`lsr lab
  link`), rr is cut off and the sessions end when the hold time (9 s) expires (RFC 4271
  §6.5), the VRFs lose the remote routes; both back: sessions, routes and pings return;
* afterwards our routers are idle.

A second, small lab (tests/data/frr-6pe.yaml) does the same for 6PE (RFC 4798) with
FRR as the other PE. Needs root and FRR with bgpd.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from ipaddress import ip_address

import pytest

from tests.conftest import ROOT, frr_missing, is_root
from tests.wait import wait_for

FRR_WHY = frr_missing("bgpd") if is_root() else "needs root"
pytestmark = [
    pytest.mark.netns, pytest.mark.slow,
    pytest.mark.skipif(not is_root(), reason="needs root"),
    pytest.mark.skipif(FRR_WHY is not None, reason=f"FRR not usable: {FRR_WHY}"),
]

if is_root() and FRR_WHY is None:
    import lsr.lab as lab
    from bgp import views
    from lsr.core.topology import Topology, load_topology
    from lsr.lab import control, frr
    from lsr.lab.lsp import validate_live
    from lsr.lab.state import LabState, lab_dir, ns_name, pid_alive
    from lsr.sim import Simulation
    from tests.test_lab_flap import IDLE, cpu_use

FILE = ROOT / "tests" / "data" / "6vpe-frr.yaml"
FILE6PE = ROOT / "tests" / "data" / "frr-6pe.yaml"
_PREFIX = os.environ.get("LSR_TEST_LAB_PREFIX", "")
NAME = f"{_PREFIX}bf{os.getpid() % 1000}"
NAME6 = f"{_PREFIX}bf6p{os.getpid() % 1000}"
PES = {"pe1": "10.255.0.1", "pe2": "10.255.0.2", "pe3": "10.255.0.3"}
RR = "10.255.0.10"
HOLD = 9  # the topology's bgp.hold_time


def lsr_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`lsr ARGS...` as a user runs it (this tree's package)."""
    return subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def vpnlab():
    lab.down(NAME)
    try:
        yield lab.up(load_topology(FILE), name=NAME, timeout=120)
    finally:
        lab.down(NAME)
    assert not lab_dir(NAME).exists()
    assert frr.leftover_processes(NAME) == []


@pytest.fixture(autouse=True)
def heal(request):
    """After each test of the VPN lab, whatever it left broken (a failed assertion
    stops it half way) is put right, so one failure does not fail the tests after it."""
    yield
    if "vpnlab" not in request.fixturenames or not lab_dir(NAME).exists():
        return
    topo = load_topology(FILE)
    healed = False
    for node in [r.name for r in topo.routers]:
        if frr.is_frr(topo, node) and frr.not_running(NAME, node):
            lsr_cli("lab", "node", NAME, node, "stop")
            lsr_cli("lab", "node", NAME, node, "start")
            healed = True
        elif not lab.status(NAME)["routers"].get(node, {}).get("alive", True):
            lsr_cli("lab", "node", NAME, node, "start")
            healed = True
    for i in lab.status(NAME)["down_links"]:
        healed = True
        link = topo.links[i]
        for node, iface in (link.a, link.b):
            subprocess.run(["ip", "-n", ns_name(NAME, node), "link", "set", iface, "up"],
                           capture_output=True)
        lab.link(NAME, link.a[0], link.b[0], up=True)
    if healed:
        lab.wait_converged(NAME, 60)


# ---------------------------------------------------------------- what should be


def simulated(file=FILE, stopped: Sequence[str] = (), down: Sequence[int] = ()) -> Simulation:
    """The simulator converged with `down` links and `stopped` routers, as
    `lsr.lab.expected` runs it."""
    sim = Simulation(load_topology(file))
    quiet = sim.quiet_time()
    sim.run(quiet=quiet)
    for i in down:
        sim.link_down(i)
        sim.run(quiet=quiet)
    for r in stopped:
        sim.router_stop(r)
    if stopped:
        sim.run(quiet=quiet)
    return sim


def _key(r: dict) -> tuple:
    return (r["rd"], r["prefix"], r["next_hop"], r["label"], tuple(sorted(r["route_targets"])))


def sim_routes(sim: Simulation, router: str, view: str) -> set[tuple]:
    return {_key(r) for r in views.routes(sim.bgp[router], views.VIEWS[view])}


def our_routes(router: str, view: str) -> set[tuple]:
    return {_key(r) for r in lab.bgp(NAME, router, view)["routers"][router]["routes"]}


def _frr_json(command: str, node: str = "rr", name: str | None = None):
    return json.loads(frr.vtysh(name or NAME, node, command))


def _mapped(a: str) -> str:
    """FRR prints ::ffff:a.b.c.d in hex (::ffff:aff:1); we write ::ffff:10.255.0.1."""
    v4 = ip_address(a).ipv4_mapped if ip_address(a).version == 6 else None
    return f"::ffff:{v4}" if v4 is not None else a


def frr_routes(view: str) -> set[tuple]:
    """FRR's best VPN-IPv4 (`vpn`) or VPN-IPv6 (`vpn6`) paths from its own JSON, read
    raw through vtysh: (RD, prefix, next hop, label, RTs)."""
    afi = {"vpn": "ipv4 vpn", "vpn6": "ipv6 vpn"}[view]
    table = _frr_json(f"show bgp {afi} json").get("routes", {}).get("routeDistinguishers", {})
    out = set()
    for rd, prefixes in table.items():
        for prefix in prefixes:
            detail = _frr_json(f"show bgp {afi} {prefix} json")[rd]
            (best,) = [p for p in detail["paths"] if p.get("bestpath", {}).get("overall")]
            rts = tuple(sorted(x[3:] for x in best["extendedCommunity"]["string"].split()
                               if x.startswith("RT:")))
            out.add((rd, prefix, _mapped(best["nexthops"][0]["ip"]), best["remoteLabel"], rts))
    return out


def pe_states() -> dict[str, str | None]:
    st = lab.status(NAME)["routers"]
    return {pe: st[pe].get("bgp", {}).get(RR) for pe in PES}


def established_counts() -> dict[str, int]:
    """How many times each PE's session with rr has been Established."""
    return {pe: lab.bgp(NAME, pe)["routers"][pe]["neighbors"][0]["established"] for pe in PES}


def assert_all_up(sim: Simulation | None = None, timeout: float = 30) -> None:
    """Every session Established; FRR's VPN tables, our PEs' and our view of FRR's equal
    the simulator's reflector's; the VRF tables equal the simulator's."""
    sim = sim or simulated()
    wait_for(lambda: set(pe_states().values()) == {"Established"}, timeout,
             lambda: f"every PE Established with rr: {pe_states()}")
    for view in ("vpn", "vpn6"):
        want = sim_routes(sim, "rr", view)
        assert len(want) == 6
        wait_for(lambda v=view, w=want: frr_routes(v) == w, timeout,
                 lambda v=view: f"FRR's {v} routes to be the simulator's: {frr_routes(v)}")
        for pe in PES:  # each PE keeps every route (its VRFs import them all)
            wait_for(lambda p=pe, v=view, w=want: our_routes(p, v) == w, timeout,
                     lambda p=pe, v=view: f"{p}'s {v} routes: {our_routes(p, v)}")
        assert our_routes("rr", view) == want
    wait_for(lambda: lab.vrf(NAME) == sim.vrf_json(), timeout, "the simulator's VRF tables")


def ping_sites(topo: Topology, six: bool = False) -> list[tuple[str, str]]:
    """Pairs of sites of one VPN that do not answer one ping (none: all answer); a
    ping of a site of the other customer must fail (RFC 4364 §1: separate VPNs)."""
    bad = []
    hosts = [h.name for h in topo.hosts]
    for a, b in itertools.permutations(hosts, 2):
        (i,) = topo.nodes[b].interfaces.values()
        addr = i.address6.ip if six else i.address.ip
        r = subprocess.run(["ip", "netns", "exec", ns_name(NAME, a), "ping", "-6" if six else "-4",
                            "-c", "1", "-W", "2", str(addr)], capture_output=True, timeout=10)
        same = topo.vrf_of(a) == topo.vrf_of(b)
        if same and r.returncode != 0:
            bad.append((a, b))
    return bad


def _bgpd_pid(name: str, node: str) -> tuple[int, int | None]:
    (p,) = [p for p in LabState(name).read()["pids"] if p["role"] == f"frr:{node}:bgpd"][-1:]
    return p["pid"], p.get("start")


# ---------------------------------------------------------------- the failures


def bgp_checks(res: dict) -> list[str]:
    """`lsr lab validate`'s BGP session results: the failures' text, or the pass."""
    return [c["detail"] for c in res["results"] if c["check"] == "bgp-session"]


def pair(pe: str) -> str:
    """How validate names a PE's session with rr: the ends in the topology's order."""
    return "pe1-rr" if pe == "pe1" else f"rr-{pe}"


def test_baseline(vpnlab):
    assert_all_up()
    assert bgp_checks(validate_live(NAME, traceroutes=False)) == ["3 BGP sessions Established"]


def test_frr_reflector_stopped_and_started(vpnlab):
    """`lsr lab node NAME rr stop` stops bgpd with the node's other daemons (it kept
    running before: the sessions stayed Established with a stopped node)."""
    bgpd = _bgpd_pid(NAME, "rr")
    r = lsr_cli("lab", "node", NAME, "rr", "stop")
    assert r.returncode == 0, r.stderr
    assert not pid_alive(*bgpd), "rr's bgpd still runs after `lab node rr stop`"
    assert "bgpd" in frr.not_running(NAME, "rr")
    # Cease (RFC 4486 §4, subcode 3 Peer De-configured) from FRR: our sessions go at once
    wait_for(lambda: "Established" not in pe_states().values(), 10,
             lambda: f"the PEs' sessions with the stopped rr to go down: {pe_states()}")
    for pe in PES:
        (n,) = lab.bgp(NAME, pe)["routers"][pe]["neighbors"]
        assert n["neighbor"] == "rr" and n["state"] != "Established"
        assert "CEASE" in n["last_error"], n
    # RFC 4271 §9: routes learnt from rr leave the Loc-RIB, and the VRFs (RFC 4364)
    sim = simulated(stopped=["rr"])
    for pe in PES:
        for view in ("vpn", "vpn6"):
            assert our_routes(pe, view) == sim_routes(sim, pe, view)
            assert {x[2] for x in our_routes(pe, view)} == {
                PES[pe] if view == "vpn" else f"::ffff:{PES[pe]}"}
    wait_for(lambda: lab.vrf(NAME) == sim.vrf_json(), 10,
             "the VRF tables of the simulator with rr stopped")
    # what is broken is named: status, validate
    st = lab.status(NAME)["routers"]
    assert st["rr"]["alive"] is False
    res = validate_live(NAME, traceroutes=False)
    assert res["result"] == "fail"
    texts = [c["detail"] for c in res["results"] if c["status"] == "fail"]
    assert any(t.startswith("rr: FRR router not running") and "bgpd" in t for t in texts), texts
    # each session named, with our end's state and why (rr's Cease), and rr stopped
    for pe in PES:
        (t,) = [t for t in bgp_checks(res) if t.startswith(pair(pe))]
        # (our connects to rr fail meanwhile, OSPF having withdrawn its loopback: that
        # error is said after the Cease, and does not replace it)
        assert t.startswith(f"{pair(pe)}: BGP session not Established (") and \
            f"{pe}: " in t and "received CEASE/3" in t and "rr is stopped" in t, t
    r = lsr_cli("lab", "node", NAME, "rr", "start")
    assert r.returncode == 0, r.stderr
    assert_all_up()
    assert ping_sites(vpnlab.topo) == [] and ping_sites(vpnlab.topo, six=True) == []


def test_clear_bgp_in_frr(vpnlab):
    """`clear bgp *` through `lsr lab exec NAME rr vtysh`: FRR resets every session
    (Cease, Administrative Reset, RFC 4486 §4); ours come back with the same routes."""
    before = established_counts()
    r = lsr_cli("lab", "exec", NAME, "rr", "--", "vtysh", "-c", "clear bgp *")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: all(n > before[pe] for pe, n in established_counts().items())
             and set(pe_states().values()) == {"Established"}, 30,
             lambda: f"every PE's session reset and Established again: {established_counts()}"
                     f" (before {before}), {pe_states()}")
    for pe in PES:
        (n,) = lab.bgp(NAME, pe)["routers"][pe]["neighbors"]
        assert n["established"] == before[pe] + 1  # one reset, no flapping after it
    assert_all_up()


def test_frr_bgpd_killed_alone(vpnlab):
    """bgpd alone crashes (SIGKILL: no NOTIFICATION; the kernel closes its connections):
    our sessions go down, the node counts as not running and says which daemon; `node
    start` of a partly running node is refused in one line; stop and start bring it
    back."""
    pid, start = _bgpd_pid(NAME, "rr")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid, start), 10, "bgpd gone")
    assert frr.not_running(NAME, "rr") == ["bgpd"]
    wait_for(lambda: "Established" not in pe_states().values(), 2 * HOLD,
             lambda: f"the PEs' sessions with rr's dead bgpd to go down: {pe_states()}")
    sim = simulated(stopped=["rr"])
    wait_for(lambda: lab.vrf(NAME) == sim.vrf_json(), 10,
             "the VRF tables without the routes reflected by rr")
    res = validate_live(NAME, traceroutes=False)
    texts = [c["detail"] for c in res["results"] if c["status"] == "fail"]
    assert "rr: FRR router not running (bgpd stopped)" in texts, texts
    st = lab.status(NAME)["routers"]["rr"]  # and `lab status` says which daemon
    assert st["alive"] is False and st["not_running"] == ["bgpd"], st
    r = subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", "lab",
                        "status", NAME], capture_output=True, text=True, cwd=ROOT, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    assert r.returncode == 0 and "not running: bgpd" in r.stdout, r.stdout
    r = lsr_cli("lab", "node", NAME, "rr", "start")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "partly running (not: bgpd)" in r.stderr
    for what in ("stop", "start"):
        r = lsr_cli("lab", "node", NAME, "rr", what)
        assert r.returncode == 0, r.stderr
    assert frr.not_running(NAME, "rr") == []
    assert_all_up()


def test_our_pe_stopped_and_started(vpnlab):
    """pe3 stops (Cease to rr): FRR withdraws its VPN-IPv4 and VPN-IPv6 routes (its own
    table, read through vtysh) and so do the other PEs; started, FRR re-learns them with
    the same labels."""
    r = lsr_cli("lab", "node", NAME, "pe3", "stop")
    assert r.returncode == 0, r.stderr
    sim = simulated(stopped=["pe3"])
    for view in ("vpn", "vpn6"):
        want = sim_routes(sim, "rr", view)
        assert len(want) == 4 and not any(x[0].startswith("10.255.0.3:") for x in want)
        wait_for(lambda v=view, w=want: frr_routes(v) == w, 20,
                 lambda v=view: f"FRR's {v} routes without pe3's: {frr_routes(v)}")
        for pe in ("pe1", "pe2"):
            wait_for(lambda p=pe, v=view, w=want: our_routes(p, v) == w, 10,
                     lambda p=pe, v=view: f"{p}'s {v} routes without pe3's")
    peers = _frr_json("show bgp summary json")["ipv4Vpn"]["peers"]
    assert peers[PES["pe3"]]["state"] != "Established"
    wait_for(lambda: lab.vrf(NAME, ["pe1", "pe2"]) == sim.vrf_json(["pe1", "pe2"]), 10,
             "pe1's and pe2's VRFs without pe3's sites")
    r = lsr_cli("lab", "node", NAME, "pe3", "start")
    assert r.returncode == 0, r.stderr
    assert_all_up()


def _link_of(topo: Topology, a: str, b: str) -> int:
    from lsr.lab import netns

    return netns.find_link(topo, a, b)


def test_reflector_links_down(vpnlab):
    """rr's link to p1 down inside its namespace: OSPF reroutes over p2 and the sessions
    between loopbacks survive (no reset). Its link to p2 down too (`lsr lab link`): rr is
    cut off, nothing closes the connections and they end when the hold time expires
    (RFC 4271 §6.5); the VRFs lose the remote routes. Both links back: all of it
    returns, and the sites ping each other."""
    topo = vpnlab.topo
    l1, l2 = _link_of(topo, "rr", "p1"), _link_of(topo, "rr", "p2")
    before = established_counts()
    ns = ns_name(NAME, "rr")
    subprocess.run(["ip", "-n", ns, "link", "set", "eth1", "down"], check=True)
    wait_for(lambda: lab.status(NAME)["down_links"] == [l1], 10, "rr-p1 seen down")
    lab.wait_converged(NAME, 60)
    assert set(pe_states().values()) == {"Established"}
    assert established_counts() == before  # the sessions never went down
    assert_all_up(simulated(down=[l1]))

    def hold_expiries() -> dict[str, int]:  # NOTIFICATIONs Hold Timer Expired (§6.5) sent
        return {pe: sum(n for k, n in lab.bgp(NAME, pe)["routers"][pe]["notifications"]["sent"]
                        .items() if k.startswith("HOLD_TIMER")) for pe in PES}
    expired = hold_expiries()
    t0 = time.monotonic()
    lab.link(NAME, "rr", "p2", up=False)
    wait_for(lambda: "Established" not in pe_states().values(), HOLD + 10,
             lambda: f"the sessions with the cut-off rr to end: {pe_states()}")
    took = time.monotonic() - t0
    assert hold_expiries() == {pe: n + 1 for pe, n in expired.items()}
    # the hold timer, not a connection closed: a KEEPALIVE came at most hold/3 s before
    assert HOLD - HOLD / 3 - 1 <= took <= HOLD + 5, took
    sim = simulated(down=[l1, l2])
    wait_for(lambda: lab.vrf(NAME) == sim.vrf_json(), 10,
             "the VRF tables without the routes reflected by rr")
    res = validate_live(NAME, traceroutes=False)
    assert res["result"] == "fail"
    # named: both ends run, the sessions are down (before, only the VPN pings failed)
    assert sorted(t.split(":")[0] for t in bgp_checks(res)) == sorted(pair(pe) for pe in PES)
    assert all("BGP session not Established (" in t and "rr: " in t for t in bgp_checks(res))

    subprocess.run(["ip", "-n", ns, "link", "set", "eth1", "up"], check=True)
    lab.link(NAME, "rr", "p2", up=True)
    wait_for(lambda: lab.status(NAME)["down_links"] == [], 10, "rr's links seen up")
    lab.wait_converged(NAME, 60)
    assert_all_up()
    assert ping_sites(topo) == [] and ping_sites(topo, six=True) == []


def test_chaos_with_frr_nodes(vpnlab):
    """`lsr lab chaos` on a lab with an FRR node: FRR's rr stopped and started among
    the events, ours too, links and a customer port; every event settles to the
    simulator's tables (it refused such a lab: 'unknown op status'; then, with pe3
    stopped, it took FRR's kept binding of pe3's gone loopback for one it advertises)."""
    from lsr.lab import chaos

    rep = chaos.run(NAME, events=8, seed=2, settle_timeout=60)
    events = [e["event"] for e in rep["log"]]
    assert "stop router rr" in events and "stop router pe3" in events, events
    assert any(e.startswith("lab link blue1-pe1") for e in events), events
    assert rep["ok"], rep["problems"]
    assert set(rep["routers"]) == {"pe1", "p1", "p2", "pe2", "pe3"}  # ours: sampled
    assert_all_up()


def test_our_routers_idle_after(vpnlab):
    """After all of it our routers are idle again (timers, hellos and keepalives only)."""
    pids = {p["role"].split(":", 1)[1]: p["pid"] for p in LabState(NAME).read()["pids"]
            if p["role"].startswith("router:") and pid_alive(p["pid"], p.get("start"))}
    assert set(pids) == {r.name for r in vpnlab.topo.routers if r.kind != "frr"}
    use = cpu_use(pids)
    busy = {r: f"{u:.0%}" for r, u in use.items() if u >= IDLE}
    assert not busy, f"routers busy while idle: {busy}"


# ---------------------------------------------------------------- 6PE (RFC 4798)

NET1, NET2 = "2001:db8:1::/64", "2001:db8:2::/64"  # pe1's (ours) and f1's (FRR's)


@pytest.fixture(scope="module")
def sixpelab():
    lab.down(NAME6)
    try:
        yield lab.up(load_topology(FILE6PE), name=NAME6, timeout=120)
    finally:
        lab.down(NAME6)
    assert not lab_dir(NAME6).exists()
    assert frr.leftover_processes(NAME6) == []


def six_ours() -> set[tuple]:
    """pe1's best labelled IPv6 paths: (prefix, next hop, label, from)."""
    rs = lab.bgp(NAME6, "pe1", "ipv6")["routers"]["pe1"]["routes"]
    return {(r["prefix"], r["next_hop"], r["label"], r["from"]) for r in rs}


def six_frr() -> set[tuple]:
    """f1's best labelled IPv6 paths from FRR's own JSON: (prefix, next hop, label); its
    own route has next hop :: and no label."""
    out = set()
    for p in _frr_json("show bgp ipv6 labeled-unicast json", "f1", NAME6).get("routes", {}):
        d = _frr_json(f"show bgp ipv6 labeled-unicast {p} json", "f1", NAME6)
        for path in d.get("paths", []):
            if path.get("bestpath", {}).get("overall"):
                out.add((p, "local", None) if path.get("local") else
                        (p, _mapped(path["nexthops"][0]["ip"]), path["remoteLabel"]))
    return out


SIX_OURS = {(NET1, "::ffff:10.255.0.1", 1000, "local"), (NET2, "::ffff:10.255.0.3", 3, "f1")}
SIX_FRR = {(NET1, "::ffff:10.255.0.1", 1000), (NET2, "local", None)}


def test_6pe_frr_pe_stopped_and_started(sixpelab):
    """FRR's PE f1 stops: its 6PE route leaves pe1's Loc-RIB and 6PE FIB (RFC 4271 §9),
    although the hold time is 90 s (bgpd's Cease says it at once); started, it is back
    with FRR's label (Implicit Null) and FRR has ours."""
    wait_for(lambda: six_ours() == SIX_OURS and six_frr() == SIX_FRR, 30,
             lambda: f"6PE routes: ours {six_ours()}, FRR's {six_frr()}")
    control.node_stop(NAME6, "f1")
    wait_for(lambda: six_ours() == {(NET1, "::ffff:10.255.0.1", 1000, "local")}, 10,
             lambda: f"f1's 6PE route withdrawn at pe1: {six_ours()}")
    six = lab.lfib(NAME6, ["pe1"])["routers"]["pe1"]["ipv6"]
    assert [r for r in six["routes"] if r.get("prefix") == NET2] == []
    control.node_start(NAME6, "f1", timeout=60)
    wait_for(lambda: six_ours() == SIX_OURS and six_frr() == SIX_FRR, 30,
             lambda: f"6PE routes back: ours {six_ours()}, FRR's {six_frr()}")


def test_6pe_our_pe_stopped_and_started(sixpelab):
    """Our pe1 stops: FRR withdraws its route (its own table, through vtysh); started,
    FRR re-learns it with the same 6PE label."""
    control.node_stop(NAME6, "pe1")
    wait_for(lambda: six_frr() == {(NET2, "local", None)}, 10,
             lambda: f"pe1's 6PE route withdrawn at f1: {six_frr()}")
    control.node_start(NAME6, "pe1", timeout=60)
    wait_for(lambda: six_ours() == SIX_OURS and six_frr() == SIX_FRR, 30,
             lambda: f"6PE routes back: ours {six_ours()}, FRR's {six_frr()}")

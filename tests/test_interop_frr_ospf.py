"""OSPF interoperability with FRRouting's ospfd (kind: frr nodes run zebra + ospfd + ldpd).

In a mixed lab (tests/data/frr-ospf.yaml: unequal costs, ECMP, a chord, an
FRR<->FRR link, host subnets behind both kinds of router):

* adjacencies reach Full in both DD roles (the higher router ID is master):
  both ends say Full, FRR's log and our neighbor table agree on who was master,
  also after the link is failed inside a namespace and brought back;
* every router's LSDB, FRR's and ours, holds the same LSAs (keys, sequence
  numbers, checksums and links) once settled;
* FRR's OSPF routes equal the routes our OSPF computes for that router (the
  simulator, on the virtual clock), prefixes, metrics and next hops;
* tshark decodes every OSPF packet on an FRR-ours link across a flap with no
  malformed or warning item.

Needs root and FRR (/usr/lib/frr/ospfd, vtysh); the capture needs tcpdump and tshark.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, frr_missing, is_root
from tests.wait import Capture, wait_for

FRR_WHY = frr_missing()
pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not is_root(), reason="needs root"),
    pytest.mark.skipif(FRR_WHY is not None, reason=f"FRR not usable: {FRR_WHY}"),
]

if is_root() and FRR_WHY is None:
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab import frr
    from lsr.lab.state import LabState, lab_dir, pid_alive

DATA = ROOT / "tests" / "data"
UNIQ = os.getpid() % 1000


def _name(k: int) -> str:
    return f"o{UNIQ}{k}"  # lab names: 'o' + digits (test_interop_frr uses 'f')


@pytest.fixture(scope="module")
def mixed():
    name = _name(1)
    pids: list = []
    try:
        L = lab.up(load_topology(DATA / "frr-ospf.yaml"), name=name, timeout=60)
        pids = [(p["pid"], p["start"]) for p in LabState(name).read()["pids"]]
        yield L
    finally:
        lab.down(name)
    nss = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"lsr-{name}." not in nss
    assert not lab_dir(name).exists()
    assert not [p for p, st in pids if pid_alive(p, st)]
    assert frr.leftover_processes(name) == []


# ---------------------------------------------------------------- helpers


def _neighbors(L, router: str) -> dict[str, dict[str, Any]]:
    """interface -> neighbor entry (state, router_id...), FRR's or ours."""
    if frr.is_frr(L.topo, router):
        nbrs = frr.ospf_neighbors(L.name, L.topo, router)
    else:
        nbrs = lab.query(L.name, router, "ospf")["neighbors"]
    return {n["interface"]: n for n in nbrs}


def _lsdb(L, router: str) -> list[dict[str, Any]]:
    if frr.is_frr(L.topo, router):
        return frr.ospf_lsdb(L.name, router)
    return lab.query(L.name, router, "ospf", what="lsdb")["lsdb"]


def _mixed_links(L) -> list[tuple[str, str, str, str]]:
    """(FRR node, its interface, our router, its interface) for every FRR-ours link."""
    out = []
    for link in L.topo.links:
        (a, ai), (b, bi) = link.a, link.b
        na, nb = L.topo.nodes[a], L.topo.nodes[b]
        if not (na.is_router and nb.is_router) or (na.kind == "frr") == (nb.kind == "frr"):
            continue
        out.append((a, ai, b, bi) if na.kind == "frr" else (b, bi, a, ai))
    return out


def _full_both_ends(L, f: str, fi: str, r: str, ri: str) -> bool:
    a, b = _neighbors(L, f).get(fi), _neighbors(L, r).get(ri)
    return bool(a and b and a["state"] == "Full" and b["state"] == "Full")


def _frr_log(L, node: str) -> str:
    return frr.log_path(L.name, node, "ospfd").read_text(errors="replace")


def _check_roles(L, f: str, fi: str, r: str, ri: str, log_from: int = 0) -> str:
    """Who was master on the f-r adjacency, as both sides saw it (the higher router ID)."""
    frid, rrid = L.topo.nodes[f].lsr_id, L.topo.nodes[r].lsr_id
    frr_master = int(frid) > int(rrid)
    ours = _neighbors(L, r)[ri]
    assert ours["router_id"] == str(frid) and ours["state"] == "Full"
    assert ours["role"] == ("master" if frr_master else "slave"), (f, r, ours)  # the neighbor's
    # FRR logs its own role for each negotiation (log-adjacency-changes detail)
    role = "Master" if frr_master else "Slave"
    assert f"Packet[DD]: Neighbor {rrid} Negotiation done ({role})." in _frr_log(L, f)[log_from:]
    return "FRR" if frr_master else "ours"


# ---------------------------------------------------------------- configuration


def test_generated_ospfd_config_is_accepted_by_frr():
    """ospfd.conf from the topology: FRR's own parser takes every line; the values are ours."""
    from lsr.core.topology import load_topology as load
    from ospf.config import from_topology

    topo = load(DATA / "frr-ospf.yaml")
    d = Path(tempfile.mkdtemp(prefix="lsr-frr-ospf-conf-"))
    try:
        conf = frr.render(topo, "f3", d)["ospfd.conf"]
        cfg = from_topology(topo, "f3")
        for line in ("router ospf", " ospf router-id 10.255.0.3",
                     " timers throttle spf 0 50 5000", " timers throttle lsa all 1000",
                     " timers lsa min-arrival 500", "interface eth1",
                     " ip ospf network point-to-point", " ip ospf cost 10",
                     f" ip ospf hello-interval {cfg.hello_interval}",
                     f" ip ospf dead-interval {cfg.dead_interval}", "interface eth0",
                     " ip ospf passive", " ip ospf cost 7", "interface lo", " ip ospf area 0"):
            assert f"\n{line}\n" in conf, line
        (d / "ospfd.conf").write_text(conf)
        shutil.chown(d, "frr", "frr")
        shutil.chown(d / "ospfd.conf", "frr", "frr")
        r = subprocess.run(["/usr/lib/frr/ospfd", "-C", "-f", str(d / "ospfd.conf"),
                            "--vty_socket", str(d), "-u", "frr", "-g", "frr"],
                           capture_output=True, text=True, timeout=30)
        out = r.stdout + r.stderr
        assert r.returncode == 0 and "No such command" not in out and "rror" not in out, out
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- adjacencies


def test_full_in_both_dd_roles(mixed):
    links = _mixed_links(mixed)
    roles = set()
    for f, fi, r, ri in links:
        assert _full_both_ends(mixed, f, fi, r, ri), (f, r)
        roles.add(_check_roles(mixed, f, fi, r, ri))
    assert roles == {"FRR", "ours"}  # the topology has FRR as master and as slave
    # FRR <-> FRR too (f2-f3, f2-f5)
    assert {n["neighbor"]: n["state"] for n in _neighbors(mixed, "f2").values()} == {
        "r1": "Full", "f3": "Full", "f5": "Full"}


def test_failed_inside_a_namespace_and_back_both_roles(mixed, tmp_path: Path):
    """`ip link set ethN down` inside our router (FRR master) and inside the FRR node (ours
    master): both ends drop the adjacency at once (carrier); up again, it renegotiates
    with the same master and reaches Full. tshark decodes every OSPF packet of the
    FRR-ours link across it with no malformed or warning item."""
    name = mixed.name
    cases = [("f2", "eth1", "r1", "eth1", "r1"),   # FRR higher: FRR master; fail in ours
             ("f3", "eth2", "r4", "eth1", "f3")]   # ours higher: ours master; fail in FRR
    pcap = tmp_path / "f2-r1.pcap"
    # on f2's end: the failure downs r1's (tcpdump stops on an interface set down)
    cap = Capture(f"lsr-{name}.f2", "eth1", pcap, "proto", "89")
    try:
        for f, fi, r, ri, where in cases:
            mark = len(_frr_log(mixed, f))
            ifname = ri if where == r else fi
            assert lab.exec_in(name, where, ["ip", "link", "set", ifname, "down"]) == 0
            wait_for(lambda f=f, fi=fi, r=r, ri=ri: fi not in _neighbors(mixed, f)
                     and ri not in _neighbors(mixed, r), 10,
                     f"{f}-{r} adjacency gone on both ends")
            assert lab.exec_in(name, where, ["ip", "link", "set", ifname, "up"]) == 0
            wait_for(lambda f=f, fi=fi, r=r, ri=ri: _full_both_ends(mixed, f, fi, r, ri), 30,
                     f"{f}-{r} Full again", interval=0.3)
            _check_roles(mixed, f, fi, r, ri, log_from=mark)
        lab.wait_converged(name, timeout=40)  # LFIBs equal the simulator's again
    finally:
        cap.stop()
    if shutil.which("tshark") is None:
        return
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "ospf", "-T", "fields", "-E", "separator=|",
         "-e", "frame.number", "-e", "ip.src", "-e", "ospf.msg", "-e", "_ws.malformed",
         "-e", "_ws.expert.severity", "-e", "_ws.expert.message"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ours = str(mixed.topo.interface("r1", "eth1").address.ip)
    sent: set[str] = set()
    problems = []
    for line in out.stdout.splitlines():
        num, src, msg, malformed, sev, text = (line.split("|") + [""] * 6)[:6]
        if src == ours:
            sent.add(msg)
        # expert severities: chat 0x200000, note 0x400000, warn 0x600000, error 0x800000
        if malformed or any(int(s) >= 0x600000 for s in sev.split(",") if s):
            problems.append(line)
    assert not problems, problems
    assert {"1", "2", "4", "5"} <= sent  # Hello, DD, LS Update, LS Ack


# ---------------------------------------------------------------- LSDB and routes


def _lsdb_keys(entries: list[dict[str, Any]]) -> dict[tuple, tuple]:
    return {(e["type"], e["id"], e["adv_router"]): (int(e["seq"], 16), int(e["checksum"], 16))
            for e in entries}


def test_lsdbs_hold_the_same_lsas(mixed):
    routers = [r.name for r in mixed.topo.routers]

    def same() -> dict[str, Any] | None:
        dbs = {r: _lsdb(mixed, r) for r in routers}
        keys = {r: _lsdb_keys(db) for r, db in dbs.items()}
        first = keys[routers[0]]
        return dbs if all(k == first for k in keys.values()) and len(first) == 6 else None

    dbs = wait_for(same, 30, "every LSDB the same (keys, seq, checksum)", interval=0.5)
    # FRR's decoding of every LSA equals ours, links included (type, id, data, metric)
    def links(e: dict[str, Any]) -> list[tuple]:
        return sorted((x["type"], x["link_id"], x["link_data"], x["metric"]) for x in e["links"])

    body = {r: {(e["type"], e["id"], e["adv_router"]): (links(e), e["length"], e["flags"])
                for e in db} for r, db in dbs.items()}
    ref = body["r1"]
    for r in routers:
        assert body[r] == ref, r
    # the FRR router-LSAs advertise their loopbacks at cost 0, as ours do
    for f in ("f2", "f3", "f5"):
        lo = str(mixed.topo.nodes[f].lsr_id)
        assert (3, lo, "255.255.255.255", 0) in ref[(1, lo, lo)][0]


def _ours_for(L, router: str) -> dict[str, tuple[int, list]]:
    """The RIB our OSPF computes for `router` (FRR's included): the simulator's."""
    from lsr.sim import Simulation

    sim = Simulation(L.topo)
    sim.run()
    return {str(p): (r.metric, sorted((nh.neighbor, nh.interface, str(nh.address))
                                      for nh in r.nexthops))
            for p, r in sim.ribs[router].items()}


def test_frr_routes_equal_ours(mixed):
    """Remote prefixes: same metric, same ECMP next hops. Directly connected ones: FRR keeps
    an OSPF route at the interface cost (zebra prefers the connected route), ours is the
    connected entry (metric 0): compared as connected, same prefixes."""
    ecmp = 0
    for f in ("f2", "f3", "f5"):
        want = _ours_for(mixed, f)

        def frr_rib(f: str = f, want: dict = want) -> dict[str, tuple[int, list]] | None:
            got = {r["prefix"]: (r["metric"], sorted(
                (h["neighbor"], h["interface"], h["nexthop"]) for h in r["nexthops"]))
                for r in frr.ospf_routes(mixed.name, mixed.topo, f)}
            same = set(got) == set(want) and all(
                got[p] == want[p] if want[p][1] else got[p][1] == [] for p in want)
            return got if same else None

        got = wait_for(frr_rib, 20, f"{f}: FRR's OSPF routes equal ours", interval=0.5)
        ecmp += sum(1 for _, hops in got.values() if len(hops) > 1)
    assert ecmp >= 4  # f2 and f5 have ECMP routes
    # and our routers' RIBs equal the same computation
    for r in ("r1", "r4", "r6"):
        want = _ours_for(mixed, r)
        got = {e["prefix"]: (e["metric"], sorted((h["neighbor"], h["interface"], h["nexthop"])
                                                 for h in e["nexthops"]))
               for e in lab.query(mixed.name, r, "rib")}
        assert got == want, r


def test_frr_kernel_routes_are_ospfs(mixed):
    """zebra installs ospfd's routes (proto ospf); nothing static is left from the old
    central IGP, and FRR's dataplane forwards with them (its LFIB has ECMP FTNs)."""
    for f in ("f2", "f3", "f5"):
        ns = f"lsr-{mixed.name}.{f}"
        static = subprocess.run(["ip", "-n", ns, "route", "show", "proto", "static"],
                                capture_output=True, text=True).stdout
        assert static.strip() == ""
        ospf = subprocess.run(["ip", "-n", ns, "route", "show", "proto", "ospf"],
                              capture_output=True, text=True).stdout
        assert str(mixed.topo.nodes["r4"].lsr_id) in ospf
    j = lab.lfib(mixed.name, ["f2"])["routers"]["f2"]
    ftn = {e["fec"]: e["nexthops"] for e in j["ftn"]}
    assert sorted(nh["neighbor"] for nh in ftn["10.255.0.4/32"]) == ["f3", "f5"]


# ---------------------------------------------------------------- outage (bench_outage)


def test_failed_link_traffic_takes_the_other_path():
    """benchmarks/bench_outage.py's diamond with FRR P routers: `ip link set eth2 down`
    inside pe1 (its link to p1, the path both ways) under probe streams both ways. Both
    streams recover, over p2 (pe1's FTN now goes there); the link comes back and the lab
    reconverges. Behaviour only: the outage numbers are the benchmark's."""
    from benchmarks.bench_outage import fail_once, restore, topology

    topo = topology("mixed")
    name = _name(2)
    pids: list = []
    try:
        lab.up(topo, name=name, timeout=60)
        pids = [(p["pid"], p["start"]) for p in LabState(name).read()["pids"]]
        pe1 = {e["fec"]: e for e in lab.lfib(name, ["pe1"])["routers"]["pe1"]["ftn"]}
        assert [nh["neighbor"] for nh in pe1["192.168.2.0/24"]["nexthops"]] == ["p1"]
        res = fail_once(name, topo, rate=200, before=0.5, after=2.5)
        for d, r in res.items():
            assert r["recovered"] and r["lost"] < r["sent"] // 2, (d, r)
        pe1 = {e["fec"]: e for e in lab.lfib(name, ["pe1"])["routers"]["pe1"]["ftn"]}
        assert [nh["neighbor"] for nh in pe1["192.168.2.0/24"]["nexthops"]] == ["p2"]
        p2 = {e["fec"]: e for e in lab.lfib(name, ["p2"])["routers"]["p2"]["ftn"]}
        assert [nh["neighbor"] for nh in p2["192.168.1.0/24"]["nexthops"]] == ["pe1"]
        restore(name, settle=0)
    finally:
        lab.down(name)
    assert not [p for p, st in pids if pid_alive(p, st)]
    assert frr.leftover_processes(name) == []

"""Benchmark the simulator with BGP/MPLS IP VPNs (RFC 4364): time and memory to converge.

    python -m benchmarks.bench_vpn [--pes 50] [--vrfs-per-pe 10] [--vpns 100]
                                   [--prefixes 40] [--ps 8] [--json]

The topology (`vpn_topology_yaml`): a core of P routers in a ring with chords, every PE
on two of them, a route reflector on two; each PE has `vrfs-per-pe` VRFs, VRF i of PE k
in VPN (k * vrfs-per-pe + i) mod vpns (route target 65000:VPN), each with one customer
port (a host, its own /28) and `prefixes - 1` static routes towards it, so every VRF originates
`prefixes` routes. The default is the issue's case: 50 PEs, 500 VRFs, 20,000 VPN routes
(each VPN on 5 PEs: every VRF imports 160 routes, 80,000 VRF FIB entries in all).

Measured in one fresh interpreter: loading the topology (the YAML text is ~2 MB: most
of `load_s` is PyYAML's pure-Python scanner, which `lsr.core.yamlpos` uses for key
positions), the simulation to convergence
(OSPF, LDP, iBGP through the reflector, every VPN route in every PE's Loc-RIB), then
composing every PE's VRF FIBs (`Simulation.lfibs`, as `lsr sim vrf` does); peak RSS
(ru_maxrss) after each step.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bgp.config import validate as bgp_validate  # noqa: E402
from lsr.core import topology as topo_mod  # noqa: E402
from lsr.sim import Simulation  # noqa: E402

STATIC_BASE = int(IPv4Address("100.64.0.0"))  # /28 per static route (RFC 6598 space)
SITE_BASE = int(IPv4Address("172.16.0.0"))  # /28 per customer link: VPN * 64 + PE index


def vpn_topology_yaml(pes: int = 50, vrfs_per_pe: int = 10, vpns: int = 100,
                      prefixes: int = 40, ps: int = 8) -> str:
    nodes: dict[str, dict] = {}
    links: list[dict] = []
    ifs: dict[str, int] = {}

    def port(n: str) -> str:
        ifs[n] = ifs.get(n, 0) + 1
        return f"{n}:eth{ifs[n]}"

    for i in range(ps):
        nodes[f"p{i}"] = {"loopback": f"10.255.0.{i + 1}"}
    nodes["rr"] = {"loopback": "10.255.0.100"}
    for i in range(ps):  # ring, and a chord across
        links.append({"endpoints": [port(f"p{i}"), port(f"p{(i + 1) % ps}")]})
    for i in range(ps // 2):
        links.append({"endpoints": [port(f"p{i}"), port(f"p{i + ps // 2}")], "cost": 20})
    links += [{"endpoints": [port("rr"), port(f"p{x}")], "cost": 100} for x in (0, ps // 2)]
    route = 0
    for k in range(pes):
        pe = f"pe{k}"
        lo = f"10.255.{1 + k // 250}.{1 + k % 250}"
        vrfs = {}
        for i in range(vrfs_per_pe):
            vpn = (k * vrfs_per_pe + i) % vpns
            host = f"h{k}x{i}"
            nodes[host] = {"kind": "host"}
            pe_port = port(pe)
            site = IPv4Network((SITE_BASE + 16 * (vpn * 64 + k % 64), 28))
            links.append({"endpoints": [f"{host}:eth0", pe_port], "subnet": str(site)})
            ce = str(site.network_address + 1)  # the first endpoint's address
            statics = []
            for _ in range(prefixes - 1):
                statics.append({"to": str(IPv4Network((STATIC_BASE + 16 * route, 28))), "via": ce})
                route += 1
            vrfs[f"v{vpn}"] = {"rd": f"{lo}:{i}", "rt": f"65000:{vpn}",
                               "interfaces": [pe_port.split(":")[1]], "routes": statics}
        nodes[pe] = {"loopback": lo, "vrfs": vrfs}
        for x in (k % ps, (k + ps // 2 + 1) % ps):
            links.append({"endpoints": [port(pe), port(f"p{x}")]})
    doc = {"name": "vpnbench", "topology": {"nodes": nodes, "links": links},
           "bgp": {"asn": 65000, "routers": {"rr": {"route_reflector": True},
                                             **{f"pe{k}": {} for k in range(pes)}}}}
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=1000)


def load(text: str) -> topo_mod.Topology:
    if "bgp" not in topo_mod.section_names():
        topo_mod.register_section("bgp", bgp_validate)
    return topo_mod.parse_topology(text, "<vpnbench>")


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run(pes: int, vrfs_per_pe: int, vpns: int, prefixes: int, ps: int) -> dict:
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    topo = load(vpn_topology_yaml(pes, vrfs_per_pe, vpns, prefixes, ps))
    t_load = time.perf_counter() - t0
    rss_topo = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    sim = Simulation(topo)
    res = sim.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_sim = _rss_mb()
    t0 = time.perf_counter()
    lfibs = sim.lfibs()
    t_fib = time.perf_counter() - t0
    fib = sum(len(f) for lf in lfibs.values() for f in lf.vrfs.values())
    remote = sum(1 for lf in lfibs.values() for f in lf.vrfs.values() for e in f.values()
                 if e.source == "vpn")
    routes = sum(len(r) for r in sim._vpn_exported.values())
    locrib = sum(len(b.loc_rib) for b in sim.bgp.values())
    return {
        "pes": pes, "vrfs": pes * vrfs_per_pe, "vpns": vpns, "vpn_routes": routes,
        "routers": len(topo.routers), "hosts": len(topo.hosts), "links": len(topo.links),
        "converged": res.converged, "virtual_s": round(res.time, 3), "events": res.events,
        "load_s": round(t_load, 2), "converge_wall_s": round(wall, 2), "converge_cpu_s": round(cpu, 2),
        "compose_s": round(t_fib, 2), "vrf_fib_entries": fib, "vrf_remote_entries": remote,
        "loc_rib_paths": locrib, "rss_base_MB": rss0, "rss_topology_MB": rss_topo,
        "rss_converged_MB": rss_sim, "rss_peak_MB": _rss_mb(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pes", type=int, default=50)
    ap.add_argument("--vrfs-per-pe", type=int, default=10)
    ap.add_argument("--vpns", type=int, default=100)
    ap.add_argument("--prefixes", type=int, default=40, help="routes each VRF originates")
    ap.add_argument("--ps", type=int, default=8, help="P routers in the core")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = run(a.pes, a.vrfs_per_pe, a.vpns, a.prefixes, a.ps)
    if a.json:
        print(json.dumps(r, indent=2))
        return
    for k, v in r.items():
        print(f"{k:22} {v}")


if __name__ == "__main__":
    main()

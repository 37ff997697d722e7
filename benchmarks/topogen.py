"""Random connected topologies: the one generator for property tests and benchmarks.

Here rather than in tests/ or the package: benchmarks and tests (both at the
repository root) import it, the package does not need it.
"""

from __future__ import annotations

import random

import yaml

from lsr.core.topology import Topology, parse_topology


def random_topology_yaml(
    n: int, extra: int, seed: int, max_cost: int = 5, hosts: int = 0, name: str = "rnd"
) -> str:
    """n routers on a random spanning tree plus `extra` random links (parallel ones allowed)."""
    rng = random.Random(seed)
    nodes: dict[str, dict] = {f"r{i}": {} for i in range(n)}
    links = []
    ifcount = {f"r{i}": 0 for i in range(n)}

    def ifname(r: str) -> str:
        ifcount[r] += 1
        return f"eth{ifcount[r]}"

    def add(a: str, b: str) -> None:
        links.append({"endpoints": [f"{a}:{ifname(a)}", f"{b}:{ifname(b)}"],
                      "cost": rng.randint(1, max_cost)})

    for i in range(1, n):
        add(f"r{rng.randrange(i)}", f"r{i}")
    for _ in range(extra if n > 1 else 0):
        a, b = rng.sample(range(n), 2)
        add(f"r{a}", f"r{b}")
    for h in range(hosts):
        nodes[f"h{h}"] = {"kind": "host"}
        r = f"r{rng.randrange(n)}"
        links.append({"endpoints": [f"h{h}:eth0", f"{r}:{ifname(r)}"]})
    return yaml.safe_dump({"name": name, "topology": {"nodes": nodes, "links": links}},
                          sort_keys=False)


def random_topology(n: int, extra: int, seed: int, **kw) -> Topology:
    return parse_topology(random_topology_yaml(n, extra, seed, **kw), f"<random {n}/{seed}>")

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


# Real ISP maps (Topology Zoo, Rocketfuel) are sparse: ~1.2 links a router, a
# meshed core of a few dozen routers, long regional chains and rings hanging off
# it, and a fifth to a quarter of the routers on a single link (degree-1 spurs).
ISP_SIZES = (200, 400, 750, 1500, 3000)


def isp_topology_yaml(n: int, seed: int = 1, name: str = "isp") -> str:
    """An ISP-shaped map of n routers (seeded): a core ring with chords, chains from
    the core (most of them closed into regional rings) and degree-1 spurs."""
    if n < 8:
        raise ValueError("an ISP map needs at least 8 routers")
    rng = random.Random(seed)
    ncore = max(5, round(n * 0.05))
    nspur = round(n * 0.22)
    links: list[tuple[int, int, int]] = []
    pairs: set[frozenset[int]] = set()
    weight: list[int] = []  # attachment weight of each non-spur router: core 4, chain 1

    def add(a: int, b: int, cost: int) -> bool:
        if a == b or frozenset((a, b)) in pairs:
            return False
        pairs.add(frozenset((a, b)))
        links.append((a, b, cost))
        return True

    def pick(exclude: set[int] = frozenset()) -> int:  # type: ignore[assignment]
        while True:
            r = rng.choices(range(len(weight)), weights=weight)[0]
            if r not in exclude:
                return r

    for i in range(ncore):
        weight.append(4)
        add(i, (i + 1) % ncore, 10)
    chords = 0
    while chords < min(3 * ncore // 2, ncore * (ncore - 3) // 2):  # at most a full mesh
        chords += add(rng.randrange(ncore), rng.randrange(ncore), rng.choice((10, 20)))
    left = n - ncore - nspur
    longest = 3 + int(n ** 0.35)
    while left > 0:
        size = min(left, rng.randint(1, longest))
        start = pick()
        prev = start
        for _ in range(size):
            new = len(weight)
            weight.append(1)
            add(prev, new, rng.choice((10, 10, 20, 30, 50)))
            prev = new
        if rng.random() < 0.8:  # a regional ring: the chain's end joins another router
            add(prev, pick({start, prev}), rng.choice((10, 20, 30, 50)))
        left -= size
    hubs = len(weight)
    for s in range(nspur):
        add(hubs + s, pick(), 10)
    nodes = {f"r{i}": {} for i in range(n)}
    ifs = [0] * n

    def ep(r: int) -> str:
        ifs[r] += 1
        return f"r{r}:eth{ifs[r]}"

    out = [{"endpoints": [ep(a), ep(b)], "cost": c} for a, b, c in links]
    topology: dict = {"nodes": nodes, "links": out}
    if n > 1000:
        # Router k's default label block starts at 1000*(k+1): past ~1,000 routers some
        # are left fewer labels than the map has prefixes. One shared range instead.
        topology = {"defaults": {"labels": [16, (1 << 20) - 1]}, **topology}
    return yaml.safe_dump({"name": name, "topology": topology}, sort_keys=False)


def isp_topology(n: int, seed: int = 1, name: str = "isp") -> Topology:
    return parse_topology(isp_topology_yaml(n, seed, name), f"<isp {n}/{seed}>")

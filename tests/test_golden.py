"""Golden outputs: what users see must not change by accident.

For every bundled topology the suite runs `lsr sim lfib|bindings|trace --json`
(and `lsr sim vrf --json` and a `draw --trace` for one with VRFs),
`lsr validate --json` and `lsr draw` (DOT text, with and without LSP overlays)
and compares the bytes with `tests/golden/<topology>/`. A deliberate change is
made by regenerating them and reviewing the diff:

    LSR_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.topology import load_topology

from .conftest import BUNDLED, ROOT

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("LSR_UPDATE_GOLDEN") == "1"


def _cases(path: Path) -> list[tuple[str, list[str]]]:
    """(golden file name, lsr arguments) for one topology."""
    topo = load_topology(path)
    f = str(path.relative_to(ROOT))  # run from the repository root: outputs name no checkout
    routers = [n.name for n in topo.nodes.values() if n.kind == "lsr"]
    hosts = [n.name for n in topo.nodes.values() if n.kind == "host"]
    cases = [
        ("sim-lfib.json", ["sim", "lfib", f, "--json"]),
        ("validate.json", ["validate", f, "--json"]),
        ("draw.dot", ["draw", f]),
        ("draw-lsp.dot", ["draw", f, "--lsp", f"{routers[0]}:{routers[-1]}",
                          "--fec", routers[len(routers) // 2]]),
    ]
    cases += [(f"sim-bindings-{r}.json", ["sim", "bindings", f, "-r", r, "--json"])
              for r in routers]
    # Every ordered host pair, and one router-to-router walk with a TTL that
    # expires inside the core (ICMP sent along the LSP).
    cases += [(f"sim-trace-{a}-{b}.json", ["sim", "trace", f, a, b, "--json"])
              for a in hosts for b in hosts if a != b]
    cases.append((f"sim-trace-{routers[0]}-{routers[-1]}-ttl2.json",
                  ["sim", "trace", f, routers[0], routers[-1], "--ttl", "2", "--proto", "udp",
                   "--json"]))
    # IPv6 (6PE): every ordered pair of IPv6 hosts, and one UDP walk whose hop limit
    # expires inside the core (ICMPv6 with the label stack, sent along the LSP).
    hosts6 = [h for h in hosts if any(i.address6 for i in topo.nodes[h].interfaces.values())]
    cases += [(f"sim-trace6-{a}-{b}.json", ["sim", "trace", f, a, b, "-6", "--json"])
              for a in hosts6 for b in hosts6 if a != b]
    if len(hosts6) > 1:
        cases.append((f"sim-trace6-{hosts6[0]}-{hosts6[-1]}-ttl3.json",
                      ["sim", "trace", f, hosts6[0], hosts6[-1], "-6", "--ttl", "3", "--proto",
                       "udp", "--json"]))
    # VPNs (RFC 4364): the VRF tables, and a site-to-site walk drawn with its label stacks
    # and one whose TTL runs out in the core.
    sites = [h for h in hosts if topo.vrf_of(h) is not None]
    if sites:
        a = sites[0]
        b = next(h for h in sites if topo.vrf_of(h) == topo.vrf_of(a)
                 and topo.pe_of(h) != topo.pe_of(a))
        cases += [("sim-vrf.json", ["sim", "vrf", f, "--json"]),
                  (f"draw-trace-{a}-{b}.dot", ["draw", f, "--trace", f"{a}:{b}"]),
                  (f"sim-trace-{a}-{b}-ttl2.json", ["sim", "trace", f, a, b, "--ttl", "2",
                                                    "--json"])]
    return cases


def _all() -> list:
    return [pytest.param(p, name, args, id=f"{p.stem}/{name}")
            for p in BUNDLED for name, args in _cases(p)]


@pytest.mark.parametrize("path,name,args", _all())
def test_golden(path: Path, name: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    # validate exits 1 when a check fails; the output is what is pinned.
    assert res.exit_code in (0, 1), res.output
    golden = GOLDEN / path.stem / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(res.stdout, encoding="utf-8")
    assert golden.exists(), f"{golden} missing: run with LSR_UPDATE_GOLDEN=1 and review"
    assert res.stdout == golden.read_text(encoding="utf-8"), (
        f"{' '.join(args)} differs from {golden} (regenerate with LSR_UPDATE_GOLDEN=1 "
        "if the change is meant)")

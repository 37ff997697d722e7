"""The simulator in partitions (lsr.simpart, in this process): the same LFIBs as one
process, byte for byte, on every bundled topology and on generated networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.topogen import isp_topology, random_topology
from lsr.core.topology import load_topology
from lsr.errors import LsrError
from lsr.sim import converge
from lsr.simpart import partition, run_partitioned

from .conftest import BUNDLED, ROOT, TOPOLOGIES


def _same(topo, parts: int, down: tuple[str, ...] = ()) -> None:
    one = converge(topo, down)
    split = run_partitioned(topo, partition(topo, parts), down=down)
    assert one.converged and split.converged
    assert json.dumps(split.lfib_json(), sort_keys=True) == \
        json.dumps(one.sim.lfib_json(), sort_keys=True)
    a, b = one.sim.summary_json(one.result), split.summary_json()
    for k in ("sessions", "fecs", "labels", "ftn_entries", "ilm_entries", "convergence_time",
              "messages"):
        assert a[k] == b[k], k


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: Path(p).stem)
@pytest.mark.parametrize("parts", [2, 3])
def test_bundled(path: Path, parts: int) -> None:
    topo = load_topology(path)
    if "bgp" in topo.extra:  # BGP sessions are not partitioned: refused in one line
        with pytest.raises(LsrError, match="does not carry BGP"):
            _same(topo, parts)
        return
    _same(topo, parts)


def test_link_down_after_convergence() -> None:
    _same(load_topology(TOPOLOGIES / "backbone.yaml"), 2, ("lon-ams",))


@pytest.mark.slow
def test_random_and_isp() -> None:
    _same(random_topology(80, 20, 3, max_cost=10, name="rnd"), 3)
    _same(isp_topology(60, 2), 2)


def test_partition_is_a_cover_in_walk_order() -> None:
    topo = isp_topology(50, 1)
    groups = partition(topo, 3)
    assert sorted(r for g in groups for r in g) == sorted(r.name for r in topo.routers)
    assert sorted(len(g) for g in groups) == [16, 17, 17]
    assert partition(topo, 3) == groups  # deterministic
    assert len(partition(topo, 500)) == 50
    with pytest.raises(LsrError):
        partition(topo, 0)


def test_bgp_is_refused() -> None:
    topo = load_topology(Path(__file__).parent / "data" / "bgp-rr.yaml")
    with pytest.raises(LsrError, match="BGP"):
        run_partitioned(topo, partition(topo, 2))


@pytest.mark.parametrize("argv,fragment", [
    (["sim", "run", "tests/data/bgp-rr.yaml", "--ray"], "does not carry BGP"),
    (["sim", "lfib", "topologies/ring.yaml", "--ray", "127.0.0.9:1"], "--ray 127.0.0.9:1: "),
    (["sim", "run", "topologies/ring.yaml", "--down", "x-y", "--ray", "127.0.0.9:1"], "x-y"),
])
def test_ray_bad_input_is_one_line(argv: list[str], fragment: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Before any cluster is used: exit 2 and one line (Ray installed or not)."""
    from click.testing import CliRunner

    from lsr.cli import main

    monkeypatch.chdir(ROOT)
    r = CliRunner().invoke(main, argv)
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x.startswith("lsr:")]
    assert len(lines) == 1 and fragment in lines[0], r.output

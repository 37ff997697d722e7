"""A containerlab example comes up as a lab (root): containerlab's own clos01 (SR Linux
leaves and spine with `e1-1` interfaces, two linux clients), loaded as it is, and its
clients ping each other across the label-switched fabric."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import is_root

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology

CLOS01 = Path(__file__).parent / "data" / "containerlab" / "clos01.clab.yml"
NAME = f"hcx{os.getpid() % 10000}"


@pytest.fixture(scope="module")
def clos01():
    try:
        r = CliRunner().invoke(__import__("lsr.cli", fromlist=["main"]).main,
                               ["lab", "up", str(CLOS01), "--name", NAME, "--timeout", "60"])
        assert r.exit_code == 0, r.output
        assert "a containerlab file, loaded as 3 routers and 2 hosts" in r.stderr
        yield lab.Lab(NAME, lab.topology(NAME), Path())
    finally:
        lab.down(NAME)


def test_clients_ping_across_the_fabric(clos01):
    t = load_topology(CLOS01)
    iface = next(iter(t.nodes["client2"].interfaces.values()))
    r = clos01.run("client1", ["ping", "-c", "3", "-i", "0.2", "-W", "2", str(iface.address.ip)])
    assert r.returncode == 0 and " 0% packet loss" in r.stdout, r.stdout
    # through the spine, labelled: leaf1 pushes onto e1-1 (containerlab's interface name)
    leaf1 = lab.lfib(NAME, ["leaf1"])["routers"]["leaf1"]
    ftn = next(e for e in leaf1["ftn"] if e["fec"] == str(iface.address.network))
    assert ftn["nexthops"][0]["interface"] == "e1-1" and ftn["nexthops"][0]["neighbor"] == "spine"
    assert lab.query(NAME, "spine", "counters")["dataplane"]["forwarded"] >= 3

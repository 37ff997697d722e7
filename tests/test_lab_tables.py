"""Live labs (root): the tables of `lsr lab ...` are the tables of `lsr sim ...` for the same
network (modulo uptimes), and a lab that cannot converge is named and kept with --keep."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT, TOPOLOGIES, is_root
from tests.wait import wait_for

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab.state import lab_dir

UNIQ = os.getpid() % 10000
HMS = re.compile(r"\b\d{2}:\d{2}:\d{2}\b")
MD5_EXAMPLE = ROOT / "docs" / "examples" / "line3-md5.yaml"
ONE_SIDED = "pe1-p1: LDP session not established: TCP MD5 password on pe1 only"


def cli(*args: str, code: int = 0) -> str:
    """What the command prints on stdout, uptimes masked."""
    from lsr.cli import main

    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert r.exit_code == code, r.output
    return HMS.sub("HH:MM:SS", r.stdout)


def table_pairs(name: str, path: str, routers: list[str]) -> list[tuple[str, str, str]]:
    """(what, the lab's table, the simulator's table) for every kind of table."""
    out = [("lfib", cli("lab", "lfib", name), cli("sim", "lfib", path))]
    for r in routers:
        out += [
            (f"{r} bindings", cli("lab", "ldp", name, r, "bindings"),
             cli("sim", "bindings", path, "-r", r)),
            (f"{r} ldp neighbors", cli("lab", "ldp", name, r, "neighbors"),
             cli("sim", "neighbors", path, "-r", r)),
            (f"{r} ospf neighbors", cli("lab", "ospf", name, r),
             cli("sim", "ospf", path, "-r", r)),
        ]
    return out


def test_lab_and_sim_print_the_same_tables() -> None:
    name = f"hdt{UNIQ}"
    path = str(TOPOLOGIES / "diamond.yaml")
    topo = load_topology(path)
    try:
        lab.up(topo, name=name, timeout=30)

        def differing() -> list[str] | None:
            pairs = table_pairs(name, path, [r.name for r in topo.routers])
            bad = [what for what, live, simulated in pairs if live != simulated]
            return None if bad else pairs  # poll: a retransmission may still be pending

        try:
            pairs = wait_for(differing, 20, "lab tables equal to the simulator's")
        except Exception:
            for what, live, simulated in table_pairs(name, path, [r.name for r in topo.routers]):
                if live != simulated:
                    print(f"--- {what}: lab\n{live}\n--- sim\n{simulated}")
            raise
        headers = {what: live.splitlines()[:4] for what, live, _ in pairs}
        assert "┃ FEC" in "".join(headers["lfib"]) and "uptime" in "".join(headers["pe1 ldp neighbors"])
        assert "imp-null" in dict((w, t) for w, t, _ in pairs)["pe2 bindings"]
        assert "HH:MM:SS" in dict((w, t) for w, t, _ in pairs)["p1 ospf neighbors"]
    finally:
        lab.down(name)


def test_up_keep_leaves_a_lab_that_did_not_converge() -> None:
    name = f"hdm{UNIQ}"
    try:
        r = subprocess.run(["lsr", "lab", "up", str(MD5_EXAMPLE), "--name", name, "--keep",
                            "--timeout", "12"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, r.stderr
        first, second = r.stderr.strip().splitlines()
        assert first.startswith(f"lsr: lab '{name}' did not converge: {ONE_SIDED}")
        assert second.startswith(f"lsr: lab '{name}' kept for debugging")
        st = subprocess.run(["lsr", "lab", "status", name], capture_output=True, text=True,
                            timeout=60)
        assert st.returncode == 0 and "kept after a failed lab up" in st.stdout
        assert lab.status(name)["failed"].startswith(f"lab '{name}' did not converge")
        # p1 connects (the higher transport address) and pe1's kernel drops its SYNs: the
        # connect times out, and the reason says so (it used to end in an empty 'connect: ')
        def p1_reason() -> str | None:
            n = {x["neighbor"]: x for x in lab.ldp(name, "p1", "neighbors")}["pe1"]
            return n["reason"] if "connect: TimeoutError" in n.get("reason", "") else None
        assert "MD5 mismatch?" in wait_for(p1_reason, 30, "p1's connect to time out")
        nb = subprocess.run(["lsr", "lab", "ldp", name, "p1", "neighbors"], capture_output=True,
                            text=True, timeout=60)
        assert nb.returncode == 0 and "NON_EXISTENT" in nb.stdout and "OPERATIONAL" in nb.stdout
        # what did converge matches the simulator (which exits 1: it did not converge)
        for r in ("pe1", "p1", "pe2"):
            assert cli("lab", "ldp", name, r, "bindings") == \
                cli("sim", "bindings", str(MD5_EXAMPLE), "-r", r, code=1)
        assert cli("lab", "lfib", name) == cli("sim", "lfib", str(MD5_EXAMPLE), code=1)
    finally:
        lab.down(name)
    assert not lab_dir(name).exists()


def _diamond_with(p2: str) -> str:
    text = (TOPOLOGIES / "diamond.yaml").read_text()
    assert "    p2: {loopback: 10.255.0.3}\n" in text
    return text.replace("    p2: {loopback: 10.255.0.3}\n", f"    p2: {{loopback: 10.255.0.3, {p2}}}\n")


@pytest.mark.parametrize("what", ["ldp-md5", "ospf-hello"])
def test_up_names_a_misconfiguration_without_waiting_out_its_timeout(what, tmp_path) -> None:
    """A session the configs keep down is not waited for: once the rest of the lab equals
    the simulator's, `lab up` names it (it waited its whole --timeout, 60 s, first)."""
    import time

    if what == "ldp-md5":
        path, want = MD5_EXAMPLE, [ONE_SIDED]
    else:  # p2's OSPF timers differ: both its adjacencies stay down; pe1-p1-pe2 works
        path = tmp_path / "diamond-hello.yaml"
        path.write_text(_diamond_with("ospf: {hello_interval: 2, dead_interval: 8}"))
        want = ["pe1-p2: OSPF adjacency not Full: OSPF hello intervals differ",
                "p2-pe2: OSPF adjacency not Full: OSPF hello intervals differ"]
    name = f"hmc{UNIQ}"
    t0 = time.monotonic()
    try:
        r = subprocess.run(["lsr", "lab", "up", str(path), "--name", name],
                           capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
        assert r.returncode == 2, r.stderr
        (line,) = r.stderr.strip().splitlines()
        assert line.startswith(f"lsr: lab '{name}' did not converge: "), line
        for w in want:
            assert w in line, line
        assert took < 30, f"{took:.1f} s: the 60 s timeout was waited out"
        assert not lab_dir(name).exists()
    finally:
        lab.down(name)

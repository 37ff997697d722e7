"""`lsr demo`: a guided run of a bundled topology.

As root it builds a real lab on network namespaces (every router a real LDP
speaker with the userspace MPLS dataplane), shows the LFIBs, pings and
traceroutes across the core with the labels visible, moves data over TCP, and
tears the lab down. Without root it shows the same network in the simulator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import click

from lsr import render
from lsr.cli.root import main
from lsr.core.topology import load_topology
from lsr.errors import LsrError

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def _title(text: str) -> None:
    render.console.rule(f"[bold]{text}")


@main.command()
@click.option("--topology", "-t", "topo_name", default="diamond", show_default=True,
              help="Bundled topology to run (topologies/NAME.yaml) or a file path.")
@click.option("--sim", "sim_only", is_flag=True, help="Simulation only, even as root.")
@click.option("--name", "-n", "lab_name",
              help="Lab name (default: demo-<your user name>, so that users of one machine "
                   "do not collide).")
@click.pass_context
def demo(ctx: click.Context, topo_name: str, sim_only: bool, lab_name: str | None) -> None:
    """Bring up a bundled topology, show LFIBs, ping and traceroute across it, tear it down."""
    path = Path(topo_name)
    if not path.exists():
        path = TOPOLOGIES / f"{topo_name}.yaml"
        if not path.exists():
            names = ", ".join(sorted(p.stem for p in TOPOLOGIES.glob("*.yaml")))
            raise LsrError(f"no topology '{topo_name}': not a file, nor a bundled one ({names})")
    topo = load_topology(path)
    hosts = [h.name for h in topo.hosts]
    if len(hosts) < 2:
        raise click.UsageError(f"{path} needs two hosts for the demo")
    src, dst = hosts[0], hosts[-1]
    if lab_name is not None:
        from lsr.lab import check_name

        check_name(lab_name)
    if sim_only or os.geteuid() != 0:
        if not sim_only:
            render.line("[yellow]not root: showing the simulation (run as root for a real lab)[/]")
        _sim_demo(ctx, str(path), topo, src, dst)
    else:
        check_system_tools()
        _lab_demo(ctx, path, topo, src, dst, lab_name or default_name())


def default_name() -> str:
    """demo-<user> (the user behind sudo or a root shell, lsr.lab.owner), or demo-u<uid>:
    two users' demos never share a name, and a crashed one is easy to find and remove."""
    from lsr.lab.owner import personal_name

    return personal_name("demo") or "demo"


def check_system_tools() -> None:
    """The commands a real lab needs, installed with apt-get if some are missing (as
    scripts/test.sh does); if that is impossible or fails, one line naming what to install."""
    from lsr.lab import systools

    need = systools.missing(systools.DEMO)
    if not need:
        return
    apt = shutil.which("apt-get")
    if apt is not None:
        pkgs = systools.packages(need)
        render.line(f"installing {' '.join(pkgs)} (for {', '.join(need)}) with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run([apt, "update", "-qq"], env=env).returncode == 0:
            subprocess.run([apt, "install", "-y", "-qq", *pkgs], env=env,
                           stdout=subprocess.DEVNULL)
        need = systools.missing(systools.DEMO)
    if need:
        raise LsrError(f"the demo needs {', '.join(need)}: "
                       f"apt-get install {' '.join(systools.packages(need))}")


def _sim_demo(ctx: click.Context, file: str, topo, src: str, dst: str) -> None:
    from lsr.cli import sim as sim_cli
    from lsr.cli import trace as trace_cli

    ingress = topo.nodes[src].gateway(topo)
    first = topo.node_of_address(ingress).name
    _title(f"LDP converges on {topo.name} (simulated)")
    ctx.invoke(sim_cli.run, file=file, as_json=False)
    _title(f"{first}: FTN and ILM")
    ctx.invoke(sim_cli.lfib, file=file, router=first, as_json=False)
    _title(f"one packet {src} -> {dst}, hop by hop")
    ctx.invoke(trace_cli.trace, file=file, src=src, dst=dst, proto="icmp", ttl=64, as_json=False)


def _lab_demo(ctx: click.Context, path: Path, topo, src: str, dst: str, name: str) -> None:
    import lsr.lab as L
    from lsr.cli import lab as lab_cli
    from lsr.core.topology import host_address

    dst_ip = str(host_address(topo, dst))
    first = topo.node_of_address(topo.nodes[src].gateway(topo)).name
    _title(f"lab {name}: {topo.summary()}")
    with render.console.status("building namespaces and converging LDP ..."):
        lab = L.up(topo, name=name)
    try:
        render.line(f"converged in {lab.converge_seconds:.2f} s")
        _title(f"{first}: LFIB (learnt over real LDP sessions)")
        ctx.invoke(lab_cli.lfib, name=name, router=first, as_json=False)
        _title(f"{src}$ ping -c 3 {dst_ip}")
        _show(lab.run(src, ["ping", "-c", "3", "-i", "0.2", "-W", "1", dst_ip]))
        _title(f"{src}$ traceroute -e -n {dst_ip}   (RFC 4950: labels in ICMP)")
        _show(lab.run(src, ["traceroute", "-e", "-n", "-q", "1", "-w", "1", dst_ip]))
        _title(f"TCP across the core: 1 MB {src} -> {dst}")
        _show(_tcp_transfer(lab, src, dst, dst_ip))
    finally:
        L.down(name)
        render.line(f"lab {name} torn down")


def _show(proc) -> None:
    out = (proc.stdout or "") + (proc.stderr or "")
    render.console.print(out.rstrip(), highlight=False, markup=False)


def _tcp_transfer(lab, src: str, dst: str, dst_ip: str):
    import time

    from lsr.lab.state import ns_name

    ns = ns_name(lab.name, dst)
    recv = subprocess.Popen(["ip", "netns", "exec", ns, "sh", "-c", "nc -l -p 5001 | wc -c"],
                            stdout=subprocess.PIPE, text=True)
    try:
        # A connect before the listener has bound would be refused: wait until it listens.
        deadline = time.monotonic() + 5
        while not _listening(ns, 5001) and recv.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        sent = lab.run(src, ["sh", "-c", f"head -c 1000000 /dev/zero | nc -N {dst_ip} 5001"])
        got = recv.communicate(timeout=20)[0].strip()
    finally:
        if recv.poll() is None:
            recv.kill()
    return subprocess.CompletedProcess(sent.args, sent.returncode,
                                       f"received {got} bytes over TCP\n", sent.stderr)


def _listening(ns: str, port: int) -> bool:
    """A TCP socket listens on `port` in namespace `ns`."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn", "sport", "=", f":{port}"],
                         capture_output=True, text=True).stdout
    return bool(out.strip())

"""Our router runtimes in a lab: start them (forked or exec'd into their namespaces, each
recorded), wait until they are ready, talk to their management sockets."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import lsr
from lsr.core.topology import Topology
from lsr.lab import frr
from lsr.lab.files import open_append
from lsr.lab.interrupts import signals_held
from lsr.lab.state import LabError, LabState, ns_name, pid_alive


class StartGate:
    """The start barrier of routers forked from this process: each holds the read end of
    one pipe, and closing the write end (`open`) starts them all at once (EOF). A "start"
    request to each router in turn let the first ones flood while the last still waited
    for theirs: 23 s for 200 routers on two cores."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()

    def router_args(self) -> list[str]:
        return ["--start-fd", str(self.r)]

    def open(self) -> None:
        """Start every router (idempotent)."""
        for fd in (self.r, self.w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.r = self.w = -1


def start_routers(topo: Topology, name: str, state: LabState, ring: bool = True,
                  spawn: str = "fork", routers: Collection[str] | None = None
                  ) -> StartGate | None:
    """Start the runtime of each of our routers (or of `routers` only: a machine's part of a
    multi-machine lab, lsr.lab.agent) with `state.dir` as its state directory, each
    recorded in `state`; they wait for the start barrier: `StartGate.open()` of the gate
    returned for forked routers, else `query(..., "start")` to each."""
    env = dict(os.environ)
    root = str(Path(lsr.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    if spawn == "fork":
        from lsr.lab import node
        from lsr.lab.forker import preload

        preload(topo)  # everything a router needs, imported once here: each fork shares it
        node.share_topology(state.dir, topo)  # and the topology, as it is in memory here
        gc.freeze()  # keep the collector from dirtying the shared pages in every child
    server = ForkServer(env) if spawn == "forkserver" else None
    gate = StartGate() if spawn == "fork" else None
    try:
        _start_each(topo, name, state, ring, spawn, routers, env, server, gate)
    except BaseException:
        if gate is not None:
            gate.open()
        raise
    finally:
        if server is not None:
            server.close()
        if spawn == "fork":
            node.share_topology(None)
            gc.unfreeze()  # only the children needed it
    return gate


def _start_each(topo: Topology, name: str, state: LabState, ring: bool, spawn: str,
                routers: Collection[str] | None, env: dict[str, str],
                server: ForkServer | None, gate: StartGate | None = None) -> None:
    if spawn == "fork":
        from lsr.lab import node
    for r in frr.our_routers(topo):
        if routers is not None and r.name not in routers:
            continue
        args = ["--state-dir", str(state.dir), "--router", r.name, "--wait-start"]
        if not ring:
            args.append("--no-ring")
        if server is not None:
            with signals_held():
                pid = server.spawn(ns_name(name, r.name), args, state.dir / f"{r.name}.log")
                record_pid(state, pid, f"router:{r.name}")
            continue
        if spawn == "fork":
            assert gate is not None
            with signals_held():
                pid = node.spawn_forked(ns_name(name, r.name), args + gate.router_args(),
                                        state.dir / f"{r.name}.log", close=(gate.w,))
                record_pid(state, pid, f"router:{r.name}")
            continue
        logf = open_append(state.dir / f"{r.name}.log")  # handed to the child
        argv = ["ip", "netns", "exec", ns_name(name, r.name), sys.executable, "-m",
                "lsr.lab.node", *args]
        # New session: a Ctrl-C at the terminal reaches `up` (which tears down), not routers.
        with signals_held():
            pid = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                   cwd="/").pid
            os.close(logf)
            record_pid(state, pid, f"router:{r.name}")


class ForkServer:
    """`python -m lsr.lab.forker`: routers forked from a clean one-thread process with
    their modules imported once (for a lab agent, a Ray worker, which must not fork)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "lsr.lab.forker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, cwd="/",
                                     start_new_session=True)
        if self._line() != "ready":
            self.close()
            raise LabError("the router fork server did not start")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def spawn(self, ns: str, argv: list[str], log: Path) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"ns": ns, "argv": argv, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        answer = self._line()
        if not answer.isdigit():
            raise LabError(f"router fork server: {answer or 'no answer'}")
        return int(answer)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def record_pid(state: LabState, pid: int, role: str) -> None:
    """Record a process this run started; one that cannot be recorded (the lab was torn
    down meanwhile) is ended here, or nothing would ever end it."""
    try:
        state.add_pid(pid, role)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise


def wait_ready(topo: Topology, name: str, state: LabState, deadline: float,
               routers: Collection[str] | None = None) -> None:
    """Until every router `start_routers` started has written its `.ready` file."""
    pending = {r.name for r in frr.our_routers(topo) if routers is None or r.name in routers}
    while pending:
        for r in list(pending):
            if (state.dir / f"{r}.ready").exists():
                pending.discard(r)
        dead = [p for p in state.read().get("pids", []) if not pid_alive(p["pid"], p["start"])]
        if dead:
            role = dead[0]["role"].split(":", 1)[-1]
            tail = log_tail(state.dir, role)
            raise LabError(f"router {role} exited during start-up: {tail}")
        if pending and time.monotonic() > deadline:  # (all ready just now: not a timeout)
            raise LabError(f"routers not started before the timeout: {', '.join(sorted(pending))}")
        time.sleep(0.05)


def log_tail(state_dir: Path, router: str) -> str:
    try:
        lines = (state_dir / f"{router}.log").read_text().strip().splitlines()
        return lines[-1] if lines else "(empty log)"
    except OSError:
        return "(no log)"



def query_socket(path: Path, router: str, what: str, /, timeout: float = 5,
                 **params: Any) -> Any:
    """`query` through the management socket at `path` (a machine's part of a
    multi-machine lab has its own directory: lsr.lab.agent)."""
    buf = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall((json.dumps({"op": what, **params}) + "\n").encode())
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:  # refused (router gone), timeout, reset
        raise LabError(f"{router}: management socket: {e.strerror or str(e) or type(e).__name__}") from None
    try:
        resp = json.loads(buf)
    except ValueError:
        raise LabError(f"{router}: no valid answer on the management socket") from None
    if not isinstance(resp, dict) or not resp.get("ok"):
        err = resp.get("error") if isinstance(resp, dict) else None
        raise LabError(f"{router}: {' '.join(str(err).split()) or 'request failed'}")
    return resp["result"]

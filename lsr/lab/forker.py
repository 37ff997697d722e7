"""A fork server for router runtimes: `python -m lsr.lab.forker`.

`lsr lab up` forks its routers from itself (modules imported once, shared copy-on-
write). A machine's lab agent (lsr.lab.agent) cannot: it is a Ray worker, with threads
that may hold locks at fork time. So it starts this process instead: one thread, the
router's modules imported once, then one router forked (lsr.lab.node.spawn_forked) for
each request line on stdin, `{"ns": ..., "argv": [...], "log": ...}`, answered with the
router's PID on stdout. At the end of its input it exits; its routers live on (their
parent becomes init), each recorded by the agent like any router of a lab.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsr.core.topology import Topology


def preload(topo: Topology | None = None) -> None:
    """Import everything a router needs, once, before the first fork: a module a router
    imports itself is compiled and kept in every router's private memory (and routers
    that started at once import it at once). IPsec and VPN modules only if `topo` has
    IPsec or VRFs (or is not known: the fork server serves any lab)."""
    import forwarding.plane  # noqa: F401
    import forwarding.tables  # noqa: F401
    import ldp.instance  # noqa: F401
    from forwarding import ioloop  # noqa: F401
    try:
        import forwarding.vector  # noqa: F401  (numpy: ~20 MB a router if imported there)
    except ImportError:
        pass
    from lsr.lab import node, node_bgp, node_impair, node_oam, node_ospf  # noqa: F401
    if topo is None or topo.extra.get("ipsec") is not None:
        from lsr.lab import ipsec  # noqa: F401
    if topo is None or any(r.vrfs for r in topo.routers):
        from lsr.lab import node_vpn  # noqa: F401
    try:
        import pyroute2  # noqa: F401  (netlink carrier watch in every router)
    except ImportError:
        pass


def main() -> int:
    from lsr.lab.node import spawn_forked

    preload()
    gc.freeze()  # keep the collector from dirtying the shared pages in every child
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            req = json.loads(line)
            pid = spawn_forked(req["ns"], list(req["argv"]), Path(req["log"]))
            print(pid, flush=True)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"error {type(e).__name__}: {e}".replace("\n", " "), flush=True)
        _reap()
    return 0


def _reap() -> None:
    """A router that died while we still run is not left a zombie. (SIGCHLD is not
    ignored instead: the routers would inherit that, and their subprocesses' exit
    statuses would be lost.)"""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


if __name__ == "__main__":
    sys.exit(main())

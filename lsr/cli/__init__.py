"""The `lsr` command: thin click wrappers over the library API.

Each command group lives in its own module and registers itself on `main`
(`lsr/cli/root.py`).
"""

from __future__ import annotations

import os
import signal
import threading


def _early_exit(signum: int, frame: object) -> None:
    # Nothing has run yet, so there is nothing to clean up: one line, not the traceback of
    # whichever import the signal landed in (importing the commands takes a second or two).
    os.write(2, f"lsr: interrupted ({signal.Signals(signum).name})\n".encode())
    os._exit(128 + signum)


_EARLY = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_before = ({s: signal.signal(s, _early_exit) for s in _EARLY}
           if threading.current_thread() is threading.main_thread() else {})

from lsr.cli.root import LsrGroup, main  # noqa: E402

__all__ = ["LsrGroup", "main"]


def _register() -> None:
    # Imported for their side effect of adding command groups to `main`.
    from lsr.cli import (  # noqa: F401
        bgp,
        demo,
        igp,
        ipsec,
        lab,
        lsp,
        ospf,
        sim,
        teach,
        topo,
        trace,
        validate,
        web,
    )


_register()
for _sig, _handler in _before.items():  # commands get the handlers the process had
    if _handler is not None:
        signal.signal(_sig, _handler)

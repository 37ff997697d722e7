"""The `lsr` command: thin click wrappers over the library API.

Each command group lives in its own module and registers itself on `main`
(`lsr/cli/root.py`).
"""

from __future__ import annotations

from lsr.cli.root import LsrGroup, main

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

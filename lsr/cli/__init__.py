"""The `lsr` command: thin click wrappers over the library API.

Each command group lives in its own module and registers itself on `main`
(`lsr/cli/root.py`).
"""

from __future__ import annotations

from lsr.cli.root import LsrGroup, main

__all__ = ["LsrGroup", "main"]


def _register() -> None:
    # Imported for their side effect of adding command groups to `main`.
    import importlib

    from lsr.cli import igp, topo  # noqa: F401

    for mod in ("sim", "trace", "lab", "lsp", "validate", "teach", "ipsec", "bench", "demo"):
        try:
            importlib.import_module(f"lsr.cli.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"lsr.cli.{mod}":
                raise


_register()

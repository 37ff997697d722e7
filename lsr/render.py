"""Output: rich tables for people, sorted JSON for programs (docs/cli.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def emit_json(data: Any) -> None:
    """Print `data` as JSON, keys sorted so output is deterministic."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console.print(t)


def line(text: str) -> None:
    console.print(text, highlight=False)

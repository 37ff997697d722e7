"""One peer's label mappings in the LIB (RFC 5036 §2.6.2.2: liberal retention keeps every
mapping received): FEC -> label, as an array of labels indexed by the FEC's number.

A simulated network holds sessions x FECs of them (2.8 million for 750 routers): as a
dict of prefix -> int they took ~80 bytes each (the entry and the label's int object),
as an array 4. The FEC number is `lsr.core.prefix.Prefix.idx`, dense in the process;
the LDE reads and writes the array (`labels`) directly on its hot paths.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, MutableMapping
from ipaddress import IPv4Network
from typing import Any

from lsr.core.prefix import BY_IDX, Prefix, prefix

NONE = -1  # no mapping for the FEC


class Lib(MutableMapping[IPv4Network, int]):
    """FEC -> label, for the FECs a peer mapped (a mapping, as the dict it replaces)."""

    __slots__ = ("labels", "count")

    def __init__(self, items: Iterable[tuple[IPv4Network, int]] = ()) -> None:
        self.labels = array("i")  # Prefix.idx -> label or NONE
        self.count = 0
        for p, label in items:
            self[p] = label

    @staticmethod
    def _idx(p: IPv4Network) -> int:
        return p.idx if type(p) is Prefix else prefix(p).idx  # type: ignore[attr-defined]

    def __getitem__(self, p: IPv4Network) -> int:
        i = self._idx(p)
        a = self.labels
        if i < len(a) and a[i] != NONE:
            return a[i]
        raise KeyError(p)

    def get(self, p: IPv4Network, default: Any = None) -> Any:  # type: ignore[override]
        i = self._idx(p)
        a = self.labels
        if i < len(a):
            v = a[i]
            if v != NONE:
                return v
        return default

    def __contains__(self, p: object) -> bool:
        if not isinstance(p, IPv4Network):
            return False
        i = self._idx(p)
        return i < len(self.labels) and self.labels[i] != NONE

    def __setitem__(self, p: IPv4Network, label: int) -> None:
        i = self._idx(p)
        a = self.labels
        if i >= len(a):
            a.extend([NONE] * (max(i + 1, len(BY_IDX)) - len(a)))
        if a[i] == NONE:
            self.count += 1
        a[i] = label

    def __delitem__(self, p: IPv4Network) -> None:
        i = self._idx(p)
        a = self.labels
        if i >= len(a) or a[i] == NONE:
            raise KeyError(p)
        a[i] = NONE
        self.count -= 1

    def __iter__(self) -> Iterator[IPv4Network]:
        return (BY_IDX[i] for i, v in enumerate(self.labels) if v != NONE)

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"Lib({dict(self.items())!r})"

    def __reduce__(self) -> tuple[Any, tuple[list[tuple[IPv4Network, int]]]]:
        # FEC numbers are this process's: another one gets the FECs themselves
        return Lib, (list(self.items()),)

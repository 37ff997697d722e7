"""Interned IPv4 prefixes: one shared object per prefix, hashed once.

A `Prefix` equals, and hashes like, the plain `IPv4Network` (a dict keyed by one is
looked up by the other), but `IPv4Network.__hash__` rebuilds its value from two
addresses at every dict or set operation, and the routing tables of a large
simulation do millions of them. OSPF's SPF, the reference IGP and LDP's label
decisions all key their tables by these. `key` is an int in (address, length) order:
unique per prefix, cheap to hash, and sorting by it is sorting the prefixes. `idx`
numbers the prefixes of this process densely (0, 1, ... in the order they were first
made): tables of one entry per prefix can be arrays (`ldp.lib.Lib`).
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any


class Prefix(IPv4Network):
    """An interned IPv4 prefix (make one with `prefix()` or `prefix_of()`)."""

    key: int
    idx: int
    _hash: int

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"IPv4Network('{self}')"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return prefix_from_str, (str(self),)


_BY_KEY: dict[int, Prefix] = {}
BY_IDX: list[Prefix] = []  # Prefix.idx -> the prefix


def _make(addr: int, plen: int) -> Prefix:
    p = Prefix((addr, plen))
    p._hash = IPv4Network.__hash__(p)
    p.key = (addr << 6) | plen
    p.idx = len(BY_IDX)
    BY_IDX.append(p)
    _BY_KEY[p.key] = p
    return p


def prefix_of(addr: int, plen: int) -> Prefix:
    """The prefix addr/plen (`addr` an int with no bits past `plen`)."""
    p = _BY_KEY.get((addr << 6) | plen)
    return p if p is not None else _make(addr, plen)


def prefix(p: IPv4Network) -> Prefix:
    """The interned form of an IPv4 prefix (itself if it is one already)."""
    if type(p) is Prefix:
        return p
    return prefix_of(int(p.network_address), p.prefixlen)


def prefix_from_str(text: str) -> Prefix:
    return prefix(IPv4Network(text))


def prefix_key(p: IPv4Network) -> int:
    """`prefix(p).key` without interning: (address << 6) | length."""
    return (int(p.network_address) << 6) | p.prefixlen

"""The link-state database of area 0 (RFC 2328 §12, §13.1, §14): which instance of an
LSA is newer, installation with its arrival time, and ages computed from the clock
the driver gives (an LSA's age grows by one a second while it sits in the database)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ospf.packets import MAX_AGE, MAX_AGE_DIFF, Lsa, LsaHeader, LsaKey, LsType


def compare(a: LsaHeader, b: LsaHeader) -> int:
    """§13.1: > 0 if `a` is the more recent instance, < 0 if `b` is, 0 if the same."""
    return compare_to(a, b.seq, b.checksum, b.age)


def compare_to(a: LsaHeader, seq: int, checksum: int, age: int) -> int:
    """`compare(a, b)` for the b with these sequence number, checksum and age."""
    if a.seq != seq:
        return 1 if a.seq > seq else -1
    if a.checksum != checksum:
        return 1 if a.checksum > checksum else -1
    a_max, b_max = a.age >= MAX_AGE, age >= MAX_AGE
    if a_max != b_max:
        return 1 if a_max else -1
    if abs(a.age - age) > MAX_AGE_DIFF:
        return 1 if a.age < age else -1
    return 0


@dataclass(slots=True)
class Entry:
    lsa: Lsa  # as installed: header.age is the age at `installed`
    installed: float
    flooded: bool = True  # False: came with a database exchange (§10.6-§10.9)

    def age(self, now: float) -> int:
        # whole seconds held (§12.1.1); the nanosecond forgives float rounding: at
        # installed + k, now - installed may come out a hair under k
        return min(MAX_AGE, self.lsa.header.age + int(now - self.installed + 1e-9))

    def aged(self, now: float) -> Lsa:
        """The LSA with its current age (what goes into DDs and Updates)."""
        a = self.age(now)
        return self.lsa if a == self.lsa.header.age else self.lsa.with_age(a)

    def header(self, now: float) -> LsaHeader:
        return self.aged(now).header


class Lsdb:
    def __init__(self) -> None:
        self._db: dict[LsaKey, Entry] = {}
        # (when MaxAge, key.order, seq, key): key.order sorts as the key (ints: no
        # dataclass comparison when two expire at the same time). Each installation adds
        # one; an older instance's is stale (dropped when it comes to the top, or by
        # `_compact`: an hour-long LSA lifetime outlasts any convergence, and stale entries
        # would otherwise pile up, N^2 of them over a network)
        self._expiry: list[tuple[float, tuple[int, int, int], int, LsaKey]] = []
        # int(router ID) -> its router-LSA (Link State ID = Advertising Router): SPF's
        # lookup of a router vertex, without building an LsaKey
        self._routers: dict[int, Entry] = {}
        self.networks = 0  # network-LSAs held (SPF looks for them only if there are any)
        # get(key) -> Entry | None: the dict's own method (the most frequent call of all)
        self.get: Callable[[LsaKey], Entry | None] = self._db.get

    def __len__(self) -> int:
        return len(self._db)

    def __contains__(self, key: LsaKey) -> bool:
        return key in self._db

    def router_entry(self, rid: int) -> Entry | None:
        """The entry of the router-LSA of router ID `rid` (an int), if any."""
        return self._routers.get(rid)

    def _index(self, key: LsaKey, e: Entry | None) -> None:
        t, lid, rid = key.order  # type: ignore[attr-defined]
        if t == LsType.ROUTER and lid == rid:
            if e is None:
                self._routers.pop(rid, None)
            else:
                self._routers[rid] = e

    def entries(self) -> Iterator[tuple[LsaKey, Entry]]:
        return iter(sorted(self._db.items()))

    def install(self, lsa: Lsa, now: float, flooded: bool = True) -> bool:
        """§13.2: store the instance; True if its contents changed (SPF needed). A change
        is anything but the age: a new body, or the LSA appearing or reaching MaxAge."""
        key = lsa.key
        h = lsa.header
        old = self._db.get(key)
        e = self._db[key] = Entry(lsa, now, flooded)
        self._index(key, e)
        if old is None and key.ls_type == LsType.NETWORK:
            self.networks += 1
        if h.age < MAX_AGE:
            heapq.heappush(self._expiry, (now + MAX_AGE - h.age, key.order,  # type: ignore[attr-defined]
                                          h.seq, key))
            if len(self._expiry) > 64 + (len(self._db) * 5 >> 2):
                self._compact()
        if old is None:
            return True
        oh = old.lsa.header
        if (oh.age >= MAX_AGE) != (h.age >= MAX_AGE):
            return True
        return old.lsa.raw[20:] != lsa.raw[20:] or oh.options != h.options

    def remove(self, key: LsaKey) -> None:
        if self._db.pop(key, None) is not None:
            self._index(key, None)
            if key.ls_type == LsType.NETWORK:
                self.networks -= 1

    def _live(self, seq: int, key: LsaKey) -> bool:
        """A heap entry still stands for the key's instance (else it is stale)."""
        e = self._db.get(key)
        return e is not None and e.lsa.header.seq == seq and e.lsa.header.age < MAX_AGE

    def _compact(self) -> None:
        """Drop the stale entries (the ones `next_expiry` and `expired` would drop)."""
        self._expiry = [x for x in self._expiry if self._live(x[2], x[3])]
        heapq.heapify(self._expiry)

    def next_expiry(self) -> float | None:
        """When the next LSA reaches MaxAge (stale heap entries are dropped)."""
        while self._expiry:
            when, _, seq, key = self._expiry[0]
            e = self._db.get(key)
            if e is not None and e.lsa.header.seq == seq and e.lsa.header.age < MAX_AGE:
                return when
            heapq.heappop(self._expiry)
        return None

    def expired(self, now: float) -> list[LsaKey]:
        """Keys of LSAs that have reached MaxAge by `now` (§14)."""
        out = []
        while self._expiry and self._expiry[0][0] <= now:
            _, _, seq, key = heapq.heappop(self._expiry)
            e = self._db.get(key)
            if e is not None and e.lsa.header.seq == seq and e.age(now) >= MAX_AGE:
                out.append(key)
        return out

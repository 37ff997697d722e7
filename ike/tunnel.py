"""One IKE connection kept up, sans-I/O: its IKE SA, Child SAs, lifetimes and ESP SAs.

`Tunnel` drives an `IkeSession` the way a gateway does, with the time given to
every call (`now`, seconds) and its randomness injected, so the lab runtime
(`lsr.lab.ipsec`) and virtual-clock tests run the same code:

* retransmission (RFC 7296 §2.1: 0.5 s doubling to 4 s, 10 tries), and for the
  initiator a new IKE_SA_INIT after a failure;
* lifetimes (`Lifetimes`, as strongSwan's swanctl.conf): each Child SA is
  rekeyed at `child_rekey` minus a random part of `child_rand`, and deleted at
  `child_life` if it has no successor by then; the IKE SA is rekeyed (§2.18) at
  `ike_rekey` minus a random part of `ike_rand`, and closed at `ike_life`. Both
  ends run these timers; the random part makes simultaneous rekeys rare, and
  the session resolves those that happen (§2.8.1, §2.8.2);
* keep-up: the connection is configured, so it wants a Child SA. One the peer
  deleted, that expired, or that the peer no longer knows (CHILD_SA_NOT_FOUND)
  is created again with CREATE_CHILD_SA (§1.3.1), like strongSwan's
  `close_action = start`; after the peer's Delete it waits `keep_up_delay`
  (so two of our routers do not both create one);
* make-before-break: a new inbound SA is installed at once; the rekey initiator
  moves its outbound SA when the response arrives, the responder when the old
  Child SA is deleted (§2.8 leaves the timing open; this order loses nothing);
  the inbound half of a replaced Child SA stays `LINGER` seconds for ESP still
  on its way (strongSwan: `delete_rekeyed_delay`);
* health: `problems()` names a missing Child SA, one past its rekey time
  without a successor, and failing rekeys or creations.

It returns the session's `SendIke` and `SadOp`s (`AddInbound`, `SetOutbound`,
`ClearOutbound`, `RemoveInbound`) for the driver's SAD, and `Note`s for its log.
"""

from __future__ import annotations

import collections
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from forwarding.ipsec.esp import SecurityAssociation
from ike.actions import (
    DOWN_BY_PEER,
    DOWN_IKE,
    ChildSaDown,
    ChildSaFailed,
    ChildSaRedundant,
    ChildSaUp,
    Ignored,
    IkeFailed,
    IkeRekeyFailed,
    IkeSaDown,
    IkeSaRekeyed,
    IkeSaUp,
    PeerAlive,
    SendIke,
)
from ike.codec import Notify
from ike.session import IkeConfig, IkeError, IkeSession, State

CHILD_REKEY_DEFAULT = 3600.0  # strongSwan's children.<child>.rekey_time
IKE_REKEY_DEFAULT = 14400.0  # strongSwan's connections.<conn>.rekey_time
RETRANSMIT_BASE = 0.5  # seconds; doubled per try up to RETRANSMIT_CAP (RFC 7296 §2.1)
RETRANSMIT_CAP = 4.0
RETRANSMIT_TRIES = 10
RETRY_AFTER_FAILURE = 5.0  # a new IKE_SA_INIT after a failed or lost IKE SA (initiator)
RETRY_BUSY = (0.3, 1.5)  # after TEMPORARY_FAILURE: "MUST NOT immediately retry" (§2.25)
RETRY_FAILED = 5.0  # after another failure (doubling to RETRY_FAILED_CAP)
RETRY_FAILED_CAP = 60.0
KEEP_UP_FALLBACK = 1.0  # keep_up_delay when the peer may re-create the Child SA itself
# A replaced IKE SA whose Delete has not come (or been answered) after this long is dropped:
# longer than the peer's retransmissions of that Delete (RFC 7296 §2.1: ~25 s here)
STALE_REPLACED = 40.0
# A rekeyed Child SA's inbound half stays this long after its Delete: ESP the peer sent on
# it may still be on its way (strongSwan with kernel-libipsec was seen sending one packet
# that arrived after its DELETE; its own charon.delete_rekeyed_delay is 5 s).
LINGER = 2.0


def margin(rekey: float) -> float:
    """Hard lifetime minus rekey time: strongSwan's default 10 % (life_time = 1.1 rekey_time,
    over_time = 10 %), but at least 1 s so that short test lifetimes leave room to rekey."""
    return max(1.0, rekey / 10)


@dataclass(frozen=True)
class Lifetimes:
    """Rekey at `*_rekey` minus U(0, `*_rand`) after creation; give up at `*_life`.

    The random parts follow what charon 5.9 does with swanctl's rand_time (its default is
    the margin): for a Child SA it subtracts up to rand_time + 1 s (`apply_jitter`), for
    the IKE SA up to rand_time - 1 s (`random() % rand_time`); `lsr.lab.strongswan` writes
    rand_time so that both ends draw from the same range and either may rekey first.
    """

    child_rekey: float
    child_life: float
    child_rand: float
    ike_rekey: float
    ike_life: float
    ike_rand: float

    @classmethod
    def of(cls, child_rekey: float | None = None, ike_rekey: float | None = None) -> Lifetimes:
        """From the topology's rekey_seconds / ike_rekey_seconds (None: strongSwan's defaults)."""
        c = CHILD_REKEY_DEFAULT if child_rekey is None else float(child_rekey)
        i = IKE_REKEY_DEFAULT if ike_rekey is None else float(ike_rekey)
        return cls(c, c + margin(c), min(margin(c) + 1, c / 2), i, i + margin(i), margin(i))

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


# ---------------------------------------------------------------- outputs for the driver


@dataclass(frozen=True)
class AddInbound:
    sa: SecurityAssociation


@dataclass(frozen=True)
class SetOutbound:
    """Send on `sa` from now on (it replaces the tunnel's previous outbound SA)."""

    sa: SecurityAssociation


@dataclass(frozen=True)
class ClearOutbound:
    sa: SecurityAssociation


@dataclass(frozen=True)
class RemoveInbound:
    sa: SecurityAssociation
    out: SecurityAssociation  # its partner, for the counters of retired SAs


@dataclass(frozen=True)
class Note:
    """A line for the connection's event log; `problem` names a lifecycle error for the audit."""

    text: str
    level: str = "info"  # info | warning | error
    problem: str | None = None
    spi: int | None = None


Out = SendIke | AddInbound | SetOutbound | ClearOutbound | RemoveInbound | Note


@dataclass
class _Child:
    spi_in: int
    spi_out: int
    out: SecurityAssociation
    inb: SecurityAssociation
    created: float
    rekey_at: float
    expire_at: float
    successor: int | None = None
    rekeying: bool = False
    redundant: bool = False
    deleting: bool = False
    failures: int = 0
    last_failure: str | None = None

    @property
    def live(self) -> bool:
        """It carries (or should carry) the traffic: not replaced, redundant or going."""
        return self.successor is None and not self.redundant and not self.deleting


def _failing(failures: int, last: str | None) -> bool:
    """A problem: a refusal, or TEMPORARY_FAILURE again and again (once is a collision, §2.25)."""
    return failures >= 3 or (failures >= 1 and last != Notify.TEMPORARY_FAILURE.name)


def _notify_name(n: int | None) -> str:
    if n is None:
        return ""
    try:
        return Notify(n).name
    except ValueError:
        return str(n)


class Tunnel:
    def __init__(self, config: IkeConfig, *, name: str, initiator: bool,
                 local: IPv4Address | str, remote: IPv4Address | str,
                 lifetimes: Lifetimes | None = None, keep_up_delay: float = 0.0,
                 sa_options: dict[str, Any] | None = None, rng: random.Random | None = None,
                 session_rng: Callable[[int], bytes] = os.urandom) -> None:
        self.config = config
        self.name = name
        self.initiator = initiator
        self.local = local
        self.remote = remote
        self.lifetimes = lifetimes or Lifetimes.of()
        self.keep_up_delay = keep_up_delay
        self.sa_options = sa_options or {}
        self.rng = rng or random.Random()
        self.session_rng = session_rng
        self.session: IkeSession | None = None
        self.accepted = False  # the last received datagram was taken by the IKE SA
        self.candidate: IkeSession | None = None  # responder: a new IKE SA negotiated aside
        self.state = "idle"  # idle | connecting | established | failed | down
        self.error: str | None = None  # why the IKE SA failed or went down
        self.children: dict[int, _Child] = {}
        self.out_spi: int | None = None  # the Child SA whose outbound SA is installed
        self.pending: dict[int, int] = {}  # old spi_in -> its successor: switch when old goes
        self.lingering: dict[int, tuple[float, _Child]] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        self._rtx_at: float | None = None
        self._rtx_tries = 0
        self._rtx_flight: tuple[tuple[bytes, int], ...] = ()
        self._retry_at: float | None = None
        self._create_at: float | None = None
        self._creating = False
        self._create_failures = 0
        self._create_error: str | None = None
        self._missing_since: float | None = None
        self._ike_up_at = 0.0
        self._ike_rekey_at: float | None = None
        self._ike_expire_at: float | None = None
        self._ike_rekeying = False
        self._ike_failures = 0
        self._ike_error: str | None = None
        self._replaced_since: dict[bytes, float] = {}  # replaced IKE SA -> when first seen
        self._aside_error: str | None = None  # a new IKE SA from the peer failed beside ours

    # ------------------------------------------------------------ input

    def start(self, now: float) -> list[Out]:
        """Initiator: a new IKE SA (IKE_SA_INIT); whatever was up goes."""
        if not self.initiator:
            return []
        outs = self._reset()
        self.session = IkeSession(self.config, initiator=True, rng=self.session_rng)
        self.state = "connecting"
        self.counters["ike_sa_init"] += 1
        return outs + self._handle(self.session.start(), now)

    def receive(self, data: bytes, now: float) -> list[Out]:
        """One IKE datagram from the peer (without the non-ESP marker). Afterwards `accepted`
        says whether the IKE SA took it (e.g. for the driver's idea of the peer's port,
        RFC 7296 §2.23: only from messages that pass the integrity check)."""
        self.accepted = False
        if len(data) < 28:
            self.counters["ignored"] += 1
            return []
        outs: list[Out] = []
        spi_r, exchange, flags, mid = data[8:16], data[18], data[19], data[20:24]
        new_init = (exchange == 34 and flags & 0x08 and not flags & 0x20 and mid == bytes(4)
                    and spi_r == bytes(8))
        if not self.initiator and self.state == "established" and self.session is not None:
            if self.candidate is not None and self.candidate.knows(data[:8]):
                return self._aside(data, now)
            if new_init and not self.session.knows(data[:8]):
                # A new IKE_SA_INIT while ours is up: the peer restarted, or someone forged it.
                # It is negotiated aside and replaces ours only once it authenticates.
                self.candidate = IkeSession(self.config, initiator=False, rng=self.session_rng)
                self.counters["ike_sa_init_aside"] += 1
                return self._aside(data, now)
        elif new_init and not self.initiator and (self.session is None or not self.session.knows(data[:8])):
            outs = self._reset()  # a (new) IKE_SA_INIT from the initiator
            self.session = IkeSession(self.config, initiator=False, rng=self.session_rng)
            self.state = "connecting"
        if self.session is None:
            self.counters["ignored"] += 1
            return outs
        acts = self.session.receive(data)
        self.accepted = any(not isinstance(a, Ignored) for a in acts)
        return outs + self._handle(acts, now)

    def _aside(self, data: bytes, now: float) -> list[Out]:
        """A datagram for the IKE SA being negotiated next to the established one."""
        assert self.candidate is not None
        acts = self.candidate.receive(data)
        outs: list[Out] = []
        for i, a in enumerate(acts):
            if isinstance(a, SendIke):
                self.counters["tx"] += 1
                outs.append(a)
            elif isinstance(a, IkeSaUp):  # authenticated (§2.15): the peer's new IKE SA wins
                outs.append(Note("a new IKE SA from the peer authenticated: it replaces ours", "warning"))
                new = self.candidate
                outs += self._reset()
                self.session = new
                return outs + self._handle(acts[i:], now)
            elif isinstance(a, IkeFailed):
                # Only a peer that sees our answers gets this far (a blind forger cannot): the
                # peer may have restarted with another key. Ours stays while the peer answers
                # it: ask (liveness, §1.4); no answer and the retransmissions give it up.
                self.candidate = None
                self.counters["ike_sa_init_aside_failed"] += 1
                name = _notify_name(a.notify)
                self._aside_error = f"{name}: {a.reason}" if name else a.reason
                outs.append(Note(f"a new IKE SA from the peer failed ({self._aside_error}); "
                                 "checking that the peer still has ours", "error", "ike-failed"))
                if self.session is not None and self.session.state is State.ESTABLISHED:
                    outs += self._command(self.session.liveness, now)
            else:
                self.counters["ignored"] += 1
        return outs

    def tick(self, now: float) -> list[Out]:
        """Run what is due at `now` (the driver calls it at `next_deadline()`)."""
        outs: list[Out] = []
        if self._rtx_at is not None and now >= self._rtx_at:
            outs += self._retransmit(now)
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            outs += self.start(now)
        for spi, (until, ch) in list(self.lingering.items()):
            if now >= until:
                del self.lingering[spi]
                outs.append(RemoveInbound(ch.inb, ch.out))
        s = self.session
        if s is None or s.state is not State.ESTABLISHED or self.state != "established":
            return outs
        for spi, since in list(self._replaced_since.items()):
            if now >= since + STALE_REPLACED:
                del self._replaced_since[spi]
                self.counters["ike_replaced_forgotten"] += 1
                outs.append(Note(f"replaced IKE SA {spi.hex()} never deleted: forgotten", "warning"))
                outs += self._handle(s.forget(spi), now)
        lt = self.lifetimes
        if self._ike_expire_at is not None and now >= self._ike_expire_at:
            self._ike_expire_at = self._ike_rekey_at = None
            self.counters["ike_expired"] += 1
            outs.append(Note(f"IKE SA expired after {lt.ike_life:g} s without a successor: closing it",
                             "error", "ike-expired"))
            outs += self._command(s.close, now)
        elif self._ike_rekey_at is not None and now >= self._ike_rekey_at and not self._ike_rekeying:
            self._ike_rekeying = True
            self.counters["ike_rekeys_requested"] += 1
            outs += self._command(s.rekey_ike, now)
        for ch in list(self.children.values()):
            if ch.deleting or ch.spi_in not in self.children:
                continue
            if now >= ch.expire_at:
                ch.deleting = True
                if ch.successor is None and not ch.redundant:
                    self.counters["child_expired"] += 1
                    outs.append(Note(f"CHILD_SA 0x{ch.spi_in:08x} expired after {lt.child_life:g} s "
                                     "without a successor: deleting it", "error", "child-expired",
                                     ch.spi_in))
                outs += self._command(lambda ch=ch: s.delete_child(ch.spi_in), now)
            elif ch.live and not ch.rekeying and now >= ch.rekey_at:
                ch.rekeying = True
                self.counters["rekeys"] += 1
                outs += self._command(lambda ch=ch: s.rekey_child(ch.spi_in), now)
        if self._create_at is not None and now >= self._create_at:
            self._create_at = None
            if not self._live() and not self._creating:
                self._creating = True
                self.counters["child_create"] += 1
                outs += self._command(s.create_child, now)
        return outs

    def next_deadline(self) -> float | None:
        """When `tick` has something to do next (None: nothing scheduled)."""
        times = [t for t in (self._rtx_at, self._retry_at, self._create_at) if t is not None]
        times += [until for until, _ in self.lingering.values()]
        if self.state == "established" and self.session is not None \
                and self.session.state is State.ESTABLISHED:
            times += [t for t in (self._ike_expire_at,) if t is not None]
            times += [since + STALE_REPLACED for since in self._replaced_since.values()]
            if self._ike_rekey_at is not None and not self._ike_rekeying:
                times.append(self._ike_rekey_at)
            for ch in self.children.values():
                if not ch.deleting:
                    times.append(ch.expire_at)
                    if ch.live and not ch.rekeying:
                        times.append(ch.rekey_at)
        return min(times) if times else None

    # ------------------------------------------------------------ operator commands

    def rekey_child(self, now: float) -> tuple[dict[str, Any], list[Out]]:
        """CREATE_CHILD_SA for the newest live Child SA now (`lsr lab ipsec ... rekey`)."""
        ch = self._newest_live()
        if self.session is None or self.state != "established" or ch is None:
            return {"requested": False, "reason": f"IKE SA is {self.state}, no Child SA to rekey"}, []
        if ch.rekeying:
            return {"requested": False, "reason": f"0x{ch.spi_in:08x} is being rekeyed"}, []
        ch.rekeying = True
        self.counters["rekeys"] += 1
        return {"requested": True, "spi_in": f"0x{ch.spi_in:08x}"}, \
            self._command(lambda: self.session.rekey_child(ch.spi_in), now)  # type: ignore[union-attr]

    def rekey_ike(self, now: float) -> tuple[dict[str, Any], list[Out]]:
        s = self.session
        if s is None or self.state != "established" or self._ike_rekeying:
            return {"requested": False, "reason": f"IKE SA is {self.state}"
                    + (" (rekeying)" if self._ike_rekeying else "")}, []
        self._ike_rekeying = True
        self.counters["ike_rekeys_requested"] += 1
        return {"requested": True, "ike_spis": [s.spi_i.hex(), s.spi_r.hex()]}, self._command(s.rekey_ike, now)

    def delete_child(self, now: float) -> tuple[dict[str, Any], list[Out]]:
        """Delete the newest live Child SA (it comes back: the connection is configured)."""
        ch = self._newest_live()
        if self.session is None or self.state != "established" or ch is None:
            return {"deleted": False, "reason": f"IKE SA is {self.state}, no Child SA"}, []
        ch.deleting = True
        return {"deleted": True, "spi_in": f"0x{ch.spi_in:08x}"}, \
            self._command(lambda: self.session.delete_child(ch.spi_in), now)  # type: ignore[union-attr]

    # ------------------------------------------------------------ the session's actions

    def _command(self, cmd: Callable[[], list[Any]], now: float) -> list[Out]:
        try:
            return self._handle(cmd(), now)
        except IkeError as e:
            return [Note(f"command refused: {e}", "warning")]

    def _handle(self, actions: list[Any], now: float) -> list[Out]:
        outs: list[Out] = []
        for a in actions:
            if isinstance(a, SendIke):
                self.counters["tx"] += 1
                outs.append(a)
            elif isinstance(a, IkeSaUp):
                self.state = "established"
                self.error = None
                self._ike_timers(now)
                outs.append(Note(f"IKE SA established (SPIs {a.spi_i}/{a.spi_r}, "
                                 f"{'initiator' if self.initiator else 'responder'})"))
            elif isinstance(a, IkeSaRekeyed):
                self.counters["ike_rekeyed"] += 1
                self.counters["ike_rekeyed_by_us" if a.ours else "ike_rekeyed_by_peer"] += 1
                self._ike_timers(now)
                self._ike_failures, self._ike_error = 0, None
                outs.append(Note(f"IKE SA rekeyed: {a.old_spi_i}/{a.old_spi_r} -> {a.spi_i}/{a.spi_r} "
                                 f"({'ours' if a.ours else 'by peer'})"))
            elif isinstance(a, IkeRekeyFailed):
                self._ike_rekeying = False
                self._ike_failures += 1
                self._ike_error = _notify_name(a.notify)
                self.counters["ike_rekey_failed"] += 1
                delay = self._retry_delay(a.notify, self._ike_failures)
                if self._ike_rekey_at is not None:
                    self._ike_rekey_at = now + delay
                outs.append(Note(f"IKE SA rekey failed: {self._ike_error} (again in {delay:.1f} s)",
                                 "warning", "ike-rekey-failed"))
            elif isinstance(a, ChildSaUp):
                outs += self._child_up(a, now)
            elif isinstance(a, ChildSaRedundant):
                ch = self.children.get(a.spi_in)
                if ch is not None:
                    ch.redundant = True
            elif isinstance(a, ChildSaDown):
                outs += self._child_down(a, now)
            elif isinstance(a, ChildSaFailed):
                outs += self._child_failed(a, now)
            elif isinstance(a, IkeFailed):
                self.counters["ike_failed"] += 1
                name = _notify_name(a.notify)
                self.state = "failed"
                self.error = f"{name}: {a.reason}" if name else a.reason
                outs.append(Note(f"IKE failed: {self.error}", "error"))
                outs += self._reset()
                self._schedule_retry(now)
            elif isinstance(a, IkeSaDown):
                self.state = "down"
                self.error = f"IKE SA {a.reason}"
                outs.append(Note(f"IKE SA down: {a.reason}"))
                outs += self._reset()
                self._schedule_retry(now)
            elif isinstance(a, PeerAlive):
                self.counters["peer_alive"] += 1
                self._aside_error = None  # the peer still has our IKE SA
            elif isinstance(a, Ignored):
                self.counters["ignored"] += 1
        if self.session is not None:
            replaced = set(self.session.replaced())
            self._replaced_since = {k: v for k, v in self._replaced_since.items() if k in replaced}
            for spi in replaced - self._replaced_since.keys():
                self._replaced_since[spi] = now
        flight = self.session.in_flight if self.session is not None else ()
        if not flight:
            self._rtx_at, self._rtx_tries, self._rtx_flight = None, 0, ()
        elif flight != self._rtx_flight:  # a new request: its own timer (§2.1)
            self._rtx_flight, self._rtx_tries = flight, 0
            self._rtx_at = now + RETRANSMIT_BASE
        elif self._rtx_at is None:
            self._rtx_at = now + min(RETRANSMIT_CAP, RETRANSMIT_BASE * (2 ** self._rtx_tries))
        return outs

    def _retry_delay(self, notify: int, failures: int) -> float:
        if notify == Notify.TEMPORARY_FAILURE:
            return self.rng.uniform(*RETRY_BUSY)
        return min(RETRY_FAILED_CAP, RETRY_FAILED * 2 ** (failures - 1))

    def _ike_timers(self, now: float) -> None:
        lt = self.lifetimes
        self._ike_up_at = now
        self._ike_rekey_at = now + lt.ike_rekey - self.rng.uniform(0, lt.ike_rand)
        self._ike_expire_at = now + lt.ike_life
        self._ike_rekeying = False

    def _child_up(self, a: ChildSaUp, now: float) -> list[Out]:
        c, lt = a.child, self.lifetimes
        out, inb = c.to_sas(self.local, self.remote, name=self.name, created=now, **self.sa_options)
        ch = _Child(c.spi_in, c.spi_out, out, inb, now,
                    rekey_at=now + lt.child_rekey - self.rng.uniform(0, lt.child_rand),
                    expire_at=now + lt.child_life, redundant=a.redundant)
        self.children[c.spi_in] = ch
        self._missing_since = None
        outs: list[Out] = [AddInbound(inb)]
        old = self.children.get(a.replaces) if a.replaces is not None else None
        if old is not None:
            old.rekeying = False
            if not a.redundant:
                old.successor = c.spi_in
                old.failures, old.last_failure = 0, None
        pfs = " with PFS" if self.config.pfs else ""
        desc = f"in 0x{c.spi_in:08x} out 0x{c.spi_out:08x} {c.encryption}{' in UDP 4500' if self.config.nat_t else ''}"
        if a.redundant:
            self.counters["child_redundant"] += 1
            outs.append(Note(f"CHILD_SA {desc} lost a simultaneous rekey of 0x{a.replaces:08x} "
                             "(RFC 7296 §2.8.1): deleting it"))
        elif old is None:
            if a.ours:
                self._creating = False
            self._create_failures, self._create_error = 0, None
            self.counters["child_up"] += 1
            outs.append(Note(f"CHILD_SA up: {desc}"))
            outs += self._use(ch)
        elif a.ours:
            self.counters["child_rekeyed"] += 1
            self.counters["child_rekeyed_by_us"] += 1
            outs.append(Note(f"CHILD_SA 0x{old.spi_in:08x} rekeyed{pfs} -> {desc}"))
            outs += self._use(ch)
        else:
            self.pending[old.spi_in] = c.spi_in
            outs.append(Note(f"CHILD_SA 0x{old.spi_in:08x} rekey by peer answered: {desc}"))
            if self.out_spi not in self.children:
                outs += self._use(ch)
        return outs

    def _use(self, ch: _Child) -> list[Out]:
        self.out_spi = ch.spi_in
        return [SetOutbound(ch.out)]

    def _child_down(self, a: ChildSaDown, now: float) -> list[Out]:
        ch = self.children.pop(a.spi_in, None)
        if ch is None:
            return []
        outs: list[Out] = []
        successor = self.pending.pop(a.spi_in, None)
        for k in [k for k, v in self.pending.items() if v == a.spi_in]:
            del self.pending[k]
        superseded = False
        for other in self.children.values():
            if other.successor == a.spi_in:  # e.g. the peer's redundant one (§2.8.1): the
                other.successor = None       # old one carries on until its real successor
                superseded = True
        if self.out_spi == a.spi_in:
            nxt = self.children.get(successor) if successor is not None else None
            if nxt is None or nxt.redundant:
                nxt = self._newest_live()
            if nxt is not None:
                outs += self._use(nxt)
            else:
                self.out_spi = None
                outs.append(ClearOutbound(ch.out))
        if a.reason != DOWN_IKE and (ch.successor is not None or ch.redundant or superseded):
            self.lingering[a.spi_in] = (now + LINGER, ch)
        else:
            outs.append(RemoveInbound(ch.inb, ch.out))
        if ch.successor is not None and a.reason == DOWN_BY_PEER:
            self.counters["child_rekeyed"] += 1  # the peer's rekey is complete
            self.counters["child_rekeyed_by_peer"] += 1
            outs.append(Note(f"CHILD_SA 0x{a.spi_in:08x} rekeyed by peer -> 0x{ch.successor:08x}"))
        elif ch.successor is not None or ch.redundant or superseded:
            outs.append(Note(f"CHILD_SA 0x{a.spi_in:08x} {a.reason}"
                             + (" (it lost a simultaneous rekey)" if superseded else "")))
        elif a.reason != DOWN_IKE:
            self.counters["child_lost"] += 1
            level = "info" if a.reason != DOWN_BY_PEER else "warning"
            outs.append(Note(f"CHILD_SA 0x{a.spi_in:08x} {a.reason}", level,
                             "child-deleted" if a.reason == DOWN_BY_PEER else None, a.spi_in))
            if self.state == "established" and not self._live():
                self._missing_since = now
                if not self._creating:  # keep the configured tunnel up
                    delay = self.keep_up_delay if a.reason == DOWN_BY_PEER else 0.0
                    at = now + delay
                    self._create_at = at if self._create_at is None else min(self._create_at, at)
        return outs

    def _child_failed(self, a: ChildSaFailed, now: float) -> list[Out]:
        name = _notify_name(a.notify)
        if a.rekeying is not None:
            ch = self.children.get(a.rekeying)
            self.counters["rekey_failed"] += 1
            if ch is None:
                return [Note(f"CHILD_SA rekey of 0x{a.rekeying:08x} failed: {name}", "warning")]
            ch.rekeying = False
            if not ch.live:  # replaced by the peer's rekey meanwhile, or going: moot
                return [Note(f"CHILD_SA rekey of 0x{a.rekeying:08x} not needed any more ({name})")]
            ch.failures += 1
            ch.last_failure = name
            delay = self._retry_delay(a.notify, ch.failures)
            ch.rekey_at = now + delay
            return [Note(f"CHILD_SA rekey of 0x{a.rekeying:08x} failed: {name} (again in {delay:.1f} s)",
                         "warning", "rekey-failed", a.rekeying)]
        self._creating = False
        self._create_failures += 1
        self._create_error = name
        self.counters["child_failed"] += 1
        outs: list[Out] = [Note(f"CHILD_SA failed: {name}", "warning", "create-failed")]
        if self.state == "established" and not self._live():
            if self._missing_since is None:
                self._missing_since = now
            self._create_at = now + self._retry_delay(a.notify, self._create_failures)
        return outs

    def _live(self) -> list[_Child]:
        return [c for c in self.children.values() if c.live]

    def _newest_live(self) -> _Child | None:
        live = self._live()
        return max(live, key=lambda c: c.created) if live else None

    def _retransmit(self, now: float) -> list[Out]:
        self._rtx_at = None
        if self.session is None:
            return []
        self._rtx_tries += 1
        if self._rtx_tries > RETRANSMIT_TRIES:
            self._rtx_tries = 0
            outs0: list[Out] = []
            for spi in self.session.replaced():  # an unanswered Delete of a replaced IKE SA
                self._replaced_since.pop(spi, None)  # costs only that IKE SA
                outs0 += self._handle(self.session.forget(spi), now)
            if not self.session.in_flight:
                return outs0 + [Note("no answer to the Delete of a replaced IKE SA: forgotten",
                                     "warning")]
            self.error = "peer does not answer"
            outs = outs0 + [Note("no answer after retransmissions: starting over", "warning")]
            if self.initiator:
                return outs + self.start(now)
            # the responder gives the IKE SA up; the initiator will set up a new one
            outs += self._reset()
            self.session = None
            self.state = "down"
            self.error = "peer does not answer"
            return outs
        self.counters["retransmits"] += 1
        return self._handle(self.session.retransmit(), now)

    def _schedule_retry(self, now: float) -> None:
        if self.initiator and self._retry_at is None:
            self._retry_at = now + RETRY_AFTER_FAILURE

    def _reset(self) -> list[Out]:
        """The IKE SA is gone: every Child SA goes at once, lingering inbound halves too."""
        outs: list[Out] = []
        for ch in self.children.values():
            if self.out_spi == ch.spi_in:
                outs.append(ClearOutbound(ch.out))
            outs.append(RemoveInbound(ch.inb, ch.out))
        for _until, ch in self.lingering.values():
            outs.append(RemoveInbound(ch.inb, ch.out))
        self.children.clear()
        self.lingering.clear()
        self.pending.clear()
        self.candidate = None
        self.out_spi = None
        self._rtx_at, self._rtx_tries, self._rtx_flight = None, 0, ()
        self._create_at = None
        self._creating = False
        self._missing_since = None
        self._ike_rekey_at = self._ike_expire_at = None
        self._ike_rekeying = False
        self._replaced_since.clear()
        self._aside_error = None
        return outs

    # ------------------------------------------------------------ health and views

    def problems(self, now: float) -> list[dict[str, Any]]:
        """What is wrong with an established connection (empty: healthy)."""
        if self.state != "established":
            return []
        lt = self.lifetimes
        out: list[dict[str, Any]] = []
        live = self._live()
        if not live:
            since = self._missing_since if self._missing_since is not None else now
            why = f", last creation failed: {self._create_error}" if self._create_error else ""
            out.append({"sa": None, "problem": "missing",
                        "detail": f"no Child SA installed (for {now - since:.1f} s{why})"})
        slack = min(2.0, margin(lt.child_rekey) / 2)
        for ch in live:
            if now > ch.created + lt.child_rekey + slack:
                out.append({"sa": f"0x{ch.spi_in:08x}", "problem": "expiring",
                            "detail": f"Child SA 0x{ch.spi_in:08x} is past its rekey time and expires "
                                      f"in {max(0.0, ch.expire_at - now):.1f} s without a successor"})
        for ch in live:
            if _failing(ch.failures, ch.last_failure):
                out.append({"sa": f"0x{ch.spi_in:08x}", "problem": "rekey-failing",
                            "detail": f"{ch.failures} rekey(s) of Child SA 0x{ch.spi_in:08x} failed, "
                                      f"last: {ch.last_failure}"})
        if self._create_failures and not live:
            out.append({"sa": None, "problem": "create-failing",
                        "detail": f"{self._create_failures} Child SA creation(s) failed, "
                                  f"last: {self._create_error}"})
        if self._ike_expire_at is not None and now > self._ike_up_at + lt.ike_rekey + min(2.0, margin(lt.ike_rekey) / 2):
            out.append({"sa": "ike", "problem": "expiring",
                        "detail": f"IKE SA is past its rekey time and expires in "
                                  f"{max(0.0, self._ike_expire_at - now):.1f} s without a successor"})
        if self._aside_error is not None:
            out.append({"sa": "ike", "problem": "peer-failed",
                        "detail": f"a new IKE SA from the peer failed: {self._aside_error} "
                                  "(ours stays while the peer answers it)"})
        if _failing(self._ike_failures, self._ike_error):
            out.append({"sa": "ike", "problem": "rekey-failing",
                        "detail": f"{self._ike_failures} IKE SA rekey(s) failed, last: {self._ike_error}"})
        return out

    def status(self, now: float) -> dict[str, Any]:
        s = self.session
        problems = self.problems(now)
        state = "error" if problems else self.state
        error = "; ".join(p["detail"] for p in problems) if problems else self.error
        if self.state == "established" and not problems:
            error = None
        children = []
        for ch in sorted(self.children.values(), key=lambda c: c.created):
            children.append({
                "spi_in": f"0x{ch.spi_in:08x}", "spi_out": f"0x{ch.spi_out:08x}",
                "state": ("deleting" if ch.deleting else "redundant" if ch.redundant
                          else "replaced" if ch.successor is not None
                          else "rekeying" if ch.rekeying else "installed"),
                "outbound": ch.spi_in == self.out_spi, "age": round(now - ch.created, 3),
                "rekey_in": round(ch.rekey_at - now, 3) if ch.live and not ch.rekeying else None,
                "expires_in": round(ch.expire_at - now, 3), "rekey_failures": ch.failures,
            })
        return {
            "state": state, "ike_state": self.state, "error": error, "problems": problems,
            "ike_spis": [s.spi_i.hex(), s.spi_r.hex()] if s is not None else None,
            "ike_sas": s.ike_sas() if s is not None else [],
            "ike_rekey_in": (round(self._ike_rekey_at - now, 3)
                             if self._ike_rekey_at is not None and not self._ike_rekeying else None),
            "child_sas": [f"0x{k:08x}" for k in self.children],
            "children": children, "lifetimes": self.lifetimes.to_dict(),
            "counters": dict(sorted(self.counters.items())),
        }


__all__ = [
    "LINGER", "AddInbound", "ClearOutbound", "Lifetimes", "Note", "Out", "RemoveInbound",
    "SetOutbound", "Tunnel", "margin",
]

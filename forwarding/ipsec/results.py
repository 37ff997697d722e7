"""What an SA returns (ESP and AH alike): a packet, or a drop with its audit record.

`Encapsulated` and `Decapsulated` are immutable records built on `tuple` so the
per-packet path makes one with a single C call (`tuple.__new__`); a frozen
dataclass costs four `object.__setattr__` calls, about 1 us a packet here.
They compare equal only to records of the same class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from operator import itemgetter
from typing import Any


class DropReason(StrEnum):
    UNKNOWN_SPI = "unknown-spi"
    REPLAY = "replay"
    ICV_FAILED = "icv-failed"
    MALFORMED = "malformed"
    BAD_PADDING = "bad-padding"
    BAD_NEXT_HEADER = "bad-next-header"
    DUMMY = "dummy"  # RFC 4303 §2.6 dummy packet: dropped silently (no audit)
    POLICY_MISMATCH = "policy-mismatch"  # inner src/dst outside the SA's selectors
    SEQ_EXHAUSTED = "seq-exhausted"  # RFC 4303 §3.3.3 / RFC 4302 §3.3.2: the SA must not send any more
    LIFETIME_EXPIRED = "lifetime-expired"
    POLICY_DISCARD = "policy-discard"  # SPD said DISCARD
    UNPROTECTED = "unprotected"  # clear packet matching an inbound PROTECT policy
    NO_SA = "no-sa"  # PROTECT policy whose SA is missing


@dataclass(frozen=True)
class EspDrop:
    """A packet not passed on, and the audit record saying why (ESP or AH)."""

    reason: DropReason
    detail: str = ""
    spi: int | None = None
    seq: int | None = None
    src: str | None = None  # outer src for inbound, inner src for outbound
    dst: str | None = None
    sa: str | None = None
    time: float = 0.0

    @property
    def silent(self) -> bool:
        """True for drops that are normal and not audited (dummy packets)."""
        return self.reason is DropReason.DUMMY

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["reason"] = str(self.reason)
        return d


class _Record(tuple):  # type: ignore[type-arg]
    """A fixed-field immutable record; subclasses set `_fields` and getters."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __new__(cls, *args: Any, **kw: Any) -> Any:
        if kw:
            args = args + tuple(kw.pop(f) for f in cls._fields[len(args):] if f in kw)
            if kw:
                raise TypeError(f"{cls.__name__}: unknown fields {', '.join(kw)}")
        if len(args) != len(cls._fields):
            raise TypeError(f"{cls.__name__} takes {len(cls._fields)} fields, got {len(args)}")
        return tuple.__new__(cls, args)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and tuple.__eq__(self, other)  # type: ignore[arg-type]

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self))

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={v!r}" for f, v in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}({body})"


class Encapsulated(_Record):
    """A protected packet: the outer IPv4 packet, and the SA and sequence number used."""

    __slots__ = ()
    _fields = ("packet", "spi", "seq", "sa")
    packet: bytes = property(itemgetter(0))  # type: ignore[assignment]
    spi: int = property(itemgetter(1))  # type: ignore[assignment]
    seq: int = property(itemgetter(2))  # type: ignore[assignment]
    sa: str = property(itemgetter(3))  # type: ignore[assignment]


class Decapsulated(_Record):
    """An opened packet: the inner IPv4 packet, and the SA and sequence number it came on."""

    __slots__ = ()
    _fields = ("inner", "spi", "seq", "sa")
    inner: bytes = property(itemgetter(0))  # type: ignore[assignment]
    spi: int = property(itemgetter(1))  # type: ignore[assignment]
    seq: int = property(itemgetter(2))  # type: ignore[assignment]
    sa: str = property(itemgetter(3))  # type: ignore[assignment]


@dataclass
class SaCounters:
    packets_out: int = 0
    bytes_out: int = 0  # inner bytes protected
    packets_in: int = 0
    bytes_in: int = 0  # inner bytes delivered
    replay_drops: int = 0
    icv_failures: int = 0
    malformed: int = 0
    bad_padding: int = 0
    bad_next_header: int = 0
    dummy: int = 0
    policy_mismatches: int = 0
    seq_exhausted: int = 0
    lifetime_expired: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


COUNTER_OF = {
    DropReason.REPLAY: "replay_drops",
    DropReason.ICV_FAILED: "icv_failures",
    DropReason.MALFORMED: "malformed",
    DropReason.BAD_PADDING: "bad_padding",
    DropReason.BAD_NEXT_HEADER: "bad_next_header",
    DropReason.DUMMY: "dummy",
    DropReason.POLICY_MISMATCH: "policy_mismatches",
    DropReason.SEQ_EXHAUSTED: "seq_exhausted",
    DropReason.LIFETIME_EXPIRED: "lifetime_expired",
}

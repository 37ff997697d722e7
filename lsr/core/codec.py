"""The one codec idiom of every wire codec here: LDP, RFC 8029 echo, IKEv2.

Each message / TLV / payload is a class that carries its own wire form (as
ExaBGP's messages and holo's TLVs do)::

    @TLVS.register                      # a Registry: refuses a second class per code
    @dataclass(frozen=True)
    class ReplyTos:
        TYPE: ClassVar[int] = 10        # its type code
        tos: int

        def value(self) -> bytes:       # the value only; the framing adds type + length
            return struct.pack("!B3x", self.tos)

        @classmethod
        def from_value(cls, v: bytes, off: int) -> ReplyTos:  # raises only DecodeError
            if len(v) != 4:
                raise DecodeError(f"Reply TOS length {len(v)} != 4", off)
            return cls(v[0])

The framing code of a protocol reads a header, looks the class up in its
registry (`TLVS.get(code)`) and calls ``from_value(value, ...)`` with the
value and the header fields that class needs (LDP TLV: its code; LDP message:
its Message ID; echo TLV: its offset, for the error; IKE payload: its code
and Next Payload). To encode it writes ``obj.TYPE`` and ``obj.value()``.
A class that stands for several codes (IKE IDi/IDr, LDP IPv4/IPv6 Transport
Address) lists them in ``TYPES`` and answers ``TYPE`` per instance.

Decoders raise their protocol's ``DecodeError`` (a subclass of the one here)
and nothing else; exactly one function per protocol maps it to what goes on
the wire: LDP ``ldp.codec.status_for`` (a status code), echo
``lsr.oam.echo.return_code_for`` (return code 1, malformed request); IKE
drops a malformed message (``ike.session``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

__all__ = ["DecodeError", "Registry", "type_codes"]


class DecodeError(Exception):
    """Malformed bytes. Each protocol subclasses it with the fields its answer needs."""


T = TypeVar("T")
K = TypeVar("K", bound=type)


def type_codes(cls: type) -> tuple[int, ...]:
    """The codes a class is registered under: its `TYPES`, else its `TYPE`."""
    codes = getattr(cls, "TYPES", None)
    if codes is None:
        codes = (getattr(cls, "TYPE", None),)
    out = tuple(int(c) for c in codes if isinstance(c, int))
    if not out or len(out) != len(codes) or len(set(out)) != len(out):
        raise TypeError(f"{cls.__qualname__} needs an int TYPE, or distinct int TYPES")
    return out


class Registry(Generic[T]):
    """Type code -> the class that decodes it, for one level of one protocol.

    `register` is a class decorator; a second class for a code already taken
    raises ValueError at import, so two decoders can never silently shadow
    each other.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._by_code: dict[int, type[T]] = {}

    def register(self, cls: K) -> K:
        for attr in ("value", "from_value"):
            if not callable(getattr(cls, attr, None)):
                raise TypeError(f"{self.name}: {cls.__qualname__} has no {attr}()")
        codes = type_codes(cls)
        for code in codes:
            old = self._by_code.get(code)
            if old is not None:
                raise ValueError(
                    f"{self.name}: type {code:#x} is already {old.__qualname__},"
                    f" cannot register {cls.__qualname__}"
                )
        for code in codes:
            self._by_code[code] = cls
        return cls

    def get(self, code: int) -> type[T] | None:
        return self._by_code.get(code)

    def __contains__(self, code: Any) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_code)

    def __len__(self) -> int:
        return len(self._by_code)

    def codes(self) -> frozenset[int]:
        return frozenset(self._by_code)

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {len(self)} types)"

"""What an `ike.session.IkeSession` returns: frozen dataclasses for its driver.

`SendIke` is a datagram to send; the others tell the driver what happened to
the IKE SA and its Child SAs (the ESP keys travel in `ChildSaUp.child`).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, summarize_address_range

from forwarding.ipsec.esp import SecurityAssociation
from forwarding.ipsec.spd import Selector
from ike.codec import TrafficSelector

# ChildSaDown.reason: who ended the Child SA (the driver re-creates one the peer took away)
DOWN_BY_US = "deleted"  # our Delete was answered (or both sides closed it at once, §2.25.1)
DOWN_BY_PEER = "deleted by peer"  # the peer's Delete (§1.4.1)
DOWN_NOT_FOUND = "not found by peer"  # CHILD_SA_NOT_FOUND to our rekey: deleted silently (§2.25)
DOWN_IKE = "IKE SA gone"  # with its IKE SA


@dataclass(frozen=True)
class SendIke:
    data: bytes


@dataclass(frozen=True)
class IkeSaUp:
    spi_i: str
    spi_r: str


@dataclass(frozen=True)
class IkeSaRekeyed:
    """The current IKE SA changed (§2.18): the Child SAs now belong to `spi_i`/`spi_r`."""

    spi_i: str
    spi_r: str
    old_spi_i: str
    old_spi_r: str
    ours: bool  # we sent the CREATE_CHILD_SA that made it


@dataclass(frozen=True)
class IkeRekeyFailed:
    notify: int  # e.g. TEMPORARY_FAILURE (§2.25: try again a little later)


@dataclass(frozen=True)
class ChildSa:
    """Both directions of an ESP Child SA, from this router's point of view."""

    spi_in: int
    spi_out: int
    encryption: str
    key_in: bytes  # AES key ‖ salt
    key_out: bytes
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]

    def __repr__(self) -> str:
        return f"ChildSa(in=0x{self.spi_in:08x}, out=0x{self.spi_out:08x}, {self.encryption})"

    def to_sas(
        self, local: IPv4Address | str, remote: IPv4Address | str, name: str = "child", **kw: object
    ) -> tuple[SecurityAssociation, SecurityAssociation]:
        """(outbound, inbound) ESP SAs for forwarding.ipsec (tunnel endpoints = IKE peers)."""
        out_sel = _selectors(self.local_ts, self.remote_ts)
        in_sel = _selectors(self.remote_ts, self.local_ts)
        out = SecurityAssociation(name=f"{name}-out", spi=self.spi_out, src=local, dst=remote,
                                  encryption=self.encryption, enc_key=self.key_out,
                                  selectors=out_sel, **kw)  # type: ignore[arg-type]
        inb = SecurityAssociation(name=f"{name}-in", spi=self.spi_in, src=remote, dst=local,
                                  encryption=self.encryption, enc_key=self.key_in,
                                  selectors=in_sel, **kw)  # type: ignore[arg-type]
        return out, inb


def _selectors(src: tuple[TrafficSelector, ...], dst: tuple[TrafficSelector, ...]) -> list[Selector]:
    out = []
    for s in src:
        for d in dst:
            proto = s.protocol or d.protocol or None
            for sn in summarize_address_range(s.start, s.end):
                for dn in summarize_address_range(d.start, d.end):
                    out.append(Selector(sn, dn, proto))
    return out


@dataclass(frozen=True)
class ChildSaUp:
    child: ChildSa
    replaces: int | None = None  # spi_in of the Child SA this one rekeys
    ours: bool = False  # we sent the request that made it (IKE_AUTH or CREATE_CHILD_SA)
    redundant: bool = False  # it lost a simultaneous rekey (§2.8.1): we made it, we delete it


@dataclass(frozen=True)
class ChildSaRedundant:
    """The peer's new Child SA lost a simultaneous rekey (§2.8.1): the peer deletes it."""

    spi_in: int


@dataclass(frozen=True)
class ChildSaDown:
    spi_in: int
    spi_out: int
    reason: str = DOWN_BY_US


@dataclass(frozen=True)
class ChildSaFailed:
    notify: int
    rekeying: int | None = None  # spi_in of the Child SA whose rekey failed; None: a new one


@dataclass(frozen=True)
class IkeFailed:
    reason: str
    notify: int | None = None


@dataclass(frozen=True)
class IkeSaDown:
    reason: str


@dataclass(frozen=True)
class PeerAlive:
    pass


@dataclass(frozen=True)
class Ignored:
    reason: str


Action = (SendIke | IkeSaUp | IkeSaRekeyed | IkeRekeyFailed | ChildSaUp | ChildSaRedundant
          | ChildSaDown | ChildSaFailed | IkeFailed | IkeSaDown | PeerAlive | Ignored)

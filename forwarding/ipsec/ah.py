"""RFC 4302 AH (IP Authentication Header) in tunnel mode over IPv4, on bytes.

Integrity and data-origin authentication without confidentiality: the inner
packet travels in clear, and the ICV covers it *and* the immutable fields of
the outer IPv4 header. Algorithms: HMAC-SHA2-256-128 (RFC 4868: 32-byte key,
16-byte ICV) and HMAC-SHA2-512-256 (64-byte key, 32-byte ICV); both ICVs keep
the AH header a multiple of 32 bits (§2.6), so there is no ICV padding.

Packet (§2, §3.1.2 tunnel mode)::

    outer IPv4 (protocol 51) | NH=4 | Payload Len | Reserved=0 | SPI | Seq | ICV | inner IPv4

Outer header as for ESP (RFC 4301 §5.1.2.1): src/dst = tunnel endpoints, TTL
64, ID = low 16 bits of the sequence number, DSCP copied from the inner
header, ECN not-ECT, DF copied (or `df="set"|"clear"`).

ICV (§3.3.3): HMAC over the outer IPv4 header with its mutable fields zeroed
(§3.3.3.1.1.1: TOS, flags, fragment offset, TTL, header checksum; options per
§3.3.3.1.1.2 and Appendix A: an option not listed as immutable is zeroed as a
whole), then the AH header with the ICV field zeroed, then the inner packet,
then (ESN only, §2.5.1) the high 32 bits of the sequence number. So a router
on the path may rewrite TOS/DSCP, TTL or DF and the packet still verifies;
a changed address, ID, length, protocol or payload byte does not.

Inbound order (§3.4): outer IPv4 checks and no fragment (§3.4.1) -> AH
lengths -> SPI -> anti-replay pre-check (§3.4.3) -> ICV in constant time
(§3.4.4) -> window update (only now) -> next header 4 -> inner IPv4 ->
selectors (RFC 4301 §5.2). Never raises on bad input; every drop is an
`EspDrop` (the shared drop record) with a `DropReason`, counted on the SA.
The sender never wraps its sequence number (§2.5, §3.3.2).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from ipaddress import IPv4Address

from forwarding.ipsec.esp import INTEGRITIES, MAX_SEQ_32, MAX_SEQ_64, NH_IPV4, OUTER_TTL
from forwarding.ipsec.ipv4 import addr_str, check_ipv4, ipv4_checksum
from forwarding.ipsec.replay import DEFAULT_WINDOW, ReplayWindow
from forwarding.ipsec.results import (
    COUNTER_OF,
    Decapsulated,
    DropReason,
    Encapsulated,
    EspDrop,
    SaCounters,
)
from forwarding.ipsec.spd import Selector

IPPROTO_AH = 51
AH_FIXED = 12  # Next Header, Payload Len, Reserved, SPI, Sequence Number
_IP_DF = 0x4000
# RFC 4302 Appendix A.1: IPv4 options included in the ICV as they are (by option type:
# copy bit, class and number). Every other option is zeroed as a whole.
IMMUTABLE_OPTIONS = frozenset({
    0,  # End of Options List
    1,  # No Operation
    130,  # Security (RFC 1108)
    133,  # Extended Security (RFC 1108)
    134,  # Commercial Security
    148,  # Router Alert (RFC 2113)
    149,  # Sender Directed Multi-Destination Delivery (RFC 1770)
})
_OUTER = struct.Struct("!BBHHHBBH4s4s").pack
_AH = struct.Struct("!BBHII").pack
_tnew = tuple.__new__


def zero_mutable(header: bytes) -> bytes | str:
    """The outer IPv4 header as the ICV sees it (RFC 4302 §3.3.3.1.1), or a problem.

    TOS, flags + fragment offset, TTL and checksum become 0; options are walked
    and every option that Appendix A does not list as immutable is zeroed, type
    and length included (§3.3.3.1.1.2). The destination address stays as
    received: with a source route the receiver is the final destination, which
    is the value the sender had to predict (§3.3.3.1.1.1).
    """
    hlen = len(header)
    out = bytearray(header)
    out[1] = 0
    out[6:12] = b"\0\0\0\0\0\0"  # flags + fragment offset, TTL, protocol..checksum
    out[9] = header[9]  # the protocol is immutable
    i = 20
    while i < hlen:
        t = header[i]
        if t == 0:  # End of Options List: the rest is padding, immutable
            break
        if t == 1:
            i += 1
            continue
        if i + 1 >= hlen or header[i + 1] < 2 or i + header[i + 1] > hlen:
            return f"bad IPv4 option {t} at offset {i}"
        length = header[i + 1]
        if t not in IMMUTABLE_OPTIONS:
            out[i : i + length] = bytes(length)
        i += length
    return bytes(out)


class AhSecurityAssociation:
    """One direction of an AH tunnel-mode SA (RFC 4301 §4.4.2 SAD entry).

    The same interface as the ESP `SecurityAssociation` (encapsulate,
    decapsulate, counters, window, status), so the SAD, SPD and dataplane
    treat both alike.
    """

    protocol = "ah"

    __slots__ = (
        "name", "spi", "src", "dst", "integrity", "esn", "selectors", "_sel", "next_seq", "max_seq",
        "df", "lifetime_packets", "lifetime_seconds", "created", "window", "counters", "_mac",
        "_icv_len", "_ah_len", "_spi_b", "_src_b", "_dst_b", "_zero_icv",
    )

    def __init__(
        self,
        *,
        name: str,
        spi: int,
        src: IPv4Address | str,
        dst: IPv4Address | str,
        integrity: str,
        auth_key: bytes,
        replay_window: int = DEFAULT_WINDOW,
        esn: bool = False,
        selectors: Iterable[Selector] | None = None,
        seq: int = 1,
        df: str = "copy",
        lifetime_packets: int | None = None,
        lifetime_seconds: float | None = None,
        created: float = 0.0,
    ) -> None:
        if not 256 <= spi <= MAX_SEQ_32:  # RFC 4302 §2.4: 0 reserved, 1..255 IANA-reserved
            raise ValueError(f"SPI {spi} is reserved or out of range (256..{MAX_SEQ_32})")
        if integrity not in INTEGRITIES:
            raise ValueError(f"AH needs an integrity algorithm ({', '.join(INTEGRITIES)}), got {integrity!r}")
        integ = INTEGRITIES[integrity]
        if len(auth_key) != integ.key_len:
            raise ValueError(f"{integrity} needs a {integ.key_len}-byte key, got {len(auth_key)}")
        if df not in ("copy", "set", "clear"):
            raise ValueError(f"df must be copy, set or clear, not {df!r}")
        if not 0 <= seq <= (MAX_SEQ_64 if esn else MAX_SEQ_32) + 1:
            raise ValueError(f"initial sequence number {seq} out of range")
        self.name = name
        self.spi = spi
        self.src = IPv4Address(src)
        self.dst = IPv4Address(dst)
        self.integrity = integ
        self.esn = esn
        self.selectors: tuple[Selector, ...] | None = None if selectors is None else tuple(selectors)
        self._sel = None if self.selectors is None else tuple(
            (int(x.src.network_address), int(x.src.netmask),
             int(x.dst.network_address), int(x.dst.netmask), x.protocol)
            for x in self.selectors
        )
        self.next_seq = seq  # §3.3.2: the first packet sent is 1
        self.max_seq = MAX_SEQ_64 if esn else MAX_SEQ_32
        self.df = df
        self.lifetime_packets = lifetime_packets
        self.lifetime_seconds = lifetime_seconds
        self.created = created
        self.window = ReplayWindow(replay_window)
        self.counters = SaCounters()
        self._mac = hmac.new(auth_key, digestmod=getattr(hashlib, integ.digest))
        self._icv_len = integ.icv_len
        self._ah_len = AH_FIXED + integ.icv_len  # a multiple of 4 for both algorithms (§2.6)
        self._spi_b = struct.pack("!I", spi)
        self._src_b = self.src.packed
        self._dst_b = self.dst.packed
        self._zero_icv = bytes(integ.icv_len)

    # ------------------------------------------------------------ status

    @property
    def exhausted(self) -> bool:
        """True once the last sequence number has been used (§2.5)."""
        return self.next_seq > self.max_seq

    @property
    def overhead(self) -> int:
        """Bytes added to an inner packet: outer IPv4 + AH."""
        return 20 + self._ah_len

    def status(self) -> dict[str, object]:
        return {
            "name": self.name,
            "protocol": "ah",
            "spi": f"0x{self.spi:08x}",
            "src": str(self.src),
            "dst": str(self.dst),
            "encryption": "none",
            "integrity": self.integrity.name,
            "esn": self.esn,
            "replay_window": self.window.size,
            "next_seq": self.next_seq,
            "replay_top": self.window.top,
            "exhausted": self.exhausted,
            "counters": self.counters.to_dict(),
        }

    def _drop(self, reason: DropReason, detail: str, **kw: object) -> EspDrop:
        attr = COUNTER_OF.get(reason)
        if attr:
            setattr(self.counters, attr, getattr(self.counters, attr) + 1)
        return EspDrop(reason, detail, spi=self.spi, sa=self.name, **kw)  # type: ignore[arg-type]

    def _in_drop(self, reason: DropReason, detail: str, seq: int | None, packet: bytes, now: float) -> EspDrop:
        return self._drop(reason, detail, seq=seq, src=addr_str(packet[12:16]), dst=addr_str(packet[16:20]),
                          time=now)

    # ------------------------------------------------------------ outbound

    def encapsulate(self, inner: bytes, now: float = 0.0) -> Encapsulated | EspDrop:
        """Protect one inner IPv4 packet (§3.3): returns the outer IPv4/AH packet, or a drop."""
        seq = self.next_seq
        if seq > self.max_seq:  # §2.5: never cycle
            return self._drop(
                DropReason.SEQ_EXHAUSTED,
                f"sequence number space used up at {self.max_seq:#x}; the SA must be replaced",
                time=now,
            )
        if self.lifetime_packets is not None and self.counters.packets_out >= self.lifetime_packets:
            return self._drop(DropReason.LIFETIME_EXPIRED, "packet lifetime reached", time=now)
        if self.lifetime_seconds is not None and now - self.created >= self.lifetime_seconds:
            return self._drop(DropReason.LIFETIME_EXPIRED, "time lifetime reached", time=now)
        n = len(inner)
        if n < 20 or inner[0] >> 4 != 4 or ((inner[2] << 8) | inner[3]) != n:
            return self._drop(DropReason.MALFORMED, "inner packet is not a whole IPv4 packet", time=now)
        self.next_seq = seq + 1
        total = 20 + self._ah_len + n
        ident = seq & 0xFFFF
        seq_lo = seq & MAX_SEQ_32
        ah = _AH(NH_IPV4, self._ah_len // 4 - 2, 0, self.spi, seq_lo)  # §2.2: length in words - 2
        # §3.3.3: the ICV sees the outer header with TOS, flags, TTL and checksum zeroed
        mac = self._mac.copy()
        mac.update(_OUTER(0x45, 0, total, ident, 0, 0, IPPROTO_AH, 0, self._src_b, self._dst_b))
        mac.update(ah)
        mac.update(self._zero_icv)
        mac.update(inner)
        if self.esn:  # §2.5.1: the high half is in the ICV, not on the wire
            mac.update(struct.pack("!I", seq >> 32))
        icv = mac.digest()[: self._icv_len]
        tos = inner[1] & 0xFC  # DSCP copied; ECN not-ECT (RFC 6040 compatibility mode)
        if self.df == "copy":
            flags = ((inner[6] << 8) | inner[7]) & _IP_DF
        else:
            flags = _IP_DF if self.df == "set" else 0
        hdr = bytearray(_OUTER(0x45, tos, total, ident, flags, OUTER_TTL, IPPROTO_AH, 0,
                               self._src_b, self._dst_b))
        struct.pack_into("!H", hdr, 10, ipv4_checksum(hdr))
        self.counters.packets_out += 1
        self.counters.bytes_out += n
        return _tnew(Encapsulated, (b"".join((hdr, ah, icv, inner)), self.spi, seq, self.name))

    # ------------------------------------------------------------ inbound

    def decapsulate(self, packet: bytes, now: float = 0.0) -> Decapsulated | EspDrop:
        """Check one outer IPv4/AH packet addressed to this SA and return its inner packet."""
        ip = check_ipv4(packet)
        if isinstance(ip, str):
            return self._drop(DropReason.MALFORMED, f"outer header: {ip}", time=now)
        hlen, total, proto = ip
        if proto != IPPROTO_AH:
            return self._in_drop(DropReason.MALFORMED, f"outer protocol {proto}, not AH", None, packet, now)
        return self.open_ah(packet, hlen, total, now)

    def open_ah(self, packet: bytes, hlen: int, total: int, now: float = 0.0) -> Decapsulated | EspDrop:
        """The AH steps for a packet whose outer IPv4 header (`hlen` bytes, `total` long)
        checked out and whose protocol is AH (for `Sad`)."""
        if ((packet[6] << 8) | packet[7]) & 0x3FFF:  # §3.4.1: AH is applied to whole packets only
            return self._in_drop(DropReason.MALFORMED, "outer fragment (not reassembled)", None, packet, now)
        ah_len = self._ah_len
        if total - hlen < ah_len:
            return self._in_drop(DropReason.MALFORMED, f"AH packet of {total - hlen} bytes is too short",
                                 None, packet, now)
        nh, plen = packet[hlen], packet[hlen + 1]
        if (plen + 2) * 4 != ah_len:  # §2.2
            return self._in_drop(
                DropReason.MALFORMED,
                f"AH length {(plen + 2) * 4} is not {ah_len} ({self.integrity.name})", None, packet, now,
            )
        if packet[hlen + 4 : hlen + 8] != self._spi_b:
            spi = int.from_bytes(packet[hlen + 4 : hlen + 8], "big")
            return self._in_drop(DropReason.UNKNOWN_SPI, f"SPI 0x{spi:08x} is not this SA's", None, packet, now)
        seq = int.from_bytes(packet[hlen + 8 : hlen + 12], "big")
        w = self.window
        if self.esn:  # RFC 4302 App. B: infer the high half; the ICV then confirms the guess
            seq = w.infer_esn(seq)
        if not w.check(seq):  # §3.4.3: cheap pre-check, before the ICV
            return self._in_drop(DropReason.REPLAY, "duplicate or left of the window", seq, packet, now)
        header = zero_mutable(packet[:hlen])
        if isinstance(header, str):
            return self._in_drop(DropReason.MALFORMED, f"outer header: {header}", seq, packet, now)
        icv_at = hlen + AH_FIXED
        mac = self._mac.copy()
        mac.update(header)
        mac.update(packet[hlen:icv_at])
        mac.update(self._zero_icv)
        mac.update(packet[icv_at + self._icv_len : total])
        if self.esn:
            mac.update(struct.pack("!I", seq >> 32))
        if not hmac.compare_digest(mac.digest()[: self._icv_len], packet[icv_at : icv_at + self._icv_len]):
            return self._in_drop(DropReason.ICV_FAILED, "ICV does not verify", seq, packet, now)  # §3.4.4
        w.update(seq)  # §3.4.3: only after the ICV verified
        if nh != NH_IPV4:
            return self._in_drop(DropReason.BAD_NEXT_HEADER, f"next header {nh}, expected 4", seq, packet, now)
        payload = packet[hlen + ah_len : total]
        ip = check_ipv4(payload)
        if isinstance(ip, str):
            return self._in_drop(DropReason.MALFORMED, f"inner packet: {ip}", seq, packet, now)
        inner = payload[: ip[1]]
        if self._sel is not None:
            # RFC 4301 §5.2 step 4: the inner header must match the SA's selectors
            isrc = int.from_bytes(inner[12:16], "big")
            idst = int.from_bytes(inner[16:20], "big")
            iproto = ip[2]
            for snet, smask, dnet, dmask, proto in self._sel:
                if isrc & smask == snet and idst & dmask == dnet and (proto is None or proto == iproto):
                    break
            else:
                return self._in_drop(
                    DropReason.POLICY_MISMATCH,
                    f"inner {IPv4Address(isrc)} -> {IPv4Address(idst)} proto {iproto} "
                    "is outside the SA's selectors",
                    seq, packet, now,
                )
        self.counters.packets_in += 1
        self.counters.bytes_in += len(inner)
        return _tnew(Decapsulated, (inner, self.spi, seq, self.name))

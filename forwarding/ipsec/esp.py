"""RFC 4303 ESP in tunnel mode over IPv4, on bytes, with `cryptography`.

Algorithms (RFC 8221 set):

* AES-CBC 128/192/256 (RFC 3602, 16-byte random IV) with HMAC-SHA2-256-128
  (RFC 4868: 32-byte key, 16-byte ICV) or HMAC-SHA2-512-256 (64-byte key,
  32-byte ICV). The ICV is verified in constant time before decrypting.
* AES-GCM-16 128/192/256 (RFC 4106: key ‖ 4-byte salt, 8-byte IV, 16-byte
  ICV). The IV is the 64-bit sequence number, so a (key, IV) pair never
  repeats. Only for IKE-derived keys: RFC 4106 §8.1 forbids static keys.

Encapsulation (RFC 4303 §3.3, RFC 4301 §5.1.2.1 tunnel header):
outer IPv4 src/dst = tunnel endpoints, protocol 50, TTL 64, ID = low 16 bits
of the sequence number, DSCP copied from the inner header, ECN not-ECT
(RFC 6040 compatibility mode), DF **copied** from the inner header by default
(RFC 4301 §8.1; `df="set"|"clear"` per SA). Padding bytes 1, 2, 3, ...
(§2.4), then Pad Length and Next Header 4 (IPv4).

Decapsulation never raises on bad input: each failure is an `EspDrop` with a
`DropReason`, and the SA counts it. Order (§3.4): lengths -> anti-replay
pre-check -> ICV (constant time) -> window update -> decrypt -> padding ->
next header (59 = dummy, dropped silently) -> inner IPv4 -> inbound selector
check (RFC 4301 §5.2).

The sender never wraps its sequence number (§3.3.3): after 2^32-1 (2^64-1
with ESN) every encapsulation returns `EspDrop(SEQ_EXHAUSTED)` until the SA
is replaced. Time only enters through the `now` arguments (lifetimes, audit).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from ipaddress import IPv4Address

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from forwarding.ipsec.replay import DEFAULT_WINDOW, ReplayWindow
from forwarding.ipsec.spd import Selector

IPPROTO_ESP = 50
NH_IPV4 = 4  # IP-in-IP: tunnel mode carrying IPv4
NH_IPV6 = 41
NH_DUMMY = 59  # RFC 4303 §2.6 dummy packet ("no next header")
OUTER_TTL = 64
MAX_SEQ_32 = 0xFFFFFFFF
MAX_SEQ_64 = 0xFFFFFFFFFFFFFFFF
_IP_DF = 0x4000
_PADS = tuple(bytes(range(1, n + 1)) for n in range(256))  # §2.4 pad contents by length


# ---------------------------------------------------------------- algorithms


@dataclass(frozen=True)
class EncAlg:
    name: str
    key_len: int  # AES key bytes (without the GCM salt)
    iv_len: int
    block: int  # padding alignment (§2.4: at least 4)
    aead: bool = False
    salt_len: int = 0
    icv_len: int = 0  # for AEAD

    @property
    def keymat_len(self) -> int:
        """Bytes of key material in configuration/KDF: key ‖ salt."""
        return self.key_len + self.salt_len


@dataclass(frozen=True)
class IntegAlg:
    name: str
    key_len: int
    icv_len: int
    digest: str  # hashlib name


ENCRYPTIONS: dict[str, EncAlg] = {
    # RFC 3602
    "aes-128-cbc": EncAlg("aes-128-cbc", 16, 16, 16),
    "aes-192-cbc": EncAlg("aes-192-cbc", 24, 16, 16),
    "aes-256-cbc": EncAlg("aes-256-cbc", 32, 16, 16),
    # RFC 4106 (16-octet ICV)
    "aes-128-gcm-16": EncAlg("aes-128-gcm-16", 16, 8, 4, True, 4, 16),
    "aes-192-gcm-16": EncAlg("aes-192-gcm-16", 24, 8, 4, True, 4, 16),
    "aes-256-gcm-16": EncAlg("aes-256-gcm-16", 32, 8, 4, True, 4, 16),
}

INTEGRITIES: dict[str, IntegAlg] = {
    # RFC 4868
    "hmac-sha2-256-128": IntegAlg("hmac-sha2-256-128", 32, 16, "sha256"),
    "hmac-sha2-512-256": IntegAlg("hmac-sha2-512-256", 64, 32, "sha512"),
}
NO_INTEGRITY = "none"


# ---------------------------------------------------------------- results


class DropReason(StrEnum):
    UNKNOWN_SPI = "unknown-spi"
    REPLAY = "replay"
    ICV_FAILED = "icv-failed"
    MALFORMED = "malformed"
    BAD_PADDING = "bad-padding"
    BAD_NEXT_HEADER = "bad-next-header"
    DUMMY = "dummy"  # §2.6 dummy packet: dropped silently (no audit)
    POLICY_MISMATCH = "policy-mismatch"  # inner src/dst outside the SA's selectors
    SEQ_EXHAUSTED = "seq-exhausted"  # §3.3.3: the SA must not send any more
    LIFETIME_EXPIRED = "lifetime-expired"
    POLICY_DISCARD = "policy-discard"  # SPD said DISCARD
    UNPROTECTED = "unprotected"  # clear packet matching an inbound PROTECT policy
    NO_SA = "no-sa"  # PROTECT policy whose SA is missing


@dataclass(frozen=True)
class EspDrop:
    """A packet not passed on, and the audit record saying why."""

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


@dataclass(frozen=True)
class Encapsulated:
    packet: bytes  # outer IPv4 packet
    spi: int
    seq: int
    sa: str


@dataclass(frozen=True)
class Decapsulated:
    inner: bytes  # inner IPv4 packet
    spi: int
    seq: int
    sa: str


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


_COUNTER_OF = {
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


# ---------------------------------------------------------------- IPv4 helpers


def ipv4_checksum(header: bytes) -> int:
    """RFC 791 header checksum (the checksum field must be zero or included).

    RFC 1071 §2(B): the one's-complement sum does not depend on byte order,
    so native-order 16-bit words are summed and the result swapped back.
    """
    if len(header) % 2:
        header += b"\0"
    s = sum(memoryview(header).cast("H"))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    s = ~s & 0xFFFF
    return s if sys.byteorder == "big" else ((s & 0xFF) << 8) | (s >> 8)


def check_ipv4(packet: bytes) -> tuple[int, int, int] | str:
    """(header length, total length, protocol) of a sane IPv4 packet, or the problem."""
    if len(packet) < 20:
        return f"{len(packet)} bytes is shorter than an IPv4 header"
    vihl = packet[0]
    if vihl >> 4 != 4:
        return f"IP version {vihl >> 4}, not 4"
    hlen = (vihl & 0x0F) * 4
    total = (packet[2] << 8) | packet[3]
    if hlen < 20 or total < hlen or total > len(packet):
        return f"bad IPv4 lengths: header {hlen}, total {total}, have {len(packet)}"
    if ipv4_checksum(packet[:hlen]) != 0:
        return "bad IPv4 header checksum"
    return hlen, total, packet[9]


def parse_ipv4(packet: bytes) -> tuple[int, int, int, IPv4Address, IPv4Address] | str:
    """(header length, total length, protocol, src, dst) of an IPv4 packet, or a problem."""
    ok = check_ipv4(packet)
    if isinstance(ok, str):
        return ok
    return (*ok, IPv4Address(packet[12:16]), IPv4Address(packet[16:20]))


def addr_str(b: bytes) -> str | None:
    return str(IPv4Address(b)) if len(b) == 4 else None


# ---------------------------------------------------------------- the SA


class SecurityAssociation:
    """One direction of an ESP tunnel-mode SA (RFC 4301 §4.4.2 SAD entry).

    The same object type serves outbound (`encapsulate`) and inbound
    (`decapsulate`); a router holds distinct SAs for each direction.
    """

    def __init__(
        self,
        *,
        name: str,
        spi: int,
        src: IPv4Address | str,
        dst: IPv4Address | str,
        encryption: str,
        enc_key: bytes,
        integrity: str = NO_INTEGRITY,
        auth_key: bytes = b"",
        replay_window: int = DEFAULT_WINDOW,
        esn: bool = False,
        selectors: Iterable[Selector] | None = None,
        seq: int = 1,
        df: str = "copy",
        lifetime_packets: int | None = None,
        lifetime_seconds: float | None = None,
        created: float = 0.0,
        iv_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if encryption not in ENCRYPTIONS:
            raise ValueError(f"unknown encryption {encryption!r}")
        alg = ENCRYPTIONS[encryption]
        if not 256 <= spi <= MAX_SEQ_32:  # RFC 4303 §2.1: 0 reserved, 1..255 IANA-reserved
            raise ValueError(f"SPI {spi} is reserved or out of range (256..{MAX_SEQ_32})")
        if len(enc_key) != alg.keymat_len:
            raise ValueError(f"{encryption} needs a {alg.keymat_len}-byte key, got {len(enc_key)}")
        if alg.aead:
            if integrity != NO_INTEGRITY:
                raise ValueError("AES-GCM is a combined mode: integrity must be 'none' (RFC 4106 §3)")
            integ = None
        else:
            if integrity not in INTEGRITIES:
                # RFC 8221 §4 / RFC 4303 §3.2.2: CBC without integrity is not allowed here
                raise ValueError(f"{encryption} needs an integrity algorithm, got {integrity!r}")
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
        self.encryption = alg
        self.integrity = integ
        self.esn = esn
        self.selectors: tuple[Selector, ...] | None = (
            None if selectors is None else tuple(selectors)
        )
        self._sel = None if self.selectors is None else tuple(
            (int(x.src.network_address), int(x.src.netmask),
             int(x.dst.network_address), int(x.dst.netmask), x.protocol)
            for x in self.selectors
        )
        self.next_seq = seq  # next sequence number to send (§3.3.3: starts at 1)
        self.max_seq = MAX_SEQ_64 if esn else MAX_SEQ_32
        self.df = df
        self.lifetime_packets = lifetime_packets
        self.lifetime_seconds = lifetime_seconds
        self.created = created
        self.window = ReplayWindow(replay_window)
        self.counters = SaCounters()
        self._iv_source = iv_source
        self._spi_b = struct.pack("!I", spi)
        self._src_b = self.src.packed
        self._dst_b = self.dst.packed
        if alg.aead:
            self._gcm: AESGCM | None = AESGCM(enc_key[: alg.key_len])
            self._salt = enc_key[alg.key_len :]
            self._icv_len = alg.icv_len
        else:
            self._gcm = None
            # One long-lived CBC context per direction instead of one per packet (the
            # per-packet Cipher() set-up costs more than the AES itself). A CBC context
            # chains on the last ciphertext block it handled, `_enc_prev`/`_dec_prev`;
            # XOR-ing that out of the first block gives exactly CBC under the packet's
            # own random IV (see _cbc_encrypt/_cbc_decrypt; KATs against scapy check it).
            zero = bytes(16)
            self._cbc_enc = Cipher(algorithms.AES(enc_key), modes.CBC(zero)).encryptor()
            self._cbc_dec = Cipher(algorithms.AES(enc_key), modes.CBC(zero)).decryptor()
            self._enc_prev = self._dec_prev = 0
            assert integ is not None
            self._mac = hmac.new(auth_key, digestmod=getattr(hashlib, integ.digest))
            self._icv_len = integ.icv_len
        self._iv_len = alg.iv_len
        # smallest valid ESP payload: SPI+seq, IV, one block (CBC) / pad len+NH (GCM), ICV
        self._min_len = 8 + alg.iv_len + (16 if not alg.aead else 4) + self._icv_len

    # ------------------------------------------------------------ status

    @property
    def exhausted(self) -> bool:
        """True once the last sequence number has been used (§3.3.3)."""
        return self.next_seq > self.max_seq

    @property
    def overhead(self) -> int:
        """Worst-case bytes added to an inner packet (outer IPv4 included)."""
        return 20 + 8 + self._iv_len + (self.encryption.block - 1) + 2 + self._icv_len

    def status(self) -> dict[str, object]:
        return {
            "name": self.name,
            "spi": f"0x{self.spi:08x}",
            "src": str(self.src),
            "dst": str(self.dst),
            "encryption": self.encryption.name,
            "integrity": self.integrity.name if self.integrity else NO_INTEGRITY,
            "esn": self.esn,
            "replay_window": self.window.size,
            "next_seq": self.next_seq,
            "replay_top": self.window.top,
            "exhausted": self.exhausted,
            "counters": self.counters.to_dict(),
        }

    def _drop(self, reason: DropReason, detail: str, **kw: object) -> EspDrop:
        attr = _COUNTER_OF.get(reason)
        if attr:
            setattr(self.counters, attr, getattr(self.counters, attr) + 1)
        return EspDrop(reason, detail, spi=self.spi, sa=self.name, **kw)  # type: ignore[arg-type]

    # ------------------------------------------------------------ outbound

    def encapsulate(self, inner: bytes, now: float = 0.0) -> Encapsulated | EspDrop:
        """Protect one inner IPv4 packet: returns the outer IPv4 packet, or a drop."""
        seq = self.next_seq
        if seq > self.max_seq:
            return self._drop(
                DropReason.SEQ_EXHAUSTED,
                f"sequence number space used up at {self.max_seq:#x}; the SA must be replaced",
                time=now,
            )
        if self.lifetime_packets is not None and self.counters.packets_out >= self.lifetime_packets:
            return self._drop(DropReason.LIFETIME_EXPIRED, "packet lifetime reached", time=now)
        if self.lifetime_seconds is not None and now - self.created >= self.lifetime_seconds:
            return self._drop(DropReason.LIFETIME_EXPIRED, "time lifetime reached", time=now)
        if len(inner) < 20 or inner[0] >> 4 != 4 or ((inner[2] << 8) | inner[3]) != len(inner):
            return self._drop(DropReason.MALFORMED, "inner packet is not a whole IPv4 packet", time=now)
        self.next_seq = seq + 1

        # §2.4 padding: 1, 2, 3, ... up to the cipher block / 4-byte alignment
        block = self.encryption.block
        padlen = -(len(inner) + 2) % block
        trailer = _PADS[padlen] + bytes((padlen, NH_IPV4))
        seq_lo = seq & MAX_SEQ_32
        header = self._spi_b + struct.pack("!I", seq_lo)
        if self._gcm is not None:
            # RFC 4106 §3.1: 8-byte IV, here the 64-bit sequence number (unique per key);
            # §5: AAD = SPI ‖ seq (SPI ‖ seq_hi ‖ seq_lo with ESN)
            iv = struct.pack("!Q", seq)
            aad = self._spi_b + struct.pack("!Q", seq) if self.esn else header
            body = iv + self._gcm.encrypt(self._salt + iv, inner + trailer, aad)
            esp = header + body
        else:
            iv = self._iv_source(16)  # RFC 3602 §3: unpredictable IV
            ct = self._cbc_encrypt(iv, inner + trailer)
            mac = self._mac.copy()
            mac.update(header)
            mac.update(iv)
            mac.update(ct)
            if self.esn:  # RFC 4303 §2.2.1 / App. A: seq_hi is in the ICV, not on the wire
                mac.update(struct.pack("!I", seq >> 32))
            esp = header + iv + ct + mac.digest()[: self._icv_len]

        tos = inner[1] & 0xFC  # DSCP copied; ECN not-ECT (RFC 6040 compatibility mode)
        if self.df == "copy":
            flags = ((inner[6] << 8) | inner[7]) & _IP_DF
        else:
            flags = _IP_DF if self.df == "set" else 0
        total = 20 + len(esp)
        hdr = struct.pack(
            "!BBHHHBBH4s4s", 0x45, tos, total, seq_lo & 0xFFFF, flags, OUTER_TTL, IPPROTO_ESP, 0,
            self._src_b, self._dst_b,
        )
        hdr = hdr[:10] + struct.pack("!H", ipv4_checksum(hdr)) + hdr[12:]
        self.counters.packets_out += 1
        self.counters.bytes_out += len(inner)
        return Encapsulated(hdr + esp, self.spi, seq, self.name)

    def _cbc_encrypt(self, iv: bytes, plain: bytes) -> bytes:
        """AES-CBC of block-aligned `plain` under `iv` (RFC 3602) on the shared context."""
        first = int.from_bytes(plain[:16], "big") ^ int.from_bytes(iv, "big") ^ self._enc_prev
        ct = self._cbc_enc.update(first.to_bytes(16, "big") + plain[16:])
        self._enc_prev = int.from_bytes(ct[-16:], "big")
        return ct

    def _cbc_decrypt(self, iv: bytes, ct: bytes) -> bytes:
        """Inverse of _cbc_encrypt: the context XORs its previous block into block 0."""
        plain = self._cbc_dec.update(ct)
        fix = self._dec_prev ^ int.from_bytes(iv, "big")
        self._dec_prev = int.from_bytes(ct[-16:], "big")
        first = int.from_bytes(plain[:16], "big") ^ fix
        return first.to_bytes(16, "big") + plain[16:]

    # ------------------------------------------------------------ inbound

    def decapsulate(self, packet: bytes, now: float = 0.0) -> Decapsulated | EspDrop:
        """Check and open one outer IPv4/ESP packet addressed to this SA."""
        ip = check_ipv4(packet)
        if isinstance(ip, str):
            return self._drop(DropReason.MALFORMED, f"outer header: {ip}", time=now)
        hlen, total, proto = ip
        addrs = packet[12:20]
        if proto != IPPROTO_ESP:
            return self._inbound_drop(DropReason.MALFORMED, f"outer protocol {proto}, not ESP", None, addrs, now)
        if ((packet[6] << 8) | packet[7]) & 0x3FFF:  # MF or fragment offset
            return self._inbound_drop(DropReason.MALFORMED, "outer fragment (not reassembled)", None, addrs, now)
        return self.open(packet[hlen:total], now, addrs)

    def _inbound_drop(
        self, reason: DropReason, detail: str, seq: int | None, addrs: bytes, now: float
    ) -> EspDrop:
        # audit fields are formatted only here, off the fast path
        return self._drop(reason, detail, seq=seq, src=addr_str(addrs[:4]), dst=addr_str(addrs[4:8]), time=now)

    def open(self, esp: bytes, now: float = 0.0, addrs: bytes = b"") -> Decapsulated | EspDrop:
        """Check and decrypt the ESP part (SPI to ICV) of a packet.

        `addrs` = the outer header's src ‖ dst (8 bytes), only used in audit records.
        """
        icv_len = self._icv_len
        iv_len = self._iv_len
        if len(esp) < self._min_len:
            return self._inbound_drop(
                DropReason.MALFORMED, f"ESP packet of {len(esp)} bytes is too short", None, addrs, now
            )
        ct_len = len(esp) - 8 - iv_len - icv_len
        if ct_len % self.encryption.block:
            return self._inbound_drop(
                DropReason.MALFORMED,
                f"ciphertext of {ct_len} bytes is not a multiple of {self.encryption.block}",
                None, addrs, now,
            )
        spi, seq_lo = struct.unpack_from("!II", esp)
        if spi != self.spi:
            return self._inbound_drop(DropReason.UNKNOWN_SPI, f"SPI 0x{spi:08x} is not this SA's", None, addrs, now)
        # App. A2: infer the high half with ESN; the ICV then confirms the guess
        seq = self.window.infer_esn(seq_lo) if self.esn else seq_lo
        if not self.window.check(seq):  # §3.4.3 cheap pre-check, before the ICV
            return self._inbound_drop(DropReason.REPLAY, "duplicate or left of the window", seq, addrs, now)
        iv = esp[8 : 8 + iv_len]
        ct_end = len(esp) - icv_len
        if self._gcm is not None:
            aad = self._spi_b + struct.pack("!Q", seq) if self.esn else esp[:8]
            try:
                plain = self._gcm.decrypt(self._salt + iv, esp[8 + iv_len :], aad)
            except InvalidTag:
                return self._inbound_drop(DropReason.ICV_FAILED, "GCM tag does not verify", seq, addrs, now)
        else:
            mac = self._mac.copy()
            mac.update(esp[:ct_end])
            if self.esn:
                mac.update(struct.pack("!I", seq >> 32))
            # §3.4.4: integrity first, in constant time, then decrypt
            if not hmac.compare_digest(mac.digest()[:icv_len], esp[ct_end:]):
                return self._inbound_drop(DropReason.ICV_FAILED, "ICV does not verify", seq, addrs, now)
            plain = b""
        self.window.update(seq)  # §3.4.3: only after the ICV verified
        if self._gcm is None:
            plain = self._cbc_decrypt(iv, esp[8 + iv_len : ct_end])

        padlen = plain[-2]
        nh = plain[-1]
        end = len(plain) - 2 - padlen
        if end < 0:
            return self._inbound_drop(DropReason.BAD_PADDING, f"pad length {padlen} too long", seq, addrs, now)
        if padlen and plain[end:-2] != _PADS[padlen]:  # §2.4: pad bytes are 1, 2, 3 ...
            return self._inbound_drop(DropReason.BAD_PADDING, "padding bytes are not 1, 2, 3, ...", seq, addrs, now)
        if nh == NH_DUMMY:  # §2.6: dummy packet, discard silently
            return self._inbound_drop(DropReason.DUMMY, "dummy packet", seq, addrs, now)
        if nh != NH_IPV4:
            return self._inbound_drop(DropReason.BAD_NEXT_HEADER, f"next header {nh}, expected 4", seq, addrs, now)
        ip = check_ipv4(plain[:end])
        if isinstance(ip, str):
            return self._inbound_drop(DropReason.MALFORMED, f"inner packet: {ip}", seq, addrs, now)
        inner = plain[: ip[1]]  # §2.7: TFC padding may follow the inner packet
        if self._sel is not None:
            # RFC 4301 §5.2 step 4: the inner header must match the SA's selectors
            isrc = int.from_bytes(inner[12:16], "big")
            idst = int.from_bytes(inner[16:20], "big")
            iproto = ip[2]
            for snet, smask, dnet, dmask, proto in self._sel:
                if isrc & smask == snet and idst & dmask == dnet and (proto is None or proto == iproto):
                    break
            else:
                return self._inbound_drop(
                    DropReason.POLICY_MISMATCH,
                    f"inner {IPv4Address(isrc)} -> {IPv4Address(idst)} proto {iproto} "
                    "is outside the SA's selectors",
                    seq, addrs, now,
                )
        self.counters.packets_in += 1
        self.counters.bytes_in += len(inner)
        return Decapsulated(inner, self.spi, seq, self.name)

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from forwarding.ipsec.ipv4 import (
    SHIFT_TOTAL,
    addr_str,
    check_ipv4,
    fast_header_mask,
    ipv4_checksum,
    parse_ipv4,
)
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

# Results, counters and IPv4 helpers live in their own modules (AH uses them too);
# they are re-exported here, where callers have always imported them from.
__all__ = [
    "COUNTER_OF", "Decapsulated", "DropReason", "ENCRYPTIONS", "Encapsulated", "EncAlg",
    "EspDrop", "INTEGRITIES", "IPPROTO_ESP", "IntegAlg", "NO_INTEGRITY", "SaCounters",
    "SecurityAssociation", "addr_str", "check_ipv4", "ipv4_checksum", "parse_ipv4",
]


# ---------------------------------------------------------------- per-packet constants

_from_bytes = int.from_bytes
_tnew = tuple.__new__
_Q = struct.Struct("!Q").pack
_I = struct.Struct("!I").pack
# outer IPv4 header ‖ SPI ‖ seq (‖ the 8-byte GCM IV = the 64-bit sequence number)
_HDR_GCM = struct.Struct("!BBHHHBBH4s4sIIQ").pack
_HDR_CBC = struct.Struct("!BBHHHBBH4s4sII").pack
# §2.4 padding 1, 2, 3, ..., then Pad Length and Next Header 4, by pad length
_TRAILERS = tuple(_PADS[n] + bytes((n, NH_IPV4)) for n in range(256))
_OUTER_MASK, _OUTER_ESP = fast_header_mask(IPPROTO_ESP)
_INNER_MASK = 0xFF << 152  # version 4 and IHL 5 (an inner header without options)
_INNER_45 = 0x45 << 152


def _selector_masks(sel: Selector) -> tuple[int, int]:
    """(mask, want) on a 20-byte inner header read as an int: src at bits 32..63, dst at
    0..31, protocol at 80..87 (only when the selector names one)."""
    mask = (int(sel.src.netmask) << 32) | int(sel.dst.netmask)
    want = (int(sel.src.network_address) << 32) | int(sel.dst.network_address)
    if sel.protocol is not None:
        mask |= 0xFF << 80
        want |= sel.protocol << 80
    return mask, want


# ---------------------------------------------------------------- the SA


class SecurityAssociation:
    """One direction of an ESP tunnel-mode SA (RFC 4301 §4.4.2 SAD entry).

    The same object type serves outbound (`encapsulate`) and inbound
    (`decapsulate`); a router holds distinct SAs for each direction.

    Speed (benchmarks/bench_esp.py): the common packet takes a fast path that
    reads each IPv4 header as one integer (checks, checksum and selectors are
    mask-and-compare on it), builds the outer header, ESP header and IV with one
    precompiled `struct` call, and allocates no intermediate copy it can avoid.
    Anything unusual (IP options, TFC padding, lifetimes, an exhausted or bad
    packet) falls back to the step-by-step checks, which alone decide the drop
    reason and detail, so the two paths give the same result byte for byte
    (tests/test_ipsec_esp_vectors.py pins it). Not thread-safe (no SA ever was:
    sequence numbers and windows are per-SA state).
    """

    protocol = "esp"

    # Slots, not a __dict__: with more than 30 instance attributes CPython 3.11 stops
    # specialising attribute loads on a dict-based instance, and every `self.x` on the
    # fast path became a dictionary look-up.
    __slots__ = (
        "_block", "_cbc_dec", "_cbc_enc", "_ct_sub", "_dec_prev", "_df_mask", "_df_set", "_dst_b",
        "_enc_prev", "_fast_seq", "_fast_sub", "_fixed", "_gcm", "_icv_len", "_iv_len", "_iv_source",
        "_lifetime_packets", "_lifetime_seconds", "_mac", "_min_len", "_min_total", "_salt", "_sel", "_selx",
        "_spi_b", "_src_b", "_words", "counters", "created", "df", "dst", "encryption", "esn",
        "integrity", "max_seq", "name", "next_seq", "selectors", "spi", "src", "window",
    )

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
        self._selx = None if self.selectors is None else tuple(_selector_masks(x) for x in self.selectors)
        self.next_seq = seq  # next sequence number to send (§3.3.3: starts at 1)
        self.max_seq = MAX_SEQ_64 if esn else MAX_SEQ_32
        self.df = df
        # outer flags = (inner flags & mask) | set: DF copied, set or cleared (RFC 4301 §8.1)
        self._df_mask = _IP_DF if df == "copy" else 0
        self._df_set = _IP_DF if df == "set" else 0
        self._lifetime_packets = lifetime_packets
        self._lifetime_seconds = lifetime_seconds
        self._fast_seq = 0
        self._update_fast_seq()
        self.created = created
        self.window = ReplayWindow(replay_window)
        self.counters = SaCounters()
        self._iv_source = iv_source
        self._spi_b = struct.pack("!I", spi)
        self._src_b = self.src.packed
        self._dst_b = self.dst.packed
        # the outer header's constant 16-bit words: version/IHL, TTL/protocol, addresses
        self._words = (0x4500 + (OUTER_TTL << 8 | IPPROTO_ESP) + sum(struct.unpack("!4H", self._src_b
                       + self._dst_b)))
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
        self._block = alg.block
        # ESP bytes that are not ciphertext: SPI+seq, IV, ICV
        self._ct_sub = 8 + alg.iv_len + self._icv_len
        # outer packet bytes besides the inner packet and its padding: IPv4, SPI+seq, IV,
        # pad length + next header, ICV
        self._fixed = 20 + self._ct_sub + 2
        # smallest valid ESP payload: SPI+seq, IV, one block (CBC) / pad len+NH (GCM), ICV
        self._min_len = 8 + alg.iv_len + (16 if not alg.aead else 4) + self._icv_len
        self._min_total = 20 + self._min_len  # the same, with a 20-byte outer header
        self._fast_sub = 20 + self._ct_sub  # outer packet bytes that are not ciphertext

    # ------------------------------------------------------------ status

    @property
    def lifetime_packets(self) -> int | None:
        return self._lifetime_packets

    @lifetime_packets.setter
    def lifetime_packets(self, v: int | None) -> None:
        self._lifetime_packets = v
        self._update_fast_seq()

    @property
    def lifetime_seconds(self) -> float | None:
        return self._lifetime_seconds

    @lifetime_seconds.setter
    def lifetime_seconds(self, v: float | None) -> None:
        self._lifetime_seconds = v
        self._update_fast_seq()

    def _update_fast_seq(self) -> None:
        # encapsulate's fast path runs while next_seq <= _fast_seq; lifetimes need the checks
        limited = self._lifetime_packets is not None or self._lifetime_seconds is not None
        self._fast_seq = -1 if limited else self.max_seq

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
            "protocol": "esp",
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
        attr = COUNTER_OF.get(reason)
        if attr:
            setattr(self.counters, attr, getattr(self.counters, attr) + 1)
        return EspDrop(reason, detail, spi=self.spi, sa=self.name, **kw)  # type: ignore[arg-type]

    # ------------------------------------------------------------ outbound

    def encapsulate(self, inner: bytes, now: float = 0.0) -> Encapsulated | EspDrop:
        """Protect one inner IPv4 packet: returns the outer IPv4 packet, or a drop."""
        seq = self.next_seq
        if seq > self._fast_seq:  # exhausted, or lifetimes to check
            return self._encapsulate_checked(inner, now)
        n = len(inner)
        h = _from_bytes(inner[:8], "big")  # version/IHL, TOS, total length, ID, flags
        if n < 20 or h >> 60 != 4 or (h >> 32) & 0xFFFF != n:
            return self._drop(DropReason.MALFORMED, "inner packet is not a whole IPv4 packet", time=now)
        self.next_seq = seq + 1
        if self._gcm is not None:
            return self._seal_gcm(inner, n, h, seq)
        return self._seal_cbc(inner, n, h, seq)

    def _encapsulate_checked(self, inner: bytes, now: float) -> Encapsulated | EspDrop:
        """encapsulate() with every check, in order (the SA is exhausted or has lifetimes)."""
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
        n = len(inner)
        if n < 20 or inner[0] >> 4 != 4 or ((inner[2] << 8) | inner[3]) != n:
            return self._drop(DropReason.MALFORMED, "inner packet is not a whole IPv4 packet", time=now)
        self.next_seq = seq + 1
        if self._gcm is not None:
            return self._seal_gcm(inner, n, _from_bytes(inner[:8], "big"), seq)
        return self._seal_cbc(inner, n, _from_bytes(inner[:8], "big"), seq)

    def _seal_gcm(self, inner: bytes, n: int, h: int, seq: int) -> Encapsulated:
        """RFC 4106: the outer header, SPI, seq and IV in one pack; AES-GCM of inner ‖ trailer."""
        padlen = -(n + 2) & 3  # §2.4: 4-byte alignment
        tos = (h >> 48) & 0xFC  # DSCP copied; ECN not-ECT (RFC 6040 compatibility mode)
        flags = (h & self._df_mask) | self._df_set
        total = n + padlen + self._fixed
        ident = seq & 0xFFFF
        hdr = _HDR_GCM(0x45, tos, total, ident, flags, OUTER_TTL, IPPROTO_ESP,
                       -(self._words + tos + total + ident + flags) % 0xFFFF,
                       self._src_b, self._dst_b, self.spi, seq & MAX_SEQ_32, seq)
        # §3.1: 8-byte IV = the 64-bit sequence number (unique per key); §5: AAD = SPI ‖ seq
        # (SPI ‖ seq_hi ‖ seq_lo with ESN)
        iv = hdr[28:36]
        aad = self._spi_b + iv if self.esn else hdr[20:28]
        ct = self._gcm.encrypt(self._salt + iv, inner + _TRAILERS[padlen], aad)  # type: ignore[union-attr]
        c = self.counters
        c.packets_out += 1
        c.bytes_out += n
        return _tnew(Encapsulated, (hdr + ct, self.spi, seq, self.name))

    def _seal_cbc(self, inner: bytes, n: int, h: int, seq: int) -> Encapsulated:
        """RFC 3602 + RFC 4868: random IV, AES-CBC of inner ‖ trailer, HMAC over SPI..ciphertext."""
        padlen = -(n + 2) & 15  # §2.4: to the cipher block
        iv = self._iv_source(16)  # RFC 3602 §3: unpredictable IV
        tos = (h >> 48) & 0xFC
        flags = (h & self._df_mask) | self._df_set
        total = n + padlen + self._fixed
        ident = seq & 0xFFFF
        hdr = _HDR_CBC(0x45, tos, total, ident, flags, OUTER_TTL, IPPROTO_ESP,
                       -(self._words + tos + total + ident + flags) % 0xFFFF,
                       self._src_b, self._dst_b, self.spi, seq & MAX_SEQ_32)
        ct = self._cbc_encrypt(iv, inner + _TRAILERS[padlen])
        mac = self._mac.copy()
        mac.update(hdr[20:])
        mac.update(iv)
        mac.update(ct)
        if self.esn:  # RFC 4303 §2.2.1 / App. A: seq_hi is in the ICV, not on the wire
            mac.update(_I(seq >> 32))
        c = self.counters
        c.packets_out += 1
        c.bytes_out += n
        return _tnew(Encapsulated, (b"".join((hdr, iv, ct, mac.digest()[: self._icv_len])),
                                    self.spi, seq, self.name))

    def _cbc_encrypt(self, iv: bytes, plain: bytes) -> bytes:
        """AES-CBC of block-aligned `plain` under `iv` (RFC 3602) on the shared context."""
        first = _from_bytes(plain[:16], "big") ^ _from_bytes(iv, "big") ^ self._enc_prev
        ct = self._cbc_enc.update(first.to_bytes(16, "big") + plain[16:])
        self._enc_prev = _from_bytes(ct[-16:], "big")
        return ct

    def _cbc_decrypt(self, iv: bytes, ct: bytes) -> bytes:
        """Inverse of _cbc_encrypt: the context XORs its previous block into block 0."""
        plain = self._cbc_dec.update(ct)
        fix = self._dec_prev ^ _from_bytes(iv, "big")
        self._dec_prev = _from_bytes(ct[-16:], "big")
        first = _from_bytes(plain[:16], "big") ^ fix
        return first.to_bytes(16, "big") + plain[16:]

    # ------------------------------------------------------------ inbound

    def decapsulate(self, packet: bytes, now: float = 0.0) -> Decapsulated | EspDrop:
        """Check and open one outer IPv4/ESP packet addressed to this SA."""
        x = _from_bytes(packet[:20], "big")
        # fast path: IPv4 without options, ESP, not a fragment, exact length, checksum good
        if x & _OUTER_MASK == _OUTER_ESP and (x >> SHIFT_TOTAL) & 0xFFFF == len(packet) and not x % 0xFFFF:
            return self.open20(packet, now)
        ip = check_ipv4(packet)
        if isinstance(ip, str):
            return self._drop(DropReason.MALFORMED, f"outer header: {ip}", time=now)
        hlen, total, proto = ip
        addrs = packet[12:20]
        if proto != IPPROTO_ESP:
            return self._inbound_drop(DropReason.MALFORMED, f"outer protocol {proto}, not ESP", None, addrs, now)
        if ((packet[6] << 8) | packet[7]) & 0x3FFF:  # MF or fragment offset
            return self._inbound_drop(DropReason.MALFORMED, "outer fragment (not reassembled)", None, addrs, now)
        return self._open(packet, hlen, total, now, addrs)

    def _inbound_drop(
        self, reason: DropReason, detail: str, seq: int | None, addrs: bytes, now: float
    ) -> EspDrop:
        # audit fields are formatted only here, off the fast path
        return self._drop(reason, detail, seq=seq, src=addr_str(addrs[:4]), dst=addr_str(addrs[4:8]), time=now)

    def _in_drop(self, reason: DropReason, detail: str, seq: int | None, buf: bytes,
                 addrs: bytes | None, now: float) -> EspDrop:
        return self._inbound_drop(reason, detail, seq, buf[12:20] if addrs is None else addrs, now)

    def open(self, esp: bytes, now: float = 0.0, addrs: bytes = b"") -> Decapsulated | EspDrop:
        """Check and decrypt the ESP part (SPI to ICV) of a packet.

        `addrs` = the outer header's src ‖ dst (8 bytes), only used in audit records.
        """
        return self._open(esp, 0, len(esp), now, addrs)

    def _open(self, buf: bytes, off: int, end: int, now: float, addrs: bytes | None) -> Decapsulated | EspDrop:
        """The ESP part is buf[off:end]; `addrs` None = the outer header starts `buf`
        (its addresses are read only for an audit record)."""
        esp_len = end - off
        if esp_len < self._min_len:
            return self._in_drop(DropReason.MALFORMED, f"ESP packet of {esp_len} bytes is too short",
                                 None, buf, addrs, now)
        ct_len = esp_len - self._ct_sub
        if ct_len % self._block:
            return self._in_drop(DropReason.MALFORMED,
                                 f"ciphertext of {ct_len} bytes is not a multiple of {self._block}",
                                 None, buf, addrs, now)
        if buf[off : off + 4] != self._spi_b:
            spi = _from_bytes(buf[off : off + 4], "big")
            return self._in_drop(DropReason.UNKNOWN_SPI, f"SPI 0x{spi:08x} is not this SA's",
                                 None, buf, addrs, now)
        seq = _from_bytes(buf[off + 4 : off + 8], "big")
        w = self.window
        if self.esn:  # App. A2: infer the high half; the ICV then confirms the guess
            seq = w.infer_esn(seq)
        if seq <= w.top and not w.check(seq):  # §3.4.3 cheap pre-check, before the ICV
            return self._in_drop(DropReason.REPLAY, "duplicate or left of the window", seq, buf, addrs, now)
        if self._gcm is not None:
            aad = self._spi_b + _Q(seq) if self.esn else buf[off : off + 8]
            try:
                plain = self._gcm.decrypt(self._salt + buf[off + 8 : off + 16], buf[off + 16 : end], aad)
            except InvalidTag:
                return self._in_drop(DropReason.ICV_FAILED, "GCM tag does not verify", seq, buf, addrs, now)
        else:
            ct_end = end - self._icv_len
            mac = self._mac.copy()
            mac.update(buf[off:ct_end])
            if self.esn:
                mac.update(_I(seq >> 32))
            # §3.4.4: integrity first, in constant time, then decrypt
            if not hmac.compare_digest(mac.digest()[: self._icv_len], buf[ct_end:end]):
                return self._in_drop(DropReason.ICV_FAILED, "ICV does not verify", seq, buf, addrs, now)
            plain = b""
        # §3.4.3: the window moves only now that the ICV verified (ReplayWindow.update,
        # inlined for the usual packet right of the window)
        top = w.top
        if seq > top and w.size:
            shift = seq - top
            w.bitmap = ((w.bitmap << shift) | 1) & w.mask if shift < w.size else 1
            w.top = seq
        else:
            w.update(seq)
        if self._gcm is None:
            plain = self._cbc_decrypt(buf[off + 8 : off + 24], buf[off + 24 : end - self._icv_len])
        return self._deliver(plain, seq, now, buf, addrs)

    def open20(self, packet: bytes, now: float = 0.0) -> Decapsulated | EspDrop:
        """open() for ESP behind a checked 20-byte outer header and running to the end of
        `packet` (the usual packet, from `decapsulate` and `Sad`): the same steps as
        `_open` with constant offsets. Anything else (ESN, a short or misaligned packet,
        another SPI, a sequence number at or left of the window's right edge) goes to
        `_open`, whose step-by-step checks decide, so the result is the same."""
        n = len(packet)
        if self.esn or n < self._min_total or (n - self._fast_sub) % self._block or packet[20:24] != self._spi_b:
            return self._open(packet, 20, n, now, None)
        seq = _from_bytes(packet[24:28], "big")
        w = self.window
        top = w.top
        if seq <= top:  # §3.4.3: out of order or a replay, the general path checks the bitmap
            return self._open(packet, 20, n, now, None)
        gcm = self._gcm
        if gcm is not None:
            try:
                plain = gcm.decrypt(self._salt + packet[28:36], packet[36:], packet[20:28])
            except InvalidTag:
                return self._in_drop(DropReason.ICV_FAILED, "GCM tag does not verify", seq, packet, None, now)
        else:
            icv = self._icv_len
            mac = self._mac.copy()
            mac.update(packet[20 : n - icv])
            if not hmac.compare_digest(mac.digest()[:icv], packet[n - icv :]):  # §3.4.4
                return self._in_drop(DropReason.ICV_FAILED, "ICV does not verify", seq, packet, None, now)
            plain = b""
        if w.size:  # §3.4.3: seq is right of the window; it moves now that the ICV verified
            shift = seq - top
            w.bitmap = ((w.bitmap << shift) | 1) & w.mask if shift < w.size else 1
        w.top = seq
        if gcm is None:
            plain = self._cbc_decrypt(packet[28:44], packet[44 : n - self._icv_len])
        return self._deliver(plain, seq, now, packet, None)

    def _deliver(self, plain: bytes, seq: int, now: float, buf: bytes,
                 addrs: bytes | None) -> Decapsulated | EspDrop:
        """After decryption. Fast path: padding 1, 2, 3, ..., next header 4, an inner IPv4
        header without options whose total length is exactly what is left, a good checksum,
        selectors (mask-compare on the header read as one int); else `_finish`."""
        padlen = plain[-2]
        end = len(plain) - 2 - padlen
        if end < 20 or plain[end:] != _TRAILERS[padlen]:
            return self._finish(plain, seq, now, buf, addrs)
        x = _from_bytes(plain[:20], "big")
        if x & _INNER_MASK != _INNER_45 or (x >> SHIFT_TOTAL) & 0xFFFF != end or x % 0xFFFF:
            return self._finish(plain, seq, now, buf, addrs)
        if self._selx is not None:
            for m, v in self._selx:
                if x & m == v:
                    break
            else:
                return self._finish(plain, seq, now, buf, addrs)
        c = self.counters
        c.packets_in += 1
        c.bytes_in += end
        return _tnew(Decapsulated, (plain[:end], self.spi, seq, self.name))

    def _finish(self, plain: bytes, seq: int, now: float, buf: bytes,
                addrs: bytes | None) -> Decapsulated | EspDrop:
        """The checks after decryption, one by one (they decide the drop reason and detail)."""
        if addrs is None:
            addrs = buf[12:20]
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
            isrc = _from_bytes(inner[12:16], "big")
            idst = _from_bytes(inner[16:20], "big")
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
        return _tnew(Decapsulated, (inner, self.spi, seq, self.name))

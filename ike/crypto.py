"""IKEv2 key material (RFC 7296 §2.13-2.15, §2.17) and the AES-GCM SK payload (RFC 5282).

PRF = HMAC-SHA2-256 (RFC 4868), DH = Curve25519 (group 31, RFC 8031),
IKE and ESP encryption = AES-GCM with a 16-byte ICV (key ‖ 4-byte salt).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ike.codec import (
    HEADER_LEN,
    Message,
    Payload,
    PayloadType,
    encode_header,
    encode_payloads,
)

PRF_LEN = 32
GCM_SALT = 4
GCM_IV = 8
GCM_ICV = 16
KEY_PAD = b"Key Pad for IKEv2"  # §2.15


def prf(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def prf_plus(key: bytes, seed: bytes, length: int) -> bytes:
    """§2.13: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n)."""
    if length > 255 * PRF_LEN:
        raise ValueError("prf+ cannot produce that much")
    out = b""
    t = b""
    n = 1
    while len(out) < length:
        t = prf(key, t + seed + bytes([n]))
        out += t
        n += 1
    return out[:length]


def x25519_public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def x25519_shared(private: bytes, peer_public: bytes) -> bytes:
    """g^ir for group 31 (RFC 8031 §2: the raw 32-byte X25519 output)."""
    if len(peer_public) != 32:
        raise ValueError("Curve25519 public value must be 32 bytes")
    shared = X25519PrivateKey.from_private_bytes(private).exchange(
        X25519PublicKey.from_public_bytes(peer_public)
    )
    return shared  # cryptography refuses an all-zero result (RFC 8031 §2.2 check)


@dataclass(frozen=True)
class IkeKeys:
    skeyseed: bytes
    sk_d: bytes
    sk_ei: bytes  # key ‖ salt
    sk_er: bytes
    sk_pi: bytes
    sk_pr: bytes

    def __repr__(self) -> str:
        return "IkeKeys(<secret>)"


def ike_keys(ni: bytes, nr: bytes, shared: bytes, spi_i: bytes, spi_r: bytes, enc_key_len: int,
             old_sk_d: bytes | None = None) -> IkeKeys:
    """§2.14 (initial) or §2.18 (rekeyed IKE SA, with the old SK_d)."""
    if old_sk_d is None:
        skeyseed = prf(ni + nr, shared)
    else:
        skeyseed = prf(old_sk_d, shared + ni + nr)
    e = enc_key_len + GCM_SALT
    # no SK_ai/SK_ar: AES-GCM has no separate integrity transform (RFC 5282 §7)
    km = prf_plus(skeyseed, ni + nr + spi_i + spi_r, PRF_LEN + 2 * e + 2 * PRF_LEN)
    d, ei, er = km[:PRF_LEN], km[PRF_LEN : PRF_LEN + e], km[PRF_LEN + e : PRF_LEN + 2 * e]
    pi = km[PRF_LEN + 2 * e : 2 * PRF_LEN + 2 * e]
    pr = km[2 * PRF_LEN + 2 * e :]
    return IkeKeys(skeyseed, d, ei, er, pi, pr)


def child_keys(sk_d: bytes, ni: bytes, nr: bytes, key_len: int, shared: bytes = b"") -> tuple[bytes, bytes]:
    """§2.17 KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr): (initiator->responder, responder->initiator)
    ESP keys, each AES key ‖ 4-byte salt (RFC 4106 §8.1)."""
    n = key_len + GCM_SALT
    km = prf_plus(sk_d, shared + ni + nr, 2 * n)
    return km[:n], km[n:]


def psk_auth(psk: bytes, signed_message: bytes, peer_nonce: bytes, sk_p: bytes, id_body: bytes) -> bytes:
    """§2.15: prf(prf(PSK, "Key Pad for IKEv2"), message | nonce | prf(SK_p, ID body))."""
    return prf(prf(psk, KEY_PAD), signed_message + peer_nonce + prf(sk_p, id_body))


def seal(m: Message, payloads: list[Payload], key: bytes, iv: bytes) -> bytes:
    """Encode `m` with `payloads` inside an SK payload (RFC 5282 §5, RFC 7296 §3.14).

    AAD = IKE header ‖ SK generic payload header; nonce = salt ‖ 8-byte IV;
    plaintext = inner payloads ‖ Pad Length 0 (GCM needs no padding).
    """
    first, inner = encode_payloads(payloads)
    body_len = 4 + GCM_IV + len(inner) + 1 + GCM_ICV
    hdr = encode_header(m, PayloadType.SK, HEADER_LEN + body_len)
    gen = struct.pack("!BBH", first, 0, body_len)
    ct = AESGCM(key[:-GCM_SALT]).encrypt(key[-GCM_SALT:] + iv, inner + b"\x00", hdr + gen)
    return hdr + gen + iv + ct


def open_sk(message: bytes, sk_offset: int, key: bytes) -> bytes | None:
    """Decrypt the SK payload starting at `sk_offset` (its generic header); None if the ICV fails
    or the padding is impossible. Returns the inner payloads (padding removed)."""
    length = struct.unpack_from("!H", message, sk_offset + 2)[0]
    if length < 4 + GCM_IV + GCM_ICV + 1 or sk_offset + length != len(message):
        return None
    aad = message[: sk_offset + 4]
    iv = message[sk_offset + 4 : sk_offset + 4 + GCM_IV]
    try:
        plain = AESGCM(key[:-GCM_SALT]).decrypt(key[-GCM_SALT:] + iv, message[sk_offset + 4 + GCM_IV :], aad)
    except (InvalidTag, ValueError):
        return None
    pad = plain[-1]
    if pad + 1 > len(plain):
        return None
    return plain[: len(plain) - 1 - pad]

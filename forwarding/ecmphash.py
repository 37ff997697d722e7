"""The ECMP hash's last step, shared by the IPv4, IPv6 and label-stack flow keys."""

from __future__ import annotations


def mix32(h: int, seed: int) -> int:
    """`seed` mixed into the 32-bit hash `h` non-linearly (MurmurHash3's fmix32 of
    h XOR seed), so that two routers' choices for the same flows are independent: CRC-32
    is affine in its initial value, so a seeded CRC flips the same bits of every hash and
    every router would make the same (or the opposite) choice (forwarding.plane)."""
    h ^= seed
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)

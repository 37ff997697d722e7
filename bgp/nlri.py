"""Address families, route distinguishers, labels and NLRI on the wire.

Families (RFC 4760 §5, IANA AFI/SAFI):

    (1, 1)    IPv4 unicast          prefix                          RFC 4271 §4.3
    (1, 128)  VPN-IPv4 (labelled)   label(s) + RD + IPv4 prefix     RFC 4364 §4.3.4, RFC 8277 §2
    (2, 4)    labelled IPv6         label(s) + IPv6 prefix          RFC 8277 §2 (6PE, RFC 4798)
    (2, 128)  VPN-IPv6 (labelled)   label(s) + RD + IPv6 prefix     RFC 4659 §3.2 (6VPE)

One NLRI entry is ``Length (1 octet, in bits) | Prefix`` where, for the labelled
families, the prefix starts with the label field (3 octets: label 20 bits, 3 bits
TC/reserved, S bit; RFC 8277 §2) and, for VPN-IPv4 and VPN-IPv6, then the 8-octet
RD (RFC 4364 §4.2, RFC 4659 §3.2). We never send the Multiple Labels Capability (RFC 8277 §2.1), so
every labelled NLRI carries exactly one label field, on receipt too (§2.2).
A withdrawal's label field is 0x800000 (RFC 8277 §2.4, as RFC 3107 §3 had it);
receivers ignore it.

Decoders raise `NlriError` (a `DecodeError`): an NLRI that cannot be parsed cannot
be treated as withdrawn, so RFC 7606 §5.3 makes it a session reset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from lsr.core.codec import DecodeError

AFI_IPV4, AFI_IPV6 = 1, 2
SAFI_UNICAST, SAFI_LABELLED, SAFI_VPN = 1, 4, 128

Family = tuple[int, int]
IPV4_UNICAST: Family = (AFI_IPV4, SAFI_UNICAST)
IPV4_VPN: Family = (AFI_IPV4, SAFI_VPN)
IPV6_LABELLED: Family = (AFI_IPV6, SAFI_LABELLED)
IPV6_VPN: Family = (AFI_IPV6, SAFI_VPN)
FAMILIES: dict[Family, str] = {IPV4_UNICAST: "ipv4-unicast", IPV4_VPN: "ipv4-vpn",
                               IPV6_LABELLED: "ipv6-labelled", IPV6_VPN: "ipv6-vpn"}
VPN_FAMILIES = (IPV4_VPN, IPV6_VPN)  # RD + labelled prefix (RFC 4364, RFC 4659)
FAMILY_BY_NAME = {v: k for k, v in FAMILIES.items()}

WITHDRAW_LABEL = 0x800000  # the whole 3-octet field (RFC 8277 §2.4)
MAX_LABEL = (1 << 20) - 1


class NlriError(DecodeError):
    """An NLRI field we cannot parse (RFC 4271 §6.3 Invalid Network Field, subcode 10)."""


def family_name(f: Family) -> str:
    return FAMILIES.get(f, f"afi{f[0]}/safi{f[1]}")


# ---------------------------------------------------------------- route distinguisher


@dataclass(frozen=True, order=True)
class Rd:
    """RFC 4364 §4.2: type 0 = 2-octet AS : 4-octet number, type 1 = IPv4 address :
    2-octet number, type 2 = 4-octet AS : 2-octet number. Written "65000:1",
    "10.0.0.1:1", "4200000000:1" (the type follows from the form and sizes)."""

    type: int
    admin: int  # AS number or IPv4 address as an int
    number: int

    def __post_init__(self) -> None:
        limits = {0: (0xFFFF, 0xFFFFFFFF), 1: (0xFFFFFFFF, 0xFFFF), 2: (0xFFFFFFFF, 0xFFFF)}
        if self.type not in limits:
            raise ValueError(f"RD type {self.type} is not 0, 1 or 2")
        a, n = limits[self.type]
        if not (0 <= self.admin <= a and 0 <= self.number <= n):
            raise ValueError(f"RD {self.admin}:{self.number} does not fit type {self.type}")

    @classmethod
    def parse(cls, text: str) -> Rd:
        """ "65000:1" -> type 0, "10.0.0.1:7" -> type 1, "4200000000:1" -> type 2."""
        left, sep, right = str(text).rpartition(":")
        if not sep or not right.isdigit():
            raise ValueError(f"route distinguisher {text!r} is not ADMIN:NUMBER")
        num = int(right)
        if "." in left:
            return cls(1, int(IPv4Address(left)), num)
        if not left.isdigit():
            raise ValueError(f"route distinguisher {text!r}: {left!r} is not an AS or address")
        asn = int(left)
        if asn > 0xFFFF:
            return cls(2, asn, num)
        return cls(0, asn, num)

    def pack(self) -> bytes:
        if self.type == 0:
            return struct.pack("!HHI", 0, self.admin, self.number)
        return struct.pack("!HIH", self.type, self.admin, self.number)

    @classmethod
    def unpack(cls, b: bytes) -> Rd:
        (t,) = struct.unpack_from("!H", b)
        if t == 0:
            _, a, n = struct.unpack("!HHI", b)
        else:
            _, a, n = struct.unpack("!HIH", b)
        if t > 2:
            raise NlriError(f"RD type {t} unknown")
        return cls(t, a, n)

    def __str__(self) -> str:
        admin = str(IPv4Address(self.admin)) if self.type == 1 else str(self.admin)
        return f"{admin}:{self.number}"


RD_ZERO = Rd(0, 0, 0)


# ---------------------------------------------------------------- labels


def pack_label(label: int, bottom: bool = True) -> bytes:
    """RFC 8277 §2: label in the high 20 bits, TC 0, S = bottom of stack."""
    if not 0 <= label <= MAX_LABEL:
        raise ValueError(f"label {label} out of range")
    return ((label << 4) | int(bottom)).to_bytes(3, "big")


def unpack_label(b: bytes) -> int:
    return int.from_bytes(b[:3], "big") >> 4


# ---------------------------------------------------------------- NLRI


@dataclass(frozen=True, order=True)
class Nlri:
    """One destination of a family: the key of every RIB. `rd` only for VPN-IPv4/IPv6.
    Labels are not part of the key: they travel with the path (`bgp.rib.Path`)."""

    prefix: IPv4Network | IPv6Network
    rd: Rd | None = None

    def __str__(self) -> str:
        return f"{self.rd}:{self.prefix}" if self.rd is not None else str(self.prefix)


def _prefix_bytes(net: IPv4Network | IPv6Network) -> bytes:
    return net.network_address.packed[: (net.prefixlen + 7) // 8]


def _read_prefix(b: bytes, plen: int, width: int, what: str) -> IPv4Network | IPv6Network:
    if plen > width:
        raise NlriError(f"{what}: prefix length {plen} > {width}")
    n = (plen + 7) // 8
    raw = b[:n] + bytes(width // 8 - n)
    # RFC 4271 §4.3: trailing bits past the length are irrelevant; we clear them.
    if width == 32:
        return IPv4Network((IPv4Address(raw), plen), strict=False)
    return IPv6Network((IPv6Address(raw), plen), strict=False)


def encode_nlri(family: Family, nlri: Nlri, label: int | None = None) -> bytes:
    """One NLRI entry. Labelled families need `label` (None = the withdraw value)."""
    net = nlri.prefix
    body = _prefix_bytes(net)
    bits = net.prefixlen
    if family == IPV4_UNICAST:
        return bytes([bits]) + body
    lab = WITHDRAW_LABEL.to_bytes(3, "big") if label is None else pack_label(label)
    if family == IPV4_VPN:
        if nlri.rd is None:
            raise ValueError("a VPN-IPv4 NLRI needs an RD")
        return bytes([24 + 64 + bits]) + lab + nlri.rd.pack() + body
    if family == IPV6_VPN:
        if nlri.rd is None:
            raise ValueError("a VPN-IPv6 NLRI needs an RD")
        return bytes([24 + 64 + bits]) + lab + nlri.rd.pack() + body
    if family == IPV6_LABELLED:
        return bytes([24 + bits]) + lab + body
    raise ValueError(f"cannot encode NLRI of {family_name(family)}")


def decode_nlri(family: Family, data: bytes) -> list[tuple[Nlri, int | None]]:
    """Every entry of an NLRI field: (nlri, label or None for unlabelled families)."""
    out: list[tuple[Nlri, int | None]] = []
    off, end = 0, len(data)
    name = family_name(family)
    while off < end:
        bits = data[off]
        off += 1
        n = (bits + 7) // 8
        if off + n > end:
            raise NlriError(f"{name}: prefix of {bits} bits overruns the NLRI field")
        chunk = data[off:off + n]
        off += n
        if family == IPV4_UNICAST:
            out.append((Nlri(_read_prefix(chunk, bits, 32, name)), None))
        elif family in VPN_FAMILIES:
            width = 32 if family == IPV4_VPN else 128
            if bits < 88:
                raise NlriError(f"{name}: length {bits} < label + RD (88 bits)")
            if bits - 88 > width:
                raise NlriError(f"{name}: prefix length {bits - 88} > {width}")
            rd = Rd.unpack(chunk[3:11])
            out.append((Nlri(_read_prefix(chunk[11:], bits - 88, width, name), rd),
                        unpack_label(chunk)))
        elif family == IPV6_LABELLED:
            if bits < 24:
                raise NlriError(f"{name}: length {bits} < one label (24 bits)")
            out.append((Nlri(_read_prefix(chunk[3:], bits - 24, 128, name)),
                        unpack_label(chunk)))
        else:
            raise NlriError(f"cannot decode NLRI of {name}")
    return out


# ---------------------------------------------------------------- next hops (RFC 4760 §3)


def encode_next_hop(family: Family, nh: IPv4Address | IPv6Address) -> bytes:
    """VPN-IPv4: RD 0 + IPv4 (12 octets, RFC 4364 §4.3.2); labelled IPv6 over an IPv4
    core (6PE): the IPv4-mapped IPv6 address (RFC 4798 §2); VPN-IPv6 over an IPv4 core
    (6VPE): RD 0 + the IPv4-mapped IPv6 address (24 octets, RFC 4659 §3.2.1.1); IPv4
    unicast: 4 octets."""
    if family == IPV4_VPN:
        return bytes(8) + IPv4Address(nh).packed
    if family == IPV6_VPN:
        a = nh if isinstance(nh, IPv6Address) else IPv6Address(b"\0" * 10 + b"\xff\xff" + nh.packed)
        return bytes(8) + a.packed
    if family == IPV6_LABELLED:
        if isinstance(nh, IPv4Address):
            return IPv6Address(b"\0" * 10 + b"\xff\xff" + nh.packed).packed
        return nh.packed
    return IPv4Address(nh).packed


def decode_next_hop(family: Family, b: bytes) -> IPv4Address | IPv6Address | None:
    """The next hop, or None when its length is not one this family has
    (RFC 7606 §7.11: session reset, the NLRI cannot be located reliably)."""
    if family == IPV4_VPN:
        # RFC 4364 §4.3.2: an RD (of zero) then the IPv4 address.
        return IPv4Address(b[8:]) if len(b) == 12 else None
    if family == IPV6_LABELLED:
        if len(b) not in (16, 32):
            return None
        a = IPv6Address(b[:16])
        return a.ipv4_mapped or a
    if family == IPV6_VPN:
        # RFC 4659 §3.2.1.1: RD (of zero) + IPv6 (24), or + RD + link-local (48)
        if len(b) not in (24, 48):
            return None
        a = IPv6Address(b[8:24])
        return a.ipv4_mapped or a
    if family == IPV4_UNICAST:
        return IPv4Address(b) if len(b) == 4 else None
    return None

"""VRFs of edge routers (RFC 4364 §3): the model and the `vrfs:` key of a router node.

    pe1:
      vrfs:
        red:
          rd: 65000:1               # route distinguisher (§4.2), unique among the PE's VRFs
          rt: [65000:1]             # route targets imported and exported (§4.3.1)
          import: [65000:100]       # more targets to import (extranet, hub-and-spoke)
          export: [65000:200]       # more targets to export
          interfaces: [eth1]        # customer ports (to hosts) bound to the VRF
          routes:                   # static routes towards a CE (next hop on a bound port)
            - {to: 10.1.9.0/24, via: 10.1.1.2}
            - {to: 2001:db8:99::/48, via: 2001:db8:1:1::1}   # IPv6: via on a port's subnet6
          label_mode: per-vrf       # or per-prefix (VPN label allocation, §4.3.2)

An IPv6 static route (6VPE, RFC 4659) has an IPv6 next hop on a bound port's `subnet6`
(the CE's address there); like the port's IPv6 subnet it is exported as a VPN-IPv6 route.

The VRF's interfaces, their link subnets and its routes form an address space of its
own: two VRFs may use the same prefixes, and none of them is in the global table
(OSPF, LDP). The loader (`lsr.core.topology`) checks what needs the whole file (the
interfaces exist and face hosts, the next hops, the address plan); this module parses
one router's `vrfs:` mapping and owns the value types.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

LABEL_MODES = ("per-vrf", "per-prefix")
VRF_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
MAX_VRF_NAME = 12  # room for a prefix in a Linux VRF device name (IFNAMSIZ 16)
VRF_KEYS = ("rd", "rt", "import", "export", "interfaces", "routes", "label_mode")
ROUTE_KEYS = ("to", "via")

Fail = Callable[[tuple, str], Exception]  # (key path, message) -> the loader's error


def admin_number(text: Any) -> str:
    """A route distinguisher or route target "ADMIN:NUMBER", checked and canonical:
    2-octet AS : 4-octet number, IPv4 address : 2-octet number, or 4-octet AS : 2-octet
    number (RFC 4364 §4.2 types 0, 1, 2; RFC 4360 §4; RFC 5668). ValueError if not."""
    s = str(text).strip()
    left, sep, right = s.rpartition(":")
    if not sep or not right.isdigit():
        raise ValueError(f"{text!r} is not ADMIN:NUMBER (e.g. 65000:1 or 10.255.0.1:1)")
    num = int(right)
    if "." in left:
        try:
            admin = IPv4Address(left)
        except ValueError:
            raise ValueError(f"{text!r}: {left!r} is not an IPv4 address") from None
        if num > 0xFFFF:
            raise ValueError(f"{text!r}: the number must be 0..65535 after an IPv4 address")
        return f"{admin}:{num}"
    if not left.isdigit():
        raise ValueError(f"{text!r}: {left!r} is neither an AS number nor an IPv4 address")
    asn = int(left)
    if asn <= 0xFFFF and num <= 0xFFFFFFFF or asn <= 0xFFFFFFFF and num <= 0xFFFF:
        return f"{asn}:{num}"
    raise ValueError(f"{text!r} does not fit 6 octets (AS <= 65535 with a 4-octet number, "
                     "or a 4-octet AS with a number <= 65535)")


@dataclass(frozen=True, order=True)
class StaticRoute:
    """A VRF route towards a CE: `via` is on the subnet (IPv4) or `subnet6` (IPv6) of
    `interface` (a bound port); prefix and via are of one family."""

    prefix: IPv4Network | IPv6Network
    via: IPv4Address | IPv6Address
    interface: str = ""  # filled in by the loader from the address plan


@dataclass(frozen=True)
class Vrf:
    name: str
    rd: str  # canonical ADMIN:NUMBER
    import_rts: tuple[str, ...]
    export_rts: tuple[str, ...]
    interfaces: tuple[str, ...]
    routes: tuple[StaticRoute, ...] = ()
    label_mode: str = "per-vrf"

    def imports(self, rts: tuple[str, ...] | frozenset[str]) -> bool:
        """Does a route carrying `rts` go into this VRF (RFC 4364 §4.3.3)?"""
        return any(rt in self.import_rts for rt in rts)

    def label_count(self) -> int:
        """VPN labels the VRF needs: one (per-vrf) or one per local prefix (per-prefix)."""
        if self.label_mode == "per-vrf":
            return 1
        return len(self.interfaces) + len(self.routes)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "rd": self.rd, "import": list(self.import_rts),
                "export": list(self.export_rts), "interfaces": list(self.interfaces),
                "routes": [{"to": str(r.prefix), "via": str(r.via), "interface": r.interface}
                           for r in self.routes],
                "label_mode": self.label_mode}


def _targets(fail: Fail, v: Any, p: tuple) -> tuple[str, ...]:
    items = [v] if isinstance(v, (str, int)) and not isinstance(v, bool) else v
    if not isinstance(items, list) or not items:
        raise fail(p, "expected a route target or a list of them (e.g. [65000:1])")
    out = []
    for i, t in enumerate(items):
        try:
            out.append(admin_number(t))
        except ValueError as e:
            raise fail(p + (i,) if isinstance(v, list) else p, f"route target {e}") from None
    return tuple(dict.fromkeys(out))


def _routes(fail: Fail, v: Any, p: tuple) -> tuple[StaticRoute, ...]:
    if not isinstance(v, list):
        raise fail(p, "expected a list of {to: PREFIX, via: ADDRESS} (IPv4 or IPv6)")
    out = []
    for i, r in enumerate(v):
        rp = p + (i,)
        if not isinstance(r, dict):
            raise fail(rp, "expected {to: PREFIX, via: ADDRESS}")
        for k in r:
            if k not in ROUTE_KEYS:
                raise fail(rp + (k,), f"unknown key '{k}' (allowed: {', '.join(ROUTE_KEYS)})")
        for k in ROUTE_KEYS:
            if k not in r:
                raise fail(rp, f"missing '{k}'")
        to = str(r["to"])
        try:
            prefix = ip_network(to, strict=True)
        except ValueError as e:
            fam = "IPv6" if ":" in to else "IPv4"
            raise fail(rp + ("to",), f"bad {fam} prefix {r['to']!r}: {e}") from None
        try:
            via = ip_address(str(r["via"]))
        except ValueError:
            fam = "IPv6" if prefix.version == 6 else "IPv4"
            raise fail(rp + ("via",), f"bad {fam} address {r['via']!r}") from None
        if via.version != prefix.version:
            raise fail(rp + ("via",), f"{via} is not an IPv{prefix.version} address: a route to "
                                      f"{prefix} needs a next hop of its family")
        if isinstance(via, IPv6Address) and (via.is_link_local or via.is_multicast
                                             or via.is_unspecified or via.is_loopback):
            raise fail(rp + ("via",), f"{via} is not a unicast global address (the CE's "
                                      "address on the port's subnet6)")
        out.append(StaticRoute(prefix, via))
    return tuple(out)


def parse_vrfs(fail: Fail, raw: Any, path: tuple) -> dict[str, Vrf]:
    """One router's `vrfs:` mapping (names, RDs, targets, interface names, routes); what
    needs the rest of the file is checked by the loader."""
    if not isinstance(raw, dict) or not raw:
        raise fail(path, "expected a mapping of VRF name -> {rd, rt, interfaces, ...}")
    out: dict[str, Vrf] = {}
    rds: dict[str, str] = {}
    for name, body in raw.items():
        p = path + (name,)
        if not isinstance(name, str) or not VRF_NAME_RE.match(name) or len(name) > MAX_VRF_NAME:
            raise fail(p, f"VRF name {name!r} must be lowercase letters, digits and '-', "
                          f"start with a letter, at most {MAX_VRF_NAME} characters")
        if not isinstance(body, dict):
            raise fail(p, "expected a mapping with rd, rt (or import/export) and interfaces")
        for k in body:
            if k not in VRF_KEYS:
                raise fail(p + (k,), f"unknown key '{k}' (allowed: {', '.join(VRF_KEYS)})")
        if "rd" not in body:
            raise fail(p, "missing 'rd' (route distinguisher, e.g. 65000:1)")
        try:
            rd = admin_number(body["rd"])
        except ValueError as e:
            raise fail(p + ("rd",), f"route distinguisher {e}") from None
        if rd in rds:
            raise fail(p + ("rd",), f"route distinguisher {rd} is also VRF {rds[rd]}'s")
        rds[rd] = name
        both = _targets(fail, body["rt"], p + ("rt",)) if "rt" in body else ()
        imp = _targets(fail, body["import"], p + ("import",)) if "import" in body else ()
        exp = _targets(fail, body["export"], p + ("export",)) if "export" in body else ()
        ifs = body.get("interfaces")
        if not isinstance(ifs, list) or not ifs or not all(isinstance(i, str) for i in ifs):
            raise fail(p + ("interfaces",), "expected a non-empty list of interface names")
        if len(set(ifs)) != len(ifs):
            raise fail(p + ("interfaces",), "an interface is listed twice")
        mode = body.get("label_mode", "per-vrf")
        if mode not in LABEL_MODES:
            raise fail(p + ("label_mode",), f"{mode!r} is not one of: {', '.join(LABEL_MODES)}")
        routes = _routes(fail, body["routes"], p + ("routes",)) if "routes" in body else ()
        out[name] = Vrf(name, rd, tuple(dict.fromkeys(both + imp)),
                        tuple(dict.fromkeys(both + exp)), tuple(ifs), routes, mode)
    return out


@dataclass(frozen=True)
class VrfLocal:
    """A route of a VRF that its PE originates: a bound port's subnet ("connected": its
    IPv4 subnet, or its IPv6 one, `subnet6`, for 6VPE) or a static route ("static", to
    `via`). `neighbor`: the CE (host) on that port. Ordered by `sort_key` (IPv4 first)."""

    prefix: IPv4Network | IPv6Network
    kind: str
    interface: str
    via: IPv4Address | IPv6Address | None = None
    neighbor: str = ""

    def sort_key(self) -> tuple:
        return (*prefix_key(self.prefix), self.kind, self.interface, int(self.via or 0),
                self.neighbor)


def prefix_key(p: IPv4Network | IPv6Network) -> tuple[int, int, int]:
    """IPv4 prefixes, then IPv6 ones, each by address and length (the two families'
    networks do not compare with each other)."""
    return (p.version, int(p.network_address), p.prefixlen)


@dataclass(frozen=True)
class VpnRoute:
    """A VPN-IPv4 route (RFC 4364 §4.3.4) or VPN-IPv6 route (RFC 4659 §3.2) a VRF
    imports, as plain data taken from BGP's Loc-RIB: the prefix without its RD, the RD,
    the BGP next hop (the egress PE's IPv4 loopback; for VPN-IPv6 carried IPv4-mapped),
    the VPN label and the route targets. `local`: this PE originated it (another of its
    VRFs exported it: an extranet leak, no LSP involved)."""

    prefix: IPv4Network | IPv6Network
    rd: str
    next_hop: IPv4Address
    label: int
    route_targets: tuple[str, ...]
    local: bool = False

"""The topology file's optional `ipsec:` section: manually keyed ESP tunnels.

One section holds the SA database shared by all edge routers. Each SA is one
direction and is listed once, so the sender's outbound SA and the receiver's
inbound SA cannot drift apart. A router sends on the SAs whose `src` is its
loopback and receives on those whose `dst` is::

    ipsec:
      default: bypass                # SPD action when no policy matches
      sas:
        - name: pe1-pe2
          spi: 0x1001                # 256..2^32-1, unique per destination
          src: pe1                   # a router name (its loopback) or a loopback address
          dst: pe2
          encryption: aes-128-cbc    # aes-{128,192,256}-cbc
          enc_key: "000102030405060708090a0b0c0d0e0f"
          integrity: hmac-sha2-256-128   # or hmac-sha2-512-256
          auth_key: "<64 hex digits>"
          replay_window: 64          # 0 = off, else 32..65536
          esn: false
        - name: pe2-pe1-ah           # AH (RFC 4302): integrity only, no encryption
          protocol: ah               # esp (default) | ah
          spi: 0x2002
          src: pe2
          dst: pe1
          integrity: hmac-sha2-256-128
          auth_key: "<64 hex digits>"
      policies:                      # ordered; first match wins per router
        - {router: pe1, src: 192.168.1.0/24, dst: 192.168.2.0/24, action: protect, sa: pe1-pe2}

Validation errors name the file, the line and the key path (via `ctx.fail`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from forwarding.ipsec.ah import AhSecurityAssociation
from forwarding.ipsec.esp import (
    ENCRYPTIONS,
    INTEGRITIES,
    MAX_SEQ_32,
    NO_INTEGRITY,
    SecurityAssociation,
)
from forwarding.ipsec.replay import DEFAULT_WINDOW, MAX_WINDOW, MIN_WINDOW
from forwarding.ipsec.sad import Sad
from forwarding.ipsec.spd import Action, Policy, Selector, Spd
from lsr.core.topology import Topology

SECTION = "ipsec"
_TOP_KEYS = ("default", "sas", "policies", "ike")
_IKE_KEYS = (
    "name", "left", "right", "psk", "left_id", "right_id", "left_subnets", "right_subnets",
    "initiator", "ike", "esp", "pfs", "rekey_seconds", "ike_rekey_seconds", "nat_t", "replay_window",
)
IKE_PROPOSALS = {"aes128gcm16-prfsha256-x25519": 128, "aes256gcm16-prfsha256-x25519": 256}
ESP_PROPOSALS = {"aes128gcm16": 128, "aes256gcm16": 256}
GATEWAY_KINDS = ("strongswan",)  # host-like nodes that can be an IKE peer
_SA_KEYS = (
    "name", "protocol", "spi", "src", "dst", "encryption", "enc_key", "integrity", "auth_key",
    "replay_window", "esn", "df", "lifetime_packets",
)
SA_PROTOCOLS = ("esp", "ah")
_POLICY_KEYS = ("name", "router", "src", "dst", "protocol", "action", "sa")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
_HEX_RE = re.compile(r"^(0x)?([0-9a-fA-F]{2})+$")
PROTOCOLS = {"any": None, "icmp": 1, "tcp": 6, "udp": 17, "gre": 47}


@dataclass(frozen=True)
class SaSpec:
    name: str
    spi: int
    src: str  # router name
    dst: str
    src_addr: IPv4Address
    dst_addr: IPv4Address
    encryption: str
    enc_key: bytes
    integrity: str
    auth_key: bytes
    replay_window: int = DEFAULT_WINDOW
    esn: bool = False
    df: str = "copy"
    lifetime_packets: int | None = None
    protocol: str = "esp"  # or "ah" (RFC 4302: no encryption, enc_key empty)

    def __repr__(self) -> str:  # never print keys
        alg = self.encryption if self.protocol == "esp" else f"ah {self.integrity}"
        return f"SaSpec({self.name!r}, spi=0x{self.spi:08x}, {self.src}->{self.dst}, {alg})"


@dataclass(frozen=True)
class PolicySpec:
    name: str
    router: str
    selector: Selector
    action: Action
    sa: str | None


@dataclass(frozen=True)
class IkeSpec:
    """One IKEv2 connection (RFC 7296, PSK) between two nodes; Child SAs come from it."""

    name: str
    left: str  # node names; at least one is one of our routers
    right: str
    left_addr: IPv4Address  # IKE/ESP endpoint: a router's loopback, a gateway's address
    right_addr: IPv4Address
    psk: bytes
    left_id: str
    right_id: str
    left_subnets: tuple[IPv4Network, ...]
    right_subnets: tuple[IPv4Network, ...]
    initiator: str  # node name
    ike_bits: int = 128
    esp_bits: int = 128
    pfs: bool = True
    rekey_seconds: float | None = None  # Child SA rekey time, both ends (None: 3600, as strongSwan)
    nat_t: bool = False  # ESP in UDP 4500 + IKE on 4500 after IKE_SA_INIT (RFC 3948, RFC 7296 §2.23)
    replay_window: int = DEFAULT_WINDOW
    ike_rekey_seconds: float | None = None  # IKE SA rekey time, both ends (None: 14400)

    def __repr__(self) -> str:  # never print the PSK
        return f"IkeSpec({self.name!r}, {self.left}<->{self.right}, initiator={self.initiator})"

    def side(self, node: str) -> str:
        return "left" if node == self.left else "right"

    def peer(self, node: str) -> str:
        return self.right if node == self.left else self.left

    def view(self, node: str) -> dict[str, Any]:
        """The connection from `node`'s point of view: local/remote address, id, subnets."""
        left = node == self.left
        return {
            "local_addr": self.left_addr if left else self.right_addr,
            "remote_addr": self.right_addr if left else self.left_addr,
            "local_id": self.left_id if left else self.right_id,
            "remote_id": self.right_id if left else self.left_id,
            "local_subnets": self.left_subnets if left else self.right_subnets,
            "remote_subnets": self.right_subnets if left else self.left_subnets,
        }


@dataclass(frozen=True)
class IpsecConfig:
    default: Action
    sas: tuple[SaSpec, ...]
    policies: tuple[PolicySpec, ...]
    ike: tuple[IkeSpec, ...] = ()

    def sa(self, name: str) -> SaSpec:
        return next(s for s in self.sas if s.name == name)

    def selectors_of(self, sa_name: str) -> tuple[Selector, ...]:
        """Traffic selectors of an SA: those of the PROTECT policies that use it."""
        return tuple(p.selector for p in self.policies if p.sa == sa_name)


# ---------------------------------------------------------------- validation

Fail = Callable[[tuple[Any, ...], str], Exception]


def _expect_map(fail: Fail, v: Any, path: tuple[Any, ...], allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise fail(path, "expected a mapping")
    for k in v:
        if k not in allowed:
            raise fail(path + (k,), f"unknown key '{k}' (allowed: {', '.join(allowed)})")
    return v


def _key_bytes(fail: Fail, v: Any, path: tuple[Any, ...]) -> bytes:
    if not isinstance(v, str):
        raise fail(path, "a key must be a quoted hex string (unquoted hex is read as a number)")
    s = v.replace(":", "").strip()
    if not _HEX_RE.match(s):
        raise fail(path, "a key must be hex digits (an even number, optional 0x)")
    return bytes.fromhex(s[2:] if s.lower().startswith("0x") else s)


def _endpoint(fail: Fail, v: Any, path: tuple[Any, ...], topo: Topology) -> tuple[str, IPv4Address]:
    if isinstance(v, str) and v in topo.nodes:
        node = topo.nodes[v]
        if not node.is_router:
            raise fail(path, f"'{v}' is a {node.kind}, not a router: tunnel endpoints are routers")
        return node.name, node.lsr_id
    try:
        addr = IPv4Address(str(v))
    except ValueError:
        raise fail(path, f"{v!r} is neither a router of the topology nor an IPv4 address") from None
    for r in topo.routers:
        if r.loopback == addr:
            return r.name, addr
    owner = topo.node_of_address(addr)
    if owner is not None and owner.is_router:
        raise fail(path, f"{addr} is an interface of {owner.name}; tunnel endpoints are loopbacks ({owner.lsr_id})")
    raise fail(path, f"{addr} is not the loopback of a router of the topology")


def _prefix(fail: Fail, v: Any, path: tuple[Any, ...]) -> IPv4Network:
    try:
        return IPv4Network(str(v), strict=True)
    except ValueError as e:
        raise fail(path, f"bad IPv4 prefix {v!r}: {e}") from None


def _protocol(fail: Fail, v: Any, path: tuple[Any, ...]) -> int | None:
    if isinstance(v, str) and v in PROTOCOLS:
        return PROTOCOLS[v]
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255:
        return v
    raise fail(path, f"protocol {v!r} must be 0..255 or one of {', '.join(PROTOCOLS)}")


def _require(fail: Fail, m: dict[str, Any], path: tuple[Any, ...], keys: tuple[str, ...]) -> None:
    for req in keys:
        if req not in m:
            raise fail(path, f"missing '{req}'")


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _window_ok(v: Any) -> bool:
    return _is_int(v) and (v == 0 or MIN_WINDOW <= v <= MAX_WINDOW)


# Optional keys checked by a table: (key, default, is the value valid?, message for a bad one).
# A table's rows are checked in order, so the first bad row is the error reported.
_Option = tuple[str, Any, Callable[[Any], bool], Callable[[Any], str]]


def _options(fail: Fail, m: dict[str, Any], path: tuple[Any, ...], table: tuple[_Option, ...]) -> list[Any]:
    out = []
    for key, default, ok, message in table:
        v = m.get(key, default)
        if not ok(v):
            raise fail(path + (key,), message(v))
        out.append(v)
    return out


def _true_or_false(v: Any) -> str:
    return f"expected true or false, got {v!r}"


_SA_REQUIRED = ("name", "spi", "src", "dst", "encryption", "enc_key")
_AH_REQUIRED = ("name", "spi", "src", "dst", "integrity", "auth_key")
_SA_OPTIONS: tuple[_Option, ...] = (
    ("replay_window", DEFAULT_WINDOW, _window_ok,
     lambda v: f"replay_window {v!r} must be 0 (off) or {MIN_WINDOW}..{MAX_WINDOW} (RFC 4303 §3.4.3)"),
    ("esn", False, _is_bool, _true_or_false),
    ("df", "copy", lambda v: v in ("copy", "set", "clear"),
     lambda v: f"df must be copy, set or clear, not {v!r}"),
    ("lifetime_packets", None, lambda v: v is None or (_is_int(v) and v >= 1),
     lambda v: f"lifetime_packets must be a positive integer, got {v!r}"),
)
_POLICY_REQUIRED = ("router", "src", "dst", "action")
_IKE_REQUIRED = ("name", "left", "right", "psk", "left_subnets", "right_subnets")
_IKE_OPTIONS: tuple[_Option, ...] = (
    ("ike", "aes128gcm16-prfsha256-x25519", lambda v: v in IKE_PROPOSALS,
     lambda v: f"IKE proposal {v!r} is not one of: {', '.join(IKE_PROPOSALS)}"),
    ("esp", "aes128gcm16", lambda v: v in ESP_PROPOSALS,
     lambda v: f"ESP proposal {v!r} is not one of: {', '.join(ESP_PROPOSALS)}"),
    ("pfs", True, _is_bool, _true_or_false),
    ("rekey_seconds", None,
     lambda v: v is None or (not isinstance(v, bool) and isinstance(v, int | float) and v >= 2),
     lambda v: f"rekey_seconds must be a number >= 2, got {v!r}"),
    ("ike_rekey_seconds", None,
     lambda v: v is None or (not isinstance(v, bool) and isinstance(v, int | float) and v >= 2),
     lambda v: f"ike_rekey_seconds must be a number >= 2, got {v!r}"),
)
_IKE_WINDOW: tuple[_Option, ...] = (  # checked after nat_t
    ("replay_window", DEFAULT_WINDOW, _window_ok,
     lambda v: f"replay_window {v!r} must be 0 or {MIN_WINDOW}..{MAX_WINDOW}"),
)


def validate(ctx: Any, raw: Any, topo: Topology) -> IpsecConfig:
    """`ipsec:` section validator (the `lsr.sections` entry point).

    Checks run in this order, and a section with several problems gets the first
    error: the section's shape, the SAs in file order, the policies in file order,
    SAs no policy uses, then the IKE connections (tests pin the order).
    """
    fail: Fail = ctx.fail
    root = (SECTION,)
    sec = _expect_map(fail, raw, root, _TOP_KEYS)
    default, sas_raw, pol_raw = _section_shape(fail, sec, root)
    sas = _validate_sas(fail, sas_raw, root + ("sas",), topo)
    by_name = {s.name: s for s in sas}
    policies = _validate_policies(fail, pol_raw, root + ("policies",), topo, by_name)
    used = {q.sa for q in policies if q.sa}
    for i, s in enumerate(sas):
        if s.name not in used:
            raise fail(
                root + ("sas", i, "name"),
                f"SA '{s.name}' is not used by any protect policy (its selectors come from them)",
            )
    ike = _validate_ike(fail, sec.get("ike", []), root + ("ike",), topo, set(by_name))
    return IpsecConfig(default, tuple(sas), tuple(policies), ike)


def _section_shape(fail: Fail, sec: dict[str, Any], root: tuple[Any, ...]) -> tuple[Action, Any, Any]:
    """`default`, and `sas` and `policies` as lists (`sas` may be left out when `ike` is there)."""
    default_raw = sec.get("default", "bypass")
    if default_raw not in ("bypass", "discard"):
        raise fail(root + ("default",), f"default must be bypass or discard, not {default_raw!r}")
    sas_raw = sec.get("sas", [] if "ike" in sec else None)
    if not isinstance(sas_raw, list) or (not sas_raw and "ike" not in sec):
        raise fail(root + ("sas",), "expected a non-empty list of SAs (or an 'ike' list)")
    pol_raw = sec.get("policies", [])
    if not isinstance(pol_raw, list):
        raise fail(root + ("policies",), "expected a list of policies")
    return Action(default_raw), sas_raw, pol_raw


@dataclass
class _SasSoFar:
    """What the SAs before this one use: names, SPIs per destination, key bytes."""

    names: dict[str, int] = field(default_factory=dict)  # name -> index
    spis: dict[tuple[int, IPv4Address], str] = field(default_factory=dict)  # -> SA name
    keys: dict[bytes, tuple[str, str]] = field(default_factory=dict)  # -> (SA name, key name)


def _validate_sas(fail: Fail, sas_raw: list[Any], root: tuple[Any, ...], topo: Topology) -> list[SaSpec]:
    so_far = _SasSoFar()
    return [_sa_spec(fail, s, root + (i,), i, topo, so_far) for i, s in enumerate(sas_raw)]


def _sa_spec(fail: Fail, raw: Any, p: tuple[Any, ...], i: int, topo: Topology, so_far: _SasSoFar) -> SaSpec:
    """One SA, checked in order: keys, protocol, name, SPI, endpoints, algorithms, keys, options."""
    m = _expect_map(fail, raw, p, _SA_KEYS)
    protocol = m.get("protocol", "esp")
    if protocol not in SA_PROTOCOLS:
        raise fail(p + ("protocol",), f"protocol {protocol!r} must be esp or ah")
    _require(fail, m, p, _SA_REQUIRED if protocol == "esp" else _AH_REQUIRED)
    name = m["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise fail(p + ("name",), f"SA name {name!r} must start with a letter: letters, digits, _ . -")
    if name in so_far.names:
        raise fail(p + ("name",), f"SA name '{name}' is already used by sas[{so_far.names[name]}]")
    so_far.names[name] = i
    spi = _spi(fail, m["spi"], p + ("spi",))
    src, src_addr = _endpoint(fail, m["src"], p + ("src",), topo)
    dst, dst_addr = _endpoint(fail, m["dst"], p + ("dst",), topo)
    if src == dst:
        raise fail(p + ("dst",), f"src and dst are both {src}")
    if (spi, dst_addr) in so_far.spis:
        raise fail(
            p + ("spi",),
            f"SPI 0x{spi:08x} to {dst} is already used by SA '{so_far.spis[(spi, dst_addr)]}' "
            "(SPIs must be unique per destination)",
        )
    so_far.spis[(spi, dst_addr)] = name
    if protocol == "ah":
        enc, enc_key = NO_ENCRYPTION, b""
        integ, auth_key = _ah_algorithm_and_key(fail, m, p)
    else:
        enc, integ = _sa_algorithms(fail, m, p)
        enc_key, auth_key = _sa_keys(fail, m, p, enc, integ)
    for kname, kval in (("enc_key", enc_key), ("auth_key", auth_key)):
        if not kval:
            continue
        if kval in so_far.keys:
            other = so_far.keys[kval]
            raise fail(
                p + (kname,),
                f"this key is already used as {other[1]} of SA '{other[0]}': never reuse a key",
            )
        so_far.keys[kval] = (name, kname)
    window, esn, df, lifetime = _options(fail, m, p, _SA_OPTIONS)
    return SaSpec(name, spi, src, dst, src_addr, dst_addr, enc, enc_key, integ, auth_key,
                  window, esn, df, lifetime, protocol)


NO_ENCRYPTION = "none"


def _ah_algorithm_and_key(fail: Fail, m: dict[str, Any], p: tuple[Any, ...]) -> tuple[str, bytes]:
    """AH (RFC 4302): an integrity algorithm and its key; nothing to encrypt with."""
    for k in ("encryption", "enc_key"):
        if k in m:
            raise fail(p + (k,), f"AH does not encrypt (RFC 4302): remove '{k}', or use protocol: esp")
    integ = m["integrity"]
    if integ not in INTEGRITIES:
        raise fail(p + ("integrity",), f"{integ!r} is not one of: {', '.join(INTEGRITIES)}")
    ia = INTEGRITIES[integ]
    auth_key = _key_bytes(fail, m["auth_key"], p + ("auth_key",))
    if len(auth_key) != ia.key_len:
        raise fail(
            p + ("auth_key",),
            f"{integ} needs a {ia.key_len}-byte key ({2 * ia.key_len} hex digits, RFC 4868 §2.1.1), "
            f"got {len(auth_key)} bytes",
        )
    return integ, auth_key


def _spi(fail: Fail, spi: Any, path: tuple[Any, ...]) -> int:
    if isinstance(spi, bool) or not isinstance(spi, int):
        raise fail(path, f"SPI must be an integer, got {spi!r}")
    if 0 <= spi <= 255:
        raise fail(path, f"SPI {spi} is reserved (0 and 1..255, RFC 4303 §2.1); use 256..{MAX_SEQ_32}")
    if not 256 <= spi <= MAX_SEQ_32:
        raise fail(path, f"SPI {spi} is out of range 256..{MAX_SEQ_32}")
    return spi


def _sa_algorithms(fail: Fail, m: dict[str, Any], p: tuple[Any, ...]) -> tuple[str, str]:
    """Encryption (CBC only with manual keys) and integrity (required)."""
    enc = m["encryption"]
    if enc not in ENCRYPTIONS:
        raise fail(p + ("encryption",), f"{enc!r} is not one of: {', '.join(ENCRYPTIONS)}")
    if ENCRYPTIONS[enc].aead:
        raise fail(
            p + ("encryption",),
            f"{enc} with manual keys is refused: AES-GCM must never reuse an IV with the same key, "
            "and static keys cannot guarantee that across restarts (RFC 4106 §8.1). "
            "Use aes-*-cbc with hmac-sha2-256-128, or IKEv2-derived keys",
        )
    integ = m.get("integrity", NO_INTEGRITY)
    if integ == NO_INTEGRITY:
        raise fail(
            p + ("integrity",) if "integrity" in m else p,
            f"{enc} without integrity is refused (RFC 8221 §5: ESP encryption needs "
            "authentication); set integrity: hmac-sha2-256-128",
        )
    if integ not in INTEGRITIES:
        raise fail(p + ("integrity",), f"{integ!r} is not one of: {', '.join(INTEGRITIES)}")
    return enc, integ


def _sa_keys(fail: Fail, m: dict[str, Any], p: tuple[Any, ...], enc: str, integ: str) -> tuple[bytes, bytes]:
    """The two keys, each of the length its algorithm needs."""
    alg, ia = ENCRYPTIONS[enc], INTEGRITIES[integ]
    enc_key = _key_bytes(fail, m["enc_key"], p + ("enc_key",))
    if len(enc_key) != alg.keymat_len:
        raise fail(
            p + ("enc_key",),
            f"{enc} needs a {alg.keymat_len}-byte key ({2 * alg.keymat_len} hex digits), got {len(enc_key)} bytes",
        )
    if "auth_key" not in m:
        raise fail(p, f"missing 'auth_key' for {integ}")
    auth_key = _key_bytes(fail, m["auth_key"], p + ("auth_key",))
    if len(auth_key) != ia.key_len:
        raise fail(
            p + ("auth_key",),
            f"{integ} needs a {ia.key_len}-byte key ({2 * ia.key_len} hex digits, RFC 4868 §2.1.1), "
            f"got {len(auth_key)} bytes",
        )
    return enc_key, auth_key


def _validate_policies(fail: Fail, pol_raw: list[Any], root: tuple[Any, ...], topo: Topology,
                       by_name: dict[str, SaSpec]) -> list[PolicySpec]:
    return [_policy_spec(fail, q, root + (i,), i, topo, by_name) for i, q in enumerate(pol_raw)]


def _policy_spec(fail: Fail, raw: Any, p: tuple[Any, ...], i: int, topo: Topology,
                 by_name: dict[str, SaSpec]) -> PolicySpec:
    """One policy, checked in order: keys, router, selector, action, SA, name."""
    m = _expect_map(fail, raw, p, _POLICY_KEYS)
    _require(fail, m, p, _POLICY_REQUIRED)
    router = m["router"]
    if router not in topo.nodes or not topo.nodes[router].is_router:
        raise fail(p + ("router",), f"'{router}' is not a router of the topology")
    sel = Selector(
        _prefix(fail, m["src"], p + ("src",)),
        _prefix(fail, m["dst"], p + ("dst",)),
        _protocol(fail, m.get("protocol", "any"), p + ("protocol",)),
    )
    action_raw = m["action"]
    if action_raw not in ("protect", "bypass", "discard"):
        raise fail(p + ("action",), f"action {action_raw!r} must be protect, bypass or discard")
    action = Action(action_raw)
    sa_name = _policy_sa(fail, m.get("sa"), p, action, router, by_name)
    pname = m.get("name", f"{router}#{i}")
    if not isinstance(pname, str):
        raise fail(p + ("name",), "policy name must be a string")
    return PolicySpec(pname, router, sel, action, sa_name)


def _policy_sa(fail: Fail, sa_name: Any, p: tuple[Any, ...], action: Action, router: str,
               by_name: dict[str, SaSpec]) -> str | None:
    """A protect policy names an SA that its router sends on; other policies name none."""
    if action is not Action.PROTECT:
        if sa_name is not None:
            raise fail(p + ("sa",), f"only protect policies name an SA, this one is {action.value}")
        return None
    if sa_name is None:
        raise fail(p, "a protect policy needs 'sa'")
    if sa_name not in by_name:
        raise fail(p + ("sa",), f"unknown SA '{sa_name}' (known: {', '.join(by_name)})")
    if by_name[sa_name].src != router:
        raise fail(p + ("sa",), f"SA '{sa_name}' is sent by {by_name[sa_name].src}, not by {router}")
    return sa_name


def _ike_node(fail: Fail, v: Any, path: tuple[Any, ...], topo: Topology) -> tuple[str, IPv4Address]:
    if not isinstance(v, str) or v not in topo.nodes:
        raise fail(path, f"{v!r} is not a node of the topology")
    node = topo.nodes[v]
    if node.kind == "lsr":
        return v, node.lsr_id
    if node.kind in GATEWAY_KINDS:
        (iface,) = node.interfaces.values()
        return v, iface.address.ip
    raise fail(path, f"'{v}' is a {node.kind} node: IKE peers are our routers (kind lsr) or "
                     f"{', '.join(GATEWAY_KINDS)} gateways")


def _validate_ike(fail: Fail, raw: Any, root: tuple[Any, ...], topo: Topology,
                  sa_names: set[str]) -> tuple[IkeSpec, ...]:
    """`ipsec.ike`: IKEv2 connections. Each names two nodes, a PSK and the subnets behind each."""
    if not isinstance(raw, list):
        raise fail(root, "expected a list of IKE connections")
    names: set[str] = set(sa_names)  # one namespace for SAs and connections
    return tuple(_ike_conn(fail, c, root + (i,), topo, names) for i, c in enumerate(raw))


def _ike_conn(fail: Fail, raw: Any, p: tuple[Any, ...], topo: Topology, names: set[str]) -> IkeSpec:
    """One connection, checked in order: keys, name, peers, psk, subnets, ids, initiator,
    proposals and options, nat_t, replay window."""
    m = _expect_map(fail, raw, p, _IKE_KEYS)
    _require(fail, m, p, _IKE_REQUIRED)
    name = m["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 24:
        raise fail(p + ("name",), f"IKE name {name!r}: a letter, then letters, digits, _ . - (24 max)")
    if name in names:
        raise fail(p + ("name",), f"name '{name}' is already used by an SA or IKE connection")
    names.add(name)
    (left, laddr), (right, raddr) = _ike_peers(fail, m, p, topo)
    psk = m["psk"]
    if not isinstance(psk, str) or len(psk) < 8:
        raise fail(p + ("psk",), "psk must be a quoted string of at least 8 characters")
    subnets = {
        side: _ike_subnets(fail, m[side], p + (side,)) for side in ("left_subnets", "right_subnets")
    }
    left_id = _ike_id(fail, m, p + ("left_id",), f"{left}.{name}.lsr.test")
    right_id = _ike_id(fail, m, p + ("right_id",), f"{right}.{name}.lsr.test")
    init = m.get("initiator", "left")
    init = {"left": left, "right": right}.get(init, init)
    if init not in (left, right):
        raise fail(p + ("initiator",), f"initiator must be left, right, {left} or {right}")
    ike, esp, pfs, rekey, ike_rekey = _options(fail, m, p, _IKE_OPTIONS)
    nat_t = _ike_nat_t(fail, m, p, {topo.nodes[left].kind, topo.nodes[right].kind})
    (window,) = _options(fail, m, p, _IKE_WINDOW)
    return IkeSpec(
        name, left, right, laddr, raddr, psk.encode(), left_id, right_id,
        subnets["left_subnets"], subnets["right_subnets"], init, IKE_PROPOSALS[ike],
        ESP_PROPOSALS[esp], pfs, None if rekey is None else float(rekey), nat_t, window,
        None if ike_rekey is None else float(ike_rekey),
    )


def _ike_peers(fail: Fail, m: dict[str, Any], p: tuple[Any, ...],
               topo: Topology) -> tuple[tuple[str, IPv4Address], tuple[str, IPv4Address]]:
    """Two different nodes, at least one of them one of our routers."""
    left = _ike_node(fail, m["left"], p + ("left",), topo)
    right = _ike_node(fail, m["right"], p + ("right",), topo)
    if left[0] == right[0]:
        raise fail(p + ("right",), f"left and right are both {left[0]}")
    if "lsr" not in {topo.nodes[left[0]].kind, topo.nodes[right[0]].kind}:
        raise fail(p, "at least one side of an IKE connection must be one of our routers")
    return left, right


def _ike_subnets(fail: Fail, v: Any, path: tuple[Any, ...]) -> tuple[IPv4Network, ...]:
    if not isinstance(v, list) or not v:
        raise fail(path, "expected a non-empty list of IPv4 prefixes")
    return tuple(_prefix(fail, x, path + (j,)) for j, x in enumerate(v))


def _ike_id(fail: Fail, m: dict[str, Any], path: tuple[Any, ...], default: str) -> str:
    v = m.get(path[-1], default)  # default per connection: peers pick configs by ID
    if not isinstance(v, str) or not v or len(v) > 255:
        raise fail(path, "an IKE identity is a non-empty FQDN string")
    return v


def _ike_nat_t(fail: Fail, m: dict[str, Any], p: tuple[Any, ...], kinds: set[str]) -> bool:
    """ESP in UDP: on by default, and required, with a strongSwan gateway."""
    gateway = kinds & set(GATEWAY_KINDS)
    nat_t = m.get("nat_t", bool(gateway))
    if not isinstance(nat_t, bool):
        raise fail(p + ("nat_t",), f"expected true or false, got {nat_t!r}")
    if gateway and not nat_t:
        raise fail(p + ("nat_t",), "strongSwan's kernel-libipsec carries ESP only in UDP 4500 "
                                   "(RFC 3948): nat_t must be true with a strongswan peer")
    return nat_t


def ike_for_router(topo: Topology, router: str) -> tuple[IkeSpec, ...]:
    """The IKE connections one of our routers takes part in."""
    cfg: IpsecConfig | None = topo.extra.get(SECTION)
    if cfg is None:
        return ()
    return tuple(c for c in cfg.ike if router in (c.left, c.right))


def ike_out_sa(conn: str) -> str:
    """Name of the outbound SA an IKE connection installs (the SPD's PROTECT entries use it)."""
    return f"{conn}-out"




# ---------------------------------------------------------------- building tables


def ipsec_for_router(
    topo: Topology,
    router: str,
    *,
    now: float = 0.0,
    iv_source: Callable[[int], bytes] | None = None,
) -> tuple[Spd, Sad]:
    """This router's SPD and SAD, from the topology's `ipsec:` section.

    Outbound: the router's own policies, in file order, and the SAs it sends
    on. Inbound: the SAs it receives on, with the selectors of the policies
    that use them; and, for the SPD, those selectors as PROTECT entries so a
    clear packet that should have been protected is discarded (RFC 4301 §5.2).
    Without an `ipsec:` section both tables are empty (everything bypasses).
    """
    cfg: IpsecConfig | None = topo.extra.get(SECTION)
    if router not in topo.nodes:
        raise KeyError(f"no node '{router}' in {topo.name}")
    if cfg is None:
        return Spd(), Sad()
    sad = Sad()
    inbound_policies: list[Policy] = []
    extra: dict[str, Any] = {} if iv_source is None else {"iv_source": iv_source}
    for s in cfg.sas:
        if router not in (s.src, s.dst):
            continue
        sa: SecurityAssociation | AhSecurityAssociation
        if s.protocol == "ah":
            sa = AhSecurityAssociation(
                name=s.name, spi=s.spi, src=s.src_addr, dst=s.dst_addr,
                integrity=s.integrity, auth_key=s.auth_key,
                replay_window=s.replay_window, esn=s.esn, df=s.df,
                lifetime_packets=s.lifetime_packets, created=now,
                selectors=cfg.selectors_of(s.name),
            )
        else:
            sa = SecurityAssociation(
                name=s.name, spi=s.spi, src=s.src_addr, dst=s.dst_addr,
                encryption=s.encryption, enc_key=s.enc_key,
                integrity=s.integrity, auth_key=s.auth_key,
                replay_window=s.replay_window, esn=s.esn, df=s.df,
                lifetime_packets=s.lifetime_packets, created=now,
                selectors=cfg.selectors_of(s.name), **extra,
            )
        if s.src == router:
            sad.add_outbound(sa)
        else:
            sad.add_inbound(sa)
            for q in cfg.policies:
                if q.sa == s.name:
                    inbound_policies.append(Policy(q.selector, Action.PROTECT, s.name, name=f"in:{q.name}"))
    outbound = [Policy(q.selector, q.action, q.sa, name=q.name) for q in cfg.policies if q.router == router]
    ike_out, ike_in = _ike_policies(cfg, router)
    return Spd(outbound + ike_out, inbound_policies + ike_in, default=cfg.default), sad


def _ike_policies(cfg: IpsecConfig, router: str) -> tuple[list[Policy], list[Policy]]:
    """IKE connections: PROTECT local -> remote subnets on the Child SA (installed once IKE is up;
    until then the packets are dropped as no-sa, RFC 4301 §5.1), and inbound the reverse."""
    outbound: list[Policy] = []
    inbound: list[Policy] = []
    for c in cfg.ike:
        if router not in (c.left, c.right):
            continue
        v = c.view(router)
        for ls in v["local_subnets"]:
            for rs in v["remote_subnets"]:
                outbound.append(Policy(Selector(ls, rs), Action.PROTECT, ike_out_sa(c.name),
                                       name=f"{c.name}:{ls}->{rs}"))
                inbound.append(Policy(Selector(rs, ls), Action.PROTECT, f"{c.name}-in",
                                      name=f"in:{c.name}:{rs}->{ls}"))
    return outbound, inbound

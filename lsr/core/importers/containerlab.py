"""containerlab topology files, converted to ours (docs/import.md has the mapping).

A file is containerlab's when it has something only containerlab has: top-level `mgmt:`
or `prefix:`, `topology.kinds` or `topology.groups`, `kind`/`image` under
`topology.defaults`, a node with `image:` or `group:` or a containerlab kind (`linux`,
`nokia_srlinux`, `ceos`, `vr-sros`, ...), or a link in the extended form (`type:`,
endpoints as mappings). Our own files never have these, so a typo in one of ours stays an
error there.

Mapping, per node (its kind and image after containerlab's precedence: the node, then
its group, then `kinds.<kind>`, then `topology.defaults`):

* kind `linux` (and `ext-container`, `generic_vm`, `k8s-kind`, `keysight_ixia-c-one`,
  `freebsd`, `openbsd`, no kind) with a router image (FRR, BIRD, GoBGP, VyOS, SONiC,
  cRPD, SR Linux, cEOS, ...) -> an `lsr` router; with any other image -> a `host`;
* any other kind: a vendor NOS (`nokia_srlinux`, `srl`, `arista_ceos`, `ceos`,
  `juniper_crpd`, `crpd`, `vr-*`, `cisco_*`, `juniper_*`, `nokia_*`, `arista_*`, ...)
  -> an `lsr` router;
* our own kinds (`lsr`, `frr`, `host`, `strongswan`) stay what they are;
* `bridge` and `ovs-bridge` cannot be mapped (our links are point to point): an error.

Then our rules: a host has exactly one link, so a would-be host with two or more links
becomes a router, one with none is left out, and of two hosts linked to each other the
second becomes a router. Names are made ours (lowercase, `[a-z0-9-]`, 15 characters; the
lab's 12); interface names become valid Linux names (`ethernet-1/1` -> `e1-1` as
containerlab itself maps SR Linux's, other `/`, `:` and spaces -> `-`, long names
shortened). Router keys of ours (`loopback`, `labels` as `[first, last]`, `ttl_model`,
`ldp`, `ospf`) and link keys (`subnet`, `cost`, `mtu`, impairments) are kept; `mtu` above
our 9000 (containerlab's default is 9500) becomes 9000. Everything else is ignored and
listed in the notes: `mgmt`, `prefix`, `startup-config`, `binds`, `exec`, `env`,
containerlab's `labels` (a mapping), `type`, `ports`, `mgmt-ipv4`, ...; links to
containerlab's own endpoints (`host:`, `mgmt-net:`, `macvlan:`) and non-veth link types
are left out.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

from lsr.core.importers import LAB_MAX, dump, sanitize, unique
from lsr.core.yamlpos import load_located

Path = tuple[Any, ...]

OUR_KINDS = ("lsr", "frr", "host", "strongswan")
OUR_ROUTER_KEYS = ("loopback", "labels", "ttl_model", "ldp", "ospf")
OUR_LINK_KEYS = ("subnet", "cost", "mtu", "delay", "jitter", "loss", "rate", "queue")
OUR_SECTIONS = ("expect", "ipsec", "bgp")
MTU_MAX = 9000

# Kinds that run whatever their image is: a router image makes them a router, else a host.
GENERIC_KINDS = ("linux", "ext-container", "generic_vm", "k8s-kind", "keysight_ixia-c-one",
                 "freebsd", "openbsd", "vr-ubuntu", "linux_vm")
BRIDGE_KINDS = ("bridge", "ovs-bridge")
# Vendor NOS kinds of containerlab (routers), beyond what the prefixes below cover.
VENDOR_KINDS = ("srl", "ceos", "crpd", "sros", "xrd", "vsrx", "vmx", "vqfx", "veos", "xrv",
                "xrv9k", "csr", "n9kv", "c8000", "cvx", "sonic-vs", "sonic-vm", "rare",
                "fdio_vpp", "ftosv", "ocnos", "vyosnetworks_vyos", "mikrotik_ros",
                "checkpoint_cloudguard", "fortinet_fortigate", "huawei_vrp", "6wind_vsr",
                "aruba_aoscx", "cumulus_cvx", "ipinfusion_ocnos", "paloalto_panos",
                "dell_ftosv", "dell_sonic", "cisco_iol", "openwrt")
VENDOR_PREFIX = re.compile(r"^(nokia|juniper|cisco|arista|vr|sonic|huawei|ipinfusion|6wind|"
                           r"aruba|dell|mikrotik|paloalto|fortinet|checkpoint|cumulus|"
                           r"extreme|ciena|vyos|ericsson|zte|f5|sros)[_-]")
ROUTER_IMAGE = re.compile(r"frr|frrouting|quagga|bird|gobgp|openbgpd|exabgp|holo|vyos|sonic|"
                          r"crpd|cjunos|srlinux|ceos|xrd|xrv|vsrx|vmx|veos|routeros|openwrt|"
                          r"sros|freertr|rare|bngblaster", re.IGNORECASE)
SPECIAL_NODES = ("host", "mgmt-net", "macvlan")  # containerlab's endpoints outside the lab
MAP = "map: "  # the notes of the node mapping start so (the CLI shows them on import only)
SRL_IF = re.compile(r"^ethernet-(\d+)/(\d+)(?:/(\d+))?$")
IFNAME_MAX = 15


class ConvertError(Exception):
    """A containerlab construct we cannot map: the key path in the file and why."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# ------------------------------------------------------------ recognition


def _clab_kind(kind: Any) -> bool:
    return isinstance(kind, str) and kind not in OUR_KINDS and (
        kind in GENERIC_KINDS or kind in BRIDGE_KINDS or kind in VENDOR_KINDS
        or bool(VENDOR_PREFIX.match(kind)))


def recognise(data: Any) -> bool:
    """Is this parsed YAML a containerlab topology (see the module docstring)?"""
    if not isinstance(data, dict):
        return False
    if "mgmt" in data or "prefix" in data:
        return True
    topo = data.get("topology")
    if not isinstance(topo, dict):
        return False
    if "kinds" in topo or "groups" in topo:
        return True
    d = topo.get("defaults")
    if isinstance(d, dict) and ("kind" in d or "image" in d):
        return True
    nodes = topo.get("nodes")
    if isinstance(nodes, dict):
        for cfg in nodes.values():
            if isinstance(cfg, dict) and ("image" in cfg or "group" in cfg
                                          or _clab_kind(cfg.get("kind"))):
                return True
    links = topo.get("links")
    if isinstance(links, list):
        for ln in links:
            if isinstance(ln, dict) and ("type" in ln or any(
                    isinstance(e, dict) for e in (ln.get("endpoints") or []))):
                return True
    return False


# ------------------------------------------------------------ names


def linux_ifname(name: str) -> str:
    """A containerlab interface name as a valid Linux one (at most 15 characters, no '/',
    ':' or spaces): kept when it is one already; SR Linux's `ethernet-1/1` -> `e1-1` (as
    containerlab maps it); otherwise the offending characters become '-', and a long name
    keeps the first two letters of its word and all its numbers (`GigabitEthernet0/0/0/1`
    -> `gi0-0-0-1`)."""
    name = str(name)
    if _ifname_ok(name):
        return name
    m = SRL_IF.match(name)
    if m:
        return "e" + "-".join(g for g in m.groups() if g is not None)
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "if"
    if len(s) > IFNAME_MAX:
        m2 = re.match(r"^([A-Za-z]+)(.*)$", s)
        if m2:
            s = m2.group(1)[:2].lower() + m2.group(2)
        s = s[:IFNAME_MAX]
    if s in ("lo", "all", "default") or s.startswith("-"):
        s = f"if-{s}"[:IFNAME_MAX]
    return s


def _ifname_ok(name: str) -> bool:
    return (0 < len(name) <= IFNAME_MAX and bool(re.fullmatch(r"[A-Za-z0-9_.-]+", name))
            and name not in (".", "..", "lo", "all", "default") and not name.startswith("-"))


# ------------------------------------------------------------ conversion


class _Converter:
    def __init__(self, data: dict[str, Any], lines: dict[Path, int]) -> None:
        self.data = data
        self.lines = lines
        self.notes: list[str] = []
        self.ignored: dict[str, list[str]] = defaultdict(list)  # key -> where
        self.node_map: dict[str, str] = {}  # containerlab name -> ours
        self.kind_of: dict[str, str] = {}  # our name -> our kind
        self.why: dict[str, str] = {}  # our name -> "kind, image"
        self.if_map: dict[tuple[str, str], str] = {}  # (our node, clab ifname) -> ours
        self.if_taken: dict[str, set[str]] = defaultdict(set)
        self.path_map: dict[Path, Path] = {}  # old 3-key prefix -> new prefix (lines)

    def ignore(self, key: str, where: str) -> None:
        self.ignored[key].append(where)

    def fail(self, path: Path, message: str) -> ConvertError:
        return ConvertError(path, message)

    # -------------------------------------------------------- top level

    def run(self) -> dict[str, Any]:
        d = self.data
        out: dict[str, Any] = {}
        if "name" in d:
            raw = d["name"]
            out["name"] = sanitize(raw, LAB_MAX, "lab")
            if out["name"] != raw:
                self.notes.append(f"lab name {raw!r} -> {out['name']!r}")
        for k in d:
            if k in ("name", "topology"):
                continue
            if k in OUR_SECTIONS:
                out[k] = d[k]
                self.path_map[(k,)] = (k,)
            else:
                self.ignore(k, "top level")
        topo = d.get("topology")
        if not isinstance(topo, dict):
            raise self.fail(("topology",), "expected a mapping with nodes and links")
        out["topology"] = self.topology(topo)
        return out

    def topology(self, topo: dict[str, Any]) -> dict[str, Any]:
        for k in topo:
            if k not in ("kinds", "defaults", "groups", "nodes", "links"):
                self.ignore(f"topology.{k}", "top level")
        kinds = self._mapping(topo.get("kinds"), ("topology", "kinds"))
        groups = self._mapping(topo.get("groups"), ("topology", "groups"))
        defaults = self._mapping(topo.get("defaults"), ("topology", "defaults"))
        ours_defaults = {}
        for k, v in defaults.items():
            if k in ("labels", "ttl_model", "ldp", "ospf") and not (k == "labels"
                                                                   and isinstance(v, dict)):
                ours_defaults[k] = v
            elif k not in ("kind", "image"):
                self.ignore(k, "topology.defaults")
        self.path_map[("topology", "defaults")] = ("topology", "defaults")
        for section, table in (("kinds", kinds), ("groups", groups)):
            for name, props in table.items():
                for k in self._mapping(props, ("topology", section, name)):
                    if k not in ("kind", "image"):
                        self.ignore(k, f"{section}.{name}")
        nodes_raw = topo.get("nodes")
        if not isinstance(nodes_raw, dict) or not nodes_raw:
            raise self.fail(("topology", "nodes"), "expected a non-empty mapping of nodes")
        nodes = self.nodes(nodes_raw, kinds, groups, defaults)
        links_raw = topo.get("links") or []
        if not isinstance(links_raw, list):
            raise self.fail(("topology", "links"), "expected a list of links")
        links = self.links(links_raw)
        self.fix_hosts(nodes, links)
        out: dict[str, Any] = {}
        if ours_defaults:
            out["defaults"] = ours_defaults
        out["nodes"] = nodes
        out["links"] = links
        return out

    def _mapping(self, v: Any, path: Path) -> dict[str, Any]:
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise self.fail(path, "expected a mapping")
        return v

    # -------------------------------------------------------- nodes

    def nodes(self, nodes_raw: dict[Any, Any], kinds: dict[str, Any], groups: dict[str, Any],
              defaults: dict[str, Any]) -> dict[str, dict[str, Any]]:
        taken: set[str] = set()
        out: dict[str, dict[str, Any]] = {}
        for raw_name, cfg in nodes_raw.items():
            path = ("topology", "nodes", raw_name)
            cfg = self._mapping(cfg, path)
            name = unique(sanitize(raw_name), taken)
            self.node_map[str(raw_name)] = name
            self.path_map[path] = ("topology", "nodes", name)
            if name != raw_name:
                self.notes.append(f"node {raw_name!r} -> {name!r}")
            group = cfg.get("group")
            gprops: dict[str, Any] = {}
            if group is not None:
                if group not in groups:
                    raise self.fail(path + ("group",), f"unknown group {group!r}")
                gprops = self._mapping(groups[group], ("topology", "groups", group))
            kind = cfg.get("kind", gprops.get("kind", defaults.get("kind", "linux")))
            kprops = self._mapping(kinds.get(kind), ("topology", "kinds", kind)) \
                if isinstance(kind, str) else {}
            image = cfg.get("image", gprops.get("image", kprops.get("image",
                                                                       defaults.get("image", ""))))
            ours = self.classify(path, kind, str(image or ""))
            node: dict[str, Any] = {"kind": ours}
            self.kind_of[name] = ours
            self.why[name] = f"{kind}" + (f", image {image}" if image else "")
            for k, v in cfg.items():
                if k in ("kind", "image", "group"):
                    continue
                if k in OUR_ROUTER_KEYS and not (k == "labels" and isinstance(v, dict)):
                    node[k] = v  # ours: the validator checks it (a host with one: an error)
                else:
                    self.ignore(k, name)
            out[name] = node
        return out

    def classify(self, path: Path, kind: Any, image: str) -> str:
        if not isinstance(kind, str):
            raise self.fail(path + ("kind",), f"kind must be a string, not {kind!r}")
        if kind in OUR_KINDS:
            return kind
        if kind in BRIDGE_KINDS:
            raise self.fail(path + ("kind",), f"kind {kind!r} cannot be mapped: lsr links are "
                            "point to point (connect the nodes with links instead)")
        if kind in GENERIC_KINDS:
            return "lsr" if ROUTER_IMAGE.search(image) else "host"
        return "lsr"  # a vendor NOS

    # -------------------------------------------------------- links

    def links(self, links_raw: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, ln in enumerate(links_raw):
            path = ("topology", "links", i)
            ln = self._mapping(ln, path)
            ltype = ln.get("type", "veth")
            if ltype != "veth":
                self.notes.append(f"link {i}: type {ltype!r} left out (only veth links map "
                                  "to ours)")
                continue
            eps = ln.get("endpoints")
            if not isinstance(eps, list) or len(eps) != 2:
                raise self.fail(path + ("endpoints",), "endpoints must be a list of two "
                                "'node:interface' strings (or node/interface mappings)")
            ends = [self.endpoint(path + ("endpoints", k), e) for k, e in enumerate(eps)]
            special = [e for e in ends if e[0] is None]
            if special:
                self.notes.append(f"link {i}: endpoint {special[0][1]} (outside the lab) "
                                  "left out")
                continue
            link: dict[str, Any] = {"endpoints": [f"{n}:{f}" for n, f in ends]}
            for k, v in ln.items():
                if k in ("type", "endpoints"):
                    continue
                if k in OUR_LINK_KEYS:
                    if k == "mtu" and isinstance(v, int) and not isinstance(v, bool) \
                            and v > MTU_MAX:
                        self.notes.append(f"link {i}: mtu {v} -> {MTU_MAX} (our largest)")
                        v = MTU_MAX
                    link[k] = v
                else:
                    self.ignore(k, f"link {i}")
            self.path_map[path] = ("topology", "links", len(out))
            out.append(link)
        return out

    def endpoint(self, path: Path, ep: Any) -> tuple[str | None, str]:
        """(our node, our interface), or (None, text) for an endpoint outside the lab."""
        if isinstance(ep, dict):
            node, ifname = ep.get("node"), ep.get("interface")
        elif isinstance(ep, str) and ep.count(":") == 1:
            node, ifname = ep.split(":")
        else:
            raise self.fail(path, f"endpoint {ep!r} must be 'node:interface'")
        if not isinstance(node, str) or not isinstance(ifname, str) or not ifname:
            raise self.fail(path, f"endpoint {ep!r} needs a node and an interface")
        if node in SPECIAL_NODES and node not in self.node_map:
            return None, f"{node}:{ifname}"
        ours = self.node_map.get(node, node)  # unknown: the validator names it
        key = (ours, ifname)
        if key not in self.if_map:
            new = linux_ifname(ifname)
            if new != ifname:
                new = unique(new, self.if_taken[ours], IFNAME_MAX)
                self.notes.append(f"interface {node}:{ifname} -> {ours}:{new}")
            else:
                self.if_taken[ours].add(new)
            self.if_map[key] = new
        return ours, self.if_map[key]

    # -------------------------------------------------------- our host rules

    def fix_hosts(self, nodes: dict[str, dict[str, Any]], links: list[dict[str, Any]]) -> None:
        """A host has exactly one link, to a router (lsr.core.topology)."""
        degree = Counter(ep.split(":")[0] for ln in links for ep in ln["endpoints"])
        for name, node in list(nodes.items()):
            if node["kind"] != "host":
                continue
            if degree[name] == 0:
                del nodes[name]
                self.notes.append(f"{name} ({self.why[name]}): a host without links, left out")
            elif degree[name] > 1:
                self._promote(nodes, name, f"{degree[name]} links")
        for ln in links:
            a, b = (ep.split(":")[0] for ep in ln["endpoints"])
            if nodes.get(a, {}).get("kind") == "host" and nodes.get(b, {}).get("kind") == "host":
                self._promote(nodes, b, f"linked to host {a}")

    def _promote(self, nodes: dict[str, dict[str, Any]], name: str, why: str) -> None:
        nodes[name]["kind"] = "lsr"
        self.kind_of[name] = "lsr"
        self.notes.append(f"{name} ({self.why[name]}): a router, not a host ({why}; our hosts "
                          "have one link, to a router)")

    # -------------------------------------------------------- summary

    def summary(self) -> list[str]:
        """The mapping table, renames, then what was ignored: one line each."""
        out = [f"{MAP}{n}: {self.why[n]} -> {k}" for n, k in self.kind_of.items()]
        out += self.notes
        if self.ignored:
            parts = []
            for key, where in self.ignored.items():
                w = sorted(set(where), key=where.index)
                parts.append(f"{key} ({', '.join(w[:4])}{', ...' if len(w) > 4 else ''})")
            out.append("ignored (containerlab only): " + "; ".join(parts))
        return out

    def new_lines(self) -> dict[Path, int]:
        """Where each key of the converted document came from in the file."""
        out: dict[Path, int] = {(): self.lines.get((), 1)}
        if ("name",) in self.lines:
            out[("name",)] = self.lines[("name",)]
        if ("topology",) in self.lines:
            out[("topology",)] = self.lines[("topology",)]
        for p in ("nodes", "links"):
            if ("topology", p) in self.lines:
                out[("topology", p)] = self.lines[("topology", p)]
        for path, line in self.lines.items():
            for n in (1, 2, 3):
                new = self.path_map.get(tuple(path[:n]))
                if new is not None:
                    out[new + tuple(path[n:])] = line
                    break
        return out


def to_yaml(path: str, text: str, name: str | None = None) -> tuple[str, list[str]]:
    """A containerlab file as our topology YAML (what `lsr topo import` writes) and notes;
    `name`: the lab's instead of the file's. The caller has validated the file
    (load_topology: errors located in it)."""
    located = load_located(text)
    doc, _lines, notes = convert(located.data, located.lines)
    if name is not None:
        doc["name"] = name
    header = [f"Imported by `lsr topo import` from {path.rsplit('/', 1)[-1]} (containerlab).",
              *(n.removeprefix(MAP) for n in notes)]
    return dump(doc, header), notes


def convert(data: dict[str, Any], lines: dict[Path, int]) -> tuple[dict[str, Any],
                                                                   dict[Path, int], list[str]]:
    """A containerlab document as ours: (data, key path -> line in the file, notes).
    Raises ConvertError for what cannot be mapped."""
    c = _Converter(data, lines)
    out = c.run()
    return out, c.new_lines(), c.summary()

"""LSP ping / traceroute of IPv6 FECs in the simulator: the BGP labeled IPv6 FEC of a 6PE
route (RFC 8029 §3.2.14, RFC 4798) on topologies/6pe.yaml, and the VPN IPv6 FEC of a 6VPE
route (§3.2.6, RFC 4659) on topologies/6vpe.yaml. The egress validates the prefix and
the label it bound (§4.4: 3, else 4 / 10); P routers switch the LDP label (8)."""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.core.fib6 import Fib6
from lsr.core.topology import load_topology
from lsr.errors import LsrError
from lsr.oam.echo import (
    FLAG_V,
    LOCALHOST6,
    LOOPBACK_NET,
    LOOPBACK_NET6,
    BgpIpv6Fec,
    Ddmap,
    EchoMessage,
    LdpIpv4Fec,
    Multipath,
    MultipathType,
    TargetFecStack,
    VpnIpv4Fec,
    VpnIpv6Fec,
    multipath_range,
)
from lsr.oam.lspping import fib6s_from_json, lfib_network, lsp_ping, lsp_traceroute, resolve_target
from lsr.oam.responder import SixpeTarget, VpnTarget, respond
from lsr.oam.sixpe_check import sixpe_lsp_ping_results
from lsr.oam.trace import LfibNetwork
from lsr.oam.validate import lfibs_from_json
from lsr.sim import simulate
from tests import sixpe_ecmp
from tests.conftest import TOPOLOGIES

CE1 = IPv6Network("2001:db8:1::/64")
CE2 = IPv6Network("2001:db8:2::/64")
SITE2 = IPv6Network("2001:db8:1:2::/64")


def _sim(name: str):
    topo = load_topology(TOPOLOGIES / name)
    sim, res = simulate(topo)
    assert res.converged
    doc = sim.lfib_json()
    return topo, lfibs_from_json(doc), fib6s_from_json(doc)


@pytest.fixture(scope="module")
def sixpe():
    return _sim("6pe.yaml")


@pytest.fixture(scope="module")
def sixvpe():
    return _sim("6vpe.yaml")


def _codes(out: dict) -> list[tuple[str | None, int | None, int]]:
    return [(r["router"], r["return_code"], r["return_subcode"]) for r in out["replies"]]


def _hops(out: dict) -> list[tuple]:
    return [(h["ttl"], h["router"], h["return_code"], h["return_subcode"], h["labels"])
            for h in out["hops"]]


def test_resolve_ipv6_targets(sixpe, sixvpe):
    topo = sixpe[0]
    assert resolve_target(topo, "pe1", "2001:db8:2::/64") == SixpeTarget(CE2)
    assert resolve_target(topo, "pe1", "2001:db8:2::9") == SixpeTarget(IPv6Network("2001:db8:2::9/128"))
    assert resolve_target(topo, "pe1", "ce2", v6=True) == SixpeTarget(CE2)
    assert resolve_target(topo, "pe1", "ce2") == IPv4Network("192.168.2.0/24")  # LDP, as before
    with pytest.raises(LsrError, match="routers have no IPv6 loopback"):
        resolve_target(topo, "pe1", "pe2", v6=True)
    with pytest.raises(LsrError, match="IPv4 prefix: drop -6"):
        resolve_target(topo, "pe1", "10.0.0.0/8", v6=True)
    vtopo = sixvpe[0]
    assert resolve_target(vtopo, "pe1", "red2", v6=True) == VpnTarget("red", SITE2)
    assert resolve_target(vtopo, "pe1", "2001:db8:1:2::/64", "blue") == VpnTarget("blue", SITE2)
    assert resolve_target(vtopo, "pe1", "red2") == VpnTarget("red", IPv4Network("10.1.2.0/24"))


def test_6pe_ping_both_ways_6pe_label_and_explicit_null(sixpe):
    topo, lfibs, fib6s = sixpe
    net = lfib_network(topo, lfibs, fib6s)
    out = lsp_ping(net, "pe1", SixpeTarget(CE2), count=2)
    # egress at FEC stack depth 2: the BGP labeled IPv6 FEC under pe2's LDP FEC
    assert out["result"] == "ok" and _codes(out) == [("pe2", 3, 2)] * 2
    assert out["fec"] == "2001:db8:2::/64" and out["fec_type"] == "bgp-ipv6" and out["vpn"] is None
    assert out["sixpe"] == {"egress": "pe2", "egress_address": "10.255.0.4", "label": 4000}
    back = lsp_ping(net, "pe2", SixpeTarget(CE1))  # pe1 bound IPv6 Explicit Null (2)
    assert back["result"] == "ok" and _codes(back) == [("pe1", 3, 2)]
    assert back["sixpe"]["label"] == 2
    # an address: the 6PE route holding it
    assert lsp_ping(net, "pe1", SixpeTarget(IPv6Network("2001:db8:2::7/128")))["fec"] == str(CE2)
    # an LDP FEC keeps its JSON
    ldp = lsp_ping(net, "pe1", IPv4Network("10.255.0.4/32"))
    assert ldp["fec_type"] == "ldp-ipv4" and ldp["sixpe"] is None


def test_6pe_traceroute_p_routers_switch_the_ldp_label_egress_validates(sixpe):
    topo, lfibs, fib6s = sixpe
    net = lfib_network(topo, lfibs, fib6s)
    out = lsp_traceroute(net, "pe1", SixpeTarget(CE2))
    assert out["result"] == "ok" and out["fec_type"] == "bgp-ipv6"
    ldp = fib6s["pe1"].routes[CE2].nexthops[0].out_labels[0]
    p2_in = lfibs["p1"].ftn[IPv4Network("10.255.0.4/32")].nexthops[0].out_labels[0]
    assert ldp != p2_in
    # P routers answer for depth 1 (the LDP FEC) with the stack they send on (§3.4):
    # p2 pops the LDP label (PHP), the 6PE label goes on to pe2
    assert _hops(out) == [(1, "p1", 8, 1, [p2_in, 4000]), (2, "p2", 8, 1, [3, 4000]),
                          (3, "pe2", 3, 2, [])]
    back = lsp_traceroute(net, "pe2", SixpeTarget(CE1))
    assert [h[1:4] for h in _hops(back)] == [("p2", 8, 1), ("p1", 8, 1), ("pe1", 3, 2)]
    assert back["hops"][1]["labels"] == [3, 2]  # IPv6 Explicit Null under the popped LDP label
    mp = lsp_traceroute(net, "pe1", SixpeTarget(CE2), multipath=True)
    assert mp["result"] == "ok" and [p["routers"] for p in mp["paths"]] == [["p1", "p2", "pe2"]]


def _route_changed(fib6s, router: str, at: IPv6Network, **change):
    f = fib6s[router]
    routes = dict(f.routes)
    r = routes[at]
    label = change.pop("label", None)
    if label is not None:  # push another bottom label under the same LDP label
        change["nexthops"] = tuple(replace(n, out_labels=n.out_labels[:-1] + (label,))
                                   for n in r.nexthops)
        change["label"] = label
    new_prefix = change.pop("prefix", at)
    routes[new_prefix] = replace(r, prefix=new_prefix, **change)
    return {**fib6s, router: Fib6(routes, f.labels, f.unresolved)}


@pytest.mark.parametrize("case,want", [
    ("right", ("pe2", 3, 2)),
    ("not-its-prefix", ("pe2", 4, 2)),     # pe2 originates no such prefix: no mapping (§3.1)
    ("explicit-null", ("pe2", 10, 2)),     # pe2 bound 4000, not 2: not the given label
    ("unknown-label", ("pe2", None, 0)),   # no label entry: pe2 drops it, silent
])
def test_6pe_egress_return_codes(sixpe, case, want):
    topo, lfibs, fib6s = sixpe
    other = IPv6Network("2001:db8:99::/64")
    target = SixpeTarget(CE2)
    if case == "not-its-prefix":
        fib6s = _route_changed(fib6s, "pe1", CE2, prefix=other)
        target = SixpeTarget(other)
    elif case == "explicit-null":
        fib6s = _route_changed(fib6s, "pe1", CE2, label=2)
    elif case == "unknown-label":
        fib6s = _route_changed(fib6s, "pe1", CE2, label=4321)
    net = lfib_network(topo, lfibs, fib6s)
    out = lsp_ping(net, "pe1", target)
    if case == "unknown-label":  # the label's TTL never expires before pe2, which drops it
        assert _codes(out) == [(None, None, 0)]
        out = lsp_traceroute(net, "pe1", target)
        # the hop p2's DDMAP named stays silent: the traceroute names it
        assert out["broken_at"]["router"] == "pe2" and out["broken_at"]["return_code"] is None
        assert out["hops"][2]["expected_router"] == "pe2"
        return
    assert _codes(out) == [want]
    tr = lsp_traceroute(net, "pe1", target)
    assert tr["hops"][-1]["router"] == "pe2" and tr["hops"][-1]["return_code"] == want[1]
    assert tr["result"] == ("ok" if want[1] == 3 else "broken")


def test_6pe_responder_fec_of_another_kind_under_the_6pe_label(sixpe):
    topo, lfibs, fib6s = sixpe
    t = lfib_network(topo, lfibs, fib6s).tables["pe2"]
    lo = LdpIpv4Fec(IPv4Network("10.255.0.4/32"))

    def code(fec, labels=(4000,), flags=FLAG_V) -> tuple[int, int]:
        m = respond(t, EchoMessage(flags=flags, sender_handle=1, sequence=1,
                                   tlvs=(TargetFecStack((lo, fec)),)), list(labels))
        assert m is not None
        return m.return_code, m.return_subcode

    assert code(BgpIpv6Fec(CE2)) == (3, 2)
    assert code(VpnIpv6Fec.from_text("10.255.0.4:1", CE2)) == (10, 2)  # 6PE label, VPN FEC
    assert code(VpnIpv4Fec.from_text("10.255.0.4:1", IPv4Network("10.1.0.0/16"))) == (10, 2)
    assert code(BgpIpv6Fec(CE2), (4000, 4000)) == (11, 1)  # 6PE label not at the bottom
    assert code(BgpIpv6Fec(CE1)) == (4, 2)  # pe1's prefix, not pe2's


def test_6vpe_ping_and_traceroute_each_vrf(sixvpe):
    topo, lfibs, fib6s = sixvpe
    net = lfib_network(topo, lfibs, fib6s)
    red = lsp_ping(net, "pe1", VpnTarget("red", SITE2))
    blue = lsp_ping(net, "pe1", VpnTarget("blue", SITE2))
    assert _codes(red) == _codes(blue) == [("pe2", 3, 2)]
    assert red["fec_type"] == blue["fec_type"] == "vpn-ipv6"
    assert (red["vpn"]["rd"], blue["vpn"]["rd"]) == ("10.255.0.2:1", "10.255.0.2:2")
    assert red["vpn"]["vpn_label"] != blue["vpn"]["vpn_label"]
    for t in (VpnTarget("red", SITE2), VpnTarget("blue", SITE2)):
        tr = lsp_traceroute(net, "pe1", t)
        label = lfibs["pe1"].vrfs[t.vrf][SITE2].vpn_label
        assert tr["result"] == "ok"
        assert [h[1:4] for h in _hops(tr)] == [("p1", 8, 1), ("p2", 8, 1), ("pe2", 3, 2)]
        assert tr["hops"][1]["labels"] == [3, label]
    # pe2's red labels per prefix: the IPv6 route's label is not the IPv4 one's
    v4 = lfibs["pe1"].vrfs["red"][IPv4Network("10.1.2.0/24")].vpn_label
    assert lfibs["pe1"].vrfs["red"][SITE2].vpn_label != v4


def test_6vpe_target_a_vrf_has_no_route_to_is_named(sixvpe):
    """A VRF holds IPv4 and IPv6 routes: an IPv6 target none of them covers is reported
    (the longest-match search skips the other family; it once raised TypeError)."""
    topo, lfibs, fib6s = sixvpe
    net = lfib_network(topo, lfibs, fib6s)
    gone = IPv6Network("2001:db8:77::/64")
    for run in (lsp_ping, lsp_traceroute):
        out = run(net, "pe1", VpnTarget("red", gone))
        assert out["result"] != "ok"
        assert out["reason"] == f"pe1's VRF red has no route to {gone}", out
    # an IPv4 target with IPv6 routes beside it: still the IPv4 route that holds it
    host = lsp_ping(net, "pe1", VpnTarget("red", IPv4Network("10.1.2.9/32")))
    assert host["result"] == "ok" and host["vpn"]["rd"] == "10.255.0.2:1", host


@pytest.mark.parametrize("case,code", [("wrong-rd", 4), ("other-vrfs-label", 10),
                                       ("ipv4-label", 10), ("right", 3)])
def test_6vpe_egress_return_codes(sixvpe, case, code):
    topo, lfibs, fib6s = sixvpe
    lf = lfibs["pe1"]
    vrfs = {v: dict(fib) for v, fib in lf.vrfs.items()}
    e = vrfs["red"][SITE2]

    def with_label(label: int):
        return replace(e, vpn_label=label, nexthops=tuple(
            replace(n, out_labels=n.out_labels[:-1] + (label,)) for n in e.nexthops))

    if case == "wrong-rd":
        vrfs["red"][SITE2] = replace(e, rd="10.255.0.2:9")
    elif case == "other-vrfs-label":
        vrfs["red"][SITE2] = with_label(vrfs["blue"][SITE2].vpn_label)
    elif case == "ipv4-label":  # per-prefix: red's IPv4 route's label, not the IPv6 one's
        vrfs["red"][SITE2] = with_label(vrfs["red"][IPv4Network("10.1.2.0/24")].vpn_label)
    lfibs = {**lfibs, "pe1": replace(lf, vrfs=vrfs)}
    out = lsp_ping(lfib_network(topo, lfibs, fib6s), "pe1", VpnTarget("red", SITE2))
    assert _codes(out) == [("pe2", code, 2)]


def test_sixpe_lsp_ping_row_names_a_broken_route(sixpe):
    topo, lfibs, fib6s = sixpe
    ok = sixpe_lsp_ping_results(topo, lfib_network(topo, lfibs, fib6s))
    assert [(r.check, r.status) for r in ok] == [("sixpe-lsp-ping", "pass")]
    bad = sixpe_lsp_ping_results(topo, lfib_network(topo, lfibs,
                                                     _route_changed(fib6s, "pe1", CE2, label=2)))
    assert [r.status for r in bad] == ["fail"]
    assert "pe1 2001:db8:2::/64 (egress pe2): pe2 answered 10" in bad[0].detail
    gone = {**fib6s, "pe2": Fib6()}
    bad = sixpe_lsp_ping_results(topo, lfib_network(topo, lfibs, gone))
    assert [r.detail for r in bad] == ["pe2 2001:db8:1::/64 (egress pe1): pe2 has no 6PE route "
                                       "to 2001:db8:1::/64"]
    assert sixpe_lsp_ping_results(topo, lfib_network(topo, lfibs, fib6s), skip={"pe1", "pe2"}) == []


def test_cli_6pe_and_6vpe_json_and_errors():
    r = CliRunner()
    res = r.invoke(main, ["lsp", "traceroute", "--sim", str(TOPOLOGIES / "6pe.yaml"), "pe1", "ce2",
                          "-6", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["fec_type"] == "bgp-ipv6" and out["sixpe"]["egress"] == "pe2"
    assert [h["router"] for h in out["hops"]] == ["p1", "p2", "pe2"] and out["backend"] == "sim"
    res = r.invoke(main, ["lsp", "ping", "--sim", str(TOPOLOGIES / "6pe.yaml"), "pe1",
                          "2001:db8:2::/64"])
    assert res.exit_code == 0 and "6PE, egress pe2 label" in res.output
    res = r.invoke(main, ["lsp", "ping", "--sim", str(TOPOLOGIES / "6vpe.yaml"), "pe2", "--vrf",
                          "blue", "2001:db8:1:1::/64", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["fec_type"] == "vpn-ipv6"
    res = r.invoke(main, ["lsp", "ping", "--sim", str(TOPOLOGIES / "6pe.yaml"), "pe1",
                          "2001:db8:77::/64"])
    assert res.exit_code == 1 and "pe1 has no 6PE route to 2001:db8:77::/64" in res.output
    res = r.invoke(main, ["lsp", "ping", "--sim", str(TOPOLOGIES / "6pe.yaml"), "pe1", "p2", "-6"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "routers have no IPv6 loopback" in res.output


def test_validate_probes_6vpe_and_6pe_routes():
    r = CliRunner()
    res = r.invoke(main, ["validate", str(TOPOLOGIES / "6vpe.yaml"), "--json"])
    rows = {x["check"]: x for x in json.loads(res.output)["results"]}
    assert rows["vpn-lsp-ping"]["status"] == "pass" and "(4 IPv6)" in rows["vpn-lsp-ping"]["detail"]
    res = r.invoke(main, ["validate", str(TOPOLOGIES / "6pe.yaml"), "--json"])
    rows = {x["check"]: x for x in json.loads(res.output)["results"]}
    assert rows["sixpe-lsp-ping"]["status"] == "pass"


# ---------------------------------------------------------------- multipath (§3.4.1.1.1)


@pytest.fixture(scope="module")
def ecmp6():
    topo = sixpe_ecmp.topology()
    sim, res = simulate(topo)
    assert res.converged
    doc = sim.lfib_json()
    return topo, lfibs_from_json(doc), fib6s_from_json(doc)


def _recorded(net: LfibNetwork) -> list[tuple]:
    """Every (request, dst, reply) the traces through `net` exchange, as bytes decode them."""
    log: list[tuple] = []
    sender = net.sender

    def recording(ingress, fec):
        real = sender(ingress, fec)

        def send(ttl, request, dst=None):
            r = real(ttl, request, dst)
            log.append((EchoMessage.decode(request.encode()), dst,
                        None if r is None else EchoMessage.decode(r.message.encode())))
            return r
        return send
    net.sender = recording
    return log


def _v6_set(mp: Multipath) -> tuple[IPv6Address, ...]:
    """A DDMAP's IPv6 multipath data: bit-masked (Wireshark 4.0 reads no 16-octet type 2
    or 4), every address in ::ffff:127.0.0.0/104."""
    assert mp.type == MultipathType.BITMASK_IP
    got = mp.addresses(v6=True)
    assert got and all(a in LOOPBACK_NET6 for a in got), got
    return got


@pytest.mark.parametrize("ingress, target", [("pe1", SixpeTarget(sixpe_ecmp.CE2)),
                                             ("pe2", SixpeTarget(sixpe_ecmp.CE1))])
def test_6pe_multipath_traceroute_is_ipv6_end_to_end(ecmp6, ingress, target):
    """An IPv6 FEC's multipath traceroute: the ingress splits ::ffff:127.0.0.1..32 over its
    ECMP next hops, each request goes to one of its branch's destinations with that set
    as IPv6 bit-masked multipath data, each replier splits it again in IPv6; every path
    of both ECMP stages is found."""
    topo, lfibs, fib6s = ecmp6
    net = lfib_network(topo, lfibs, fib6s)
    dsts = multipath_range(32, LOCALHOST6)
    first = net.first_ddmaps(ingress, target, True)
    assert len(first) == 2
    shares = [set(_v6_set(d.multipath)) for d in first]
    assert shares[0].isdisjoint(shares[1]) and shares[0] | shares[1] == set(dsts)
    log = _recorded(net)
    out = lsp_traceroute(net, ingress, target, multipath=True)
    want = sixpe_ecmp.PATHS if ingress == "pe1" else \
        [[*reversed(p[:-1]), "pe1"] for p in sixpe_ecmp.PATHS]
    assert out["result"] == "ok" and sorted(p["routers"] for p in out["paths"]) == sorted(want)
    assert log and all(isinstance(dst, IPv6Address) for _, dst, _ in log)
    for req, dst, rep in log:
        (rq_map,) = req.ddmaps
        sent = _v6_set(rq_map.multipath)
        assert dst == sent[0] and set(sent) <= set(dsts)  # the branch's own destinations
        assert rep is not None and rep.return_code in (3, 8)
        if rep.return_code == 8:  # a transit splits exactly what it was sent, in IPv6
            parts = [set(_v6_set(d.multipath)) for d in rep.ddmaps]
            assert set().union(*parts) == set(sent) and sum(map(len, parts)) == len(sent)
    # the IPv4 FEC of the same egress keeps 127/8, as before
    log.clear()
    v4 = lsp_traceroute(net, ingress, IPv4Network(("10.255.0.2" if ingress == "pe1"
                                                    else "10.255.0.1", 32)), multipath=True)
    assert v4["result"] == "ok" and len(v4["paths"]) == 4
    assert all(isinstance(dst, IPv4Address) and dst in LOOPBACK_NET for _, dst, _ in log)
    assert all(a in LOOPBACK_NET for req, _, _ in log for a in req.ddmaps[0].multipath.addresses())


def test_6pe_traceroute_without_multipath_sends_its_one_ipv6_destination(ecmp6):
    topo, lfibs, fib6s = ecmp6
    net = lfib_network(topo, lfibs, fib6s)
    log = _recorded(net)
    out = lsp_traceroute(net, "pe1", SixpeTarget(sixpe_ecmp.CE2))
    assert out["result"] == "ok" and len(out["paths"]) == 1
    for req, _dst, rep in log:
        assert _v6_set(req.ddmaps[0].multipath) == (LOCALHOST6,)
        assert all(_v6_set(d.multipath) == (LOCALHOST6,) for d in rep.ddmaps)


def test_responder_reads_multipath_in_the_requests_family(ecmp6):
    """p3 splits an IPv6 request's ::ffff:127/104 set and answers in IPv6; IPv4 data in an
    IPv6 request (or the reverse) is malformed (1) when it does not fit the family."""
    topo, lfibs, fib6s = ecmp6
    t = lfib_network(topo, lfibs, fib6s).tables["p3"]
    lo = IPv4Network("10.255.0.2/32")
    label = lfibs["p1"].ftn[lo].nexthops[0].out_labels[0]

    def reply(mp: Multipath, v6: bool) -> EchoMessage:
        req = EchoMessage(flags=FLAG_V, sender_handle=1, sequence=1, tlvs=(
            TargetFecStack((LdpIpv4Fec(lo), BgpIpv6Fec(sixpe_ecmp.CE2))),
            Ddmap(multipath=mp)))
        m = respond(t, req, [label, 4000], v6=v6)
        assert m is not None
        return m

    six = multipath_range(32, LOCALHOST6)
    ok = reply(Multipath.bitmask(six), v6=True)
    assert ok.return_code == 8 and len(ok.ddmaps) == 2
    assert sorted(a for d in ok.ddmaps for a in _v6_set(d.multipath)) == list(six)
    four = Multipath.bitmask(multipath_range(32))  # 127.0.0.1 .. 32: 4 + 8 octets
    assert reply(four, v6=True).return_code == 1
    assert reply(four, v6=False).return_code == 8
    # 16 octets of type 2: one IPv6 address, or four IPv4 ones for an IPv4 request
    one = Multipath.ip_addresses([LOCALHOST6])
    assert [_v6_set(d.multipath) for d in reply(one, v6=True).ddmaps] == [(LOCALHOST6,)]
    assert reply(Multipath.ip_ranges([(LOCALHOST6, LOCALHOST6)]), v6=False).return_code == 8
    high_low = Multipath(MultipathType.IP_RANGE, six[8].packed + six[0].packed)  # IPv6: 9 > 1
    assert reply(high_low, v6=True).return_code == 1
    assert reply(high_low, v6=False).return_code == 8  # four IPv4 pairs, each low <= high

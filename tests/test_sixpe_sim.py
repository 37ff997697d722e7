"""6PE (RFC 4798) in the simulator: PEs originate their IPv6 customer subnets as labelled
IPv6 (AFI 2 / SAFI 4, next hop ::ffff:<loopback>), learn each other's over iBGP (a full
mesh or a reflector), compose the [LDP label, 6PE label] stacks over LDP's FTN, and the
forwarding plane carries IPv6 across the IPv4 core. tshark decodes every UPDATE."""

from __future__ import annotations

import shutil
from collections import defaultdict
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import Path

import pytest

from bgp import events as ev
from bgp import sixpe
from bgp.nlri import IPV6_LABELLED, Nlri
from forwarding.tables import build_all
from forwarding.walk import walk
from lsr.core.topology import load_topology, parse_topology
from lsr.sim import Simulation, converge

from .test_bgp_tshark import Pcap, Stream, tshark

ROOT = Path(__file__).resolve().parents[1]
SIXPE = ROOT / "topologies" / "6pe.yaml"
NET1, NET2 = IPv6Network("2001:db8:1::/64"), IPv6Network("2001:db8:2::/64")

RR = """
name: sixrr
topology:
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1}
    rr: {loopback: 10.255.0.2}
    pe2: {loopback: 10.255.0.3}
    ce2: {kind: host}
    pe3: {loopback: 10.255.0.4}
    ce3: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet6: auto
    - endpoints: [pe1:eth2, rr:eth1]
    - endpoints: [rr:eth2, pe2:eth2]
    - endpoints: [rr:eth3, pe3:eth2]
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet6: auto
    - endpoints: [pe3:eth1, ce3:eth0]
bgp:
  asn: 65000
  routers:
    rr: {route_reflector: true}
    pe1: {}
    pe2: {}
    pe3: {}
"""


@pytest.fixture(scope="module")
def six():
    o = converge(load_topology(SIXPE))
    assert o.converged
    return o.sim


def test_pes_originate_and_learn_labelled_ipv6(six):
    pe1, pe2 = six.bgp["pe1"], six.bgp["pe2"]
    p = pe1.loc_rib[(IPV6_LABELLED, Nlri(NET2))]
    assert p.next_hop == IPv4Address("10.255.0.4") and p.label == 4000 and not p.local
    q = pe2.loc_rib[(IPV6_LABELLED, Nlri(NET1))]
    assert q.next_hop == IPv4Address("10.255.0.1") and q.label == 2  # pe1: ipv6_explicit_null
    assert pe1.loc_rib[(IPV6_LABELLED, Nlri(NET1))].local
    fams = {n["name"]: n["families"] for n in pe1.neighbors()}
    assert "ipv6-labelled" in fams["pe2"]  # the default once a customer link has IPv6


def test_fib6_pushes_ldp_then_6pe_label(six):
    f1, f2 = six.fib6("pe1"), six.fib6("pe2")
    (r,) = f1.routes.values()
    ldp = six.instances["pe1"].lfib.ftn[IPv4Network("10.255.0.4/32")]
    assert [n.out_labels for n in r.nexthops] == [ldp.nexthops[0].out_labels + (4000,)]
    assert r.egress == "pe2" and f1.labels == () and f2.labels == (4000,)
    assert six.fib6s().keys() == {"pe1", "pe2"}  # P routers have none
    lfib = six.lfib_json()["routers"]
    assert "ipv6" not in lfib["p1"] and lfib["pe2"]["ipv6"]["labels"] == [4000]


def test_the_plane_carries_ipv6_across_the_core(six):
    tables = build_all(six.topo, six.ribs, {r: i.lfib for r, i in six.instances.items()},
                       six.fib6s())
    w = walk(six.topo, tables, "ce1", "ce2", family=6)
    assert w["result"] == "delivered"
    assert [(h["router"], h["op"], len(h["labels_out"])) for h in w["hops"]] == [
        ("pe1", "push", 2), ("p1", "swap", 2), ("p2", "pop", 1), ("pe2", "pop", 0)]
    back = walk(six.topo, tables, "ce2", "ce1", family=6)
    assert back["result"] == "delivered" and back["hops"][0]["labels_out"][-1] == 2


def test_reflector_reflects_6pe_routes_with_next_hop_unchanged():
    o = converge(parse_topology(RR, "rr.yaml"))
    assert o.converged
    s = o.sim
    topo = s.topo
    n2 = topo.links[4].subnet6
    p = s.bgp["pe1"].loc_rib[(IPV6_LABELLED, Nlri(n2))]
    assert p.next_hop == topo.nodes["pe2"].lsr_id and p.label == 3000  # pe2's 6PE label
    assert p.attrs.originator_id == topo.nodes["pe2"].lsr_id
    # pe3 has no IPv6 customers: it learns the routes, originates none, keeps no label
    assert sixpe.export_routes(topo, "pe3") == ()
    assert s.fib6("pe3").routes and s.fib6("pe3").labels == ()
    tables = build_all(topo, s.ribs, {r: i.lfib for r, i in s.instances.items()}, s.fib6s())
    assert walk(topo, tables, "ce1", "ce2", family=6)["result"] == "delivered"


def test_withdrawn_when_the_egress_stops(six):
    o = converge(load_topology(SIXPE))
    s = o.sim
    s.router_stop("pe2")
    s.run(max_time=300)
    assert (IPV6_LABELLED, Nlri(NET2)) not in s.bgp["pe1"].loc_rib
    assert not s.fib6("pe1").routes


def test_no_lsp_leaves_the_route_unresolved(six):
    lfib = six.instances["pe1"].lfib
    f = sixpe.fib6(six.topo, "pe1", six.bgp["pe1"].loc_rib, {}, True)
    assert not f.routes and f.unresolved == {NET2: "no LSP to 10.255.0.4"}
    assert sixpe.fib6(six.topo, "pe1", six.bgp["pe1"].loc_rib, lfib.ftn, True).routes


# ---------------------------------------------------------------- tshark


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_the_6pe_updates(tmp_path):
    sim = Simulation(load_topology(SIXPE))
    pcap = Pcap()
    streams: dict[tuple[str, int], Stream] = {}
    perform = sim._perform_bgp

    def spy(router: str, actions: list) -> None:
        for a in actions:
            if isinstance(a, ev.TcpSend):
                pipe = sim._bgp_pipes.get((router, a.conn))
                if pipe is not None:
                    peer, pconn, local, remote = pipe
                    cli = (router, a.conn) if a.conn > 0 else (peer, pconn)
                    st = streams.get(cli)
                    if st is None:
                        c, sv = (local, remote) if a.conn > 0 else (remote, local)
                        st = streams[cli] = Stream((c, 30000 + cli[1]), (sv, 179))
                        pcap.handshake(sim.now, st)
                    pcap.send(sim.now, st, a.conn > 0, a.data)
        perform(router, actions)

    sim._perform_bgp = spy  # type: ignore[method-assign]
    assert sim.run(max_time=120).converged
    sim.router_stop("pe1")  # pe1's routes withdrawn (MP_UNREACH) only from pe2's view
    sim.advance(1)
    path = tmp_path / "6pe.pcap"
    pcap.write(path)
    frames = tshark(path)
    assert not [d.problems for d in frames if d.problems]
    f: dict[str, set[str]] = defaultdict(set)
    for d in frames:
        for k, v in d.fields.items():
            f[k] |= set(v)
    assert {"2001:db8:1::", "2001:db8:2::"} <= f["bgp.mp_reach_nlri_ipv6_prefix"]
    assert {"4000 (bottom)", "2 (bottom)"} <= f["bgp.label_stack"]
    assert f["bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv6"] >= {"::ffff:10.255.0.1",
                                                                        "::ffff:10.255.0.4"}
    caps = f["bgp.cap.mp.afi"], f["bgp.cap.mp.safi"]
    assert "2" in caps[0] and "4" in caps[1]  # RFC 4760 capability for AFI 2 / SAFI 4


def test_config_defaults_and_errors():
    from bgp.config import from_topology
    from lsr.core.topology import TopologyError

    t = parse_topology(RR, "rr.yaml")
    assert IPV6_LABELLED in from_topology(t, "pe1").families
    plain = parse_topology(RR.replace("      subnet6: auto\n", ""), "rr.yaml")
    assert IPV6_LABELLED not in from_topology(plain, "pe1").families  # no IPv6, no 6PE
    assert not sixpe.enabled(plain, "pe1", from_topology(plain, "pe1").families)
    with pytest.raises(TopologyError, match="ipv6_explicit_null must be true or false"):
        parse_topology(RR.replace("pe1: {}", "pe1: {ipv6_explicit_null: 2}"), "rr.yaml")


def test_cli_bgp_ipv6_view():
    from click.testing import CliRunner

    from lsr.cli import main

    res = CliRunner().invoke(main, ["sim", "bgp", str(SIXPE), "pe1", "ipv6", "--json"])
    assert res.exit_code == 0, res.output
    import json

    routes = json.loads(res.output)["routers"]["pe1"]["routes"]
    assert [(r["prefix"], r["next_hop"], r["label"], r["from"]) for r in routes] == [
        ("2001:db8:1::/64", "::ffff:10.255.0.1", 2, "local"),
        ("2001:db8:2::/64", "::ffff:10.255.0.4", 4000, "pe2")]


def test_validate_json_names_the_6pe_failure() -> None:
    """A core link down partitions the line: the BGP session pe1-pe2 is down, so each PE
    lacks the other's IPv6 prefix; `lsr validate --json` names the prefix and why."""
    import json

    from click.testing import CliRunner

    from lsr.cli import main

    r = CliRunner().invoke(main, ["validate", str(SIXPE), "--down", "p1-p2",
                                  "--json"])
    assert r.exit_code == 1, r.output
    rows = [x for x in json.loads(r.output)["results"] if "6pe" in x["check"]]
    assert {"check": "invariant 6pe-routes", "status": "fail",
            "detail": "pe1 2001:db8:2::/64: no BGP route: pe2's loopback 10.255.0.4 is "
                      "unreachable (no IGP route), so the BGP session pe1-pe2 is down"} in rows
    assert any(x["detail"].startswith("ce2 -> ce1 (IPv6, 2001:db8:1::1): dropped at pe2 "
                                      "(no-route)") for x in rows), rows


@pytest.mark.parametrize("old,new,detail", [
    # both ends passive: the session never comes up (the core is fine)
    ("    pe1: {ipv6_explicit_null: true}\n    pe2: {}",
     "    pe1: {ipv6_explicit_null: true, passive: true}\n    pe2: {passive: true}",
     "pe1 2001:db8:2::/64: no BGP route: the BGP session pe1-pe2 is Active, not Established"),
    # a TCP MD5 key at one end only (RFC 2385): no SYN gets through, the session stays
    # down; the cause is named from the configs, as for LDP
    ("    pe1: {ipv6_explicit_null: true}\n    pe2: {}",
     "    pe1: {ipv6_explicit_null: true, passwords: {pe2: sesame}}\n    pe2: {}",
     "pe1 2001:db8:2::/64: no BGP route: the BGP session pe1-pe2 is not Established: TCP MD5 "
     "password on pe1 only"),
    # two different keys: the same, from pe2's side
    ("    pe1: {ipv6_explicit_null: true}\n    pe2: {}",
     "    pe1: {ipv6_explicit_null: true, passwords: {pe2: sesame}}\n"
     "    pe2: {passwords: {pe1: other}}",
     "pe2 2001:db8:1::/64: no BGP route: the BGP session pe2-pe1 is not Established: TCP MD5 "
     "passwords differ on pe1 and pe2"),
    # LDP down between pe1 and p1: BGP has the route, but no LSP carries it
    ("    pe1: {loopback: 10.255.0.1}",
     "    pe1: {loopback: 10.255.0.1, ldp: {passwords: {p1: sesame}}}",
     "pe1 2001:db8:2::/64: BGP route from pe2 unusable: no LSP to 10.255.0.4 (RFC 4798 §3: "
     "no unlabelled IPv6 in the core)"),
])
def test_validate_names_a_missing_6pe_route(tmp_path: Path, old: str, new: str,
                                            detail: str) -> None:
    import json

    from click.testing import CliRunner

    from lsr.cli import main

    text = SIXPE.read_text()
    assert old in text
    f = tmp_path / "6pe.yaml"
    f.write_text(text.replace(old, new))
    r = CliRunner().invoke(main, ["validate", str(f), "--json"])
    assert r.exit_code == 1, r.output
    rows = json.loads(r.output)["results"]
    assert {"check": "invariant 6pe-routes", "status": "fail", "detail": detail} in rows, rows


def test_a_customer_port_down_withdraws_its_ipv6_subnet_and_a_restart_exports_again():
    """pe1's IPv6 port down: pe1 withdraws 2001:db8:1::/64 (RFC 4271 §9.1.3: no longer a
    route to originate), pe2 loses it; up: back. pe1 stopped and started: it originates
    it again, and both PEs' tables are those from before."""
    from bgp import views
    from bgp.nlri import IPV6_LABELLED
    from lsr.core.topology import load_topology
    from lsr.sim import Simulation
    from tests.conftest import TOPOLOGIES

    t = load_topology(TOPOLOGIES / "6pe.yaml")
    s = Simulation(t)
    s.run(quiet=s.quiet_time())

    def prefixes(r: str) -> set[str]:
        return {x["prefix"] for x in views.routes(s.bgp[r], IPV6_LABELLED)}

    both = {"2001:db8:1::/64", "2001:db8:2::/64"}
    assert prefixes("pe2") == both
    before = s.lfib_json()
    i = t.find_link("ce1", "pe1").index
    s.link_down(i)
    s.run(quiet=s.quiet_time())
    assert prefixes("pe2") == prefixes("pe1") == {"2001:db8:2::/64"}
    s.link_up(i)
    s.run(quiet=s.quiet_time())
    assert prefixes("pe2") == both and s.lfib_json() == before
    s.router_stop("pe1")
    s.run(quiet=s.quiet_time())
    assert prefixes("pe2") == {"2001:db8:2::/64"}
    s.router_start("pe1")
    s.run(quiet=s.quiet_time())
    assert prefixes("pe2") == both and s.lfib_json() == before


def test_validate_with_a_customer_port_down_says_the_site_is_cut_off():
    """`lsr validate 6pe.yaml --down ce1-pe1` (simulator and reference alike): pe1
    withdrew ce1's subnet, so no 6PE row fails for it and the reachability row names
    ce1 cut off; the user's own ping expectation fails, saying where it dropped."""
    import json

    from click.testing import CliRunner

    from lsr.cli import main
    from tests.conftest import TOPOLOGIES

    for extra in ([], ["--reference"]):
        r = CliRunner().invoke(main, ["validate", str(TOPOLOGIES / "6pe.yaml"), "--down",
                                      "ce1-pe1", "--json", *extra])
        rows = json.loads(r.stdout)["results"]
        six = {x["check"]: x for x in rows if "6pe" in x["check"] or "sixpe" in x["check"]}
        assert len(six) == 3 and all(x["status"] == "pass" for x in six.values()), six
        assert six["invariant 6pe-reachability"]["detail"].endswith(
            "; ce1 cut off (link ce1-pe1 down)")
        (bad,) = [x for x in rows if x["status"] == "fail"]
        assert bad["check"].startswith("expect[1] ping ce1 -> ce2")
        assert "link ce1-pe1 down" in bad["detail"]

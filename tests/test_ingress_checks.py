"""What a router refuses at its door (forwarding.plane): labelled frames on a customer port
(MPLS input only where LDP runs), VLAN-tagged frames, martian addresses (RFC 1812 §5.3.7);
and the accounting rule that every frame ends in exactly one counted outcome."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarding.afpacket import TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID, with_vlan_tag
from forwarding.ioloop import FastPath
from forwarding.labelops import MAX_LABEL, encode_stack
from forwarding.plane import Dataplane, Deliver, Drop, DropReason, Forward, decide
from forwarding.tables import RouterTables, martian_destination, martian_source
from lsr.core.igp import Igp
from lsr.core.topology import load_topology, parse_topology
from tests.conftest import BUNDLED, TOPOLOGIES
from tests.fwd_helpers import all_tables, ilm_label, ip_frame, line4, mpls_frame, udp
from tests.test_ioloop import check, rx_ring, tx_ring

CE1, CE2 = "192.168.1.1", "192.168.2.2"  # ce1, ce2 (pe1 is 192.168.1.2)


def outcomes(t: RouterTables) -> int:
    """Frames the router decided on, by its counters: forwarded + delivered + drops."""
    return t.forwarded() + t.delivered + sum(t.drops.values())


# ---------------------------------------------------------------- MPLS input


def test_ldp_interfaces_are_the_router_links() -> None:
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    assert topo.ldp_interfaces("pe1") == ("eth2", "eth3")  # eth1: ce1's link
    assert topo.ldp_interfaces("p1") == ("eth1", "eth2")
    t = RouterTables.build(topo, "pe1", Igp(topo).rib("pe1"))
    assert t.mpls_input == {"eth2", "eth3"} and set(t.mpls_mac) == {"eth2", "eth3"}
    with pytest.raises(ValueError, match="no interface eth9"):
        t.set_mpls_input(["eth9"])


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_sim_and_lab_accept_labels_on_the_same_interfaces(path) -> None:
    """The simulator's and teaching views' tables (build_all: the topology's default) and a
    lab router's (lsr.lab.node passes Topology.ldp_interfaces, where it sends Hellos) agree:
    labels are accepted on router links, never on host links."""
    from forwarding.tables import build_all

    topo = load_topology(path)
    igp = Igp(topo)
    tables = build_all(topo, igp.ribs(), {})
    for r in topo.routers:
        links = {n for n, i in r.interfaces.items() if topo.nodes[i.peer_node].is_router}
        assert tables[r.name].mpls_input == links == set(topo.ldp_interfaces(r.name))


def test_frr_ldpd_and_frr_dataplane_use_the_same_interfaces(tmp_path) -> None:
    """An FRR node: ldpd.conf enables LDP on exactly the interfaces our dataplane (frrplane)
    accepts labelled frames on -- here f1 is a PE with a host on eth0."""
    from lsr.lab import frr
    from lsr.lab.frrplane import FrrPlane

    topo = parse_topology("""
name: frrpe
topology:
  nodes:
    ce1: {kind: host}
    f1: {kind: frr, loopback: 10.255.0.1}
    pe2: {loopback: 10.255.0.2}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, f1:eth0]
    - endpoints: [f1:eth1, pe2:eth2]
    - endpoints: [pe2:eth1, ce2:eth0]
""", "frrpe")
    conf = frr.render(topo, "f1", tmp_path)["ldpd.conf"]
    ldpd_ifs = tuple(line.split()[1] for line in conf.splitlines()
                     if line.strip().startswith("interface "))
    assert ldpd_ifs == topo.ldp_interfaces("f1") == ("eth1",)
    plane = FrrPlane("frrpe", topo, "f1")
    assert plane.tables.mpls_input == {"eth1"}

    class Port:  # one labelled frame from ce1, one from pe2 (unknown label): both counted
        def recv_batch(self, limit: int) -> list[bytes]:
            return [frames.pop()] if frames else []

    t = plane.tables
    frames = [mpls_frame(t, "eth0", (1234,), udp(CE1, CE2))]
    plane._frames("eth0", Port())
    assert t.drops["mpls-input-disabled"] == 1
    frames = [mpls_frame(t, "eth1", (1234,), udp(CE1, CE2))]
    plane._frames("eth1", Port())
    assert t.drops["no-ilm-entry"] == 1 and t.drops["mpls-input-disabled"] == 1


def _host_port_stacks(t: RouterTables, rnd: random.Random) -> list[tuple[int, ...]]:
    """Every label of the ILM, reserved labels, random labels and multi-label stacks."""
    ilm = sorted(t.ilm)
    stacks = [(lbl,) for lbl in ilm] + [(lbl,) for lbl in range(16)]
    stacks += [(rnd.randint(16, MAX_LABEL),) for _ in range(40)]
    stacks += [tuple(rnd.choice(ilm) for _ in range(rnd.randint(2, 5))) for _ in range(40)]
    stacks += [(0, ilm[0]), (ilm[0], 0), (1, ilm[0])]
    return stacks


def test_labelled_frames_from_a_host_are_never_switched() -> None:
    """pe1's host port (eth1): every label pe1 would switch on a core port is dropped there,
    MPLS_INPUT_DISABLED, by decide, by the fast path and by the ring fast path."""
    rnd = random.Random(21)
    tabs = all_tables(line4())
    pe1 = tabs["pe1"]
    stacks = _host_port_stacks(pe1, rnd)
    pkt = udp(CE1, "10.255.0.4")  # pe2's loopback: what a host would try to reach
    frames = [mpls_frame(pe1, "eth1", s, pkt, ttl=rnd.choice((1, 2, 64, 255))) for s in stacks]
    for f in frames:
        r = decide(f, "eth1", pe1)
        assert isinstance(r, Drop) and r.reason is DropReason.MPLS_INPUT_DISABLED and not r.replies
    assert pe1.drops["mpls-input-disabled"] == len(frames) == outcomes(pe1)
    fresh = all_tables(line4())["pe1"]
    dp = Dataplane(fresh)
    assert all(dp.process(f, "eth1") == [] for f in frames)
    assert fresh.drops["mpls-input-disabled"] == len(frames) == outcomes(fresh)
    # the ring fast path (scalar and vector) hands them all to the general path
    for k in range(0, len(frames), 60):  # (a test ring holds 64 frames)
        assert check("pe1", "eth1", frames[k:k + 60]) == 0
    ring_t = all_tables(line4())["pe1"]
    fp = FastPath(ring_t, {n: tx_ring() for n in ring_t.interfaces}, vector_min=1)
    got, fwd, slow = fp.mpls(rx_ring(frames[:64]), ring_t.interfaces["eth1"].mac, 64)
    assert (got, fwd, len(slow)) == (64, 0, 64)
    # the same labels on a core port are switched: the check is per interface
    core = all_tables(line4())["pe1"]
    lbl = ilm_label(core, "10.255.0.4/32")
    assert isinstance(decide(mpls_frame(core, "eth2", (lbl,), pkt), "eth2", core), Forward)


def test_mpls_input_is_configuration() -> None:
    """A router told to accept labels on its host port (set_mpls_input) does switch them."""
    pe1 = all_tables(line4())["pe1"]
    lbl = ilm_label(pe1, "10.255.0.4/32")
    f = mpls_frame(pe1, "eth1", (lbl,), udp(CE1, "10.255.0.4"))
    assert decide(f, "eth1", pe1).reason is DropReason.MPLS_INPUT_DISABLED
    pe1.set_mpls_input(["eth1", "eth2"])
    assert isinstance(decide(f, "eth1", pe1), Forward)
    assert Dataplane(pe1).process(f, "eth1")[0][0] == "eth2"
    pe1.set_mpls_input(["eth2"])
    assert Dataplane(pe1).process(f, "eth1") == []


# ---------------------------------------------------------------- VLAN tags


@pytest.mark.parametrize("tpid", [0x8100, 0x88A8, 0x9100])
@pytest.mark.parametrize("inner", ["ip", "mpls"])
def test_vlan_tagged_frames_are_dropped(tpid: int, inner: str) -> None:
    """A tagged frame is never forwarded as if untagged (router ports are untagged)."""
    tabs = all_tables(line4())
    t, in_if = (tabs["pe1"], "eth1") if inner == "ip" else (tabs["p1"], "eth1")
    plain = (ip_frame(t, in_if, udp(CE1, CE2)) if inner == "ip" else
             mpls_frame(t, in_if, (ilm_label(t, "192.168.2.0/24"),), udp(CE1, CE2)))
    assert isinstance(decide(plain, in_if, t), Forward)
    tagged = plain[:12] + struct.pack("!HH", tpid, 0x2005) + plain[12:]  # PCP 1, VID 5
    r = decide(tagged, in_if, t)
    assert isinstance(r, Drop) and r.reason is DropReason.VLAN_TAGGED and "VLAN 5" in r.detail
    assert Dataplane(t).process(tagged, in_if) == []
    assert t.drops["vlan-tagged"] == 2


def test_the_tag_the_kernel_took_off_is_put_back() -> None:
    f = bytes(range(12)) + b"\x08\x00" + bytes(20)
    st_ = TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID
    assert with_vlan_tag(f, st_, 0x2005, 0x88A8) == f[:12] + b"\x88\xa8\x20\x05" + f[12:]
    assert with_vlan_tag(f, TP_STATUS_VLAN_VALID, 7, 0) == f[:12] + b"\x81\x00\x00\x07" + f[12:]
    assert with_vlan_tag(f, 0, 7, 0x8100) == f  # no tag
    assert with_vlan_tag(f, st_, 0xE000, 0x8100) == f  # priority tag (VID 0): untagged


# ---------------------------------------------------------------- martians


MARTIAN_SOURCES = ["0.0.0.0", "0.1.2.3", "127.0.0.1", "127.9.9.9", "224.0.0.5", "239.255.0.1",
                   "240.0.0.1", "255.255.255.255"]
MARTIAN_DESTINATIONS = ["0.0.0.0", "0.0.0.1", "127.0.0.1", "240.0.0.1", "254.1.1.1"]


def test_martian_predicates() -> None:
    from ipaddress import IPv4Address

    for a in MARTIAN_SOURCES:
        assert martian_source(int(IPv4Address(a))), a
    for a in MARTIAN_DESTINATIONS:
        assert martian_destination(int(IPv4Address(a))), a
    for a in ("1.0.0.0", "126.255.255.255", "128.0.0.1", "192.168.1.2", "223.255.255.255"):
        assert not martian_source(int(IPv4Address(a))) and not martian_destination(int(IPv4Address(a)))
    assert not martian_destination(int(IPv4Address("224.0.0.5")))  # delivered, never routed


@pytest.mark.parametrize("src", MARTIAN_SOURCES)
def test_martian_source_is_not_forwarded(src: str) -> None:
    tabs = all_tables(line4())
    pe1, pe2 = tabs["pe1"], tabs["pe2"]
    for t, in_if, dst in ((pe1, "eth1", "10.255.0.4"), (pe1, "eth1", CE2), (pe2, "eth2", CE2)):
        r = decide(ip_frame(t, in_if, udp(src, dst)), in_if, t)
        assert isinstance(r, Drop) and r.reason is DropReason.MARTIAN_SOURCE and not r.replies
        assert Dataplane(t).process(ip_frame(t, in_if, udp(src, dst, ttl=1)), in_if) == []
    assert pe1.drops["martian-source"] == 4 and pe2.drops["martian-source"] == 2
    # for the router itself: delivered (its kernel judges those)
    assert isinstance(decide(ip_frame(pe1, "eth1", udp(src, "192.168.1.2")), "eth1", pe1), Deliver)
    # the ring fast path (scalar, vector) forwards none of them
    frames = [ip_frame(pe1, "eth1", udp(src, d)) for d in ("10.255.0.4", CE2, "10.255.0.4")]
    assert check("pe1", "eth1", frames, mpls=False) == 0


@pytest.mark.parametrize("dst", MARTIAN_DESTINATIONS)
def test_martian_destination_is_not_forwarded(dst: str) -> None:
    pe1 = all_tables(line4())["pe1"]
    r = decide(ip_frame(pe1, "eth1", udp(CE1, dst)), "eth1", pe1)
    assert isinstance(r, Drop) and r.reason is DropReason.MARTIAN_DESTINATION
    assert pe1.lookup(int.from_bytes(bytes(int(x) for x in dst.split(".")), "big")) is None
    assert check("pe1", "eth1", [ip_frame(pe1, "eth1", udp(CE1, dst))] * 3, mpls=False) == 0


def test_martian_after_an_explicit_null_pop() -> None:
    """The egress forwards on the IPv4 header after popping explicit null: checked there."""
    opts = {"pe2": "ldp: {explicit_null: true}"}
    tabs = all_tables(line4(**opts))
    pe2 = tabs["pe2"]
    good = mpls_frame(pe2, "eth2", (0,), udp(CE1, CE2))
    assert isinstance(decide(good, "eth2", pe2), Forward)
    bad = mpls_frame(pe2, "eth2", (0,), udp("127.0.0.1", CE2))
    assert decide(bad, "eth2", pe2).reason is DropReason.MARTIAN_SOURCE


def test_ipsec_outbound_leaves_martians_to_the_forwarding_plane() -> None:
    """The IPsec stage at a PE does not seal a martian into ESP (it would leave the PE)."""
    from forwarding.ipsec.dataplane import IpsecStage

    class Engine:  # any SPD lookup would be a failure: martians are refused before it
        class spd:  # noqa: N801
            @staticmethod
            def lookup(*a):
                raise AssertionError("SPD looked up for a martian")

    pe1 = all_tables(line4())["pe1"]
    stage = IpsecStage(Engine(), pe1, ["eth1"])
    for src, dst in (("127.0.0.1", CE2), ("0.0.0.0", CE2), ("224.0.0.1", CE2), (CE1, "0.0.0.7")):
        assert stage.frame(ip_frame(pe1, "eth1", udp(src, dst)), "eth1") is None


# ---------------------------------------------------------------- one outcome per frame

_ETHERTYPES = [0x0800, 0x8847, 0x8848, 0x86DD, 0x0806, 0x8100, 0x88A8, 0x88CC, 0x0000, 0xFFFF]


@st.composite
def frames(draw) -> tuple[str, bytes]:
    """(in_if, frame): valid, nearly valid and junk frames for pe1 or its host port."""
    pe1 = T_LINE4["pe1"]
    in_if = draw(st.sampled_from(["eth1", "eth2", "eth9"]))
    i = pe1.interfaces["eth1" if in_if == "eth9" else in_if]
    kind = draw(st.sampled_from(["junk", "eth", "ip", "mpls"]))
    if kind == "junk":
        return in_if, draw(st.binary(max_size=80))
    dmac = draw(st.sampled_from([i.mac, b"\xff" * 6, b"\x01\x00\x5e\x00\x00\x05", b"\x02" * 6]))
    if kind == "eth":
        et = draw(st.sampled_from(_ETHERTYPES))
        return in_if, dmac + i.peer_mac + et.to_bytes(2, "big") + draw(st.binary(max_size=60))
    addrs = st.sampled_from([CE1, CE2, "10.255.0.4", "10.255.0.1", "127.0.0.1", "0.0.0.0",
                             "224.0.0.5", "255.255.255.255", "240.0.0.1", "192.168.1.255"])
    pkt = udp(draw(addrs), draw(addrs), ttl=draw(st.sampled_from([0, 1, 2, 64])),
              data=bytes(draw(st.sampled_from([5, 1600]))), df=draw(st.booleans()))
    cut = draw(st.sampled_from([None, None, 10, 30]))
    if kind == "ip":
        return in_if, (dmac + i.peer_mac + b"\x08\x00" + pkt)[:cut]
    labels = draw(st.lists(st.sampled_from([0, 1, 3, 7, 99, *pe1.ilm]), min_size=1, max_size=3))
    stack = encode_stack(tuple(labels), 0, draw(st.sampled_from([1, 2, 64])))
    return in_if, (dmac + i.peer_mac + b"\x88\x47" + stack + pkt)[:cut]


T_LINE4 = all_tables(line4(mtu1=600))


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(frames(), min_size=1, max_size=40))
def test_every_frame_has_exactly_one_counted_outcome(batch: list[tuple[str, bytes]]) -> None:
    """forwarded + delivered + drops == frames seen, through decide and through the fast
    path (fragments count once: fragmentation adds frames, not outcomes)."""
    a, b = all_tables(line4(mtu1=600))["pe1"], all_tables(line4(mtu1=600))["pe1"]
    dp = Dataplane(b)
    for in_if, f in batch:
        decide(f, in_if, a)
        dp.process(f, in_if)
    assert outcomes(a) == outcomes(b) == len(batch)
    assert a.drops == b.drops and a.delivered == b.delivered


def test_counters_json_has_forwarded() -> None:
    pe1 = all_tables(line4(mtu1=600))["pe1"]
    big = ip_frame(pe1, "eth1", udp(CE1, CE2, data=bytes(1400)))  # 3 fragments on eth2
    r = decide(big, "eth1", pe1)
    assert isinstance(r, Forward) and len(r.frames) == 3
    c = pe1.counters_json()
    assert c["forwarded"] == 1 and pe1.fragments == 2 and outcomes(pe1) == 1

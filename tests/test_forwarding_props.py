"""Property tests (hypothesis) for label operations and the forwarding plane."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forwarding.labelops import (
    MAX_LABEL,
    checksum16,
    encode_stack,
    ip_checksum,
    ip_set_ttl,
    parse_stack,
    pop,
    push,
)
from forwarding.plane import Dataplane, Deliver, Drop, Forward, decide
from tests.fwd_helpers import all_tables, ilm_label, ip, ip_frame, line4, mpls_frame

FEC2 = "192.168.2.0/24"
CE1, CE2 = "192.168.1.1", "192.168.2.2"
TOPO = line4()
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

labels = st.integers(min_value=16, max_value=MAX_LABEL)


def fresh():
    return all_tables(TOPO)


T0 = fresh()
P1_IN = ilm_label(T0["p1"], FEC2)
P2_IN = ilm_label(T0["p2"], FEC2)


def one_s_bit(frame: bytes) -> bool:
    entries, _ = parse_stack(frame, 14)
    return [e.s for e in entries].count(1) == 1 and entries[-1].s == 1


def ip_checksums_ok(frame: bytes) -> bool:
    off = 14
    if frame[12:14] == b"\x88\x47":
        off = parse_stack(frame, 14)[1]
    ihl = (frame[off] & 0x0F) * 4
    return checksum16(frame[off:off + ihl]) == 0


def outputs(r):
    if isinstance(r, Forward):
        return list(r.frames)
    if isinstance(r, Drop):
        return [x.frame for x in r.replies]
    return []


@SETTINGS
@given(st.binary(min_size=0, max_size=200), st.lists(labels, min_size=1, max_size=6),
       st.integers(0, 7), st.integers(0, 255))
def test_push_then_pop_restores(payload, stack, tc, ttl):
    frame = b"\xaa" * 12 + b"\x08\x00" + payload
    out = push(frame, 14, stack, tc, ttl)
    entries, off = parse_stack(out, 14)
    assert [e.label for e in entries] == stack and off == 14 + 4 * len(stack)
    assert [e.s for e in entries].count(1) == 1
    buf = out
    for lbl in stack:
        e, buf = pop(buf, 14)
        assert e.label == lbl and e.tc == tc and e.ttl == ttl
    assert bytes(buf) == frame


@SETTINGS
@given(st.binary(min_size=20, max_size=20), st.integers(0, 255))
def test_incremental_ttl_checksum(hdr, ttl):
    h = bytearray(hdr)
    h[0] = 0x45
    ip_checksum(h, 0)
    ip_set_ttl(h, 0, ttl)
    assert h[8] == ttl and checksum16(h) == 0


@SETTINGS
@given(st.binary(max_size=300), st.integers(2, 255), st.integers(0, 7))
def test_plane_push_then_pop_restores_ip(data, ttl, tos):
    """pe1 pushes, p1 swaps, p2 pops: the IP packet arrives intact but for TTL - 3 and checksum."""
    T = fresh()
    pkt = ip(CE1, CE2, ttl=255, proto=17, payload=struct.pack("!HHHH", 1, 2, 8 + len(data), 0)
             + data, tos=tos << 5)
    pkt = bytearray(pkt)
    ip_set_ttl(pkt, 0, ttl)
    pkt = bytes(pkt)
    frame, router, in_if = ip_frame(T["pe1"], "eth1", pkt), "pe1", "eth1"
    for step in range(3):
        r = decide(frame, in_if, T[router])
        if ttl - step <= 1:
            assert isinstance(r, Drop)
            return
        assert isinstance(r, Forward)
        if r.labels_out:
            assert one_s_bit(r.frame)
            assert (r.frame[16] >> 1) & 7 == tos  # TC from IP precedence, kept on swap
        i = T[router].interfaces[r.out_if]
        frame, router, in_if = r.frame, i.peer_node, i.peer_interface
    assert frame[12:14] == b"\x08\x00"
    out = frame[14:]
    want = bytearray(pkt)
    ip_set_ttl(want, 0, ttl - 3)
    assert out == bytes(want)


@SETTINGS
@given(st.lists(labels, min_size=0, max_size=5), st.integers(2, 255),
       st.lists(st.integers(0, 255), min_size=5, max_size=5), st.integers(0, 7))
def test_swap_keeps_depth_and_one_s_bit(below, top_ttl, ttls, tc):
    T = fresh()
    p1 = T["p1"]
    stack = (P1_IN, *below)
    f = mpls_frame(p1, "eth1", stack, ip(CE1, CE2), tc=tc, ttls=(top_ttl, *ttls[: len(below)]))
    r = decide(f, "eth1", p1)
    assert isinstance(r, Forward) and r.op == "swap"
    entries, _ = parse_stack(r.frame, 14)
    assert len(entries) == len(stack)
    assert one_s_bit(r.frame)
    assert entries[0].ttl == top_ttl - 1 and entries[0].tc == tc
    assert [e.label for e in entries[1:]] == list(below)
    assert Dataplane(p1).process(f, "eth1") == [(r.out_if, r.frame)]


@SETTINGS
@given(st.integers(1, 255), st.integers(1, 255), st.sampled_from(["uniform", "pipe", "short-pipe"]))
def test_ttl_never_increases_on_pop(label_ttl, ip_ttl, model):
    T = fresh()
    p2 = T["p2"]
    p2.ttl_model, p2.uniform = model, model == "uniform"
    f = mpls_frame(p2, "eth1", (P2_IN,), ip(CE1, CE2, ttl=ip_ttl), ttl=label_ttl)
    r = decide(f, "eth1", p2)
    if label_ttl <= 1:
        assert isinstance(r, Drop)
        return
    assert isinstance(r, Forward)
    out_ttl = r.frame[14 + 8]
    assert out_ttl <= ip_ttl
    assert out_ttl == (min(ip_ttl, label_ttl - 1) if model == "uniform" else ip_ttl)
    assert ip_checksums_ok(r.frame)
    assert Dataplane(p2).process(f, "eth1") == [(r.out_if, r.frame)]


@SETTINGS
@given(st.integers(1, 255), st.integers(1, 255))
def test_egress_explicit_null_never_increases(label_ttl, ip_ttl):
    T = fresh()
    pe2 = T["pe2"]
    r = decide(mpls_frame(pe2, "eth2", (0,), ip(CE1, CE2, ttl=ip_ttl), ttl=label_ttl), "eth2", pe2)
    if min(label_ttl, ip_ttl) <= 1:
        assert isinstance(r, Drop)
        return
    assert r.frame[14 + 8] == min(label_ttl, ip_ttl) - 1


ROUTERS = [(r, i) for r in ("pe1", "p1", "p2", "pe2") for i in T0[r].interfaces]


@SETTINGS
@given(st.binary(max_size=120))
def test_random_bytes_never_raise(data):
    for r, i in ROUTERS[:3]:
        res = decide(data, i, T0[r])
        assert isinstance(res, Drop | Deliver | Forward)
        Dataplane(T0[r]).process(data, i)


@SETTINGS
@given(st.sampled_from(ROUTERS), st.sampled_from([b"\x88\x47", b"\x08\x00", b"\x88\x48",
                                                  b"\x08\x06", b"\x86\xdd"]),
       st.binary(max_size=100), st.lists(st.integers(0, 40), max_size=3), st.booleans())
def test_random_payloads_behind_valid_headers(where, et, body, small_labels, known):
    """Random stacks (reserved labels included) and random IP-ish payloads: never raise,
    every produced frame is well formed, and the fast path agrees with decide."""
    r, i = where
    t = T0[r]
    ifi = t.interfaces[i]
    if et == b"\x88\x47" and (small_labels or known):
        stack = ((P1_IN,) if known else ()) + tuple(small_labels)
        body = encode_stack(stack, ttl=3) + body
    frame = ifi.mac + ifi.peer_mac + et + body
    res = decide(frame, i, t)
    assert isinstance(res, Drop | Deliver | Forward)
    for f in outputs(res):
        if f[12:14] == b"\x88\x47":
            assert one_s_bit(f)
    got = Dataplane(t).process(frame, i)
    if isinstance(res, Forward):
        assert got == [(res.out_if, x) for x in res.frames]


@SETTINGS
@given(st.integers(2, 255), st.binary(max_size=64), st.integers(0, 65535))
def test_ecmp_same_flow_same_path(ttl, data, sport):
    from lsr.core.topology import load_topology
    from tests.conftest import TOPOLOGIES

    global _DIAMOND
    try:
        T = _DIAMOND
    except NameError:
        T = _DIAMOND = all_tables(load_topology(TOPOLOGIES / "diamond.yaml"))
    pe1 = T["pe1"]
    u = struct.pack("!HHHH", sport, 53, 8 + len(data), 0) + data
    a = decide(ip_frame(pe1, "eth1", ip(CE1, CE2, ttl=ttl, payload=u)), "eth1", pe1)
    b = decide(ip_frame(pe1, "eth1", ip(CE1, CE2, ttl=64, payload=u[:8] + b"x" * 5)), "eth1", pe1)
    if isinstance(a, Forward):
        assert a.out_if == b.out_if


# ---------------------------------------------------------------- VRFs (RFC 4364)


def _vpn_tables():
    from forwarding.tables import build_all
    from lsr.core.igp import Igp
    from lsr.core.topology import load_topology
    from lsr.sim import simulate
    from tests.conftest import TOPOLOGIES

    topo = load_topology(TOPOLOGIES / "l3vpn.yaml")
    sim, _ = simulate(topo)
    return build_all(topo, Igp(topo).ribs(), sim.lfibs())


VPN = _vpn_tables()
VPN_BLIND = _vpn_tables()
for _t in VPN_BLIND.values():  # the global table emptied: no IGP route, no FTN entry
    _t.set_rib({})
    _t.set_ftn({})
addresses = st.one_of(
    st.integers(min_value=0, max_value=0xFFFFFFFF),
    st.sampled_from(["10.1.1.1", "10.1.2.1", "10.1.3.1", "10.255.0.2", "10.0.0.10",
                     "10.1.1.2", "10.1.2.2"]).map(lambda a: int.from_bytes(bytes(
                         int(x) for x in a.split(".")), "big")))


@SETTINGS
@given(dst=addresses, ttl=st.integers(min_value=1, max_value=255),
       port=st.sampled_from([("pe1", "eth1"), ("pe1", "eth2"), ("pe2", "eth1"), ("pe3", "eth2")]))
def test_vrf_port_never_consults_the_global_table(dst, ttl, port):
    """A frame from a VRF port gets the same decision whatever the global table holds."""
    router, ifname = port
    src = ".".join(str(b) for b in VPN[router].interfaces[ifname].peer_address.packed)
    d = ".".join(str((dst >> s) & 0xFF) for s in (24, 16, 8, 0))
    f = ip_frame(VPN[router], ifname, ip(src, d, ttl=ttl))
    a, b = decide(f, ifname, VPN[router]), decide(f, ifname, VPN_BLIND[router])
    assert type(a) is type(b)
    if isinstance(a, Forward):
        assert (a.out_if, a.frame, a.labels_out) == (b.out_if, b.frame, b.labels_out)
    elif isinstance(a, Drop):
        assert a.reason == b.reason and [r.frame for r in a.replies] == [r.frame for r in b.replies]
    # and the hot loop agrees with decide
    assert Dataplane(VPN[router]).process(f, ifname) == Dataplane(VPN_BLIND[router]).process(f, ifname)

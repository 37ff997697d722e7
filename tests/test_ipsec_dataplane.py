"""The pure IPsec stage of edge routers (forwarding.ipsec.dataplane), walked through line3.

ce1 -> pe1 (IpsecStage: ESP, FTN push) -> p1 (Dataplane: PHP) -> pe2 (IpsecStage:
decrypt, route) -> ce2, on the tables of tests/data/ipsec-line.yaml, no sockets.
"""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarding.ipsec import IpsecEngine
from forwarding.ipsec.dataplane import IpsecStage, udp_unwrap, udp_wrap
from forwarding.ipsec.esp import IPPROTO_ESP, check_ipv4
from forwarding.plane import Dataplane
from ike.config import ipsec_for_router
from lsr.core.topology import load_topology
from tests.fwd_helpers import all_tables, icmp_echo, ip, ip_frame, udp

TOPO = load_topology(Path(__file__).parent / "data" / "ipsec-line.yaml")
CE1, CE2 = "192.168.1.1", "192.168.2.2"


def _net():
    tables = all_tables(TOPO)
    audits: dict[str, list] = {"pe1": [], "pe2": []}
    stages = {}
    for r in ("pe1", "pe2"):
        spd, sad = ipsec_for_router(TOPO, r)
        stages[r] = IpsecStage(IpsecEngine(spd, sad), tables[r], ["eth1"], audit=audits[r].append)
    return tables, stages, audits


def _across(tables, stages, packet: bytes) -> list[tuple[str, bytes]]:
    """ce1 -> pe1 -> p1 -> pe2: the frames pe2 sends."""
    out = stages["pe1"].frame(ip_frame(tables["pe1"], "eth1", packet), "eth1")
    assert out, out
    res = []
    for out_if, f in out:
        assert out_if == "eth2" and f[12:14] == b"\x88\x47"  # labelled into the core
        for out_if2, f2 in Dataplane(tables["p1"]).process(f, "eth1"):
            assert out_if2 == "eth2" and f2[12:14] == b"\x08\x00"  # PHP: unlabelled ESP
            r = stages["pe2"].frame(f2, "eth2")
            assert r is not None
            res += r
    return res


def test_protect_label_switch_decrypt_forward():
    tables, stages, audits = _net()
    pkt = icmp_echo(CE1, CE2, ttl=64, data=b"secret payload")
    out = stages["pe1"].frame(ip_frame(tables["pe1"], "eth1", pkt), "eth1")
    (_, f), = out
    outer = f[18:]
    assert outer[9] == IPPROTO_ESP and outer[12:16] == bytes([10, 255, 0, 1]) \
        and outer[16:20] == bytes([10, 255, 0, 3])
    assert b"secret payload" not in f
    (out_if, frame), = _across(tables, stages, pkt)
    assert out_if == "eth1"  # towards ce2
    inner = frame[14:]
    assert inner[16:20] == bytes([192, 168, 2, 2]) and inner.endswith(b"secret payload")
    assert inner[8] == 62  # decremented by pe1 and by pe2, once each
    assert check_ipv4(inner) == (20, len(inner), 1)
    assert not audits["pe1"] and not audits["pe2"]


def test_bypass_and_discard():
    tables, stages, audits = _net()
    core = str(TOPO.nodes["p1"].interfaces["eth2"].address.ip)
    assert stages["pe1"].frame(ip_frame(tables["pe1"], "eth1", udp(CE1, core)), "eth1") is None
    assert stages["pe1"].frame(ip_frame(tables["pe1"], "eth1", udp(CE1, "10.255.0.3")), "eth1") == []
    assert audits["pe1"][-1].reason.value == "policy-discard"


def test_clear_packet_from_core_that_should_be_protected_is_dropped():
    tables, stages, audits = _net()
    f = ip_frame(tables["pe2"], "eth2", udp(CE1, CE2))
    assert stages["pe2"].frame(f, "eth2") == []
    assert audits["pe2"][-1].reason.value == "unprotected"


def test_df_too_big_gets_frag_needed_with_the_room_left():
    tables, stages, _ = _net()
    sa = stages["pe1"].engine.sad.lookup_outbound("pe1-pe2")
    room = stages["pe1"].room(sa)
    assert room == 1500 - 4 - sa.overhead  # one label, worst-case ESP overhead
    big = udp(CE1, CE2, data=bytes(1400), df=True)
    (out_if, f), = stages["pe1"].frame(ip_frame(tables["pe1"], "eth1", big), "eth1")
    assert out_if == "eth1" and f[14 + 9] == 1  # ICMP back to ce1
    icmp = f[34:]
    assert icmp[:2] == b"\x03\x04" and struct.unpack_from("!H", icmp, 6)[0] == room
    fits = udp(CE1, CE2, data=bytes(room - 28), df=True)
    out = stages["pe1"].frame(ip_frame(tables["pe1"], "eth1", fits), "eth1")
    assert len(out) == 1 and len(out[0][1]) - 18 <= 1500


def test_df_clear_is_fragmented_before_encryption():
    tables, stages, _ = _net()
    big = udp(CE1, CE2, data=bytes(range(256)) * 6)
    frames = _across(tables, stages, big)
    assert len(frames) == 2 and stages["pe1"].counters["inner_fragmented"] == 1
    a, b = (f[14:] for _, f in frames)
    assert a[6] & 0x20 and not b[6] & 0x20  # MF on the first fragment only
    assert a[20:] + b[20:] == big[20:]


def test_udp_encapsulation_and_ike_marker():
    tables, stages, _ = _net()
    stages["pe1"].udp_encap["pe1-pe2"] = (4500, 4500)
    out = stages["pe1"].frame(ip_frame(tables["pe1"], "eth1", udp(CE1, CE2)), "eth1")
    (_, f), = out
    outer = f[18:]
    assert outer[9] == 17 and outer[20:24] == b"\x11\x94\x11\x94" and outer[26:28] == b"\0\0"
    assert udp_wrap(udp_unwrap(outer, 20, len(outer))) == outer
    frames = _across(tables, stages, udp(CE1, CE2))
    assert len(frames) == 1 and stages["pe2"].counters["udp_esp_in"] == 1
    ike = udp("10.255.0.1", "10.255.0.3", 4500, 4500, data=bytes(4) + b"IKE...")
    assert stages["pe2"].frame(ip_frame(tables["pe2"], "eth2", ike), "eth2") is None  # the socket's


PE1_SITE, PE2_SITE = "192.168.1.2", "192.168.2.1"  # the edge routers' own site addresses


def test_kernel_routes_cover_the_remote_selectors_with_a_source_inside_the_local_one():
    _, stages, _ = _net()
    assert stages["pe1"].kernel_routes() == [("192.168.2.0/24", PE1_SITE)]
    assert stages["pe2"].kernel_routes() == [("192.168.1.0/24", PE2_SITE)]


def test_router_originated_packets_pass_the_spd():
    """RFC 4301 §5.1: pe1's own packet from its site address is sealed (no TTL decrement),
    crosses the core and opens at pe2; pe2's echo reply goes back sealed the same way."""
    tables, stages, audits = _net()
    (out_if, f), = stages["pe1"].originated(icmp_echo(PE1_SITE, CE2, ttl=64, data=b"own ping"))
    assert out_if == "eth2" and f[12:14] == b"\x88\x47" and f[18 + 9] == IPPROTO_ESP
    assert b"own ping" not in f
    (_, f2), = Dataplane(tables["p1"]).process(f, "eth1")
    (out_if, frame), = stages["pe2"].frame(f2, "eth2")
    assert out_if == "eth1" and frame[14 + 8] == 63  # pe2 forwards: one decrement, not two
    # pe2's kernel answers a ping from ce1 to its site address: sealed too
    (out_if, back), = stages["pe2"].originated(icmp_echo(PE2_SITE, CE1, data=b"own reply"))
    assert back[18 + 9] == IPPROTO_ESP and b"own reply" not in back
    assert stages["pe1"].counters["originated_protected"] == 1 and not audits["pe1"] + audits["pe2"]


def test_router_originated_bypass_discard_and_no_sa():
    tables, stages, audits = _net()
    core = "10.0.0.1"  # pe1's core address: outside every selector, so BYPASS (routed in clear)
    (out_if, f), = stages["pe1"].originated(udp(core, CE2))
    assert out_if == "eth2" and f[12:14] == b"\x88\x47" and f[18 + 9] == 17  # FTN push, clear
    assert stages["pe1"].originated(udp(PE1_SITE, "10.255.0.3")) == []  # pe1's DISCARD policy
    assert audits["pe1"][-1].reason.value == "policy-discard"
    sad = stages["pe1"].engine.sad
    sad.remove(sad.lookup_outbound("pe1-pe2"))
    assert stages["pe1"].originated(udp(PE1_SITE, CE2)) == []
    assert audits["pe1"][-1].reason.value == "no-sa"  # never in clear (RFC 4301 §5.1)
    assert stages["pe1"].originated(b"\x45junk") == []
    assert stages["pe1"].counters["originated_malformed"] == 1


def test_router_originated_too_big_teaches_our_own_stack_the_mtu():
    from forwarding.plane import LOCAL_IF

    _, stages, _ = _net()
    sa = stages["pe1"].engine.sad.lookup_outbound("pe1-pe2")
    room = stages["pe1"].room(sa)
    big = udp(PE1_SITE, CE2, data=bytes(1400), df=True)
    (out_if, icmp), = stages["pe1"].originated(big)
    assert out_if == LOCAL_IF and icmp[16:20] == bytes([192, 168, 1, 2])
    assert icmp[20:22] == b"\x03\x04" and struct.unpack_from("!H", icmp, 26)[0] == room
    assert len(stages["pe1"].originated(udp(PE1_SITE, CE2, data=bytes(1400)))) == 2  # DF clear


def test_inner_ttl_running_out_at_the_far_edge_gets_a_sealed_time_exceeded():
    """traceroute through the tunnel: the inner TTL ends at pe2, whose Time Exceeded (from its
    site address) goes back through the SPD, sealed, to ce1."""
    tables, stages, _ = _net()
    (_, f), = stages["pe1"].frame(ip_frame(tables["pe1"], "eth1", udp(CE1, CE2, ttl=2)), "eth1")
    (_, f2), = Dataplane(tables["p1"]).process(f, "eth1")
    (out_if, te), = stages["pe2"].frame(f2, "eth2")
    assert out_if == "eth2" and te[18 + 9] == IPPROTO_ESP  # back into the core, sealed
    assert stages["pe2"].counters["inner_ttl_expired"] == 1
    (_, te2), = Dataplane(tables["p1"]).process(te, "eth2")
    (out_if, back), = stages["pe1"].frame(te2, "eth2")
    icmp = back[14:]
    assert out_if == "eth1" and icmp[9] == 1 and icmp[20] == 11  # Time Exceeded to ce1
    assert icmp[12:16] == bytes([192, 168, 2, 1])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["eth1", "eth2"]), st.integers(0, 3))
def test_random_frames_never_raise(data, in_if, shape):
    tables, stages, _ = _net()
    if shape == 1:  # ESP to us with random contents
        data = ip("10.255.0.1", "10.255.0.3", proto=50, payload=data)
    elif shape == 2:  # ESP-in-UDP to us
        data = udp("10.255.0.1", "10.255.0.3", 4500, 4500, data=data)
    elif shape == 3:  # customer packet
        data = ip(CE2, CE1, proto=data[0] if data else 0, payload=data)
    for r in ("pe1", "pe2"):
        out = stages[r].frame(ip_frame(tables[r], in_if, data), in_if)
        assert out is None or isinstance(out, list)

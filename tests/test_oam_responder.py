"""RFC 8029 §4.4 responder decisions: egress, transit, no mapping, no label,
wrong label, downstream mapping mismatch, TLVs not understood, malformed."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsr.core.lfib import Lfib
from lsr.core.topology import load_topology, parse_topology
from lsr.oam.echo import (
    ALL_ROUTERS,
    DS_FLAG_I,
    Ddmap,
    DsLabel,
    EchoMessage,
    ErroredTlvs,
    InterfaceLabelStack,
    MessageType,
    Multipath,
    Pad,
    PadAction,
    RawTlv,
    ReplyMode,
    ReturnCode,
    multipath_range,
)
from lsr.oam.responder import decide, ingress_ddmaps, respond, respond_bytes, tables_from_topology
from lsr.oam.trace import echo_request
from lsr.oam.validate import reference_lfibs
from tests.conftest import TOPOLOGIES

PE1 = IPv4Network("10.255.0.1/32")


def setup(name: str, lfibs: dict[str, Lfib] | None = None, text: str | None = None):
    topo = parse_topology(text) if text else load_topology(TOPOLOGIES / f"{name}.yaml")
    lf = lfibs or reference_lfibs(topo)
    return topo, lf, {r.name: tables_from_topology(topo, r.name, lf[r.name]) for r in topo.routers}


def label_of(lfib: Lfib, fec: IPv4Network) -> int:
    (lbl,) = [e.in_label for e in lfib.ilm.values() if e.fec == fec]
    return lbl


def addr(topo, node: str, ifname: str) -> IPv4Address:
    return topo.interface(node, ifname).address.ip


# line3: pe1 -eth2--eth1- p1 -eth2--eth2- pe2; pe2's loopback 10.255.0.3
LINE_FEC = IPv4Network("10.255.0.3/32")


def test_egress_replies_3() -> None:
    topo, lf, t = setup("line3")
    req = echo_request(LINE_FEC, sequence=5, handle=77)
    reply = respond(t["pe2"], req, [], "eth2", received=(1, 2))
    assert reply is not None
    assert (reply.msg_type, reply.return_code, reply.return_subcode) == (MessageType.ECHO_REPLY, 3, 1)
    assert (reply.sender_handle, reply.sequence, reply.ts_received) == (77, 5, (1, 2))


def test_penultimate_hop_label_switched_with_php_ddmap() -> None:
    topo, lf, t = setup("line3")
    lbl = label_of(lf["p1"], LINE_FEC)
    req = echo_request(LINE_FEC, ddmap=Ddmap(addr(topo, "p1", "eth1"), addr(topo, "p1", "eth1"),
                                             labels=(DsLabel(lbl),)))
    reply = respond(t["p1"], req, [lbl], "eth1")
    assert (reply.return_code, reply.return_subcode) == (ReturnCode.LABEL_SWITCHED, 1)
    (dd,) = reply.ddmaps
    assert dd.downstream_address == addr(topo, "pe2", "eth2")
    assert dd.label_values == (3,)  # implicit-null: p1 pops
    assert dd.mtu == 1500


def test_transit_swap_ddmap_carries_next_label() -> None:
    topo, lf, t = setup("unequal")  # pe1 - p1 - p2 - pe2 (the cost-100 link is not used)
    fec = IPv4Network("10.255.0.4/32")
    lbl = label_of(lf["p1"], fec)
    reply = respond(t["p1"], echo_request(fec, ddmap=Ddmap()), [lbl], "eth1")
    assert reply.return_code == ReturnCode.LABEL_SWITCHED
    (dd,) = reply.ddmaps
    assert dd.label_values == (label_of(lf["p2"], fec),)
    assert dd.downstream_address == addr(topo, "p2", "eth1")


def test_untagged_label_is_switched_without_mpls_9() -> None:
    """p1 advertised its label but p2 has not mapped the FEC yet (p1 just restarted): the
    entry pops and sends IP on (ldp.lde untagged), RFC 8029's "label switched but no MPLS
    forwarding at stack-depth" (9)."""
    from lsr.core.lfib import IlmEntry

    topo, lf, _ = setup("unequal")
    fec = IPv4Network("10.255.0.4/32")
    lbl = label_of(lf["p1"], fec)
    e = lf["p1"].ilm[lbl]
    ilm = dict(lf["p1"].ilm)
    ilm[lbl] = IlmEntry(lbl, fec, tuple(replace(n, out_labels=(), op="untagged")
                                        for n in e.nexthops))
    t = tables_from_topology(topo, "p1", Lfib(dict(lf["p1"].ftn), ilm))
    d = decide(t, echo_request(fec, ddmap=Ddmap()), [lbl], "eth1")
    assert (d.return_code, d.subcode) == (ReturnCode.LABEL_SWITCHED_NO_MPLS, 1)


def test_ping_request_without_ddmap_gets_none() -> None:
    topo, lf, t = setup("line3")
    reply = respond(t["p1"], echo_request(LINE_FEC), [label_of(lf["p1"], LINE_FEC)], "eth1")
    assert reply.return_code == ReturnCode.LABEL_SWITCHED and reply.ddmaps == ()


def test_no_mapping_unlabelled_at_transit() -> None:
    topo, lf, t = setup("line3")
    d = decide(t["p1"], echo_request(LINE_FEC), [], "eth1")
    assert (d.return_code, d.subcode) == (ReturnCode.NO_MAPPING, 1)


def test_no_mapping_for_unknown_fec_with_v_flag() -> None:
    topo, lf, t = setup("line3")
    d = decide(t["p1"], echo_request(IPv4Network("10.9.9.9/32")), [label_of(lf["p1"], LINE_FEC)], "eth1")
    assert (d.return_code, d.subcode) == (ReturnCode.NO_MAPPING, 1)


def test_no_label_entry() -> None:
    topo, lf, t = setup("line3")
    reply = respond(t["p1"], echo_request(LINE_FEC), [999], "eth1")
    assert (reply.return_code, reply.return_subcode) == (ReturnCode.NO_LABEL_ENTRY, 1)


def test_mapping_is_not_the_given_label() -> None:
    topo, lf, t = setup("line3")
    other = label_of(lf["p1"], PE1)  # p1's label for pe1, used for pe2's FEC
    assert decide(t["p1"], echo_request(LINE_FEC), [other], "eth1").return_code == ReturnCode.NOT_GIVEN_LABEL
    # Without the V flag the FEC is not validated (§3, Global Flags).
    assert decide(t["p1"], echo_request(LINE_FEC, validate=False), [other], "eth1").return_code == \
        ReturnCode.LABEL_SWITCHED


def test_downstream_mapping_mismatch() -> None:
    topo, lf, t = setup("line3")
    lbl = label_of(lf["p1"], LINE_FEC)
    here = addr(topo, "p1", "eth1")
    wrong_addr = Ddmap(addr(topo, "pe1", "eth2"), addr(topo, "pe1", "eth2"), labels=(DsLabel(lbl),))
    wrong_label = Ddmap(here, here, labels=(DsLabel(lbl + 100),))
    for dd in (wrong_addr, wrong_label):
        d = decide(t["p1"], echo_request(LINE_FEC, ddmap=dd), [lbl], "eth1")
        assert (d.return_code, d.subcode) == (ReturnCode.DOWNSTREAM_MISMATCH, 1), d.reason
    # ALL-ROUTERS names no one: nothing to check.
    ok = Ddmap(ALL_ROUTERS, ALL_ROUTERS, labels=(DsLabel(lbl + 100),))
    assert decide(t["p1"], echo_request(LINE_FEC, ddmap=ok), [lbl], "eth1").return_code == 8
    # The egress expected implicit-null but still got a label: mismatch.
    to_pe2 = addr(topo, "pe2", "eth2")
    d = decide(t["pe2"], echo_request(LINE_FEC, ddmap=Ddmap(to_pe2, to_pe2, labels=(DsLabel(3),))), [], "eth2")
    assert d.return_code == ReturnCode.EGRESS


def test_tlv_not_understood_returns_errored_tlvs() -> None:
    topo, lf, t = setup("line3")
    req = echo_request(LINE_FEC)
    bad = replace(req, tlvs=req.tlvs + (RawTlv(99, b"abcd"), RawTlv(0x8099, b"opt!")))
    reply = respond(t["pe2"], bad, [], "eth2")
    assert reply.return_code == ReturnCode.TLV_NOT_UNDERSTOOD
    assert reply.find(ErroredTlvs) == [ErroredTlvs((RawTlv(99, b"abcd"),))]
    # An unknown optional TLV alone is ignored.
    opt = replace(req, tlvs=req.tlvs + (RawTlv(0x8099, b"opt!"),))
    assert respond(t["pe2"], opt, [], "eth2").return_code == ReturnCode.EGRESS


def test_malformed_request_gets_1_and_short_garbage_nothing() -> None:
    topo, lf, t = setup("line3")
    wire = bytearray(echo_request(LINE_FEC, sequence=9, handle=3).encode())
    wire[32 + 4 + 4 + 4] = 33  # prefix length 33
    reply = respond_bytes(t["pe2"], bytes(wire), [], "eth2")
    assert (reply.return_code, reply.sequence, reply.sender_handle) == (ReturnCode.MALFORMED_REQUEST, 9, 3)
    assert respond_bytes(t["pe2"], b"\x00\x01junk", [], "eth2") is None
    no_fec = EchoMessage(sequence=1).encode()
    assert respond_bytes(t["pe2"], no_fec, [], "eth2").return_code == ReturnCode.MALFORMED_REQUEST


def test_reply_mode_do_not_reply() -> None:
    topo, lf, t = setup("line3")
    assert respond(t["pe2"], echo_request(LINE_FEC, reply_mode=ReplyMode.NO_REPLY), [], "eth2") is None


def test_explicit_null_egress() -> None:
    text = (TOPOLOGIES / "line3.yaml").read_text().replace(
        "pe2: {loopback: 10.255.0.3}", "pe2: {loopback: 10.255.0.3, ldp: {explicit_null: true}}")
    topo, lf, t = setup("line3", text=text)
    (nh,) = lf["p1"].ilm[label_of(lf["p1"], LINE_FEC)].nexthops
    assert nh.out_labels == (0,)
    lbl = label_of(lf["p1"], LINE_FEC)
    reply = respond(t["p1"], echo_request(LINE_FEC, ddmap=Ddmap()), [lbl], "eth1")
    assert reply.ddmaps[0].label_values == (0,)
    assert respond(t["pe2"], echo_request(LINE_FEC, ddmap=reply.ddmaps[0]), [0], "eth2").return_code == 3


def test_pad_copied_and_interface_label_stack_on_request() -> None:
    topo, lf, t = setup("line3")
    lbl = label_of(lf["p1"], LINE_FEC)
    req = echo_request(LINE_FEC, ddmap=Ddmap(ds_flags=DS_FLAG_I))
    req = replace(req, tlvs=req.tlvs + (Pad(PadAction.COPY, b"xyz"), Pad(PadAction.DROP, b"abc")))
    reply = respond(t["p1"], req, [lbl], "eth1", label_ttls=[1])
    assert reply.find(Pad) == [Pad(PadAction.COPY, b"xyz")]
    (ils,) = reply.find(InterfaceLabelStack)
    assert ils.interface == addr(topo, "p1", "eth1")
    assert [(e.label, e.s, e.ttl) for e in ils.labels] == [(lbl, True, 1)]
    assert reply.ddmaps[0].ds_flags & DS_FLAG_I


def test_multipath_split_partitions_destinations() -> None:
    topo, lf, t = setup("diamond")
    fec = IPv4Network("10.255.0.4/32")
    dsts = multipath_range(32)
    maps = ingress_ddmaps(t["pe1"], fec, dsts)
    assert len(maps) == 2
    got = [set(m.multipath.addresses()) for m in maps]
    assert got[0] and got[1] and not got[0] & got[1] and got[0] | got[1] == set(dsts)
    # Transit with one next hop keeps the whole set it was given.
    lbl = label_of(lf["p1"], fec)
    req = echo_request(fec, ddmap=replace(maps[0], multipath=Multipath.bitmask(sorted(got[0]))))
    reply = respond(t["p1"], req, [lbl], "eth1")
    assert set(reply.ddmaps[0].multipath.addresses()) == got[0]


def test_a_request_naming_every_127_address_is_answered_for_a_bounded_subset() -> None:
    """8,000 ranges of all of 127/8 fit in one DDMAP's Multipath sub-TLV: 134 billion
    destinations to hash. The responder reads the first MAX_MULTIPATH_ADDRESSES (its
    answer describes that subset, §3.4.1.1.1) instead of stalling, or running out of
    memory, on one packet."""
    from lsr.oam.echo import MAX_MULTIPATH_ADDRESSES

    topo, lf, t = setup("diamond")
    fec = IPv4Network("10.255.0.4/32")
    whole = (IPv4Address("127.0.0.0"), IPv4Address("127.255.255.255"))
    mp = Multipath.ip_ranges([whole] * 8000)
    assert len(mp.addresses()) == MAX_MULTIPATH_ADDRESSES
    lbl = label_of(lf["p1"], fec)
    req = echo_request(fec, ddmap=Ddmap(multipath=mp))
    reply = respond(t["p1"], req, [lbl], "eth1")
    (d,) = reply.ddmaps
    covered = d.multipath.addresses()
    assert 0 < len(covered) <= MAX_MULTIPATH_ADDRESSES
    assert min(covered) == IPv4Address("127.0.0.0")


def test_responder_on_simulated_ldp_tables() -> None:
    from lsr.oam.validate import lfibs_from_json
    from lsr.sim import simulate

    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    sim, res = simulate(topo)
    assert res.converged
    topo, lf, t = setup("diamond", lfibs_from_json(sim.lfib_json()))
    fec = IPv4Network("10.255.0.4/32")
    assert respond(t["p2"], echo_request(fec, ddmap=Ddmap()), [label_of(lf["p2"], fec)], "eth1").return_code == 8
    assert respond(t["pe2"], echo_request(fec), [], "eth3").return_code == 3


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=120), st.lists(st.integers(0, 40), max_size=3))
def test_respond_bytes_never_raises(payload: bytes, labels: list[int]) -> None:
    topo, lf, t = _LINE
    out = respond_bytes(t["p1"], payload, labels, "eth1")
    assert out is None or out.msg_type == MessageType.ECHO_REPLY


_LINE = setup("line3")


@pytest.mark.parametrize("router", ["pe1", "p1"])
def test_unlabelled_at_non_egress_is_no_mapping(router: str) -> None:
    topo, lf, t = _LINE
    assert decide(t[router], echo_request(LINE_FEC), [], None).return_code == ReturnCode.NO_MAPPING

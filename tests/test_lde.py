"""Label Decision Engine with hand-fed RIBs and messages."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from ldp.lde import LabelAllocator, Lde
from ldp.messages import (
    Address,
    AddressWithdraw,
    LabelMapping,
    LabelRelease,
    LabelRequest,
    LabelWithdraw,
    PrefixFec,
    WildcardFec,
)
from lsr.core.igp import Nexthop, Route
from lsr.core.topology import LdpOptions

ME = IPv4Address("10.255.0.1")
P1, P2 = IPv4Address("10.255.0.2"), IPv4Address("10.255.0.3")
NH1, NH2 = IPv4Address("10.0.0.2"), IPv4Address("10.0.0.6")
N = IPv4Network


def rt(prefix: str, *nhs: tuple[str, str, IPv4Address], metric: int = 20) -> tuple:
    p = N(prefix)
    return p, Route(p, metric if nhs else 0, tuple(Nexthop(*x) for x in nhs))


def make(**opts):
    sent: list = []
    ids = iter(range(1, 10**6))
    lde = Lde(ME, (16, 100), LdpOptions(**opts), lambda pid, m: sent.append((pid, m)),
              lambda: next(ids))
    return lde, sent


RIB = dict([
    rt("10.255.0.1/32"),
    rt("10.255.0.4/32", ("p1", "eth1", NH1), ("p2", "eth2", NH2)),
    rt("10.255.0.2/32", ("p1", "eth1", NH1), metric=10),
    rt("10.9.0.0/16", ("p2", "eth2", NH2), metric=30),
])


def up(lde, pid, addr):
    lde.peer_up(pid, [ME])
    lde.receive(pid, Address(1, (pid, addr)))


def mapping(prefix, label):
    return LabelMapping(9, (PrefixFec(N(prefix)),), label)


def test_allocator_lowest_free():
    a = LabelAllocator(0, 20)
    assert [a.alloc() for _ in range(3)] == [16, 17, 18]
    a.free(17)
    assert a.alloc() == 17 and a.alloc() == 19


def test_local_bindings_sorted_and_egress_null():
    lde, _ = make()
    lde.rib_changed(RIB)
    lde.finish()
    assert lde.local == {N("10.9.0.0/16"): 16, N("10.255.0.1/32"): 3,
                         N("10.255.0.2/32"): 17, N("10.255.0.4/32"): 18}
    lde2, _ = make(explicit_null=True, fecs="loopbacks")
    lde2.rib_changed(RIB)
    lde2.finish()
    assert lde2.local[N("10.255.0.1/32")] == 0 and N("10.9.0.0/16") not in lde2.local


def test_ecmp_nhlfes_only_with_mappings():
    lde, sent = make()
    lde.rib_changed(RIB)
    lde.finish()
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    ads = [m for pid, m in sent if pid == P1 and isinstance(m, LabelMapping)]
    assert [(str(m.fec[0].prefix), m.label) for m in ads][:2] == [("10.9.0.0/16", 16),
                                                                 ("10.255.0.1/32", 3)]
    lde.receive(P1, mapping("10.255.0.4/32", 40))
    d = lde.finish()
    (ftn,) = d.ftn_set
    assert [(n.neighbor, n.out_labels) for n in ftn.nexthops] == [(str(P1), (40,))]
    lde.receive(P2, mapping("10.255.0.4/32", 3))
    d = lde.finish()
    (ftn,) = d.ftn_set
    assert [(n.interface, n.out_labels) for n in ftn.nexthops] == [("eth1", (40,)), ("eth2", ())]
    (ilm,) = d.ilm_set
    assert ilm.in_label == 18 and [n.op for n in ilm.nexthops] == ["swap", "pop"]
    # a mapping from a non-next-hop peer is kept (liberal) but not used
    lde.receive(P2, mapping("10.255.0.2/32", 55))
    assert lde.finish() is None
    assert lde.peers[P2].lib[N("10.255.0.2/32")] == 55


def test_fec_loss_one_withdraw_per_peer_and_label_hold():
    lde, sent = make()
    lde.rib_changed(RIB)
    lde.finish()
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.9.0.0/16", 3))
    lde.finish()
    sent.clear()
    rib = dict(RIB)
    del rib[N("10.9.0.0/16")]
    lde.rib_changed(rib)
    lde.finish()
    lde.rib_changed(rib)
    lde.finish()
    wd = [m for _, m in sent if isinstance(m, LabelWithdraw)]
    assert len(wd) == 1 and wd[0].label == 16
    # label 16 is not reused before the Release
    rib2 = dict(rib, **{})
    rib2.update([rt("10.8.0.0/16", ("p1", "eth1", NH1))])
    lde.rib_changed(rib2)
    lde.finish()
    assert lde.local[N("10.8.0.0/16")] == 19
    lde.receive(P1, LabelRelease(5, (PrefixFec(N("10.9.0.0/16")),), 16))
    assert lde.labels.alloc() == 16


def test_withdraw_answered_with_release_wildcard():
    lde, sent = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.4/32", 40))
    lde.receive(P1, mapping("10.255.0.2/32", 3))
    lde.finish()
    sent.clear()
    lde.receive(P1, LabelWithdraw(7, (WildcardFec(),)))
    d = lde.finish()
    assert [type(m) for _, m in sent] == [LabelRelease]
    assert not lde.peers[P1].lib and set(d.ftn_del) == {N("10.255.0.4/32"), N("10.255.0.2/32")}


def test_address_withdraw_unmaps_nexthop():
    lde, _ = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 3))
    lde.finish()
    assert N("10.255.0.2/32") in lde.lfib.ftn
    lde.receive(P1, AddressWithdraw(3, (NH1,)))
    d = lde.finish()
    assert d.ftn_del == (N("10.255.0.2/32"),)


def test_ordered_control_waits_for_downstream():
    lde, sent = make(control="ordered")
    lde.rib_changed(RIB)
    lde.finish()
    assert lde.local == {N("10.255.0.1/32"): 3}  # only egress
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    lde.receive(P1, mapping("10.255.0.2/32", 3))
    lde.finish()
    assert lde.local[N("10.255.0.2/32")] == 16
    assert any(isinstance(m, LabelMapping) and m.fec[0].prefix == N("10.255.0.2/32")
               for pid, m in sent if pid == P2)
    sent.clear()
    lde.receive(P1, LabelWithdraw(8, (PrefixFec(N("10.255.0.2/32")),), 3))
    lde.finish()
    assert N("10.255.0.2/32") not in lde.local
    assert sum(isinstance(m, LabelWithdraw) for pid, m in sent if pid == P2) == 1


def test_conservative_releases_and_rerequests():
    lde, sent = make(retention="conservative")
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    sent.clear()
    lde.receive(P2, mapping("10.255.0.2/32", 55))  # P2 is not the next hop
    assert N("10.255.0.2/32") not in lde.peers[P2].lib
    assert [type(m) for _, m in sent] == [LabelRelease]
    sent.clear()
    rib = dict(RIB)
    rib.update([rt("10.255.0.2/32", ("p2", "eth2", NH2))])
    lde.rib_changed(rib)
    assert [(pid, type(m)) for pid, m in sent] == [(P2, LabelRequest)]


def test_peer_down_clears_lib():
    lde, _ = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 3))
    lde.finish()
    lde.peer_down(P1)
    d = lde.finish()
    assert d.ftn_del == (N("10.255.0.2/32"),) and P1 not in lde.peers


def test_address_withdraw_hands_shared_address_to_other_peer():
    """Two peers list the same address; when one withdraws it (§3.5.6) the next hop
    maps to the other peer, not to nobody."""
    lde, _ = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    up(lde, P2, NH1)  # P2 also claims NH1 (last one wins the map)
    lde.receive(P1, mapping("10.255.0.2/32", 30))
    lde.receive(P2, mapping("10.255.0.2/32", 40))
    lde.finish()
    assert lde.lfib.ftn[N("10.255.0.2/32")].nexthops[0].out_labels == (40,)
    lde.receive(P2, AddressWithdraw(4, (NH1,)))
    d = lde.finish()
    (e,) = d.ftn_set
    assert e.nexthops[0].neighbor == str(P1) and e.nexthops[0].out_labels == (30,)
    lde.receive(P1, AddressWithdraw(5, (IPv4Address("10.99.0.1"),)))  # never listed: no-op
    assert lde.finish() is None


def test_local_address_changes_sent_to_every_peer():
    lde, sent = make()
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    sent.clear()
    lde.addresses_removed([IPv4Address("10.0.0.1")])
    lde.addresses_added([])
    lde.addresses_added([IPv4Address("10.0.0.9")])
    assert [(pid, type(m).__name__, m.addresses) for pid, m in sent] == [
        (P1, "AddressWithdraw", (IPv4Address("10.0.0.1"),)),
        (P2, "AddressWithdraw", (IPv4Address("10.0.0.1"),)),
        (P1, "Address", (IPv4Address("10.0.0.9"),)),
        (P2, "Address", (IPv4Address("10.0.0.9"),)),
    ]


# ---------------------------------------------------------------- LMp.10a (RFC 5036 App. A.1.2)


def test_changed_mapping_for_retained_fec_releases_old_label():
    """P2 is not the next hop for 10.255.0.2/32 (liberal retention keeps its label unused).
    It maps 2001, then 2002: LMp.10a releases 2001 to P2, the LIB keeps 2002, the LFIB
    does not change."""
    lde, sent = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    lde.receive(P1, mapping("10.255.0.2/32", 3))
    lde.finish()
    lde.receive(P2, mapping("10.255.0.2/32", 2001))
    assert lde.finish() is None
    sent.clear()
    lde.receive(P2, mapping("10.255.0.2/32", 2002))
    (rel,) = [(pid, m) for pid, m in sent]
    assert rel[0] == P2 and isinstance(rel[1], LabelRelease)
    assert (rel[1].fec, rel[1].label) == ((PrefixFec(N("10.255.0.2/32")),), 2001)
    assert lde.peers[P2].lib[N("10.255.0.2/32")] == 2002
    assert lde.finish() is None  # not in use: nothing to reprogram
    # the same label again (a refresh) is no change: nothing released
    sent.clear()
    lde.receive(P2, mapping("10.255.0.2/32", 2002))
    assert sent == [] and lde.finish() is None


def test_changed_mapping_for_fec_in_use_releases_old_label_and_swaps_nhlfe():
    """P1 is the next hop: 2001 then 2002 releases 2001 and the FTN/ILM push/swap 2002."""
    lde, sent = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 2001))
    d = lde.finish()
    assert d.ftn_set[0].nexthops[0].out_labels == (2001,)
    in_label = lde.local[N("10.255.0.2/32")]
    assert lde.lfib.ilm[in_label].nexthops[0].out_labels == (2001,)
    sent.clear()
    lde.receive(P1, mapping("10.255.0.2/32", 2002))
    assert [(pid, m.label, m.fec) for pid, m in sent if isinstance(m, LabelRelease)] == [
        (P1, 2001, (PrefixFec(N("10.255.0.2/32")),))]
    d = lde.finish()
    (ftn,) = d.ftn_set
    assert [(n.neighbor, n.out_labels) for n in ftn.nexthops] == [(str(P1), (2002,))]
    (ilm,) = d.ilm_set
    assert ilm.in_label == in_label and ilm.nexthops[0].out_labels == (2002,)
    assert d.ftn_del == () and d.ilm_del == ()
    # our own label for the FEC did not change: no Withdraw, no new Mapping upstream
    assert not [m for _, m in sent if isinstance(m, LabelWithdraw | LabelMapping)]


def test_changed_mapping_answering_our_request_releases_nothing():
    """LMp.10 Note 6: a mapping that answers our Label Request is a new LSP, not a change
    (conservative retention re-requests a label when a peer becomes the next hop)."""
    lde, sent = make(retention="conservative")
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 2001))
    lde.peers[P1].requested.add(N("10.255.0.2/32"))
    sent.clear()
    lde.receive(P1, mapping("10.255.0.2/32", 2002))
    assert sent == [] and lde.peers[P1].lib[N("10.255.0.2/32")] == 2002
    assert not lde.peers[P1].requested


def test_changed_mapping_conservative_not_nexthop_releases_both():
    """Conservative retention, P2 not the next hop: the old label (LMp.10a) and the new
    one (LMp.13 -> LMp.32) are both released, in that order, and nothing is kept."""
    lde, sent = make(retention="conservative")
    lde.rib_changed(RIB)
    up(lde, P2, NH2)
    lde.peers[P2].lib[N("10.255.0.2/32")] = 2001  # kept from when P2 was the next hop
    sent.clear()
    lde.receive(P2, mapping("10.255.0.2/32", 2002))
    assert [(pid, m.label) for pid, m in sent if isinstance(m, LabelRelease)] == [
        (P2, 2001), (P2, 2002)]
    assert N("10.255.0.2/32") not in lde.peers[P2].lib


def test_ipv6_prefix_fec_elements_are_not_ours_but_still_answered():
    """An IPv6 Prefix FEC element in a Withdraw or Release (a dual-stack peer) is skipped
    by the IPv4 LDE instead of raising; the Withdraw is still answered (LWd.2)."""
    from ipaddress import IPv6Network

    lde, sent = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 30))
    lde.finish()
    sent.clear()
    v6 = PrefixFec(IPv6Network("2001:db8::/32"))
    fecs = (v6, PrefixFec(N("10.255.0.2/32")))
    lde.receive(P1, LabelMapping(3, (v6,), 40))
    lde.receive(P1, LabelWithdraw(4, fecs))
    assert [(type(m), m.fec) for _, m in sent] == [(LabelRelease, fecs)]
    assert lde.finish().ftn_del == (N("10.255.0.2/32"),)
    lde.receive(P1, LabelRelease(5, (v6,), 40))
    assert N("10.255.0.2/32") not in lde.peers[P1].lib


# ---------------------------------------------------------------- no ILM hole


def _forwards(lde: Lde, label: int) -> bool:
    e = lde.lfib.ilm.get(label)
    return e is not None and bool(e.nexthops)


def test_label_advertised_before_the_downstream_mapping_pops_untagged():
    """Independent control (§2.6.1.1): the upstream session (P2) comes up before the
    downstream one (P1, the next hop for 10.255.0.2/32) -- a restarted router. The label
    we advertise to P2 must forward from then on: pop, IP to the IGP next hop."""
    lde, sent = make()
    lde.rib_changed(RIB)
    lde.finish()
    up(lde, P2, NH2)
    d = lde.finish()
    label = lde.local[N("10.255.0.2/32")]
    assert (P2, label) in [(pid, m.label) for pid, m in sent if isinstance(m, LabelMapping)
                           and m.fec[0].prefix == N("10.255.0.2/32")]
    e = lde.lfib.ilm[label]
    assert [(n.op, n.interface, n.nexthop, n.out_labels) for n in e.nexthops] == [
        ("untagged", "eth1", NH1, ())]
    assert d is None or N("10.255.0.2/32") not in d.ftn_set  # no FTN: we send IP ourselves
    assert N("10.255.0.2/32") not in lde.lfib.ftn
    # the next hop's mapping arrives: the same label swaps now
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 2001))
    d = lde.finish()
    (ilm,) = [e for e in d.ilm_set if e.fec == N("10.255.0.2/32")]
    assert ilm.in_label == label and [(n.op, n.out_labels) for n in ilm.nexthops] == [
        ("swap", (2001,))]
    assert label not in d.ilm_del
    # and back to untagged when it is withdrawn (not removed: P2 still holds our label)
    lde.receive(P1, LabelWithdraw(8, (PrefixFec(N("10.255.0.2/32")),), 2001))
    d = lde.finish()
    assert label not in d.ilm_del
    assert [n.op for n in lde.lfib.ilm[label].nexthops] == ["untagged"]


def test_untagged_only_when_no_next_hop_has_a_label():
    """ECMP: one next hop mapped the FEC -- use it alone, no untagged branch beside it."""
    lde, _ = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    lde.finish()
    label = lde.local[N("10.255.0.4/32")]
    assert [(n.op, n.interface) for n in lde.lfib.ilm[label].nexthops] == [
        ("untagged", "eth1"), ("untagged", "eth2")]  # one per IGP next hop
    lde.receive(P2, mapping("10.255.0.4/32", 3))
    lde.finish()
    assert [(n.op, n.interface) for n in lde.lfib.ilm[label].nexthops] == [("pop", "eth2")]


def test_ordered_control_never_advertises_an_unforwardable_label():
    """§2.6.1.2: nothing bound, nothing advertised, no ILM entry before the next hop maps."""
    lde, sent = make(control="ordered")
    lde.rib_changed(RIB)
    up(lde, P2, NH2)
    lde.finish()
    assert N("10.255.0.2/32") not in lde.local
    assert not [m for _, m in sent if isinstance(m, LabelMapping)
                and m.fec[0].prefix == N("10.255.0.2/32")]
    assert not any(e.fec == N("10.255.0.2/32") for e in lde.lfib.ilm.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["rib", "up", "down", "map", "withdraw"]),
                          st.sampled_from([P1, P2]),
                          st.sampled_from(sorted(RIB, key=lambda p: (int(p.network_address), p.prefixlen))),
                          st.integers(0, 3)), max_size=25),
       st.sampled_from(["independent", "ordered"]))
def test_every_advertised_label_forwards(ops, control):
    """Whatever order routes, sessions and mappings come in: after every commit, each
    label a peer holds from us (advertised, not withdrawn; not a null label) has an ILM
    entry that forwards -- no upstream router ever pushes into a label we drop."""
    lde, _ = make(control=control)
    addr = {P1: NH1, P2: NH2}
    for op, pid, fec, k in ops:
        if op == "rib":  # a subset of the routes: FECs come and go
            lde.rib_changed({p: r for j, (p, r) in enumerate(sorted(RIB.items())) if (k >> j) & 1
                             or j >= 2})
        elif op == "up" and pid not in lde.peers:
            up(lde, pid, addr[pid])
        elif op == "down":
            lde.peer_down(pid)
        elif op == "map" and pid in lde.peers:
            lde.receive(pid, mapping(str(fec), [3, 40, 41, 42][k]))
        elif op == "withdraw" and pid in lde.peers:
            lde.receive(pid, LabelWithdraw(7, (PrefixFec(fec),), None))
        lde.finish()
        for peer in lde.peers.values():
            for p, label in peer.advertised.items():
                if label >= 16:
                    assert _forwards(lde, label), (p, label, control)


def test_label_range_exhausted_fecs_wait_for_a_free_label_no_crash():
    """RFC 5036 A.2.1 SL.9-12 (DU): with no label to allocate, a FEC gets no binding and
    no mapping (the ingress still pushes the next hop's label); it gets the first label
    that frees. It used to raise RuntimeError out of the router."""
    sent: list = []
    logs: list = []
    ids = iter(range(1, 10**6))
    lde = Lde(ME, (16, 17), LdpOptions(), lambda pid, m: sent.append((pid, m)),
              lambda: next(ids), log=lambda level, text: logs.append((level, text)))
    rib = dict([rt("10.255.0.1/32"),
                rt("10.255.0.2/32", ("p1", "eth1", NH1), metric=10),
                rt("10.255.0.3/32", ("p1", "eth1", NH1)),
                rt("10.255.0.4/32", ("p1", "eth1", NH1))])
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.4/32", 300))
    lde.rib_changed(rib)
    lde.finish()
    assert lde.local == {N("10.255.0.1/32"): 3, N("10.255.0.2/32"): 16, N("10.255.0.3/32"): 17}
    assert lde.starved == {N("10.255.0.4/32")}
    assert [t for lv, t in logs if lv == "warning" and "exhausted" in t]
    advertised = {m.fec[0].prefix for _, m in sent if isinstance(m, LabelMapping)}
    assert N("10.255.0.4/32") not in advertised  # SL.12: no mapping without a label
    assert N("10.255.0.4/32") in lde.lfib.ftn  # an ingress: pushes P1's label 300
    assert all(e.fec != N("10.255.0.4/32") for e in lde.lfib.ilm.values())
    # 10.255.0.3/32 goes: its label is withdrawn from P1, freed on P1's Release, and
    # 10.255.0.4/32 takes it, mapped to P1 at once
    del rib[N("10.255.0.3/32")]
    lde.rib_changed(rib)
    lde.finish()
    assert N("10.255.0.4/32") not in lde.local  # 17 waits for P1's Release (§3.5.10)
    sent.clear()
    lde.receive(P1, LabelRelease(5, (PrefixFec(N("10.255.0.3/32")),), 17))
    lde.finish()
    assert lde.local[N("10.255.0.4/32")] == 17 and not lde.starved
    assert [(m.fec[0].prefix, m.label) for _, m in sent if isinstance(m, LabelMapping)] \
        == [(N("10.255.0.4/32"), 17)]
    assert lde.lfib.ilm[17].fec == N("10.255.0.4/32")

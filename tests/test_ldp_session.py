"""Session negotiation and error paths, driving one LdpInstance with hand-made PDUs."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from ldp import codec
from ldp.events import (
    AddressAdded,
    AddressRemoved,
    ApplyLfib,
    CancelTimer,
    HelloReceived,
    InterfaceDown,
    InterfaceUp,
    RibChanged,
    SendHello,
    Start,
    StartTimer,
    TcpAccepted,
    TcpClose,
    TcpClosed,
    TcpConnect,
    TcpConnected,
    TcpData,
    TcpListen,
    TcpSend,
    TcpSetGtsm,
    TimerExpired,
    event_from_json,
    to_json,
)
from ldp.fsm import State
from ldp.instance import LdpInstance
from ldp.messages import (
    Address,
    AddressWithdraw,
    Hello,
    Initialization,
    KeepAlive,
    LabelMapping,
    LabelRelease,
    LabelWithdraw,
    LdpId,
    MessageError,
    Notification,
    Pdu,
    PrefixFec,
    Status,
    StatusCode,
    UnknownMessage,
)
from ldp.session import is_active_role, negotiate_max_pdu
from lsr.core.igp import Nexthop, Route
from lsr.core.topology import LdpOptions

ME = IPv4Address("10.255.0.2")
ALL = IPv4Address("224.0.0.2")
LO = IPv4Address("10.255.0.1")  # lower: we are active towards it
HI = IPv4Address("10.255.0.9")  # higher: we are passive towards it
A = IPv4Network


def inst(**kw) -> LdpInstance:
    i = LdpInstance("me", ME, {"eth1": IPv4Interface("10.0.0.1/30"),
                               "eth2": IPv4Interface("10.0.0.5/30")},
                    options=LdpOptions(keepalive_time=30, **kw), retry_initial=2, retry_max=8)
    i.handle(Start(), 0.0)
    return i


def hello(lsr: IPv4Address, hold: int = 15) -> bytes:
    return codec.encode_pdu(Pdu(LdpId(lsr), (Hello(1, hold, transport_address=lsr),)))


def pdu(lsr: IPv4Address, *msgs) -> bytes:
    return b"".join(codec.encode_pdus(LdpId(lsr), list(msgs)))


def sent(actions, conn=None) -> list:
    """Messages in the TcpSend actions."""
    out = []
    for a in actions:
        if isinstance(a, TcpSend) and (conn is None or a.conn == conn):
            r = codec.PduReader()
            for p in r.feed(a.data):
                out.extend(p.messages)
    return out


def of(actions, t):
    return [a for a in actions if isinstance(a, t)]


def test_start_listens_and_hellos():
    i = LdpInstance("me", ME, {"eth1": IPv4Interface("10.0.0.1/30")})
    acts = i.handle(Start(), 0.0)
    assert of(acts, TcpListen)[0].address == ME
    (h,) = of(acts, SendHello)
    assert h.ifname == "eth1" and h.src == IPv4Address("10.0.0.1")
    p = codec.decode_pdu(h.data)
    assert p.ldp_id == LdpId(ME) and p.messages[0].transport_address == ME
    assert StartTimer("hello:eth1", 5) in acts


def test_roles():
    assert is_active_role(IPv4Address("10.0.0.10"), IPv4Address("10.0.0.9"))
    assert not is_active_role(IPv4Address("9.255.255.255"), IPv4Address("10.0.0.0"))
    assert is_active_role(IPv4Address("200.0.0.1"), IPv4Address("100.0.0.1"))  # unsigned
    assert negotiate_max_pdu(4096, 0) == 4096 and negotiate_max_pdu(4096, 1500) == 1500


def active_up(i: LdpInstance) -> int:
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO)), 1.0)
    (c,) = of(acts, TcpConnect)
    assert c.local == ME and c.remote == LO
    assert of(acts, SendHello)  # FRR-style triggered Hello before connecting
    acts = i.handle(TcpConnected(c.conn), 1.1)
    (init,) = sent(acts)
    assert isinstance(init, Initialization) and init.receiver == LdpId(LO)
    assert i.sessions[LO].state is State.OPENSENT
    acts = i.handle(TcpData(c.conn, pdu(LO, Initialization(1, 60, LdpId(ME)), KeepAlive(2))), 1.2)
    msgs = sent(acts)
    assert isinstance(msgs[0], KeepAlive)
    assert isinstance(msgs[1], Address) and ME in msgs[1].addresses
    assert i.sessions[LO].state is State.OPERATIONAL
    assert i.sessions[LO].keepalive == 30  # min(30, 60)
    assert StartTimer(f"ka-send:{LO}", 10.0) in acts
    return c.conn


def test_active_negotiation():
    i = inst()
    active_up(i)
    assert i.neighbors()[0]["state"] == "OPERATIONAL"
    assert i.neighbors()[0]["role"] == "active"


def test_passive_negotiation_and_no_hello():
    i = inst()
    # No Hello from HI yet: its Init is rejected with Session Rejected/No Hello.
    acts = i.handle(TcpAccepted(-1, ME, HI), 1.0)
    acts = i.handle(TcpData(-1, pdu(HI, Initialization(7, 180, LdpId(ME)))), 1.1)
    (n,) = sent(acts)
    assert isinstance(n, Notification) and n.status.code == StatusCode.SESSION_REJECTED_NO_HELLO
    assert n.status.fatal and n.status.message_id == 7
    assert TcpClose(-1) in acts
    # With a Hello adjacency it works; the passive side answers Init + KeepAlive.
    acts = i.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, hello(HI)), 2.0)
    assert not of(acts, TcpConnect)
    i.handle(TcpAccepted(-2, ME, HI), 2.1)
    acts = i.handle(TcpData(-2, pdu(HI, Initialization(8, 180, LdpId(ME)))), 2.2)
    m = sent(acts)
    assert isinstance(m[0], Initialization) and isinstance(m[1], KeepAlive)
    assert i.sessions[HI].state is State.OPENREC
    acts = i.handle(TcpData(-2, pdu(HI, KeepAlive(9))), 2.3)
    assert i.sessions[HI].state is State.OPERATIONAL
    assert i.sessions[HI].keepalive == 30


def test_bad_receiver_and_keepalive():
    i = inst()
    i.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, hello(HI)), 0)
    i.handle(TcpAccepted(-1, ME, HI), 0)
    acts = i.handle(TcpData(-1, pdu(HI, Initialization(5, 0, LdpId(ME)))), 0)
    (n,) = sent(acts)
    assert n.status.code == StatusCode.SESSION_REJECTED_BAD_KEEPALIVE_TIME
    assert i.sessions[HI].state is State.NON_EXISTENT and TcpClose(-1) in acts


def test_message_before_operational_is_naked():
    i = inst()
    i.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, hello(HI)), 0)
    i.handle(TcpAccepted(-1, ME, HI), 0)
    i.handle(TcpData(-1, pdu(HI, Initialization(5, 180, LdpId(ME)))), 0)
    acts = i.handle(TcpData(-1, pdu(HI, LabelMapping(6, (PrefixFec(A("10.9.0.0/16")),), 99))), 0)
    (n,) = sent(acts)
    assert n.status.code == StatusCode.SHUTDOWN and n.status.message_type == 0x0400
    assert i.sessions[HI].state is State.NON_EXISTENT


def test_keepalive_expiry():
    i = inst()
    conn = active_up(i)
    acts = i.handle(TimerExpired(f"ka-send:{LO}"), 11)
    assert isinstance(sent(acts)[0], KeepAlive)
    acts = i.handle(TimerExpired(f"ka-hold:{LO}"), 31)
    (n,) = sent(acts)
    assert n.status.code == StatusCode.KEEPALIVE_TIMER_EXPIRED and n.status.fatal
    assert TcpClose(conn) in acts
    assert StartTimer(f"retry:{LO}", 2) in acts  # active side retries with backoff
    acts = i.handle(TimerExpired(f"retry:{LO}"), 33)
    (c,) = of(acts, TcpConnect)
    i.handle(TcpClosed(c.conn, "refused"), 33.1)
    acts = i.handle(TcpClosed(c.conn, "refused"), 33.2)  # duplicate: ignored
    assert i.sessions[LO].retry_delay == 4  # doubled


def test_retry_backoff_caps():
    i = inst()
    i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO)), 0)
    delays = []
    for k in range(6):
        conn = i.sessions[LO].conn
        acts = i.handle(TcpClosed(conn, "refused"), k)
        delays.append(of(acts, StartTimer)[-1].seconds)
        i.handle(TimerExpired(f"retry:{LO}"), k + 0.5)
    assert delays == [2, 4, 8, 8, 8, 8]


def test_message_error_notifications():
    i = inst()
    conn = active_up(i)
    s = i.sessions[LO]
    acts = []
    s.message(MessageError(0x0400, 77, Status.of(StatusCode.UNKNOWN_TLV, 77, 0x0400)), acts)
    s.message(UnknownMessage(0x3F00, 78, b"", False), acts)
    s.message(UnknownMessage(0x3F01, 79, b"", True), acts)
    acts += i.handle(TcpData(conn, pdu(LO, KeepAlive(80))), 5)
    codes = [m.status.code for m in sent(acts) if isinstance(m, Notification)]
    assert codes == [StatusCode.UNKNOWN_TLV, StatusCode.UNKNOWN_MESSAGE_TYPE]
    assert s.state is State.OPERATIONAL  # non-fatal
    acts = []
    s.message(MessageError(0x0400, 81, Status.of(StatusCode.MALFORMED_TLV_VALUE, 81, 0x0400)), acts)
    i._commit(acts)
    assert s.state is State.NON_EXISTENT and TcpClose(conn) in acts


def test_bad_ldp_identifier_and_pdu_error():
    i = inst()
    conn = active_up(i)
    acts = i.handle(TcpData(conn, pdu(IPv4Address("10.255.0.77"), KeepAlive(3))), 2)
    (n,) = sent(acts)
    assert n.status.code == StatusCode.BAD_LDP_IDENTIFIER
    i2 = inst()
    conn = active_up(i2)
    acts = i2.handle(TcpData(conn, b"\x00\x07\x00\x0e" + bytes(14)), 2)  # bad version
    (n,) = sent(acts)
    assert n.status.code == StatusCode.BAD_PROTOCOL_VERSION and TcpClose(conn) in acts


def test_fatal_notification_received_closes():
    i = inst()
    conn = active_up(i)
    acts = i.handle(TcpData(conn, pdu(LO, Notification(4, Status.of(StatusCode.SHUTDOWN)))), 3)
    assert TcpClose(conn) in acts and i.sessions[LO].state is State.NON_EXISTENT


def test_adjacency_expiry_tears_session_down():
    i = inst()
    conn = active_up(i)
    acts = i.handle(TimerExpired(f"adj:eth1:{LO}"), 20)
    (n,) = sent(acts)
    assert n.status.code == StatusCode.HOLD_TIMER_EXPIRED and TcpClose(conn) in acts
    assert LO not in i.sessions and not of(acts, TcpConnect)


def test_one_session_for_two_links_and_interface_down():
    i = inst()
    conn = active_up(i)
    acts = i.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, hello(LO)), 2)
    assert not of(acts, TcpConnect)
    assert i.sessions[LO].adjacencies == {"eth1", "eth2"}
    acts = i.handle(InterfaceDown("eth1"), 3)
    assert not of(acts, TcpClose) and i.sessions[LO].operational
    acts = i.handle(InterfaceDown("eth2"), 4)
    assert TcpClose(conn) in acts and LO not in i.sessions


def test_holdtime_negotiation():
    i = inst()
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO, hold=0)), 0)
    assert StartTimer(f"adj:eth1:{LO}", 15.0) in acts
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO, hold=6)), 0)
    assert StartTimer(f"adj:eth1:{LO}", 6.0) in acts


def test_withdraw_answered_with_release_and_lfib():
    i = inst()
    rib = {A("10.255.0.1/32"): Route(A("10.255.0.1/32"), 10,
                                     (Nexthop("lo", "eth1", IPv4Address("10.0.0.2")),)),
           A("10.255.0.2/32"): Route(A("10.255.0.2/32"), 0, ())}
    i.handle(RibChanged(rib), 0)
    conn = active_up(i)
    acts = i.handle(TcpData(conn, pdu(LO, Address(10, (LO, IPv4Address("10.0.0.2"))),
                                      LabelMapping(11, (PrefixFec(A("10.255.0.1/32")),), 3))), 2)
    (ap,) = of(acts, ApplyLfib)
    (ftn,) = ap.diff.ftn_set
    assert ftn.nexthops[0].out_labels == () and ftn.nexthops[0].neighbor == str(LO)
    (ilm,) = ap.diff.ilm_set
    assert ilm.in_label == 16 and ilm.nexthops[0].op == "pop"
    acts = i.handle(TcpData(conn, pdu(LO, LabelWithdraw(12, (PrefixFec(A("10.255.0.1/32")),), 3))), 3)
    (rel,) = [m for m in sent(acts) if isinstance(m, LabelRelease)]
    assert rel.label == 3 and rel.fec == (PrefixFec(A("10.255.0.1/32")),)
    (ap,) = of(acts, ApplyLfib)
    # no downstream label any more: the FTN goes, our label 16 stays bound and advertised,
    # so its ILM entry pops and forwards as IP (untagged, ldp.lde._untagged)
    assert ap.diff.ftn_del == (A("10.255.0.1/32"),) and ap.diff.ilm_del == ()
    (ilm,) = ap.diff.ilm_set
    assert ilm.in_label == 16 and [(n.op, n.out_labels) for n in ilm.nexthops] == [("untagged", ())]


def test_events_json_roundtrip():
    ev = HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, b"\x00\x01")
    assert event_from_json(to_json(ev)) == ev
    assert to_json(TcpConnect(1, ME, LO, None))["remote"] == "10.255.0.1"


@pytest.mark.parametrize("bad", [b"", b"\x00\x01", b"\x00\x01\x00\x02xx"])
def test_bad_hello_ignored(bad):
    i = inst()
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, bad), 0)
    assert not i.sessions and not of(acts, TcpConnect)


# ---------------------------------------------------------------- Address / Address Withdraw


def addr_msgs(acts, t):
    return [m for m in sent(acts) if isinstance(m, t)]


def test_interface_down_sends_address_withdraw_and_up_sends_address():
    """§3.5.6 / §3.5.5: our interface address leaves and comes back."""
    i = inst()
    conn = active_up(i)
    # the session runs over eth1 only: eth2's address is withdrawn, the session stays
    acts = i.handle(InterfaceDown("eth2"), 5)
    (w,) = addr_msgs(acts, AddressWithdraw)
    assert w.addresses == (IPv4Address("10.0.0.5"),)
    assert i.sessions[LO].operational and not of(acts, TcpClose)
    assert IPv4Address("10.0.0.5") not in i.addresses()
    # a second InterfaceDown changes nothing
    assert not addr_msgs(i.handle(InterfaceDown("eth2"), 5.5), AddressWithdraw)
    acts = i.handle(InterfaceUp("eth2"), 6)
    (a,) = addr_msgs(acts, Address)
    assert a.addresses == (IPv4Address("10.0.0.5"),)
    assert of(acts, SendHello)  # Hellos restart on eth2
    assert all(a.conn == conn for a in of(acts, TcpSend))


def test_interface_down_with_last_adjacency_does_not_withdraw_to_that_peer():
    i = inst()
    conn = active_up(i)
    acts = i.handle(InterfaceDown("eth1"), 5)
    assert TcpClose(conn) in acts  # last adjacency gone: the session goes (§2.4)
    assert not addr_msgs(acts, AddressWithdraw)


def test_address_removed_and_added_events():
    i = inst()
    active_up(i)
    old = IPv4Interface("10.0.0.5/30")
    assert not sent(i.handle(AddressRemoved("eth2", IPv4Interface("10.9.9.9/30")), 5))  # not ours
    acts = i.handle(AddressRemoved("eth2", old), 5)
    (w,) = addr_msgs(acts, AddressWithdraw)
    assert w.addresses == (IPv4Address("10.0.0.5"),)
    assert StartTimer("hello:eth2", 5) not in acts and "eth2" not in i.discovery.up
    new = IPv4Interface("10.0.0.13/30")
    acts = i.handle(AddressAdded("eth2", new), 6)
    (a,) = addr_msgs(acts, Address)
    assert a.addresses == (IPv4Address("10.0.0.13"),)
    (h,) = of(acts, SendHello)
    assert h.ifname == "eth2" and h.src == IPv4Address("10.0.0.13")
    # renumbering: withdraw the old address, advertise the new one
    acts = i.handle(AddressAdded("eth2", old), 7)
    assert addr_msgs(acts, AddressWithdraw)[0].addresses == (IPv4Address("10.0.0.13"),)
    assert addr_msgs(acts, Address)[0].addresses == (IPv4Address("10.0.0.5"),)
    # not an LDP interface: ignored
    assert not i.handle(AddressAdded("eth9", IPv4Interface("10.7.0.1/30")), 8)
    for ev in (AddressAdded("eth2", new), AddressRemoved("eth2", new)):
        assert event_from_json(to_json(ev)) == ev


def test_address_withdraw_received_remaps_nexthop():
    """§3.5.6 receive side: the peer's address leaves its set; the FEC via it loses its NHLFE."""
    i = inst()
    rib = {A("10.255.0.1/32"): Route(A("10.255.0.1/32"), 10,
                                     (Nexthop("lo", "eth1", IPv4Address("10.0.0.2")),)),
           A("10.255.0.2/32"): Route(A("10.255.0.2/32"), 0, ())}
    i.handle(RibChanged(rib), 0)
    conn = active_up(i)
    acts = i.handle(TcpData(conn, pdu(LO, Address(10, (LO, IPv4Address("10.0.0.2"))),
                                      LabelMapping(11, (PrefixFec(A("10.255.0.1/32")),), 3))), 2)
    assert of(acts, ApplyLfib)
    acts = i.handle(TcpData(conn, pdu(LO, AddressWithdraw(12, (IPv4Address("10.0.0.2"),)))), 3)
    (ap,) = of(acts, ApplyLfib)
    # the next hop maps to no peer: no labelled NHLFE; our label stays, untagged
    assert ap.diff.ftn_del == (A("10.255.0.1/32"),) and ap.diff.ilm_del == ()
    assert [n.op for n in ap.diff.ilm_set[0].nexthops] == ["untagged"]
    assert IPv4Address("10.0.0.2") not in i.lde.peers[LO].addresses
    assert LO in i.lib and i.lib[LO][A("10.255.0.1/32")] == 3  # liberal retention keeps it
    # the address comes back: the LFIB entry is reinstalled
    acts = i.handle(TcpData(conn, pdu(LO, Address(13, (IPv4Address("10.0.0.2"),)))), 4)
    (ap,) = of(acts, ApplyLfib)
    assert ap.diff.ftn_set[0].fec == A("10.255.0.1/32")


# ---------------------------------------------------------------- KeepAlive Time (§3.5.3)


@pytest.mark.parametrize("ka,ok", [(0, False), (1, True), (2, True), (3, True), (65535, True)])
def test_keepalive_time_rfc_bounds(ka, ok):
    """§3.5.3: a non-zero KeepAlive Time; the session uses min(ours, theirs).

    FRR would reject 1 and 2 (its minimum is 3); RFC 5036 does not.
    """
    i = inst()
    i.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, hello(HI)), 0)
    i.handle(TcpAccepted(-1, ME, HI), 0)
    acts = i.handle(TcpData(-1, pdu(HI, Initialization(5, ka, LdpId(ME)))), 0)
    m = sent(acts)
    if ok:
        assert isinstance(m[0], Initialization) and i.sessions[HI].state is State.OPENREC
        assert i.sessions[HI].keepalive == min(30, ka)
        acts = i.handle(TcpData(-1, pdu(HI, KeepAlive(6))), 0.1)
        assert StartTimer(f"ka-hold:{HI}", float(min(30, ka))) in acts
    else:
        (n,) = m
        assert n.status.code == StatusCode.SESSION_REJECTED_BAD_KEEPALIVE_TIME and n.status.fatal
        assert n.status.message_id == 5 and TcpClose(-1) in acts


# ---------------------------------------------------------------- Max PDU Length (§3.5.3)


def big_pdu(lsr: IPv4Address, n: int) -> bytes:
    """One PDU of `n` Address messages (18 octets each with one address): PDU Length 6 + 18n."""
    msgs = [Address(100 + k, (IPv4Address(f"10.77.{k // 250}.{k % 250 + 1}"),)) for k in range(n)]
    return codec.encode_pdu(Pdu(LdpId(lsr), tuple(msgs)))


def test_negotiated_max_pdu_bounds_the_reader():
    i = inst()
    i.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, hello(HI)), 0)
    i.handle(TcpAccepted(-1, ME, HI), 0)
    i.handle(TcpData(-1, pdu(HI, Initialization(5, 180, LdpId(ME), max_pdu_length=512))), 0)
    s = i.sessions[HI]
    assert s.max_pdu == 512 and s.reader.max_pdu_len == 512
    i.handle(TcpData(-1, pdu(HI, KeepAlive(6))), 0.1)
    assert s.operational
    ok = big_pdu(HI, 28)  # PDU Length 510 <= 512
    assert len(ok) - 4 == 510
    acts = i.handle(TcpData(-1, ok), 1)
    assert s.operational and not [m for m in sent(acts) if isinstance(m, Notification)]
    bad = big_pdu(HI, 29)  # PDU Length 528 > 512 (but < 4096)
    acts = i.handle(TcpData(-1, bad), 2)
    (n,) = [m for m in sent(acts) if isinstance(m, Notification)]
    assert n.status.code == StatusCode.BAD_PDU_LENGTH and n.status.fatal
    assert TcpClose(-1) in acts and s.state is State.NON_EXISTENT


def test_negotiated_max_pdu_applies_within_the_same_segment():
    """Init + KeepAlive + an oversized PDU in one TCP segment: the limit is already
    the negotiated one for the third PDU."""
    i = inst()
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO)), 1.0)
    (c,) = of(acts, TcpConnect)
    i.handle(TcpConnected(c.conn), 1.1)
    seg = pdu(LO, Initialization(1, 60, LdpId(ME), max_pdu_length=300)) + pdu(LO, KeepAlive(2)) \
        + big_pdu(LO, 17)  # PDU Length 312 > 300
    acts = i.handle(TcpData(c.conn, seg), 1.2)
    codes = [m.status.code for m in sent(acts) if isinstance(m, Notification)]
    assert codes == [StatusCode.BAD_PDU_LENGTH]
    assert TcpClose(c.conn) in acts and i.sessions[LO].state is State.NON_EXISTENT


def test_max_pdu_default_and_outgoing_pdus_fit():
    i = inst()
    conn = active_up(i)  # peer proposed 0 -> 4096
    s = i.sessions[LO]
    assert s.max_pdu == 4096 and s.reader.max_pdu_len == 4096
    del conn


# ---------------------------------------------------------------- GTSM (RFC 6720)


def ghello(lsr: IPv4Address, g: bool) -> bytes:
    return codec.encode_pdu(Pdu(LdpId(lsr), (Hello(1, 15, gtsm=g, transport_address=lsr),)))


def test_gtsm_option_sets_g_bit_and_listener_ttl():
    i = LdpInstance("me", ME, {"eth1": IPv4Interface("10.0.0.1/30")},
                    options=LdpOptions(gtsm=True))
    acts = i.handle(Start(), 0.0)
    (h,) = of(acts, SendHello)
    assert codec.decode_pdu(h.data).messages[0].gtsm
    assert of(acts, TcpListen)[0].gtsm
    # default: off, as before
    acts = LdpInstance("me", ME, {"eth1": IPv4Interface("10.0.0.1/30")}).handle(Start(), 0.0)
    assert not codec.decode_pdu(of(acts, SendHello)[0].data).messages[0].gtsm
    assert of(acts, TcpListen)[0] == TcpListen(ME, ())


@pytest.mark.parametrize("ours,theirs", [(True, True), (True, False), (False, True)])
def test_gtsm_active_side_only_when_both_set_g(ours, theirs):
    """RFC 6720 §3: TTL 255 / min TTL 255 on the session only if both Hellos carry G."""
    i = inst(gtsm=ours)
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, ghello(LO, theirs)), 1)
    (c,) = of(acts, TcpConnect)
    assert c.gtsm is (ours and theirs)
    assert i.neighbors()[0]["gtsm"] is (ours and theirs)


@pytest.mark.parametrize("theirs", [True, False])
def test_gtsm_passive_side_sets_accepted_socket(theirs):
    i = inst(gtsm=True)
    i.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, ghello(HI, theirs)), 0)
    i.handle(TcpAccepted(-1, ME, HI), 0)
    acts = i.handle(TcpData(-1, pdu(HI, Initialization(5, 180, LdpId(ME)))), 0)
    assert TcpSetGtsm(-1, theirs) in acts
    assert acts.index(TcpSetGtsm(-1, theirs)) < next(
        k for k, a in enumerate(acts) if isinstance(a, TcpSend))
    # not configured: no TcpSetGtsm at all
    i2 = inst()
    i2.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, ghello(HI, True)), 0)
    i2.handle(TcpAccepted(-1, ME, HI), 0)
    assert not of(i2.handle(TcpData(-1, pdu(HI, Initialization(5, 180, LdpId(ME)))), 0),
                  TcpSetGtsm)


def test_gtsm_needs_g_on_every_adjacency():
    i = inst(gtsm=True)
    i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, ghello(LO, True)), 1)
    i.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, ghello(LO, False)), 1)
    assert not i.discovery.gtsm_negotiated(LO)
    i.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, ghello(LO, True)), 2)
    assert i.discovery.gtsm_negotiated(LO)
    assert to_json(TcpConnect(1, ME, LO, None, True))["gtsm"] is True


def test_changed_label_mapping_sends_release_of_old_label_on_the_wire():
    """RFC 5036 App. A LMp.10a through the whole speaker: the peer re-maps a FEC with a
    new label (no Withdraw between); we send exactly one Label Release, for the old
    label, in the bytes of a PDU -- for a FEC we only retain and for one in use."""
    i = inst()
    rib = {A("10.255.0.1/32"): Route(A("10.255.0.1/32"), 10,
                                     (Nexthop("lo", "eth1", IPv4Address("10.0.0.2")),)),
           A("10.9.9.0/24"): Route(A("10.9.9.0/24"), 20,
                                   (Nexthop("x", "eth2", IPv4Address("10.0.0.6")),)),
           A("10.255.0.2/32"): Route(A("10.255.0.2/32"), 0, ())}
    i.handle(RibChanged(rib), 0)
    conn = active_up(i)
    used, kept = PrefixFec(A("10.255.0.1/32")), PrefixFec(A("10.9.9.0/24"))
    acts = i.handle(TcpData(conn, pdu(LO, Address(10, (LO, IPv4Address("10.0.0.2"))),
                                      LabelMapping(11, (used,), 2001),
                                      LabelMapping(12, (kept,), 2001))), 2)
    assert not [m for m in sent(acts) if isinstance(m, LabelRelease)]
    (ap,) = of(acts, ApplyLfib)
    assert [e.nexthops[0].out_labels for e in ap.diff.ftn_set] == [(2001,)]
    for n, fec in enumerate((kept, used)):
        acts = i.handle(TcpData(conn, pdu(LO, LabelMapping(13 + n, (fec,), 2002))), 3 + n)
        (tx,) = of(acts, TcpSend)
        (p,) = codec.PduReader().feed(tx.data)
        (rel,) = p.messages
        assert tx.data == codec.encode_pdu(Pdu(LdpId(ME), (LabelRelease(rel.msg_id, (fec,), 2001),)))
        assert i.lib[LO][fec.prefix] == 2002
        if fec is used:
            (ap,) = of(acts, ApplyLfib)
            assert ap.diff.ftn_set[0].nexthops[0].out_labels == (2002,)
        else:
            assert not of(acts, ApplyLfib)


# ---------------------------------------------------------------- Hello x session down
# RFC 5036 §2.5.3 backoff is for NAK'd Initializations; a Hello from a peer whose session
# is down otherwise cuts the backoff short (Session.hello_cuts_backoff). One builder per
# session state (we are active towards LO unless said otherwise); each returns the
# instance and the time of the Hello.


def _closed_by_peer():
    """OPERATIONAL, then the peer's process died: its kernel closed the connection."""
    i = inst()
    conn = active_up(i)
    acts = i.handle(TcpClosed(conn, "reset"), 3.0)
    assert StartTimer(f"retry:{LO}", 2) in acts
    return i, 4.0


def _peer_sent_shutdown():
    """OPERATIONAL, then the peer stopped gracefully (Shutdown: not an Init NAK)."""
    i = inst()
    conn = active_up(i)
    i.handle(TcpData(conn, pdu(LO, Notification(4, Status.of(StatusCode.SHUTDOWN)))), 3.0)
    return i, 4.0


def _refused_many_times():
    """The peer is gone: every connect is refused, the backoff has grown to its cap."""
    i = inst()
    i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO)), 0)
    for k in range(4):
        i.handle(TcpClosed(i.sessions[LO].conn, "refused"), k)
        i.handle(TimerExpired(f"retry:{LO}"), k + 0.5)
    i.handle(TcpClosed(i.sessions[LO].conn, "refused"), 5.0)
    assert i.sessions[LO].retry_delay == 8
    return i, 6.0


def _init_nakd_by_peer():
    """Our Init was NAK'd (a fatal Notification in OPENSENT): §2.5.3 throttles."""
    i = inst()
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO)), 0)
    (c,) = of(acts, TcpConnect)
    i.handle(TcpConnected(c.conn), 0.1)
    i.handle(TcpData(c.conn, pdu(LO, Notification(1, Status.of(
        StatusCode.SESSION_REJECTED_BAD_KEEPALIVE_TIME)))), 0.2)
    assert i.sessions[LO].state is State.NON_EXISTENT and i.sessions[LO].retry_delay == 2
    return i, 1.0


def _peer_init_nakd_by_us():
    """We NAK'd the peer's Init (KeepAlive Time 0): a configuration mismatch, throttled."""
    i = inst()
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO)), 0)
    (c,) = of(acts, TcpConnect)
    i.handle(TcpConnected(c.conn), 0.1)
    acts = i.handle(TcpData(c.conn, pdu(LO, Initialization(1, 0, LdpId(ME)))), 0.2)
    assert TcpClose(c.conn) in acts and i.sessions[LO].retry_delay == 2
    return i, 1.0


def _connecting():
    """A connect is in progress (no answer yet): nothing to cut short."""
    i = inst()
    i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO)), 0)
    assert i.sessions[LO].conn is not None and i.sessions[LO].state is State.NON_EXISTENT
    return i, 1.0


def _opensent():
    i = inst()
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO)), 0)
    i.handle(TcpConnected(of(acts, TcpConnect)[0].conn), 0.1)
    assert i.sessions[LO].state is State.OPENSENT
    return i, 1.0


def _operational():
    i = inst()
    active_up(i)
    return i, 3.0


def _passive_closed_by_peer():
    """We are passive towards HI: the peer reconnects, never we."""
    i = inst()
    i.handle(HelloReceived("eth2", IPv4Address("10.0.0.6"), ALL, hello(HI)), 0)
    i.handle(TcpAccepted(-1, ME, HI), 0.1)
    i.handle(TcpData(-1, pdu(HI, Initialization(8, 180, LdpId(ME)))), 0.2)
    i.handle(TcpData(-1, pdu(HI, KeepAlive(9))), 0.3)
    i.handle(TcpClosed(-1, "reset"), 1.0)
    assert i.sessions[HI].state is State.NON_EXISTENT
    return i, 2.0


def _just_cut_short():
    """A Hello already cut the backoff short and that connect was refused: the next Hello
    within retry_initial (2 s) waits for the timer (no SYN per Hello)."""
    i, t = _closed_by_peer()
    i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO)), t)
    i.handle(TcpClosed(i.sessions[LO].conn, "refused"), t + 0.1)
    return i, t + 1.0


def _cut_short_a_while_ago():
    i, t = _just_cut_short()
    return i, t + 1.5  # 2.5 s after the last Hello-driven connect


HELLO_WHILE = [  # (session state, connect now?)
    (_closed_by_peer, True),
    (_peer_sent_shutdown, True),
    (_refused_many_times, True),
    (_init_nakd_by_peer, False),
    (_peer_init_nakd_by_us, False),
    (_connecting, False),
    (_opensent, False),
    (_operational, False),
    (_passive_closed_by_peer, False),
    (_just_cut_short, False),
    (_cut_short_a_while_ago, True),
]


@pytest.mark.parametrize(("state", "connects"), HELLO_WHILE, ids=[s.__name__[1:] for s, _ in HELLO_WHILE])
def test_hello_from_peer_whose_session_is_down(state, connects):
    i, t = state()
    peer, ifname, src = (HI, "eth2", "10.0.0.6") if state is _passive_closed_by_peer else \
        (LO, "eth1", "10.0.0.2")
    s = i.sessions[peer]
    st, delay, conn = s.state, s.retry_delay, s.conn
    acts = i.handle(HelloReceived(ifname, IPv4Address(src), ALL, hello(peer)), t)
    if connects:
        (c,) = of(acts, TcpConnect)
        assert c.remote == peer
        assert CancelTimer(f"retry:{peer}") in acts  # the backoff timer goes
        assert of(acts, SendHello)  # a Hello first: the peer surely has our adjacency
        assert s.retry_delay == 0  # reset: a new failure starts again from retry_initial
        acts = i.handle(TcpClosed(c.conn, "refused"), t + 0.1)
        assert StartTimer(f"retry:{peer}", 2) in acts
    else:
        assert not of(acts, TcpConnect)
        assert (s.state, s.retry_delay, s.conn) == (st, delay, conn)


def test_naked_init_throttle_ends_with_an_operational_session():
    i, t = _init_nakd_by_peer()
    acts = i.handle(TimerExpired(f"retry:{LO}"), t + 1.5)  # the throttled retry
    (c,) = of(acts, TcpConnect)
    i.handle(TcpConnected(c.conn), t + 1.6)
    i.handle(TcpData(c.conn, pdu(LO, Initialization(1, 60, LdpId(ME)), KeepAlive(2))), t + 1.7)
    assert i.sessions[LO].operational and not i.sessions[LO].nakd
    i.handle(TcpClosed(c.conn, "reset"), t + 2)
    acts = i.handle(HelloReceived("eth1", IPv4Address("10.0.0.2"), ALL, hello(LO)), t + 3)
    assert of(acts, TcpConnect)  # a later failure is not a NAK

"""`ipsec.ike` in the topology file, the SPD entries it adds, and NAT-D in IKE_SA_INIT."""

from __future__ import annotations

import hashlib
import struct
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from forwarding.ipsec.spd import Action
from ike import SendIke
from ike.codec import NotifyPayload, decode
from ike.config import ike_for_router, ike_out_sa, ipsec_for_router
from ike.session import NAT_DETECTION_DESTINATION_IP, NAT_DETECTION_SOURCE_IP
from lsr.core.topology import TopologyError, load_topology, parse_topology
from tests.test_ipsec_config import edited
from tests.test_ipsec_ikev2 import sessions

DATA = Path(__file__).parent / "data"
IKE = (DATA / "ipsec-ike.yaml").read_text()
SWAN = (DATA / "ipsec-strongswan.yaml").read_text()


def test_ike_files_load():
    t = load_topology(DATA / "ipsec-ike.yaml")
    (c,) = ike_for_router(t, "pe1")
    assert (c.left_addr, c.right_addr) == (IPv4Address("10.255.0.1"), IPv4Address("10.255.0.3"))
    assert c.initiator == "pe1" and c.rekey_seconds == 3.0 and not c.nat_t
    assert c.left_id == "pe1.site.lsr.test" and "psk" not in repr(c).lower().replace("psk=", "")
    assert ike_for_router(t, "p1") == ()
    s = load_topology(DATA / "ipsec-strongswan.yaml")
    sw1, sw2 = ike_for_router(s, "pe2")
    assert sw1.nat_t and sw2.nat_t  # default with a strongswan peer
    assert sw1.left_addr == IPv4Address("192.0.2.1") and sw2.initiator == "pe2"
    assert s.nodes["sw1"].kind == "strongswan" and not s.nodes["sw1"].is_router


def test_ike_policies_in_the_spd():
    t = load_topology(DATA / "ipsec-ike.yaml")
    spd, sad = ipsec_for_router(t, "pe2")
    (p,) = spd.outbound
    assert p.action is Action.PROTECT and p.sa == ike_out_sa("site") == "site-out"
    assert str(p.selector.src) == "192.168.2.0/24" and str(p.selector.dst) == "192.168.1.0/24"
    (q,) = spd.inbound
    assert str(q.selector.src) == "192.168.1.0/24" and q.action is Action.PROTECT
    assert not list(sad)  # Child SAs come from IKE at run time


@pytest.mark.parametrize("old,new,msg", [
    ("      left: pe1 ", "      left: p9 ", "not a node"),
    ("      right: pe2\n", "      right: ce2\n", "IKE peers are our routers"),
    ('      psk: "lsr-test-psk-not-secret"', '      psk: "short"', "at least 8"),
    ("      ike: aes128gcm16-prfsha256-x25519", "      ike: 3des-md5-modp1024", "not one of"),
    ("      esp: aes128gcm16", "      esp: aes128-sha1", "not one of"),
    ("      rekey_seconds: 3 ", "      rekey_seconds: 1 ", ">= 2"),
    ("      left_subnets: [192.168.1.0/24]", "      left_subnets: []", "non-empty"),
    ("      left_subnets: [192.168.1.0/24]", "      left_subnets: [192.168.1.1/24]", "bad IPv4 prefix"),
    ("      right: pe2\n", "      right: pe1\n", "both pe1"),
    ("      left: pe1 ", "      colour: red\n      left: pe1 ", "unknown key"),
    ("      right: pe2\n", "      right: pe2\n      initiator: p1\n", "initiator must be"),
])
def test_ike_errors_are_located(old, new, msg):
    assert old in IKE, old
    with pytest.raises(TopologyError) as e:
        parse_topology(IKE.replace(old, new), "x.yaml")
    assert msg in str(e.value) and "ipsec.ike[0]" in str(e.value), str(e.value)


def test_strongswan_needs_nat_t():
    text = SWAN.replace("      pfs: false\n", "      pfs: false\n      nat_t: false\n", 1)
    with pytest.raises(TopologyError, match="UDP 4500"):
        parse_topology(text, "x.yaml")
    text = SWAN.replace("      left: sw2\n      right: pe2\n", "      left: sw2\n      right: sw1\n")
    with pytest.raises(TopologyError, match="one of our routers"):
        parse_topology(text, "x.yaml")


# Every message of `ipsec.ike`, exactly, and which one wins when a connection has several
# problems (the order of the checks). (id, edits, message): (old, new) replacements in turn.
C0 = "      left: pe1                      # initiator (default: left)\n"
IKE_EXACT = [
    ("conn not mapping", [("    - name: site\n", "    - 5\n    - name: site\n")],
     'x.yaml:20: ipsec.ike[0]: expected a mapping'),
    ("conn unknown key", [(C0, "      colour: red\n" + C0)],
     "x.yaml:21: ipsec.ike[0].colour: unknown key 'colour' (allowed: name, left, right, psk, left_id, right_id, left_subnets, right_subnets, initiator, ike, esp, pfs, rekey_seconds, ike_rekey_seconds, nat_t, replay_window)"),
    ("conn missing name", [("    - name: site\n", "    - initiator: left\n")],
     "x.yaml:20: ipsec.ike[0]: missing 'name'"),
    ("conn missing psk", [('      psk: "lsr-test-psk-not-secret"\n', "")],
     "x.yaml:20: ipsec.ike[0]: missing 'psk'"),
    ("conn missing subnets", [("      right_subnets: [192.168.2.0/24]\n", "")],
     "x.yaml:20: ipsec.ike[0]: missing 'right_subnets'"),
    ("unknown key before missing", [("    - name: site\n", "    - colour: red\n")],
     "x.yaml:20: ipsec.ike[0].colour: unknown key 'colour' (allowed: name, left, right, psk, left_id, right_id, left_subnets, right_subnets, initiator, ike, esp, pfs, rekey_seconds, ike_rekey_seconds, nat_t, replay_window)"),
    ("name int", [("name: site", "name: 5")],
     'x.yaml:20: ipsec.ike[0].name: IKE name 5: a letter, then letters, digits, _ . - (24 max)'),
    ("name long", [("name: site", "name: " + "s" * 25)],
     "x.yaml:20: ipsec.ike[0].name: IKE name 'sssssssssssssssssssssssss': a letter, then letters, digits, _ . - (24 max)"),
    ("name duplicate", [("    - name: site\n", "    - {name: site, left: pe1, right: pe2, psk: '12345678', "
                           "left_subnets: [10.1.0.0/16], right_subnets: [10.2.0.0/16]}\n    - name: site\n")],
     "x.yaml:21: ipsec.ike[1].name: name 'site' is already used by an SA or IKE connection"),
    ("left unknown", [(C0, "      left: p9\n")],
     "x.yaml:21: ipsec.ike[0].left: 'p9' is not a node of the topology"),
    ("left int", [(C0, "      left: 5\n")],
     'x.yaml:21: ipsec.ike[0].left: 5 is not a node of the topology'),
    ("right host", [("      right: pe2\n", "      right: ce2\n")],
     "x.yaml:22: ipsec.ike[0].right: 'ce2' is a host node: IKE peers are our routers (kind lsr) or strongswan gateways"),
    ("left equals right", [("      right: pe2\n", "      right: pe1\n")],
     'x.yaml:22: ipsec.ike[0].right: left and right are both pe1'),
    ("left before right", [(C0, "      left: p9\n"), ("      right: pe2\n", "      right: ce2\n")],
     "x.yaml:21: ipsec.ike[0].left: 'p9' is not a node of the topology"),
    ("psk short", [('      psk: "lsr-test-psk-not-secret"', '      psk: "short"')],
     'x.yaml:23: ipsec.ike[0].psk: psk must be a quoted string of at least 8 characters'),
    ("psk number", [('      psk: "lsr-test-psk-not-secret"', "      psk: 123456789")],
     'x.yaml:23: ipsec.ike[0].psk: psk must be a quoted string of at least 8 characters'),
    ("subnets empty", [("left_subnets: [192.168.1.0/24]", "left_subnets: []")],
     'x.yaml:24: ipsec.ike[0].left_subnets: expected a non-empty list of IPv4 prefixes'),
    ("subnets not list", [("left_subnets: [192.168.1.0/24]", "left_subnets: 192.168.1.0/24")],
     'x.yaml:24: ipsec.ike[0].left_subnets: expected a non-empty list of IPv4 prefixes'),
    ("subnet bad", [("right_subnets: [192.168.2.0/24]", "right_subnets: [192.168.2.0/24, 10.0.0.1/8]")],
     "x.yaml:25: ipsec.ike[0].right_subnets[1]: bad IPv4 prefix '10.0.0.1/8': 10.0.0.1/8 has host bits set"),
    ("left subnets before right", [("left_subnets: [192.168.1.0/24]", "left_subnets: []"),
                                   ("right_subnets: [192.168.2.0/24]", "right_subnets: []")],
     'x.yaml:24: ipsec.ike[0].left_subnets: expected a non-empty list of IPv4 prefixes'),
    ("left_id empty", [(C0, C0 + "      left_id: ''\n")],
     'x.yaml:22: ipsec.ike[0].left_id: an IKE identity is a non-empty FQDN string'),
    ("right_id int", [(C0, C0 + "      right_id: 5\n")],
     'x.yaml:22: ipsec.ike[0].right_id: an IKE identity is a non-empty FQDN string'),
    ("left_id long", [(C0, C0 + "      left_id: " + "a" * 256 + "\n")],
     'x.yaml:22: ipsec.ike[0].left_id: an IKE identity is a non-empty FQDN string'),
    ("initiator other", [("      right: pe2\n", "      right: pe2\n      initiator: p1\n")],
     'x.yaml:23: ipsec.ike[0].initiator: initiator must be left, right, pe1 or pe2'),
    ("initiator right, bad pfs", [("      right: pe2\n", "      right: pe2\n      initiator: right\n"), ("pfs: true", "pfs: 1")],
     'x.yaml:29: ipsec.ike[0].pfs: expected true or false, got 1'),
    ("ike proposal", [("      ike: aes128gcm16-prfsha256-x25519", "      ike: 3des-md5-modp1024")],
     "x.yaml:26: ipsec.ike[0].ike: IKE proposal '3des-md5-modp1024' is not one of: aes128gcm16-prfsha256-x25519, aes256gcm16-prfsha256-x25519"),
    ("esp proposal", [("      esp: aes128gcm16", "      esp: aes128-sha1")],
     "x.yaml:27: ipsec.ike[0].esp: ESP proposal 'aes128-sha1' is not one of: aes128gcm16, aes256gcm16"),
    ("pfs int", [("pfs: true", "pfs: 1")],
     'x.yaml:28: ipsec.ike[0].pfs: expected true or false, got 1'),
    ("rekey small", [("rekey_seconds: 3 ", "rekey_seconds: 1 ")],
     'x.yaml:30: ipsec.ike[0].rekey_seconds: rekey_seconds must be a number >= 2, got 1'),
    ("rekey bool", [("rekey_seconds: 3 ", "rekey_seconds: true ")],
     'x.yaml:30: ipsec.ike[0].rekey_seconds: rekey_seconds must be a number >= 2, got True'),
    ("rekey str", [("rekey_seconds: 3 ", "rekey_seconds: soon ")],
     "x.yaml:30: ipsec.ike[0].rekey_seconds: rekey_seconds must be a number >= 2, got 'soon'"),
    ("nat_t int", [("nat_t: false", "nat_t: 0")],
     'x.yaml:29: ipsec.ike[0].nat_t: expected true or false, got 0'),
    ("window bad", [("nat_t: false\n", "nat_t: false\n      replay_window: 31\n")],
     'x.yaml:30: ipsec.ike[0].replay_window: replay_window 31 must be 0 or 32..65536'),
    ("window bool", [("nat_t: false\n", "nat_t: false\n      replay_window: true\n")],
     'x.yaml:30: ipsec.ike[0].replay_window: replay_window True must be 0 or 32..65536'),
    # --- which check wins
    ("psk before subnets", [('      psk: "lsr-test-psk-not-secret"', '      psk: "short"'), ("left_subnets: [192.168.1.0/24]", "left_subnets: []")],
     'x.yaml:23: ipsec.ike[0].psk: psk must be a quoted string of at least 8 characters'),
    ("subnets before ids", [("left_subnets: [192.168.1.0/24]", "left_subnets: []"), (C0, C0 + "      left_id: ''\n")],
     'x.yaml:25: ipsec.ike[0].left_subnets: expected a non-empty list of IPv4 prefixes'),
    ("ids before initiator", [(C0, C0 + "      right_id: ''\n      initiator: p1\n")],
     'x.yaml:22: ipsec.ike[0].right_id: an IKE identity is a non-empty FQDN string'),
    ("initiator before proposals", [(C0, C0 + "      initiator: p1\n"), ("      esp: aes128gcm16", "      esp: x")],
     'x.yaml:22: ipsec.ike[0].initiator: initiator must be left, right, pe1 or pe2'),
    ("ike before esp", [("      ike: aes128gcm16-prfsha256-x25519", "      ike: x"), ("      esp: aes128gcm16", "      esp: x")],
     "x.yaml:26: ipsec.ike[0].ike: IKE proposal 'x' is not one of: aes128gcm16-prfsha256-x25519, aes256gcm16-prfsha256-x25519"),
    ("esp before pfs", [("      esp: aes128gcm16", "      esp: x"), ("pfs: true", "pfs: 1")],
     "x.yaml:27: ipsec.ike[0].esp: ESP proposal 'x' is not one of: aes128gcm16, aes256gcm16"),
    ("pfs before rekey", [("pfs: true", "pfs: 1"), ("rekey_seconds: 3 ", "rekey_seconds: 1 ")],
     'x.yaml:28: ipsec.ike[0].pfs: expected true or false, got 1'),
    ("rekey before nat_t", [("rekey_seconds: 3 ", "rekey_seconds: 1 "), ("nat_t: false", "nat_t: 0")],
     'x.yaml:30: ipsec.ike[0].rekey_seconds: rekey_seconds must be a number >= 2, got 1'),
    ("nat_t before window", [("nat_t: false\n", "nat_t: 0\n      replay_window: 31\n")],
     'x.yaml:29: ipsec.ike[0].nat_t: expected true or false, got 0'),
    ("first conn first", [("    - name: site\n", "    - {name: two, left: pe1, right: pe2, psk: short, "
                           "left_subnets: [10.1.0.0/16], right_subnets: [10.2.0.0/16]}\n    - name: site\n"),
                          ("pfs: true", "pfs: 1")],
     'x.yaml:20: ipsec.ike[0].psk: psk must be a quoted string of at least 8 characters'),

]
SWAN_EXACT = [
    ("strongswan without nat_t", [("      pfs: false\n", "      pfs: false\n      nat_t: false\n")],
     "x.yaml:32: ipsec.ike[0].nat_t: strongSwan's kernel-libipsec carries ESP only in UDP 4500 (RFC 3948): nat_t must be true with a strongswan peer"),
    ("two gateways", [("      left: sw2\n      right: pe2\n", "      left: sw2\n      right: sw1\n")],
     'x.yaml:32: ipsec.ike[1]: at least one side of an IKE connection must be one of our routers'),
    ("no router before psk", [("      left: sw2\n      right: pe2\n", "      left: sw2\n      right: sw1\n"),
                              ('psk: "lsr-test-psk-sw2-not-secret"', 'psk: "x"')],
     'x.yaml:32: ipsec.ike[1]: at least one side of an IKE connection must be one of our routers'),
    ("window after nat_t", [("      pfs: false\n", "      pfs: false\n      nat_t: false\n      replay_window: 1\n")],
     "x.yaml:32: ipsec.ike[0].nat_t: strongSwan's kernel-libipsec carries ESP only in UDP 4500 (RFC 3948): nat_t must be true with a strongswan peer"),
    ("frr is no IKE peer", [("    p1: {loopback: 10.255.0.2}\n", "    p1: {loopback: 10.255.0.2, kind: frr}\n"),
                            ("      right: pe2\n      initiator: sw1\n", "      right: p1\n      initiator: sw1\n")],
     "x.yaml:26: ipsec.ike[0].right: 'p1' is a frr node: IKE peers are our routers (kind lsr) or strongswan gateways"),

]


@pytest.mark.parametrize("base,edits,message",
                         [(IKE, *c[1:]) for c in IKE_EXACT] + [(SWAN, *c[1:]) for c in SWAN_EXACT],
                         ids=[c[0] for c in IKE_EXACT + SWAN_EXACT])
def test_exact_messages_and_which_wins(base, edits, message):
    with pytest.raises(TopologyError) as ei:
        parse_topology(edited(base, edits), "x.yaml")
    assert str(ei.value) == message


def test_nat_detection_notifies():
    i, r = sessions(icfg={"nat_t": True, "remote_addr": (IPv4Address("10.255.0.3"), 500)},
                    rcfg={"nat_t": True})
    (req,) = i.start()
    m = decode(req.data)
    natd = {p.notify: p.data for p in m.payloads if isinstance(p, NotifyPayload)}
    want = hashlib.sha1(m.spi_i + bytes(8) + IPv4Address("10.255.0.3").packed
                        + struct.pack("!H", 500)).digest()
    assert natd[NAT_DETECTION_DESTINATION_IP] == want  # RFC 7296 §2.23
    assert len(natd[NAT_DETECTION_SOURCE_IP]) == 20  # forced mismatch: "behind a NAT"
    resp = [a for a in r.receive(req.data) if isinstance(a, SendIke)]
    kinds = {p.notify for p in decode(resp[0].data).payloads if isinstance(p, NotifyPayload)}
    assert {NAT_DETECTION_SOURCE_IP, NAT_DETECTION_DESTINATION_IP} <= kinds
    i2, r2 = sessions()  # without nat_t: no NAT-D either way
    (req2,) = i2.start()
    assert not [p for p in decode(req2.data).payloads if isinstance(p, NotifyPayload)]

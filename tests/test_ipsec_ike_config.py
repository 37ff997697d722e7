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

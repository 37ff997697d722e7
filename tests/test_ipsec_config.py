"""The topology file's `ipsec:` section, per-router tables, and the engine end to end."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.packet import Raw

from forwarding.ipsec.engine import Bypass, IpsecEngine
from forwarding.ipsec.esp import Decapsulated, DropReason, Encapsulated, EspDrop
from forwarding.ipsec.spd import Action
from ike.config import IpsecConfig, ipsec_for_router
from lsr.core.topology import TopologyError, load_topology, parse_topology

DATA = Path(__file__).parent / "data" / "ipsec-line.yaml"
VALID = DATA.read_text()
CE1, CE2 = "192.168.1.2", "192.168.2.3"


def pkt(src: str = CE1, dst: str = CE2, size: int = 64) -> bytes:
    return bytes(IP(src=src, dst=dst) / UDP(sport=5000, dport=7) / Raw(b"d" * size))


def engines(now: float = 0.0):
    topo = load_topology(DATA)
    return {r: IpsecEngine(*ipsec_for_router(topo, r, now=now)) for r in ("pe1", "p1", "pe2")}


# ---------------------------------------------------------------- the valid file


def test_valid_file_loads():
    topo = load_topology(DATA)
    cfg = topo.extra["ipsec"]
    assert isinstance(cfg, IpsecConfig)
    assert [s.name for s in cfg.sas] == ["pe1-pe2", "pe2-pe1"]
    a, b = cfg.sas
    assert (a.spi, a.src, a.dst, a.src_addr) == (0x1001, "pe1", "pe2", IPv4Address("10.255.0.1"))
    assert (b.src, b.dst) == ("pe2", "pe1")  # given as loopback addresses
    assert a.enc_key == bytes(range(16)) and len(b.auth_key) == 64
    assert b.esn and b.replay_window == 128
    assert "0102" not in repr(a)  # keys are not printed
    assert [p.action for p in cfg.policies] == [Action.PROTECT, Action.DISCARD, Action.PROTECT]


def test_tables_per_router():
    topo = load_topology(DATA)
    spd, sad = ipsec_for_router(topo, "pe1")
    assert list(sad.outbound) == ["pe1-pe2"]
    assert [(s, str(d)) for s, d in sad.inbound] == [(0x2002, "10.255.0.1")]
    assert [p.name for p in spd.outbound] == ["pe1#0", "pe1#1"]
    assert [p.sa for p in spd.inbound] == ["pe2-pe1"]
    spd, sad = ipsec_for_router(topo, "p1")
    assert not spd.outbound and not list(sad)
    with pytest.raises(KeyError):
        ipsec_for_router(topo, "nope")


def test_without_section_everything_bypasses():
    topo = load_topology(Path(__file__).parents[1] / "topologies" / "line3.yaml")
    e = IpsecEngine(*ipsec_for_router(topo, "pe1"))
    assert isinstance(e.outbound(pkt()), Bypass)
    assert isinstance(e.inbound(pkt()), Bypass)


# ---------------------------------------------------------------- engine end to end


def test_round_trip_both_directions():
    e = engines()
    for i in range(1, 4):
        out = e["pe1"].outbound(pkt(size=i))
        assert isinstance(out, Encapsulated) and out.seq == i
        ip = IP(out.packet)
        assert (ip.src, ip.dst, ip.proto) == ("10.255.0.1", "10.255.0.3", 50)
        assert isinstance(e["p1"].inbound(out.packet), Bypass)  # transit: not its tunnel
        back = e["pe2"].inbound(out.packet)
        assert isinstance(back, Decapsulated) and back.inner == pkt(size=i)
    rep = e["pe2"].outbound(pkt(CE2, CE1))
    assert isinstance(rep, Encapsulated) and IP(rep.packet).dst == "10.255.0.1"
    got = e["pe1"].inbound(rep.packet)
    assert isinstance(got, Decapsulated) and got.sa == "pe2-pe1"


def test_engine_replay_and_unknown_spi():
    e = engines()
    out = e["pe1"].outbound(pkt())
    assert isinstance(e["pe2"].inbound(out.packet), Decapsulated)
    r = e["pe2"].inbound(out.packet, now=12.5)
    assert isinstance(r, EspDrop) and r.reason is DropReason.REPLAY and r.time == 12.5
    assert r.src == "10.255.0.1" and r.dst == "10.255.0.3" and r.spi == 0x1001
    # pe1 receiving its own outbound SA's packet: no inbound SA 0x1001 to 10.255.0.1
    raw = bytearray(out.packet)
    raw[12:16], raw[16:20] = raw[16:20], raw[12:16]  # swap src/dst: checksum unchanged
    r = e["pe1"].inbound(bytes(raw))
    assert isinstance(r, EspDrop) and r.reason is DropReason.UNKNOWN_SPI


def test_engine_policies():
    e = engines()
    r = e["pe1"].outbound(pkt(CE1, "10.255.0.2"))
    assert isinstance(r, EspDrop) and r.reason is DropReason.POLICY_DISCARD
    assert isinstance(e["pe1"].outbound(pkt(CE1, "172.16.0.1")), Bypass)  # default: bypass
    # a clear packet that should have come through pe1-pe2 is refused at pe2 (RFC 4301 §5.2)
    r = e["pe2"].inbound(pkt())
    assert isinstance(r, EspDrop) and r.reason is DropReason.UNPROTECTED and r.sa == "pe1-pe2"
    assert isinstance(e["pe2"].inbound(pkt("10.0.0.1", CE2)), Bypass)
    r = e["pe1"].outbound(b"\x45\x00")
    assert isinstance(r, EspDrop) and r.reason is DropReason.MALFORMED


def test_inner_outside_selectors_is_policy_mismatch():
    # pe1 uses SA pe1-pe2 for another site's traffic: pe2's inbound check refuses it
    e = engines()
    sa = e["pe1"].sad.outbound["pe1-pe2"]
    out = sa.encapsulate(bytes(IP(src="192.168.9.9", dst=CE2) / ICMP()))
    r = e["pe2"].inbound(out.packet)
    assert isinstance(r, EspDrop) and r.reason is DropReason.POLICY_MISMATCH


def test_esn_sa_from_config():
    e = engines()
    sa = e["pe2"].sad.outbound["pe2-pe1"]
    sa.next_seq = 0xFFFFFFFE
    for _ in range(4):  # crosses 2^32
        out = e["pe2"].outbound(pkt(CE2, CE1))
        assert isinstance(out, Encapsulated)
        assert isinstance(e["pe1"].inbound(out.packet), Decapsulated)
    assert e["pe1"].sad.inbound[(0x2002, IPv4Address("10.255.0.1"))].window.top == (1 << 32) + 1


def test_manual_sender_restart_is_dropped_until_past_top():
    topo = load_topology(DATA)
    pe2 = IpsecEngine(*ipsec_for_router(topo, "pe2"))
    pe1 = IpsecEngine(*ipsec_for_router(topo, "pe1"))
    for _ in range(5):
        assert isinstance(pe2.inbound(pe1.outbound(pkt()).packet), Decapsulated)
    pe1 = IpsecEngine(*ipsec_for_router(topo, "pe1"))  # restarted: counter back at 1
    for _ in range(5):
        r = pe2.inbound(pe1.outbound(pkt()).packet)
        assert isinstance(r, EspDrop) and r.reason is DropReason.REPLAY
    assert isinstance(pe2.inbound(pe1.outbound(pkt()).packet), Decapsulated)


# ---------------------------------------------------------------- broken files

K16 = "000102030405060708090a0b0c0d0e0f"
A32 = "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"

BROKEN = [
    # (old text, new text, key path in the message, message fragment)
    ("spi: 0x1001", "spi: 7", "ipsec.sas[0].spi", "reserved"),
    ("spi: 0x1001", "spi: 0", "ipsec.sas[0].spi", "reserved"),
    ("spi: 0x1001", "spi: 4294967296", "ipsec.sas[0].spi", "out of range"),
    ("spi: 0x1001", 'spi: "4097"', "ipsec.sas[0].spi", "integer"),
    ("spi: 0x2002\n      src: 10.255.0.3\n      dst: 10.255.0.1",
     "spi: 0x2002\n      src: 10.255.0.1\n      dst: 10.255.0.3", "ipsec.policies[2].sa", "sent by pe1"),
    ("spi: 0x2002\n      src: 10.255.0.3\n      dst: 10.255.0.1",
     "spi: 0x1001\n      src: 10.255.0.1\n      dst: 10.255.0.3", "ipsec.sas[1].spi", "unique per destination"),
    ("spi: 0x2002", "spi: 0x1001\n      # same SPI, other destination: fine", None, None),
    (f'enc_key: "{K16}"', 'enc_key: "0001020304"', "ipsec.sas[0].enc_key", "16-byte key"),
    (f'enc_key: "{K16}"', f'enc_key: "{K16}zz"', "ipsec.sas[0].enc_key", "hex"),
    (f'enc_key: "{K16}"', "enc_key: 1234", "ipsec.sas[0].enc_key", "quoted"),
    (f'auth_key: "{A32}"', f'auth_key: "{K16}"', "ipsec.sas[0].auth_key", "32-byte key"),
    (f'auth_key: "{A32}"', f'auth_key: "{A32}00"', "ipsec.sas[0].auth_key", "32-byte key"),
    ("encryption: aes-128-cbc", "encryption: aes-128-gcm-16", "ipsec.sas[0].encryption", "RFC 4106 §8.1"),
    ("encryption: aes-128-cbc", "encryption: des-cbc", "ipsec.sas[0].encryption", "not one of"),
    ("integrity: hmac-sha2-256-128", "integrity: none", "ipsec.sas[0].integrity", "without integrity"),
    ("integrity: hmac-sha2-256-128", "integrity: hmac-md5-96", "ipsec.sas[0].integrity", "not one of"),
    ("      integrity: hmac-sha2-256-128\n", "", "ipsec.sas[0]", "without integrity"),
    ("replay_window: 64", "replay_window: 16", "ipsec.sas[0].replay_window", "0 (off) or 32"),
    ("replay_window: 64", "replay_window: yes", "ipsec.sas[0].replay_window", "0 (off)"),
    ("esn: false", "esn: 1", "ipsec.sas[0].esn", "true or false"),
    ("      esn: false\n", "      esn: false\n      mode: transport\n", "ipsec.sas[0].mode", "unknown key"),
    ("dst: pe2", "dst: ce2", "ipsec.sas[0].dst", "not a router"),
    ("dst: pe2", "dst: nowhere", "ipsec.sas[0].dst", "neither a router"),
    ("dst: pe2", "dst: 10.255.0.99", "ipsec.sas[0].dst", "not the loopback"),
    ("dst: pe2", "dst: 192.168.2.1", "ipsec.sas[0].dst", "interface of pe2"),
    ("dst: pe2", "dst: pe1", "ipsec.sas[0].dst", "both pe1"),
    ("name: pe2-pe1", "name: pe1-pe2", "ipsec.sas[1].name", "already used"),
    ("    - name: pe1-pe2\n      spi: 0x1001\n", "    - spi: 0x1001\n", "ipsec.sas[0]", "missing 'name'"),
    ("sa: pe1-pe2}", "sa: pe9-pe9}", "ipsec.policies[0].sa", "unknown SA"),
    ("sa: pe1-pe2}", "sa: pe2-pe1}", "ipsec.policies[0].sa", "sent by pe2"),
    ("action: protect, sa: pe1-pe2}", "action: protect}", "ipsec.policies[0]", "needs 'sa'"),
    ("action: discard}", "action: discard, sa: pe1-pe2}", "ipsec.policies[1].sa", "only protect"),
    ("action: discard}", "action: drop}", "ipsec.policies[1].action", "protect, bypass or discard"),
    ("{router: pe1, src: 192.168.1.0/24, dst: 192.168.2.0/24",
     "{router: p9, src: 192.168.1.0/24, dst: 192.168.2.0/24", "ipsec.policies[0].router", "not a router"),
    ("{router: pe1, src: 192.168.1.0/24, dst: 192.168.2.0/24",
     "{router: pe1, src: 192.168.1.1/24, dst: 192.168.2.0/24", "ipsec.policies[0].src", "bad IPv4 prefix"),
    ("protocol: any", "protocol: sctp-ish", "ipsec.policies[2].protocol", "0..255"),
    ("default: bypass", "default: protect", "ipsec.default", "bypass or discard"),
    ("  default: bypass\n", "  default: bypass\n  ikev1: {}\n", "ipsec.ikev1", "unknown key"),
    ("      sa: pe2-pe1\n", "      sa: pe1-pe2\n", "ipsec.policies[2].sa", "sent by pe1"),
]


def _key_reuse() -> str:
    # pe2-pe1 reuses pe1-pe2's auth key as its own (different algorithm, same bytes)
    return VALID.replace(
        'integrity: hmac-sha2-512-256\n      auth_key: "5051',
        'integrity: hmac-sha2-256-128\n      auth_key: "' + A32 + '"\n      # "5051',
    )


def _line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def _expected_line(old: str, new: str, where: str) -> int | None:
    """Line of the offending key inside the replaced text, if the key is in it."""
    key = where.rsplit(".", 1)[-1]
    if "[" in key:
        return None
    start = VALID[: VALID.index(old)].count("\n") + 1
    for j, line in enumerate(new.splitlines()):
        if f"{key}:" in line and not line.lstrip().startswith("#"):
            return start + j
    return None


@pytest.mark.parametrize("old,new,where,msg", BROKEN, ids=[f"{i}" for i in range(len(BROKEN))])
def test_broken_files_name_line_and_key(old, new, where, msg):
    assert old in VALID
    text = VALID.replace(old, new, 1)
    if where is None:
        parse_topology(text, "x.yaml")  # a variant that must stay valid
        return
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "x.yaml")
    e = ei.value
    assert e.where == where, str(e)
    assert msg in e.message, str(e)
    assert e.line is not None
    line = _expected_line(old, new, where)
    if line is not None:
        assert e.line == line, str(e)
    assert str(e).startswith(f"x.yaml:{e.line}: {where}: ")


def test_broken_line_numbers_exact():
    text = VALID.replace("spi: 0x1001", "spi: 7")
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "x.yaml")
    assert ei.value.line == _line_of(text, "spi: 7")
    text = VALID.replace("action: discard}", "action: drop}")
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "x.yaml")
    assert ei.value.line == _line_of(text, "action: drop}")


def test_key_reuse_rejected():
    with pytest.raises(TopologyError) as ei:
        parse_topology(_key_reuse(), "x.yaml")
    assert ei.value.where == "ipsec.sas[1].auth_key"
    assert "already used as auth_key of SA 'pe1-pe2'" in ei.value.message


def test_unused_sa_rejected():
    text = VALID.replace("      sa: pe2-pe1\n", "      sa: pe1-pe2\n").replace(
        "      router: pe2\n", "      router: pe1\n"
    )
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "x.yaml")
    assert ei.value.where == "ipsec.sas[1].name" and "not used" in ei.value.message


@pytest.mark.parametrize("body,where", [
    ("ipsec: []", "ipsec"),
    ("ipsec: {sas: []}", "ipsec.sas"),
    ("ipsec: {sas: [1]}", "ipsec.sas[0]"),
    ("ipsec:\n  sas: {}", "ipsec.sas"),
])
def test_broken_shapes(body, where):
    text = VALID.split("ipsec:")[0] + body + "\n"
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "x.yaml")
    assert ei.value.where == where


# Every message of the `ipsec:` section (SAs and policies), exactly, and which one wins when
# a section has several problems (the order of the checks). (id, edits, message): edits is a
# text replacing the section, or (old, new) replacements applied to VALID in turn.
K32B = "303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f"
SA0 = "    - name: pe1-pe2\n      spi: 0x1001\n"
P0 = "    - {router: pe1, src: 192.168.1.0/24, dst: 192.168.2.0/24, action: protect, sa: pe1-pe2}\n"
P0H = "{router: pe1, src: 192.168.1.0/24, dst: 192.168.2.0/24"
EXACT = [
    # --- section shape
    ("section list", "ipsec: []\n",
     'x.yaml:18: ipsec: expected a mapping'),
    ("section null", "ipsec:\n",
     'x.yaml:18: ipsec: expected a mapping'),
    ("section unknown key", [("  default: bypass\n", "  default: bypass\n  ikev1: {}\n")],
     "x.yaml:20: ipsec.ikev1: unknown key 'ikev1' (allowed: default, sas, policies, ike, remote_access)"),
    ("unknown key before default", [("  default: bypass\n", "  default: drop\n  ikev1: {}\n")],
     "x.yaml:20: ipsec.ikev1: unknown key 'ikev1' (allowed: default, sas, policies, ike, remote_access)"),
    ("default bad", [("default: bypass", "default: protect")],
     "x.yaml:19: ipsec.default: default must be bypass or discard, not 'protect'"),
    ("default before sas", "ipsec:\n  default: 1\n  sas: 3\n",
     'x.yaml:19: ipsec.default: default must be bypass or discard, not 1'),
    ("no sas no ike", "ipsec:\n  default: bypass\n",
     "x.yaml:18: ipsec.sas: expected a non-empty list of SAs (or an 'ike' or 'remote_access' list)"),
    ("sas empty", "ipsec: {sas: []}\n",
     "x.yaml:18: ipsec.sas: expected a non-empty list of SAs (or an 'ike' or 'remote_access' list)"),
    ("sas mapping", "ipsec:\n  sas: {}\n",
     "x.yaml:19: ipsec.sas: expected a non-empty list of SAs (or an 'ike' or 'remote_access' list)"),
    ("sas before policies", "ipsec:\n  sas: []\n  policies: 3\n",
     "x.yaml:19: ipsec.sas: expected a non-empty list of SAs (or an 'ike' or 'remote_access' list)"),
    ("policies not list", "ipsec:\n  ike: []\n  policies: {}\n",
     'x.yaml:20: ipsec.policies: expected a list of policies'),
    ("policies shape before SA errors", [("spi: 0x1001", "spi: 7"), ("  policies:\n", "  policies: 5\n  policiez:\n")],
     "x.yaml:42: ipsec.policiez: unknown key 'policiez' (allowed: default, sas, policies, ike, remote_access)"),
    # --- one SA
    ("sa not mapping", [(SA0, "    - 5\n" + SA0)],
     'x.yaml:21: ipsec.sas[0]: expected a mapping'),
    ("sa unknown key", [("      esn: false\n", "      esn: false\n      mode: transport\n")],
     "x.yaml:31: ipsec.sas[0].mode: unknown key 'mode' (allowed: name, protocol, spi, src, dst, encryption, enc_key, integrity, auth_key, replay_window, esn, df, lifetime_packets)"),
    ("missing name", [(SA0, "    - spi: 0x1001\n")],
     "x.yaml:21: ipsec.sas[0]: missing 'name'"),
    ("missing first required", [(SA0 + "      src: pe1\n      dst: pe2\n", "    - src: pe1\n")],
     "x.yaml:21: ipsec.sas[0]: missing 'name'"),
    ("missing enc_key", [(f'      enc_key: "{K16}"\n', "")],
     "x.yaml:21: ipsec.sas[0]: missing 'enc_key'"),
    ("unknown key before missing", [(SA0, "    - colour: red\n")],
     "x.yaml:21: ipsec.sas[0].colour: unknown key 'colour' (allowed: name, protocol, spi, src, dst, encryption, enc_key, integrity, auth_key, replay_window, esn, df, lifetime_packets)"),
    ("name int", [("name: pe1-pe2", "name: 12")],
     'x.yaml:21: ipsec.sas[0].name: SA name 12 must start with a letter: letters, digits, _ . -'),
    ("name digit first", [("name: pe1-pe2", "name: 1pe")],
     "x.yaml:21: ipsec.sas[0].name: SA name '1pe' must start with a letter: letters, digits, _ . -"),
    ("name duplicate", [("name: pe2-pe1", "name: pe1-pe2")],
     "x.yaml:31: ipsec.sas[1].name: SA name 'pe1-pe2' is already used by sas[0]"),
    ("spi bool", [("spi: 0x1001", "spi: true")],
     'x.yaml:22: ipsec.sas[0].spi: SPI must be an integer, got True'),
    ("spi string", [("spi: 0x1001", 'spi: "4097"')],
     "x.yaml:22: ipsec.sas[0].spi: SPI must be an integer, got '4097'"),
    ("spi reserved", [("spi: 0x1001", "spi: 7")],
     'x.yaml:22: ipsec.sas[0].spi: SPI 7 is reserved (0 and 1..255, RFC 4303 §2.1); use 256..4294967295'),
    ("spi zero", [("spi: 0x1001", "spi: 0")],
     'x.yaml:22: ipsec.sas[0].spi: SPI 0 is reserved (0 and 1..255, RFC 4303 §2.1); use 256..4294967295'),
    ("spi negative", [("spi: 0x1001", "spi: -1")],
     'x.yaml:22: ipsec.sas[0].spi: SPI -1 is out of range 256..4294967295'),
    ("spi high", [("spi: 0x1001", "spi: 4294967296")],
     'x.yaml:22: ipsec.sas[0].spi: SPI 4294967296 is out of range 256..4294967295'),
    ("src host", [("src: pe1", "src: ce1")],
     "x.yaml:23: ipsec.sas[0].src: 'ce1' is a host, not a router: tunnel endpoints are routers"),
    ("src unknown", [("src: pe1", "src: nowhere")],
     "x.yaml:23: ipsec.sas[0].src: 'nowhere' is neither a router of the topology nor an IPv4 address"),
    ("dst not loopback", [("dst: pe2", "dst: 10.255.0.99")],
     'x.yaml:24: ipsec.sas[0].dst: 10.255.0.99 is not the loopback of a router of the topology'),
    ("dst interface", [("dst: pe2", "dst: 192.168.2.1")],
     'x.yaml:24: ipsec.sas[0].dst: 192.168.2.1 is an interface of pe2; tunnel endpoints are loopbacks (10.255.0.3)'),
    ("dst int", [("dst: pe2", "dst: 5")],
     'x.yaml:24: ipsec.sas[0].dst: 5 is neither a router of the topology nor an IPv4 address'),
    ("src equals dst", [("dst: pe2", "dst: pe1")],
     'x.yaml:24: ipsec.sas[0].dst: src and dst are both pe1'),
    ("spi duplicate", [("spi: 0x2002\n      src: 10.255.0.3\n      dst: 10.255.0.1",
                        "spi: 0x1001\n      src: 10.255.0.1\n      dst: 10.255.0.3")],
     "x.yaml:32: ipsec.sas[1].spi: SPI 0x00001001 to pe2 is already used by SA 'pe1-pe2' (SPIs must be unique per destination)"),
    ("encryption unknown", [("encryption: aes-128-cbc", "encryption: des-cbc")],
     "x.yaml:25: ipsec.sas[0].encryption: 'des-cbc' is not one of: aes-128-cbc, aes-192-cbc, aes-256-cbc, aes-128-gcm-16, aes-192-gcm-16, aes-256-gcm-16"),
    ("encryption gcm", [("encryption: aes-128-cbc", "encryption: aes-128-gcm-16")],
     'x.yaml:25: ipsec.sas[0].encryption: aes-128-gcm-16 with manual keys is refused: AES-GCM must never reuse an IV with the same key, and static keys cannot guarantee that across restarts (RFC 4106 §8.1). Use aes-*-cbc with hmac-sha2-256-128, or IKEv2-derived keys'),
    ("integrity none", [("integrity: hmac-sha2-256-128", "integrity: none")],
     'x.yaml:27: ipsec.sas[0].integrity: aes-128-cbc without integrity is refused (RFC 8221 §5: ESP encryption needs authentication); set integrity: hmac-sha2-256-128'),
    ("integrity missing", [("      integrity: hmac-sha2-256-128\n", "")],
     'x.yaml:21: ipsec.sas[0]: aes-128-cbc without integrity is refused (RFC 8221 §5: ESP encryption needs authentication); set integrity: hmac-sha2-256-128'),
    ("integrity unknown", [("integrity: hmac-sha2-256-128", "integrity: hmac-md5-96")],
     "x.yaml:27: ipsec.sas[0].integrity: 'hmac-md5-96' is not one of: hmac-sha2-256-128, hmac-sha2-512-256"),
    ("enc_key number", [(f'enc_key: "{K16}"', "enc_key: 1234")],
     'x.yaml:26: ipsec.sas[0].enc_key: a key must be a quoted hex string (unquoted hex is read as a number)'),
    ("enc_key not hex", [(f'enc_key: "{K16}"', f'enc_key: "{K16}zz"')],
     'x.yaml:26: ipsec.sas[0].enc_key: a key must be hex digits (an even number, optional 0x)'),
    ("enc_key odd", [(f'enc_key: "{K16}"', f'enc_key: "{K16}0"')],
     'x.yaml:26: ipsec.sas[0].enc_key: a key must be hex digits (an even number, optional 0x)'),
    ("enc_key short", [(f'enc_key: "{K16}"', 'enc_key: "0001020304"')],
     'x.yaml:26: ipsec.sas[0].enc_key: aes-128-cbc needs a 16-byte key (32 hex digits), got 5 bytes'),
    ("enc_key colons and 0x", [(f'enc_key: "{K16}"', 'enc_key: "0x00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e"')],
     'x.yaml:26: ipsec.sas[0].enc_key: aes-128-cbc needs a 16-byte key (32 hex digits), got 15 bytes'),
    ("auth_key missing", [(f'      auth_key: "{A32}"\n', "")],
     "x.yaml:21: ipsec.sas[0]: missing 'auth_key' for hmac-sha2-256-128"),
    ("auth_key short", [(f'auth_key: "{A32}"', f'auth_key: "{K16}"')],
     'x.yaml:28: ipsec.sas[0].auth_key: hmac-sha2-256-128 needs a 32-byte key (64 hex digits, RFC 4868 §2.1.1), got 16 bytes'),
    ("auth_key not string", [(f'auth_key: "{A32}"', "auth_key: [1]")],
     'x.yaml:28: ipsec.sas[0].auth_key: a key must be a quoted hex string (unquoted hex is read as a number)'),
    ("key reuse across SAs", [(f'enc_key: "{K32B}"', f'enc_key: "{A32}"')],
     "x.yaml:36: ipsec.sas[1].enc_key: this key is already used as auth_key of SA 'pe1-pe2': never reuse a key"),
    ("key reuse within an SA", [("encryption: aes-128-cbc", "encryption: aes-256-cbc"),
                                (f'enc_key: "{K16}"', f'enc_key: "{A32}"')],
     "x.yaml:28: ipsec.sas[0].auth_key: this key is already used as enc_key of SA 'pe1-pe2': never reuse a key"),
    ("replay_window 16", [("replay_window: 64", "replay_window: 16")],
     'x.yaml:29: ipsec.sas[0].replay_window: replay_window 16 must be 0 (off) or 32..65536 (RFC 4303 §3.4.3)'),
    ("replay_window bool", [("replay_window: 64", "replay_window: yes")],
     'x.yaml:29: ipsec.sas[0].replay_window: replay_window True must be 0 (off) or 32..65536 (RFC 4303 §3.4.3)'),
    ("replay_window high", [("replay_window: 64", "replay_window: 65537")],
     'x.yaml:29: ipsec.sas[0].replay_window: replay_window 65537 must be 0 (off) or 32..65536 (RFC 4303 §3.4.3)'),
    ("esn int", [("esn: false", "esn: 1")],
     'x.yaml:30: ipsec.sas[0].esn: expected true or false, got 1'),
    ("df bad", [("      esn: false\n", "      esn: false\n      df: keep\n")],
     "x.yaml:31: ipsec.sas[0].df: df must be copy, set or clear, not 'keep'"),
    ("lifetime zero", [("      esn: false\n", "      esn: false\n      lifetime_packets: 0\n")],
     'x.yaml:31: ipsec.sas[0].lifetime_packets: lifetime_packets must be a positive integer, got 0'),
    ("lifetime bool", [("      esn: false\n", "      esn: false\n      lifetime_packets: true\n")],
     'x.yaml:31: ipsec.sas[0].lifetime_packets: lifetime_packets must be a positive integer, got True'),
    ("lifetime str", [("      esn: false\n", "      esn: false\n      lifetime_packets: many\n")],
     "x.yaml:31: ipsec.sas[0].lifetime_packets: lifetime_packets must be a positive integer, got 'many'"),
    # --- which check wins inside one SA
    ("missing before name", [(SA0, "    - name: 1pe\n")],
     "x.yaml:21: ipsec.sas[0]: missing 'spi'"),
    ("name before spi", [("name: pe1-pe2\n      spi: 0x1001", "name: 1pe\n      spi: 7")],
     "x.yaml:21: ipsec.sas[0].name: SA name '1pe' must start with a letter: letters, digits, _ . -"),
    ("spi before endpoints", [("spi: 0x1001\n      src: pe1", "spi: 7\n      src: ce1")],
     'x.yaml:22: ipsec.sas[0].spi: SPI 7 is reserved (0 and 1..255, RFC 4303 §2.1); use 256..4294967295'),
    ("src before dst", [("src: pe1\n      dst: pe2", "src: ce1\n      dst: nowhere")],
     "x.yaml:23: ipsec.sas[0].src: 'ce1' is a host, not a router: tunnel endpoints are routers"),
    ("endpoints before encryption", [("dst: pe2\n      encryption: aes-128-cbc", "dst: pe1\n      encryption: des")],
     'x.yaml:24: ipsec.sas[0].dst: src and dst are both pe1'),
    ("spi duplicate before encryption", [("spi: 0x2002\n      src: 10.255.0.3\n      dst: 10.255.0.1",
                                          "spi: 0x1001\n      src: 10.255.0.1\n      dst: 10.255.0.3"),
                                         ("encryption: aes-256-cbc", "encryption: des")],
     "x.yaml:32: ipsec.sas[1].spi: SPI 0x00001001 to pe2 is already used by SA 'pe1-pe2' (SPIs must be unique per destination)"),
    ("encryption before integrity", [("encryption: aes-128-cbc", "encryption: des"),
                                     ("integrity: hmac-sha2-256-128", "integrity: md5")],
     "x.yaml:25: ipsec.sas[0].encryption: 'des' is not one of: aes-128-cbc, aes-192-cbc, aes-256-cbc, aes-128-gcm-16, aes-192-gcm-16, aes-256-gcm-16"),
    ("integrity before enc_key", [("integrity: hmac-sha2-256-128", "integrity: md5"),
                                  (f'enc_key: "{K16}"', 'enc_key: "00"')],
     "x.yaml:27: ipsec.sas[0].integrity: 'md5' is not one of: hmac-sha2-256-128, hmac-sha2-512-256"),
    ("enc_key before auth_key", [(f'enc_key: "{K16}"', 'enc_key: "00"'), (f'auth_key: "{A32}"', 'auth_key: "00"')],
     'x.yaml:26: ipsec.sas[0].enc_key: aes-128-cbc needs a 16-byte key (32 hex digits), got 1 bytes'),
    ("key reuse before window", [(f'enc_key: "{K32B}"', f'enc_key: "{A32}"'), ("replay_window: 128", "replay_window: 1")],
     "x.yaml:36: ipsec.sas[1].enc_key: this key is already used as auth_key of SA 'pe1-pe2': never reuse a key"),
    ("window before esn", [("replay_window: 64\n      esn: false", "replay_window: 1\n      esn: 1")],
     'x.yaml:29: ipsec.sas[0].replay_window: replay_window 1 must be 0 (off) or 32..65536 (RFC 4303 §3.4.3)'),
    ("esn before df", [("      esn: false\n", "      esn: 1\n      df: keep\n")],
     'x.yaml:30: ipsec.sas[0].esn: expected true or false, got 1'),
    ("df before lifetime", [("      esn: false\n", "      esn: false\n      lifetime_packets: 0\n      df: keep\n")],
     "x.yaml:32: ipsec.sas[0].df: df must be copy, set or clear, not 'keep'"),
    ("first SA first", [("spi: 0x2002", "spi: 7"), ("spi: 0x1001", "spi: 8")],
     'x.yaml:22: ipsec.sas[0].spi: SPI 8 is reserved (0 and 1..255, RFC 4303 §2.1); use 256..4294967295'),
    # --- policies
    ("policy not mapping", [(P0, "    - 5\n")],
     'x.yaml:42: ipsec.policies[0]: expected a mapping'),
    ("policy unknown key", [("action: discard}", "action: discard, colour: red}")],
     "x.yaml:43: ipsec.policies[1].colour: unknown key 'colour' (allowed: name, router, src, dst, protocol, action, sa)"),
    ("policy missing router", [(P0H, "{src: 192.168.1.0/24, dst: 192.168.2.0/24")],
     "x.yaml:42: ipsec.policies[0]: missing 'router'"),
    ("policy missing action", [("dst: 10.255.0.0/16, action: discard}", "dst: 10.255.0.0/16}")],
     "x.yaml:43: ipsec.policies[1]: missing 'action'"),
    ("policy missing two", [("{router: pe1, src: 192.168.1.0/24, dst: 10.255.0.0/16, action: discard}", "{dst: 10.255.0.0/16}")],
     "x.yaml:43: ipsec.policies[1]: missing 'router'"),
    ("router unknown", [(P0H, P0H.replace("pe1", "p9"))],
     "x.yaml:42: ipsec.policies[0].router: 'p9' is not a router of the topology"),
    ("router host", [(P0H, P0H.replace("pe1", "ce1"))],
     "x.yaml:42: ipsec.policies[0].router: 'ce1' is not a router of the topology"),
    ("policy src bad", [(P0H, P0H.replace("192.168.1.0/24", "192.168.1.1/24"))],
     "x.yaml:42: ipsec.policies[0].src: bad IPv4 prefix '192.168.1.1/24': 192.168.1.1/24 has host bits set"),
    ("policy dst bad", [("dst: 10.255.0.0/16", "dst: 10.255.0.0/33")],
     "x.yaml:43: ipsec.policies[1].dst: bad IPv4 prefix '10.255.0.0/33': '33' is not a valid netmask"),
    ("protocol name", [("protocol: any", "protocol: sctp")],
     "x.yaml:48: ipsec.policies[2].protocol: protocol 'sctp' must be 0..255 or one of any, icmp, tcp, udp, gre"),
    ("protocol high", [("protocol: any", "protocol: 256")],
     'x.yaml:48: ipsec.policies[2].protocol: protocol 256 must be 0..255 or one of any, icmp, tcp, udp, gre'),
    ("protocol bool", [("protocol: any", "protocol: true")],
     'x.yaml:48: ipsec.policies[2].protocol: protocol True must be 0..255 or one of any, icmp, tcp, udp, gre'),
    ("action bad", [("action: discard}", "action: drop}")],
     "x.yaml:43: ipsec.policies[1].action: action 'drop' must be protect, bypass or discard"),
    ("protect without sa", [("action: protect, sa: pe1-pe2}", "action: protect}")],
     "x.yaml:42: ipsec.policies[0]: a protect policy needs 'sa'"),
    ("unknown sa", [("sa: pe1-pe2}", "sa: pe9-pe9}")],
     "x.yaml:42: ipsec.policies[0].sa: unknown SA 'pe9-pe9' (known: pe1-pe2, pe2-pe1)"),
    ("sa of other router", [("sa: pe1-pe2}", "sa: pe2-pe1}")],
     "x.yaml:42: ipsec.policies[0].sa: SA 'pe2-pe1' is sent by pe2, not by pe1"),
    ("discard with sa", [("action: discard}", "action: discard, sa: pe1-pe2}")],
     'x.yaml:43: ipsec.policies[1].sa: only protect policies name an SA, this one is discard'),
    ("policy name not string", [("name: pe2-to-site1", "name: 5")],
     'x.yaml:44: ipsec.policies[2].name: policy name must be a string'),
    # --- which check wins inside one policy, and between parts
    ("missing before router", [(P0H, "{router: p9, src: 192.168.1.0/24")],
     "x.yaml:42: ipsec.policies[0]: missing 'dst'"),
    ("router before src", [(P0H, "{router: p9, src: 192.168.1.1/24, dst: 192.168.2.0/24")],
     "x.yaml:42: ipsec.policies[0].router: 'p9' is not a router of the topology"),
    ("src before dst", [("src: 192.168.1.0/24, dst: 10.255.0.0/16", "src: x, dst: y")],
     "x.yaml:43: ipsec.policies[1].src: bad IPv4 prefix 'x': Expected 4 octets in 'x'"),
    ("prefixes before protocol", [("src: 192.168.2.0/24\n", "src: 192.168.2.5/24\n"), ("protocol: any", "protocol: x")],
     "x.yaml:46: ipsec.policies[2].src: bad IPv4 prefix '192.168.2.5/24': 192.168.2.5/24 has host bits set"),
    ("protocol before action", [("protocol: any\n      action: protect", "protocol: x\n      action: y")],
     "x.yaml:48: ipsec.policies[2].protocol: protocol 'x' must be 0..255 or one of any, icmp, tcp, udp, gre"),
    ("action before sa", [("action: discard}", "action: drop, sa: pe1-pe2}")],
     "x.yaml:43: ipsec.policies[1].action: action 'drop' must be protect, bypass or discard"),
    ("sa before name", [("      sa: pe2-pe1\n", "      sa: pe9\n"), ("name: pe2-to-site1", "name: 5")],
     "x.yaml:50: ipsec.policies[2].sa: unknown SA 'pe9' (known: pe1-pe2, pe2-pe1)"),
    ("SA errors before policy errors", [("spi: 0x2002", "spi: 7"), ("action: discard}", "action: drop}")],
     'x.yaml:32: ipsec.sas[1].spi: SPI 7 is reserved (0 and 1..255, RFC 4303 §2.1); use 256..4294967295'),
    ("first policy first", [("action: discard}", "action: drop}"), ("protocol: any", "protocol: x")],
     "x.yaml:43: ipsec.policies[1].action: action 'drop' must be protect, bypass or discard"),
    ("unused SA", [("      sa: pe2-pe1\n", "      sa: pe1-pe2\n"), ("      router: pe2\n", "      router: pe1\n")],
     "x.yaml:31: ipsec.sas[1].name: SA 'pe2-pe1' is not used by any protect policy (its selectors come from them)"),
    ("policy errors before unused SA", [("      sa: pe2-pe1\n", "      sa: pe1-pe2\n"), ("      router: pe2\n", "      router: pe1\n"),
                                        ("action: discard}", "action: drop}")],
     "x.yaml:43: ipsec.policies[1].action: action 'drop' must be protect, bypass or discard"),
    ("unused SA before ike", [("      sa: pe2-pe1\n", "      sa: pe1-pe2\n"), ("      router: pe2\n", "      router: pe1\n"),
                              ("  policies:\n", "  ike: 5\n  policies:\n")],
     "x.yaml:31: ipsec.sas[1].name: SA 'pe2-pe1' is not used by any protect policy (its selectors come from them)"),
    ("ike not list", [("  policies:\n", "  ike: 5\n  policies:\n")],
     'x.yaml:41: ipsec.ike: expected a list of IKE connections'),
    ("ike name clashes with an SA", [("  policies:\n", "  ike:\n    - {name: pe1-pe2, left: pe1, right: pe2, psk: '12345678', "
                                      "left_subnets: [10.1.0.0/16], right_subnets: [10.2.0.0/16]}\n  policies:\n")],
     "x.yaml:42: ipsec.ike[0].name: name 'pe1-pe2' is already used by an SA or IKE connection"),
    ("sections in section_names() order", [("  policies:\n", "  ike: 5\n  policies:\n"), ("ipsec:\n", "expect: 3\nipsec:\n")],
     'x.yaml:18: expect: expected a list of assertions (- lsp: {...} or - ping: {...})'),

]


def edited(base: str, edits: str | list[tuple[str, str]]) -> str:
    if isinstance(edits, str):
        return base.split("ipsec:")[0] + edits
    for old, new in edits:
        assert old in base, old
        base = base.replace(old, new, 1)
    return base


@pytest.mark.parametrize("edits,message", [c[1:] for c in EXACT], ids=[c[0] for c in EXACT])
def test_exact_messages_and_which_wins(edits, message):
    with pytest.raises(TopologyError) as ei:
        parse_topology(edited(VALID, edits), "x.yaml")
    assert str(ei.value) == message


def test_cli_validate_accepts_the_example():
    from click.testing import CliRunner

    from lsr.cli import main

    r = CliRunner().invoke(main, ["topo", "validate", str(DATA)])
    assert r.exit_code == 0, r.output

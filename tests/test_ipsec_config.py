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


def test_cli_validate_accepts_the_example():
    from click.testing import CliRunner

    from lsr.cli import main

    r = CliRunner().invoke(main, ["topo", "validate", str(DATA)])
    assert r.exit_code == 0, r.output

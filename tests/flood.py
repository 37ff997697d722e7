"""A spoofed LDP Link Hello flood, for tests (run inside a namespace we created).

    ip netns exec NS python3 -m tests.flood --ifname eth0 --rate 400 --seconds 5

Each frame is a whole Ethernet frame on an AF_PACKET socket: IPv4/UDP 646 to
224.0.0.2 (01:00:5e:00:00:02), TTL 1, a random source address, LSR ID and Transport
Address (RFC 5036 §3.5.2 Hello with the Transport Address TLV) -- what a hostile host
or a broken neighbour would send. `--ospf` sends OSPFv2 Hellos (protocol 89 to
224.0.0.5) with random Router IDs instead. Prints the number of frames sent.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import time
from ipaddress import IPv4Address, IPv4Network

from ldp import codec
from ldp.messages import Hello, LdpId, Pdu

ALL_LDP = IPv4Address("224.0.0.2")  # all routers (RFC 5036 §2.4.1)
ALL_SPF = IPv4Address("224.0.0.5")  # AllSPFRouters (RFC 2328 A.1)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_packet(src: IPv4Address, dst: IPv4Address, proto: int, payload: bytes,
              tos: int = 0) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), random.getrandbits(16), 0,
                      1, proto, 0, src.packed, dst.packed)
    return hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:] + payload


def ldp_hello(rng: random.Random, transports: list[IPv4Network],
              dst: IPv4Address = ALL_LDP) -> bytes:
    """One spoofed Link Hello (an IPv4 packet): a random LSR ID in 11/8 (no lab uses it),
    a random source in 12/8 and a Transport Address drawn from `transports` (the LSR ID
    when empty). A transport below the router's own makes it the active side (§2.5.2)
    and, when it has a route there, open TCP towards it."""
    lsr_id = IPv4Address(rng.randrange(0x0B000001, 0x0BFFFFFE))
    src = IPv4Address(rng.randrange(0x0C000001, 0x0CFFFFFE))
    transport = lsr_id
    if transports:
        net = rng.choice(transports)
        transport = net[rng.randrange(net.num_addresses)]
    pdu = codec.encode_pdu(Pdu(LdpId(lsr_id, 0), (Hello(rng.getrandbits(31), 15,
                                                          transport_address=transport),)))
    udp = struct.pack("!HHHH", 646, 646, 8 + len(pdu), 0) + pdu  # checksum 0: none (IPv4)
    return ip_packet(src, dst, 17, udp)


def ospf_hello(rng: random.Random, dst: IPv4Address = ALL_SPF) -> bytes:
    """One OSPFv2 Hello (RFC 2328 A.3.2) from a random Router ID, 10/40 s timers."""
    rid = IPv4Address(rng.randrange(0x0B000001, 0x0BFFFFFE))
    body = struct.pack("!4sHBBI4s4s", b"\xff\xff\xff\xfc", 10, 0x02, 1, 40, b"\0" * 4, b"\0" * 4)
    hdr = struct.pack("!BBH4s4sHH8s", 2, 1, 24 + len(body), rid.packed, b"\0" * 4, 0, 0, b"\0" * 8)
    pkt = bytearray(hdr + body)
    struct.pack_into("!H", pkt, 12, _csum(bytes(pkt[:16]) + bytes(pkt[24:])))
    src = IPv4Address(rng.randrange(0x0C000001, 0x0CFFFFFE))
    return ip_packet(src, dst, 89, bytes(pkt), tos=0xC0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.flood")
    ap.add_argument("--ifname", required=True)
    ap.add_argument("--rate", type=float, default=400.0, help="frames a second")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ospf", action="store_true", help="OSPF Hellos instead of LDP Hellos")
    ap.add_argument("--transport", action="append", default=[], type=IPv4Network,
                    help="draw Transport Addresses from this prefix (repeatable)")
    ap.add_argument("--dst", type=IPv4Address, help="unicast to this address (default: the "
                    "protocol's multicast group)")
    ap.add_argument("--dst-mac", help="with --dst: the router's MAC, aa:bb:cc:dd:ee:ff")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((args.ifname, 0))
    with open(f"/sys/class/net/{args.ifname}/address") as f:
        mac = bytes.fromhex(f.read().strip().replace(":", ""))
    dst_mac = bytes.fromhex("01005e000005" if args.ospf else "01005e000002")
    if args.dst is not None:
        dst_mac = bytes.fromhex(args.dst_mac.replace(":", ""))
    kw = {"dst": args.dst} if args.dst is not None else {}
    sent = 0
    start = time.monotonic()
    end = start + args.seconds
    while (now := time.monotonic()) < end:
        due = int((now - start) * args.rate) + 1
        while sent < due:
            pkt = ospf_hello(rng, **kw) if args.ospf else ldp_hello(rng, args.transport, **kw)
            s.send(dst_mac + mac + b"\x08\x00" + pkt)
            sent += 1
        time.sleep(min(0.005, max(0.0, end - time.monotonic())))  # paces the stream
    print(sent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

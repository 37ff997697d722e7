"""forwarding.afpacket on a real veth pair: frames the TX ring cannot take still go out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CHILD = r'''
import socket, sys
sys.path.insert(0, sys.argv[1])
from forwarding.afpacket import TxRing
rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))
rx.bind(("zb", 0))
rx.settimeout(2)
tx = TxRing("za", frame_size=2048, frames=16)
head = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5"
assert tx.send(head + b"x" * 3000)  # bigger than a slot: the plain-socket fallback
assert tx.send(head + b"y" * 100)   # through the ring
tx.flush()
print(sorted(len(rx.recv(9000)) for _ in range(2)))
'''


def test_tx_ring_fallback_really_sends() -> None:
    ns = f"lsr-ztx{os.getpid() % 10000}-a"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "za", "type", "veth", "peer", "name", "zb"],
                       check=True)
        for dev in ("za", "zb"):
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "mtu", "9000", "up"], check=True)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", CHILD, root],
                           capture_output=True, text=True, timeout=30)
        assert r.stdout.strip() == "[114, 3014]", r.stdout + r.stderr
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)

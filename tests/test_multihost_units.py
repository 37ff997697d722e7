"""Pieces of a lab over several machines that need no root and no Ray: the carrier
relay's netlink parsing (lsr.lab.carrier: link messages as the kernel sends them, several
to a datagram, other and truncated ones passed over) and the routers' fork server
(lsr.lab.forker: one line for a request it cannot do)."""

from __future__ import annotations

import os
import struct

import pytest

from lsr.lab.carrier import IFF_UP, RTM_DELLINK, RTM_NEWLINK, parse_links
from lsr.lab.routers import ForkServer
from lsr.lab.state import LabError
from tests.conftest import ROOT


def _link(kind: int, name: str, flags: int, extra_attrs: bytes = b"") -> bytes:
    ifname = name.encode() + b"\0"
    rta = struct.pack("=HH", 4 + len(ifname), 3) + ifname
    rta += b"\0" * (-len(rta) % 4)
    mtu = struct.pack("=HHI", 8, 4, 1500)  # IFLA_MTU first: the name is looked for
    body = struct.pack("=BxHiII", 0, 1, 7, flags, 0xFFFFFFFF) + extra_attrs + mtu + rta
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_link_messages() -> None:
    data = (_link(RTM_NEWLINK, "eth3", IFF_UP | 0x10000) + _link(RTM_NEWLINK, "eth1", 0x1002)
            + struct.pack("=IHHII", 20, 3, 0, 0, 0) + b"\0" * 4  # NLMSG_DONE
            + _link(RTM_DELLINK, "eth2", IFF_UP))
    assert parse_links(data) == [("eth3", True), ("eth1", False), ("eth2", False)]


def test_truncated_and_odd_messages_are_passed_over() -> None:
    whole = _link(RTM_NEWLINK, "eth3", IFF_UP)
    assert parse_links(whole[:-3]) == []
    assert parse_links(b"") == []
    assert parse_links(struct.pack("=IHHII", 8, RTM_NEWLINK, 0, 0, 0)) == []  # length < header
    bad_rta = whole[:32] + struct.pack("=HH", 2, 3) + whole[36:]
    assert parse_links(bad_rta) == []


def test_fork_server_answers_a_bad_request_in_one_line(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = ForkServer(env)
    try:
        with pytest.raises(LabError, match=r"router fork server: error FileNotFoundError: .*"
                                           r"/run/netns/vx-no-such-ns"):
            server.spawn("vx-no-such-ns", ["--help"], tmp_path / "x.log")
    finally:
        server.close()
    assert server.proc.returncode == 0  # it ends with its input

"""Our userspace MPLS dataplane in an FRR node's namespace, fed from FRR's RIB and bindings.

    ip netns exec lsr-<lab>.<frr-node> python -m lsr.lab.frrplane --lab LAB --router NODE

The kernel here has no MPLS, so FRR's ldpd can only advertise and learn labels
(zebra drops its label installs). This process gives an FRR node the same
AF_PACKET forwarding plane as our routers (`forwarding.plane`), with an LFIB
computed from FRR's own decisions:

* RIB: the node's connected prefixes plus the routes FRR's ospfd had zebra
  install into the kernel (proto ospf), watched over netlink: a route change
  reaches the forwarding tables at once, with the bindings already known
  (liberal retention keeps every neighbour's labels);
* FTN: every RIB prefix with next hops -> for each ECMP next hop, the label
  that neighbour advertised to FRR (`show mpls ldp binding json`; nothing for
  implicit-null);
* ILM: FRR's local label for the prefix -> swap to that label (pop for
  implicit-null). FRR's egress FECs (implicit-null) need no ILM.

The bindings are read again whenever ldpd's log grows with a label event. The
LFIB is written to `lfib.json` in root's directory of the node (`frr.node_dir`,
never one `frr` can write; what `lsr lab lfib` shows for FRR nodes).

RFC 8029: the node answers MPLS echo requests as our routers do
(`lsr.lab.node_oam`, the same responder) from this LFIB, i.e. from FRR's
bindings: a request whose label TTL expires here gets "label switched" with
FRR's outgoing label in the DDMAP, one that ends here (PHP, explicit-null) gets
"egress" for the FECs FRR advertises implicit- or explicit-null for. A
management socket `<lab dir>/<node>.sock` (root 0600, like our routers')
answers `lfib`, `counters` and the `oam_*` requests, so `lsr lsp` and
`lsr lab validate` can also probe from an FRR node. `LSR_FRR_OAM=0` leaves the
responder out (FRR itself has no RFC 8029 responder): the node then forwards
echo requests but never answers one, and traceroutes show it as a silent hop.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import os
import pickle
import re
import signal
import socket
import sys
import traceback
from ipaddress import IPv4Network
from typing import Any

from lsr.core.lfib import Lfib
from lsr.core.topology import Topology
from lsr.lab import frr
from lsr.lab.files import write_file
from lsr.lab.node_oam import NodeOam
from lsr.lab.state import lab_dir

log = logging.getLogger("lsr.frrplane")
BATCH = 64
OAM = os.environ.get("LSR_FRR_OAM", "1") != "0"  # answer RFC 8029 echo requests
# ldpd debug log lines after which FRR's bindings may have changed
TRIGGER = re.compile(rb"label (mapping|withdraw|release)|nbr_fsm|session_close|zebra")
RTMGRP_IPV4_ROUTE = 0x40
RTPROT_OSPF = 188  # zebra installs ospfd's routes with this protocol
MAIN_TABLE = 254


class FrrPlane:
    def __init__(self, lab: str, topo: Topology, name: str) -> None:
        from forwarding.plane import Dataplane
        from forwarding.tables import RouterTables

        self.lab, self.topo, self.name = lab, topo, name
        self.node = topo.nodes[name]
        self.dir = frr.node_dir(lab, name)
        self.loop = asyncio.get_event_loop()
        self.counters: collections.Counter[str] = collections.Counter()
        self.routes: list[tuple[str, list[tuple[str, str]]]] = []  # zebra's, from the kernel
        self.bindings: list[dict[str, Any]] = []
        self.rib = frr.rib_from_kernel(topo, name, [])
        self.lfib = Lfib()
        # Labelled frames are accepted on the interfaces ldpd runs on (its ldpd.conf lists
        # Topology.ldp_interfaces), as on our routers: never on a host link.
        self.tables = RouterTables.build(topo, name, self.rib, self.lfib,
                                         mpls_input=topo.ldp_interfaces(name))
        self.process = Dataplane(self.tables).process
        self.ports: dict[str, Any] = {}
        self.tx = self.ports  # what NodeOam sends replies and probes on
        self.egress: frozenset[IPv4Network] = frozenset()
        self.oam = NodeOam(self, own_fecs=lambda: self.egress)
        self.my_macs = {i.name: bytes.fromhex(i.mac.replace(":", ""))
                        for i in self.node.interfaces.values()}
        self.ldp_ifs = frozenset(topo.ldp_interfaces(name))
        self.raw: socket.socket | None = None
        self.log_pos = 0
        self.dirty = True
        self.refreshing = False

    # ------------------------------------------------------------ control: FRR -> LFIB

    def _watch(self) -> None:
        """Cheap change detection: new label events in ldpd's log (a file in frr's
        directory: read without following links, never blocking)."""
        new = frr.read_log(self.lab, self.name, "ldpd", self.log_pos)
        self.log_pos += len(new)
        if TRIGGER.search(new):
            self.dirty = True

    def refresh(self) -> None:
        """Forwarding state from the current routes and bindings."""
        rib = frr.rib_from_kernel(self.topo, self.name, self.routes)
        self.install(rib, frr.lfib_from_bindings(self.topo, self.name, rib, self.bindings))
        self.egress = frr.egress_fecs(rib, self.bindings)

    async def control(self) -> None:
        routes = self.loop.create_task(self.watch_routes())
        try:
            while True:
                self._watch()
                if self.dirty:
                    self.dirty = False
                    try:
                        # vtysh takes ~0.1 s: off the loop, the dataplane keeps forwarding
                        self.bindings = await self.loop.run_in_executor(
                            None, frr.bindings, self.lab, None, self.name)
                        self.refresh()
                    except Exception:
                        self.counters["refresh_errors"] += 1
                        self.dirty = True
                        log.warning("refresh failed:\n%s", traceback.format_exc())
                await asyncio.sleep(0.1)
        finally:
            routes.cancel()

    async def watch_routes(self) -> None:
        """zebra's kernel routes over netlink: every change is applied at once (a dump of
        the table after each batch of notifications)."""
        from pyroute2 import AsyncIPRoute

        try:
            mon, dump = AsyncIPRoute(), AsyncIPRoute()
            await mon.setup_endpoint()
            await mon.bind(groups=RTMGRP_IPV4_ROUTE)
            await dump.setup_endpoint()
            while True:
                self.routes = await self._dump(dump)
                self.refresh()
                async for _ in mon.get():
                    pass  # any route change: dump again (the table is small)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.counters["netlink_errors"] += 1
            log.error("route watch failed:\n%s", traceback.format_exc())

    @staticmethod
    async def _dump(ipr: Any) -> list[tuple[str, list[tuple[str, str]]]]:
        out = []
        async for m in await ipr.route("dump", table=MAIN_TABLE, family=socket.AF_INET):
            if m.get("proto") != RTPROT_OSPF or m.get("type") != 1:  # unicast from ospfd
                continue
            prefix = f"{m.get_attr('RTA_DST') or '0.0.0.0'}/{m.get('dst_len')}"
            hops = []
            for nh in m.get_attr("RTA_MULTIPATH") or [m]:
                oif = nh.get("oif") if nh is not m else m.get_attr("RTA_OIF")
                gw = nh.get_attr("RTA_GATEWAY")
                with contextlib.suppress(OSError, TypeError):
                    hops.append((str(gw or ""), socket.if_indextoname(oif)))
            out.append((prefix, hops))
        return sorted(out)

    def install(self, rib: dict, lfib: Lfib) -> None:
        if rib != self.rib:
            self.rib = rib
            self.tables.set_rib(rib)
        if lfib.to_json() != self.lfib.to_json():
            self.lfib = lfib
            self.tables.set_lfib(lfib)
            self.counters["lfib_updates"] += 1
            # root's own directory (frr.node_dir), and still a fresh O_EXCL|O_NOFOLLOW file
            write_file(self.dir / "lfib.json", json.dumps(lfib.to_json(), sort_keys=True), 0o600)

    # ------------------------------------------------------------ dataplane

    def open_ports(self) -> None:
        from forwarding.afpacket import PacketPort

        for ifname in self.node.interfaces:
            port = PacketPort(ifname)
            self.ports[ifname] = port
            self.loop.add_reader(port.fileno(), self._frames, ifname, port)

    def _frames(self, ifname: str, port: Any) -> None:
        """Every frame gets its outcome and counter from `forwarding.plane` (FRR's own traffic,
        ARP and broadcasts are delivered: the kernel has its copy; VLAN tags come back in
        place from PacketPort)."""
        from forwarding.plane import LOCAL_IF

        c, my_mac, mpls_ok = self.counters, self.my_macs[ifname], ifname in self.ldp_ifs
        for f in port.recv_batch(BATCH):
            # RFC 8029 echo requests: label TTL expiring here, explicit-null (only where
            # labels are accepted at all), or IP to 127/8
            if OAM and len(f) > 34 and f[:6] == my_mac:
                et = f[12:14]
                if (f[30] == 127 if et == b"\x08\x00" else et == b"\x88\x47" and mpls_ok and (
                        f[17] <= 1 or f[14:16] == b"\0\0")) and self.oam.intercept(f, ifname):
                    continue
            try:
                out = self.process(f, ifname)
            except Exception:
                c["dataplane_errors"] += 1
                continue
            for out_if, data in out:
                p = self.ports.get(out_if)
                if p is not None:
                    c["forwarded" if p.send(data) else "tx_errors"] += 1
                elif out_if == LOCAL_IF:
                    self._deliver_local(data)
        for p in self.ports.values():
            if getattr(p, "pending", False):
                p.flush()

    def _deliver_local(self, packet: bytes) -> None:
        if self.raw is None:
            self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        with contextlib.suppress(OSError):
            self.raw.sendto(packet, (socket.inet_ntoa(packet[16:20]), 0))
            self.counters["delivered_local"] += 1

    # ------------------------------------------------------------ management

    def answer(self, req: dict[str, Any]) -> Any:
        op = req.get("op")
        if str(op).startswith("oam_"):
            return self.oam.answer(req)
        if op == "lfib":
            return self.lfib.to_json()
        if op == "counters":
            return {"runtime": dict(sorted(self.counters.items())),
                    "oam": dict(sorted(self.oam.counters.items())),
                    "dataplane": self.tables.counters_json()}
        raise ValueError(f"unknown op {op!r} (an FRR node's dataplane answers lfib, counters, "
                         "oam_*; ask FRR with vtysh)")

    async def _mgmt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("bad request: expected a JSON object")
                    result = self.answer(req)
                    if asyncio.iscoroutine(result):
                        result = await result
                    resp = {"ok": True, "result": result}
                except ValueError as e:  # the request's fault (bad JSON, unknown op)
                    resp = {"ok": False, "error": " ".join(str(e).split()) or "bad request"}
                except Exception as e:  # our bug: traceback to the dataplane log
                    log.error("management request failed:\n%s", traceback.format_exc())
                    resp = {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"}
                writer.write((json.dumps(resp, sort_keys=True) + "\n").encode())
                await writer.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass  # gone, or a line over the reader's limit: drop the connection
        finally:
            writer.close()

    async def run(self) -> None:
        sock_path = lab_dir(self.lab) / f"{self.name}.sock"  # root's 0700 lab directory
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        server = await asyncio.start_unix_server(self._mgmt, path=str(sock_path))
        os.chmod(sock_path, 0o600)  # root's alone, like our routers' (connect needs write)
        self.open_ports()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, stop.set)
        task = self.loop.create_task(self.control())
        log.info("FRR dataplane for %s up (pid %d)", self.name, os.getpid())
        try:
            await stop.wait()
        finally:
            task.cancel()
            server.close()
            with contextlib.suppress(FileNotFoundError):
                sock_path.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lsr.lab.frrplane")
    ap.add_argument("--lab", required=True)
    ap.add_argument("--router", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {args.router} %(levelname)s %(message)s")
    topo: Topology = pickle.loads((lab_dir(args.lab) / "topology.pickle").read_bytes())

    async def amain() -> None:
        await FrrPlane(args.lab, topo, args.router).run()

    asyncio.run(amain())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Link impairments in a router's runtime: frames held on timers and released on schedule.

The kernel here has no netem, so our dataplane impairs links itself. Who applies a link's
`delay` / `jitter` / `loss` / `rate` (lsr.core.impair), for each direction of the link:

* a direction an `lsr` router **sends** is impaired by that router on egress;
* a direction sent by a node that is not ours to run (a host's kernel, an FRR router, a
  strongSwan gateway) is impaired by the `lsr` router at the other end **on receive**,
  before it forwards the frame.

So both directions of every impaired link are impaired once: 20 ms of delay add 40 ms to
the round trip, and a one-way stream loses `loss` of its frames. What goes through the
router's kernel rather than our dataplane is not impaired: the router's own OSPF, LDP and
IKE packets (so a lossy link does not flap adjacencies), and a host's ping to its
gateway's own address.

Unimpaired interfaces keep the ring-to-ring fast path at no cost: an impaired egress is
a wrapper in `Router.tx` in place of the TX ring, which the fast path
(`forwarding.ioloop`, `forwarding.vector`) leaves to the general path; an impaired ingress
has its RX readers replaced. Deciding is pure (`forwarding.impair.Scheduler`); here frames
wait on the event loop's timers. asyncio wakes up to a millisecond after a timer's time
(epoll's millisecond timeout), so frames are released up to `EARLY` before theirs: the
error is then centred on zero instead of half a millisecond late on average.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from forwarding.impair import LOSS, QUEUE_FULL, Scheduler
from lsr.core.impair import Impairment

log = logging.getLogger("lsr.node")

EARLY = 0.0005  # s: release this much before the time (see the module docstring)


class _Held:
    """One direction's scheduler and its timer on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sched: Scheduler,
                 release: Callable[[list[bytes]], None]) -> None:
        self.loop = loop
        self.sched = sched
        self.release = release
        self.timer: Any = None
        self.timer_due = 0.0
        self.active = True

    def take(self, frame: bytes, now: float) -> None:
        if self.sched.push(frame, now) is None:
            self.due(now)

    def due(self, now: float) -> None:
        """Release what is due (within EARLY) and set the timer for the rest."""
        frames = self.sched.pop_due(now + EARLY)
        if frames:
            self.release(frames)
        nxt = self.sched.next_due()
        if nxt is None:
            return
        if self.timer is not None:
            if self.timer_due <= nxt:
                return
            self.timer.cancel()
        self.timer_due = nxt
        self.timer = self.loop.call_at(nxt - EARLY, self._fire)

    def _fire(self) -> None:
        self.timer = None
        try:
            self.due(time.monotonic())
        except Exception:  # a send error must not stop the timer chain for good
            log.exception("impairment release failed")

    def stop(self) -> list[bytes]:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.active = False
        return self.sched.clear()


class ImpairedTx:
    """Stands in `Router.tx[ifname]` for the interface's port (a TX ring or a packet
    socket): frames the general path sends are held, then sent on the port."""

    def __init__(self, port: Any, held: Callable[[ImpairedTx], _Held]) -> None:
        self.port = port
        self.pending = 0  # frames leave from the timer, never in the caller's flush
        self.held = held(self)

    @property
    def tx_errors(self) -> int:
        return self.port.tx_errors

    @property
    def tx_dropped(self) -> int:
        return getattr(self.port, "tx_dropped", 0)

    def send(self, frame: bytes | bytearray | memoryview) -> bool:
        self.held.take(bytes(frame), time.monotonic())
        return True  # on the wire as far as the router is concerned (a loss is counted)

    def flush(self) -> None:
        pass

    def out(self, frames: list[bytes]) -> None:
        port = self.port
        for f in frames:
            port.send(f)
        if port.pending:
            port.flush()


class NodeImpair:
    """A router's impaired links: which interfaces, their schedulers, their counters."""

    def __init__(self, router: Any) -> None:
        self.r = router
        self.params: dict[int, Impairment] = {}  # link index -> in force
        self.egress: dict[str, ImpairedTx] = {}  # ifname -> wrapper (kept once made: counters)
        self.ingress: dict[str, _Held] = {}

    # ------------------------------------------------------------ set-up

    def start(self) -> None:
        """After the ports are open: the topology's impairments, and those `lsr lab link ...
        set` gave at run time (the lab's state file: they outlive a router restart)."""
        runtime = self._runtime()
        for iface in self.r.node.interfaces.values():
            imp = self.r.topo.links[iface.link].impair
            if str(iface.link) in runtime:
                raw = runtime[str(iface.link)]
                imp = Impairment.from_json(raw) if raw else None
            if imp is not None and imp.active:
                self.set(iface.link, imp)

    def _runtime(self) -> dict[str, Any]:
        try:
            st = json.loads((self.r.state_dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        imps = st.get("impairments", {})
        return imps if isinstance(imps, dict) else {}

    def _rng(self, ifname: str, direction: str) -> random.Random:
        # Seeded: a lab's loss pattern is the same each run (a str seed is hashed stably)
        return random.Random(f"{self.r.state_dir.name}/{self.r.name}/{ifname}/{direction}")

    def ingress_too(self, ifname: str) -> bool:
        """Does this end also impair what it receives? Yes when the peer is not our router."""
        iface = self.r.node.interfaces[ifname]
        return self.r.topo.nodes[iface.peer_node].kind != "lsr"

    def set(self, link: int, imp: Impairment | None) -> dict[str, Any]:
        """Apply (or with None / nothing active, remove) the impairment of `link` on our end."""
        mine = [i.name for i in self.r.node.interfaces.values() if i.link == link]
        if not mine:
            raise ValueError(f"{self.r.name} has no interface on link {link}")
        on = imp is not None and imp.active
        if on:
            self.params[link] = imp  # type: ignore[assignment]
        else:
            self.params.pop(link, None)
        for ifname in mine:
            self._egress(ifname, imp if on else None)
            if self.ingress_too(ifname):
                self._ingress(ifname, imp if on else None)
        if self.r.fast is not None:
            self.r.fast.forget_ip_entries()  # egress types changed: fast path or not
        log.info("link %d impairment: %s", link, imp.describe() if on else "none")
        return {"link": link, "interfaces": mine, "impair": imp.to_json() if on else None}

    def _egress(self, ifname: str, imp: Impairment | None) -> None:
        w = self.egress.get(ifname)
        if imp is None:
            if w is not None and w.held.active:
                w.out(w.held.stop())  # held frames leave now
                self.r.tx[ifname] = w.port
            return
        if w is None:
            port = self.r.tx[ifname]
            w = ImpairedTx(port, lambda tx: _Held(self.r.loop, Scheduler(imp, self._rng(ifname, "out")),
                                                 tx.out))
            self.egress[ifname] = w
        else:
            w.held.sched.set_params(imp)
            w.held.active = True
        self.r.tx[ifname] = w

    def _ingress(self, ifname: str, imp: Impairment | None) -> None:
        h = self.ingress.get(ifname)
        if imp is None:
            if h is not None and h.active:
                frames = h.stop()
                self.r.set_ingress_hook(ifname, None)
                if frames:
                    self.r.receive_general(ifname, frames)
            return
        if h is None:
            h = _Held(self.r.loop, Scheduler(imp, self._rng(ifname, "in")),
                      lambda frames: self.r.receive_general(ifname, frames))
            self.ingress[ifname] = h
        else:
            h.sched.set_params(imp)
            h.active = True
        self.r.set_ingress_hook(ifname, self._take_in(h))

    @staticmethod
    def _take_in(h: _Held) -> Callable[[list[bytes]], None]:
        def take(frames: list[bytes]) -> None:
            now = time.monotonic()
            for f in frames:
                h.take(f, now)
        return take

    # ------------------------------------------------------------ views

    def counters_json(self) -> dict[str, Any]:
        """Per interface and direction that ever had an impairment: its parameters in force
        (None: removed since) and counters (`impair-loss`, `impair-queue-full`,
        `impair-passed`, `held` now)."""
        out: dict[str, Any] = {}
        for direction, table in (("out", {k: w.held for k, w in self.egress.items()}),
                                 ("in", self.ingress)):
            for ifname, h in table.items():
                iface = self.r.node.interfaces[ifname]
                out[f"{ifname} {direction}"] = {
                    "interface": ifname, "direction": direction, "link": iface.link,
                    "peer": iface.peer_node,
                    "impair": h.sched.params.to_json() if h.active else None,
                    LOSS: h.sched.counters[LOSS], QUEUE_FULL: h.sched.counters[QUEUE_FULL],
                    "impair-passed": h.sched.counters["impair-passed"],
                    "held": len(h.sched.held)}
        return dict(sorted(out.items()))

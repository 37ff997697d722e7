"""`lsr lab web` without a lab: the snapshot diff (timeline), link rates, the page's state,
the layout, interface counters, and the HTTP server's access rules against a stand-in view."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from lsr.errors import LsrError
from lsr.web.collect import link_counters, parse_net_dev
from lsr.web.layout import fit
from lsr.web.server import WebServer
from lsr.web.timeline import (
    LinkCounters,
    Snapshot,
    Timeline,
    diff,
    lfib_entries,
    link_rates,
    state_json,
)

NAMES = {0: "ce1-pe1", 1: "pe1-p1", 2: "p1-pe2"}
OP = "OPERATIONAL"


def snap(t: float = 10.0, *, alive: dict | None = None, sessions: dict | None = None,
         ospf: dict | None = None, down: set[int] = frozenset(), lfib: dict | None = None,
         counters: dict | None = None) -> Snapshot:
    alive = {"pe1": True, "p1": True, "pe2": True} if alive is None else alive
    if sessions is None:
        sessions = {"pe1": {"p1": OP}, "p1": {"pe1": OP, "pe2": OP}, "pe2": {"p1": OP}}
    if ospf is None:
        ospf = {"pe1": {"p1": "Full"}, "p1": {"pe1": "Full", "pe2": "Full"}, "pe2": {"p1": "Full"}}
    if lfib is None:
        lfib = {r: {"FTN 10.255.0.9/32": "push 9 via x (eth1)"} for r in alive if alive[r]}
    return Snapshot(t, alive, sessions, ospf, frozenset(down), lfib, counters or {})


def texts(events) -> list[str]:
    return [e.text for e in events]


# ---------------------------------------------------------------- the timeline


def test_first_snapshot_is_one_summary_event():
    ev = diff(None, snap(down={1}), NAMES)
    assert [(e.kind, e.text) for e in ev] == [
        ("lab", "watching: 3/3 routers running, links down: pe1-p1")]


def test_no_change_no_event():
    assert diff(snap(1.0), snap(2.0), NAMES) == []


def test_link_down_then_up_named_and_stamped():
    a, b, c = snap(1.0), snap(2.0, down={1, 2}), snap(3.0, down={2})
    down = diff(a, b, NAMES)
    assert [(e.kind, e.level, e.text, e.t) for e in down] == [
        ("link", "down", "link pe1-p1 down", 2.0), ("link", "down", "link p1-pe2 down", 2.0)]
    assert [(e.level, e.text) for e in diff(b, c, NAMES)] == [("up", "link pe1-p1 up")]


def test_session_down_and_up_from_each_side():
    gone = snap(2.0, sessions={"pe1": {}, "p1": {"pe1": "NONEXISTENT", "pe2": OP},
                               "pe2": {"p1": OP}})
    ev = diff(snap(1.0), gone, NAMES)
    assert [(e.kind, e.level, e.router, e.text) for e in ev] == [
        ("ldp", "down", "pe1", "pe1: LDP session with p1 down (no session)"),
        ("ldp", "down", "p1", "p1: LDP session with pe1 down (NONEXISTENT)")]
    back = diff(gone, snap(3.0), NAMES)
    assert texts(back) == ["pe1: LDP session with p1 up", "p1: LDP session with pe1 up"]


def test_session_states_short_of_operational_are_not_events():
    a = snap(1.0, sessions={"pe1": {"p1": "INITIALIZED"}})
    b = snap(2.0, sessions={"pe1": {"p1": "OPENREC"}})
    assert diff(a, b, NAMES) == []


def test_ospf_adjacency_flips():
    b = snap(2.0, ospf={"pe1": {"p1": "ExStart"}, "p1": {"pe1": "Full", "pe2": "Full"},
                        "pe2": {"p1": "Full"}})
    assert [(e.kind, e.text) for e in diff(snap(1.0), b, NAMES)] == [
        ("ospf", "pe1: OSPF adjacency with p1 down (ExStart)")]


def test_router_stopped_is_one_event_not_its_sessions():
    stopped = snap(2.0, alive={"pe1": True, "p1": False, "pe2": True},
                   sessions={"pe1": {"p1": OP}, "pe2": {"p1": OP}},
                   ospf={"pe1": {"p1": "Full"}, "pe2": {"p1": "Full"}})
    ev = diff(snap(1.0), stopped, NAMES)
    assert [(e.kind, e.level, e.text) for e in ev] == [("router", "down", "p1: runtime stopped")]


def test_restarted_router_reports_what_it_has_as_new():
    stopped = snap(1.0, alive={"pe1": True, "p1": False, "pe2": True},
                   sessions={"pe1": {}, "pe2": {}}, ospf={"pe1": {}, "pe2": {}})
    ev = diff(stopped, snap(2.0), NAMES)
    assert texts(ev)[0] == "p1: runtime running"
    assert "p1: LDP session with pe1 up" in texts(ev)
    assert "p1: LFIB 1 added" in texts(ev)


def test_router_not_read_is_not_a_change():
    # p1 running but its management socket did not answer: absent from the tables
    unread = snap(2.0, sessions={"pe1": {"p1": OP}, "pe2": {"p1": OP}},
                  ospf={"pe1": {"p1": "Full"}, "pe2": {"p1": "Full"}},
                  lfib={"pe1": {"FTN 10.255.0.9/32": "push 9 via x (eth1)"},
                        "pe2": {"FTN 10.255.0.9/32": "push 9 via x (eth1)"}})
    assert diff(snap(1.0), unread, NAMES) == []
    assert diff(unread, snap(3.0), NAMES) == []


def test_lfib_changes_listed():
    a = snap(1.0, lfib={"pe1": {"FTN 10.255.0.4/32": "push 1004 via p1 (eth2)",
                                "ILM 1000": "10.255.0.2/32: pop 1000 via p1 (eth2)"}})
    b = snap(2.0, lfib={"pe1": {"FTN 10.255.0.4/32": "push 2004 via p2 (eth3)",
                                "FTN 10.0.0.8/30": "push 7 via p2 (eth3)"}})
    (ev,) = diff(a, b, NAMES)
    assert (ev.kind, ev.router, ev.text) == ("lfib", "pe1", "pe1: LFIB 1 changed, 1 added, 1 removed")
    assert ev.details == (
        "~ FTN 10.255.0.4/32: push 1004 via p1 (eth2) -> push 2004 via p2 (eth3)",
        "+ FTN 10.0.0.8/30: push 7 via p2 (eth3)",
        "- ILM 1000: 10.255.0.2/32: pop 1000 via p1 (eth2)")


def test_lfib_details_capped():
    a = snap(1.0, lfib={"pe1": {}})
    b = snap(2.0, lfib={"pe1": {f"ILM {k}": "x" for k in range(20)}})
    (ev,) = diff(a, b, NAMES, max_details=3)
    assert ev.text == "pe1: LFIB 20 added"
    assert ev.details[-1] == "... 17 more" and len(ev.details) == 4


def test_lfib_entries_from_cli_json():
    doc = {"lsr_id": "10.255.0.1",
           "ftn": [{"fec": "10.255.0.4/32", "nexthops": [
               {"neighbor": "p2", "interface": "eth3", "nexthop": "10.0.0.6", "out_labels": [3004]},
               {"neighbor": "p1", "interface": "eth2", "nexthop": "10.0.0.2", "out_labels": [2004]}]},
                   {"fec": "10.0.0.4/30", "nexthops": [
               {"neighbor": "p1", "interface": "eth2", "nexthop": "10.0.0.2", "out_labels": []}]}],
           "ilm": [{"in_label": 1003, "fec": "10.255.0.3/32", "nexthops": [
               {"neighbor": "p2", "interface": "eth3", "nexthop": "10.0.0.6", "op": "swap",
                "out_labels": [3003]}]},
                   {"in_label": 1002, "fec": "10.255.0.2/32", "nexthops": [
               {"neighbor": "p1", "interface": "eth2", "nexthop": "10.0.0.2", "op": "pop",
                "out_labels": []}]}]}
    assert lfib_entries(doc) == {
        "FTN 10.255.0.4/32": "push 2004 via p1 (eth2) | push 3004 via p2 (eth3)",
        "FTN 10.0.0.4/30": "IP (no label) via p1 (eth2)",
        "ILM 1003": "10.255.0.3/32: swap 1003->3003 via p2 (eth3)",
        "ILM 1002": "10.255.0.2/32: pop 1002 via p1 (eth2)",
    }


# ---------------------------------------------------------------- rates and state


def test_link_rates_per_direction():
    a = snap(10.0, counters={1: LinkCounters((100, 50), (10_000, 5_000))})
    b = snap(12.0, counters={1: LinkCounters((300, 60), (30_000, 6_000)),
                             2: LinkCounters((5, 5), (500, 500))})
    r = link_rates(a, b)
    assert set(r) == {1}  # link 2 has no earlier sample
    assert r[1].pps == (100.0, 5.0)
    assert r[1].bps == (80_000.0, 4_000.0)


def test_link_rates_skip_reset_counters_and_no_time():
    a = snap(10.0, counters={1: LinkCounters((100, 50), (10_000, 5_000))})
    reset = snap(11.0, counters={1: LinkCounters((3, 50), (300, 5_000))})
    assert link_rates(a, reset) == {}
    assert link_rates(a, snap(10.0, counters=dict(a.counters))) == {}
    assert link_rates(None, a) == {}


def test_state_json():
    cur = snap(5.0, alive={"pe1": True, "p1": True, "pe2": False},
               sessions={"pe1": {"p1": OP}, "p1": {"pe1": OP, "pe2": "NONEXISTENT"}},
               ospf={"pe1": {"p1": "Full"}, "p1": {"pe1": "Full"}}, down={2},
               lfib={"pe1": {"a": "x", "b": "y"}, "p1": {}})
    a = snap(4.0, counters={1: LinkCounters((0, 0), (0, 0))})
    b = snap(5.0, counters={1: LinkCounters((3, 1), (300, 100))})
    st = state_json(cur, link_rates(a, b), [0, 1, 2])
    assert st["routers"]["p1"]["sessions_up"] == 1 and st["routers"]["p1"]["ospf_full"] == 1
    assert st["routers"]["pe1"]["lfib_entries"] == 2
    assert st["routers"]["pe2"] == {"alive": False, "sessions": {}, "sessions_up": 0, "ospf": {},
                                    "ospf_full": 0, "lfib_entries": None, "error": None}
    assert st["links"] == [{"index": 0, "up": True, "pps": None, "bps": None},
                           {"index": 1, "up": True, "pps": [3.0, 1.0], "bps": [2400, 800]},
                           {"index": 2, "up": False, "pps": None, "bps": None}]


def test_timeline_numbers_and_since():
    tl = Timeline(size=3)
    tl.add(diff(None, snap(1.0), NAMES))
    tl.add(diff(snap(1.0), snap(2.0, down={0, 1, 2}), NAMES))
    assert tl.last == 4
    assert [e["seq"] for e in tl.since(0)] == [2, 3, 4]  # the oldest fell out
    assert [e["text"] for e in tl.since(3)] == ["link p1-pe2 down"]
    assert tl.since(4) == []
    assert [e["seq"] for e in tl.since(0, limit=1)] == [4]


# ---------------------------------------------------------------- counters and layout


NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth1:    1946      22    0    0    0     0          0         0     2134      23    0    0    0     0       0          0
  eth2: 9000000  7000    0    0    0     0          0         0     2058      21    0    0    0     0       0          0
"""


def test_parse_net_dev():
    assert parse_net_dev(NET_DEV) == {"lo": (0, 0, 0, 0), "eth1": (1946, 22, 2134, 23),
                                      "eth2": (9000000, 7000, 2058, 21)}


def test_link_counters_from_either_end():
    from lsr.core.topology import load_topology

    from .conftest import TOPOLOGIES

    topo = load_topology(TOPOLOGIES / "line3.yaml")  # links: ce1-pe1, pe1-p1, p1-pe2, pe2-ce2
    dev = parse_net_dev(NET_DEV)
    # p1's eth1 is the b end of pe1-p1, its eth2 the a end of p1-pe2
    got = link_counters(topo, {"p1": dev})
    assert got == {1: LinkCounters((22, 23), (1946, 2134)),
                   2: LinkCounters((21, 7000), (2058, 9000000))}


def test_fit_flips_y_and_stretches_a_flat_layout():
    pos, h = fit({"a": (0, 0), "b": (100, 10), "c": (200, 0)}, width=1000, margin=50)
    assert pos["a"] == (50.0, pos["a"][1]) and pos["c"][0] == 950.0
    assert pos["b"][1] < pos["a"][1]  # up in Graphviz is up on the page
    assert h == pytest.approx(pos["a"][1] + 50)
    assert pos["a"][1] - pos["b"][1] == pytest.approx(10 * 4.5 * 2.5)  # stretched, capped
    line, h1 = fit({"a": (0, 5), "b": (10, 5)}, width=1000, margin=50)
    assert h1 == 100 and line["a"][1] == 50


# ---------------------------------------------------------------- the server


class FakeView:
    """A stand-in for `LabView`: snapshots and answers from the test."""

    name = "fake"

    def __init__(self) -> None:
        self.snaps = [snap(1.0)]
        self.links: list[tuple[str, str, bool]] = []

    def topology_json(self) -> dict[str, Any]:
        return {"lab": "fake", "topology": "line3", "width": 1000, "height": 200,
                "nodes": [{"name": n} for n in ("pe1", "p1", "pe2")], "links": []}

    def link_names(self) -> dict[int, str]:
        return dict(NAMES)

    def snapshot(self) -> Snapshot:
        return self.snaps.pop(0) if len(self.snaps) > 1 else self.snaps[0]

    def router(self, router: str) -> dict[str, Any]:
        if router != "p1":
            raise LsrError(f"lab 'fake' has no router '{router}'")
        return {"router": "p1"}

    def lsp(self, src: str, dst: str, traceroute: bool = False) -> dict[str, Any]:
        return {"from": src, "to": dst, "traceroute": traceroute}

    def set_link(self, a: str, b: str, up: bool) -> dict[str, Any]:
        if "nope" in (a, b):
            raise LsrError(f"fake: no link between '{a}' and '{b}'")
        self.links.append((a, b, up))
        return {"link": f"{a}-{b}", "state": "up" if up else "down"}


@pytest.fixture(params=[False, True], ids=["read-only", "changes"])
def server(request) -> Iterator[WebServer]:
    srv = WebServer(FakeView(), allow_changes=request.param, interval=3600)
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def call(srv: WebServer, method: str, path: str, body: Any = None, token: str | None = "",
         host: str | None = None, ctype: str = "application/json") -> tuple[int, Any]:
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    headers = {"Host": host or f"127.0.0.1:{srv.port}"}
    if token == "":
        token = srv.token
    if token is not None:
        headers["X-Lsr-Token"] = token
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = ctype
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        return r.status, json.loads(raw)
    except ValueError:
        return r.status, raw


def test_listens_on_loopback_only(server):
    assert server.server_address[0] == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}/?token={server.token}"
    assert len(server.token) >= 20


def test_token_required(server):
    for path in ("/", "/api/topology", "/api/state", "/api/router?name=p1"):
        assert call(server, "GET", path, token=None)[0] == 403, path
        assert call(server, "GET", path, token="x" * len(server.token))[0] == 403, path
    assert call(server, "GET", f"/?token={server.token}", token=None)[0] == 200
    st, page = call(server, "GET", "/")
    assert st == 200 and b"<svg" in page


def test_foreign_host_header_refused(server):
    # a DNS name rebound to 127.0.0.1 by some web page: its Host header gives it away
    st, body = call(server, "GET", "/api/state", host=f"evil.example:{server.port}")
    assert st == 403 and "Host" in body["error"]
    assert call(server, "GET", "/api/state", host=f"evil.example:{server.port}.x")[0] == 403
    assert call(server, "GET", "/api/state", host=f"localhost:{server.port}")[0] == 200
    assert call(server, "GET", "/api/state", host="localhost:8080")[0] == 200  # ssh -L 8080:...


def test_state_topology_router_lsp(server):
    st, topo = call(server, "GET", "/api/topology")
    assert st == 200 and topo["allow_changes"] == server.allow_changes
    assert [n["name"] for n in topo["nodes"]] == ["pe1", "p1", "pe2"]
    st, state = call(server, "GET", "/api/state")
    assert st == 200 and state["lab"] == "fake" and set(state["routers"]) == {"pe1", "p1", "pe2"}
    assert [e["kind"] for e in state["events"]] == ["lab"]
    assert call(server, "GET", "/api/router?name=p1") == (200, {"router": "p1"})
    st, err = call(server, "GET", "/api/router?name=zz")
    assert st == 400 and err == {"error": "lab 'fake' has no router 'zz'"}
    assert call(server, "GET", "/api/lsp?from=ce1&to=ce2&traceroute=1")[1] == {
        "from": "ce1", "to": "ce2", "traceroute": True}
    assert call(server, "GET", "/api/state?since=x")[0] == 400
    assert call(server, "GET", "/api/nothing")[0] == 404


def test_events_after_a_sample(server):
    server.view.snaps = [snap(2.0, down={1})]
    server.sample()
    st, state = call(server, "GET", "/api/state?since=1")
    assert [e["text"] for e in state["events"]] == ["link pe1-p1 down"]
    assert state["last_event"] == 2
    assert call(server, "GET", "/api/state?since=2")[1]["events"] == []


def test_post_link(server):
    body = {"a": "pe1", "b": "p1", "state": "down"}
    st, out = call(server, "POST", "/api/link", body)
    if not server.allow_changes:
        assert st == 403 and "read-only" in out["error"]
        assert server.view.links == []
        return
    assert (st, out) == (200, {"link": "pe1-p1", "state": "down"})
    assert server.view.links == [("pe1", "p1", False)]
    events = call(server, "GET", "/api/state")[1]["events"]
    assert events[-1]["kind"] == "action" and events[-1]["text"] == \
        "link pe1-p1 down: asked from the page"


def test_post_needs_the_token_in_its_header(server):
    body = {"a": "pe1", "b": "p1", "state": "down"}
    assert call(server, "POST", "/api/link", body, token=None)[0] == 403
    assert call(server, "POST", f"/api/link?token={server.token}", body, token=None)[0] == 403
    assert server.view.links == []


@pytest.mark.parametrize("body, ctype", [
    (b"not json", "application/json"),
    ({"a": "pe1", "b": "p1", "state": "sideways"}, "application/json"),
    ({"a": "pe1", "state": "down"}, "application/json"),
    ({"a": "pe1", "b": "p1", "state": "down"}, "text/plain"),
    ({"a": "pe1", "b": "nope", "state": "down"}, "application/json"),
])
def test_post_bad_requests(body, ctype):
    srv = WebServer(FakeView(), allow_changes=True, interval=3600)
    srv.start()
    try:
        st, out = call(srv, "POST", "/api/link", body, ctype=ctype)
        assert st == 400 and out["error"], out
        assert srv.view.links == []
    finally:
        srv.close()


def test_port_in_use_is_one_line():
    a = WebServer(FakeView(), interval=3600)
    try:
        with pytest.raises(LsrError, match=rf"cannot listen on 127.0.0.1:{a.port}: "):
            WebServer(FakeView(), port=a.port, interval=3600)
    finally:
        a.server_close()

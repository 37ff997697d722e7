"""The router runtime's management socket, driven without namespaces: a Router object
(never run(), so no sockets in the host's namespaces and no kernel routes) serves its
`_mgmt` handler on a unix socket in a temp dir, and lsr.lab.query() talks to it."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import lsr.lab.state as lab_state
from lsr.core.topology import load_topology
from lsr.lab import LabError, node, query
from lsr.lab.node import Router

from .conftest import TOPOLOGIES

LAB = "m1"


def _no_kernel_routes(rib, installed):
    raise AssertionError("sync_routes called: this test runs in the host's namespace")


@pytest.fixture()
def run_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="lsrm", dir="/tmp"))  # short: unix socket paths <= 107
    monkeypatch.setattr(lab_state, "RUN_DIR", d)
    # Never touch the host's routing table, even if a request wrongly reaches link_event.
    monkeypatch.setattr(node, "sync_routes", _no_kernel_routes)
    (d / LAB).mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def serve(run_dir: Path, body) -> None:
    """Run `body(router, sock_path)` (a coroutine function) with p1's handler listening."""
    topo = load_topology(TOPOLOGIES / "line3.yaml")

    async def main() -> None:
        router = Router(topo, "p1", run_dir / LAB)
        path = run_dir / LAB / "p1.sock"
        server = await asyncio.start_unix_server(router._mgmt, path=str(path))
        try:
            await body(router, path)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


async def exchange(path: Path, payload: bytes, replies: int = 1, eof: bool = False) -> list[dict]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(payload)
        await writer.drain()
        if eof:
            writer.write_eof()
        out = []
        for _ in range(replies):
            line = await asyncio.wait_for(reader.readline(), 5)
            assert line.endswith(b"\n") and line.count(b"\n") == 1, line
            out.append(json.loads(line))
        return out
    finally:
        writer.close()


def req(**kw) -> bytes:
    return (json.dumps(kw) + "\n").encode()


def test_user_errors_are_plain_lines(run_dir: Path) -> None:
    async def body(router: Router, path: Path) -> None:
        cases = [
            (req(op="ipsec"), "p1 has no IPsec role in this topology"),
            (req(op="nope"), "unknown op 'nope'"),
            (b"not json\n", "bad request (not JSON)"),
            (b"[1, 2]\n", "bad request: expected a JSON object"),
            (b"\xff\xfe\n", "bad request (not JSON)"),
        ]
        for payload, fragment in cases:
            (resp,) = await exchange(path, payload)
            assert resp["ok"] is False, resp
            assert fragment in resp["error"], resp
            assert "Error" not in resp["error"] and "\n" not in resp["error"], resp

    serve(run_dir, body)


def test_link_index_must_exist(run_dir: Path) -> None:
    async def body(router: Router, path: Path) -> None:
        for link, up in [(99, False), (-1, False), (4, True), ("0", False), (True, False), (None, True)]:
            (resp,) = await exchange(path, req(op="link", link=link, up=up))
            assert resp["ok"] is False, (link, resp)
            assert resp["error"].startswith(f"no link {link!r} in this topology"), resp
        (resp,) = await exchange(path, req(op="link", link=0, up="no"))
        assert resp["ok"] is False and "'up' must be true or false" in resp["error"], resp
        assert router.down_links == set()

    serve(run_dir, body)


def test_oversized_line_answers_and_connection_goes_on(run_dir: Path) -> None:
    async def body(router: Router, path: Path) -> None:
        big = req(op="status", pad="x" * (200 * 1024))  # > 64 KiB StreamReader limit
        resp, after = await exchange(path, big + req(op="rib"), replies=2)
        assert resp == {"ok": False, "error": "request line longer than 65536 bytes"}, resp
        assert after["ok"] is True and isinstance(after["result"], list), after
        # A long line whose newline is already buffered beyond the limit, and one cut by EOF.
        resp, after = await exchange(path, b"y" * 70000 + b"\n" + req(op="rib"), replies=2)
        assert resp["ok"] is False and after["ok"] is True, (resp, after)
        (resp,) = await exchange(path, b"z" * 100000, eof=True)
        assert resp["ok"] is False and "longer than" in resp["error"], resp
        # The server still answers new connections.
        (resp,) = await exchange(path, req(op="rib"))
        assert resp["ok"] is True

    serve(run_dir, body)


def test_internal_error_keeps_class_and_logs_traceback(run_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body(router: Router, path: Path) -> None:
        def broken(req):
            return {}["missing"]

        router.answer = broken  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="lsr.node"):
            (resp,) = await exchange(path, req(op="status"))
        assert resp == {"ok": False, "error": "internal error: KeyError: 'missing'"}, resp
        assert any("Traceback" in r.getMessage() for r in caplog.records), caplog.text

    serve(run_dir, body)


def test_query_raises_one_line_lab_error(run_dir: Path) -> None:
    async def body(router: Router, path: Path) -> None:
        with pytest.raises(LabError) as ei:
            await asyncio.to_thread(query, LAB, "p1", "ipsec")
        assert str(ei.value) == "p1: p1 has no IPsec role in this topology"
        with pytest.raises(LabError) as ei:
            await asyncio.to_thread(query, LAB, "p1", "link", link=99, up=False)
        assert str(ei.value).startswith("p1: no link 99 in this topology"), ei.value
        with pytest.raises(LabError) as ei:
            await asyncio.to_thread(query, LAB, "p1", "status", pad="x" * (100 * 1024))
        assert str(ei.value) == "p1: request line longer than 65536 bytes"
        assert isinstance(await asyncio.to_thread(query, LAB, "p1", "rib"), list)

    serve(run_dir, body)


def test_query_without_an_answer_is_a_lab_error(run_dir: Path) -> None:
    async def body(router: Router, path: Path) -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readline()
            writer.close()

        mute = await asyncio.start_unix_server(hang_up, path=str(run_dir / LAB / "pe1.sock"))
        try:
            with pytest.raises(LabError, match=r"^pe1: no valid answer on the management socket$"):
                await asyncio.to_thread(query, LAB, "pe1", "status")
        finally:
            mute.close()
        (run_dir / LAB / "pe2.sock").touch()  # a stale socket file: connection refused
        with pytest.raises(LabError, match=r"^pe2: management socket: "):
            await asyncio.to_thread(query, LAB, "pe2", "status")

    serve(run_dir, body)

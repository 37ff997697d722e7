"""The HTTP server of `lsr lab web`: the page, JSON endpoints, a sampler thread.

Access rules (other users of the machine reach 127.0.0.1 too):

* it listens on 127.0.0.1 only, and answers only clients on the loopback;
* the `Host` header must name 127.0.0.1 or localhost, on any port (an SSH tunnel
  may use another): a page elsewhere cannot rebind a DNS name to this port and
  read it;
* every request carries the per-run random token of the URL printed at start
  (`?token=` for the page; the page sends it as the `X-Lsr-Token` header);
  without it: 403;
* POST (link changes) only with `--allow-changes`, else 403; the token must come
  in the header, which a form on another site cannot send.

Endpoints (JSON schemas in docs/cli.md): `GET /` the page; `GET /api/topology`;
`GET /api/state?since=SEQ` (routers, links with rates, events numbered above SEQ);
`GET /api/router?name=R`; `GET /api/lsp?from=A&to=B[&traceroute=1]`;
`POST /api/link` `{"a", "b", "state": "down"|"up"}`.

The view (`lsr.web.collect.LabView`, or a stand-in in tests) is sampled every
`interval` seconds by one thread; requests read the last sample under a lock.
"""

from __future__ import annotations

import hmac
import json
import secrets
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from lsr.errors import LsrError
from lsr.web.timeline import Event, Snapshot, Timeline, diff, link_rates, state_json

HOST = "127.0.0.1"
PAGE = Path(__file__).with_name("page.html")
MAX_BODY = 4096
TOKEN_HEADER = "X-Lsr-Token"
LOCAL_NAMES = frozenset({HOST, "localhost", "[::1]"})  # what a browser here puts in Host


class View(Protocol):
    name: str

    def topology_json(self) -> dict[str, Any]: ...
    def link_names(self) -> dict[int, str]: ...
    def snapshot(self) -> Snapshot: ...
    def router(self, router: str) -> dict[str, Any]: ...
    def lsp(self, src: str, dst: str, traceroute: bool = False) -> dict[str, Any]: ...
    def set_link(self, a: str, b: str, up: bool) -> dict[str, Any]: ...


class WebServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, view: View, port: int = 0, allow_changes: bool = False,
                 interval: float = 1.0, token: str | None = None) -> None:
        try:
            super().__init__((HOST, port), Handler)
        except OSError as e:
            raise LsrError(f"cannot listen on {HOST}:{port}: {e.strerror or e}") from None
        self.view = view
        self.allow_changes = allow_changes
        self.interval = interval
        self.token = token or secrets.token_urlsafe(18)
        self.lock = threading.Lock()
        self.link_lock = threading.Lock()  # one link change at a time
        self.timeline = Timeline()
        self.prev: Snapshot | None = None
        self.state: dict[str, Any] = {}
        self.links = sorted(view.link_names())
        self.topology = {**view.topology_json(), "allow_changes": allow_changes,
                         "interval": interval}
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/?token={self.token}"

    # ------------------------------------------------------------ sampling

    def sample(self) -> None:
        """One snapshot: diff it against the last one into the timeline, keep its state."""
        try:
            cur = self.view.snapshot()
        except (OSError, LsrError, ValueError) as e:
            with self.lock:
                self.state = {**self.state, "error": f"{e}", "time": round(time.time(), 3)}
            return
        with self.lock:
            self.timeline.add(diff(self.prev, cur, self.view.link_names()))
            self.state = state_json(cur, link_rates(self.prev, cur), self.links)
            self.prev = cur

    def note(self, event: Event) -> None:
        with self.lock:
            self.timeline.add([event])

    def _sampler(self) -> None:
        next_t = time.monotonic()
        while not self.stopping.is_set():
            try:
                self.sample()
            except Exception as e:  # a bug must not stop the page from updating: say it once a tick
                print(f"lsr lab web: sampling failed: {type(e).__name__}: {e}", file=sys.stderr)
            next_t += self.interval
            self.stopping.wait(max(0.0, next_t - time.monotonic()))
            next_t = max(next_t, time.monotonic() - self.interval)  # no burst after a stall

    def start(self) -> None:
        """Take the first sample, then sample and serve in background threads."""
        self.sample()
        # serve_forever's poll interval is how long close() waits for it
        for target in (self._sampler, lambda: self.serve_forever(poll_interval=0.05)):
            t = threading.Thread(target=target, daemon=True, name="lsr-web")
            t.start()
            self.threads.append(t)

    def close(self) -> None:
        self.stopping.set()
        if self.threads:
            self.shutdown()  # returns once serve_forever has stopped
        self.server_close()
        for t in self.threads:
            t.join(timeout=10)

    # ------------------------------------------------------------ answers

    def state_since(self, seq: int) -> dict[str, Any]:
        with self.lock:
            return {**self.state, "lab": self.view.name, "events": self.timeline.since(seq),
                    "last_event": self.timeline.last}


class Handler(BaseHTTPRequestHandler):
    server: WebServer
    server_version = "lsr-web"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass  # one line per request would bury the URL; errors are answered, not logged

    # ------------------------------------------------------------ replies

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; "
                         "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
                         "frame-ancestors 'none'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, (json.dumps(data, sort_keys=True) + "\n").encode(),
                   "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    # ------------------------------------------------------------ access

    def _allowed(self, url_token: str | None) -> bool:
        """Loopback client, our Host, the run's token; answers 403 itself when not."""
        try:
            loopback = IPv4Address(self.client_address[0]).is_loopback
        except ValueError:
            loopback = False
        host = (self.headers.get("Host") or "").lower()
        if not loopback:
            self._error(HTTPStatus.FORBIDDEN, "only clients on this machine")
            return False
        # Any port: an SSH tunnel may forward another local port to ours.
        if host.rsplit(":", 1)[0] not in LOCAL_NAMES:
            self._error(HTTPStatus.FORBIDDEN, f"Host must be {HOST} or localhost")
            return False
        given = self.headers.get(TOKEN_HEADER) or url_token or ""
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            self._error(HTTPStatus.FORBIDDEN,
                        "missing or wrong token: open the URL 'lsr lab web' printed")
            return False
        return True

    # ------------------------------------------------------------ GET

    def do_GET(self) -> None:  # noqa: N802 (the base's name)
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/favicon.ico":
            self._send(HTTPStatus.NOT_FOUND, b"", "text/plain")
            return
        if not self._allowed(q.get("token")):
            return
        srv = self.server
        try:
            if url.path == "/":
                self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
            elif url.path == "/api/topology":
                self._json(HTTPStatus.OK, srv.topology)
            elif url.path == "/api/state":
                since = q.get("since", "0")
                if not since.isdigit():
                    raise LsrError(f"since={since!r}: expected an event number")
                self._json(HTTPStatus.OK, srv.state_since(int(since)))
            elif url.path == "/api/router":
                self._json(HTTPStatus.OK, srv.view.router(q.get("name", "")))
            elif url.path == "/api/lsp":
                self._json(HTTPStatus.OK, srv.view.lsp(q.get("from", ""), q.get("to", ""),
                                                       q.get("traceroute") == "1"))
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")
        except LsrError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
        except (OSError, ValueError) as e:
            self._error(HTTPStatus.BAD_GATEWAY, f"{type(e).__name__}: {e}")

    do_HEAD = do_GET

    # ------------------------------------------------------------ POST

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if not self._allowed(None):  # the header only: never a token in a POST's URL
            return
        srv = self.server
        if not srv.allow_changes:
            self._error(HTTPStatus.FORBIDDEN,
                        "read-only: start 'lsr lab web' with --allow-changes to change links")
            return
        if url.path != "/api/link":
            self._error(HTTPStatus.NOT_FOUND, f"no such action: {url.path}")
            return
        try:
            n = int(self.headers.get("Content-Length") or 0)
            if not 0 < n <= MAX_BODY:
                raise LsrError(f"expected a JSON body of 1 to {MAX_BODY} bytes")
            if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
                raise LsrError("expected Content-Type: application/json")
            try:
                body = json.loads(self.rfile.read(n))
            except ValueError:
                raise LsrError("the body is not JSON") from None
            if not isinstance(body, dict) or body.get("state") not in ("up", "down") \
                    or not all(isinstance(body.get(k), str) for k in ("a", "b")):
                raise LsrError('expected {"a": NODE[:IFACE], "b": NODE[:IFACE], "state": "up"|"down"}')
            up = body["state"] == "up"
            what = f"link {body['a']}-{body['b']} {body['state']}"
            with srv.link_lock:
                # Noted before the change, so it precedes what the sampler then sees.
                srv.note(Event(time.time(), "action", "info", f"{what}: asked from the page"))
                try:
                    out = srv.view.set_link(body["a"], body["b"], up)
                except LsrError as e:
                    srv.note(Event(time.time(), "action", "info", f"{what} failed: {e}"))
                    raise
            self._json(HTTPStatus.OK, out)
        except LsrError as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
        except (OSError, ValueError) as e:
            self._error(HTTPStatus.BAD_GATEWAY, f"{type(e).__name__}: {e}")


def serve(view: View, port: int = 0, allow_changes: bool = False, interval: float = 1.0,
          ready: Callable[[WebServer], None] | None = None) -> None:
    """Serve until KeyboardInterrupt (re-raised after shutting down); `ready(server)` is
    called once the first sample is taken and the port listens."""
    srv = WebServer(view, port, allow_changes, interval)
    try:
        srv.start()
        if ready is not None:
            ready(srv)
        while True:
            time.sleep(3600)
    finally:
        srv.close()

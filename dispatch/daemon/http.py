"""Read-only status and metrics over HTTP (stdlib ``http.server`` in a thread).

Role: ``/metrics`` (Prometheus text), ``/status`` and ``/plan`` (JSON) and ``/`` (a small
self-contained HTML page with an inline SVG chart of the plan's battery power and SoC; no
JavaScript). Only GET and HEAD; it reads the daemon's published immutable state and never
changes anything. Listens on 127.0.0.1 unless configured otherwise. Imports the standard
library and this package.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from dispatch.daemon.page import html_page, plan_doc, status_doc
from dispatch.types import DispatchError

if TYPE_CHECKING:
    from dispatch.daemon.core import Daemon

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _json(doc: Any) -> bytes:
    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(doc), indent=1, default=str).encode()


def _handler(daemon: Daemon) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "dispatch"

        def _body(self) -> tuple[int, str, bytes]:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                return 200, PROMETHEUS_TYPE, daemon.metrics.render()
            if path == "/status":
                return 200, "application/json", _json(status_doc(daemon))
            if path == "/plan":
                return 200, "application/json", _json(plan_doc(daemon))
            if path in ("/", "/index.html"):
                return 200, "text/html; charset=utf-8", html_page(daemon).encode()
            return 404, "text/plain", b"not found: try /, /status, /plan, /metrics\n"

        def _send(self, head_only: bool) -> None:
            try:
                code, ctype, body = self._body()
            except Exception as exc:
                code, ctype, body = 500, "text/plain", f"error: {exc}\n".encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(False)

        def do_HEAD(self) -> None:
            self._send(True)

        def log_message(self, format: str, *args: Any) -> None:
            return  # no access log on stderr

    return Handler


class StatusServer:
    """The HTTP server of one daemon; ``start`` binds and serves in a daemon thread.

    Parameters
    ----------
    daemon : Daemon
        Whose state to show.
    host : str
        Listen address (127.0.0.1 by default in the config).
    port : int
        Port (0: any free port; read ``port`` after ``start``).
    """

    def __init__(self, daemon: Daemon, host: str, port: int) -> None:
        self.daemon, self.host, self.port = daemon, host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str | None:
        """Base URL while serving."""
        return f"http://{self.host}:{self.port}/" if self._server is not None else None

    def start(self) -> None:
        """Bind and serve (no-op when ``[http] enabled = false``)."""
        if not self.daemon.config.http.enabled or self._server is not None:
            return
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), _handler(self.daemon))
        except OSError as exc:
            raise DispatchError(f"http: cannot listen on {self.host}:{self.port}: "
                                f"{exc.strerror or exc} (see [http] port)") from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="dispatch-http", daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

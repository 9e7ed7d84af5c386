"""The HTTP server of one daemon: the FastAPI app (``daemon.api``) on uvicorn in a thread.

Role: bind the listening socket first (a port in use is a ``DispatchError`` naming it, not a
log line in a thread), then serve the app on its own event loop in a daemon thread, so a slow
request never delays a control cycle; ``stop`` asks uvicorn to finish and joins. Listens on
127.0.0.1 unless configured otherwise. Imports uvicorn and this package.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from dispatch.daemon.api import build_app
from dispatch.daemon.operator import Operator
from dispatch.types import DispatchError

if TYPE_CHECKING:
    from dispatch.daemon.core import Daemon

#: Real seconds ``start`` waits for uvicorn to serve, ``stop`` for it to finish.
START_WAIT_S = STOP_WAIT_S = 10.0


class StatusServer:
    """The HTTP server of one daemon; ``start`` binds and serves in a daemon thread.

    Parameters
    ----------
    daemon : Daemon
        Whose state to show.
    operator : Operator
        Where the API's write endpoints send commands.
    token : str, optional
        The bearer token of the write endpoints (None: read-only).
    host : str
        Listen address (127.0.0.1 by default in the config).
    port : int
        Port (0: any free port; read ``port`` after ``start``).
    """

    def __init__(self, daemon: Daemon, operator: Operator, token: str | None, host: str,
                 port: int) -> None:
        self.daemon, self.host, self.port = daemon, host, port
        self.app = build_app(daemon, operator, token)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str | None:
        """Base URL while serving."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" if self._server is not None else None

    def start(self) -> None:
        """Bind and serve (no-op when ``[http] enabled = false``)."""
        if not self.daemon.config.http.enabled or self._server is not None:
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise DispatchError(f"http: cannot listen on {self.host}:{self.port}: "
                                f"{exc.strerror or exc} (see [http] port)") from None
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=2)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name="dispatch-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_WAIT_S
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            self.stop()
            raise DispatchError(f"http: the server on {self.host}:{self.port} did not start")

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(STOP_WAIT_S)
            self._server = None

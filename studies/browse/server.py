"""optuna-dashboard's WSGI app behind a multi-threaded server from the standard library.

optuna-dashboard's own ``run_server`` uses Bottle's single-threaded wsgiref
server: one slow request (a large study's trials) holds up every other one.
Here each request gets its own thread; the storage's SQLAlchemy engine keeps
one connection per thread.
"""

from __future__ import annotations

import logging
import socket
import socketserver
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

_log = logging.getLogger(__name__)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # Ctrl-C does not wait for open browser connections
    allow_reuse_address = True


class ThreadingWSGIServer6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Logs each request at debug level instead of printing it to the terminal."""

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s %s", self.address_string(), format % args)


def dashboard_app(storage: Any, artifact_store: Any | None) -> Any:
    """optuna-dashboard's WSGI application on ``storage``, serving ``artifact_store``."""
    from optuna_dashboard import wsgi

    return wsgi(storage, artifact_store=artifact_store)


def make_dashboard_server(storage: Any, host: str, port: int, artifact_store: Any | None) -> WSGIServer:
    """A bound, not yet serving, multi-threaded server (``serve_forever()`` runs it)."""
    server_class = ThreadingWSGIServer6 if ":" in host else ThreadingWSGIServer
    return make_server(
        host, port, dashboard_app(storage, artifact_store), server_class=server_class, handler_class=_QuietHandler
    )

"""A plain HTTP client for the serving tests (the standard library's, so nothing stands between test and server)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any


def call(server: Any, path: str, body: Any = None, raw: bytes | None = None, timeout: float = 30) -> tuple[int, Any]:
    """Send ``body`` as JSON (or ``raw`` bytes) to ``server``; return the status and the decoded answer."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        server.url + path, data=data, headers={"Content-Type": "application/json"}, method="POST" if data else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as e:
        text, status = e.read().decode(), e.code
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def free_port() -> int:
    """A TCP port free on the loopback address now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

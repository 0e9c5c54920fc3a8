"""Run the scoring service with uvicorn, on a loopback address unless told otherwise."""

from __future__ import annotations

import ipaddress
import logging
import socket

from studies._errors import StudyError
from studies.serve._app import Limits

_log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address (``127.0.0.1``, ``::1``, ``localhost``)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback ``host`` unless ``allow_remote``.

    Raises:
        StudyError: If ``host`` is reachable from other machines and ``allow_remote`` is false.
    """
    if not allow_remote and not is_loopback(host):
        raise StudyError(
            f"--host {host} would expose the model to other machines: bind to 127.0.0.1, "
            "or add --allow-remote if that is what you want (and put an authenticating proxy in front)"
        )


def serve(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str = "torch",
    allow_remote: bool = False,
    limits: Limits | None = None,
    storage_url: str | None = None,
    threads: int | None = None,
    access_log: bool = False,
) -> None:
    """Load the promoted model named by ``model`` (a folder or a study) and serve it until interrupted.

    Args:
        model: A promoted model folder or a study name.
        host: The address to bind; must be loopback unless ``allow_remote``.
        port: The TCP port.
        backend: ``torch``, ``onnx`` or ``onnx-int8``.
        allow_remote: Allow a non-loopback ``host``.
        limits: Request limits and batching.
        storage_url: The store a study name is looked up in.
        threads: Torch / ONNX threads (default: the library's).
        access_log: Log one line per request (method, path, status; never the body).
    """
    check_host(host, allow_remote)
    import uvicorn

    from studies.serve._app import create_app
    from studies.serve._model import Scorer, resolve_model

    if threads:
        import torch

        torch.set_num_threads(threads)
    scorer = Scorer(resolve_model(model, storage_url), backend=backend)
    app = create_app(scorer, limits)
    _log.warning("serving %s (%s) on http://%s:%d", scorer.folder.name, backend, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=access_log)

"""What the hub loaders need around them: silence, and a quick answer when the hub cannot be reached.

Without a network, ``huggingface_hub`` retries each request five times with
growing pauses and logs every try, so a model that cannot be had took about
50 s and dozens of log lines before its error. :func:`hub_access` asks the hub
once instead, with a single request and no retries; when nothing answers, the
load runs in the libraries' own offline mode (what ``HF_HUB_OFFLINE=1`` does):
files already in the local cache are used, and a missing one fails at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

from trainers._runtime import silenced

Access = Literal["online", "offline", "unreachable"]


def hub_endpoint() -> str:
    """The hub's address (``HF_ENDPOINT``, by default ``https://huggingface.co``)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_state() -> Access:
    """Whether the hub may be asked: ``offline`` when ``HF_HUB_OFFLINE`` is set, else one request tells.

    The request goes through ``huggingface_hub``'s own HTTP client (its proxy and
    certificate settings) with its own timeout (``HF_HUB_ETAG_TIMEOUT``); any
    answer, even an error status, means the hub is ``online``.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.is_offline_mode():
        return "offline"
    try:
        get_session().head(hub_endpoint(), timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except Exception:  # connection, name resolution, TLS and timeout errors have many types
        return "unreachable"
    return "online"


@contextlib.contextmanager
def _offline_mode() -> Iterator[None]:
    """Turn on ``huggingface_hub``'s offline mode, and ``datasets``' copy of it, inside the block."""
    import datasets.config
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


@contextlib.contextmanager
def hub_access() -> Iterator[Access]:
    """Run a hub load with the libraries' logs silenced, offline if the hub does not answer.

    Yields:
        How the hub stood: ``online``, ``offline`` (``HF_HUB_OFFLINE`` is set) or
        ``unreachable`` (the load used the local cache only); the loader's error
        message says which.
    """
    with silenced():
        access = hub_state()
        with _offline_mode() if access == "unreachable" else contextlib.nullcontext():
            yield access


def not_cached(subject: str, access: Access) -> str:
    """The error message's start when a load that could only use the local cache failed.

    Args:
        subject: What failed, as the spec names it (``model.name 'bert-base-uncased'``).
        access: How the hub stood (``offline`` or ``unreachable``).

    Returns:
        What was wrong and the fix that follows from it; the caller adds its alternatives.
    """
    if access == "offline":
        return f"{subject} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: unset it to download"
    return (
        f"{subject} is not in the local Hugging Face cache and the hub ({hub_endpoint()}) cannot be reached: "
        "check your network (or proxy)"
    )

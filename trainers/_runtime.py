"""The process-level knobs a trial needs: quiet libraries, precision, and memory release."""

from __future__ import annotations

import contextlib
import gc
import logging
import warnings
from collections.abc import Iterator

# The libraries that log while data or a model is loaded: parse errors of each bad
# file (twice: their own handler and the root's), hub retries, cache notices.
LOADING_LOGGERS = ("datasets", "huggingface_hub", "transformers", "fsspec", "filelock", "urllib3", "httpx", "httpx2")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence transformers' and datasets' warnings and progress bars inside the block.

    Loading reports ("some weights were newly initialized"), progress bars and
    long-sequence warnings are expected here and would drown the study's own
    progress display.
    """
    import datasets
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_bars = hf_logging.is_progress_bar_enabled()
    ds_bars = datasets.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if hf_bars:
            hf_logging.enable_progress_bar()
        if ds_bars:
            datasets.enable_progress_bars()


@contextlib.contextmanager
def silenced(names: tuple[str, ...] = LOADING_LOGGERS) -> Iterator[None]:
    """Silence the named libraries' loggers, at every level, and Python warnings inside the block.

    For loading data and models: what goes wrong there is raised as one
    ``DataError`` or ``ModelError`` carrying the cause, so the libraries' own
    log lines (and their retries) would only repeat it, many times over.

    Args:
        names: Logger names; their child loggers are silenced with them.
    """
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def precision_flags(precision: str) -> dict[str, bool]:
    """The ``bf16``/``fp16`` training arguments for ``trainer.precision``.

    ``auto`` is bf16 on a CUDA GPU that supports it, fp16 on other CUDA GPUs,
    and fp32 on CPU.

    Args:
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16``.
    """
    import torch

    if precision == "auto" and not torch.cuda.is_available():
        precision = "fp32"
    elif precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def release_memory() -> None:
    """Return freed tensors' memory, so a reused worker process does not grow from trial to trial."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    trim_c_heap()


def trim_c_heap() -> bool:
    """Give the free pages of the C allocator's heaps back to the system (glibc's ``malloc_trim``).

    torch allocates CPU tensors with ``malloc``; glibc keeps what a finished trial freed
    (weights, gradients, optimizer state, activations) in its heaps, one per thread, resident.
    In a reused Ray worker, which runs each trial on a new thread, that grew by about the
    model's size per trial (MiniLM-L6: +110 MB a trial) while the number of live Python
    objects stayed the same; after a trim the worker's memory is flat from trial to trial.

    Returns:
        Whether memory was trimmed (``False`` where the C library is not glibc).
    """
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return False

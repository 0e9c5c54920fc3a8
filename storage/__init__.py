"""The study store (Optuna RDB storage behind a URL) and the promoted-model directory."""

from storage._leases import Heartbeat, Lease, LeaseBook
from storage._lock import StudyLock, study_lock
from storage._paths import contained
from storage._rdb import close_storage, open_storage
from storage._registry import atomic_dir, clean_stale, model_dir, recover
from storage._retry import StoreUnreachable, outage_limit, retrying
from storage._urls import DEFAULT_URL, ENV_VAR, StorageError, dialect, engine_url, redact, resolve_url, sqlite_path

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "Heartbeat",
    "Lease",
    "LeaseBook",
    "StorageError",
    "StoreUnreachable",
    "StudyLock",
    "atomic_dir",
    "clean_stale",
    "close_storage",
    "contained",
    "dialect",
    "engine_url",
    "model_dir",
    "open_storage",
    "outage_limit",
    "recover",
    "redact",
    "resolve_url",
    "retrying",
    "sqlite_path",
    "study_lock",
]

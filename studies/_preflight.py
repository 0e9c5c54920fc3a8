"""Checks a launch makes before anything runs: folders it must write, the Ray cluster it joins.

Each failure is a :class:`StudyError` naming what is wrong and the fix, raised
before data is prepared or the store is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from studies._errors import StudyError

if TYPE_CHECKING:
    from studies._spec import StudySpec


def check_writable_dirs(spec: StudySpec) -> None:
    """Refuse, before anything runs, folders the launch will have to write to but cannot.

    ``work_dir`` (checkpoints, data cache), ``wandb.dir`` (unless wandb is
    disabled) and ``promotion.dir`` (when promotion is on): an unwritable one
    would otherwise fail every trial, or the promotion after the whole study.

    Raises:
        StudyError: Naming the folder, the spec key that sets it, and the cause.
    """
    import tempfile

    folders = [("work_dir", spec.work_dir)]
    if spec.wandb.mode != "disabled":
        folders.append(("wandb.dir", spec.wandb.dir))
    if spec.promotion.enabled:
        folders.append(("promotion.dir", spec.promotion.dir))
    from storage import contained, model_dir

    contained(spec.work_dir, "trials", spec.name, what="trial folder")  # a StorageError before anything runs
    if spec.promotion.enabled:
        model_dir(spec.promotion.dir, spec.name)
    for key, folder in folders:
        path = Path(folder).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
                pass
        except OSError as e:
            raise StudyError(
                f"{key} '{folder}' is not a writable folder ({e.strerror or e}): "
                f"set {key} to a folder you can write to (--set {key}=PATH)"
            ) from None


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Refuse a Ray address nothing listens on, at once.

    Ray itself retries an unreachable GCS address without end, so a typo in
    ``--ray-address`` would hang the launch. ``auto`` and ``local`` are Ray's own
    names and are left to it.

    Raises:
        StudyError: If ``host:port`` is malformed or refuses a TCP connection.
    """
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise StudyError(f"--ray-address '{address}' is not HOST:PORT: give the head's address, e.g. 10.0.0.5:6379")
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError as e:
        raise StudyError(
            f"cannot join the Ray cluster at {address}: nothing answers there ({e.strerror or e}); "
            "start it with `ray start --head`, or drop --ray-address and RAY_ADDRESS to run locally"
        ) from None
    with connection:
        speaks_grpc = _answers_http2(connection)
    if not speaks_grpc:
        raise StudyError(
            f"cannot join the Ray cluster at {address}: something answers there, but not a Ray head "
            "(give the head's GCS port, 6379 unless `ray start --head --port` chose another; 8265 is its dashboard)"
        )


# An HTTP/2 client's connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers_http2(connection: Any) -> bool:
    """Whether the peer answers an HTTP/2 preface with a SETTINGS frame, as Ray's gRPC GCS server does.

    A web server (the Ray dashboard's port), Redis or anything else that is
    not gRPC answers differently or closes: Ray itself would retry such an
    address without end. The package depends on no gRPC client (Ray's
    ``ray[tune]`` install does not bring ``grpcio``), so the two frames are
    written by hand rather than through ``grpc.channel_ready_future``.
    """
    try:
        connection.sendall(_HTTP2_PREFACE)
        head = b""
        while len(head) < 9:
            chunk = connection.recv(9 - len(head))
            if not chunk:
                return False
            head += chunk
    except OSError:
        return False
    return head[3] == 0x04  # the frame type of the server's first frame: SETTINGS


# Bytes per model parameter a running trial holds on disk at once: its epoch checkpoint
# (fp32 weights 4 + Adam's two moments 8), the next epoch's while it is written (12), Ray's
# persisted copy (12) and its best model (4). A kept best model holds 4.
RUNNING_TRIAL_BYTES_PER_PARAM = 40
KEPT_MODEL_BYTES_PER_PARAM = 4


def count_parameters(model_dir: Path, num_labels: int) -> int:
    """The parameters of the classification model built from ``model_dir``'s config (no weights are loaded)."""
    import torch
    import transformers

    from trainers._runtime import quiet

    with quiet():
        config = transformers.AutoConfig.from_pretrained(model_dir, num_labels=num_labels)
        with torch.device("meta"):
            model = transformers.AutoModelForSequenceClassification.from_config(config)
    return sum(p.numel() for p in model.parameters())


def expected_disk_bytes(spec: StudySpec, parameters: int) -> tuple[int, int]:
    """``(bytes per running trial, bytes the study needs at once)`` for a model of ``parameters``."""
    per_trial = parameters * RUNNING_TRIAL_BYTES_PER_PARAM
    needed = spec.budget.max_concurrent * per_trial + spec.retention.keep_best * parameters * KEPT_MODEL_BYTES_PER_PARAM
    return per_trial, needed


def check_disk_space(spec: StudySpec, model_dir: Path, num_labels: int) -> None:
    """Refuse a launch whose ``work_dir`` cannot hold the files of the trials that hold files at once.

    Those are the ``budget.max_concurrent`` running trials (checkpoints, Ray's
    copies, best model) and the ``retention.keep_best`` kept best models; the
    retention policy deletes the rest as trials conclude.

    Raises:
        StudyError: Naming the folder, the free space and the space needed, and how it was counted.
    """
    import shutil

    from studies._retention import human_bytes

    parameters = count_parameters(model_dir, num_labels)
    per_trial, needed = expected_disk_bytes(spec, parameters)
    folder = Path(spec.work_dir).expanduser()
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise StudyError(
            f"work_dir '{spec.work_dir}' has {human_bytes(free)} free, the study needs about {human_bytes(needed)}: "
            f"{spec.budget.max_concurrent} running trial(s) x {human_bytes(per_trial)} "
            f"({parameters / 1e6:.1f}M parameters: checkpoints with optimizer state, Ray's copy, best model) "
            f"+ {spec.retention.keep_best} kept best model(s); free space there or set work_dir elsewhere "
            "(--set work_dir=PATH)"
        )

"""Files attached to a study or a trial through ``optuna.artifacts``.

Each study's files live in a ``FileSystemArtifactStore`` under the spec's
``artifact_dir`` (default ``<work_dir>/artifacts``, relative to the folder the
study was launched in); on a cluster it must be a shared path, like
``work_dir``. ``studies dashboard`` serves every study's store at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from studies._records import study_record

if TYPE_CHECKING:
    import optuna

    from studies._spec import StudySpec

_log = logging.getLogger(__name__)


def artifact_root(study: optuna.Study, spec: StudySpec | None = None) -> Path:
    """The study's artifact folder, absolute (relative spec paths are relative to the launch folder)."""
    if spec is None:
        raw = study_record(study, "spec", {}) or {}
        path = raw.get("artifact_dir") or f"{str(raw.get('work_dir', 'runs')).rstrip('/')}/artifacts"
    else:
        path = spec.artifact_path
    return (Path(study.user_attrs.get("launch_dir", ".")) / path).resolve()


def open_store(root: Path) -> Any:
    from optuna.artifacts import FileSystemArtifactStore

    root.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(root))


def attached(study: optuna.Study, trial_id: int | None = None) -> list[Any]:
    """The artifacts of the study (or of trial ``trial_id``), as ``optuna.artifacts.ArtifactMeta``.

    Read like ``optuna.artifacts.get_all_artifact_meta``, except that the records
    the dashboard's delete button leaves (``null``) are skipped.
    """
    import json

    from optuna.artifacts import ArtifactMeta

    storage = study._storage
    if trial_id is None:
        attrs = storage.get_study_system_attrs(study._study_id)
    else:
        attrs = storage.get_trial_system_attrs(trial_id)
    metas = []
    for key, raw in attrs.items():
        record = json.loads(raw) if key.startswith("artifacts:") and isinstance(raw, str) else None
        if record:
            metas.append(ArtifactMeta(**record))
    return metas


def attach(study: optuna.Study, spec: StudySpec | None, path: Path, trial_id: int | None = None) -> str:
    """Upload ``path`` to the study (or to a trial that is still running), unless the same file is there.

    A changed file of the same name is uploaded beside the older one (Optuna's
    artifact records cannot be removed without the dashboard), so the list
    keeps its history; the newest comes last.

    Returns:
        The artifact id.
    """
    from optuna.artifacts import upload_artifact

    store = open_store(artifact_root(study, spec))
    content = path.read_bytes()
    for old in attached(study, trial_id):
        if old.filename == path.name and _content(store, old.artifact_id) == content:
            return old.artifact_id
    target: Any = study if trial_id is None else study._storage.get_trial(trial_id)
    return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=target, storage=study._storage)


def _content(store: Any, artifact_id: str) -> bytes | None:
    from optuna.artifacts.exceptions import ArtifactNotFound

    try:
        with store.open_reader(artifact_id) as reader:
            return reader.read()
    except ArtifactNotFound:
        return None


class UnionArtifactStore:
    """Reads artifacts from several ``FileSystemArtifactStore`` folders (one per study); writes to the first.

    A store holds many studies, each with the artifact folder its spec names;
    the dashboard takes one artifact store, so this one answers for all of them.
    """

    def __init__(self, roots: Iterable[Path]) -> None:
        from optuna.artifacts import FileSystemArtifactStore

        self.roots = list(dict.fromkeys(Path(r) for r in roots))
        self._stores = [FileSystemArtifactStore(str(r)) for r in self.roots]

    def open_reader(self, artifact_id: str) -> BinaryIO:
        from optuna.artifacts.exceptions import ArtifactNotFound

        for store in self._stores:
            try:
                return store.open_reader(artifact_id)
            except ArtifactNotFound:
                continue
        raise ArtifactNotFound(f"artifact {artifact_id} is in none of {', '.join(map(str, self.roots))}")

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self._stores[0].write(artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        from optuna.artifacts.exceptions import ArtifactNotFound

        for store in self._stores:
            try:
                store.remove(artifact_id)
                return
            except ArtifactNotFound:
                continue


def store_roots(storage: Any) -> list[Path]:
    """The artifact folders of every study in ``storage`` that exist on this machine."""
    import optuna

    roots = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        root = artifact_root(study)
        if root.is_dir():
            roots.append(root)
    return roots

"""The study service: specs, the Ray Tune driver, resume, promotion and the CLI.

Programmatic use::

    import studies

    spec = studies.load_spec("quickstart", ["budget.n_trials=4"])
    outcome = studies.launch(spec, storage_url="sqlite:///studies.db")
    outcome = studies.resume("quickstart", overrides=["budget.n_trials=8"])
    model_dir = studies.promote("quickstart")
"""

from studies._errors import ConflictError, DataError, NotFoundError, SpecError, StorageError, StudyError
from studies._launcher import Outcome, launch
from studies._presets import load_spec, study_preset_names, validate_spec
from studies._promote import promote
from studies._resume import resume
from studies._spec import StudySpec
from studies._version import __version__

__all__ = [
    "ConflictError",
    "DataError",
    "NotFoundError",
    "Outcome",
    "SpecError",
    "StorageError",
    "StudyError",
    "StudySpec",
    "__version__",
    "launch",
    "load_spec",
    "promote",
    "resume",
    "study_preset_names",
    "validate_spec",
]

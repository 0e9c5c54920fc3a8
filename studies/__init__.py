"""The study service: specs, the Ray Tune driver, resume, promotion and the CLI."""

from studies._errors import ConflictError, DataError, NotFoundError, SpecError, StorageError, StudyError
from studies._presets import load_spec, study_preset_names, validate_spec
from studies._spec import StudySpec
from studies._version import __version__

__all__ = [
    "ConflictError",
    "DataError",
    "NotFoundError",
    "SpecError",
    "StorageError",
    "StudyError",
    "StudySpec",
    "__version__",
    "load_spec",
    "study_preset_names",
    "validate_spec",
]

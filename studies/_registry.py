"""Samplers and pruners chosen by name; an unknown name or option lists the valid ones."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from studies._errors import SpecError

if TYPE_CHECKING:
    import optuna

    from studies._spec import PrunerSpec, SamplerSpec, StudySpec

_log = logging.getLogger(__name__)


def _sampler_classes() -> dict[str, Callable[..., optuna.samplers.BaseSampler]]:
    import optuna.samplers as s

    return {
        "tpe": s.TPESampler,
        "random": s.RandomSampler,
        "grid": s.GridSampler,
        "cmaes": s.CmaEsSampler,
        "qmc": s.QMCSampler,
        "gp": s.GPSampler,
        "nsga2": s.NSGAIISampler,
        "nsga3": s.NSGAIIISampler,
    }


def _pruner_classes() -> dict[str, Callable[..., optuna.pruners.BasePruner]]:
    import optuna.pruners as p

    return {
        "none": p.NopPruner,
        "median": p.MedianPruner,
        "percentile": p.PercentilePruner,
        "successive_halving": p.SuccessiveHalvingPruner,
        "hyperband": p.HyperbandPruner,
        "threshold": p.ThresholdPruner,
        "patient": p.PatientPruner,
        "wilcoxon": p.WilcoxonPruner,
    }


SAMPLER_NAMES = ("tpe", "random", "grid", "cmaes", "qmc", "gp", "nsga2", "nsga3")
PRUNER_NAMES = ("none", "median", "percentile", "successive_halving", "hyperband", "threshold", "patient", "wilcoxon")
_MULTI_OBJECTIVE_SAMPLERS = {"tpe", "random", "grid", "qmc", "gp", "nsga2", "nsga3"}


def _construct(kind: str, name: str, cls: Callable[..., Any], options: dict[str, Any], *args: Any, **fixed: Any) -> Any:
    """Build ``cls(*args, **options, **fixed)``, rejecting options ``cls`` does not take."""
    _check_options(kind, name, cls, options, reserved=set(fixed))
    try:
        return cls(*args, **options, **fixed)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{kind}.options for {name}: {e}") from None


def _check_options(
    kind: str,
    name: str,
    cls: Callable[..., Any],
    options: dict[str, Any],
    *,
    reserved: set[str],
    extra: tuple[str, ...] = (),
) -> None:
    """Refuse options ``cls`` does not take, and booleans for its numeric options (Python reads true as 1)."""
    params = _parameters(cls)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    reserved = {"self", "search_space", "wrapped_pruner", *reserved}
    valid = [n for n in params if n not in reserved] + list(extra)
    for key, value in options.items():
        if key in extra:
            continue
        if key not in params or key in reserved:
            if accepts_any:
                continue
            if not valid:
                raise SpecError(f"{kind}.options.{key}: the {name} {kind} takes no options: remove {kind}.options")
            raise SpecError(
                f"{kind}.options.{key} is not an option of the {name} {kind}; valid options: {', '.join(valid)}"
            )
        if isinstance(value, bool) and _numeric_only(params[key]):
            raise SpecError(f"{kind}.options.{key}: {str(value).lower()} is a boolean, not a number: give a number")


@functools.cache
def _parameters(cls: Callable[..., Any]) -> Any:
    """``cls``'s constructor parameters; read once per class (``inspect.signature`` is slow)."""
    return inspect.signature(cls).parameters


def _numeric_only(param: inspect.Parameter) -> bool:
    """Whether ``param`` takes numbers and not booleans, going by its annotation (or else its default)."""
    annotation = param.annotation
    if annotation is inspect.Parameter.empty:
        default = param.default
        return isinstance(default, (int, float)) and not isinstance(default, bool)
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    kinds = {part.strip() for part in text.split("|")}
    return bool(kinds & {"int", "float"}) and "bool" not in kinds


def check_names(spec: StudySpec) -> None:
    """Fail early, with the valid choices, on an unknown sampler or pruner name."""
    if spec.sampler.name not in SAMPLER_NAMES:
        raise SpecError(f"sampler.name {spec.sampler.name!r} is unknown: choose one of {', '.join(SAMPLER_NAMES)}")
    if spec.pruner.name not in PRUNER_NAMES:
        raise SpecError(f"pruner.name {spec.pruner.name!r} is unknown: choose one of {', '.join(PRUNER_NAMES)}")
    if spec.multi_objective and spec.sampler.name not in _MULTI_OBJECTIVE_SAMPLERS:
        raise SpecError(f"sampler {spec.sampler.name!r} cannot optimize several objectives: use nsga2, tpe or random")
    if spec.sampler.name == "grid":
        try:
            spec.search_space.grid()
        except ValueError as e:
            raise SpecError(f"search_space: {e}") from None
    build_sampler(spec)
    build_pruner(spec)


def build_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    """The Optuna sampler the spec names.

    TPE runs with ``constant_liar`` (unless the options turn it off) so trials
    running at the same time get different parameters, and multivariate (with
    ``group`` on a conditional space); the grid sampler skips
    grid points that are already running or done.
    """
    sampler: SamplerSpec = spec.sampler
    cls = _sampler_classes()[sampler.name]
    options = dict(sampler.options)
    if sampler.name == "tpe":
        options.setdefault("constant_liar", True)
        options.setdefault("multivariate", True)
        if spec.search_space.conditional and options["multivariate"]:
            # group=True models each set of parameters that appear together (one per branch of a
            # condition) jointly, instead of falling back to independent sampling for them.
            options.setdefault("group", True)
    fixed = {"seed": sampler.seed} if sampler.seed is not None else {}
    args = (spec.search_space.grid(),) if sampler.name == "grid" else ()
    return _construct("sampler", sampler.name, cls, options, *args, **fixed)


def build_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The Optuna pruner the spec names (``none`` for multi-objective studies, with a warning).

    ``patient`` wraps another pruner: ``{name: patient, options: {patience: 1,
    wrapped: {name: median, options: {...}}}}``.
    """
    pruner: PrunerSpec = spec.pruner
    classes = _pruner_classes()
    if spec.multi_objective and pruner.name != "none":
        _log.warning(
            "pruning is disabled: Optuna cannot prune multi-objective studies (pruner %r ignored)", pruner.name
        )
        return classes["none"]()
    options = dict(pruner.options)
    if pruner.name == "patient":
        wrapped = options.pop("wrapped", None)
        inner = None
        if wrapped is not None:
            if not isinstance(wrapped, dict) or wrapped.get("name") not in classes or wrapped.get("name") == "patient":
                raise SpecError(
                    "pruner.options.wrapped must be {name: <pruner>, options: {...}} with a pruner other than patient"
                )
            inner = _construct("pruner", wrapped["name"], classes[wrapped["name"]], dict(wrapped.get("options", {})))
        if "patience" not in options:
            raise SpecError("pruner.options.patience is required for the patient pruner (e.g. patience: 1)")
        _check_options("pruner", "patient", classes["patient"], options, reserved=set(), extra=("wrapped",))
        try:
            return classes["patient"](inner, **options)
        except (TypeError, ValueError) as e:
            raise SpecError(f"pruner.options for patient: {e}") from None
    return _construct("pruner", pruner.name, classes[pruner.name], options)

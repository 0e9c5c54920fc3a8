"""The ``studies`` command: a thin layer over the launcher, the store and the dashboard.

Every user error prints one line (``error: ...``) and exits 2; a bug exits 1.
``--debug`` shows tracebacks and library logs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from studies._errors import USER_ERRORS


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="study store URL (beats STUDIES_STORAGE and the spec); default sqlite:///studies.db",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studies",
        description="Hyperparameter-optimization studies for fine-tuning transformer text classifiers.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    launch = sub.add_parser("launch", help="run a study from a spec file or preset until its budget is met")
    launch.add_argument(
        "spec", metavar="SPEC_OR_PRESET", help="a YAML spec, or a preset name (quickstart, imdb-bert, ...)"
    )
    launch.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        help="override a spec field, e.g. --set budget.n_trials=10",
    )
    launch.add_argument("--new-name", metavar="NAME", help="run the spec as a new study with this name")
    launch.add_argument("--join", action="store_true", help="work on the study beside a launcher already running it")
    launch.add_argument(
        "--ray-address", metavar="ADDR", help="Ray cluster to join (else RAY_ADDRESS, else a local Ray)"
    )
    launch.add_argument("--quiet", action="store_true", help="no progress display")
    _common(launch)

    resume = sub.add_parser("resume", help="continue a study from the store (after a stop or a crash)")
    resume.add_argument("study")
    resume.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        help="change a harmless field (budget, resources, wandb, ...)",
    )
    resume.add_argument("--join", action="store_true", help="work on the study beside a launcher already running it")
    resume.add_argument("--ray-address", metavar="ADDR")
    resume.add_argument("--quiet", action="store_true")
    _common(resume)

    status = sub.add_parser("status", help="a study's trials and best trial")
    status.add_argument("study")
    _common(status)

    listing = sub.add_parser("list", help="the studies in the store")
    _common(listing)

    promote = sub.add_parser("promote", help="(re)promote a study's best trial to its model directory")
    promote.add_argument("study")
    _common(promote)

    delete = sub.add_parser("delete", help="delete a study and its trials from the store")
    delete.add_argument("study")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _common(delete)

    dashboard = sub.add_parser("dashboard", help="open optuna-dashboard on the store")
    dashboard.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    dashboard.add_argument("--port", type=int, default=8080)
    _common(dashboard)

    validate = sub.add_parser("validate", help="check a spec (and --set overrides) without running it")
    validate.add_argument("spec", metavar="SPEC_OR_PRESET")
    validate.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE")
    return parser


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("ray", "optuna", "transformers", "datasets", "wandb", "filelock", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.debug:
        _quiet_libraries()
    else:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(_dispatch(args) or 0)
    except USER_ERRORS as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: continue with `studies resume STUDY`", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"internal error: {type(e).__name__}: {first} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int | None:
    from studies import _commands as c

    if not args.debug and args.command != "validate":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    handlers: dict[str, Any] = {
        "launch": c.cmd_launch,
        "resume": c.cmd_resume,
        "status": c.cmd_status,
        "list": c.cmd_list,
        "promote": c.cmd_promote,
        "delete": c.cmd_delete,
        "dashboard": c.cmd_dashboard,
        "validate": c.cmd_validate,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

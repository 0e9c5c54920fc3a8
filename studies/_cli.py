"""The ``studies`` command: a thin layer over the launcher, the store and the dashboard.

Every user error prints one line (``error: ...``) and exits 2, usage errors
included; a bug exits 1. A closed pipe (``studies status NAME | head``) ends
quietly. ``--debug`` shows tracebacks, library logs and library warnings.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from studies._errors import USER_ERRORS


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``error: ...`` line, exit 2, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            # argparse reports these from the top parser; the subcommand's --help is the one that helps.
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            self.exit(2, f"error: unrecognized arguments: {' '.join(extra)}; see `{prog} --help`\n")
        return parsed


# Each module adds its subcommands with ``register(sub)`` and names a ``handler`` for each.
COMMAND_MODULES = (
    "studies._cmd_run",
    "studies._cmd_store",
    "studies._cmd_storage",
    "studies._cmd_gc",
    "studies._cmd_browse",
    "studies._cmd_serve",
)


@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """The ``studies`` parser, built once per process (parsing never changes it)."""
    import importlib

    parser = _Parser(
        prog="studies",
        description="Hyperparameter-optimization studies for fine-tuning transformer text classifiers.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _package_version() -> str:
    from studies._version import __version__

    return __version__


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("ray", "optuna", "transformers", "datasets", "wandb", "filelock", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Optuna marks features experimental (PatientPruner, ...) or deprecated (TPE's gamma, ...) with
    # warnings of two or three lines each, which bury the one line of output; --debug shows them.
    import warnings

    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not args.debug:
            _quiet_libraries()
        else:
            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        code = int(_dispatch(args) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is handled below, not at exit
        return code
    except USER_ERRORS as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        # The commands attach what to do next (resume, or nothing was kept); see _cmd_run.Interrupted.
        hint = getattr(e, "hint", "")
        print(f"interrupted: {hint}" if hint else "interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as e:
        if not _stdout_closed():
            if args.debug:
                raise
            return _internal_error(e)
        # `studies status NAME | head`: the reader has gone; stop quietly, like other command-line tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a process a closed pipe ended
    except Exception as e:
        if args.debug:
            raise
        return _internal_error(e)


def _internal_error(e: Exception) -> int:
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    print(f"internal error: {type(e).__name__}: {first} (rerun with --debug for the traceback)", file=sys.stderr)
    return 1


def _stdout_closed() -> bool:
    """Whether nothing reads standard output any more (the far end of its pipe is closed)."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


def _dispatch(args: argparse.Namespace) -> int | None:
    if not args.debug and args.command != "validate":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

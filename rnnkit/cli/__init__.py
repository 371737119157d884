"""The ``rnnkit`` command line.

Each command lives in its own module and registers itself in
:data:`rnnkit.cli._registry.COMMANDS`; modules import heavy libraries only inside
their ``run`` so that ``rnnkit --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from rnnkit.cli._registry import COMMANDS, Command, register

_COMMAND_MODULES = (
    "train",
    "evaluate",
    "predict",
    "generate",
    "export",
    "recipes",
    "gradflow",
    "activations",
    "info",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per registered command."""
    for module in _COMMAND_MODULES:
        importlib.import_module(f"rnnkit.cli.{module}")
    from rnnkit import __version__

    parser = argparse.ArgumentParser(
        prog="rnnkit", description="Recurrent neural networks on PyTorch: train, inspect, apply."
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_arguments(
            sub.add_parser(command.name, help=command.help, description=command.help)
        )
    return parser


def _quiet_third_party_noise() -> None:
    """Drop messages that tell a user nothing about their run.

    Lightning's advertisement for its cloud logger, a deprecation inside Lightning's
    own pytree code, and the hint to log more often than an epoch has batches (small
    datasets such as the hello toy) would otherwise bury the summary.
    """
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")
    # A resumed run's checkpoint folder holds the checkpoint it resumes from.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not str(record.msg).startswith("\N{ELECTRIC LIGHT BULB} Tip")
    )


def _warnings_in_one_line() -> None:
    """Show rnnkit's own warnings as ``rnnkit: warning: <message>`` on stderr (one line,
    without the source line Python adds); other libraries' keep Python's format."""
    from rnnkit.errors import RnnkitWarning

    default = warnings.showwarning
    if getattr(default, "one_line", False):
        return

    def show(message: Any, category: Any, filename: Any, lineno: Any, *rest: Any) -> None:
        if issubclass(category, RnnkitWarning):
            print(f"rnnkit: warning: {' '.join(str(message).split())}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, *rest)

    show.one_line = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def _show_library_notes() -> None:
    """Show the library's INFO notes (such as a one-off kernel build) on stderr."""
    log = logging.getLogger("rnnkit")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnnkit`` console script and ``python -m rnnkit``."""
    _quiet_third_party_noise()
    _warnings_in_one_line()
    _show_library_notes()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.command].run(args)
    except _user_errors() as err:
        print(f"rnnkit {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2


def one_line(err: BaseException) -> str:
    """An error's message and its notes (what a failed run kept) as one line."""
    parts = [str(err), *getattr(err, "__notes__", ())]
    return "; ".join(" ".join(part.split()) for part in parts if part)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "fix your input", reported in one line instead of a traceback.

    Every rnnkit user error derives from :class:`~rnnkit.errors.RnnkitError`; a missing or
    existing file comes from a path the user gave. Anything else is a bug and keeps its
    traceback.
    """
    from rnnkit.errors import RnnkitError

    return (RnnkitError, FileNotFoundError, FileExistsError)


__all__ = ["COMMANDS", "Command", "build_parser", "main", "register"]

if __name__ == "__main__":
    sys.exit(main())

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
    _show_library_notes()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.command].run(args)
    except _user_errors() as err:
        print(f"rnnkit {args.command}: error: {err}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "fix your input", reported in one line instead of a traceback."""
    from rnnkit.config import ConfigError
    from rnnkit.data.errors import DataError
    from rnnkit.export.errors import ExportError
    from rnnkit.registry import UnknownNameError
    from rnnkit.training.callbacks import TrainingDiverged
    from rnnkit.training.checkpoint import DamagedFileError

    return (
        ConfigError,
        DataError,
        ExportError,
        UnknownNameError,
        FileNotFoundError,
        FileExistsError,
        DamagedFileError,
        TrainingDiverged,
    )


__all__ = ["COMMANDS", "Command", "build_parser", "main", "register"]

if __name__ == "__main__":
    sys.exit(main())

"""The command registry: every ``rnnkit <command>`` is one module registered here."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A CLI command.

    Attributes:
        name: what the user types after ``rnnkit``.
        help: one line for ``rnnkit --help``.
        add_arguments: adds the command's options to its parser.
        run: runs the command on the parsed arguments; returns the exit code.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> Command:
    """Add a command to the registry (a name may be registered once)."""
    if command.name in COMMANDS:
        raise ValueError(f"CLI command {command.name!r} is already registered")
    COMMANDS[command.name] = command
    return command

"""``rnnkit recipes``: the shipped recipes, one line each."""

from __future__ import annotations

import argparse

from rnnkit.cli._registry import Command, register


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="print this recipe's YAML")


def _run(args: argparse.Namespace) -> int:
    from rnnkit.recipes import DEFAULT_RECIPE, recipes

    registry = recipes()
    if args.name:
        print(registry.get(args.name).read_text(), end="")
        return 0
    width = max(map(len, registry.names()))
    for name in registry.names():
        mark = " (default)" if name == DEFAULT_RECIPE else ""
        print(f"{name:<{width}}  {registry.description(name)}{mark}")
    return 0


register(Command("recipes", "list the shipped recipes (or print one)", _add_arguments, _run))

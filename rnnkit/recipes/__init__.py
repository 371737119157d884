"""Recipes: the course's tasks as YAML run configs shipped inside the package.

Each ``<name>.yaml`` here is a complete run config (see
:mod:`rnnkit.config.run`); ``rnnkit recipes`` lists them and ``rnnkit train NAME``
runs one. Its ``description`` is the one-line summary shown in listings.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rnnkit.registry import Registry

DEFAULT_RECIPE = "digits"


@cache
def recipes() -> Registry[Path]:
    """Every shipped recipe by name (the file stem)."""
    registry: Registry[Path] = Registry("recipe")
    folder = resources.files(__name__)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            path = Path(str(entry))
            data = yaml.safe_load(path.read_text())
            registry.register(path.stem, path, description=str(data.get("description", "")))
    return registry


def load_recipe(name: str) -> dict[str, Any]:
    """A recipe's mapping; unknown names list the shipped ones with a close match."""
    return yaml.safe_load(recipes().get(name).read_text())


__all__ = ["DEFAULT_RECIPE", "load_recipe", "recipes"]

"""Model-config helpers: ``to_dict``/``from_dict`` on configs and value checks.

The generic dataclass ⇄ dict conversion lives in :mod:`rnnkit.config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from rnnkit.config import ConfigError, config_from_dict, config_to_dict
from rnnkit.registry import unknown_name_message

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "ConfigMixin",
    "check_choice",
    "check_positive",
    "check_probability",
    "config_from_dict",
    "config_to_dict",
]


class ConfigMixin:
    """``to_dict()`` / ``from_dict()`` on a config dataclass (see the module docstring)."""

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (:func:`config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Build the config from plain data (:func:`config_from_dict`)."""
        return config_from_dict(cls, data)


def check_choice(owner: str, field: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise a ``ValueError`` naming the valid choices (and the closest) unless valid."""
    if value not in choices:
        close = unknown_name_message(field, str(value), list(choices))
        raise ValueError(f"{owner}: {close}")


def check_positive(owner: str, **values: int | None) -> None:
    """Raise a ``ValueError`` unless every given integer is >= 1 (``None`` is skipped)."""
    for name, value in values.items():
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{owner}: expected {name} to be an integer >= 1, got {value!r}")


def check_probability(owner: str, **values: float) -> None:
    """Raise a ``ValueError`` unless every given value is in ``[0, 1)``."""
    for name, value in values.items():
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{owner}: expected {name} in [0, 1), got {value!r}")

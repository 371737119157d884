"""Registries: name → object, shared by configs, the CLI, checkpoints and tests.

Cells/layers, models, datasets, tasks and recipes are all looked up by name here,
so a YAML config, ``rnnkit train --set model.rnn.cell=gru`` and a saved checkpoint
all mean the same thing by ``"gru"``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from rnnkit.errors import RnnkitError

T = TypeVar("T")


class UnknownNameError(RnnkitError, KeyError, ValueError):
    """A name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    """``unknown cell 'lstn'; did you mean 'lstm'? valid: gru, lstm, rnn``."""
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}{hint} valid: {', '.join(sorted(valid))}"


class Registry(Generic[T]):
    """A named collection with helpful errors for unknown names.

    Example::

        MODELS = Registry[type]("model")

        @MODELS.register("classifier", description="many-to-one")
        class SequenceClassifier(nn.Module): ...

        MODELS.get("clasifier")  # UnknownNameError: ... did you mean 'classifier'?
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._descriptions: dict[str, str] = {}

    def register(
        self, name: str, obj: T | None = None, *, description: str = ""
    ) -> Callable[[T], T]:
        """Register ``obj`` under ``name`` (or use as a decorator when ``obj`` is omitted)."""

        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            self._descriptions[name] = description
            return item

        if obj is not None:
            add(obj)
        return add

    def get(self, name: str) -> T:
        """The object registered under ``name``; unknown names list the valid ones."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                unknown_name_message(self.kind, name, list(self._items))
            ) from None

    def description(self, name: str) -> str:
        self.get(name)
        return self._descriptions[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

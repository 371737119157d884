"""``MODELS``: every model class by name, for configs, the CLI, checkpoints and tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from torch import nn

from rnnkit.config import config_from_dict
from rnnkit.registry import Registry

M = TypeVar("M", bound=type[nn.Module])

MODELS: Registry[type[nn.Module]] = Registry("model")
"""Model classes by name; ``MODELS.get(name).Config`` is the model's config dataclass."""


def register_model(name: str, *, description: str) -> Callable[[M], M]:
    """Class decorator: register a model under ``name`` (it must define ``Config``)."""

    def add(cls: M) -> M:
        if not hasattr(cls, "Config"):
            raise TypeError(f"model {cls.__name__} needs a Config class attribute")
        MODELS.register(name, cls, description=description)
        return cls

    return add


def build_model(name: str, config: Any | Mapping[str, Any] | None = None) -> nn.Module:
    """Build the model registered as ``name`` from its config (or a dict of it).

    Arguments:
        name: a name in :data:`MODELS`, e.g. ``"classifier"``.
        config: an instance of the model's ``Config``, a dict that
            :func:`~rnnkit.config.config_from_dict` turns into one, or ``None``
            for the defaults.

    Example::

        >>> model = build_model("classifier", {"num_classes": 46, "rnn": {"cell": "gru"}})
    """
    cls = MODELS.get(name)
    config_cls = cls.Config  # type: ignore[attr-defined]
    if config is None:
        config = config_cls()
    elif isinstance(config, Mapping):
        config = config_from_dict(config_cls, config, path=f"model ({name})")
    return cls(config)

"""Configs as plain data: dataclasses ⇄ JSON/YAML-ready dicts, with helpful errors.

Every config in rnnkit (a model's, the training run's) is a frozen dataclass, so a
typo in a recipe fails at once, not after an hour of training. These two functions
turn any such dataclass — or a whole run config made of them — into a dict of
plain values (``int``, ``float``, ``str``, ``bool``, ``None``, lists, dicts) and back:

* :func:`config_to_dict` — nested dataclasses become dicts, tuples become lists;
* :func:`config_from_dict` — rebuilds nested dataclasses from the field types,
  turns lists back into tuples, checks every value's type and rejects unknown keys
  with a message that lists the valid ones and suggests the closest.

:class:`ConfigMixin` gives a config the two as ``to_dict()`` / ``from_dict()``;
:func:`check_choice`, :func:`check_positive` and :func:`check_probability` are the
value checks the configs' ``__post_init__`` share.

Example::

    >>> d = config_to_dict(ClassifierConfig(num_classes=46))
    >>> config_from_dict(ClassifierConfig, d) == ClassifierConfig(num_classes=46)
    True
    >>> config_from_dict(RecurrentSpec, {"hiden_size": 8})
    ConfigError: RecurrentSpec: unknown key 'hiden_size'; did you mean 'hidden_size'? valid: ...
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from rnnkit.errors import RnnkitError
from rnnkit.registry import unknown_name_message

T = TypeVar("T")


class ConfigError(RnnkitError, ValueError):
    """A config value or key that does not fit its dataclass; the message names the path."""


class ConfigMixin:
    """``to_dict()`` / ``from_dict()`` on a config dataclass: :func:`config_to_dict` and
    :func:`config_from_dict` as methods."""

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (:func:`config_to_dict`)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Build the config from plain data (:func:`config_from_dict`)."""
        return config_from_dict(cls, data)


def config_to_dict(config: Any) -> Any:
    """A dataclass (possibly nested) as plain, JSON/YAML-serialisable data.

    Arguments:
        config: a dataclass instance (or any value: dicts, lists, tuples and
            scalars are converted recursively).

    Returns:
        Dataclasses as ``dict`` (field order kept), tuples as ``list``, everything
        else unchanged.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, Mapping):
        return {key: config_to_dict(value) for key, value in config.items()}
    if isinstance(config, list | tuple):
        return [config_to_dict(value) for value in config]
    return config


def config_from_dict(cls: type[T], data: Mapping[str, Any] | T, *, path: str | None = None) -> T:
    """Build the dataclass ``cls`` from a dict, recursively and with type checks.

    Field types drive the conversion: nested dataclasses are built from dicts,
    ``tuple[...]`` fields accept lists, ``X | None`` accepts ``None``, ``float``
    accepts an ``int``. Missing fields take their defaults.

    Arguments:
        cls: a dataclass type.
        data: a mapping of field name → value (an instance of ``cls`` is returned as is).
        path: where this config sits in a larger one, for error messages: ``"model"``
            names a field ``model.rnn``; ``""`` is the root of a document, whose fields
            are named bare (``train.max_epochs``); by default the class name
            (``ClassifierConfig.rnn``).

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: an unknown key (listing the valid keys, with a close-match
            suggestion), a missing required field, a value of the wrong type, or a
            value the dataclass itself rejects; the message starts with the key's path.
    """
    prefix = cls.__name__ if path is None else path
    where = prefix or cls.__name__
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            message = unknown_name_message("key", str(key), list(fields))
            raise ConfigError(f"{where}: {message}")
    missing = [
        name
        for name, f in fields.items()
        if name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    values = {key: _convert(value, hints[key], _join(prefix, key)) for key, value in data.items()}
    try:
        return cls(**values)
    except ConfigError:
        raise  # a config that raises ConfigError itself names the full path
    except (ValueError, TypeError) as err:
        # The dataclass's own message names the class; a nested one also needs its path.
        raise ConfigError(f"{path}: {err}" if path else str(err)) from err


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _convert(value: Any, hint: Any, path: str) -> Any:
    """``value`` converted to the type ``hint`` (see :func:`config_from_dict`)."""
    if hint is Any or hint is object:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, args, path)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return config_from_dict(hint, value, path=path)  # type: ignore[arg-type]
    if value is None:
        raise ConfigError(f"{path}: expected {getattr(hint, '__name__', hint)}, got None")
    if origin is tuple or hint is tuple:
        return _convert_sequence(value, args, path, tuple)
    if origin is list or hint is list:
        return _convert_sequence(value, args, path, list)
    if origin is dict or hint is dict:
        return _convert_dict(value, args, path)
    return _convert_scalar(value, hint, path)


def _convert_union(value: Any, options: tuple[Any, ...], path: str) -> Any:
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{path}: expected a value, got None")
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _convert(value, option, path)
        except ConfigError as err:
            errors.append(str(err))
    raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: no type fits {value!r}")


def _convert_sequence(value: Any, args: tuple[Any, ...], path: str, kind: type) -> Any:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
    if not args:
        return kind(value)
    if kind is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}")
        return tuple(
            _convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    item = args[0]
    return kind(_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value))


def _convert_dict(value: Any, args: tuple[Any, ...], path: str) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
    if not args:
        return dict(value)
    key_type, value_type = args
    return {
        _convert(k, key_type, path): _convert(v, value_type, _join(path, k))
        for k, v in value.items()
    }


def convert_value(value: Any, hint: Any, path: str) -> Any:
    """``value`` checked against (and converted to) the type ``hint``, as a dataclass field's.

    Raises:
        ConfigError: the value does not fit; the message starts with ``path``.
    """
    return _convert(value, hint, path)


def _convert_scalar(value: Any, hint: Any, path: str) -> Any:
    # bool is a subclass of int: a YAML `true` must not pass for `num_layers: 1`.
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # PyYAML reads "1e-4" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(hint, type):
        try:
            fits = isinstance(value, hint)
        except TypeError:  # a protocol or generic alias isinstance cannot check
            return value
        if fits and not (isinstance(value, bool) and hint is not bool):
            return value
        raise ConfigError(f"{path}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value  # a type this converter does not know: trust the dataclass


# -- value checks, for the configs' __post_init__ --------------------------------------


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

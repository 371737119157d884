"""Config as data: frozen dataclasses ↔ plain dicts (YAML/JSON), strictly checked.

Every config in rnnkit (a model's, the training run's) is a frozen dataclass. This
module turns nested dicts read from YAML into those dataclasses and back, rejecting
unknown keys with the list of valid ones (and a close-match suggestion) and values of
the wrong type with the path to them, so a typo in a recipe fails at once, not after
an hour of training.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from rnnkit.registry import unknown_name_message

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key that does not fit; the message names where and why."""


def config_from_dict(cls: type[T], data: Mapping[str, Any], *, path: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) mapping, checking keys and types.

    Arguments:
        cls: a dataclass type; nested dataclass fields are built recursively.
        data: the mapping (e.g. from ``yaml.safe_load``).
        path: where ``data`` sits in a bigger config, for error messages.

    Returns:
        An instance of ``cls``; missing keys take the field defaults.

    Raises:
        ConfigError: unknown key (with the valid keys and a close match), wrong type,
            or a required key missing.

    Example::

        >>> config_from_dict(RecurrentSpec, {"cell": "gru", "hidden_size": 64})
        RecurrentSpec(cell='gru', hidden_size=64, ...)
    """
    where = path or cls.__name__
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            raise ConfigError(f"{where}: " + unknown_name_message("key", str(key), list(fields)))
    hints = get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _convert(hints[name], data[name], f"{path}.{name}" if path else name)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r}")
    return cls(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass as plain data (tuples become lists), ready for YAML or JSON."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _convert(hint: Any, value: Any, path: str) -> Any:
    """Check ``value`` against a type hint, converting lists/dicts to what it names."""
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):  # type: ignore[arg-type]
            return value
        return config_from_dict(hint, value, path=path)  # type: ignore[arg-type]
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return _convert_union(args, value, path)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        return _convert_sequence(origin, args, value, path)
    if origin in (dict, Mapping, typing.Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    return _convert_scalar(hint, value, path)


def _convert_union(args: tuple[Any, ...], value: Any, path: str) -> Any:
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{path}: a value is required, got null")
    errors = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return _convert(arg, value, path)
        except ConfigError as err:
            errors.append(str(err).split(": ", 1)[-1])
    raise ConfigError(f"{path}: {value!r} fits none of: " + "; ".join(errors))


def _convert_sequence(origin: Any, args: tuple[Any, ...], value: Any, path: str) -> Any:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{path}: expected a list, got {value!r}")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}")
        return tuple(
            _convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    item = args[0] if args else Any
    items = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _convert_scalar(hint: Any, value: Any, path: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # PyYAML reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"{path}: expected {hint.__name__}, got {value!r}")
    return value

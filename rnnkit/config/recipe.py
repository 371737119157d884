"""Recipe files and ``--set`` overrides: YAML in, YAML out, ``key.sub=value`` on top."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rnnkit.config.convert import ConfigError
from rnnkit.config.run import TOP_LEVEL_KEYS
from rnnkit.registry import unknown_name_message


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping gives a clear error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: expected UTF-8 YAML text, got bytes that are not: {err}"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        shown = "an empty file" if data is None else type(data).__name__
        raise ConfigError(f"{path}: expected a YAML mapping, got {shown}")
    return data


def save_yaml(data: Mapping[str, Any], path: str | Path) -> None:
    """Write a mapping as YAML in its own key order (short lists and mappings inline)."""
    Path(path).write_text(yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=None))


def apply_overrides(data: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a recipe mapping.

    Arguments:
        data: the recipe mapping (not modified).
        overrides: ``["train.max_epochs=3", "model.rnn.cell=gru",
            "train.trainer.accumulate_grad_batches=2", ...]``.

    Returns:
        A new mapping. A top-level key must be a known one; deeper keys are checked
        when the config is built, against what the component accepts.
    """
    result = copy.deepcopy(dict(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        parts = key.split(".")
        if parts[0] not in TOP_LEVEL_KEYS:
            raise ConfigError(
                f"--set {item!r}: "
                + unknown_name_message("top-level key", parts[0], list(TOP_LEVEL_KEYS))
            )
        node = result
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[: i + 1])} is not a mapping")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or "not a YAML value"
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({problem})") from None
    return result

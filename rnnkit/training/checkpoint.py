"""Checkpoints as safetensors + JSON: weights, optimiser state, and plain-data state.

Nothing here pickles. A pickled checkpoint runs arbitrary code when loaded and ties
the file to the classes that wrote it; safetensors holds only named tensors and
JSON holds only plain data, so a run directory can be shared and inspected safely.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, load_model, save_file, save_model
from torch import Tensor, nn


def save_weights(model: nn.Module, path: str | Path) -> None:
    """Write a model's parameters and buffers to a ``.safetensors`` file.

    Tied weights (a language model's shared embedding and output matrix) are stored
    once and restored as tied.
    """
    save_model(model, str(path))


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load weights saved by :func:`save_weights`; every tensor must match by name and shape."""
    missing, unexpected = load_model(model, str(path), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"weights in {path} do not fit {type(model).__name__}: "
            f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )


def save_optimizer(state: dict[str, Any], directory: str | Path) -> None:
    """Write an optimiser ``state_dict`` as ``optimizer.safetensors`` + ``optimizer.json``."""
    tensors: dict[str, Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state["state"].items():
        plain[str(param_id)] = {}
        for key, value in param_state.items():
            if isinstance(value, Tensor):
                tensors[f"{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain[str(param_id)][key] = value
    directory = Path(directory)
    save_file(tensors, str(directory / "optimizer.safetensors"))
    meta = {"state": plain, "param_groups": state["param_groups"]}
    (directory / "optimizer.json").write_text(json.dumps(meta, indent=1))


def load_optimizer(directory: str | Path) -> dict[str, Any]:
    """Read an optimiser ``state_dict`` written by :func:`save_optimizer`."""
    directory = Path(directory)
    meta = json.loads((directory / "optimizer.json").read_text())
    tensors = load_file(str(directory / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in meta["state"].items()}
    for name, tensor in tensors.items():
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = tensor
    return {"state": state, "param_groups": meta["param_groups"]}


def save_json(data: Any, path: str | Path) -> None:
    """Write plain data as indented JSON (tensors and NumPy values become lists/numbers)."""
    Path(path).write_text(json.dumps(data, indent=2, default=_plain) + "\n")


def load_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def _plain(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")

"""The metadata an exported file carries, so that a consumer needs nothing else.

One JSON object (schema :data:`SCHEMA`), stored in an ONNX file's ``metadata_props`` under
the key ``"rnnkit"`` and in a ``.pt2`` archive as the extra file ``rnnkit.json``. Every
graph file of a model carries the same object. Its keys (``docs/export.md`` has the
table and an example):

``schema``, ``rnnkit_version``, ``torch_version``
    ``"rnnkit.export/1"`` and the versions that wrote it.
``format``, ``opset``, ``quantization``
    ``"onnx"`` (with its opset) or ``"torch-export"``; ``null`` or ``"int8-dynamic"``.
``model``
    ``kind`` (``classifier``, ``tagger``, ``language_model``, ``forecaster``, ``seq2seq``,
    ``conditional_generator``) and ``config``, the model's options.
``task``, ``run``
    The task name and the run's recipe name and description.
``graphs``
    Role → ``file`` (beside this one), ``inputs`` and ``outputs`` (``name``, ``dtype``,
    ``shape`` with named dynamic axes, ``doc``), in call order.
``data``
    What the data pipeline learnt and how inputs are made: ``class_names``, ``vocab``
    (``tokens`` in id order, ``pad``, ``unk``, ``bos``, ``eos``, ``lower``),
    ``source_vocab``/``target_vocab`` (seq2seq, captions), ``feature_scaler`` and
    ``target_scaler`` (``kind``, per-column ``shift`` and ``scale``: ``x' = (x - shift) /
    scale``), ``tokenizer``, ``max_length`` and ``preprocessing`` (a sentence).
``notes``
    Facts of the model kind: special token ids and ``never_emit`` for decoders, the
    image size of a CNN encoder.
"""

from __future__ import annotations

import platform
from typing import Any

import torch

SCHEMA = "rnnkit.export/1"

_IMAGES = (
    "an image is H rows of W pixels, grey in [0, 1] (pixel / 255), the digit bright on a "
    "dark background (invert dark-on-white scans); each row is one step"
)
_PREPROCESSING = {
    "digits": _IMAGES + "; inputs (B, 28, 28), lengths 28",
    "fashion-mnist": _IMAGES + "; inputs (B, 28, 28), lengths 28",
    "digit-captions": "images (B, 1, 28, 28): " + _IMAGES.split(";")[0],
    "textstream": "text → tokens (tokenizer) → ids (vocab.tokens index)",
    "imdb": "text → tokenizer → ids (vocab; unknown words → unk), the first max_length kept",
    "reuters": "text → tokenizer → ids (vocab; unknown words → unk), the first max_length kept",
    "pairs": "source text → tokenizer → ids (source_vocab); decode ids with target_vocab",
    "stocks": "a window of rows of the feature columns, scaled with feature_scaler; "
    "forecasts are scaled targets: invert with target_scaler",
}


def _without_counts(value: Any) -> Any:
    """A data state with every vocabulary's token counts dropped (they only inform training)."""
    if isinstance(value, dict):
        return {k: _without_counts(v) for k, v in value.items() if k != "counts"}
    return value


def data_metadata(
    config: Any, data_state: dict[str, Any], datamodule: Any = None
) -> dict[str, Any]:
    """The ``data`` section: the learnt state and how inputs are made for this run."""
    data: dict[str, Any] = {"name": config.data.name, "options": dict(config.data.options)}
    data.update(_without_counts(data_state))
    if "class_names" not in data and getattr(datamodule, "class_names", None):
        data["class_names"] = list(datamodule.class_names)  # fixed names (digits: "0".."9")
    tokenizer = getattr(datamodule, "tokenizer", None)
    if tokenizer is not None:
        data["tokenizer"] = config.data.options.get("tokenizer") or getattr(
            tokenizer, "__name__", type(tokenizer).__name__
        )
    for key in ("max_length", "window", "features", "targets", "block_size"):
        value = getattr(datamodule, key, None)
        if value is not None and not callable(value):
            data[key] = list(value) if isinstance(value, tuple | list) else value
    data["preprocessing"] = _PREPROCESSING.get(config.data.name, "")
    return data


def build_metadata(
    *,
    kind: str,
    model_config: dict[str, Any],
    graphs: dict[str, dict[str, Any]],
    format: str,
    opset: int | None,
    quantization: str | None,
    notes: dict[str, Any],
    task: str | None = None,
    run: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata object (see the module docstring for its keys)."""
    from rnnkit import __version__

    return {
        "schema": SCHEMA,
        "rnnkit_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "format": format,
        "opset": opset,
        "quantization": quantization,
        "model": {"kind": kind, "config": model_config},
        "task": task,
        "run": run or {},
        "graphs": graphs,
        "data": data or {},
        "notes": notes,
    }

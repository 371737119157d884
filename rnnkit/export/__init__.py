"""Export: a trained run out of rnnkit, to ONNX Runtime or torch.export, int8 if asked.

* :func:`export_run` — a run directory (or a loaded run) → ``.onnx`` / ``.pt2`` files that
  carry the run's metadata (:mod:`rnnkit.export.metadata`), checked against the model;
  ``rnnkit export RUN --format onnx|torch-export [--quantize int8] --out FILE`` on the CLI.
* :func:`export_model` — the same for a model without a run directory.
* :func:`quantize_model` — PyTorch's dynamic int8 version of a model, for CPU inference.
* :func:`read_metadata` — the metadata of an exported file.

Every model kind exports (:mod:`rnnkit.export.graphs`); every cell family too: the plain
cells and the peephole LSTM as ONNX's own ``RNN``/``GRU``/``LSTM`` operators, layer norm,
zoneout (its eval-mode expectation) and user cells as a ``scan`` over their step
(:mod:`rnnkit.export.recurrence`). ``onnx``, ``onnxruntime`` and ``onnxscript`` are the
``rnnkit[export]`` extra; torch.export needs nothing more than PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.export.errors import ExportError
from rnnkit.export.exporter import (
    FORMATS,
    QUANTIZATIONS,
    ExportResult,
    export_model,
    export_run,
)
from rnnkit.export.quantize import quantize_model


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The rnnkit metadata of an exported ``.onnx`` or ``.pt2`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected an exported file, found nothing at {path}")
    if path.suffix == ".pt2":
        from rnnkit.export.torch_export import load_program

        return load_program(path)[1]
    from rnnkit.export.onnx import read_metadata as read_onnx

    return read_onnx(path)


__all__ = [
    "FORMATS",
    "QUANTIZATIONS",
    "ExportError",
    "ExportResult",
    "export_model",
    "export_run",
    "quantize_model",
    "read_metadata",
]

"""ONNX: the exported programs through PyTorch's ONNX exporter, with ONNX's own RNN ops.

:func:`to_onnx` hands a :class:`torch.export.ExportedProgram` to ``torch.onnx.export``
(the dynamo exporter, opset :data:`OPSET`) with a translation for each custom op of
:mod:`rnnkit.export.native`: ONNX's ``RNN``, ``GRU`` or ``LSTM`` operator with
``sequence_lens`` (the GRU with ``linear_before_reset=1``, which is torch's GRU).
``torch``'s ``scan`` (layer norm, zoneout, user cells) becomes ONNX's ``Scan``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.export.errors import MISSING_EXTRA, ExportError, quiet_logs, quiet_pytree_warning

OPSET = 18
"""The ONNX opset of exported graphs (``LayerNormalization`` needs 17; ONNX Runtime ≥ 1.14)."""

METADATA_KEY = "rnnkit"
"""The ``metadata_props`` key that holds the JSON metadata (:mod:`rnnkit.export.metadata`)."""


def require_extra() -> None:
    """Raise :class:`ExportError` naming the extra unless onnx, onnxruntime, onnxscript import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ExportError(MISSING_EXTRA) from err


# -- translations of the custom ops -------------------------------------------------
# Weights arrive in ONNX's layout (rnnkit.export.native.OnnxWeights); states are (B, H)
# and ONNX's are (num_directions = 1, B, H).


def _lens(lengths: Any) -> Any:
    from onnxscript import opset18 as op

    return None if lengths is None else op.Cast(lengths, to=6)  # INT32 sequence_lens


def _direction(reverse: bool) -> str:
    return "reverse" if reverse else "forward"


def _onnx_rnn(x, h0, lengths, w, r, b, reverse, nonlinearity):  # type: ignore[no-untyped-def]
    from onnxscript import opset18 as op

    y, y_h = op.RNN(
        x, w, r, b, _lens(lengths), op.Unsqueeze(h0, [0]),
        activations=[{"tanh": "Tanh", "relu": "Relu"}[nonlinearity]],
        direction=_direction(reverse), hidden_size=int(r.shape[2]),
    )  # fmt: skip
    return op.Squeeze(y, [1]), op.Squeeze(y_h, [0])


def _onnx_gru(x, h0, lengths, w, r, b, reverse):  # type: ignore[no-untyped-def]
    from onnxscript import opset18 as op

    y, y_h = op.GRU(
        x, w, r, b, _lens(lengths), op.Unsqueeze(h0, [0]),
        direction=_direction(reverse), hidden_size=int(r.shape[2]), linear_before_reset=1,
    )  # fmt: skip
    return op.Squeeze(y, [1]), op.Squeeze(y_h, [0])


def _onnx_lstm(x, h0, c0, lengths, w, r, b, p, reverse):  # type: ignore[no-untyped-def]
    from onnxscript import opset18 as op

    y, y_h, y_c = op.LSTM(
        x, w, r, b, _lens(lengths), op.Unsqueeze(h0, [0]), op.Unsqueeze(c0, [0]), p,
        direction=_direction(reverse), hidden_size=int(r.shape[2]),
    )  # fmt: skip
    return op.Squeeze(y, [1]), op.Squeeze(y_h, [0]), op.Squeeze(y_c, [0])


def translation_table() -> dict[Any, Any]:
    """The ONNX exporter's ``custom_translation_table`` for rnnkit's custom ops."""
    from rnnkit.export.native import NATIVE_OPS

    return {
        NATIVE_OPS["rnn"]: _onnx_rnn,
        NATIVE_OPS["gru"]: _onnx_gru,
        NATIVE_OPS["lstm"]: _onnx_lstm,
    }


# -- export, metadata, running ------------------------------------------------------


def to_onnx(
    program: torch.export.ExportedProgram,
    path: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    metadata: dict[str, Any],
) -> None:
    """Convert an exported program to ONNX at ``path``, with ``metadata`` in ``metadata_props``."""
    require_extra()
    with quiet_logs("torch.onnx"), quiet_pytree_warning():
        onnx_program = torch.onnx.export(
            program,
            (),
            input_names=list(input_names),
            output_names=list(output_names),
            opset_version=OPSET,
            custom_translation_table=translation_table(),
            dynamo=True,
            optimize=True,
            verbose=False,
        )
    assert onnx_program is not None
    onnx_program.model.metadata_props[METADATA_KEY] = json.dumps(metadata)
    onnx_program.save(str(path))


def write_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Replace the rnnkit metadata of the ONNX file at ``path``."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props[METADATA_KEY] = json.dumps(metadata)
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The rnnkit metadata of an exported ONNX file."""
    require_extra()
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    raise ExportError(f"{path} has no rnnkit metadata (metadata_props[{METADATA_KEY!r}])")


def session(path: str | Path, *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for ``path``."""
    require_extra()
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess: Any, names: Sequence[str], inputs: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Run an ONNX Runtime session on torch tensors given in ``names``' order."""
    feeds = {name: t.detach().cpu().numpy() for name, t in zip(names, inputs, strict=True)}
    return sess.run(None, feeds)

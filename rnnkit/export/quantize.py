"""Dynamic int8 quantisation for CPU inference: weights int8, activations quantised per call.

Two routes, compared on the trained digits and IMDB runs in ``docs/export.md``:

* :func:`quantize_onnx` — ONNX Runtime's ``quantize_dynamic`` on an exported ONNX file:
  ``MatMul`` → ``DynamicQuantizeMatMul``/``MatMulInteger``, ``LSTM`` →
  ``DynamicQuantizeLSTM`` (ONNX Runtime's ``com.microsoft`` domain, so the file then needs
  ONNX Runtime), embedding ``Gather`` on int8 tables. ONNX Runtime has no int8 ``GRU`` or
  ``RNN``: those stay fp32. This is what ``rnnkit export --quantize int8`` writes.
* :func:`quantize_model` — PyTorch's dynamic quantisation (``torch.ao``) of a model's
  ``LSTM``/``GRU`` layers and ``Linear`` layers, for PyTorch CPU inference in Python.
  Only the plain drop-in layers have int8 kernels (no variants, no ``Recurrent``).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.cells.base import LSTMState
from rnnkit.export.errors import MISSING_EXTRA, ExportError, quiet_logs
from rnnkit.layers.standard import GRU, LSTM


def quantize_onnx(source: Path, target: Path, *, metadata: dict[str, Any] | None = None) -> None:
    """Write ``source``'s dynamic int8 version to ``target`` (``metadata`` replaces its own).

    Weights are signed int8 (``QInt8``) per tensor; activations are quantised per call.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise ExportError(MISSING_EXTRA) from err
    with quiet_logs(""):  # its advice to pre-process is for static quantisation
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    if metadata is not None:
        from rnnkit.export.onnx import write_metadata

        write_metadata(target, metadata)


class QuantizedLayer(nn.Module):
    """A drop-in ``LSTM``/``GRU`` on PyTorch's dynamic int8 kernels, called as the layer.

    Ragged batches are packed for the kernels (``lengths`` as the layer takes them); the
    final state is each sequence's last valid step's, as the layer's.
    """

    def __init__(self, layer: LSTM | GRU) -> None:
        super().__init__()
        from torch.ao.nn.quantized import dynamic as nnqd
        from torch.ao.quantization import default_dynamic_qconfig

        plain_cls, int8_cls = (
            (nn.LSTM, nnqd.LSTM) if isinstance(layer, LSTM) else (nn.GRU, nnqd.GRU)
        )
        plain = plain_cls(
            layer.input_size,
            layer.hidden_size,
            num_layers=layer.num_layers,
            bias=layer.bias,
            batch_first=layer.batch_first,
            bidirectional=layer.bidirectional,
        )
        plain.load_state_dict(
            {k: v for k, v in layer.state_dict().items() if k in plain.state_dict()}
        )
        plain.qconfig = default_dynamic_qconfig
        with warnings.catch_warnings():  # torch.ao's deprecation notices, not the user's
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantized tensor creation.*")
            self.layer = int8_cls.from_float(plain)
        self.lstm, self.batch_first = isinstance(layer, LSTM), layer.batch_first

    def forward(
        self, x: Tensor, state: Any = None, *, lengths: Tensor | None = None
    ) -> tuple[Tensor, Any]:
        hx = None if state is None else (tuple(state) if self.lstm else state)
        if lengths is None:
            out, hidden = self.layer(x, hx)
        else:
            lengths = torch.as_tensor(lengths).cpu().clamp(min=1)
            packed = pack_padded_sequence(x, lengths, self.batch_first, enforce_sorted=False)
            packed_out, hidden = self.layer(packed, hx)
            total = x.shape[1 if self.batch_first else 0]
            out, _ = pad_packed_sequence(packed_out, self.batch_first, total_length=total)
        return out, LSTMState(*hidden) if self.lstm else hidden


def quantize_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for int8 CPU inference in PyTorch (eval mode).

    Its plain ``rnnkit.LSTM``/``GRU`` layers run PyTorch's dynamic int8 kernels
    (:class:`QuantizedLayer`) and its ``Linear`` layers ``torch.ao``'s dynamic int8 linear.

    Raises:
        ExportError: a layer has variants, or the model has no layer that quantises.
    """
    from torch.ao.quantization import quantize_dynamic

    result = copy.deepcopy(model).eval()
    swapped = 0
    for name, module in list(result.named_modules()):
        if isinstance(module, LSTM | GRU):
            if module.variant.changes_forward or getattr(module, "proj_size", 0):
                raise ExportError(
                    f"{name}: PyTorch has no int8 kernel for {module!r}'s variant options or "
                    "projection; quantise the ONNX export instead"
                )
            parent_name, _, attr = name.rpartition(".")
            parent = result.get_submodule(parent_name) if parent_name else result
            setattr(parent, attr, QuantizedLayer(module))
            swapped += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = quantize_dynamic(result, {nn.Linear}, dtype=torch.qint8)
    if not swapped and not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ExportError(f"{type(model).__name__} has no layer that PyTorch quantises to int8")
    return result

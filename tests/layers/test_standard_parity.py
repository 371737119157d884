"""rnnkit.RNN/LSTM/GRU against torch.nn, over the whole matrix of standard configurations:

Layer type × num_layers × bidirectional × batch_first × bias × input kind × initial
state × dtype × engine. For each: outputs, final states and the gradients of the
input, the initial state and every parameter equal torch.nn's, after copying the
state_dict torch → rnnkit, and torch.nn loaded from rnnkit's state_dict gives the
same results again (fp32 atol 1e-5, fp64 1e-10).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from tests.helpers import assert_close, leaves, weighted_sum

IN, H, P, T, B = 3, 4, 2, 5, 3  # input, hidden, projection, steps, batch
LENGTHS = torch.tensor([5, 2, 4])  # ragged, unsorted

LAYERS: dict[str, tuple[type, type, dict[str, Any]]] = {
    "rnn_tanh": (rnnkit.RNN, nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (rnnkit.RNN, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (rnnkit.LSTM, nn.LSTM, {}),
    "lstm_proj": (rnnkit.LSTM, nn.LSTM, {"proj_size": P}),
    "gru": (rnnkit.GRU, nn.GRU, {}),
}
INPUTS = ("padded", "lengths", "packed", "unbatched")


# CUDA runs the same matrix against cuDNN where a GPU is present.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _exact_cuda_matmuls() -> Any:
    """TF32 would round fp32 products to 10 bits: compare full-precision kernels."""
    if not torch.cuda.is_available():
        yield
        return
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def _initial_state(
    kind: str, layers: int, dirs: int, dtype: torch.dtype, unbatched: bool, device: str
) -> Any:
    out = P if kind == "lstm_proj" else H
    lead = (layers * dirs,) if unbatched else (layers * dirs, B)
    h0 = torch.randn(*lead, out, dtype=dtype).to(device).requires_grad_(True)
    if kind.startswith("lstm"):
        return (h0, torch.randn(*lead, H, dtype=dtype).to(device).requires_grad_(True))
    return h0


def _run(layer: nn.Module, x: torch.Tensor, hx: Any, input_kind: str, batch_first: bool) -> list:
    """Forward + backward; returns outputs, final states and every gradient."""
    x = x.detach().clone().requires_grad_(True)
    hx = None if hx is None else _fresh(hx)
    if input_kind == "packed":
        packed = pack_padded_sequence(x, LENGTHS, batch_first=batch_first, enforce_sorted=False)
        out, h = layer(packed, hx)
        out = pad_packed_sequence(out, batch_first=batch_first, total_length=T)[0]
    elif input_kind == "lengths" and isinstance(layer, rnnkit.LSTM | rnnkit.GRU | rnnkit.RNN):
        out, h = layer(x, hx, lengths=LENGTHS)
    elif input_kind == "lengths":  # the torch.nn reference: pack by hand, zero the padding
        packed = pack_padded_sequence(x, LENGTHS, batch_first=batch_first, enforce_sorted=False)
        out, h = layer(packed, hx)
        out = pad_packed_sequence(out, batch_first=batch_first, total_length=T)[0]
    else:
        out, h = layer(x, hx)
    loss = weighted_sum([out, *leaves(h)])
    inputs = [x, *([] if hx is None else leaves(hx)), *layer.parameters()]
    grads = torch.autograd.grad(loss, inputs)
    return [out, *leaves(h), *grads]


def _fresh(hx: Any) -> Any:
    if isinstance(hx, tuple):
        return tuple(t.detach().clone().requires_grad_(True) for t in hx)
    return hx.detach().clone().requires_grad_(True)


CONFIGS = list(
    itertools.product(
        LAYERS, (1, 2, 3), (False, True), (False, True), (True, False), INPUTS, (False, True)
    )
)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    ("kind", "num_layers", "bidirectional", "batch_first", "bias", "input_kind", "with_state"),
    CONFIGS,
    ids=[
        f"{k}-L{n}-{'bi' if b else 'uni'}-{'bf' if f else 'tf'}-{'bias' if s else 'nobias'}-{i}"
        f"-{'h0' if h else 'noh0'}"
        for k, n, b, f, s, i, h in CONFIGS
    ],
)
def test_matches_torch_nn(
    kind: str,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    bias: bool,
    input_kind: str,
    with_state: bool,
    dtype: torch.dtype,
    device: str,
) -> None:
    ours_cls, torch_cls, extra = LAYERS[kind]
    options = dict(
        num_layers=num_layers,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidirectional,
        dtype=dtype,
        **extra,
    )
    reference = torch_cls(IN, H, **options).to(device)
    unbatched = input_kind == "unbatched"
    shape = (T, IN) if unbatched else ((B, T, IN) if batch_first else (T, B, IN))
    x = torch.randn(*shape, dtype=dtype).to(device)
    dirs = 2 if bidirectional else 1
    hx = _initial_state(kind, num_layers, dirs, dtype, unbatched, device) if with_state else None
    expected = _run(reference, x, hx, input_kind, batch_first)

    for engine in ("fused", "loop"):
        ours = ours_cls(IN, H, engine=engine, **options).to(device)
        ours.load_state_dict(reference.state_dict())  # torch -> rnnkit
        assert ours.active_engine == engine
        actual = _run(ours, x, hx, input_kind, batch_first)
        assert len(actual) == len(expected)
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            what = f"{engine} engine, tensor {i} (outputs, states, gradients)"
            if device == "cuda" and engine == "loop" and dtype == torch.float32:
                # cuDNN sums in its own order: measured up to 5.4e-5 apart in fp32
                # (H100, cuDNN 9.19) while fp64 agrees to 1e-10, so fp32 gets 1e-4 here.
                torch.testing.assert_close(
                    a, e, atol=1e-4, rtol=1e-4, msg=lambda m, what=what: f"{what}: {m}"
                )
            else:
                assert_close(a, e, what=what)

    back = torch_cls(IN, H, **options).to(device)
    back.load_state_dict(ours.state_dict())  # rnnkit -> torch
    for i, (a, e) in enumerate(
        zip(_run(back, x, hx, input_kind, batch_first), actual, strict=True)
    ):
        assert_close(a, e, what=f"round trip rnnkit -> torch.nn, tensor {i}")

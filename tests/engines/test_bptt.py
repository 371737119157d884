"""The BPTT engine against its references.

* Every variant on the BPTT engine equals the autograd reference loop of the same cell
  (the loop engine running the variant's plain step): outputs, final and per-step
  states, and the gradients of the input, the initial state and every parameter,
  under the same seed so both see the same masks: fp64 within 1e-10 (the math is the
  same) and fp32 within 1e-5. With layer norm in fp32 (LN over only G·H = 16 units
  here; an RNN layer normalises only H = 4), *both* paths land 5e-6 to 2e-3
  (relative) from the fp64 result, one or the other closer depending on the seed, so
  they can differ by more than 1e-5 from each other. There the BPTT engine (whose native
  loops have their own ``exp`` and fp64 row sums) is held to the fp64 result instead:
  within 1e-4 or 10× the reference's own error, and never beyond 1e-2.
* Plain configurations on the BPTT engine equal ``torch.nn``.
* Engine selection: what ``auto`` picks, and clear errors for what cannot run.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit.engines import record_steps
from tests.helpers import assert_close, leaves

IN, H, T, B = 3, 4, 5, 3
LENGTHS = torch.tensor([5, 0, 3])  # ragged, unsorted, one empty sequence
LAYERS = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}
ALL_ON = {"zoneout_h": 0.3, "input_dropout": 0.2, "recurrent_dropout": 0.3, "weight_drop": 0.2}
OPTIONS: dict[str, list[dict[str, Any]]] = {
    family: [
        {"layer_norm": True},
        {"zoneout_h": 0.3},
        {"input_dropout": 0.3},
        {"recurrent_dropout": 0.3},
        {"weight_drop": 0.3},
        {"layer_norm": True, **ALL_ON},
    ]
    for family in LAYERS
}
OPTIONS["lstm"] += [
    {"peephole": True},
    {"zoneout_c": 0.3},
    {"layer_norm": True, "peephole": True, "zoneout_c": 0.2, **ALL_ON},
]
OPTIONS["rnn"] += [{"nonlinearity": "relu", "layer_norm": True, **ALL_ON}]
CASES = [(family, options) for family, sets in OPTIONS.items() for options in sets]


def weighted_sum(tensors: list[torch.Tensor], seed: int = 1) -> torch.Tensor:
    """A scalar of every element, with weights drawn in fp64 so every dtype gets the same."""
    gen = torch.Generator().manual_seed(seed)
    total = 0
    for t in tensors:
        total = total + (t * torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t)).sum()
    return total


def _run(layer: nn.Module, x: torch.Tensor, hx: Any, lengths: Any, seed: int) -> list:
    """Forward (masks from ``seed``) + backward; outputs, states and every gradient."""
    x = x.detach().clone().requires_grad_(True)
    hx = None if hx is None else _fresh(hx)
    torch.manual_seed(seed)
    out, final, states = layer(x, hx, lengths=lengths, return_states=True)
    loss = weighted_sum([out, *leaves(final), *leaves(states)])
    inputs = [x, *([] if hx is None else leaves(hx)), *layer.parameters()]
    return [out, *leaves(final), *leaves(states), *torch.autograd.grad(loss, inputs)]


def _fresh(hx: Any) -> Any:
    if isinstance(hx, tuple):
        return tuple(t.detach().clone().requires_grad_(True) for t in hx)
    return hx.detach().clone().requires_grad_(True)


def _initial(family: str, layers: int, dirs: int, dtype: torch.dtype) -> Any:
    h0 = torch.randn(layers * dirs, B, H, dtype=dtype)
    return (h0, torch.randn_like(h0)) if family == "lstm" else h0


def _check_parity(
    family: str,
    options: dict[str, Any],
    *,
    layers: int,
    bidirectional: bool,
    lengths: torch.Tensor | None,
    initial: bool,
    training: bool,
    dtype: torch.dtype = torch.float32,
) -> None:
    torch.manual_seed(0)
    layer = LAYERS[family](
        IN, H, num_layers=layers, bidirectional=bidirectional, dtype=torch.float64, **options
    )
    layer.train(training)
    with torch.no_grad():  # move away from the initial LN gains of 1 so they matter
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(T, B, IN, dtype=torch.float64)
    hx = _initial(family, layers, 2 if bidirectional else 1, torch.float64) if initial else None
    truth = None
    if dtype != torch.float64 and options.get("layer_norm"):
        layer.engine = "loop"
        truth = _run(layer, x, hx, lengths, seed=7)
    layer.to(dtype)
    x, hx = x.to(dtype), None if hx is None else _cast(hx, dtype)
    results = {}
    for engine in ("bptt", "loop"):
        layer.engine = engine
        assert layer.active_engine == engine
        results[engine] = _run(layer, x, hx, lengths, seed=7)
    pairs = zip(results["bptt"], results["loop"], strict=True)
    if truth is None:
        for i, (got, want) in enumerate(pairs):
            assert_close(got, want, what=f"{family} {options}: tensor {i} (outputs, states, grads)")
        return
    errors = {e: _relative_error(r, truth) for e, r in results.items()}
    assert errors["bptt"] <= min(1e-2, max(1e-4, 10 * errors["loop"])), errors


def _cast(hx: Any, dtype: torch.dtype) -> Any:
    return tuple(t.to(dtype) for t in hx) if isinstance(hx, tuple) else hx.to(dtype)


def _relative_error(got: list[torch.Tensor], truth: list[torch.Tensor]) -> float:
    """max |got - truth| / (1 + |truth|) over every tensor."""
    pairs = zip(got, truth, strict=True)
    return max(((g.double() - t) / (1 + t.abs())).abs().max().item() for g, t in pairs)


@pytest.mark.parametrize(("family", "options"), CASES, ids=[f"{f}-{o}" for f, o in CASES])
@pytest.mark.parametrize(
    "config",
    [
        dict(layers=1, bidirectional=False, lengths=None, initial=False, training=True),
        dict(layers=2, bidirectional=True, lengths=LENGTHS, initial=True, training=True),
        dict(layers=2, bidirectional=True, lengths=LENGTHS, initial=True, training=False),
        dict(
            layers=2,
            bidirectional=True,
            lengths=LENGTHS,
            initial=True,
            training=True,
            dtype=torch.float64,
        ),
    ],
    ids=["simple", "stacked-bidir-ragged-h0", "eval", "fp64"],
)
def test_variant_on_bptt_equals_its_reference_loop(family: str, options: dict, config) -> None:
    _check_parity(family, options, **config)


@settings(max_examples=25, deadline=None)
@given(
    case=st.sampled_from(CASES),
    layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    lengths=st.one_of(st.none(), st.lists(st.integers(0, T), min_size=B, max_size=B)),
    initial=st.booleans(),
    training=st.booleans(),
)
def test_variant_parity_over_random_configurations(
    case, layers, bidirectional, lengths, initial, training
) -> None:
    family, options = case
    _check_parity(
        family,
        options,
        layers=layers,
        bidirectional=bidirectional,
        lengths=None if lengths is None else torch.tensor(lengths),
        initial=initial,
        training=training,
    )


def test_recurrent_over_variant_cells_uses_the_bptt_engine_and_matches_the_loop() -> None:
    layer = rnnkit.Recurrent(
        lambda n: rnnkit.LSTMVariantCell(
            n, H, layer_norm=True, zoneout_h=0.2, peephole=True, dtype=torch.float64
        ),
        input_size=IN,
        num_layers=2,
        bidirectional=True,
    )
    assert layer.active_engine == "bptt"
    x, results = torch.randn(T, B, IN, dtype=torch.float64), {}
    for engine in ("bptt", "loop"):
        layer.engine = engine
        results[engine] = _run(layer, x, None, LENGTHS, seed=3)
    for got, want in zip(results["bptt"], results["loop"], strict=True):
        assert_close(got, want, what="Recurrent(LSTMVariantCell)")


# -- plain configurations equal torch.nn ---------------------------------------------------

TORCH = {
    "rnn_tanh": (rnnkit.RNN, nn.RNN, {}),
    "rnn_relu": (rnnkit.RNN, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (rnnkit.LSTM, nn.LSTM, {}),
    "gru": (rnnkit.GRU, nn.GRU, {}),
}


def _torch_run(layer: nn.Module, x: torch.Tensor, hx: Any, packed: bool) -> list:
    x = x.detach().clone().requires_grad_(True)
    hx = None if hx is None else _fresh(hx)
    if packed:
        seq = pack_padded_sequence(x, LENGTHS.clamp(min=1), enforce_sorted=False)
        out, h = layer(seq, hx)
        out = pad_packed_sequence(out, total_length=T)[0]
    else:
        out, h = layer(x, hx)
    loss = weighted_sum([out, *leaves(h)])
    inputs = [x, *([] if hx is None else leaves(hx)), *layer.parameters()]
    return [out, *leaves(h), *torch.autograd.grad(loss, inputs)]


@pytest.mark.parametrize(
    ("kind", "layers", "bidirectional", "packed", "initial", "dtype"),
    [
        (kind, layers, bidir, packed, initial, dtype)
        for kind, layers, bidir, packed, initial, dtype in itertools.product(
            TORCH, (1, 2), (False, True), (False, True), (False, True), (torch.float64,)
        )
    ]
    + [(kind, 2, True, True, True, torch.float32) for kind in TORCH],
)
def test_plain_bptt_equals_torch_nn(kind, layers, bidirectional, packed, initial, dtype) -> None:
    ours_cls, torch_cls, extra = TORCH[kind]
    options = dict(num_layers=layers, bidirectional=bidirectional, dtype=dtype, **extra)
    reference = torch_cls(IN, H, **options)
    ours = ours_cls(IN, H, engine="bptt", **options)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(T, B, IN, dtype=dtype)
    hx = _initial(kind[:4].rstrip("_"), layers, 2 if bidirectional else 1, dtype)
    hx = hx if initial else None
    got, want = _torch_run(ours, x, hx, packed), _torch_run(reference, x, hx, packed)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert_close(a, b, what=f"{kind} tensor {i}")


def test_plain_cells_in_recurrent_run_on_bptt_and_equal_the_loop() -> None:
    for make in (
        lambda n: rnnkit.LSTMCell(n, H),
        lambda n: rnnkit.GRUCell(n, H),
        lambda n: rnnkit.RNNCell(n, H, nonlinearity="relu"),
    ):
        layer = rnnkit.Recurrent(make, input_size=IN, num_layers=2, bidirectional=True)
        assert layer.active_engine == "bptt"
        x, results = torch.randn(T, B, IN), {}
        for engine in ("bptt", "loop"):
            layer.engine = engine
            results[engine] = _run(layer, x, None, LENGTHS, seed=0)
        for got, want in zip(results["bptt"], results["loop"], strict=True):
            assert_close(got, want, what=type(layer.cell()).__name__)


# -- engine selection -----------------------------------------------------------------------


def test_auto_engine_selection() -> None:
    assert rnnkit.LSTM(3, 4).active_engine == "fused"
    assert rnnkit.LSTM(3, 4).engine_for(return_states=True) == "loop"  # unchanged
    assert rnnkit.LSTM(3, 4, forget_bias=1.0, recurrent_init="orthogonal").active_engine == "fused"
    assert rnnkit.LSTM(3, 4, zoneout_h=0.1).active_engine == "bptt"
    assert rnnkit.GRU(3, 4, layer_norm=True).engine_for(return_states=True) == "bptt"
    with record_steps():
        assert rnnkit.GRU(3, 4, layer_norm=True).active_engine == "loop"
        assert rnnkit.Recurrent(rnnkit.GRUCell(3, 4)).active_engine == "loop"
    assert rnnkit.Recurrent(rnnkit.LSTMCell(3, 4, proj_size=2)).active_engine == "loop"


def test_record_steps_still_sees_every_step_of_a_variant_layer() -> None:
    layer = rnnkit.LSTM(3, 4, layer_norm=True, zoneout_h=0.2)
    with record_steps() as recorder:
        layer(torch.randn(5, 2, 3))
    assert len(recorder.scans) == 1 and len(recorder.scans[0]) == 5


class _UserCell(nn.Module):
    input_size, output_size = 3, 4

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(7, 4)

    def init_state(self, batch_size, *, device=None, dtype=None):
        return torch.zeros(batch_size, 4, device=device, dtype=dtype)

    def forward(self, x, h):
        h = torch.tanh(self.lin(torch.cat([x, h], dim=-1)))
        return h, h


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: rnnkit.LSTM(3, 4, layer_norm=True, engine="fused"), "fused kernels cannot run"),
        (lambda: rnnkit.LSTM(3, 4, proj_size=2, engine="bptt"), "does not implement projections"),
        (lambda: rnnkit.LSTM(3, 4, proj_size=2, zoneout_h=0.1), "cannot be combined"),
        (lambda: rnnkit.Recurrent(_UserCell(), engine="bptt"), "no backward for _UserCell"),
        (lambda: rnnkit.Recurrent(_UserCell(), engine="fused"), "engine must be one of"),
        (lambda: rnnkit.GRU(3, 4, peephole=True), "peephole=True is an LSTM option"),
        (lambda: rnnkit.RNN(3, 4, zoneout_c=0.1), "zoneout_c=0.1 is an LSTM option"),
        (lambda: rnnkit.LSTM(3, 4, recurrent_dropout=1.0), r"recurrent_dropout in \[0, 1\)"),
        (lambda: rnnkit.LSTM(3, 4, forget_bias=1.0, bias=False), "needs bias=True"),
    ],
)
def test_what_an_engine_cannot_run_is_refused_clearly(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_recurrent_with_a_user_cell_stays_on_the_loop_engine() -> None:
    assert rnnkit.Recurrent(_UserCell()).active_engine == "loop"


def test_use_engine_switches_recurrent_too() -> None:
    model = nn.Sequential(rnnkit.LSTM(3, 4, zoneout_h=0.1), rnnkit.Recurrent(rnnkit.GRUCell(4, 2)))
    with rnnkit.layers.use_engine(model, "loop"):
        assert [m.active_engine for m in model] == ["loop", "loop"]
    assert [m.active_engine for m in model] == ["bptt", "bptt"]
    with rnnkit.layers.use_engine(model, "fused") as switched:
        assert switched == [model[0]]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_cpu_training_on_ragged_lengths_takes_the_bptt_engine(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rnnkit.layers.standard as standard

    calls: list[int] = []
    original = standard.family_runner  # builds each (layer, direction)'s BPTT runner

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(standard, "family_runner", spy)
    torch.manual_seed(0)
    layer = getattr(rnnkit, kind)(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    reference = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(5, 7, 3)
    lengths = torch.tensor([7, 3, 0, 5, 1])
    assert layer.engine_for(ragged=True) == "bptt"
    assert layer.engine_for(ragged=False) == "fused"
    assert layer.engine_for(ragged=True, device="meta") == "fused"  # not the CPU
    with torch.no_grad():
        assert layer.engine_for(ragged=True) == "fused"  # inference keeps the kernel
        layer(x, lengths=lengths)
    assert not calls
    layer(x, lengths=torch.full((5,), 7))  # nothing ragged: fused
    assert not calls
    out, _ = layer(x, lengths=lengths)
    assert calls  # ragged training on the CPU: BPTT engine
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x, lengths.clamp(min=1), batch_first=True, enforce_sorted=False
    )
    want, _ = torch.nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True)
    keep = lengths > 0
    assert_close(out[keep], want[keep], what=kind)
    assert rnnkit.LSTM(3, 4, proj_size=2).engine_for(ragged=True) == "fused"

"""MinGRU and MinLSTM: the scan engine (native and pure torch) against the loop engine (the
cells' readable steps) over hypothesis-drawn configurations, every layer feature,
streaming with carried state, long saturated sequences, and the engine rule."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit import MinGRU, MinGRUCell, MinLSTM, MinLSTMCell, Recurrent
from rnnkit.diagnostics import gradient_flow
from rnnkit.engines import record_steps
from rnnkit.engines.bptt import native
from tests.helpers import assert_close

IN, H = 3, 4
LAYERS = {"mingru": (MinGRU, MinGRUCell), "minlstm": (MinLSTM, MinLSTMCell)}
PATHS = {"native": contextlib.nullcontext, "pure torch": native.disabled}


def _run(layer: torch.nn.Module, x: torch.Tensor, hx: Any, **call: Any) -> list[torch.Tensor]:
    """Outputs, final and per-step states, and the gradients of x, hx and every parameter."""
    x = x.detach().clone().requires_grad_()
    hx = None if hx is None else hx.detach().clone().requires_grad_()
    out, h_n, states = layer(x, hx, return_states=True, **call)
    inputs = [x, *([] if hx is None else [hx]), *layer.parameters()]
    grads = torch.autograd.grad(_loss([out, h_n, states]), inputs)
    return [out, h_n, states, *grads]


def _loss(tensors: list[torch.Tensor]) -> torch.Tensor:
    """A weighted sum of every element, with the same weights in fp32 and fp64."""
    gen = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in tensors]
    return sum((t * w.to(t.dtype)).sum() for t, w in zip(tensors, weights, strict=True))


@st.composite
def configurations(draw: st.DrawFn) -> dict[str, Any]:
    batch = draw(st.integers(1, 4))
    return dict(
        kind=draw(st.sampled_from(sorted(LAYERS))),
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        bias=draw(st.booleans()),
        steps=draw(st.integers(1, 9)),
        lengths=draw(
            st.one_of(st.none(), st.lists(st.integers(0, 9), min_size=batch, max_size=batch))
        ),
        batch=batch,
        initial=draw(st.booleans()),
        double=draw(st.booleans()),
    )


def _case(config: dict[str, Any]) -> tuple[torch.nn.Module, torch.Tensor, Any, Any]:
    torch.manual_seed(0)
    dtype = torch.float64 if config["double"] else torch.float32
    cls = LAYERS[config["kind"]][0]
    layer = cls(
        IN,
        H,
        num_layers=config["num_layers"],
        bias=config["bias"],
        batch_first=config["batch_first"],
        bidirectional=config["bidirectional"],
        dtype=dtype,
    )
    lengths = config["lengths"]
    steps = max([config["steps"], *(lengths or [])])
    batch = config["batch"]
    x = torch.randn(*((batch, steps) if config["batch_first"] else (steps, batch)), IN, dtype=dtype)
    rows = config["num_layers"] * (2 if config["bidirectional"] else 1)
    hx = torch.randn(rows, batch, H, dtype=dtype) if config["initial"] else None
    return layer, x, hx, None if lengths is None else torch.tensor(lengths)


@settings(max_examples=40, deadline=None)
@given(config=configurations())
def test_scan_engine_equals_the_loop_engine(config: dict[str, Any]) -> None:
    layer, x, hx, lengths = _case(config)
    assert layer.engine_for(return_states=True) == "scan"
    results = {}
    for path, context in PATHS.items():
        with context():
            results[path] = _run(layer, x, hx, lengths=lengths)
    layer.engine = "loop"
    expected = _run(layer, x, hx, lengths=lengths)
    for path, got in results.items():
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_close(g, e, what=f"{path}, result {i}")


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_gradcheck_in_fp64(kind: str, path: str) -> None:
    layer = LAYERS[kind][0](IN, 2, num_layers=2, bidirectional=True, dtype=torch.float64)
    names = [name for name, _ in layer.named_parameters()]
    lengths = torch.tensor([4, 0, 2])

    def run(x: torch.Tensor, h0: torch.Tensor, *params: torch.Tensor) -> tuple:
        weights = dict(zip(names, params, strict=True))
        return torch.func.functional_call(layer, weights, (x, h0), {"lengths": lengths})

    inputs = (
        torch.randn(4, 3, IN, dtype=torch.float64),
        torch.randn(4, 3, 2, dtype=torch.float64),
        *(p.detach().clone() for p in layer.parameters()),
    )
    with PATHS[path]():
        assert torch.autograd.gradcheck(
            run, tuple(t.requires_grad_() for t in inputs), fast_mode=True
        )


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_the_scan_equals_each_sequence_run_alone_cell_by_cell(kind: str) -> None:
    """Padding never leaks in: each sequence alone, only its valid steps (backward: reversed)."""
    from tests.layers.test_recurrent import manual_loop

    layer_cls, cell_cls = LAYERS[kind]
    layer = layer_cls(IN, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    reference = Recurrent(
        lambda n: cell_cls(n, H, dtype=torch.float64),
        input_size=IN,
        num_layers=2,
        bidirectional=True,
    )
    for k in range(2):
        for d in range(2):
            cell = reference.cell(k, d)
            cell.weight_ih.data, cell.bias_ih.data = (w.data for w in layer.weights(k, d))
    lengths = [6, 0, 3, 1]
    x = torch.randn(6, 4, IN, dtype=torch.float64)
    h0 = torch.randn(4, 4, H, dtype=torch.float64)
    out, h_n = layer(x, h0, lengths=torch.tensor(lengths))
    ref_out, ref_final = manual_loop(reference, x, lengths, h0)
    assert_close(out, ref_out, what="outputs")
    assert_close(h_n, ref_final, what="final state")
    assert_close(h_n[:, 1], h0[:, 1], what="an empty sequence keeps its initial state")


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_recurrent_over_the_cells_runs_the_scan_and_equals_the_layer(kind: str) -> None:
    layer_cls, cell_cls = LAYERS[kind]
    layer = layer_cls(IN, H, num_layers=2, bidirectional=True, batch_first=True)
    recurrent = Recurrent(
        lambda n: cell_cls(n, H), input_size=IN, num_layers=2, bidirectional=True, batch_first=True
    )
    assert recurrent.active_engine == "scan"
    for k in range(2):
        for d in range(2):
            cell = recurrent.cell(k, d)
            cell.weight_ih.data, cell.bias_ih.data = (w.data for w in layer.weights(k, d))
    x, lengths = torch.randn(3, 5, IN), torch.tensor([5, 2, 0])
    out, h_n = layer(x, lengths=lengths)
    ref_out, ref_h = recurrent(x, lengths=lengths)
    assert_close(out, ref_out)
    assert_close(h_n, ref_h)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_packed_sequence_gives_what_lengths_give(kind: str) -> None:
    layer = LAYERS[kind][0](IN, H, bidirectional=True, batch_first=True)
    x, lengths = torch.randn(3, 6, IN), torch.tensor([6, 2, 4])
    out, h_n = layer(x, lengths=lengths)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    packed_out, packed_h = layer(packed)
    padded, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=6)
    assert_close(padded, out)
    assert_close(packed_h, h_n)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_unbatched_input_is_a_batch_of_one(kind: str) -> None:
    layer = LAYERS[kind][0](IN, H, num_layers=2)
    x, hx = torch.randn(5, IN), torch.randn(2, H)
    out, h_n = layer(x, hx)
    assert out.shape == (5, H) and h_n.shape == (2, H)
    ref_out, ref_h = layer(x[:, None], hx[:, None])
    assert_close(out, ref_out[:, 0])
    assert_close(h_n, ref_h[:, 0])


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_streaming_step_by_step_with_carried_state_equals_the_whole_sequence(kind: str) -> None:
    layer = LAYERS[kind][0](IN, H, num_layers=2, batch_first=True, dtype=torch.float64)
    x = torch.randn(2, 7, IN, dtype=torch.float64)
    out, h_n = layer(x)
    state, steps = None, []
    for t in range(7):
        y, state = layer(x[:, t : t + 1], state)  # (B, 1, H), as a sampling loop calls it
        steps.append(y)
    assert_close(torch.cat(steps, dim=1), out)
    assert_close(state, h_n)
    first, mid = layer(x[:, :3])  # or in chunks, as truncated BPTT carries it
    rest, end = layer(x[:, 3:], mid)
    assert_close(torch.cat([first, rest], dim=1), out)
    assert_close(end, h_n)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_dropout_acts_between_layers_in_training_only(kind: str) -> None:
    layer = LAYERS[kind][0](IN, H, num_layers=2, dropout=0.5)
    x = torch.randn(6, 2, IN)
    layer.eval()
    assert_close(layer(x)[0], layer(x)[0])
    layer.train()
    torch.manual_seed(1)
    first = layer(x)[0]
    torch.manual_seed(2)
    assert not torch.allclose(first, layer(x)[0])
    one = LAYERS[kind][0](IN, H, dropout=0.5).train()
    assert_close(one(x)[0], one(x)[0])  # a single layer has nothing to drop between


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_parameters_follow_torch_names_shapes_and_init(kind: str, bias: bool) -> None:
    layer = LAYERS[kind][0](IN, H, num_layers=2, bidirectional=True, bias=bias)
    gates = 2 if kind == "mingru" else 3
    expected = {}
    for k, size in ((0, IN), (1, 2 * H)):
        for sfx in ("", "_reverse"):
            expected[f"weight_ih_l{k}{sfx}"] = (gates * H, size)
            if bias:
                expected[f"bias_ih_l{k}{sfx}"] = (gates * H,)
    assert {n: tuple(p.shape) for n, p in layer.named_parameters()} == expected
    assert all(p.abs().max() <= 1 / H**0.5 for p in layer.parameters())
    assert layer.output_size == 2 * H
    copy = LAYERS[kind][0](IN, H, num_layers=2, bidirectional=True, bias=bias)
    copy.load_state_dict(layer.state_dict())
    x = torch.randn(4, 2, IN)
    assert_close(copy(x)[0], layer(x)[0])


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_the_engine_rule_inspection_and_forcing(kind: str) -> None:
    cls = LAYERS[kind][0]
    layer = cls(IN, H)
    assert layer.active_engine == "scan"
    assert layer.engine_for(return_states=True, ragged=True) == "scan"
    with record_steps():
        assert layer.active_engine == "loop"
    assert cls(IN, H, engine="loop").active_engine == "loop"
    assert cls(IN, H, engine="scan").active_engine == "scan"
    for engine in ("fused", "bptt", "cuda"):
        with pytest.raises(ValueError, match=r"engine must be one of \('auto', 'scan', 'loop'\)"):
            cls(IN, H, engine=engine)
    with rnnkit.layers.use_engine(layer, "loop") as switched:
        assert switched == [layer] and layer.active_engine == "loop"
    assert layer.engine == "auto"
    assert "engine='loop'" in repr(cls(IN, H, engine="loop"))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m(torch.randn(5, 2, IN), torch.zeros(1, 3, H)), ValueError,
         r"MinGRU: expected hx shapes \[\(1, 2, 4\)\], got \[\(1, 3, 4\)\]"),
        (lambda m: m(torch.randn(5, 2, IN), (torch.zeros(1, 2, H),)), TypeError,
         "MinGRU: expected hx to be a Tensor, got tuple"),
        (lambda m: m(torch.randn(5, 2, IN + 1)), ValueError, "input_size=3"),
        (lambda m: m(torch.randn(5, 2, IN), lengths=[5, 6]), ValueError, "lengths"),
    ],
)  # fmt: skip
def test_bad_calls_are_clear_errors(call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call(MinGRU(IN, H))


def test_bad_configurations_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="MinLSTM: expected hidden_size to be an integer >= 1"):
        MinLSTM(IN, 0)
    with pytest.raises(ValueError, match=r"MinGRU: dropout must be in \[0, 1\], got 2"):
        MinGRU(IN, H, dropout=2)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_4096_steps_with_saturated_gates_in_fp32_stay_finite_and_equal_the_loop(kind: str) -> None:
    layer = LAYERS[kind][0](IN, H)
    with torch.no_grad():
        weight, _ = layer.weights(0, 0)
        weight[:-H].mul_(200)  # the gate rows: pre-activations in the hundreds
    x = torch.randn(4096, 2, IN)
    got = _run(layer, x, None)
    for i, value in enumerate(got):
        assert torch.isfinite(value).all(), i
    layer.engine = "loop"
    for i, (g, e) in enumerate(zip(got, _run(layer, x, None), strict=True)):
        scale = float(e.detach().abs().max())
        torch.testing.assert_close(
            g, e, atol=1e-5 * scale, rtol=1e-5, msg=lambda m, i=i: f"{i}: {m}"
        )


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_gradient_flow_records_the_loop_steps_and_the_gates(kind: str) -> None:
    layer = LAYERS[kind][0](IN, H, bidirectional=True).double()
    x = torch.randn(6, 2, IN, dtype=torch.float64)
    report = gradient_flow(layer, lambda: layer(x)[0][-1].sum())
    assert [(f.layer, f.direction, f.cell) for f in report.layers] == [
        (0, "forward", kind),
        (0, "backward", kind),
    ]
    gates = {"mingru": {"z", "h_tilde"}, "minlstm": {"i", "f", "h_tilde"}}[kind]
    assert set(report.layers[0].gates) == gates
    assert report.layers[0].ratio() is not None
    assert layer.engine == "auto"

"""gradient_flow: equals autograd on hand-unrolled networks, and leaves the model alone."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
import torch
from torch import Tensor, nn

import rnnkit
from rnnkit.diagnostics import gradient_flow
from tests.helpers import assert_close, weighted_sum

F64 = torch.float64


def _norms(grads: list[Tensor | None]) -> Tensor:
    """Per-sequence norms ``(T, B)`` from per-step gradients ``(B, H)`` (``None``: zero)."""
    batch = next(g for g in grads if g is not None).shape[0]
    return torch.stack(
        [torch.zeros(batch, dtype=F64) if g is None else g.flatten(1).norm(dim=1) for g in grads]
    )


def _check(flow: Any, field: str, expected: Tensor) -> None:
    """The report's per-sequence and aggregated norms equal ``expected`` ``(T, B)``."""
    got = torch.tensor(flow.per_sequence[field], dtype=F64)
    assert_close(got, expected, what=f"{flow.name} per-sequence ‖∂L/∂{field}_t‖")
    aggregated = torch.tensor(flow.grad_norms[field], dtype=F64)
    assert_close(aggregated, expected.mean(dim=1), what=f"{flow.name} aggregated")


def test_rnn_equals_a_hand_unrolled_loop_with_retain_grad() -> None:
    layer = rnnkit.RNN(3, 4, batch_first=True, dtype=F64)  # default engine: fused
    head = nn.Linear(4, 1, dtype=F64)
    x = torch.randn(2, 6, 3, dtype=F64)

    report = gradient_flow(
        nn.ModuleList([layer, head]), lambda: head(layer(x)[0][:, -1]).pow(2).sum()
    )

    # By hand: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), keeping every h_t's grad.
    h, states = x.new_zeros(2, 4), []
    for t in range(6):
        h = torch.tanh(
            x[:, t] @ layer.weight_ih_l0.T
            + layer.bias_ih_l0
            + h @ layer.weight_hh_l0.T
            + layer.bias_hh_l0
        )
        h.retain_grad()
        states.append(h)
    loss = head(h).pow(2).sum()
    loss.backward()

    (flow,) = report.layers
    assert (flow.module, flow.layer, flow.direction, flow.cell) == ("0", 0, "forward", "rnn")
    assert flow.fields == ("h",)
    _check(flow, "h", _norms([s.grad for s in states]))
    assert report.loss == pytest.approx(loss.item())
    for name, param in nn.ModuleList([layer, head]).named_parameters():
        assert report.parameters[name] == pytest.approx(float(param.grad.norm()), rel=1e-10)


def _unroll_lstm(cell: nn.LSTMCell, xs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """torch.nn.LSTMCell over ``xs``; every h_t and c_t keeps its (total) gradient."""
    h = c = xs[0].new_zeros(xs[0].shape[0], cell.hidden_size)
    hs, cs = [], []
    for x in xs:
        h, c = cell(x, (h, c))
        h.retain_grad()
        c.retain_grad()
        hs.append(h)
        cs.append(c)
    return hs, cs


def _torch_cell(layer: nn.LSTM, suffix: str) -> nn.LSTMCell:
    cell = nn.LSTMCell(layer.input_size, layer.hidden_size, dtype=F64)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data.copy_(getattr(layer, name + suffix))
    return cell


def test_bidirectional_lstm_h_and_c_equal_torch_nn_cells_with_retain_grad() -> None:
    layer = rnnkit.LSTM(2, 3, bidirectional=True, dtype=F64)
    x = torch.randn(5, 4, 2, dtype=F64)  # (T, B, I)

    report = gradient_flow(layer, lambda: weighted_sum([layer(x)[0]]))

    fwd, bwd = _torch_cell(layer, "_l0"), _torch_cell(layer, "_l0_reverse")
    hf, cf = _unroll_lstm(fwd, list(x))
    hb, cb = _unroll_lstm(bwd, list(x.flip(0)))
    hb, cb = hb[::-1], cb[::-1]  # back to input order
    output = torch.cat([torch.stack(hf), torch.stack(hb)], dim=-1)  # (T, B, 2H)
    weighted_sum([output]).backward()

    forward, backward = report.layers
    assert (forward.direction, backward.direction) == ("forward", "backward")
    assert forward.fields == ("h", "c") and forward.cell == "lstm"
    _check(forward, "h", _norms([h.grad for h in hf]))
    _check(forward, "c", _norms([c.grad for c in cf]))
    _check(backward, "h", _norms([h.grad for h in hb]))
    _check(backward, "c", _norms([c.grad for c in cb]))


class MinimalState(NamedTuple):
    h: Tensor
    m: Tensor  # a running mean of the inputs, a second state field


class MinimalCell(nn.Module):
    """A user cell rnnkit does not know: h_t = tanh(W x_t + U h_{t-1}), m_t = (m + x) / 2."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.output_size = input_size, hidden_size
        self.w = nn.Linear(input_size, hidden_size, dtype=F64)
        self.u = nn.Linear(hidden_size, hidden_size, bias=False, dtype=F64)

    def init_state(self, batch_size: int, *, device: Any = None, dtype: Any = None) -> Any:
        zeros = torch.zeros(batch_size, self.output_size, device=device, dtype=dtype)
        return MinimalState(zeros, torch.zeros(batch_size, self.input_size, dtype=dtype))

    def forward(self, x: Tensor, state: MinimalState) -> tuple[Tensor, MinimalState]:
        h = torch.tanh(self.w(x) + self.u(state.h) + state.m.sum(-1, keepdim=True))
        return h, MinimalState(h, (state.m + x) / 2)


def test_recurrent_with_a_user_cell_reports_every_state_field() -> None:
    cell = MinimalCell(2, 3)
    layer = rnnkit.Recurrent(cell)
    x = torch.randn(4, 2, 2, dtype=F64, requires_grad=True)  # so that m_t is in the graph

    report = gradient_flow(layer, lambda: weighted_sum([layer(x)[0]]))

    state = cell.init_state(2, dtype=F64)
    hs, ms = [], []
    for t in range(4):
        _, state = cell(x[t], state)
        state.h.retain_grad()
        state.m.retain_grad()
        hs.append(state.h)
        ms.append(state.m)
    weighted_sum([torch.stack(hs)]).backward()

    (flow,) = report.layers
    assert (flow.cell, flow.fields, flow.gates) == ("MinimalCell", ("h", "m"), {})
    _check(flow, "h", _norms([h.grad for h in hs]))
    assert ms[-1].grad is None  # m_T feeds nothing: the loss reads h_T, made from m_{T-1}
    _check(flow, "m", _norms([m.grad for m in ms]))


def test_padded_steps_are_excluded_and_sequences_are_independent() -> None:
    """With a loss that sums over sequences, each sequence's norms equal running it alone."""
    layer = rnnkit.GRU(2, 3, batch_first=True, dtype=F64)
    x, lengths = torch.randn(3, 5, 2, dtype=F64), torch.tensor([5, 2, 4])

    def loss_of(inputs: Tensor, lens: Tensor) -> Tensor:
        out, _ = layer(inputs, lengths=lens)
        return rnnkit.last_step(out, lens, batch_first=True).pow(2).sum()

    report = gradient_flow(layer, lambda: loss_of(x, lengths))
    (flow,) = report.layers
    for b, n in enumerate(lengths.tolist()):
        alone = gradient_flow(layer, lambda b=b, n=n: loss_of(x[b : b + 1, :n], lengths[b : b + 1]))
        column = [row[b] for row in flow.per_sequence["h"]]
        assert column[n:] == [None] * (5 - n)  # padded steps
        expected = torch.tensor([row[0] for row in alone.layers[0].per_sequence["h"]], dtype=F64)
        assert_close(torch.tensor(column[:n], dtype=F64), expected, what=f"sequence {b}")
    # The aggregate at a step averages the sequences that are real there.
    real = [[v for v in row if v is not None] for row in flow.per_sequence["h"]]
    assert flow.grad_norms["h"] == pytest.approx([sum(r) / len(r) for r in real])


def test_stacked_layers_modules_and_repeated_calls_are_attributed() -> None:
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = rnnkit.LSTM(2, 3, num_layers=2, bidirectional=True)
            self.decoder = rnnkit.Recurrent(rnnkit.GRUCell(6, 3))
            self.plain = nn.Linear(3, 1)

        def forward(self, x: Tensor) -> Tensor:
            out, _ = self.encoder(x)
            first, _ = self.decoder(out)
            second, _ = self.decoder(out.flip(0))  # a second call of the same module
            return self.plain(first + second)

    model = Model()
    report = gradient_flow(model, lambda: model(torch.randn(4, 2, 2)).sum())
    labels = [(f.module, f.call, f.layer, f.direction, f.cell) for f in report.layers]
    assert labels == [
        ("encoder", 0, 0, "forward", "lstm"),
        ("encoder", 0, 0, "backward", "lstm"),
        ("encoder", 0, 1, "forward", "lstm"),
        ("encoder", 0, 1, "backward", "lstm"),
        ("decoder", 0, 0, "forward", "gru"),
        ("decoder", 1, 0, "forward", "gru"),
    ]
    assert report.layer("encoder", layer=1, direction="backward").name == "encoder[1] backward"
    assert set(report.parameters) == {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize("engine", ["auto", "fused", "loop"])
def test_grads_and_engines_are_left_as_they_were(engine: str) -> None:
    model = nn.Sequential()
    model.add_module("rnn", rnnkit.LSTM(2, 3, engine=engine))
    x = torch.randn(4, 2, 2)
    model.rnn.weight_hh_l0.grad = torch.full_like(model.rnn.weight_hh_l0, 7.0)
    before = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}

    report = gradient_flow(model, lambda: model.rnn(x)[0].sum())

    assert model.rnn.engine == engine
    for name, param in model.named_parameters():
        if before[name] is None:
            assert param.grad is None, name
        else:
            assert torch.equal(param.grad, before[name]), name
    assert report.layers[0].cell == "lstm"
    assert all(norm is not None and norm > 0 for norm in report.parameters.values())


def test_a_parameter_the_loss_ignores_reports_none() -> None:
    model = nn.ModuleDict({"rnn": rnnkit.RNN(2, 3), "unused": nn.Linear(1, 1)})
    report = gradient_flow(model, lambda: model["rnn"](torch.randn(3, 1, 2))[0].sum())
    assert report.parameters["unused.weight"] is None
    assert report.parameters["rnn.weight_hh_l0"] is not None


def test_torch_nn_layers_are_named_in_the_error_and_warned_about() -> None:
    plain = nn.LSTM(2, 3)
    with pytest.raises(ValueError, match=r"no step was recorded.*model \(LSTM\)"):
        gradient_flow(plain, lambda: plain(torch.randn(3, 1, 2))[0].sum())
    model = nn.ModuleDict({"ours": rnnkit.GRU(2, 3), "theirs": nn.GRU(3, 3)})
    with pytest.warns(UserWarning, match="theirs .*recorded no steps.*rnnkit.GRU"):
        report = gradient_flow(
            model, lambda: model["theirs"](model["ours"](torch.randn(3, 1, 2))[0])[0].sum()
        )
    assert [f.module for f in report.layers] == ["ours"]


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        (lambda out: out, r"expected loss_fn to return a scalar loss, got a tensor of shape"),
        (lambda out: out.detach().sum(), "expected a loss that requires grad"),
        (lambda out: 1.0, "expected loss_fn to return a scalar Tensor, got float"),
    ],
)
def test_bad_losses_are_clear_errors(loss: Any, message: str) -> None:
    layer = rnnkit.RNN(2, 3)
    with pytest.raises(ValueError, match=message):
        gradient_flow(layer, lambda: loss(layer(torch.randn(3, 1, 2))[0]))

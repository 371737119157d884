"""Recurrent(cell): equals a hand-written loop, runs user cells, handles ragged lengths."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import rnnkit
from rnnkit import (
    GRUCell,
    LSTMCell,
    LSTMState,
    MinGRUCell,
    MinLSTMCell,
    Recurrent,
    RNNCell,
    last_step,
)
from rnnkit.cells import map_state, state_leaves
from tests.helpers import assert_close, leaves, weighted_sum


class SCRNState(NamedTuple):
    h: Tensor  # fast hidden state (B, H)
    s: Tensor  # slow context state (B, S)


class SCRNCell(nn.Module):
    """A user-defined cell that rnnkit does not ship: the structurally constrained RNN.

    Mikolov et al. 2014: a slow context ``s_t = (1-α) B x_t + α s_{t-1}`` beside a fast
    ``h_t = σ(P s_t + A x_t + R h_{t-1})``. Its state has two parts of different sizes.
    """

    def __init__(self, input_size: int, hidden_size: int, context_size: int = 3) -> None:
        super().__init__()
        self.input_size, self.output_size = input_size, hidden_size
        self.alpha = 0.9
        self.B = nn.Linear(input_size, context_size, bias=False)
        self.P = nn.Linear(context_size, hidden_size, bias=False)
        self.A = nn.Linear(input_size, hidden_size)
        self.R = nn.Linear(hidden_size, hidden_size, bias=False)

    def init_state(self, batch_size: int, *, device: Any = None, dtype: Any = None) -> SCRNState:
        h = self.A.weight.new_zeros(batch_size, self.output_size, device=device, dtype=dtype)
        s = self.B.weight.new_zeros(batch_size, self.B.out_features, device=device, dtype=dtype)
        return SCRNState(h, s)

    def forward(self, x: Tensor, state: SCRNState) -> tuple[Tensor, SCRNState]:
        s = (1 - self.alpha) * self.B(x) + self.alpha * state.s
        h = torch.sigmoid(self.P(s) + self.A(x) + self.R(state.h))
        return h, SCRNState(h, s)


def manual_loop(layer: Recurrent, x: Tensor, lengths: list[int], initial: Any = None) -> tuple:
    """The obvious reference: each sequence alone, only its valid steps, cell by cell.

    ``x`` is time-major ``(T, B, I)``. Returns outputs ``(T, B, F)`` zero-padded and
    the final states stacked ``(L*D, B, ...)``.
    """
    steps, batch = x.shape[:2]
    outputs, finals = [], []
    for b in range(batch):
        n = lengths[b]
        seq = x[:n, b : b + 1]  # (n, 1, I)
        seq_finals = []
        for k in range(layer.num_layers):
            per_direction = []
            for d in range(layer.num_directions):
                cell = layer.cell(k, d)
                i = k * layer.num_directions + d
                state = (
                    cell.init_state(1, dtype=x.dtype)
                    if initial is None
                    else map_state(lambda s, i=i, b=b: s[i, b : b + 1], initial)
                )
                ys: list[Tensor] = [None] * n  # type: ignore[list-item]
                for t in reversed(range(n)) if d == 1 else range(n):
                    ys[t], state = cell(seq[t], state)
                per_direction.append(
                    torch.stack(ys) if n else seq.new_zeros(0, 1, cell.output_size)
                )
                seq_finals.append(state)
            seq = torch.cat(per_direction, dim=-1)
        outputs.append(torch.cat([seq, seq.new_zeros(steps - n, 1, seq.shape[-1])]))
        finals.append(map_state(lambda *s: torch.stack(s), *seq_finals))
    output = torch.cat(outputs, dim=1)
    final = map_state(lambda *s: torch.cat(s, dim=1), *finals)
    return output, final


FACTORIES = {
    "rnn": lambda n: RNNCell(n, 4),
    "lstm": lambda n: LSTMCell(n, 4),
    "lstm_proj": lambda n: LSTMCell(n, 5, proj_size=3),
    "gru": lambda n: GRUCell(n, 4),
    "mingru": lambda n: MinGRUCell(n, 4),  # on the scan engine
    "minlstm": lambda n: MinLSTMCell(n, 4),
    "user_scrn": lambda n: SCRNCell(n, 4),
}


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(sorted(FACTORIES)),
    num_layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    lengths=st.lists(st.integers(0, 6), min_size=1, max_size=4),
    with_state=st.booleans(),
)
def test_equals_hand_written_loop(
    kind: str, num_layers: int, bidirectional: bool, lengths: list[int], with_state: bool
) -> None:
    torch.manual_seed(len(lengths))
    layer = Recurrent(
        FACTORIES[kind], input_size=3, num_layers=num_layers, bidirectional=bidirectional
    ).double()
    steps = max(max(lengths), 1)
    x = torch.randn(steps, len(lengths), 3, dtype=torch.float64)
    initial = None
    if with_state:
        initial = map_state(torch.randn_like, layer.init_state(len(lengths), dtype=torch.float64))
    out, final = layer(x, initial, lengths=torch.tensor(lengths))
    ref_out, ref_final = manual_loop(layer, x, lengths, initial)
    assert_close(out, ref_out, what="outputs")
    for a, e in zip(leaves(final), leaves(ref_final), strict=True):
        assert_close(a, e, what="final state")


def test_user_cell_stacked_bidirectional_with_lengths() -> None:
    """A cell written here, not in rnnkit, runs through Recurrent unchanged."""
    layer = Recurrent(
        lambda n: SCRNCell(n, 6), input_size=5, num_layers=2, bidirectional=True, batch_first=True
    )
    x = torch.randn(3, 7, 5)
    lengths = torch.tensor([7, 4, 1])
    out, final = layer(x, lengths=lengths)
    assert out.shape == (3, 7, 12)
    assert isinstance(final, SCRNState)
    assert final.h.shape == (4, 3, 6) and final.s.shape == (4, 3, 3)
    assert out[1, 4:].abs().max() == 0 and out[2, 1:].abs().max() == 0
    weighted_sum([out, *final]).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_instance_form_single_layer_and_bidirectional() -> None:
    cell = LSTMCell(3, 4)
    layer = Recurrent(cell, bidirectional=True)
    assert layer.cell(0, 0) is cell
    backward = layer.cell(0, 1)
    assert backward is not cell and not torch.equal(backward.weight_ih, cell.weight_ih)
    out, (h, c) = layer(torch.randn(5, 2, 3))
    assert out.shape == (5, 2, 8) and h.shape == c.shape == (2, 2, 4)


def test_instance_form_needs_factory_for_bigger_stacks() -> None:
    with pytest.raises(ValueError, match=r"needs a cell with input_size=8, .* has input_size=3"):
        Recurrent(LSTMCell(3, 4), num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match="a cell factory needs input_size"):
        Recurrent(lambda n: LSTMCell(n, 4))


def test_matches_drop_in_layer_with_same_weights() -> None:
    """Recurrent over rnnkit cells equals rnnkit.LSTM (and so torch.nn.LSTM)."""
    generic = Recurrent(lambda n: LSTMCell(n, 4), input_size=3, num_layers=2, bidirectional=True)
    layer = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True)
    for k in range(2):
        for d in range(2):
            suffix = f"_l{k}" + ("_reverse" if d else "")
            for name, p in generic.cell(k, d).named_parameters():
                getattr(layer, name + suffix).data.copy_(p.data)
    x, lengths = torch.randn(6, 3, 3), torch.tensor([6, 1, 3])
    out, state = generic(x, lengths=lengths)
    ref_out, ref_state = layer(x, lengths=lengths)
    assert_close(out, ref_out, what="outputs")
    for a, e in zip(state, ref_state, strict=True):
        assert_close(a, e, what="final state")


def test_zero_length_keeps_initial_state_and_outputs_zeros() -> None:
    layer = Recurrent(lambda n: GRUCell(n, 4), input_size=3, bidirectional=True)
    h0 = torch.randn(2, 3, 4)
    out, h = layer(torch.randn(5, 3, 3), h0, lengths=torch.tensor([5, 0, 2]))
    assert out[:, 1].abs().max() == 0
    assert_close(h[:, 1], h0[:, 1], what="zero-length final state")


def test_padding_never_leaks() -> None:
    """Changing padded values changes nothing; padded inputs get zero gradient."""
    layer = Recurrent(lambda n: LSTMCell(n, 4), input_size=3, num_layers=2, bidirectional=True)
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(6, 3, 3)
    noisy = x.clone()
    for b, n in enumerate(lengths):
        noisy[n:, b] = 1e3 * torch.randn_like(noisy[n:, b])
    noisy.requires_grad_(True)
    out_a, state_a = layer(x, lengths=lengths)
    out_b, state_b = layer(noisy, lengths=lengths)
    assert_close(out_b, out_a, what="outputs")
    for a, b in zip(state_a, state_b, strict=True):
        assert_close(b, a, what="final state")
    weighted_sum([out_b, *state_b]).backward()
    assert noisy.grad[2:, 1].abs().max() == 0 and noisy.grad[4:, 2].abs().max() == 0


def test_return_states_layout() -> None:
    layer = Recurrent(
        lambda n: LSTMCell(n, 4), input_size=3, num_layers=2, bidirectional=True, batch_first=True
    )
    lengths = torch.tensor([5, 3])
    out, final, states = layer(torch.randn(2, 5, 3), lengths=lengths, return_states=True)
    assert isinstance(states, LSTMState)
    assert states.h.shape == states.c.shape == (4, 2, 5, 4)  # (L*D, B, T, H)
    # The top layer's per-step h is its output, forward half then backward half.
    assert_close(torch.cat([states.h[2], states.h[3]], dim=-1), out, what="top h == output")
    # The forward direction's state at the last valid step is its final state.
    for b, n in enumerate(lengths):
        assert_close(states.c[:, b, n - 1][[0, 2]], final.c[[0, 2], b], what="last c")
        assert states.c[:, b, n:].abs().sum() == 0  # zeros where padded
    # The backward direction ends at step 0.
    assert_close(states.c[[1, 3], :, 0], final.c[[1, 3]], what="backward final c")


def test_return_sequences_false_gives_final_outputs() -> None:
    kwargs = dict(input_size=3, bidirectional=True, batch_first=True)
    full = Recurrent(lambda n: GRUCell(n, 4), **kwargs)
    last = Recurrent(lambda n: GRUCell(n, 4), return_sequences=False, **kwargs)
    last.load_state_dict(full.state_dict())
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 0])
    out, _ = full(x, lengths=lengths)
    assert_close(
        last(x, lengths=lengths)[0],
        last_step(out, lengths, batch_first=True, bidirectional=True),
        what="last",
    )


@pytest.mark.parametrize(
    ("mode", "combine"),
    [
        ("sum", lambda f, b: f + b),
        ("mul", lambda f, b: f * b),
        ("ave", lambda f, b: (f + b) / 2),
    ],
)
def test_merge_modes(mode: str, combine: Any) -> None:
    concat = Recurrent(lambda n: RNNCell(n, 4), input_size=3, bidirectional=True)
    merged = Recurrent(lambda n: RNNCell(n, 4), input_size=3, bidirectional=True, merge_mode=mode)
    merged.load_state_dict(concat.state_dict())
    x = torch.randn(5, 2, 3)
    full, _ = concat(x)
    out, _ = merged(x)
    assert out.shape == (5, 2, 4) and merged.output_size == 4
    assert_close(out, combine(full[..., :4], full[..., 4:]), what=mode)


def test_unbatched_and_packed_inputs() -> None:
    layer = Recurrent(lambda n: LSTMCell(n, 4), input_size=3, num_layers=2)
    x = torch.randn(5, 3)
    out, (h, _) = layer(x)
    batched_out, _ = layer(x.unsqueeze(1))
    assert out.shape == (5, 4) and h.shape == (2, 4)
    assert_close(out, batched_out[:, 0], what="unbatched")
    packed = nn.utils.rnn.pack_sequence(
        [torch.randn(4, 3), torch.randn(6, 3)], enforce_sorted=False
    )
    out, (h, _) = layer(packed)
    assert isinstance(out, nn.utils.rnn.PackedSequence)
    padded, lengths = nn.utils.rnn.pad_packed_sequence(packed)
    ref, (ref_h, _) = layer(padded, lengths=lengths)
    assert_close(nn.utils.rnn.pad_packed_sequence(out)[0], ref, what="packed outputs")
    assert_close(h, ref_h, what="packed final state (original batch order)")


def test_gradcheck_with_lengths_both_directions() -> None:
    layer = Recurrent(
        lambda n: LSTMCell(n, 3, proj_size=2), input_size=2, num_layers=2, bidirectional=True
    ).double()
    names = [n for n, _ in layer.named_parameters()]
    lengths = torch.tensor([4, 2, 0])

    def run(x: Tensor, h0: Tensor, c0: Tensor, *params: Tensor) -> tuple[Tensor, ...]:
        call = torch.func.functional_call(
            layer,
            dict(zip(names, params, strict=True)),
            (x, LSTMState(h0, c0)),
            {"lengths": lengths},
        )
        out, state = call
        return out, *state

    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(run, (x, h0, c0, *layer.parameters()))


def test_dropout_between_layers_only_in_training() -> None:
    layer = Recurrent(lambda n: GRUCell(n, 8), input_size=3, num_layers=2, dropout=0.5)
    x = torch.randn(5, 4, 3)
    layer.eval()
    a, b = layer(x)[0], layer(x)[0]
    assert torch.equal(a, b)
    layer.train()
    assert not torch.equal(layer(x)[0], a)


def test_states_have_the_cells_structure() -> None:
    layer = Recurrent(lambda n: SCRNCell(n, 4), input_size=3, num_layers=2)
    state = layer.init_state(5)
    assert isinstance(state, SCRNState)
    assert [tuple(t.shape) for t in state_leaves(state)] == [(2, 5, 4), (2, 5, 3)]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m(torch.randn(5, 2, 4)), ValueError, r"expected input_size=3 .* got 4"),
        (lambda m: m(torch.randint(0, 3, (5, 2, 3))), TypeError, "floating-point"),
        (lambda m: m(torch.randn(5, 2, 3, 1)), ValueError, r"got 4-D shape \(5, 2, 3, 1\)"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=[5, 6]), ValueError, "<= .* T=5, got 6"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=[5, -1]), ValueError, ">= 0, got -1"),
        (
            lambda m: m(torch.randn(5, 2, 3), lengths=[5]),
            ValueError,
            r"shape \(2,\).* got shape \(1,\)",
        ),
        (
            lambda m: m(torch.randn(5, 2, 3), lengths=torch.tensor([5.0, 2.0])),
            TypeError,
            "integer lengths",
        ),
        (
            lambda m: m(torch.randn(5, 2, 3), torch.zeros(2, 2, 4)),
            ValueError,
            "expected initial state shapes",
        ),
        (lambda m: m(torch.randn(0, 2, 3)), ValueError, "at least one time step"),
    ],
)
def test_bad_input_errors(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call(Recurrent(lambda n: GRUCell(n, 4), input_size=3))


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="merge_mode must be one of"):
        Recurrent(GRUCell(3, 4), bidirectional=True, merge_mode="max")
    with pytest.raises(TypeError, match="expected a cell"):
        Recurrent(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a cell"):
        Recurrent(lambda n: nn.Linear(n, 4), input_size=3)

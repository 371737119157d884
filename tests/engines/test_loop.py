"""The loop engine's pieces: scan, masks, and the step recorder."""

from __future__ import annotations

import torch

import rnnkit
from rnnkit.engines import record_steps, scan
from rnnkit.layers.stacked import step_mask
from tests.helpers import assert_close


def test_step_mask() -> None:
    mask = step_mask(torch.tensor([2, 0, 3]), 3)
    assert mask.tolist() == [[True, False, True], [True, False, True], [False, False, True]]
    assert step_mask(None, 3) is None


def test_scan_reverse_equals_scan_of_flipped_input() -> None:
    cell = rnnkit.GRUCell(2, 3)
    x = torch.randn(5, 4, 2)
    state = cell.init_state(4)
    backward = scan(cell.step, x, state, reverse=True)
    flipped = scan(cell.step, x.flip(0), state)
    assert_close(backward.outputs, flipped.outputs.flip(0), what="outputs")
    assert_close(backward.final, flipped.final, what="final")


def test_recorded_states_give_the_total_gradient_through_time() -> None:
    """∂L/∂h_t from the recorder equals the hand-propagated gradient of an RNN."""
    torch.manual_seed(0)
    layer = rnnkit.RNN(2, 3, engine="loop", dtype=torch.float64)
    x = torch.randn(4, 1, 2, dtype=torch.float64)
    with record_steps() as recorder:
        out, _ = layer(x)
    (steps,) = recorder.scans
    loss = out[-1].sum()  # depends on h_T only; earlier steps reach it through time
    grads = torch.autograd.grad(loss, [r.state_out for r in steps])
    # By hand: ∂L/∂h_{t-1} = W_hhᵀ diag(1 - h_t²) ∂L/∂h_t.
    expected = [torch.ones(1, 3, dtype=torch.float64)]
    for t in range(3, 0, -1):
        h_t = steps[t].state_out
        expected.insert(0, (expected[0] * (1 - h_t**2)) @ layer.weight_hh_l0)
    for got, want in zip(grads, expected, strict=True):
        assert_close(got, want, what="dL/dh_t")


def test_recorder_order_and_directions() -> None:
    layer = rnnkit.Recurrent(
        lambda n: rnnkit.LSTMCell(n, 3), input_size=2, num_layers=2, bidirectional=True
    )
    with record_steps() as recorder:
        layer(torch.randn(4, 2, 2), lengths=torch.tensor([4, 2]))
    assert recorder.reverse == [False, True, False, True]
    assert [r.t for r in recorder.scans[1]] == [0, 1, 2, 3]
    assert recorder.scans[0][3].valid.tolist() == [True, False]


def test_nothing_is_recorded_outside_the_block() -> None:
    with record_steps() as recorder:
        pass
    rnnkit.GRU(2, 3, engine="loop")(torch.randn(3, 1, 2))
    assert recorder.scans == []

"""Truncated BPTT: windows, gradients (full and truncated), flat memory, stateful carry,
and the two Lightning patterns that replace ``truncated_bptt_steps``."""

from __future__ import annotations

import gc
import math
import warnings
import weakref

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import rnnkit
from rnnkit.training.tbptt import (
    StatefulCarry,
    TruncatedBPTT,
    WindowedLoader,
    detach_state,
    time_windows,
)
from tests.helpers import assert_close

DT = torch.float64


def _sum_loss(layer: nn.Module):
    def step(window, state):
        (x,) = window.tensors
        out, state = layer(x, state, lengths=window.lengths)
        return out.sum(), state

    return step


def test_windows_cut_time_and_lengths() -> None:
    x, y = torch.randn(2, 7, 3), torch.randn(2, 7)
    windows = list(time_windows(x, y, k=3, batch_first=True, lengths=[7, 4]))
    assert [(w.start, w.stop, w.first, w.last) for w in windows] == [
        (0, 3, True, False),
        (3, 6, False, False),
        (6, 7, False, True),
    ]
    assert windows[1].tensors[0].shape == (2, 3, 3) and windows[2].tensors[1].shape == (2, 1)
    assert [w.lengths.tolist() for w in windows] == [[3, 3], [3, 1], [1, 0]]
    assert torch.equal(torch.cat([w.tensors[0] for w in windows], dim=1), x)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: list(time_windows(torch.randn(4, 2), k=0)), "k >= 1"),
        (lambda: list(time_windows(torch.randn(4, 2), torch.randn(5, 2), k=2)), "same number"),
        (lambda: list(time_windows(k=2)), "at least one tensor"),
        (lambda: StatefulCarry(on_batch_change="grow"), "on_batch_change must be one of"),
    ],
)
def test_bad_input_is_explained(call, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_k_equal_to_T_gives_the_full_bptt_gradients() -> None:
    torch.manual_seed(0)
    layer = rnnkit.LSTM(3, 4, num_layers=2, dtype=DT, layer_norm=True)
    x = torch.randn(6, 2, 3, dtype=DT)
    lengths = torch.tensor([6, 4])
    layer(x, lengths=lengths)[0].sum().backward()
    full = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    for _, loss in TruncatedBPTT(k=6).run(_sum_loss(layer), x, lengths=lengths):
        loss.backward()
    for got, want in zip([p.grad for p in layer.parameters()], full, strict=True):
        assert_close(got, want, what="k = T gradient")


def test_k_below_T_equals_the_hand_computed_truncated_gradient() -> None:
    """A scalar Elman RNN, h_t = tanh(w x_t + u h_{t-1} + b), loss Σ_t h_t, k = 2, T = 5.

    By hand: within a window the state entering it is a constant, so
    ∂h_t/∂u = (1 - h_t²)(h_{t-1} + u ∂h_{t-1}/∂u), restarted at 0 at each window start.
    Gradients of the windows accumulate (no optimiser step in between).
    """
    rnn = rnnkit.RNN(1, 1, dtype=DT)
    with torch.no_grad():
        for p, v in zip(rnn.parameters(), (0.7, -0.9, 0.1, 0.2), strict=True):
            p.fill_(v)
    w, u, b = 0.7, -0.9, 0.1 + 0.2
    xs = [0.5, -1.0, 2.0, 0.3, -0.4]
    x = torch.tensor(xs, dtype=DT).view(5, 1, 1)
    for _, loss in TruncatedBPTT(k=2).run(_sum_loss(rnn), x):
        loss.backward()
    expected, h, dh_du = 0.0, 0.0, 0.0
    for t, x_t in enumerate(xs):
        if t % 2 == 0:
            dh_du = 0.0  # the window starts from a detached state
        h_next = math.tanh(w * x_t + u * h + b)
        dh_du = (1 - h_next**2) * (h + u * dh_du)
        expected += dh_du
        h = h_next
    assert abs(rnn.weight_hh_l0.grad.item() - expected) < 1e-12
    # and it is not the full gradient (the truncation matters here)
    rnn.zero_grad()
    rnn(x)[0].sum().backward()
    assert abs(rnn.weight_hh_l0.grad.item() - expected) > 1e-3


def _graph_size(tensor: torch.Tensor) -> int:
    """Autograd nodes reachable from ``tensor``."""
    seen, todo = set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        todo.extend(next_fn for next_fn, _ in node.next_functions)
    return len(seen)


@pytest.mark.parametrize("engine", ["bptt", "loop"])
def test_no_graph_is_kept_across_windows(engine: str) -> None:
    """Memory stays flat as the sequence grows: every window's graph has the same size,
    and each window's output is freed once the next window has run (a weak reference
    to it dies), so nothing of an earlier window stays reachable."""
    layer = rnnkit.GRU(3, 4, engine=engine, zoneout_h=0.1)
    outputs, sizes = [], []

    def step(window, state):
        out, state = layer(window.tensors[0], state)
        outputs.append(weakref.ref(out))
        return out.sum(), state

    for _, loss in TruncatedBPTT(k=4).run(step, torch.randn(40, 2, 3)):
        sizes.append(_graph_size(loss))
        loss.backward()
        gc.collect()
        alive = [i for i, ref in enumerate(outputs[:-1]) if ref() is not None]
        assert not alive, f"outputs of windows {alive} are still reachable"
    assert len(sizes) == 10 and len(set(sizes)) == 1, sizes


def test_the_structural_check_catches_a_forgotten_detach() -> None:
    """Control for the test above: carrying the state without detaching grows the graph."""
    layer = rnnkit.GRU(3, 4, zoneout_h=0.1)
    x, state, sizes = torch.randn(12, 2, 3), None, []
    for window in time_windows(x, k=4):
        out, state = layer(window.tensors[0], state)
        loss = out.sum()
        sizes.append(_graph_size(loss))
        loss.backward(retain_graph=True)  # what a forgotten detach forces people to add
    assert sizes[0] < sizes[1] < sizes[2]


def test_carried_state_is_detached_and_final_state_kept() -> None:
    layer = rnnkit.LSTM(3, 4)
    tbptt = TruncatedBPTT(k=3)
    states = []

    def step(window, state):
        states.append(state)
        return _sum_loss(layer)(window, state)

    for _, loss in tbptt.run(step, torch.randn(7, 2, 3)):
        loss.backward()
    assert states[0] is None
    assert all(not s.h.requires_grad and s.h.grad_fn is None for s in states[1:])
    assert tbptt.state.h.shape == (1, 2, 4) and tbptt.state.h.grad_fn is None


def test_stateful_carry_continues_resets_and_handles_batch_changes() -> None:
    layer = rnnkit.GRU(3, 4)
    x = torch.randn(10, 2, 3)
    whole, _ = layer(x)
    carry = StatefulCarry()
    outs = []
    for chunk in x.split(5):  # consecutive batches of one stream
        out, state = layer(chunk, carry.get(chunk.shape[1]))
        carry.update(state)
        outs.append(out)
    assert_close(torch.cat(outs), whole, what="carried across batches")
    with pytest.raises(ValueError, match="batch of 2 sequences, got a batch of 3"):
        carry.get(3)
    carry.reset(rows=[1])
    assert torch.all(carry.get(2)[:, 1] == 0) and torch.any(carry.get(2)[:, 0] != 0)
    resized = StatefulCarry(on_batch_change="resize")
    resized.update(state)
    assert resized.get(1).shape == (1, 1, 4) and resized.get(3)[:, 2].abs().sum() == 0
    fresh = StatefulCarry(on_batch_change="reset")
    fresh.update(state)
    assert fresh.get(5) is None and None not in fresh
    carry.reset()
    assert carry.get(2) is None


def test_stateful_carry_keeps_streams_apart() -> None:
    carry = StatefulCarry(batch_dim=0)
    carry.update(torch.ones(2, 3), key="train")
    carry.update(torch.zeros(4, 3), key="val")
    assert carry.get(2, key="train").sum() == 6 and carry.get(4, key="val").shape == (4, 3)
    carry.reset_all()
    assert carry.get(2, key="train") is None


def test_detach_state() -> None:
    assert detach_state(None) is None
    h = torch.randn(2, 3, requires_grad=True) * 2
    assert detach_state(rnnkit.LSTMState(h, h)).c.grad_fn is None


# -- Lightning: the two patterns that replace Trainer(truncated_bptt_steps=k) ---------------

lightning = pytest.importorskip("lightning")
K, STEPS, LR = 3, 7, 0.1


def _data() -> DataLoader:
    sequences = torch.randn(8, STEPS, 3, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(sequences), batch_size=4)  # 2 batches of [x (4, T, 3)]


def _reference(module: nn.Module) -> None:
    """Lightning 1.x semantics by hand: per batch, per window, an SGD step."""
    optimizer = torch.optim.SGD(module.parameters(), lr=LR)
    tbptt = TruncatedBPTT(K, batch_first=True)
    for batch in _data():
        for _, loss in tbptt.run(_sum_loss(module.lstm), *batch):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


class _Base(lightning.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lstm = rnnkit.LSTM(3, 5, batch_first=True, layer_norm=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR)


class _Manual(_Base):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.tbptt = TruncatedBPTT(K, batch_first=True)

    def training_step(self, batch, batch_idx):
        return self.tbptt.manual_step(self, _sum_loss(self.lstm), *batch)


class _Automatic(_Base):
    def __init__(self) -> None:
        super().__init__()
        self.carry = StatefulCarry()

    def training_step(self, window, batch_idx):
        if window.first:
            self.carry.reset()
        (x,) = window.tensors
        out, state = self.lstm(x, self.carry.get(x.shape[0]))
        self.carry.update(state)
        return out.sum()


def _fit(module: lightning.LightningModule, loader) -> None:
    trainer = lightning.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no val loader", "few workers": not the point here
        trainer.fit(module, train_dataloaders=loader)


@pytest.mark.parametrize(
    ("module_cls", "wrap"),
    [
        (_Manual, lambda data: data),
        (_Automatic, lambda data: WindowedLoader(data, K, batch_first=True)),
    ],
    ids=["manual", "automatic"],
)
def test_lightning_patterns_match_truncated_bptt_steps(module_cls, wrap) -> None:
    module, reference = module_cls(), _Base()
    reference.load_state_dict(module.state_dict())
    _fit(module, wrap(_data()))
    _reference(reference)
    for (name, got), want in zip(
        module.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        assert_close(got, want, what=name)


def test_manual_step_refuses_automatic_optimisation() -> None:
    module = _Base()
    with pytest.raises(RuntimeError, match="automatic_optimization = False"):
        TruncatedBPTT(2).manual_step(module, _sum_loss(module.lstm), torch.randn(1, 4, 3))

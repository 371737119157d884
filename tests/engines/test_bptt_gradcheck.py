"""``torch.autograd.gradcheck`` (fp64) of each BPTT ``autograd.Function``, every option.

The hand-derived backward of each recurrence is checked against finite differences of
its own forward, for every input that takes a gradient, with the non-differentiable
inputs (keep weights for padding and zoneout, the recurrent dropout mask) fixed by a
seed. The LSTM and GRU recurrences are checked on both of their paths: the native C++
loops and the Python loops. The whole layer path (input side included) is checked too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch.autograd import gradcheck

import rnnkit
from rnnkit.engines.bptt import GRURecurrence, LSTMRecurrence, RNNRecurrence, native

T, B, H = 4, 2, 3
DT = torch.float64


def _param(*shape: int) -> torch.Tensor:
    return (0.5 * torch.randn(*shape, dtype=DT)).requires_grad_(True)


def _fixed(kind: str) -> dict[str, torch.Tensor | None]:
    """Keep weights and a dropout mask: padding (with an empty sequence) and zoneout."""
    valid = torch.tensor([[True, False]] * 3 + [[False, False]]).unsqueeze(-1)  # (T, B, 1)
    zoneout = torch.bernoulli(torch.full((T, B, H), 0.3, dtype=DT))
    keep = {
        "none": None,
        "padding": torch.where(valid, 0.0, 1.0).to(DT),
        "zoneout": zoneout,
        "eval-zoneout": torch.full((T, B, 1), 0.3, dtype=DT),
    }[kind]
    mask = torch.bernoulli(torch.full((B, H), 0.7, dtype=DT)) / 0.7
    return {"keep": keep, "mask": mask}


OPTIONS = [
    dict(ln=False, extra=False, keep="none", dropout=False, reverse=False),
    dict(ln=True, extra=False, keep="padding", dropout=False, reverse=True),
    dict(ln=False, extra=True, keep="zoneout", dropout=True, reverse=False),
    dict(ln=True, extra=True, keep="zoneout", dropout=True, reverse=True),
    dict(ln=True, extra=True, keep="eval-zoneout", dropout=False, reverse=False),
]
IDS = ["plain", "ln-padding-reverse", "extras-zoneout-dropout", "all-reverse", "eval-zoneout"]


@pytest.fixture(params=["native", "python"])
def loops(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on the native C++ loops, then on the Python loops."""
    if request.param == "python":
        with native.disabled():
            yield request.param
        return
    if native.ops() is None:
        pytest.skip(native.status())
    yield request.param


@pytest.mark.parametrize("o", OPTIONS, ids=IDS)
def test_lstm_recurrence_gradcheck(o: dict, loops: str) -> None:
    torch.manual_seed(0)
    fixed, other = _fixed(o["keep"]), _fixed("zoneout")
    inputs = (
        _param(T, B, 4 * H),  # a
        _param(4 * H, H),  # W_hh
        _param(B, H),  # h0
        _param(B, H),  # c0
        _param(4 * H) if o["ln"] else None,  # LN gain on W_hh h
        _param(H) if o["ln"] else None,  # LN gain on c
        _param(H) if o["ln"] else None,  # LN shift on c
        _param(3, H) if o["extra"] else None,  # peepholes
        fixed["keep"],
        other["keep"] if o["extra"] else fixed["keep"],  # a different zoneout mask for c
        fixed["mask"] if o["dropout"] else None,
        o["reverse"],
    )
    assert gradcheck(LSTMRecurrence.apply, inputs)


@pytest.mark.parametrize("o", OPTIONS, ids=IDS)
def test_gru_recurrence_gradcheck(o: dict, loops: str) -> None:
    torch.manual_seed(1)
    fixed = _fixed(o["keep"])
    inputs = (
        _param(T, B, 3 * H),
        _param(3 * H, H),
        _param(B, H),
        _param(H) if o["extra"] or not o["ln"] else None,  # b_hn (absent with bias=False)
        _param(3 * H) if o["ln"] else None,
        fixed["keep"],
        fixed["mask"] if o["dropout"] else None,
        o["reverse"],
    )
    assert gradcheck(GRURecurrence.apply, inputs)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("o", OPTIONS, ids=IDS)
def test_rnn_recurrence_gradcheck(o: dict, nonlinearity: str) -> None:
    torch.manual_seed(2)
    fixed = _fixed(o["keep"])
    inputs = (
        _param(T, B, H),
        _param(H, H),
        _param(B, H),
        _param(H) if o["ln"] else None,
        fixed["keep"],
        fixed["mask"] if o["dropout"] else None,
        o["reverse"],
        nonlinearity,
    )
    assert gradcheck(RNNRecurrence.apply, inputs)


LAYER_CASES = [
    (rnnkit.LSTM, dict(layer_norm=True, peephole=True, zoneout_h=0.3, zoneout_c=0.2)),
    (rnnkit.GRU, dict(layer_norm=True, zoneout_h=0.3, recurrent_dropout=0.3)),
    (rnnkit.RNN, dict(layer_norm=True, input_dropout=0.3, weight_drop=0.3)),
]


@pytest.mark.parametrize(("cls", "options"), LAYER_CASES)
def test_whole_layer_gradcheck_with_masks_fixed_by_a_seed(
    cls, options: dict, fast_mode: bool = True
) -> None:
    """Input side (LN, dropout, DropConnect) + recurrence, stacked, bidirectional, ragged.

    ``fast_mode`` checks a random projection of the Jacobian (the recurrences above get
    the full check); full mode here takes ~25 s and is in the slow test below.
    """
    layer = cls(2, H, num_layers=2, bidirectional=True, dtype=DT, engine="bptt", **options)
    x = torch.randn(T, B, 2, dtype=DT, requires_grad=True)
    lengths = torch.tensor([T, 2])

    def run(x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(5)  # the same masks at every evaluation
        out, final = torch.func.functional_call(
            layer, dict(zip(names, params, strict=True)), (x,), {"lengths": lengths}
        )
        return torch.cat([out.flatten(), *[s.flatten() for s in rnnkit.cells.state_leaves(final)]])

    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]
    assert gradcheck(run, (x, *params), fast_mode=fast_mode)


@pytest.mark.slow
def test_whole_layer_full_gradcheck() -> None:
    for cls, options in LAYER_CASES:
        test_whole_layer_gradcheck_with_masks_fixed_by_a_seed(cls, options, fast_mode=False)

"""The variant cells: identity with the plain cells, their parameters, and the
training/eval semantics of the noise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnkit
from tests.helpers import assert_close

DT = torch.float64
VARIANTS = {
    "lstm": (rnnkit.LSTMVariantCell, rnnkit.LSTMCell, rnnkit.LSTM, nn.LSTM),
    "gru": (rnnkit.GRUVariantCell, rnnkit.GRUCell, rnnkit.GRU, nn.GRU),
    "rnn": (rnnkit.RNNVariantCell, rnnkit.RNNCell, rnnkit.RNN, nn.RNN),
}


@pytest.mark.parametrize("family", VARIANTS)
def test_with_every_option_off_a_variant_cell_is_the_plain_cell(family: str) -> None:
    variant_cls, plain_cls, _, _ = VARIANTS[family]
    torch.manual_seed(0)
    variant = variant_cls(3, 4, dtype=DT)
    torch.manual_seed(0)
    plain = plain_cls(3, 4, dtype=DT)
    assert list(variant.state_dict()) == list(plain.state_dict())
    for name, value in plain.state_dict().items():
        assert torch.equal(variant.state_dict()[name], value), name  # same init draws
    x, state = torch.randn(2, 3, dtype=DT), plain.init_state(2, dtype=DT)
    for got, want in zip(variant(x, state)[0], plain(x, state)[0], strict=True):
        assert_close(got, want, what=family)
    layer_v = rnnkit.Recurrent(variant, num_layers=1)
    layer_p = rnnkit.Recurrent(plain, num_layers=1)
    assert_close(layer_v(x.unsqueeze(0))[0], layer_p(x.unsqueeze(0))[0], what="in Recurrent")


@pytest.mark.parametrize("family", VARIANTS)
def test_with_every_option_off_a_drop_in_layer_is_torch_nn_and_runs_fused(family: str) -> None:
    _, _, ours_cls, torch_cls = VARIANTS[family]
    ours = ours_cls(3, 4, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(torch_cls(3, 4, 2, bidirectional=True).state_dict())
    assert ours.active_engine == "fused"


def test_extra_parameters_follow_torch_naming() -> None:
    cell = rnnkit.LSTMVariantCell(3, 4, layer_norm=True, peephole=True)
    extra = {
        n: tuple(p.shape) for n, p in cell.named_parameters() if n.startswith(("ln", "weight_c"))
    }
    assert extra == {
        "ln_weight_ih": (16,),
        "ln_weight_hh": (16,),
        "ln_weight_c": (4,),
        "ln_bias_c": (4,),
        "weight_ci": (4,),
        "weight_cf": (4,),
        "weight_co": (4,),
    }
    layer = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True, layer_norm=True, peephole=True)
    names = set(layer.state_dict())
    assert {
        "ln_weight_hh_l0",
        "ln_bias_c_l1_reverse",
        "weight_co_l1",
        "weight_ci_l0_reverse",
    } <= names
    assert {n for n in names if n.startswith("ln_weight_ih")} == {
        "ln_weight_ih_l0",
        "ln_weight_ih_l0_reverse",
        "ln_weight_ih_l1",
        "ln_weight_ih_l1_reverse",
    }
    gru = rnnkit.GRU(3, 4, layer_norm=True)
    assert {n for n in gru.state_dict() if n.startswith("ln")} == {
        "ln_weight_ih_l0",
        "ln_weight_hh_l0",
    }


def test_eval_mode_turns_dropout_off() -> None:
    torch.manual_seed(0)
    noisy = rnnkit.LSTM(3, 4, input_dropout=0.5, recurrent_dropout=0.5, weight_drop=0.5)
    plain = nn.LSTM(3, 4)
    plain.load_state_dict(noisy.state_dict())
    x = torch.randn(6, 2, 3)
    noisy.eval()
    assert noisy.active_engine == "bptt"
    assert_close(noisy(x)[0], plain(x)[0], what="eval: dropout off")
    noisy.train()
    assert not torch.allclose(noisy(x)[0], plain(x)[0])


def test_eval_mode_zoneout_is_its_expectation() -> None:
    """h_t = z h_{t-1} + (1 - z) ĥ_t and c_t likewise, with ĥ, ĉ the plain LSTM step."""
    layer = rnnkit.LSTM(3, 4, zoneout_h=0.3, zoneout_c=0.6, dtype=DT).eval()
    plain = rnnkit.LSTMCell(3, 4, dtype=DT)
    plain.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = torch.randn(5, 2, 3, dtype=DT)
    state, outputs = plain.init_state(2, dtype=DT), []
    for x_t in x:
        _, new = plain(x_t, state)
        state = rnnkit.LSTMState(0.3 * state.h + 0.7 * new.h, 0.6 * state.c + 0.4 * new.c)
        outputs.append(state.h)
    for engine in ("bptt", "loop"):
        layer.engine = engine
        assert_close(layer(x)[0], torch.stack(outputs), what=f"{engine}: eval zoneout")


def test_training_zoneout_keeps_or_updates_each_unit() -> None:
    cell = rnnkit.GRUVariantCell(3, 4, zoneout_h=0.5, dtype=DT)
    plain = rnnkit.GRUCell(3, 4, dtype=DT)
    plain.load_state_dict(cell.state_dict())
    x, h = torch.randn(8, 3, dtype=DT), torch.randn(8, 4, dtype=DT)
    masks = cell.sample_masks(8, 1, like=x)
    y, _ = cell(x, h, masks=masks.at(0))
    new, _ = plain(x, h)
    keep = masks.zoneout_h[0].bool()
    assert torch.equal(y[keep], h[keep])  # kept units are the previous state, exactly
    assert_close(y[~keep], new[~keep], what="updated units")
    assert 0 < keep.sum() < keep.numel()


def test_variational_input_dropout_reuses_one_mask_for_every_step() -> None:
    layer = rnnkit.RNN(3, 4, input_dropout=0.5, dtype=DT)
    plain = nn.RNN(3, 4, dtype=DT)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(6, 2, 3, dtype=DT)
    torch.manual_seed(1)
    out, _ = layer(x)
    torch.manual_seed(1)
    (masks,) = layer.sample_masks(2, 6, like=x)
    assert_close(out, plain(x * masks.input)[0], what="x ⊙ m, the same m at every step")


def test_a_standalone_cell_needs_masks_in_training_only_with_noise() -> None:
    cell = rnnkit.LSTMVariantCell(3, 4, recurrent_dropout=0.3, layer_norm=True)
    x = torch.randn(2, 3)
    with pytest.raises(RuntimeError, match="sample_masks"):
        cell(x)
    y, _ = cell(x, masks=cell.sample_masks(2).at(0))
    assert y.shape == (2, 4)
    cell.eval()
    assert cell(torch.randn(3))[0].shape == (4,)  # unbatched, eval: no masks needed
    assert rnnkit.LSTMVariantCell(3, 4, layer_norm=True)(x)[0].shape == (2, 4)  # no noise
    with pytest.raises(ValueError, match="batched"):
        cell(torch.randn(3), masks=cell.sample_masks(1).at(0))


def test_repr_lists_the_options() -> None:
    assert "layer_norm=True, zoneout_h=0.1" in repr(
        rnnkit.GRU(3, 4, layer_norm=True, zoneout_h=0.1)
    )
    assert "peephole=True" in repr(rnnkit.LSTMVariantCell(3, 4, peephole=True))

"""The variant cells and options: identity with the plain cells, parameters and their
initialisation, validation, masks, and the training/eval semantics of the noise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit.cells.variants import VariantOptions, sample_masks
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


def test_initialisation_options() -> None:
    torch.manual_seed(0)
    layer = rnnkit.LSTM(
        3, 4, num_layers=2, layer_norm=True, forget_bias=1.0, recurrent_init="orthogonal"
    )
    for k in range(2):
        w = layer.variant_weights(k, 0)
        forget = slice(4, 8)
        assert torch.all(w.bias_ih[forget] == 1.0) and torch.all(w.bias_hh[forget] == 0.0)
        for block in w.weight_hh.detach().split(4):
            assert_close(block @ block.T, torch.eye(4), what="orthogonal gate block")
        assert torch.all(w.ln_weight_hh == 1) and torch.all(w.ln_bias_c == 0)
    with torch.no_grad():
        layer.ln_weight_hh_l0.fill_(3.0)
    layer.reset_parameters()  # torch's init, then the variant's again
    assert torch.all(layer.ln_weight_hh_l0 == 1) and torch.all(layer.bias_ih_l1[4:8] == 1)
    cell = rnnkit.LSTMVariantCell(3, 4, peephole=True, forget_bias=2.0)
    assert torch.all(cell.bias_ih[4:8] == 2.0) and cell.weight_co.abs().max() <= 0.5
    assert rnnkit.GRU(3, 4, recurrent_init="orthogonal").active_engine == "fused"


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: rnnkit.LSTMVariantCell(3, 4, zoneout_h=1.0), ValueError, r"zoneout_h in \[0, 1\)"),
        (lambda: rnnkit.LSTMVariantCell(3, 4, input_dropout=-0.1), ValueError, "input_dropout"),
        (lambda: rnnkit.LSTMVariantCell(3, 4, weight_drop=True), TypeError, "weight_drop"),
        (lambda: rnnkit.LSTMVariantCell(3, 4, layer_norm=1), TypeError, "True or False"),
        (lambda: rnnkit.LSTMVariantCell(3, 4, recurrent_init="he"), ValueError, "recurrent_init"),
        (lambda: rnnkit.LSTMVariantCell(3, 4, bias=False, forget_bias=1.0), ValueError, "bias"),
        (lambda: rnnkit.GRUVariantCell(3, 4, peephole=True), ValueError, "an LSTM option"),
        (lambda: rnnkit.RNNVariantCell(3, 4, forget_bias=1.0), ValueError, "forget gate"),
        (lambda: rnnkit.GRUVariantCell(3, 4, zoneot_h=0.1), TypeError, "zoneot_h"),
        (lambda: rnnkit.RNNVariantCell(3, 4, nonlinearity="gelu"), ValueError, "nonlinearity"),
        (lambda: rnnkit.GRUVariantCell(0, 4), ValueError, "input_size"),
    ],
)
def test_bad_options_are_explained(make, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def test_masks_in_training_and_eval() -> None:
    options = VariantOptions(
        zoneout_h=0.3, zoneout_c=0.2, input_dropout=0.5, recurrent_dropout=0.25, weight_drop=0.5
    )
    like = torch.empty(0, dtype=DT)
    kwargs = dict(family="lstm", batch_size=2, num_steps=5, input_size=3, hidden_size=4, like=like)
    torch.manual_seed(0)
    masks = sample_masks(options, training=True, **kwargs)
    assert masks.input.shape == (2, 3) and set(masks.input.unique().tolist()) <= {0.0, 2.0}
    assert masks.recurrent.shape == (2, 4)  # one mask per sequence, not per step
    assert masks.weight.shape == (16, 4)
    assert masks.zoneout_h.shape == (5, 2, 4) and set(masks.zoneout_h.unique().tolist()) <= {0, 1}
    torch.manual_seed(0)
    again = sample_masks(options, training=True, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(masks, again, strict=True))  # seed fixes all
    evaluation = sample_masks(options, training=False, **kwargs)
    assert evaluation == (None, None, None, 0.3, 0.2)  # no dropout; zoneout as its rate
    assert masks.at(2).zoneout_c.shape == (2, 4) and masks.at(2).input is masks.input


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


def test_sequence_step_refuses_more_steps_than_its_masks() -> None:
    cell = rnnkit.RNNVariantCell(3, 4, zoneout_h=0.2)
    step = cell.sequence_step(cell.sample_masks(2, 2))
    h = cell.init_state(2)
    for _ in range(2):
        _, h = step(torch.randn(2, 3), h)
    with pytest.raises(RuntimeError, match="drawn for 2 steps"):
        step(torch.randn(2, 3), h)


def test_repr_lists_the_options() -> None:
    assert "layer_norm=True, zoneout_h=0.1" in repr(
        rnnkit.GRU(3, 4, layer_norm=True, zoneout_h=0.1)
    )
    assert "peephole=True" in repr(rnnkit.LSTMVariantCell(3, 4, peephole=True))

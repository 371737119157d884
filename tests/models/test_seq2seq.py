"""Seq2Seq: masking of padded source, teacher forcing, greedy and beam decoding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnkit.models import RecurrentSpec, Seq2Seq, Seq2SeqConfig
from tests.helpers import assert_close
from tests.models.seq2seq_data import BOS, EOS, PAD, seq2seq_batch

ATTENTIONS = ["bahdanau", "luong", "none"]
V = 12


def _model(attention: str, cell: str = "gru", *, peaky: bool = False) -> Seq2Seq:
    cfg = Seq2SeqConfig(
        src_vocab_size=V,
        tgt_vocab_size=V,
        src_embedding_dim=6,
        tgt_embedding_dim=5,
        encoder=RecurrentSpec(cell, 8, num_layers=2, bidirectional=True),
        decoder=RecurrentSpec(cell, 8, num_layers=2),
        attention=attention,
        attention_dim=4,
        dropout=0.1,
    )
    model = Seq2Seq(cfg).eval()
    if peaky:
        # A fresh model's predictions barely depend on its inputs (small embeddings,
        # zero readout bias): every step emits the same token. Large random weights
        # give varied sequences, some ending early and some not, where greedy and
        # beam search disagree, which is what the decoding tests need.
        with torch.no_grad():
            for param in model.parameters():
                param.normal_(0.0, 1.0)
            model.decoder.readout.bias[EOS] += 1.0
    return model


@torch.no_grad()
def _score(model: Seq2Seq, src, lengths, out: torch.Tensor, max_len: int, alpha: float):
    """Length-normalised log-probability of decoded sequences, computed by the model."""
    scores = []
    for b in range(out.shape[0]):
        seq = out[b][out[b] != PAD].tolist()
        ended = len(seq) < max_len
        tgt_in = torch.tensor([[BOS, *seq]])
        target = torch.tensor([[*seq, EOS]]) if ended else torch.tensor([seq])
        logits = model(src[b : b + 1], lengths[b : b + 1], tgt_in[:, : target.shape[1]])
        logp = model.decoder.mask_special(F.log_softmax(logits, -1))
        total = logp.gather(-1, target.unsqueeze(-1)).sum()
        scores.append(float(total) / target.shape[1] ** alpha)
    return torch.tensor(scores)


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_attention_ignores_padded_source(attention: str) -> None:
    model = _model(attention)
    src, lengths, tgt_in, _ = seq2seq_batch()
    logits, weights = model(src, lengths, tgt_in, return_attention=True)
    assert weights.shape == (3, 5, 7)
    mask = torch.arange(7).unsqueeze(0) < lengths.unsqueeze(1)  # (B, S)
    assert (weights.masked_select(~mask.unsqueeze(1)) == 0).all()  # exactly zero
    assert_close(weights.sum(-1), torch.ones(3, 5), what="weights sum to 1")
    junk = src.clone()
    junk[~mask] = torch.randint(3, V, (int((~mask).sum()),))
    assert_close(model(junk, lengths, tgt_in), logits, what="junk in the source padding")
    assert_close(model.attention_weights(src, lengths, tgt_in), weights, what="weights")


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_a_sequence_alone_equals_its_row_in_a_padded_batch(attention: str) -> None:
    model = _model(attention, "lstm")
    src, lengths, tgt_in, _ = seq2seq_batch()
    logits = model(src, lengths, tgt_in)
    for b, n in enumerate(lengths.tolist()):
        alone = model(src[b : b + 1, :n], lengths[b : b + 1], tgt_in[b : b + 1])
        assert_close(alone, logits[b : b + 1], what=f"sequence {b}")


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_teacher_forcing_equals_feeding_the_targets_step_by_step(attention: str) -> None:
    model = _model(attention, "lstm")
    src, lengths, tgt_in, _ = seq2seq_batch()
    logits = model(src, lengths, tgt_in, teacher_forcing_ratio=1.0)
    memory, state = model.encode(src, lengths)
    steps = []
    for t in range(tgt_in.shape[1]):
        step_logits, state, _ = model.decoder.step(tgt_in[:, t], state, memory)
        steps.append(step_logits)
    assert_close(torch.stack(steps, dim=1), logits, what="step by step")


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_ratio_0_feeds_back_the_models_own_predictions(attention: str) -> None:
    """With no teacher forcing the decoder follows its greedy path, whatever tgt_in says."""
    model = _model(attention)
    src, lengths, tgt_in, _ = seq2seq_batch()
    tgt_in = torch.cat([tgt_in, tgt_in[:, 1:]], dim=1)  # 9 steps
    logits = model(src, lengths, tgt_in, teacher_forcing_ratio=0.0)
    other = tgt_in.clone()
    other[:, 1:] = torch.randint(3, V, other[:, 1:].shape)
    assert_close(model(src, lengths, other, teacher_forcing_ratio=0.0), logits, what="inputs")
    greedy = model.greedy_decode(src, lengths, max_len=9)
    predicted = model.decoder.predict(logits)  # (B, 9)
    for b in range(3):
        n = int((greedy[b] != PAD).sum())
        assert torch.equal(predicted[b, :n], greedy[b, :n])


def test_teacher_forcing_ratio_is_validated() -> None:
    src, lengths, tgt_in, _ = seq2seq_batch()
    with pytest.raises(ValueError, match=r"teacher_forcing_ratio must be in \[0, 1\], got 1.5"):
        _model("luong")(src, lengths, tgt_in, teacher_forcing_ratio=1.5)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_greedy_equals_beam_size_1(attention: str, seed: int) -> None:
    """Exactly, without length normalisation (see beam_search's docstring for α > 0)."""
    torch.manual_seed(seed)
    model = _model(attention, peaky=True)
    src, lengths, _, _ = seq2seq_batch()
    greedy = model.greedy_decode(src, lengths, max_len=6)
    beam = model.beam_search(src, lengths, beam_size=1, max_len=6, length_penalty=0.0)
    assert torch.equal(beam, greedy)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_beam_search_scores_at_least_as_well_as_greedy(attention: str, seed: int) -> None:
    torch.manual_seed(seed)
    model = _model(attention, peaky=True)
    src, lengths, _, _ = seq2seq_batch()
    for alpha in (0.0, 1.0):
        greedy = model.greedy_decode(src, lengths, max_len=6)
        beam = model.beam_search(src, lengths, beam_size=4, max_len=6, length_penalty=alpha)
        beam_score = _score(model, src, lengths, beam, 6, alpha)
        greedy_score = _score(model, src, lengths, greedy, 6, alpha)
        assert (beam_score >= greedy_score - 1e-5).all(), (beam_score, greedy_score)


def test_decoded_sequences_follow_the_conventions() -> None:
    """No BOS, no EOS, nothing but PAD after the end, at most max_len wide."""
    torch.manual_seed(0)
    model = _model("bahdanau", peaky=True)
    src, lengths, _, _ = seq2seq_batch()
    for out in (
        model.greedy_decode(src, lengths, max_len=5),
        model.beam_search(src, lengths, beam_size=3, max_len=5),
    ):
        assert out.shape[0] == 3 and out.shape[1] <= 5 and out.dtype == torch.long
        assert not ((out == BOS) | (out == EOS)).any()
        for row in out:
            ended = (row == PAD).nonzero()
            if len(ended):
                assert (row[int(ended[0]) :] == PAD).all()


def test_greedy_attention_for_plotting() -> None:
    model = _model("luong", peaky=True)
    src, lengths, _, _ = seq2seq_batch()
    tokens, weights = model.greedy_decode(src, lengths, max_len=6, return_attention=True)
    assert weights.shape == (3, tokens.shape[1], 7)
    assert (weights[2, :, 2:] == 0).all()


def test_decoding_restores_training_mode() -> None:
    model = _model("bahdanau").train()
    src, lengths, _, _ = seq2seq_batch()
    a = model.greedy_decode(src, lengths, max_len=4)
    assert model.training
    assert torch.equal(model.greedy_decode(src, lengths, max_len=4), a)  # no dropout inside


def test_batch_of_one_and_no_lengths() -> None:
    model = _model("bahdanau")
    src, _, tgt_in, _ = seq2seq_batch()
    assert model(src[:1], None, tgt_in[:1]).shape == (1, 5, V)
    assert model.beam_search(src[:1], None, beam_size=2, max_len=3).shape[0] == 1


def test_lstm_encoder_to_gru_decoder_bridge() -> None:
    cfg = Seq2SeqConfig(
        src_vocab_size=V,
        tgt_vocab_size=V,
        encoder=RecurrentSpec("lstm", 6, bidirectional=True),
        decoder=RecurrentSpec("gru", 5, num_layers=3),
    )
    model = Seq2Seq(cfg)
    src, lengths, tgt_in, _ = seq2seq_batch()
    _, state = model.encode(src, lengths)
    assert state.shape == (3, 3, 5)
    assert model(src, lengths, tgt_in).shape == (3, 5, V)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attention": "bahdanu"}, r"did you mean 'bahdanau'\?"),
        ({"decoder": RecurrentSpec("gru", 4, bidirectional=True)}, "must be unidirectional"),
        ({"bos_id": 2}, "bos_id must differ from eos_id and pad_id"),
        ({"eos_id": 64}, r"eos_id must be in \[0, 64\), got 64"),
    ],
)
def test_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Seq2SeqConfig(**kwargs)

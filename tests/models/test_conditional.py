"""ConditionalGenerator: one-to-many from an image or a vector."""

from __future__ import annotations

import pytest
import torch

from rnnkit.models import (
    ConditionalGenerator,
    ConditionalGeneratorConfig,
    RecurrentSpec,
    beam_search,
)
from tests.helpers import assert_close
from tests.models.seq2seq_data import BOS, EOS, PAD, seq2seq_batch

V = 12


def _model(**options: object) -> ConditionalGenerator:
    cfg = ConditionalGeneratorConfig(
        vocab_size=V,
        cnn_channels=(3, 4),
        feature_size=6,
        embedding_dim=5,
        decoder=RecurrentSpec("lstm", 8, num_layers=2),
        **options,
    )
    return ConditionalGenerator(cfg).eval()


@pytest.mark.parametrize("feed", [False, True])
def test_image_to_sequence_shapes(feed: bool) -> None:
    model = _model(feed_features=feed)
    _, _, tgt_in, _ = seq2seq_batch()
    images = torch.randn(3, 1, 28, 28)
    assert model(images, tgt_in).shape == (3, 5, V)
    assert_close(model(images[:, 0], tgt_in), model(images, tgt_in), what="(B, H, W) images")
    out = model.generate(images, max_len=7)
    assert out.shape[0] == 3 and out.shape[1] <= 7
    assert not ((out == BOS) | (out == EOS)).any()


def test_teacher_forcing_equals_stepping() -> None:
    model = _model(feed_features=True)
    _, _, tgt_in, _ = seq2seq_batch()
    images = torch.randn(3, 1, 13, 9)  # any image size: the CNN pools to a fixed grid
    logits = model(images, tgt_in)
    memory, state = model.encode(images)
    steps = []
    for t in range(tgt_in.shape[1]):
        step_logits, state, _ = model.decoder.step(tgt_in[:, t], state, memory)
        steps.append(step_logits)
    assert_close(torch.stack(steps, dim=1), logits, what="step by step")


def test_beam_size_1_is_greedy_and_beams_are_well_formed() -> None:
    torch.manual_seed(0)
    model = _model()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 1.0)
    images = torch.randn(4, 1, 12, 12)
    greedy = model.generate(images, max_len=6)
    memory, state = model.encode(images)
    beam1 = beam_search(model.decoder, state, memory, beam_size=1, max_len=6, length_penalty=0.0)
    assert torch.equal(beam1, greedy)
    beam = model.generate(images, max_len=6, beam_size=3)
    assert beam.shape[0] == 4 and beam.shape[1] <= 6
    for row in beam:
        ended = (row == PAD).nonzero()
        if len(ended):
            assert (row[int(ended[0]) :] == PAD).all()


def test_linear_encoder() -> None:
    model = _model(encoder="linear", input_size=10)
    _, _, tgt_in, _ = seq2seq_batch()
    assert model(torch.randn(3, 10), tgt_in).shape == (3, 5, V)
    with pytest.raises(ValueError, match=r"expected features of shape \(B, 10\), got \(3, 9\)"):
        model(torch.randn(3, 9), tgt_in)


def test_errors() -> None:
    model = _model()
    _, _, tgt_in, _ = seq2seq_batch()
    with pytest.raises(
        ValueError, match=r"expected images of shape \(B, 1, H, W\), got \(3, 2, 8, 8\)"
    ):
        model(torch.randn(3, 2, 8, 8), tgt_in)
    with pytest.raises(ValueError, match=r"expected tgt_in of shape \(2, T\)"):
        model(torch.randn(2, 1, 8, 8), tgt_in)
    with pytest.raises(ValueError, match="encoder='linear' needs input_size"):
        ConditionalGeneratorConfig(encoder="linear")
    with pytest.raises(ValueError, match=r"did you mean 'cnn'\?"):
        ConditionalGeneratorConfig(encoder="cnnn")

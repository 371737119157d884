"""Model streams: a language model, a tagger and the decoders fed token by token."""

from __future__ import annotations

import pytest
import torch

from rnnkit.layers.stream import Stream
from rnnkit.models import InputSpec, RecurrentSpec, SequenceTagger, TaggerConfig
from rnnkit.models.stream import DecoderStream, TokenStream, stream
from tests.helpers import assert_close, leaves
from tests.models.cases import conditional_generator, language_model, seq2seq, tagger
from tests.models.seq2seq_data import BOS, seq2seq_batch, tokens


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_language_model_streams_as_it_reads_the_whole_text(cell: str) -> None:
    model = language_model(cell).model.eval()
    text = tokens(3, 8, low=0)
    full, final = model(text)
    s = stream(model)
    assert isinstance(s, TokenStream)
    first = s.chunk(text[:, :3])
    rest = torch.stack([s.step(text[:, t]) for t in range(3, 8)], 1)
    assert_close(torch.cat([first, rest], 1), full, what="logits")
    for a, b in zip(leaves(s.state), leaves(final), strict=True):
        assert_close(a, b, what="state")


def test_a_unidirectional_tagger_streams_and_a_bidirectional_one_is_refused() -> None:
    with pytest.raises(ValueError, match="bidirectional"):
        stream(tagger("gru").model.eval())
    config = TaggerConfig(
        input=InputSpec("linear", input_size=3, embedding_dim=5),
        num_classes=4,
        rnn=RecurrentSpec("gru", hidden_size=8, num_layers=2),
    )
    model = SequenceTagger(config).eval()
    x = torch.randn(2, 5, 3)
    full, _ = model(x)
    s = stream(model)
    steps = torch.stack([s.chunk(x[:, t : t + 1])[:, 0] for t in range(5)], 1)
    assert_close(steps, full, what="tagger logits")


@pytest.mark.parametrize("attention", ["bahdanau", "luong", "none"])
def test_a_seq2seq_decoder_streams_its_teacher_forced_logits(attention: str) -> None:
    model = seq2seq("lstm", attention).model.eval()
    src, src_lengths, tgt_in, _ = seq2seq_batch()
    full = model(src, src_lengths, tgt_in)
    s = stream(model, src, src_lengths)
    assert isinstance(s, DecoderStream)
    logits = torch.stack([s.step(tgt_in[:, t]) for t in range(tgt_in.shape[1])], 1)
    assert_close(logits, full, what="decoder logits")
    if attention != "none":
        assert s.weights is not None and s.weights.shape == src.shape


def test_a_conditional_generator_streams_from_its_image() -> None:
    model = conditional_generator("gru").model.eval()
    images = torch.randn(3, 1, 10, 10)
    tgt_in = torch.cat([torch.full((3, 1), BOS), tokens(3, 4)], 1)
    full = model(images, tgt_in)
    s = stream(model, images)
    logits = torch.stack([s.step(tgt_in[:, t]) for t in range(5)], 1)
    assert_close(logits, full, what="caption logits")


def test_stream_of_a_layer_and_wrong_calls() -> None:
    from rnnkit import GRU

    assert isinstance(stream(GRU(3, 4).eval()), Stream)
    with pytest.raises(ValueError, match="needs its source"):
        stream(seq2seq("gru").model)
    with pytest.raises(ValueError, match="takes no source"):
        stream(language_model("gru").model, torch.zeros(1))
    with pytest.raises(ValueError, match=r"tokens of shape \(B,\)"):
        TokenStream(language_model("gru").model.eval()).step(torch.zeros(2, 1, dtype=torch.long))

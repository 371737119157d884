"""Tiny configs and batches for every registered model, shared by the model tests.

``CASES[name](cell)`` builds a tiny model of that kind with the given cell, a tiny
batch and a loss, so registry-wide tests (one optimisation step, overfitting) can
run over every model and every cell. Adding a model to ``MODELS`` without a case
here fails ``test_every_registered_model_has_a_case``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.models import (
    ClassifierConfig,
    ConditionalGenerator,
    ConditionalGeneratorConfig,
    Forecaster,
    ForecasterConfig,
    InputSpec,
    LanguageModel,
    LanguageModelConfig,
    RecurrentSpec,
    Seq2Seq,
    Seq2SeqConfig,
    SequenceClassifier,
    SequenceTagger,
    TaggerConfig,
)
from tests.models.seq2seq_data import PAD, V, seq2seq_batch, tokens


@dataclass
class Case:
    """A model, a batch for it, and how to compute its loss on that batch."""

    model: nn.Module
    batch: tuple[Any, ...]
    loss: Callable[[nn.Module, tuple[Any, ...]], Tensor]


def spec(cell: str, *, bidirectional: bool = False, layers: int = 1) -> RecurrentSpec:
    return RecurrentSpec(cell, hidden_size=8, num_layers=layers, bidirectional=bidirectional)


def classifier(cell: str) -> Case:
    cfg = ClassifierConfig(
        input=InputSpec("embedding", vocab_size=V, embedding_dim=6),
        num_classes=3,
        rnn=spec(cell, bidirectional=True, layers=2),
        conv_channels=5,
        conv_kernel=3,
        pool_size=2,
        pooling="attention",
        attention_dim=4,
        head_hidden=(7,),
    )
    x, lengths, y = tokens(4, 9), torch.tensor([9, 6, 3, 1]), torch.tensor([0, 1, 2, 1])
    return Case(
        SequenceClassifier(cfg), (x, lengths, y), lambda m, b: F.cross_entropy(m(*b[:2]), b[2])
    )


def tagger(cell: str) -> Case:
    cfg = TaggerConfig(
        input=InputSpec("linear", input_size=3, embedding_dim=5),
        num_classes=4,
        rnn=spec(cell, bidirectional=True),
        head_hidden=(6,),
    )
    x, lengths, y = torch.randn(3, 6, 3), torch.tensor([6, 4, 2]), torch.randint(4, (3, 6))

    def loss(m: nn.Module, b: tuple[Any, ...]) -> Tensor:
        logits, _ = m(b[0], b[1])
        mask = torch.arange(6).unsqueeze(0) < b[1].unsqueeze(1)  # padded steps out of the loss
        return F.cross_entropy(logits[mask], b[2][mask])

    return Case(SequenceTagger(cfg), (x, lengths, y), loss)


def language_model(cell: str) -> Case:
    cfg = LanguageModelConfig(
        vocab_size=V, embedding_dim=6, rnn=spec(cell, layers=2), tie_weights=True, dropout=0.1
    )
    text = tokens(3, 8, low=0)

    def loss(m: nn.Module, b: tuple[Any, ...]) -> Tensor:
        logits, _ = m(b[0][:, :-1])
        return F.cross_entropy(logits.reshape(-1, V), b[0][:, 1:].reshape(-1))

    return Case(LanguageModel(cfg), (text,), loss)


def seq2seq_loss(m: nn.Module, b: tuple[Any, ...]) -> Tensor:
    logits = m(b[0], b[1], b[2])
    return F.cross_entropy(logits.transpose(1, 2), b[3], ignore_index=PAD)


def seq2seq(cell: str, attention: str = "bahdanau") -> Case:
    cfg = Seq2SeqConfig(
        src_vocab_size=V,
        tgt_vocab_size=V,
        src_embedding_dim=6,
        tgt_embedding_dim=5,
        encoder=spec(cell, bidirectional=True, layers=2),
        decoder=spec(cell, layers=2),
        attention=attention,
        attention_dim=4,
    )
    return Case(Seq2Seq(cfg), seq2seq_batch(), seq2seq_loss)


def conditional_generator(cell: str) -> Case:
    cfg = ConditionalGeneratorConfig(
        vocab_size=V,
        cnn_channels=(3, 4),
        feature_size=6,
        feed_features=True,
        embedding_dim=5,
        decoder=spec(cell),
    )
    images = torch.randn(3, 1, 10, 10)
    _, _, tgt_in, tgt_out = seq2seq_batch()

    def loss(m: nn.Module, b: tuple[Any, ...]) -> Tensor:
        return F.cross_entropy(m(b[0], b[1]).transpose(1, 2), b[2], ignore_index=PAD)

    return Case(ConditionalGenerator(cfg), (images, tgt_in, tgt_out), loss)


def forecaster(cell: str) -> Case:
    cfg = ForecasterConfig(
        input_size=3, rnn=spec(cell, bidirectional=True), horizon=2, n_targets=2, head_hidden=(6,)
    )
    x, y = torch.randn(4, 6, 3), torch.randn(4, 2, 2)
    return Case(Forecaster(cfg), (x, y), lambda m, b: F.mse_loss(m(b[0]), b[1]))


CASES: dict[str, Callable[[str], Case]] = {
    "classifier": classifier,
    "tagger": tagger,
    "language_model": language_model,
    "seq2seq": seq2seq,
    "conditional_generator": conditional_generator,
    "forecaster": forecaster,
}

"""Input encoding shared by the models: token ids or features → ``(B, T, E)`` floats.

Besides ordinary dropout on the encoded vectors, token inputs have two regularisers of
their own, both active in training only:

* **embedding dropout** (Gal & Ghahramani 2016; Merity et al. 2018, AWD-LSTM): drop
  whole rows of the embedding matrix, i.e. every occurrence of a word type in the batch
  at once, and scale the kept rows by ``1 / (1 - p)`` (:func:`embedding_dropout`);
* **word dropout** (Iyyer et al. 2015; Bowman et al. 2016): replace single input tokens
  by the unknown token (or padding) with probability ``p`` (:func:`drop_words`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ConfigMixin, check_choice, check_positive, check_probability
from rnnkit.models.init import init_embedding_

INPUT_KINDS = ("embedding", "one_hot", "linear", "identity")


@dataclass(frozen=True)
class InputSpec(ConfigMixin):
    """How a model turns its inputs into per-step feature vectors.

    Attributes:
        kind: ``"embedding"`` — token ids ``(B, T)`` → learned vectors ``(B, T, E)``;
            ``"one_hot"`` — token ids → one-hot ``(B, T, V)`` (the course's "hello" toy);
            ``"linear"`` — features ``(B, T, F)`` → ``Linear(F, E)``;
            ``"identity"`` — features ``(B, T, F)`` as they are (e.g. digit rows, F = 28).
        vocab_size: ``V``, for ``embedding`` and ``one_hot``.
        embedding_dim: ``E``, for ``embedding`` and ``linear``.
        input_size: ``F``, for ``linear`` and ``identity``.
        padding_idx: the padding token id of ``embedding`` (its vector stays zero), or
            ``None``.
        dropout: dropout on the encoded inputs (training only).
        vectors: pretrained word vectors for ``embedding`` (a GloVe or word2vec text
            file, optionally gzipped). The model itself does not read the file: a training
            run loads the rows of its vocabulary into the embedding once the vocabulary is
            built (:func:`~rnnkit.data.load_word_vectors`); the trained weights then carry
            them, so a reloaded run needs no vectors file.
        freeze: keep the pretrained vectors fixed during training (``vectors`` only).
        embedding_dropout: ``embedding`` only: the probability of dropping a whole row of
            the embedding matrix (a word type) for a batch, kept rows scaled by
            ``1 / (1 - p)`` (AWD-LSTM uses 0.1); training only.
        word_dropout: token kinds only: the probability of replacing an input token by
            ``unk_idx`` (else ``padding_idx``) in training; padding stays padding.
        unk_idx: the unknown-token id, filled from the data's vocabulary (``None`` when
            it has none); word dropout's replacement.
    """

    kind: str = "embedding"
    vocab_size: int | None = None
    embedding_dim: int | None = None
    input_size: int | None = None
    padding_idx: int | None = 0
    dropout: float = 0.0
    vectors: str | None = None
    freeze: bool = False
    embedding_dropout: float = 0.0
    word_dropout: float = 0.0
    unk_idx: int | None = None

    def __post_init__(self) -> None:
        check_choice("InputSpec", "kind", self.kind, INPUT_KINDS)
        self._check_token_regularisers()
        if (self.vectors is not None or self.freeze) and self.kind != "embedding":
            raise ValueError(
                f"InputSpec: vectors and freeze apply to kind='embedding', got kind={self.kind!r}"
            )
        if self.freeze and self.vectors is None:
            raise ValueError("InputSpec: freeze=true needs vectors (a word-vectors file)")
        needs = {
            "embedding": ("vocab_size", "embedding_dim"),
            "one_hot": ("vocab_size",),
            "linear": ("input_size", "embedding_dim"),
            "identity": ("input_size",),
        }[self.kind]
        for name in needs:
            if getattr(self, name) is None:
                raise ValueError(f"InputSpec: kind={self.kind!r} needs {name}")
        check_positive(
            "InputSpec",
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            input_size=self.input_size,
        )
        check_probability("InputSpec", dropout=self.dropout)
        if self.kind == "embedding" and self.padding_idx is not None:
            self._check_id("padding_idx", self.padding_idx)
        if self.tokens and self.unk_idx is not None:
            self._check_id("unk_idx", self.unk_idx)

    def _check_token_regularisers(self) -> None:
        check_probability(
            "InputSpec", embedding_dropout=self.embedding_dropout, word_dropout=self.word_dropout
        )
        if self.embedding_dropout and self.kind != "embedding":
            raise ValueError(
                f"InputSpec: embedding_dropout applies to kind='embedding', got kind={self.kind!r}"
            )
        if self.word_dropout and not self.tokens:
            raise ValueError(
                "InputSpec: word_dropout applies to token ids (kind='embedding' or 'one_hot'), "
                f"got kind={self.kind!r}"
            )
        if self.word_dropout and self.replacement_idx is None:
            raise ValueError(
                "InputSpec: word_dropout needs a token to put in place of the dropped ones: "
                "unk_idx or padding_idx (the vocabulary has neither)"
            )

    def _check_id(self, name: str, value: int) -> None:
        assert self.vocab_size is not None  # checked before
        if not 0 <= value < self.vocab_size:
            raise ValueError(
                f"InputSpec: {name} must be in [0, vocab_size={self.vocab_size}), got {value}"
            )

    @property
    def replacement_idx(self) -> int | None:
        """The id word dropout puts in place of a dropped token: ``unk_idx``, else
        ``padding_idx``, else ``None``."""
        return self.unk_idx if self.unk_idx is not None else self.padding_idx

    @property
    def tokens(self) -> bool:
        """Whether the inputs are token ids (``LongTensor (B, T)``)."""
        return self.kind in ("embedding", "one_hot")

    @property
    def output_size(self) -> int:
        """Features per step after encoding."""
        size = {
            "embedding": self.embedding_dim,
            "one_hot": self.vocab_size,
            "linear": self.embedding_dim,
            "identity": self.input_size,
        }[self.kind]
        assert size is not None  # checked in __post_init__
        return size


def drop_words(
    inputs: Tensor, p: float, *, replacement: int, padding_idx: int | None = None
) -> Tensor:
    """Word dropout: each token replaced by ``replacement`` with probability ``p``.

    Padding tokens (``padding_idx``) are left alone, so lengths and masks are unchanged.

    Shape:
        ``inputs (B, T)`` token ids → ``(B, T)``.

    Example::

        >>> ids = torch.tensor([[5, 6, 7, 8, 0, 0]])
        >>> out = drop_words(ids, 0.5, replacement=1, padding_idx=0)  # e.g. [[1, 6, 7, 1, 0, 0]]
        >>> bool(((out == ids) | (out == 1)).all()), out[0, 4:].tolist()
        (True, [0, 0])
    """
    dropped = torch.rand(inputs.shape, device=inputs.device) < p  # (B, T)
    if padding_idx is not None:
        dropped &= inputs != padding_idx
    return torch.where(dropped, torch.full_like(inputs, replacement), inputs)


def embedding_dropout(vectors: Tensor, inputs: Tensor, p: float, *, vocab_size: int) -> Tensor:
    r"""Embedding dropout: whole word types dropped for the batch, the rest scaled.

    One Bernoulli draw per row of the embedding matrix, :math:`m_v \sim
    \mathrm{Bernoulli}(1 - p) / (1 - p)`; every occurrence of token ``v`` in the batch is
    multiplied by :math:`m_v`. This equals looking the tokens up in the masked matrix
    ``weight * m[:, None]`` (AWD-LSTM's ``embedded_dropout``) without forming it, and the
    expected vector of a token is unchanged.

    Arguments:
        vectors: ``(B, T, E)`` the looked-up embeddings of ``inputs``.
        inputs: ``(B, T)`` the token ids.
        p: the probability of dropping a word type, in ``[0, 1)``.
        vocab_size: ``V``, rows of the embedding matrix.

    Returns:
        ``(B, T, E)``.
    """
    keep = vectors.new_empty(vocab_size).bernoulli_(1.0 - p).div_(1.0 - p)  # (V,)
    return vectors * keep[inputs].unsqueeze(-1)  # (B, T, E)


class InputEncoder(nn.Module):
    """Encode a batch of inputs as a :class:`InputSpec` says, then apply dropout.

    In training, token inputs first go through word dropout (``spec.word_dropout``:
    :func:`drop_words`) and embeddings through embedding dropout
    (``spec.embedding_dropout``: :func:`embedding_dropout`); in eval mode neither runs.

    Shape:
        token kinds: ``(B, T)`` integer ids → ``(B, T, output_size)``;
        feature kinds: ``(B, T, F)`` floats → ``(B, T, output_size)``.

    Example::

        >>> enc = InputEncoder(InputSpec("embedding", vocab_size=1000, embedding_dim=100))
        >>> enc(torch.randint(1000, (4, 12))).shape
        torch.Size([4, 12, 100])
    """

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.spec = spec
        self.output_size = spec.output_size
        self.embedding: nn.Embedding | None = None
        self.projection: nn.Linear | None = None
        if spec.kind == "embedding":
            assert spec.vocab_size is not None and spec.embedding_dim is not None
            self.embedding = nn.Embedding(
                spec.vocab_size, spec.embedding_dim, padding_idx=spec.padding_idx
            )
            init_embedding_(self.embedding)
        elif spec.kind == "linear":
            assert spec.input_size is not None and spec.embedding_dim is not None
            self.projection = nn.Linear(spec.input_size, spec.embedding_dim)
        self.dropout = nn.Dropout(spec.dropout)
        # One-hot vectors are made here, not learned: this empty buffer follows
        # .to(device, dtype) so they are created where and as the model's weights are.
        self.register_buffer("_like", torch.empty(0), persistent=False)

    def forward(self, inputs: Tensor) -> Tensor:
        self._check(inputs)
        spec = self.spec
        if self.training and spec.word_dropout:
            assert spec.replacement_idx is not None  # checked by InputSpec
            inputs = drop_words(
                inputs,
                spec.word_dropout,
                replacement=spec.replacement_idx,
                padding_idx=spec.padding_idx,
            )  # (B, T)
        if self.embedding is not None:
            x = self.embedding(inputs)  # (B, T, E)
            if self.training and spec.embedding_dropout:
                x = embedding_dropout(
                    x, inputs, spec.embedding_dropout, vocab_size=self.embedding.num_embeddings
                )
        elif spec.kind == "one_hot":
            x = F.one_hot(inputs, spec.vocab_size).to(self._like.dtype)  # (B, T, V)
        elif self.projection is not None:
            x = self.projection(inputs)  # (B, T, E)
        else:
            x = inputs  # (B, T, F)
        return self.dropout(x)

    def _check(self, inputs: Tensor) -> None:
        spec = self.spec
        if spec.tokens:
            if inputs.dim() != 2 or inputs.is_floating_point() or inputs.dtype == torch.bool:
                raise ValueError(
                    f"InputEncoder({spec.kind}): expected integer token ids of shape (B, T), "
                    f"got {inputs.dtype} of shape {tuple(inputs.shape)}"
                )
            return
        if inputs.dim() != 3 or not inputs.is_floating_point():
            raise ValueError(
                f"InputEncoder({spec.kind}): expected float features of shape (B, T, "
                f"{spec.input_size}), got {inputs.dtype} of shape {tuple(inputs.shape)}"
            )
        if inputs.shape[-1] != spec.input_size:
            raise ValueError(
                f"InputEncoder({spec.kind}): expected input_size={spec.input_size} features, "
                f"got {inputs.shape[-1]} (input shape {tuple(inputs.shape)})"
            )

    def extra_repr(self) -> str:
        return f"kind={self.spec.kind!r}, output_size={self.output_size}"

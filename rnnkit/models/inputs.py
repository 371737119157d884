"""Input encoding shared by the models: token ids or features → ``(B, T, E)`` floats."""

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
    """

    kind: str = "embedding"
    vocab_size: int | None = None
    embedding_dim: int | None = None
    input_size: int | None = None
    padding_idx: int | None = 0
    dropout: float = 0.0
    vectors: str | None = None
    freeze: bool = False

    def __post_init__(self) -> None:
        check_choice("InputSpec", "kind", self.kind, INPUT_KINDS)
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
            assert self.vocab_size is not None
            if not 0 <= self.padding_idx < self.vocab_size:
                raise ValueError(
                    f"InputSpec: padding_idx must be in [0, vocab_size={self.vocab_size}), "
                    f"got {self.padding_idx}"
                )

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


class InputEncoder(nn.Module):
    """Encode a batch of inputs as a :class:`InputSpec` says, then apply dropout.

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
        if self.embedding is not None:
            x = self.embedding(inputs)  # (B, T, E)
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

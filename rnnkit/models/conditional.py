"""``ConditionalGenerator``: one-to-many (an image → its caption, a vector → a sequence)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from rnnkit.cells.base import State
from rnnkit.config import ConfigMixin, check_choice, check_positive, check_probability
from rnnkit.models.decoder import EncoderMemory, RNNDecoder, check_special_tokens
from rnnkit.models.decoding import beam_search, eval_mode, greedy_search
from rnnkit.models.init import init_forget_bias_
from rnnkit.models.recurrent import RecurrentSpec
from rnnkit.models.registry import register_model
from rnnkit.models.states import Bridge

ENCODERS = ("cnn", "linear")

CNN_GRID = 4
"""The CNN's feature maps are average-pooled to a ``4 × 4`` grid before the linear
layer: it keeps a coarse layout (where the strokes are), and any image size works."""


@dataclass(frozen=True)
class ConditionalGeneratorConfig(ConfigMixin):
    """Config of :class:`ConditionalGenerator`.

    Attributes:
        vocab_size: ``V`` of the output sequences.
        encoder: ``"cnn"`` (images ``(B, C, H, W)``) or ``"linear"`` (vectors ``(B, F)``).
        image_channels: ``C`` (``cnn``).
        cnn_channels: channels of each ``Conv3×3 → ReLU → MaxPool2`` block (``cnn``).
        input_size: ``F`` (``linear``).
        feature_size: size of the encoded feature vector.
        feed_features: also feed the feature vector to the decoder at every step
            (besides initialising its state).
        embedding_dim: output-token embedding size.
        decoder: the decoder's recurrent stack (unidirectional).
        pad_id, bos_id, eos_id: special ids of the output vocabulary.
        dropout: on features, embeddings and before the readout (training only).
    """

    vocab_size: int = 32
    encoder: str = "cnn"
    image_channels: int = 1
    cnn_channels: tuple[int, ...] = (16, 32)
    input_size: int | None = None
    feature_size: int = 128
    feed_features: bool = False
    embedding_dim: int = 32
    decoder: RecurrentSpec = field(default_factory=lambda: RecurrentSpec("gru", 128))
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        owner = "ConditionalGeneratorConfig"
        check_choice(owner, "encoder", self.encoder, ENCODERS)
        check_positive(
            owner,
            vocab_size=self.vocab_size,
            image_channels=self.image_channels,
            feature_size=self.feature_size,
            embedding_dim=self.embedding_dim,
            input_size=self.input_size,
            **{f"cnn_channels[{i}]": c for i, c in enumerate(self.cnn_channels)},
        )
        if self.encoder == "cnn" and not self.cnn_channels:
            raise ValueError(f"{owner}: encoder='cnn' needs at least one of cnn_channels")
        if self.encoder == "linear" and self.input_size is None:
            raise ValueError(f"{owner}: encoder='linear' needs input_size")
        check_probability(owner, dropout=self.dropout)
        check_special_tokens(owner, self.vocab_size, self.pad_id, self.bos_id, self.eos_id)
        if self.decoder.bidirectional:
            raise ValueError(f"{owner}: the decoder must be unidirectional (bidirectional=False)")


class CNNEncoder(nn.Module):
    """A small CNN: ``[Conv3×3 → ReLU → MaxPool2] × n → AvgPool to 4×4 → Linear → ReLU``.

    Shape:
        ``(B, C, H, W)`` → ``(B, feature_size)``.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], feature_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
            layers.append(nn.MaxPool2d(2, ceil_mode=True))  # ceil: odd sizes lose no row
            in_channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(CNN_GRID), nn.Flatten()]
        layers += [nn.Linear(in_channels * CNN_GRID**2, feature_size), nn.ReLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)


@register_model("conditional_generator", description="one-to-many: fixed input → sequence")
class ConditionalGenerator(nn.Module):
    r"""One-to-many, the captioning pattern: a fixed input → a token sequence.

    An encoder (a small CNN over images, or a linear layer over a vector) gives a
    feature vector ``f``; a :class:`~rnnkit.models.states.Bridge` turns it into the
    decoder's initial state ``s_0 = tanh(W f + b)``; an
    :class:`~rnnkit.models.RNNDecoder` (no attention; with ``feed_features`` it also
    reads ``f`` at every step) emits the sequence.

    Training as :class:`~rnnkit.models.Seq2Seq`: ``tgt_in = [BOS, y_1..y_n]``, targets
    ``[y_1..y_n, EOS]``, ``cross_entropy(..., ignore_index=pad_id)``.

    Shape:
        ``features``: images ``(B, C, H, W)`` (``(B, H, W)`` when ``C = 1``) or vectors
        ``(B, F)``; ``tgt_in (B, T)`` → logits ``(B, T, V)``.

    Example::

        >>> model = ConditionalGenerator(ConditionalGeneratorConfig(vocab_size=30))
        >>> logits = model(torch.randn(8, 1, 28, 28), tgt_in)     # (8, T, 30)
        >>> model.generate(torch.randn(8, 1, 28, 28), max_len=10)  # (8, <=10)
    """

    Config = ConditionalGeneratorConfig

    def __init__(self, config: ConditionalGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        if config.encoder == "cnn":
            self.encoder: nn.Module = CNNEncoder(
                config.image_channels, config.cnn_channels, config.feature_size
            )
        else:
            assert config.input_size is not None
            self.encoder = nn.Sequential(
                nn.Linear(config.input_size, config.feature_size), nn.ReLU()
            )
        self.dropout = nn.Dropout(config.dropout)
        self.decoder = RNNDecoder(
            config.vocab_size,
            config.embedding_dim,
            config.decoder,
            feed_size=config.feature_size if config.feed_features else 0,
            dropout=config.dropout,
            pad_id=config.pad_id,
            bos_id=config.bos_id,
            eos_id=config.eos_id,
        )
        self.bridge = Bridge([config.feature_size], self.decoder.shape)
        init_forget_bias_(self)

    def encode(self, features: Tensor) -> tuple[EncoderMemory, State]:
        """The decoder's memory (the per-step feed, if any) and its initial state."""
        f = self.dropout(self.encoder(self._check(features)))  # (B, feature_size)
        memory = self.decoder.memory(feed=f if self.config.feed_features else None)
        return memory, self.bridge([f])

    def forward(self, features: Tensor, tgt_in: Tensor) -> Tensor:
        """Next-token logits ``(B, T, V)`` for ``tgt_in (B, T)`` (starting with BOS)."""
        if tgt_in.dim() != 2 or tgt_in.shape[0] != features.shape[0]:
            raise ValueError(
                f"ConditionalGenerator: expected tgt_in of shape ({features.shape[0]}, T), "
                f"got {tuple(tgt_in.shape)}"
            )
        memory, state = self.encode(features)
        logits, _, _ = self.decoder(tgt_in, state, memory)
        return logits

    @torch.no_grad()
    def generate(
        self, features: Tensor, *, max_len: int, beam_size: int = 1, length_penalty: float = 1.0
    ) -> Tensor:
        """Decode a sequence for each input: greedy (``beam_size=1``) or beam search.

        Returns:
            ``(B, L)`` token ids, ``L ≤ max_len``: no ``BOS``, stops at ``EOS`` (not
            included), ``pad_id`` after the end.
        """
        with eval_mode(self):
            memory, state = self.encode(features)
            if beam_size == 1:
                return greedy_search(self.decoder, state, memory, max_len=max_len)[0]
            return beam_search(
                self.decoder,
                state,
                memory,
                beam_size=beam_size,
                max_len=max_len,
                length_penalty=length_penalty,
            )

    def _check(self, features: Tensor) -> Tensor:
        config = self.config
        if config.encoder == "linear":
            if features.dim() != 2 or features.shape[1] != config.input_size:
                raise ValueError(
                    f"ConditionalGenerator: expected features of shape (B, {config.input_size}), "
                    f"got {tuple(features.shape)}"
                )
            return features
        if features.dim() == 3 and config.image_channels == 1:
            features = features.unsqueeze(1)  # (B, H, W) -> (B, 1, H, W)
        if features.dim() != 4 or features.shape[1] != config.image_channels:
            raise ValueError(
                f"ConditionalGenerator: expected images of shape (B, {config.image_channels}, "
                f"H, W), got {tuple(features.shape)}"
            )
        return features

"""``SequenceClassifier``: many-to-one (a review → its sentiment, a newswire → its topic)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ConfigMixin, check_choice, check_positive
from rnnkit.layers.sequence import check_lengths
from rnnkit.models.heads import MLP, check_head
from rnnkit.models.init import init_forget_bias_
from rnnkit.models.inputs import InputEncoder, InputSpec
from rnnkit.models.pooling import POOLINGS, TemporalPooling, length_mask
from rnnkit.models.recurrent import RecurrentSpec, build_recurrent
from rnnkit.models.registry import register_model
from rnnkit.models.states import probe_stack


@dataclass(frozen=True)
class ClassifierConfig(ConfigMixin):
    """Config of :class:`SequenceClassifier`.

    Attributes:
        input: how inputs are encoded (:class:`InputSpec`); token ids by default.
        num_classes: ``C``, the number of logits.
        rnn: the recurrent stack.
        conv_channels: channels of the optional Conv1D front end; ``0`` for none.
        conv_kernel: its kernel size (any, odd or even; "same" padding).
        pool_size: its max-pooling window and stride (``1`` for no pooling).
        pooling: how the recurrent outputs are summarised over time: ``"last"``,
            ``"mean"``, ``"max"`` or ``"attention"`` (all respect lengths).
        attention_dim: hidden size of the attention scorer (``pooling="attention"``).
        head_hidden: hidden layer sizes of the MLP head (``()``: one linear layer).
        head_dropout: dropout before each layer of the head.
        head_activation: activation between head layers (``relu``, ``elu``, ``gelu``, ``tanh``).
    """

    input: InputSpec = field(
        default_factory=lambda: InputSpec("embedding", vocab_size=1000, embedding_dim=100)
    )
    num_classes: int = 2
    rnn: RecurrentSpec = field(default_factory=RecurrentSpec)
    conv_channels: int = 0
    conv_kernel: int = 5
    pool_size: int = 2
    pooling: str = "last"
    attention_dim: int = 64
    head_hidden: tuple[int, ...] = ()
    head_dropout: float = 0.0
    head_activation: str = "relu"

    def __post_init__(self) -> None:
        check_positive(
            "ClassifierConfig",
            num_classes=self.num_classes,
            conv_kernel=self.conv_kernel,
            pool_size=self.pool_size,
            attention_dim=self.attention_dim,
        )
        if self.conv_channels < 0:
            raise ValueError(
                f"ClassifierConfig: conv_channels must be >= 0 (0: no conv), got "
                f"{self.conv_channels}"
            )
        check_choice("ClassifierConfig", "pooling", self.pooling, POOLINGS)
        check_head("ClassifierConfig", self.head_hidden, self.head_dropout, self.head_activation)


def same_padding(kernel: int) -> tuple[int, int]:
    """Left and right zero padding that keep a stride-1 convolution's length: ``k - 1`` in all."""
    return (kernel - 1) // 2, kernel // 2


def pooled_lengths(lengths: Tensor, pool_size: int) -> Tensor:
    r"""Valid lengths after max pooling with window = stride = ``p`` and ``ceil_mode``.

    .. math:: \ell' = \lceil \ell / p \rceil

    A partial last window still yields a step (made from the valid positions
    only), so every non-empty sequence keeps at least one step and the lengths
    never go negative; ``0`` stays ``0``.
    """
    return torch.div(lengths + pool_size - 1, pool_size, rounding_mode="floor")


class ConvFrontEnd(nn.Module):
    r"""``Conv1D → ReLU → MaxPool1D`` over time, with lengths carried through.

    The course's text model (Embedding → Dropout → Conv1D → MaxPool1D → LSTM).
    The convolution uses "same" zero padding, so a sequence of length ``ℓ`` stays
    ``ℓ`` long, and padded steps are zeroed first, so a sequence in a padded batch
    gets exactly the result it would get alone. Pooling (window = stride = ``p``,
    ``ceil_mode``) gives ``⌈ℓ / p⌉`` steps; padded conv outputs are zeroed before it,
    which after the ReLU (outputs ≥ 0) cannot raise a window's maximum.

    Shape:
        ``x (B, T, E)``, ``lengths (B,)`` → ``(B, ⌈T/p⌉, channels)``, ``(B,)``.
    """

    def __init__(self, in_features: int, channels: int, kernel: int, pool_size: int) -> None:
        super().__init__()
        self.padding = same_padding(kernel)
        self.conv = nn.Conv1d(in_features, channels, kernel)
        self.pool = nn.MaxPool1d(pool_size, stride=pool_size, ceil_mode=True)
        self.pool_size = pool_size

    def _pool_keeping_steps(self, h: Tensor) -> Tensor:
        """The pooling of an exported graph: ``(B, C, T)`` → ``(B, C, T)``, window ``j`` at
        step ``j`` and zeros from step ``⌈T/p⌉`` on (past every pooled length).

        A graph exported with a dynamic ``T`` cannot shorten it to ``⌈T/p⌉``: torch.export
        would then require ``⌈T/p⌉ ≥ 2``. Everything after the front end masks the steps
        past each sequence's length, so the outputs are the same.
        """
        p, steps = self.pool_size, h.shape[-1]
        # window starting at t: max of h_t .. h_{t+p-1}; zeros past T cannot raise it (ReLU)
        starts = torch.stack([F.pad(h, (0, k))[..., k:] for k in range(p)]).amax(0)
        first = torch.arange(steps, device=h.device) * p  # (T,) where window j starts
        pooled = starts.index_select(-1, first.clamp(max=steps - 1))  # (B, C, T)
        return torch.where(first < steps, pooled, 0.0)

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        mask = length_mask(lengths, x.shape[1], device=x.device)  # (B, T) or None
        if mask is not None:
            x = x * mask.unsqueeze(-1)  # padded steps must not leak into valid ones
        h = F.pad(x.transpose(1, 2), self.padding)  # (B, E, T + k - 1): Conv1d wants (B, C, T)
        h = torch.relu(self.conv(h))  # (B, C, T)
        if mask is not None:
            h = h * mask.unsqueeze(1)
        exporting = torch.compiler.is_exporting()
        h = self._pool_keeping_steps(h) if exporting else self.pool(h)  # (B, C, ⌈T/p⌉)
        h = h.transpose(1, 2)  # (B, ⌈T/p⌉, C); T steps in an exported graph
        return h, None if lengths is None else pooled_lengths(lengths, self.pool_size)


@register_model("classifier", description="many-to-one: sequence → class logits")
class SequenceClassifier(nn.Module):
    """Many-to-one: a whole sequence → class logits.

    ``InputEncoder → [ConvFrontEnd] → recurrent stack → TemporalPooling → MLP``.
    No softmax: the logits go to ``cross_entropy`` (which applies log-softmax itself).

    Shape:
        ``inputs``: token ids ``(B, T)`` or features ``(B, T, F)``; ``lengths`` ``(B,)``
        valid lengths (``None``: all full) → logits ``(B, num_classes)``.

    Example::

        >>> cfg = ClassifierConfig(
        ...     input=InputSpec("embedding", vocab_size=1000, embedding_dim=100),
        ...     num_classes=46, rnn=RecurrentSpec("lstm", 100))  # the course's Reuters model
        >>> model = SequenceClassifier(cfg)
        >>> model(torch.randint(1, 1000, (8, 100)), torch.full((8,), 100)).shape
        torch.Size([8, 46])
    """

    Config = ClassifierConfig

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = InputEncoder(config.input)
        features = self.encoder.output_size
        self.conv: ConvFrontEnd | None = None
        if config.conv_channels:
            self.conv = ConvFrontEnd(
                features, config.conv_channels, config.conv_kernel, config.pool_size
            )
            features = config.conv_channels
        self.rnn = build_recurrent(config.rnn, features)
        rnn_size = probe_stack(self.rnn, features).output_size  # H*D (P*D with a projection)
        self.pooling = TemporalPooling(
            config.pooling,
            rnn_size,
            bidirectional=config.rnn.bidirectional,
            attention_dim=config.attention_dim,
        )
        self.head = MLP.from_config(rnn_size, config.num_classes, config)
        init_forget_bias_(self)

    def forward(self, inputs: Tensor, lengths: Tensor | Sequence[int] | None = None) -> Tensor:
        x = self.encoder(inputs)  # (B, T, E)
        if lengths is not None:
            lengths = check_lengths(lengths, x.shape[1], x.shape[0], "SequenceClassifier")
        if self.conv is not None:
            x, lengths = self.conv(x, lengths)  # (B, T', C)
        out, _ = self.rnn(x, lengths=lengths)  # (B, T', H*D)
        pooled = self.pooling(out, lengths)  # (B, H*D)
        return self.head(pooled)  # (B, num_classes)

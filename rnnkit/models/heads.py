"""Heads: the feed-forward part that turns a recurrent summary into predictions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from torch import Tensor, nn

from rnnkit.config import check_choice, check_positive, check_probability
from rnnkit.models.init import init_output_

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,  # the course's IMDB model
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}


class HeadFields(Protocol):
    """The head fields a model config carries (classifier, tagger, forecaster)."""

    @property
    def head_hidden(self) -> tuple[int, ...]: ...
    @property
    def head_dropout(self) -> float: ...
    @property
    def head_activation(self) -> str: ...


class MLP(nn.Module):
    """``[Dropout → Linear → activation] × len(hidden)``, then ``Dropout → Linear``.

    No activation after the last layer: it outputs logits (or regression values);
    the loss applies softmax/sigmoid itself.

    Arguments:
        in_features: input features.
        hidden: sizes of the hidden layers (``()`` for a single linear layer).
        out_features: outputs.
        dropout: dropout before every linear layer (training only).
        activation: one of :data:`ACTIVATIONS`.

    Shape:
        ``(..., in_features)`` → ``(..., out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, ...],
        out_features: int,
        *,
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_choice("MLP", "activation", activation, tuple(ACTIVATIONS))
        layers: list[nn.Module] = []
        size = in_features
        for width in hidden:
            layers += [nn.Dropout(dropout), nn.Linear(size, width), ACTIVATIONS[activation]()]
            size = width
        self.output = nn.Linear(size, out_features)
        init_output_(self.output)
        layers += [nn.Dropout(dropout), self.output]
        self.layers = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, in_features: int, out_features: int, config: HeadFields) -> MLP:
        """The head a model config describes in its ``head_hidden``, ``head_dropout`` and
        ``head_activation`` fields (checked there by :func:`check_head`)."""
        return cls(
            in_features,
            config.head_hidden,
            out_features,
            dropout=config.head_dropout,
            activation=config.head_activation,
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def check_head(owner: str, hidden: tuple[int, ...], dropout: float, activation: str) -> None:
    """Validate the head fields of a config (``head_hidden``, ``head_dropout``, ...)."""
    check_positive(owner, **{f"head_hidden[{i}]": h for i, h in enumerate(hidden)})
    check_probability(owner, head_dropout=dropout)
    check_choice(owner, "head_activation", activation, tuple(ACTIVATIONS))

"""The recurrent stack inside a model: a spec (config) and the registry that builds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from rnnkit.cells.base import CellFactory
from rnnkit.layers import GRU, LSTM, RNN, MinGRU, MinLSTM, Recurrent
from rnnkit.registry import Registry

LayerBuilder = Callable[..., nn.Module]
"""``builder(input_size, spec, *, batch_first) -> layer``; the layer is called as
``layer(x, state=None, *, lengths=None) -> (output, final_state)``."""

LAYERS: Registry[LayerBuilder] = Registry("cell")
"""Layer builders by the name a config gives as ``model.rnn.cell`` (hence "cell" in errors)."""


@dataclass(frozen=True)
class RecurrentSpec:
    """Which recurrent layers a model uses.

    Attributes:
        cell: a registered cell name: ``rnn`` (tanh), ``rnn_relu``, ``lstm``, ``gru``,
            ``mingru``, ``minlstm``, or one added with :func:`register_layer`.
        hidden_size: ``H`` of every layer.
        num_layers: stacked layers.
        bidirectional: add a backward direction (features ``2H``).
        dropout: between stacked layers (training only).
        options: extra keyword options for the layer (cell variants such as layer
            normalisation, where the layer supports them).
    """

    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def output_size(self) -> int:
        """Features of each step's output."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    @property
    def state_size(self) -> int:
        """Features of one direction's hidden state."""
        return self.hidden_size


def build_recurrent(spec: RecurrentSpec, input_size: int, *, batch_first: bool = True) -> nn.Module:
    """Build the recurrent layer(s) a spec describes.

    Arguments:
        spec: the :class:`RecurrentSpec`.
        input_size: features of the layer's input.
        batch_first: layout of the layer's input and output.

    Returns:
        A layer called as ``layer(x, state=None, *, lengths=None) -> (output, state)``.
    """
    return LAYERS.get(spec.cell)(input_size, spec, batch_first=batch_first)


def _standard(cls: type, **fixed: Any) -> LayerBuilder:
    def build(input_size: int, spec: RecurrentSpec, *, batch_first: bool) -> nn.Module:
        return cls(
            input_size,
            spec.hidden_size,
            num_layers=spec.num_layers,
            bidirectional=spec.bidirectional,
            dropout=spec.dropout if spec.num_layers > 1 else 0.0,
            batch_first=batch_first,
            **fixed,
            **spec.options,
        )

    return build


LAYERS.register("rnn", _standard(RNN, nonlinearity="tanh"), description="vanilla (Elman) RNN, tanh")
LAYERS.register("rnn_relu", _standard(RNN, nonlinearity="relu"), description="vanilla RNN, ReLU")
LAYERS.register("lstm", _standard(LSTM), description="LSTM (Hochreiter & Schmidhuber 1997)")
LAYERS.register("gru", _standard(GRU), description="GRU (Cho et al. 2014)")
LAYERS.register(
    "mingru", _standard(MinGRU), description="minGRU (Feng et al. 2024): parallel scan over time"
)
LAYERS.register(
    "minlstm", _standard(MinLSTM), description="minLSTM (Feng et al. 2024): parallel scan over time"
)


def register_layer(
    name: str, factory: Callable[..., CellFactory], *, description: str = ""
) -> None:
    """Make a custom cell usable by name in every model, config and recipe.

    Registers a layer builder in :data:`LAYERS`: a :class:`rnnkit.Recurrent` over the cell.

    Arguments:
        name: the name configs will use (``model.rnn.cell: name``).
        factory: ``factory(input_size, hidden_size, **options) -> cell`` following the
            cell protocol; it runs through :class:`rnnkit.Recurrent`.
        description: one line for listings.

    Example::

        register_layer("minimal", lambda n, h: MinimalRNNCell(n, h))
    """

    def build(input_size: int, spec: RecurrentSpec, *, batch_first: bool) -> nn.Module:
        return Recurrent(
            lambda n: factory(n, spec.hidden_size, **spec.options),
            input_size=input_size,
            num_layers=spec.num_layers,
            bidirectional=spec.bidirectional,
            dropout=spec.dropout,
            batch_first=batch_first,
        )

    LAYERS.register(name, build, description=description)

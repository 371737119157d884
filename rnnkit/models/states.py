"""Recurrent states inside models: their shapes, and moving them between stacks."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.cells.base import State, map_state, state_leaves


class StackShape(NamedTuple):
    """What a recurrent layer returns, found by running it once on one step.

    Attributes:
        output_size: features of each output step.
        template: a final state for a batch of one (leaves ``(L*D, 1, ...)``), used
            as the structure to rebuild states from tensors.
    """

    output_size: int
    template: State

    @property
    def leaf_sizes(self) -> list[int]:
        """Features of each state leaf."""
        return [leaf.shape[-1] for leaf in state_leaves(self.template)]

    @property
    def rows(self) -> int:
        """``L*D``: the stacked (layer, direction) rows of each state leaf."""
        return state_leaves(self.template)[0].shape[0]


def probe_stack(layer: nn.Module, input_size: int) -> StackShape:
    """Run ``layer`` once on a zero input ``(1, 1, input_size)`` to learn its shapes.

    This works for every layer the cell registry builds (``torch.nn``-style layers
    and :class:`rnnkit.Recurrent` over user cells) without knowing their state type.
    """
    weight = next(layer.parameters())
    with torch.no_grad():
        x = weight.new_zeros(1, 1, input_size)
        out, state = layer(x)
    return StackShape(out.shape[-1], map_state(lambda s: s.detach(), state))


def state_from_leaves(template: State, leaves: list[Tensor]) -> State:
    """A state with ``template``'s structure (tensor or ``NamedTuple``) and the given leaves."""
    it = iter(leaves)

    def rebuild(part: State) -> State:
        if isinstance(part, Tensor):
            return next(it)
        fields = [rebuild(p) for p in part]
        return type(part)(*fields) if hasattr(part, "_fields") else tuple(fields)

    return rebuild(template)


def top_layer(state: State, num_directions: int) -> list[Tensor]:
    """Each state leaf's top layer, both directions concatenated: ``(B, D*H)`` per leaf."""
    out = []
    for leaf in state_leaves(state):
        top = leaf[-num_directions:]  # (D, B, H): rows are layer-major, direction-minor
        out.append(top.transpose(0, 1).reshape(top.shape[1], -1))  # (B, D*H)
    return out


class Bridge(nn.Module):
    r"""From an encoder's summary to a decoder's initial state.

    For each leaf ``k`` of the decoder state (``h``; ``h`` and ``c`` for an LSTM):

    .. math:: s_0^{(k)} = \tanh(W_k\, u^{(k)} + b_k)

    reshaped to ``(L, B, H)`` (one slice per decoder layer), where ``u^{(k)}`` is the
    ``k``-th source vector when there are as many sources as leaves (LSTM → LSTM:
    ``h → h``, ``c → c``) and the first source otherwise (GRU → LSTM, or a single
    feature vector). For a bidirectional encoder the source is the top layer's
    ``[h_fwd; h_bwd]``, as in Bahdanau et al. (2015), who initialise from the
    backward state through ``tanh``.

    Arguments:
        source_sizes: features of each source vector.
        target: the decoder's :class:`StackShape`.
    """

    def __init__(self, source_sizes: list[int], target: StackShape) -> None:
        super().__init__()
        self.template, self.rows = target.template, target.rows
        pairwise = len(source_sizes) == len(target.leaf_sizes)
        self.sources = [k if pairwise else 0 for k in range(len(target.leaf_sizes))]
        self.maps = nn.ModuleList(
            nn.Linear(source_sizes[s], self.rows * size)
            for s, size in zip(self.sources, target.leaf_sizes, strict=True)
        )

    def forward(self, sources: list[Tensor]) -> State:
        leaves = []
        for source, linear in zip(self.sources, self.maps, strict=True):
            s = torch.tanh(linear(sources[source]))  # (B, L*H)
            s = s.view(s.shape[0], self.rows, -1).transpose(0, 1).contiguous()  # (L, B, H)
            leaves.append(s)
        return state_from_leaves(self.template, leaves)

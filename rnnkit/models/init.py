"""Initialisation choices shared by the models, each with its reason.

* Recurrent weights keep their layer's own initialisation, U(−1/√H, 1/√H) as in
  ``torch.nn``: pre-activations of a fresh cell stay O(1) whatever ``H`` is.
* LSTM forget-gate bias 1.0 (:func:`init_forget_bias_`): the cell starts out
  *remembering* (f ≈ σ(1) ≈ 0.73 instead of 0.5), so gradients flow through the cell
  state over long spans from the first step of training (Gers et al. 2000;
  Jozefowicz et al. 2015 found it closes most of the gap to the GRU).
* Embeddings U(−0.1, 0.1) (:func:`init_embedding_`), as in PyTorch's word language
  model: inputs of that size keep tanh/σ gates unsaturated, and a tied output layer
  starts with near-zero logits, i.e. near-uniform predictions (loss ≈ ln V).
  The padding row is zero, so a padded token feeds exact zeros.
* Output-layer biases zero: the first predictions are not skewed toward any class.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnkit.cells import LSTMCell

EMBEDDING_INIT_RANGE = 0.1
FORGET_BIAS = 1.0


def init_embedding_(embedding: nn.Embedding, *, init_range: float = EMBEDDING_INIT_RANGE) -> None:
    """Embedding weights ~ U(−r, r), padding row zero (see the module docstring)."""
    with torch.no_grad():
        embedding.weight.uniform_(-init_range, init_range)
        if embedding.padding_idx is not None:
            embedding.weight[embedding.padding_idx].zero_()


def init_forget_bias_(module: nn.Module, value: float = FORGET_BIAS) -> None:
    """Set the forget-gate bias of every LSTM inside ``module`` to ``value``.

    Gate order is ``i, f, g, o`` (torch's), so the forget gate is the second of four
    ``H``-sized chunks. PyTorch keeps two biases that are summed, ``b_ih + b_hh``:
    the first gets ``value`` and the second ``0``, so their sum is ``value``.
    Covers ``torch.nn.LSTM`` (and rnnkit's drop-in ``LSTM``), ``torch.nn.LSTMCell``
    and rnnkit's ``LSTMCell`` (inside ``rnnkit.Recurrent``).
    """
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.LSTM | nn.LSTMCell | LSTMCell):
                for name, param in sub.named_parameters(recurse=False):
                    if name.startswith(("bias_ih", "bias_hh")):
                        forget = param.view(4, -1)[1]  # (H,): chunk 1 of (i, f, g, o)
                        forget.fill_(value if name.startswith("bias_ih") else 0.0)


def init_output_(linear: nn.Linear) -> None:
    """Zero an output layer's bias (see the module docstring)."""
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)

"""The token decoder shared by ``Seq2Seq`` and ``ConditionalGenerator``.

A decoder emits a target sequence one token at a time: it embeds the previous
token, runs one recurrent step carrying its state, optionally attends over an
encoder's outputs, and reads out next-token logits.

**How the recurrent step is run.** The decoder's recurrent stack is built with
:func:`~rnnkit.models.build_recurrent` from a :class:`~rnnkit.models.RecurrentSpec`,
exactly like every other model's, so any registered cell (``rnn``, ``lstm``,
``gru`` or a user cell), stacked, works as a decoder. Decoding one step is a call
of that layer on a sequence of length ``T = 1`` with the carried state (leaves
``(L, B, H)``); when all inputs are known up front (teacher forcing without
Bahdanau attention) the same layer runs over the whole target in one call, which
gives identical results (tests check this) at the speed of the fused kernels.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.cells.base import State, state_leaves
from rnnkit.models.attention import BahdanauAttention, LuongAttention
from rnnkit.models.init import init_embedding_, init_forget_bias_, init_output_
from rnnkit.models.recurrent import RecurrentSpec, build_recurrent
from rnnkit.models.states import probe_stack

ATTENTIONS = ("bahdanau", "luong", "none")


def check_special_tokens(
    owner: str, vocab_size: int, pad_id: int, bos_id: int, eos_id: int
) -> None:
    """Raise a ``ValueError`` unless the special ids are in ``[0, V)`` and BOS ≠ EOS, PAD."""
    for name, value in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
        if not 0 <= value < vocab_size:
            raise ValueError(f"{owner}: {name} must be in [0, {vocab_size}), got {value}")
    if bos_id in (eos_id, pad_id):
        raise ValueError(
            f"{owner}: bos_id must differ from eos_id and pad_id, got bos_id={bos_id}, "
            f"eos_id={eos_id}, pad_id={pad_id}"
        )


class EncoderMemory(NamedTuple):
    """What the decoder reads from the encoder at every step.

    Attributes:
        values: encoder outputs to attend over, ``(B, S, M)``, or ``None``.
        keys: attention keys precomputed from ``values``, ``(B, S, ·)``, or ``None``.
        mask: ``(B, S)`` bool, ``True`` at valid source positions, or ``None``.
        feed: a vector fed to the decoder at every step, ``(B, F)``, or ``None``.
    """

    values: Tensor | None = None
    keys: Tensor | None = None
    mask: Tensor | None = None
    feed: Tensor | None = None

    def repeat(self, times: int) -> EncoderMemory:
        """Each batch entry repeated ``times`` times in a row (for beam search)."""
        return EncoderMemory(
            *(None if t is None else t.repeat_interleave(times, dim=0) for t in self)
        )


class RNNDecoder(nn.Module):
    r"""A recurrent token decoder with optional attention over a source.

    One step (``y`` the previous token, ``s`` the state, ``c`` a context vector):

    * ``attention="none"``: ``h_t, s_t = RNN([E y; f], s_{t-1})``; logits ``W_o h_t``.
    * ``"bahdanau"``: ``c_t = attend(s_{t-1})``; ``h_t, s_t = RNN([E y; c_t; f], s_{t-1})``;
      logits ``W_o [h_t; c_t]``.
    * ``"luong"``: ``h_t, s_t = RNN([E y; f], s_{t-1})``; ``c_t = attend(h_t)``;
      ``\tilde h_t = \tanh(W_c [c_t; h_t])``; logits ``W_o \tilde h_t``.

    ``f`` is the optional per-step feed (:attr:`EncoderMemory.feed`). The decoder never
    predicts ``bos_id`` or ``pad_id`` when it decodes (see :meth:`predict`).

    Arguments:
        vocab_size: ``V`` of the target.
        embedding_dim: target embedding size.
        spec: the recurrent stack (must be unidirectional: a decoder cannot read ahead).
        attention: one of :data:`ATTENTIONS`.
        memory_size: ``M``, the encoder's output size (with attention).
        attention_dim: size of the Bahdanau scorer.
        feed_size: ``F`` of the per-step feed, or 0.
        dropout: on the embeddings and before the readout (training only).
        pad_id, bos_id, eos_id: the target's special tokens.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        spec: RecurrentSpec,
        *,
        attention: str = "none",
        memory_size: int = 0,
        attention_dim: int = 64,
        feed_size: int = 0,
        dropout: float = 0.0,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
    ) -> None:
        super().__init__()
        if spec.bidirectional:
            raise ValueError("RNNDecoder: the decoder must be unidirectional (bidirectional=False)")
        self.attention_kind = attention
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        init_embedding_(self.embedding)
        self.dropout = nn.Dropout(dropout)
        input_size = embedding_dim + feed_size + (memory_size if attention == "bahdanau" else 0)
        self.rnn = build_recurrent(spec, input_size)
        init_forget_bias_(self.rnn)
        self.shape = probe_stack(self.rnn, input_size)
        hidden = self.shape.output_size
        readout_size = hidden
        self.attention: nn.Module | None = None
        if attention == "bahdanau":
            query_size = self.shape.leaf_sizes[0]  # the top layer's h_{t-1}
            self.attention = BahdanauAttention(query_size, memory_size, attention_dim)
            readout_size = hidden + memory_size
        elif attention == "luong":
            self.attention = LuongAttention(hidden, memory_size)
            self.combine = nn.Linear(memory_size + hidden, hidden, bias=False)  # W_c
        self.readout = nn.Linear(readout_size, vocab_size)
        init_output_(self.readout)

    def memory(
        self,
        values: Tensor | None = None,
        mask: Tensor | None = None,
        feed: Tensor | None = None,
    ) -> EncoderMemory:
        """Bundle what the decoder reads at every step, precomputing attention keys."""
        keys = None
        if self.attention is not None:
            if values is None:
                raise ValueError(f"RNNDecoder: {self.attention_kind} attention needs values")
            keys = self.attention.keys(values)  # type: ignore[operator]
        return EncoderMemory(values, keys, mask, feed)

    def forward(
        self,
        tgt_in: Tensor,
        state: State,
        memory: EncoderMemory,
        *,
        teacher_forcing_ratio: float = 1.0,
    ) -> tuple[Tensor, State, Tensor | None]:
        """Decode a target given its inputs (teacher forcing).

        Arguments:
            tgt_in: ``(B, T)`` target inputs, starting with ``bos_id``.
            state: the initial state (leaves ``(L, B, H)``).
            memory: from :meth:`memory`.
            teacher_forcing_ratio: probability, per step and sequence, of feeding the
                true previous token; otherwise the model's own prediction
                (:meth:`predict`) of the previous step is fed.

        Returns:
            ``(logits (B, T, V), final state, attention weights (B, T, S) or None)``.
        """
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(
                f"RNNDecoder: teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}"
            )
        if teacher_forcing_ratio == 1.0 and self.attention_kind != "bahdanau":
            # Every input is known: run the whole target through the layer at once.
            emb = self.dropout(self.embedding(tgt_in))  # (B, T, E)
            return self._decode(emb, state, memory)
        return self._forward_stepwise(tgt_in, state, memory, teacher_forcing_ratio)

    def step(
        self, tokens: Tensor, state: State, memory: EncoderMemory
    ) -> tuple[Tensor, State, Tensor | None]:
        """One decoding step.

        Arguments:
            tokens: the previous tokens ``(B,)``.
            state: the state after the previous step.
            memory: from :meth:`memory`.

        Returns:
            ``(logits (B, V), new state, attention weights (B, S) or None)``.
        """
        emb = self.dropout(self.embedding(tokens.unsqueeze(1)))  # (B, 1, E)
        logits, state, weights = self._decode(emb, state, memory)
        return logits[:, 0], state, None if weights is None else weights[:, 0]

    def predict(self, logits: Tensor) -> Tensor:
        """The most likely next tokens ``(B,)``, never ``bos_id`` or ``pad_id``."""
        return self.mask_special(logits).argmax(dim=-1)

    def mask_special(self, scores: Tensor) -> Tensor:
        """``scores (..., V)`` with the tokens a decoder must not emit set to ``-inf``."""
        banned = [t for t in {self.bos_id, self.pad_id} if t != self.eos_id]
        return scores.index_fill(-1, torch.tensor(banned, device=scores.device), float("-inf"))

    def _forward_stepwise(
        self, tgt_in: Tensor, state: State, memory: EncoderMemory, ratio: float
    ) -> tuple[Tensor, State, Tensor | None]:
        steps, all_weights = [], []
        tokens = tgt_in[:, 0]  # (B,) BOS
        for t in range(tgt_in.shape[1]):
            logits, state, weights = self.step(tokens, state, memory)  # (B, V)
            steps.append(logits)
            all_weights.append(weights)
            if t + 1 < tgt_in.shape[1]:
                tokens = self._next_input(tgt_in[:, t + 1], logits, ratio)
        weights = None if all_weights[0] is None else torch.stack(all_weights, dim=1)
        return torch.stack(steps, dim=1), state, weights  # (B, T, V), ..., (B, T, S)

    def _next_input(self, gold: Tensor, logits: Tensor, ratio: float) -> Tensor:
        if ratio == 1.0:
            return gold
        predicted = self.predict(logits.detach())  # (B,)
        if ratio == 0.0:
            return predicted
        use_gold = torch.rand(gold.shape, device=gold.device) < ratio  # (B,)
        return torch.where(use_gold, gold, predicted)

    def _decode(
        self, emb: Tensor, state: State, memory: EncoderMemory
    ) -> tuple[Tensor, State, Tensor | None]:
        """Steps with known inputs ``emb (B, T, E)`` (``T = 1`` with Bahdanau attention)."""
        parts, context, weights = [emb], None, None
        if self.attention_kind == "bahdanau":
            query = state_leaves(state)[0][-1].unsqueeze(1)  # (B, 1, H): top layer's s_{t-1}
            context, weights = self._attend(query, memory)  # (B, 1, M), (B, 1, S)
            parts.append(context)
        if memory.feed is not None:
            parts.append(memory.feed.unsqueeze(1).expand(-1, emb.shape[1], -1))  # (B, T, F)
        out, state = self.rnn(torch.cat(parts, dim=-1), state)  # (B, T, H)
        if self.attention_kind == "bahdanau":
            features = torch.cat([out, context], dim=-1)  # (B, 1, H + M)
        elif self.attention_kind == "luong":
            context, weights = self._attend(out, memory)  # (B, T, M), (B, T, S)
            features = torch.tanh(self.combine(torch.cat([context, out], dim=-1)))  # (B, T, H)
        else:
            features = out
        return self.readout(self.dropout(features)), state, weights  # (B, T, V)

    def _attend(self, query: Tensor, memory: EncoderMemory) -> tuple[Tensor, Tensor]:
        assert self.attention is not None and memory.values is not None
        return self.attention(query, memory.keys, memory.values, memory.mask)

"""``Seq2Seq``: many-to-many encoder–decoder with attention (translation, normalisation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from rnnkit.cells.base import State
from rnnkit.config import ConfigMixin, check_choice, check_positive, check_probability
from rnnkit.layers.sequence import check_lengths
from rnnkit.models.decoder import ATTENTIONS, EncoderMemory, RNNDecoder, check_special_tokens
from rnnkit.models.decoding import beam_search, eval_mode, greedy_search
from rnnkit.models.init import init_embedding_, init_forget_bias_
from rnnkit.models.pooling import length_mask
from rnnkit.models.recurrent import RecurrentSpec, build_recurrent
from rnnkit.models.registry import register_model
from rnnkit.models.states import Bridge, probe_stack, top_layer


@dataclass(frozen=True)
class Seq2SeqConfig(ConfigMixin):
    """Config of :class:`Seq2Seq`.

    Attributes:
        src_vocab_size: source vocabulary size.
        tgt_vocab_size: ``V``, target vocabulary size.
        pad_id: padding id, in the source and the target vocabulary alike.
        bos_id: target begin-of-sequence id (first decoder input).
        eos_id: target end-of-sequence id (the decoder's stop signal).
        src_embedding_dim: source embedding size.
        tgt_embedding_dim: target embedding size.
        encoder: the encoder's recurrent stack (bidirectional by default).
        decoder: the decoder's recurrent stack (unidirectional).
        attention: ``"bahdanau"`` (additive), ``"luong"`` (general) or ``"none"``.
        attention_dim: hidden size of the Bahdanau scorer.
        dropout: on embeddings and before the readout (training only).
    """

    src_vocab_size: int = 64
    tgt_vocab_size: int = 64
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    src_embedding_dim: int = 64
    tgt_embedding_dim: int = 64
    encoder: RecurrentSpec = field(
        default_factory=lambda: RecurrentSpec("gru", 128, bidirectional=True)
    )
    decoder: RecurrentSpec = field(default_factory=lambda: RecurrentSpec("gru", 128))
    attention: str = "bahdanau"
    attention_dim: int = 64
    dropout: float = 0.0

    def __post_init__(self) -> None:
        owner = "Seq2SeqConfig"
        check_positive(
            owner,
            src_vocab_size=self.src_vocab_size,
            tgt_vocab_size=self.tgt_vocab_size,
            src_embedding_dim=self.src_embedding_dim,
            tgt_embedding_dim=self.tgt_embedding_dim,
            attention_dim=self.attention_dim,
        )
        check_choice(owner, "attention", self.attention, ATTENTIONS)
        check_probability(owner, dropout=self.dropout)
        check_special_tokens(owner, self.tgt_vocab_size, self.pad_id, self.bos_id, self.eos_id)
        if self.pad_id >= self.src_vocab_size:
            raise ValueError(
                f"{owner}: pad_id={self.pad_id} must be a source id too "
                f"(< src_vocab_size={self.src_vocab_size})"
            )
        if self.decoder.bidirectional:
            raise ValueError(f"{owner}: the decoder must be unidirectional (bidirectional=False)")


@register_model("seq2seq", description="many-to-many encoder-decoder with attention")
class Seq2Seq(nn.Module):
    r"""Encoder–decoder: a padded source sequence → a target sequence.

    1. **Encoder**: source embedding → recurrent stack (bidirectional by default)
       over the padded source with its lengths → outputs ``(B, S, M)`` and final state.
    2. **Bridge** (:class:`~rnnkit.models.states.Bridge`): the encoder's top-layer
       final state (``[h_fwd; h_bwd]``) → the decoder's initial state via
       ``tanh(W u + b)``.
    3. **Decoder** (:class:`~rnnkit.models.RNNDecoder`): previous token → step →
       attention over the encoder outputs (padded source positions get weight
       exactly 0) → next-token logits.

    Training: ``logits = model(src, src_lengths, tgt_in)`` with ``tgt_in = [BOS, y_1..y_n]``
    and targets ``tgt_out = [y_1..y_n, EOS]`` (padded with ``pad_id``); the loss is
    ``cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=pad_id)``.

    Shape:
        ``src (B, S)`` ids, ``src_lengths (B,)``, ``tgt_in (B, T)`` → logits ``(B, T, V)``.

    Example::

        >>> model = Seq2Seq(Seq2SeqConfig(src_vocab_size=40, tgt_vocab_size=14))
        >>> logits = model(src, src_lengths, tgt_in)                 # (B, T, 14)
        >>> model.greedy_decode(src, src_lengths, max_len=12)          # (B, <=12)
        >>> model.beam_search(src, src_lengths, beam_size=5, max_len=12)
    """

    Config = Seq2SeqConfig

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        self.src_embedding = nn.Embedding(
            config.src_vocab_size, config.src_embedding_dim, padding_idx=config.pad_id
        )
        init_embedding_(self.src_embedding)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = build_recurrent(config.encoder, config.src_embedding_dim)
        encoded = probe_stack(self.encoder, config.src_embedding_dim)
        self.num_directions = 2 if config.encoder.bidirectional else 1
        self.decoder = RNNDecoder(
            config.tgt_vocab_size,
            config.tgt_embedding_dim,
            config.decoder,
            attention=config.attention,
            memory_size=encoded.output_size,
            attention_dim=config.attention_dim,
            dropout=config.dropout,
            pad_id=config.pad_id,
            bos_id=config.bos_id,
            eos_id=config.eos_id,
        )
        sources = [self.num_directions * size for size in encoded.leaf_sizes]
        self.bridge = Bridge(sources, self.decoder.shape)
        init_forget_bias_(self)

    def encode(
        self, src: Tensor, src_lengths: Tensor | Sequence[int] | None
    ) -> tuple[EncoderMemory, State]:
        """Run the encoder: the decoder's memory and its initial state.

        Returns:
            ``(memory, state)``: memory values ``(B, S, M)`` with mask ``(B, S)``;
            state leaves ``(L_dec, B, H_dec)``.
        """
        if src.dim() != 2 or src.is_floating_point():
            raise ValueError(
                f"Seq2Seq: expected src token ids of shape (B, S), got {src.dtype} "
                f"of shape {tuple(src.shape)}"
            )
        if src_lengths is not None:
            src_lengths = check_lengths(src_lengths, src.shape[1], src.shape[0], "Seq2Seq")
        x = self.dropout(self.src_embedding(src))  # (B, S, E)
        values, final = self.encoder(x, lengths=src_lengths)  # (B, S, M)
        mask = length_mask(src_lengths, src.shape[1], device=src.device)  # (B, S)
        state = self.bridge(top_layer(final, self.num_directions))
        return self.decoder.memory(values, mask), state

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor | Sequence[int] | None,
        tgt_in: Tensor,
        *,
        teacher_forcing_ratio: float = 1.0,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """Next-token logits for every target position.

        Arguments:
            src: ``(B, S)`` source ids, padded with ``pad_id``.
            src_lengths: ``(B,)`` valid source lengths (``None``: all full).
            tgt_in: ``(B, T)`` decoder inputs, starting with ``bos_id``.
            teacher_forcing_ratio: probability of feeding the true previous token
                (per step and sequence); otherwise the argmax of the model's previous
                prediction is fed. ``1.0`` is plain teacher forcing.
            return_attention: also return the attention weights ``(B, T, S)``
                (``None`` with ``attention="none"``).

        Returns:
            logits ``(B, T, V)`` (no softmax), or ``(logits, weights)``.
        """
        if tgt_in.dim() != 2 or tgt_in.shape[0] != src.shape[0]:
            raise ValueError(
                f"Seq2Seq: expected tgt_in of shape ({src.shape[0]}, T), got {tuple(tgt_in.shape)}"
            )
        memory, state = self.encode(src, src_lengths)
        logits, _, weights = self.decoder(
            tgt_in, state, memory, teacher_forcing_ratio=teacher_forcing_ratio
        )
        return (logits, weights) if return_attention else logits

    @torch.no_grad()
    def attention_weights(
        self, src: Tensor, src_lengths: Tensor | Sequence[int] | None, tgt_in: Tensor
    ) -> Tensor:
        """Attention weights ``(B, T, S)`` of a teacher-forced pass, for plotting.

        Row ``t`` shows where the decoder looked to predict ``tgt_out[t]``.
        """
        if self.decoder.attention is None:
            raise ValueError("Seq2Seq: attention='none' has no attention weights")
        with eval_mode(self):
            _, weights = self(src, src_lengths, tgt_in, return_attention=True)
        assert weights is not None
        return weights

    @torch.no_grad()
    def greedy_decode(
        self,
        src: Tensor,
        src_lengths: Tensor | Sequence[int] | None,
        *,
        max_len: int,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """The most likely token at every step.

        Returns:
            ``(B, L)`` token ids, ``L ≤ max_len``: no ``BOS``, stops at ``EOS`` (not
            included), ``pad_id`` after the end. With ``return_attention`` also the
            weights ``(B, L, S)``.
        """
        with eval_mode(self):
            memory, state = self.encode(src, src_lengths)
            tokens, weights = greedy_search(self.decoder, state, memory, max_len=max_len)
        return (tokens, weights) if return_attention else tokens

    @torch.no_grad()
    def beam_search(
        self,
        src: Tensor,
        src_lengths: Tensor | Sequence[int] | None,
        *,
        beam_size: int = 4,
        max_len: int,
        length_penalty: float = 1.0,
    ) -> Tensor:
        """Beam search (:func:`~rnnkit.models.decoding.beam_search`), batched over ``B``.

        Returns:
            ``(B, L)`` token ids, as :meth:`greedy_decode`; ``beam_size=1`` gives
            exactly the greedy result.
        """
        with eval_mode(self):
            memory, state = self.encode(src, src_lengths)
            return beam_search(
                self.decoder,
                state,
                memory,
                beam_size=beam_size,
                max_len=max_len,
                length_penalty=length_penalty,
            )

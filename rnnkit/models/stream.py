"""Streaming models that generate: feed tokens one at a time (or a chunk), carrying state.

* :class:`TokenStream` — a :class:`~rnnkit.models.LanguageModel` or a unidirectional
  :class:`~rnnkit.models.SequenceTagger`: tokens in, logits out at every step.
* :class:`DecoderStream` — the decoder of a :class:`~rnnkit.models.Seq2Seq` or a
  :class:`~rnnkit.models.ConditionalGenerator`: the source (or image) is encoded once,
  then each call feeds the previous token.

:func:`stream` picks the right one (and :class:`rnnkit.layers.stream.Stream` for a layer).
Outputs equal the full-sequence call of the model; put the model in eval mode first
(a reloaded run is), so that dropout does not differ between the two.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from rnnkit.cells.base import State
from rnnkit.layers.stream import Stream, streaming_refusal
from rnnkit.models.conditional import ConditionalGenerator
from rnnkit.models.decoder import EncoderMemory
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.models.tagger import LanguageModel, SequenceTagger


class TokenStream:
    """A per-step model (language model, unidirectional tagger) fed piece by piece.

    Arguments:
        model: called as ``model(tokens, lengths, state) -> (logits, state)``.
        state: the recurrent state to start from, or ``None`` (zeros).

    Shape:
        :meth:`step`: tokens ``(B,)`` → logits ``(B, V)``; :meth:`chunk`: ``(B, T')`` →
        ``(B, T', V)``.

    Example::

        >>> stream = TokenStream(lm.eval())
        >>> logits = stream.chunk(prompt)                 # (B, T0, V)
        >>> token = logits[:, -1].argmax(-1)
        >>> logits = stream.step(token)                   # (B, V), state carried
    """

    def __init__(self, model: nn.Module, state: State | None = None) -> None:
        refusal = streaming_refusal(model.rnn)
        if refusal is not None:
            raise ValueError(refusal)
        self.model, self.state = model, state

    def step(self, tokens: Tensor) -> Tensor:
        """Feed one token per sequence ``(B,)``; returns the next-step logits ``(B, V)``."""
        if tokens.dim() != 1:
            raise ValueError(
                f"{type(self).__name__}.step: expected tokens of shape (B,), "
                f"got shape {tuple(tokens.shape)}"
            )
        return self.chunk(tokens.unsqueeze(1))[:, 0]

    def chunk(self, tokens: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        """Feed ``T'`` tokens per sequence ``(B, T')``; returns logits ``(B, T', V)``."""
        logits, self.state = self.model(tokens, lengths, self.state)
        return logits

    def reset(self, state: State | None = None) -> None:
        """Start a new sequence from ``state`` (``None``: zeros)."""
        self.state = state


class DecoderStream:
    """An encoder–decoder's decoder fed one token at a time after one encoding.

    Arguments:
        model: a :class:`~rnnkit.models.Seq2Seq` or :class:`~rnnkit.models.ConditionalGenerator`.
        memory, state: what its ``encode`` returned.

    Attributes:
        state: the decoder state after the last token fed.
        weights: the last step's attention weights ``(B, S)``, or ``None``.

    Shape:
        :meth:`step`: previous tokens ``(B,)`` (``bos_id`` first) → logits ``(B, V)``.
    """

    def __init__(self, model: nn.Module, memory: EncoderMemory, state: State) -> None:
        refusal = streaming_refusal(model.decoder.rnn)
        if refusal is not None:
            raise ValueError(refusal)
        self.decoder, self.memory, self.state = model.decoder, memory, state
        self.weights: Tensor | None = None

    @classmethod
    def encode(cls, model: nn.Module, *inputs: Any) -> DecoderStream:
        """Encode the source (``Seq2Seq``: ``src, src_lengths``; ``ConditionalGenerator``:
        ``features``) and return a stream at the decoder's initial state."""
        memory, state = model.encode(*inputs)
        return cls(model, memory, state)

    def step(self, tokens: Tensor) -> Tensor:
        """Feed the previous tokens ``(B,)``; returns the next-token logits ``(B, V)``."""
        logits, self.state, self.weights = self.decoder.step(tokens, self.state, self.memory)
        return logits


def stream(target: nn.Module, *inputs: Any, state: State | None = None) -> Any:
    """A stream over a layer or a generating model.

    Arguments:
        target: a recurrent layer (→ :class:`~rnnkit.layers.stream.Stream`), a
            ``LanguageModel`` or unidirectional ``SequenceTagger`` (→ :class:`TokenStream`),
            a ``Seq2Seq`` or ``ConditionalGenerator`` (→ :class:`DecoderStream`, which
            needs the ``inputs`` of its ``encode``).
        inputs: the source for an encoder–decoder: ``src, src_lengths`` or ``features``.
        state: a state to start from (layers and token models).

    Returns:
        The stream.

    Example::

        >>> s = stream(seq2seq_model.eval(), src, src_lengths)
        >>> logits = s.step(torch.full((B,), bos_id))
    """
    if isinstance(target, Seq2Seq | ConditionalGenerator):
        if not inputs:
            raise ValueError(
                f"stream: a {type(target).__name__} needs its source to encode "
                "(Seq2Seq: src, src_lengths; ConditionalGenerator: features)"
            )
        return DecoderStream.encode(target, *inputs)
    if inputs:
        raise ValueError(f"stream: {type(target).__name__} takes no source inputs")
    if isinstance(target, LanguageModel | SequenceTagger):
        return TokenStream(target, state)
    return Stream(target, state)

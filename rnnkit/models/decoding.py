"""Turning next-token logits into sequences: sampling, greedy search and beam search.

Conventions shared by every decoding method in rnnkit:

* decoding starts from ``bos_id``; outputs do **not** include the ``BOS``;
* a sequence stops at ``eos_id``; the ``EOS`` is **not** included in the output,
  and positions after a sequence's end hold ``pad_id``;
* outputs are ``(B, L)`` with ``L ≤ max_len`` the longest sequence in the batch;
* the model runs in eval mode (no dropout) for the call, and its previous mode is
  restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import State, map_state, state_leaves
from rnnkit.models.decoder import EncoderMemory


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for a block, then restore its previous mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def sample_next_token(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Sample one token per row from ``logits (B, V)``.

    .. math:: p(v) \propto \exp(z_v / \tau) \quad \text{over the } k \text{ largest } z_v

    Arguments:
        logits: unnormalised scores ``(B, V)``.
        temperature: ``τ > 0``; below 1 sharpens the distribution, above 1 flattens it.
        top_k: sample only among the ``k`` most likely tokens (``k = 1`` is greedy);
            ``None`` for all of them.
        generator: a ``torch.Generator`` for reproducible samples.

    Returns:
        ``(B,)`` token ids.
    """
    check_sampling(temperature, top_k)
    logits = logits.float() / temperature  # (B, V)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1) k-th largest score
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)


def check_sampling(temperature: float, top_k: int | None) -> None:
    """Raise a ``ValueError`` for a temperature ``<= 0`` or a ``top_k < 1``."""
    if not temperature > 0:
        raise ValueError(
            f"temperature must be > 0, got {temperature!r} (use top_k=1 for greedy decoding)"
        )
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 or None, got {top_k!r}")


class StepDecoder(Protocol):
    """What the search functions need from a decoder (:class:`~rnnkit.models.RNNDecoder`)."""

    pad_id: int
    bos_id: int
    eos_id: int

    def step(
        self, tokens: Tensor, state: State, memory: EncoderMemory
    ) -> tuple[Tensor, State, Tensor | None]: ...

    def predict(self, logits: Tensor) -> Tensor: ...

    def mask_special(self, scores: Tensor) -> Tensor: ...


def greedy_search(
    decoder: StepDecoder, state: State, memory: EncoderMemory, *, max_len: int
) -> tuple[Tensor, Tensor | None]:
    """Pick the most likely token at every step.

    Arguments:
        decoder: the decoder (its ``step`` and special tokens).
        state: initial state, leaves ``(L, B, H)``.
        memory: what the decoder reads (batch ``B``).
        max_len: the most tokens to emit per sequence (the ``EOS`` not counted).

    Returns:
        ``(tokens (B, L), attention weights (B, L, S) or None)``, ``L ≤ max_len``.
    """
    _check_max_len(max_len)
    batch, device = _batch_size(state), _device(state)
    tokens = torch.full((batch,), decoder.bos_id, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)
    out, weights = [], []
    for _ in range(max_len):
        logits, state, w = decoder.step(tokens, state, memory)  # (B, V)
        tokens = decoder.predict(logits)  # (B,)
        finished = finished | (tokens == decoder.eos_id)
        out.append(tokens.masked_fill(finished, decoder.pad_id))  # EOS and after: pad
        weights.append(w)
        lengths += (~finished).long()
        if bool(finished.all()):
            break
    width = int(lengths.max())
    result = torch.stack(out, dim=1)[:, :width]  # (B, L)
    attention = None if weights[0] is None else torch.stack(weights, dim=1)[:, :width]
    return result, attention


def beam_search(
    decoder: StepDecoder,
    state: State,
    memory: EncoderMemory,
    *,
    beam_size: int,
    max_len: int,
    length_penalty: float = 1.0,
) -> Tensor:
    r"""Keep the ``K = beam_size`` best partial sequences per batch entry at every step.

    A hypothesis :math:`y_{1..n}` scores :math:`\log p(y_{1..n}) / n^{\alpha}` where
    ``α = length_penalty`` (0: raw log-probability, which favours short outputs;
    1: mean log-probability per token) and ``n`` counts the scored tokens (the
    ``EOS`` included).

    Each step expands every live hypothesis by every token and takes the ``2K`` best
    candidates. Those among the first ``K`` that end in ``EOS`` are *finished*; the
    ``K`` best that do not end in ``EOS`` stay live. A batch entry is done when no live
    hypothesis can still beat its best finished one: log-probabilities only fall as a
    hypothesis grows, so a live score ``s ≤ 0`` can at best reach ``s / max_len^α``
    (``α ≥ 0``). At ``max_len`` the live hypotheses compete with the finished ones
    (without an ``EOS`` term). The best-scoring hypothesis wins.

    With ``K = 1`` and ``α = 0`` this is exactly greedy search: the greedy ``EOS`` is the
    best candidate, so nothing live can beat it. With ``α > 0`` a single beam may go on
    past the greedy ``EOS`` when a longer sequence could still score better per token.

    Arguments:
        decoder: the decoder (its ``step`` and special tokens).
        state: initial state, leaves ``(L, B, H)``.
        memory: what the decoder reads (batch ``B``).
        beam_size: ``K >= 1``.
        max_len: the most tokens per sequence (the ``EOS`` not counted).
        length_penalty: ``α`` above.

    Returns:
        ``(B, L)`` tokens, ``L ≤ max_len``.
    """
    _check_max_len(max_len)
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be an integer >= 1, got {beam_size!r}")
    beams = _Beams(decoder, _batch_size(state), beam_size, _device(state), max_len, length_penalty)
    state = map_state(lambda s: s.repeat_interleave(beam_size, dim=1), state)  # (L, B*K, H)
    memory = memory.repeat(beam_size)
    for step in range(max_len):
        logits, state, _ = decoder.step(beams.tokens, state, memory)  # (B*K, V)
        order = beams.advance(logits, step)  # (B*K,) rows of the surviving hypotheses
        if beams.all_done:
            break
        state = map_state(lambda s, o=order: s.index_select(1, o), state)
    return beams.best()


class _Beams:
    """The bookkeeping of :func:`beam_search`: live and finished hypotheses."""

    def __init__(
        self,
        decoder: StepDecoder,
        batch: int,
        beam_size: int,
        device: torch.device,
        max_len: int,
        length_penalty: float,
    ) -> None:
        self.decoder, self.batch, self.k = decoder, batch, beam_size
        self.max_len, self.alpha = max_len, length_penalty
        # Only beam 0 is live at first: the others would duplicate it.
        self.scores = torch.full((batch, beam_size), float("-inf"), device=device)
        self.scores[:, 0] = 0.0  # (B, K) log-probabilities of the live hypotheses
        self.history = torch.zeros(batch, beam_size, 0, dtype=torch.long, device=device)
        self.tokens = torch.full((batch * beam_size,), decoder.bos_id, device=device)
        self.finished: list[list[tuple[float, Tensor]]] = [[] for _ in range(batch)]
        self.best_finished = torch.full((batch,), float("-inf"), device=device)
        self.done = torch.zeros(batch, dtype=torch.bool, device=device)

    @property
    def all_done(self) -> bool:
        return bool(self.done.all())

    def advance(self, logits: Tensor, step: int) -> Tensor:
        """Extend the beams by one token; returns the state rows to keep ``(B*K,)``."""
        b, k = self.batch, self.k
        log_probs = self.decoder.mask_special(F.log_softmax(logits.float(), dim=-1))  # (B*K, V)
        vocab = log_probs.shape[-1]
        candidates = self.scores.unsqueeze(-1) + log_probs.view(b, k, vocab)  # (B, K, V)
        top_scores, top_index = candidates.view(b, k * vocab).topk(2 * k, dim=1)  # (B, 2K)
        beam, token = top_index // vocab, top_index % vocab  # (B, 2K) each
        is_eos = token == self.decoder.eos_id
        self._collect_finished(top_scores, beam, is_eos, step)
        # The K best candidates that do not end in EOS stay live (stable order).
        rank = torch.where(is_eos, 2 * k, torch.arange(2 * k, device=beam.device))  # (B, 2K)
        keep = rank.argsort(dim=1, stable=True)[:, :k]  # (B, K)
        live_beam = beam.gather(1, keep)  # (B, K)
        self.scores = top_scores.gather(1, keep)
        self.tokens = token.gather(1, keep).view(-1)  # (B*K,)
        past = self.history.gather(1, live_beam.unsqueeze(-1).expand(-1, -1, step))
        self.history = torch.cat([past, self.tokens.view(b, k, 1)], dim=2)  # (B, K, step + 1)
        self.done |= self.best_finished >= self._best_reachable(step + 1)
        return (torch.arange(b, device=beam.device).unsqueeze(1) * k + live_beam).view(-1)

    def _collect_finished(self, scores: Tensor, beam: Tensor, is_eos: Tensor, step: int) -> None:
        k = self.k
        ends = is_eos[:, :k] & scores[:, :k].isfinite() & ~self.done.unsqueeze(1)  # (B, K)
        for b, j in ends.nonzero().tolist():
            sequence = self.history[b, int(beam[b, j])]  # (step,) tokens before the EOS
            score = self._normalise(float(scores[b, j]), step + 1)  # EOS counted
            self.finished[b].append((score, sequence))
            self.best_finished[b] = max(float(self.best_finished[b]), score)

    def _best_reachable(self, length: int) -> Tensor:
        """``(B,)`` the best normalised score any descendant of a live hypothesis can get."""
        best = self.scores.max(dim=1).values  # (B,) raw, <= 0, and it can only fall
        if self.alpha >= 0:
            return best / self.max_len**self.alpha  # the longest length divides the most
        return best / (length + 1) ** self.alpha

    def _normalise(self, score: float, length: int) -> float:
        return score / length**self.alpha

    def best(self) -> Tensor:
        """The best hypothesis of every batch entry, padded: ``(B, L)``."""
        length = self.history.shape[2]
        chosen = []
        for b in range(self.batch):
            pool = list(self.finished[b])
            if not bool(self.done[b]):  # max_len reached: live hypotheses compete too
                pool += [
                    (self._normalise(float(s), length), self.history[b, j])
                    for j, s in enumerate(self.scores[b].tolist())
                    if s > float("-inf")
                ]
            chosen.append(
                max(pool, key=lambda item: item[0])[1] if pool else self.history[b, 0, :0]
            )
        width = max(len(c) for c in chosen)
        out = self.history.new_full((self.batch, width), self.decoder.pad_id)
        for b, sequence in enumerate(chosen):
            out[b, : len(sequence)] = sequence
        return out


def _check_max_len(max_len: int) -> None:
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be an integer >= 1, got {max_len!r}")


def _batch_size(state: State) -> int:
    return state_leaves(state)[0].shape[1]


def _device(state: State) -> torch.device:
    return state_leaves(state)[0].device

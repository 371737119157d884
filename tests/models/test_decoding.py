"""Greedy and beam search on a scripted decoder whose probabilities are known by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from rnnkit.models import EncoderMemory, beam_search, greedy_search, sample_next_token

PAD, BOS, EOS, A, B = 0, 1, 2, 3, 4


class BigramDecoder:
    """``p(next | previous)`` from a table per batch entry (chosen by ``memory.feed``).

    The state is a step counter ``(1, N, 1)`` that only carries the batch size.
    """

    pad_id, bos_id, eos_id = PAD, BOS, EOS

    def __init__(self, tables: list[dict[int, dict[int, float]]]) -> None:
        self.tables = tables

    def step(self, tokens: Tensor, state: Tensor, memory: EncoderMemory):
        rows = []
        for token, which in zip(tokens.tolist(), memory.feed[:, 0].long().tolist(), strict=True):
            probs = torch.full((5,), 1e-9)
            for nxt, p in self.tables[which].get(token, {EOS: 1.0}).items():
                probs[nxt] = p
            rows.append(probs.log())
        return torch.stack(rows), state + 1, None

    def predict(self, logits: Tensor) -> Tensor:
        return self.mask_special(logits).argmax(-1)

    def mask_special(self, scores: Tensor) -> Tensor:
        return scores.index_fill(-1, torch.tensor([PAD, BOS]), float("-inf"))


# Greedy takes A (0.5) then EOS (0.4): p = 0.20; beam finds B (0.4) then EOS (0.9): p = 0.36.
GARDEN_PATH = {
    BOS: {A: 0.5, B: 0.4, EOS: 0.1},
    A: {A: 0.3, B: 0.3, EOS: 0.4},
    B: {EOS: 0.9, A: 0.1},
}
# Greedy never ends (A, A, A, ...). Beam search finishes [] (0.1) and [A, B] (0.9 * 0.3
# * 1.0 = 0.27) on the way, but the live [A, A, A] (0.324) beats them at max_len = 3.
ENDLESS = {BOS: {A: 0.9, EOS: 0.1}, A: {A: 0.6, B: 0.3, EOS: 0.1}, B: {EOS: 1.0}}
# Raw log-probability prefers stopping at once (0.45 vs 0.55 * 0.7 = 0.385);
# per-token (length_penalty=1) prefers [A]: log(0.385) / 2 > log(0.45) / 1.
SHORT_OR_LONG = {BOS: {A: 0.55, EOS: 0.45}, A: {EOS: 0.7, B: 0.3}}


def _run(tables, which: list[int]):
    decoder = BigramDecoder(tables)
    state = torch.zeros(1, len(which), 1)
    memory = EncoderMemory(feed=torch.tensor(which, dtype=torch.float).unsqueeze(1))
    return decoder, state, memory


def test_greedy_stops_at_eos_and_pads_after() -> None:
    decoder, state, memory = _run([GARDEN_PATH, ENDLESS], [0, 1, 0])
    tokens, attention = greedy_search(decoder, state, memory, max_len=4)
    assert tokens.tolist() == [[A, PAD, PAD, PAD], [A, A, A, A], [A, PAD, PAD, PAD]]
    assert attention is None


def test_greedy_output_is_as_wide_as_the_longest_sequence() -> None:
    decoder, state, memory = _run([GARDEN_PATH], [0, 0])
    tokens, _ = greedy_search(decoder, state, memory, max_len=10)
    assert tokens.tolist() == [[A], [A]]


def test_beam_search_finds_the_better_sequence() -> None:
    decoder, state, memory = _run([GARDEN_PATH, ENDLESS], [0, 1])
    out = beam_search(decoder, state, memory, beam_size=2, max_len=3, length_penalty=0.0)
    assert out.tolist() == [[B, PAD, PAD], [A, A, A]]


def test_beam_search_at_max_len_keeps_live_hypotheses() -> None:
    decoder, state, memory = _run([ENDLESS], [0])
    out = beam_search(decoder, state, memory, beam_size=2, max_len=2, length_penalty=0.0)
    assert out.tolist() == [[A, A]]  # 0.54 unfinished beats [] at 0.1


def test_beam_size_1_without_length_penalty_is_greedy() -> None:
    decoder, state, memory = _run([GARDEN_PATH, ENDLESS, SHORT_OR_LONG], [0, 1, 2])
    greedy, _ = greedy_search(decoder, state, memory, max_len=4)
    beam = beam_search(decoder, state, memory, beam_size=1, max_len=4, length_penalty=0.0)
    assert torch.equal(beam, greedy)


def test_a_finished_hypothesis_stops_the_search_only_when_nothing_live_can_beat_it() -> None:
    """[A, B] ends at 0.27; [A, A, ...] stays live at 0.54 → 0.324 → 0.19: the search
    keeps going while a live score is above 0.27 and returns [A, B] once none is."""
    decoder, state, memory = _run([ENDLESS], [0])
    out = beam_search(decoder, state, memory, beam_size=2, max_len=8, length_penalty=0.0)
    assert out.tolist() == [[A, B]]


@pytest.mark.parametrize(("alpha", "expected"), [(0.0, []), (1.0, [A])])
def test_length_penalty(alpha: float, expected: list[int]) -> None:
    decoder, state, memory = _run([SHORT_OR_LONG], [0])
    out = beam_search(decoder, state, memory, beam_size=2, max_len=5, length_penalty=alpha)
    assert out.tolist() == [expected]
    assert math.log(0.385) / 2 > math.log(0.45) > math.log(0.385)  # the reason, by hand


def test_search_argument_errors() -> None:
    decoder, state, memory = _run([GARDEN_PATH], [0])
    with pytest.raises(ValueError, match="beam_size must be an integer >= 1, got 0"):
        beam_search(decoder, state, memory, beam_size=0, max_len=3)
    with pytest.raises(ValueError, match="max_len must be an integer >= 1, got 0"):
        greedy_search(decoder, state, memory, max_len=0)


def test_sample_next_token() -> None:
    logits = torch.randn(50, 7)
    assert torch.equal(sample_next_token(logits, top_k=1), logits.argmax(-1))
    gen = torch.Generator().manual_seed(0)
    a = sample_next_token(logits, temperature=0.7, generator=gen)
    b = sample_next_token(logits, temperature=0.7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    # A very low temperature is greedy in practice; top_k larger than V is all of V.
    assert torch.equal(sample_next_token(logits, temperature=1e-4), logits.argmax(-1))
    assert sample_next_token(logits, top_k=100).shape == (50,)

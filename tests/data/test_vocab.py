"""The vocabulary: id order, lookup both ways, lower-casing, JSON round trips."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data import DataFormatError, DataNotFoundError, Vocab

_corpus = st.lists(st.lists(st.sampled_from(list("abcdefgh")), max_size=12), max_size=12)


@settings(max_examples=200, deadline=None)
@given(_corpus, st.integers(1, 3), st.none() | st.integers(0, 8))
def test_vocab_order_is_frequency_then_alphabetical(corpus, min_freq, max_size) -> None:
    vocab = Vocab.build(corpus, min_freq=min_freq, max_size=max_size)
    counts = Counter(t for doc in corpus for t in doc)
    expected = sorted(
        (t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t)
    )
    if max_size is not None:
        expected = expected[:max_size]
    assert vocab.tokens == ("<pad>", "<unk>", *expected)
    assert vocab.pad_id == 0 and vocab.unk_id == 1
    assert [vocab[t] for t in vocab.tokens] == list(range(len(vocab)))
    # The ids do not depend on the order the corpus was read in.
    assert Vocab.build(corpus[::-1], min_freq=min_freq, max_size=max_size) == vocab


def test_vocab_lookup_both_ways() -> None:
    vocab = Vocab.build([["b", "a", "b"], ["c"]], bos="<s>", eos="</s>")
    assert vocab.tokens[:4] == ("<pad>", "<unk>", "<s>", "</s>")
    assert vocab.specials == ("<pad>", "<unk>", "<s>", "</s>")
    ids = vocab.encode(["b", "zzz", "c"], add_bos=True, add_eos=True)
    assert ids == [2, vocab["b"], 1, vocab["c"], 3]
    assert vocab.decode(torch.tensor([vocab["a"], 0, 0]), skip_pad=True) == ["a"]
    assert vocab.token(vocab["a"]) == "a"
    assert "a" in vocab and "zzz" not in vocab and 3 not in vocab


def test_vocab_without_unk_raises_naming_the_token() -> None:
    vocab = Vocab.build([["a"]], unk=None)
    with pytest.raises(KeyError, match="'zebra' is not in the vocabulary"):
        vocab.encode(["zebra"])
    with pytest.raises(ValueError, match="no bos token"):
        vocab.encode(["a"], add_bos=True)


def test_vocab_lower_cases_when_counting_and_looking_up() -> None:
    vocab = Vocab.build([["The", "the", "THE", "cat"]], lower=True)
    assert vocab.tokens == ("<pad>", "<unk>", "the", "cat")
    assert vocab["ThE"] == vocab["the"] and "CAT" in vocab
    assert vocab.counts == {"the": 3, "cat": 1}


def test_vocab_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build([["a"]], min_freq=0)
    with pytest.raises(ValueError, match="unique"):
        Vocab(["a", "a"], pad=None, unk=None)
    with pytest.raises(ValueError, match="pad token '<pad>' is not among"):
        Vocab(["a"], unk=None)


def test_vocab_json_round_trip(tmp_path: Path) -> None:
    vocab = Vocab.build([["é", "b", "b"]], eos="</s>", extra_specials=["<mask>"], lower=True)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = Vocab.load(path)
    assert loaded == vocab and loaded.tokens == vocab.tokens and loaded.lower
    assert loaded.specials == ("<pad>", "<unk>", "</s>", "<mask>")
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == "rnnkit.Vocab/1"


def test_vocab_load_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="nothing"):
        Vocab.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFormatError, match="not a vocabulary JSON"):
        Vocab.load(bad)
    other = tmp_path / "other.json"
    other.write_text('{"format": "something/2"}', encoding="utf-8")
    with pytest.raises(DataFormatError, match="expected a vocabulary in format"):
        Vocab.load(other)

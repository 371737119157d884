"""Tokenisers, the vocabulary and pretrained word vectors."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data import (
    DataFormatError,
    DataNotFoundError,
    Vocab,
    basic_english,
    characters,
    get_tokenizer,
    load_word_vectors,
    whitespace,
)

# torchtext 0.18's _basic_english_normalize, verbatim in behaviour: the reference.
_TT_PATTERNS = [
    r"\'",
    r"\"",
    r"\.",
    r"<br \/>",
    r",",
    r"\(",
    r"\)",
    r"\!",
    r"\?",
    r"\;",
    r"\:",
    r"\s+",
]
_TT_REPLACEMENTS = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
_TT = list(zip((re.compile(p) for p in _TT_PATTERNS), _TT_REPLACEMENTS, strict=True))


def torchtext_basic_english(line: str) -> list[str]:
    line = line.lower()
    for pattern, replacement in _TT:
        line = pattern.sub(replacement, line)
    return line.split()


_PIECES = ["<br />", "<br", "/>", "a", "Bc", "'", '"', ".", ",", "(", ")", "!", "?", ";", ":"]
_PIECES += [" ", "  ", "\n", "\t", "\u00a0", "\u2003", "é", "İ", "ß", "x1", "<", "/", ">", "-"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_basic_english_matches_torchtext(text: str) -> None:
    assert basic_english(text) == torchtext_basic_english(text)


def test_basic_english_on_a_review() -> None:
    review = 'This "movie" was GREAT!<br /><br />I\'d watch it again (twice); really.'
    assert basic_english(review) == torchtext_basic_english(review)
    assert basic_english(review)[:5] == ["this", "movie", "was", "great", "!"]


def test_simple_tokenizers() -> None:
    assert characters("hell o") == ["h", "e", "l", "l", " ", "o"]
    assert whitespace(" to  be\nor ") == ["to", "be", "or"]
    assert get_tokenizer(None) is whitespace
    assert get_tokenizer("char") is characters
    custom = str.split
    assert get_tokenizer(custom) is custom


def test_unknown_tokenizer_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"basic_english.*whitespace"):
        get_tokenizer("spacy")


def test_hugging_face_tokenizer(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        ["the cat sat", "the dog"], trainers.WordLevelTrainer(special_tokens=["[UNK]"])
    )
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    hf = get_tokenizer(f"hf:{path}")
    assert hf("the cat ran") == ["the", "cat", "[UNK]"]


# --- Vocab ---------------------------------------------------------------------------------

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


# --- word vectors --------------------------------------------------------------------------


def _vocab() -> Vocab:
    return Vocab.build([["cat", "dog", "Paris", "zebra"]])


def test_glove_vectors_with_oov_report(tmp_path: Path) -> None:
    path = tmp_path / "glove.txt"
    path.write_text("cat 1 2 3\nthe 0 0 0\ndog 4 5 6\nparis 7 8 9\nbroken 1 2\n", encoding="utf-8")
    wv = load_word_vectors(path, _vocab(), init="zeros")
    vocab = _vocab()
    assert wv.weights.shape == (len(vocab), 3) and wv.weights.dtype == torch.float32
    assert wv.weights[vocab["cat"]].tolist() == [1, 2, 3]
    assert wv.weights[vocab["Paris"]].tolist() == [7, 8, 9]  # via its lower-cased form
    assert wv.weights[vocab["zebra"]].tolist() == [0, 0, 0]
    r = wv.report
    assert (r.dim, r.vectors_read, r.found, r.lowercase_matches) == (3, 4, 3, 1)
    assert r.missing == ["zebra"] and r.bad_lines == [5]
    assert r.coverage == pytest.approx(0.75)


def test_word2vec_header_gzip_and_normal_init(tmp_path: Path) -> None:
    path = tmp_path / "vectors.vec.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("2 2\ncat 1 -1\nzebra 3 -3\n")
    vocab = _vocab()
    wv = load_word_vectors(path, vocab, init="normal", seed=0)
    assert wv.report.dim == 2 and wv.report.found == 2
    assert wv.weights[vocab.pad_id].tolist() == [0, 0]  # pad stays zero
    missing = wv.weights[vocab["dog"]]
    assert missing.abs().sum() > 0  # random, not zero
    again = load_word_vectors(path, vocab, init="normal", seed=0)
    assert torch.equal(again.weights, wv.weights)  # seeded


def test_word_vectors_invalid_utf8_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes(b"cat 1 2\ncaf\xe9 3 4\n")
    wv = load_word_vectors(path, _vocab())
    assert wv.report.decode.replaced_bytes == 1 and wv.report.vectors_read == 2


def test_word_vectors_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="word-vectors"):
        load_word_vectors(tmp_path / "nope.txt", _vocab())
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty file"):
        load_word_vectors(empty, _vocab())
    with pytest.raises(ValueError, match="init"):
        load_word_vectors(empty, _vocab(), init="uniform")


def test_word_vectors_feed_an_embedding(tmp_path: Path) -> None:
    path = tmp_path / "glove.txt"
    path.write_text("cat 1 2\n", encoding="utf-8")
    vocab = _vocab()
    wv = load_word_vectors(path, vocab)
    emb = torch.nn.Embedding.from_pretrained(wv.weights, freeze=False, padding_idx=vocab.pad_id)
    out = emb(torch.tensor([[vocab["cat"], vocab.pad_id]]))
    assert out.shape == (1, 2, 2) and np.allclose(out[0, 0].tolist(), [1, 2])

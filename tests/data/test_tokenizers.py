"""Tokenisers: basic_english against torchtext's regexes, the simple ones, Hugging Face."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data import basic_english, characters, get_tokenizer, whitespace

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

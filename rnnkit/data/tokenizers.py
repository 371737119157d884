"""Tokenisers: functions from a string to a list of token strings.

This replaces torchtext's ``get_tokenizer``: ``get_tokenizer("basic_english")`` gives
the same tokens as torchtext's did, ``"characters"`` one token per character,
``"whitespace"`` ``str.split()``, and ``"hf:<tokenizer.json>"`` a Hugging Face
tokenizer (:class:`HFTokenizer`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "TOKENIZERS",
    "HFTokenizer",
    "Tokenizer",
    "basic_english",
    "characters",
    "get_tokenizer",
    "whitespace",
]

Tokenizer = Callable[[str], list[str]]
"""Any callable from a string to a list of token strings."""

# torchtext's basic_english pads these with spaces ('.' -> ' . ') and maps ';' and ':' to a
# space. One str.replace per character is several times faster than its chain of regex
# substitutions and gives the same tokens (a property test checks that against the regexes).
_SPACED = ("'", ".", ",", "(", ")", "!", "?")
_DROPPED = (";", ":")


def basic_english(text: str) -> list[str]:
    """torchtext's ``basic_english`` tokeniser: lower-case, split off punctuation.

    Lower-cases, removes ``"``, turns ``<br />`` (IMDB's line breaks) into a space,
    splits ``' . , ( ) ! ?`` into tokens of their own, drops ``; :`` and splits on
    whitespace, exactly as ``torchtext.data.get_tokenizer("basic_english")`` did.

    Example::

        >>> basic_english("It's GREAT!<br />Really.")
        ['it', "'", 's', 'great', '!', 'really', '.']
    """
    text = text.lower().replace('"', "").replace("<br />", " ")
    for char in _SPACED:
        text = text.replace(char, f" {char} ")
    for char in _DROPPED:
        text = text.replace(char, " ")
    return text.split()


def characters(text: str) -> list[str]:
    """One token per character, whitespace included.

    Example::

        >>> characters("hell")
        ['h', 'e', 'l', 'l']
    """
    return list(text)


def whitespace(text: str) -> list[str]:
    """Split on runs of whitespace (``str.split()``).

    Example::

        >>> whitespace("to be  or")
        ['to', 'be', 'or']
    """
    return text.split()


class HFTokenizer:
    """A Hugging Face ``tokenizers.Tokenizer`` as a token-string tokeniser.

    Needs the optional extra ``pip install "rnnkit[tokenizers]"``.

    Arguments:
        tokenizer: a ``tokenizers.Tokenizer``.
        add_special_tokens: let the tokenizer's post-processor add its specials.

    Example::

        >>> tok = HFTokenizer.from_file("tokenizer.json")  # doctest: +SKIP
        >>> tok("Hello world")                             # doctest: +SKIP
        ['hello', 'world']
    """

    def __init__(self, tokenizer: Any, *, add_special_tokens: bool = False) -> None:
        self.tokenizer = tokenizer
        self.add_special_tokens = add_special_tokens

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> HFTokenizer:
        """Load a ``tokenizer.json`` file."""
        return cls(_hf_tokenizers().Tokenizer.from_file(str(path)), **kwargs)

    def __call__(self, text: str) -> list[str]:
        return list(self.tokenizer.encode(text, add_special_tokens=self.add_special_tokens).tokens)


def _hf_tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Hugging Face tokenizers are an optional extra: pip install 'rnnkit[tokenizers]'"
        ) from err
    return tokenizers


TOKENIZERS: dict[str, Tokenizer] = {
    "basic_english": basic_english,
    "characters": characters,
    "char": characters,
    "whitespace": whitespace,
}
"""Tokenisers by name; ``get_tokenizer`` also accepts ``"hf:<path/to/tokenizer.json>"``."""


def get_tokenizer(spec: str | Tokenizer | None = "basic_english") -> Tokenizer:
    """A tokeniser from a name, a ``tokenizer.json`` path, or a callable.

    Arguments:
        spec: ``"basic_english"``, ``"characters"`` (``"char"``), ``"whitespace"``,
            ``"hf:path/to/tokenizer.json"`` (Hugging Face ``tokenizers``), any callable
            ``str -> list[str]``, or ``None`` for ``whitespace`` (torchtext's default).

    Example::

        >>> get_tokenizer("basic_english")("Hi, there")
        ['hi', ',', 'there']
    """
    if spec is None:
        return whitespace
    if callable(spec):
        return spec
    if spec.startswith("hf:"):
        return HFTokenizer.from_file(spec[3:])
    try:
        return TOKENIZERS[spec]
    except KeyError:
        names = ", ".join(sorted(TOKENIZERS))
        raise ValueError(
            f"unknown tokenizer {spec!r}; expected one of {names}, 'hf:<tokenizer.json>' "
            "or a callable"
        ) from None

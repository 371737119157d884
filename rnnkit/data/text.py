"""Text: tokenisers, the :class:`Vocab`, and pretrained word vectors.

This replaces torchtext's ``get_tokenizer``, ``Field(lower=True)``, ``build_vocab``
and ``Vectors``:

===============================================  ==========================================
torchtext (legacy, removed)                      rnnkit
===============================================  ==========================================
``get_tokenizer("basic_english")``               ``get_tokenizer("basic_english")``
``TEXT.build_vocab(train, max_size=N)``          ``Vocab.build(token_lists, max_size=N)``
``TEXT.vocab.stoi[w]`` / ``TEXT.vocab.itos[i]``  ``vocab[w]`` / ``vocab.token(i)``
``TEXT.build_vocab(train, vectors=...)``         ``load_word_vectors(path, vocab).weights``
===============================================  ==========================================
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data.errors import DataFormatError, DataNotFoundError
from rnnkit.data.files import DecodeReport, decode_utf8

__all__ = [
    "TOKENIZERS",
    "HFTokenizer",
    "Tokenizer",
    "VectorsReport",
    "Vocab",
    "WordVectors",
    "basic_english",
    "characters",
    "get_tokenizer",
    "load_word_vectors",
    "whitespace",
]

Tokenizer = Callable[[str], list[str]]
"""Any callable from a string to a list of token strings."""


# --- tokenisers ----------------------------------------------------------------------------

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


# --- vocabulary ----------------------------------------------------------------------------


class _Lookup(dict[str, int]):
    """token → id, with a fallback id for unknown tokens (C-speed hits, Python only on misses)."""

    def __init__(self, items: Iterable[tuple[str, int]], default: int | None) -> None:
        super().__init__(items)
        self.default = default

    def __missing__(self, token: str) -> int:
        if self.default is None:
            raise KeyError(
                f"token {token!r} is not in the vocabulary ({len(self)} tokens) and it has "
                "no unk token"
            )
        return self.default


_FORMAT = "rnnkit.Vocab/1"


class Vocab:
    """A token ↔ id mapping with special tokens.

    Ids are: the specials first (``pad`` = 0, ``unk`` = 1, then ``bos``, ``eos`` and any
    extra specials, each only if set), then tokens by descending frequency; ties break
    alphabetically (as torchtext's legacy ``Vocab`` did), so the ids do not depend on
    the order the corpus was read in. Pad id 0 matches Keras's ``pad_sequences`` default.

    Arguments:
        tokens: every token, id order, specials included.
        pad, unk, bos, eos: the special tokens (each must be in ``tokens``) or ``None``.
        lower: lower-case tokens before lookup (set by :meth:`build` when it counted
            lower-cased tokens).
        counts: optional token frequencies from building, kept for inspection.

    Example::

        >>> v = Vocab.build([["a", "b", "b"], ["c", "b", "a"]])
        >>> v.tokens
        ('<pad>', '<unk>', 'b', 'a', 'c')
        >>> v.encode(["b", "zebra"]), v.decode([2, 4])
        ([2, 1], ['b', 'c'])
    """

    def __init__(
        self,
        tokens: Sequence[str],
        *,
        pad: str | None = "<pad>",
        unk: str | None = "<unk>",
        bos: str | None = None,
        eos: str | None = None,
        extra_specials: Sequence[str] = (),
        lower: bool = False,
        counts: Mapping[str, int] | None = None,
    ) -> None:
        self._itos = tuple(tokens)
        if len(set(self._itos)) != len(self._itos):
            dupes = [t for t, n in Counter(self._itos).items() if n > 1][:10]
            raise ValueError(f"vocabulary tokens must be unique; duplicated: {dupes}")
        self.pad, self.unk, self.bos, self.eos = pad, unk, bos, eos
        self.extra_specials = tuple(extra_specials)
        self.lower = lower
        self.counts: dict[str, int] = dict(counts or {})
        positions = {t: i for i, t in enumerate(self._itos)}
        named = [("pad", pad), ("unk", unk), ("bos", bos), ("eos", eos)]
        for name, special in named + [("extra special", s) for s in self.extra_specials]:
            if special is not None and special not in positions:
                raise ValueError(f"{name} token {special!r} is not among the vocabulary's tokens")
        self._stoi = _Lookup(positions.items(), positions[unk] if unk is not None else None)

    # construction -----------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Iterable[str]],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        pad: str | None = "<pad>",
        unk: str | None = "<unk>",
        bos: str | None = None,
        eos: str | None = None,
        extra_specials: Sequence[str] = (),
        lower: bool = False,
    ) -> Vocab:
        """Count tokens and build a vocabulary.

        Arguments:
            token_lists: tokenised examples (an iterable of token iterables).
            min_freq: drop tokens seen fewer times.
            max_size: keep at most this many non-special tokens (the most frequent).
            pad, unk, bos, eos, extra_specials: special tokens, placed first.
            lower: lower-case tokens when counting and when looking up.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counter: Counter[str] = Counter()
        for tokens in token_lists:
            counter.update(map(str.lower, tokens) if lower else tokens)
        return cls.from_counts(
            counter,
            min_freq=min_freq,
            max_size=max_size,
            pad=pad,
            unk=unk,
            bos=bos,
            eos=eos,
            extra_specials=extra_specials,
            lower=lower,
        )

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        pad: str | None = "<pad>",
        unk: str | None = "<unk>",
        bos: str | None = None,
        eos: str | None = None,
        extra_specials: Sequence[str] = (),
        lower: bool = False,
    ) -> Vocab:
        """A vocabulary from token frequencies (see :meth:`build`)."""
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be >= 0 or None, got {max_size}")
        specials = [s for s in (pad, unk, bos, eos, *extra_specials) if s is not None]
        special_set = set(specials)
        ranked = sorted(
            ((t, n) for t, n in counts.items() if n >= min_freq and t not in special_set),
            key=lambda item: (-item[1], item[0]),
        )
        if max_size is not None:
            ranked = ranked[:max_size]
        tokens = specials + [t for t, _ in ranked]
        return cls(
            tokens,
            pad=pad,
            unk=unk,
            bos=bos,
            eos=eos,
            extra_specials=extra_specials,
            lower=lower,
            counts=dict(ranked),
        )

    # lookup -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        return (token.lower() if self.lower else token) in self._stoi

    def __getitem__(self, token: str) -> int:
        """The id of ``token`` (the unk id if unknown; ``KeyError`` without an unk token)."""
        return self._stoi[token.lower() if self.lower else token]

    def __iter__(self) -> Iterator[str]:
        return iter(self._itos)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self.to_dict(counts=False) == other.to_dict(counts=False)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking; compared by content

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self._itos[:6])
        return f"Vocab(size={len(self)}, tokens=[{head}{', ...' if len(self) > 6 else ''}])"

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token in id order (torchtext's ``itos``)."""
        return self._itos

    @property
    def stoi(self) -> Mapping[str, int]:
        """token → id, like torchtext's ``stoi`` (unknown tokens map to the unk id).

        The vocabulary's own table: read it, do not modify it.
        """
        return self._stoi

    def token(self, index: int) -> str:
        """The token with id ``index``."""
        return self._itos[index]

    def _id(self, special: str | None) -> int | None:
        return None if special is None else self._stoi[special]

    @property
    def pad_id(self) -> int | None:
        """Id of the padding token (``None`` if there is none)."""
        return self._id(self.pad)

    @property
    def unk_id(self) -> int | None:
        """Id of the unknown-token token (``None`` if there is none)."""
        return self._id(self.unk)

    @property
    def bos_id(self) -> int | None:
        """Id of the begin-of-sequence token (``None`` if there is none)."""
        return self._id(self.bos)

    @property
    def eos_id(self) -> int | None:
        """Id of the end-of-sequence token (``None`` if there is none)."""
        return self._id(self.eos)

    @property
    def specials(self) -> tuple[str, ...]:
        """The special tokens: pad, unk, bos, eos (those set) and the extra ones."""
        named = (self.pad, self.unk, self.bos, self.eos, *self.extra_specials)
        return tuple(t for t in named if t is not None)

    def lookup(self, tokens: Iterable[str]) -> Iterator[int]:
        """Ids of ``tokens``, lazily (for ``np.fromiter``)."""
        if self.lower:
            tokens = map(str.lower, tokens)
        return map(self._stoi.__getitem__, tokens)

    def encode(
        self, tokens: Iterable[str], *, add_bos: bool = False, add_eos: bool = False
    ) -> list[int]:
        """Ids of ``tokens``, optionally wrapped in ``bos``/``eos``."""
        ids = list(self.lookup(tokens))
        if add_bos:
            ids.insert(0, self._required("bos"))
        if add_eos:
            ids.append(self._required("eos"))
        return ids

    def decode(self, ids: Iterable[int], *, skip_pad: bool = False) -> list[str]:
        """Tokens of ``ids`` (tensors and arrays accepted); ``skip_pad`` drops padding."""
        if isinstance(ids, torch.Tensor | np.ndarray):
            ids = ids.tolist()
        pad_id = self.pad_id
        return [self._itos[i] for i in ids if not (skip_pad and i == pad_id)]

    def _required(self, name: str) -> int:
        special = getattr(self, name)
        if special is None:
            raise ValueError(f"this vocabulary has no {name} token")
        return self._stoi[special]

    # persistence ------------------------------------------------------------------------

    def to_dict(self, *, counts: bool = True) -> dict[str, Any]:
        """A JSON-serialisable description (``from_dict`` restores it)."""
        data: dict[str, Any] = {
            "format": _FORMAT,
            "tokens": list(self._itos),
            "pad": self.pad,
            "unk": self.unk,
            "bos": self.bos,
            "eos": self.eos,
            "extra_specials": list(self.extra_specials),
            "lower": self.lower,
        }
        if counts:
            data["counts"] = self.counts
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocab:
        """Inverse of :meth:`to_dict`."""
        if data.get("format") != _FORMAT:
            raise DataFormatError(
                f"expected a vocabulary in format {_FORMAT!r}, found format {data.get('format')!r}"
            )
        return cls(
            data["tokens"],
            pad=data["pad"],
            unk=data["unk"],
            bos=data["bos"],
            eos=data["eos"],
            extra_specials=data.get("extra_specials", ()),
            lower=data["lower"],
            counts=data.get("counts"),
        )

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as UTF-8 JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise DataNotFoundError(f"expected a vocabulary JSON file at {path}, found nothing")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataFormatError(f"{path} is not a vocabulary JSON file: {err}") from err
        return cls.from_dict(data)


# --- pretrained word vectors ---------------------------------------------------------------


@dataclass
class VectorsReport:
    """What :func:`load_word_vectors` matched, and what it could not.

    Attributes:
        dim: vector dimension.
        vectors_read: vectors in the file.
        found: vocabulary tokens (specials excluded) that got a pretrained vector.
        lowercase_matches: of those, matched through their lower-cased form.
        missing: vocabulary tokens without a vector (out of the file's vocabulary).
        bad_lines: lines that did not have a token and ``dim`` numbers (skipped).
        decode: invalid UTF-8 bytes replaced while reading.
    """

    dim: int
    vectors_read: int = 0
    found: int = 0
    lowercase_matches: int = 0
    missing: list[str] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)
    decode: DecodeReport = field(default_factory=DecodeReport)

    @property
    def coverage(self) -> float:
        """Fraction of (non-special) vocabulary tokens that have a vector."""
        total = self.found + len(self.missing)
        return self.found / total if total else 1.0


@dataclass
class WordVectors:
    """An embedding matrix for a vocabulary, and its report.

    Attributes:
        weights: ``FloatTensor (len(vocab), dim)``; row ``i`` is token ``i``'s vector, the
            pad row is zero. Use ``nn.Embedding.from_pretrained(weights, freeze=False,
            padding_idx=vocab.pad_id)``.
        report: a :class:`VectorsReport` (out-of-vocabulary tokens and more).
    """

    weights: torch.Tensor
    report: VectorsReport


def _open_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rb") as fh:  # type: ignore[operator]
        yield from fh


def _parse_header(line: str) -> int | None:
    """The dimension from a word2vec text header ``"<count> <dim>"``, else ``None``."""
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[1])
    return None


def load_word_vectors(
    path: str | Path,
    vocab: Vocab,
    *,
    init: str = "normal",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> WordVectors:
    """Build an embedding matrix for ``vocab`` from a GloVe or word2vec text file.

    Reads ``token v_1 … v_d`` lines (GloVe), with or without word2vec's
    ``"<count> <dim>"`` header, plain or gzipped. Only vectors of vocabulary tokens are
    kept, so a multi-GB file costs one pass, not memory. A token without an exact match
    takes the vector of its lower-cased form when the file has one.

    Arguments:
        path: the vectors file (``glove.6B.100d.txt``, ``*.vec``, optionally ``.gz``).
        vocab: the vocabulary to cover.
        init: rows of tokens without a vector: ``"normal"`` (mean 0, the standard
            deviation of the found vectors; seeded) or ``"zeros"``. Specials other than
            pad are initialised the same way; the pad row is always zero.
        seed: for ``init="normal"``.
        dtype: of the weights.

    Returns:
        :class:`WordVectors` with ``weights`` of shape ``(len(vocab), dim)`` and a report.

    Raises:
        DataNotFoundError: no such file. DataFormatError: empty, or no line parsed.

    Example::

        >>> wv = load_word_vectors("glove.6B.100d.txt", vocab)   # doctest: +SKIP
        >>> wv.report.coverage, wv.report.missing[:3]           # doctest: +SKIP
        (0.93, ['dunno', 'looooved', 'imdb'])
        >>> emb = torch.nn.Embedding.from_pretrained(wv.weights, freeze=False)  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"expected a word-vectors text file at {path}, found nothing")
    if init not in ("normal", "zeros"):
        raise ValueError(f"init must be 'normal' or 'zeros', got {init!r}")
    specials = set(vocab.specials)
    wanted = {t for t in vocab.tokens if t not in specials}
    by_lower: dict[str, list[str]] = {}
    for t in wanted:
        by_lower.setdefault(t.lower(), []).append(t)
    exact: dict[str, np.ndarray] = {}
    lowered: dict[str, np.ndarray] = {}
    report = _read_vectors(path, wanted, by_lower, exact, lowered)
    return _assemble(vocab, wanted, exact, lowered, report, init=init, seed=seed, dtype=dtype)


def _read_vectors(
    path: Path,
    wanted: set[str],
    by_lower: Mapping[str, list[str]],
    exact: dict[str, np.ndarray],
    lowered: dict[str, np.ndarray],
) -> VectorsReport:
    dim: int | None = None
    report: VectorsReport | None = None
    decode = DecodeReport()
    replaced_total = 0
    for number, raw in enumerate(_open_lines(path), start=1):
        line, replaced = decode_utf8(raw)
        replaced_total += replaced
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if dim is None:
            header_dim = _parse_header(line)
            dim = header_dim if header_dim is not None else len(line.rstrip().split(" ")) - 1
            report = VectorsReport(dim=dim)
            if header_dim is not None:
                continue
        assert report is not None
        parts = line.rstrip().rsplit(" ", dim)  # tokens may contain spaces (GloVe 840B)
        if len(parts) != dim + 1 or not parts[0]:
            report.bad_lines.append(number)
            continue
        report.vectors_read += 1
        token = parts[0]
        if token in wanted or token.lower() in by_lower:
            try:
                vec = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                report.bad_lines.append(number)
                continue
            if token in wanted:
                exact.setdefault(token, vec)
            lowered.setdefault(token.lower(), vec)
    decode.add(str(path), replaced_total)
    if report is None or report.vectors_read == 0:
        raise DataFormatError(
            f"expected 'token v1 ... vd' lines (GloVe/word2vec text) in {path}, found "
            f"{'an empty file' if report is None else 'no parsable line'}"
        )
    report.decode = decode
    return report


def _assemble(
    vocab: Vocab,
    wanted: set[str],
    exact: Mapping[str, np.ndarray],
    lowered: Mapping[str, np.ndarray],
    report: VectorsReport,
    *,
    init: str,
    seed: int,
    dtype: torch.dtype,
) -> WordVectors:
    rows: dict[int, np.ndarray] = {}
    for index, token in enumerate(vocab.tokens):
        if token not in wanted:
            continue
        vec = exact.get(token)
        if vec is None:
            vec = lowered.get(token.lower())
            if vec is not None:
                report.lowercase_matches += 1
        if vec is None:
            report.missing.append(token)
        else:
            rows[index] = vec
    report.found = len(rows)
    found = np.stack(list(rows.values())) if rows else np.zeros((0, report.dim), np.float32)
    std = float(found.std()) if found.size else 1.0
    weights = np.zeros((len(vocab), report.dim), dtype=np.float32)
    if init == "normal":
        rng = np.random.default_rng(seed)
        weights[:] = rng.normal(0.0, std if std > 0 and math.isfinite(std) else 1.0, weights.shape)
    for index, vec in rows.items():
        weights[index] = vec
    if vocab.pad_id is not None:
        weights[vocab.pad_id] = 0.0
    return WordVectors(torch.from_numpy(weights).to(dtype), report)

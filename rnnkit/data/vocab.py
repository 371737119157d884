"""The vocabulary: a token ↔ id mapping with special tokens (:class:`Vocab`).

This replaces torchtext's ``build_vocab``, ``stoi`` and ``itos``:

===============================================  ==========================================
torchtext (legacy, removed)                      rnnkit
===============================================  ==========================================
``TEXT.build_vocab(train, max_size=N)``          ``Vocab.build(token_lists, max_size=N)``
``TEXT.vocab.stoi[w]`` / ``TEXT.vocab.itos[i]``  ``vocab[w]`` / ``vocab.token(i)``
===============================================  ==========================================
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data.errors import DataFormatError
from rnnkit.data.paths import require_file

__all__ = ["Vocab"]


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


class _SpecialId:
    """``vocab.pad_id`` (``unk_id``, ...): the id of the special token ``vocab.pad``, read
    when asked (``None`` when the vocabulary has no such token)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.special = name.removesuffix("_id")

    def __get__(self, vocab: Any, owner: type | None = None) -> Any:
        if vocab is None:  # on the class: the descriptor itself
            return self
        token = getattr(vocab, self.special)
        return None if token is None else vocab._stoi[token]


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

    pad_id = _SpecialId()
    """Id of the padding token (``None`` if there is none)."""
    unk_id = _SpecialId()
    """Id of the unknown-token token (``None`` if there is none)."""
    bos_id = _SpecialId()
    """Id of the begin-of-sequence token (``None`` if there is none)."""
    eos_id = _SpecialId()
    """Id of the end-of-sequence token (``None`` if there is none)."""

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
        path = require_file(path, "a vocabulary JSON file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataFormatError(f"{path} is not a vocabulary JSON file: {err}") from err
        return cls.from_dict(data)

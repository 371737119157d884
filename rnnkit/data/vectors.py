"""Pretrained word vectors (GloVe, word2vec text) as an embedding matrix for a :class:`Vocab`.

This replaces torchtext's ``Vectors`` and ``build_vocab(train, vectors=...)``:
``load_word_vectors(path, vocab).weights`` is the ``(len(vocab), dim)`` matrix for
``nn.Embedding.from_pretrained``.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rnnkit.data.errors import DataFormatError
from rnnkit.data.files import DecodeReport, decode_utf8, decompressing
from rnnkit.data.paths import require_file
from rnnkit.data.vocab import Vocab

__all__ = ["VectorsReport", "WordVectors", "load_word_vectors"]


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
    with decompressing(path), opener(path, "rb") as fh:  # type: ignore[operator]
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
    path = require_file(path, "a word-vectors text file")
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

"""Text classification from your own files: CSV, TSV, JSON Lines, Parquet, a folder per class.

Formats (from the suffix, or ``format=``):

* ``.csv``, ``.tsv`` (``delimiter=`` for others): a header row, then one document per row;
  quoted fields may span lines;
* ``.jsonl``, ``.ndjson``: one JSON object per line;
* ``.parquet``: a table (needs ``pyarrow``: ``pip install "rnnkit[parquet]"``);
* a directory: ``root/<label>/<file>``, one document per file, the folder name its label
  (scikit-learn's ``load_files`` layout; files in natural order, ``2.txt`` before ``10.txt``).

The text and label columns are ``text`` and ``label`` unless told otherwise. With
``multi_label=True`` a label cell holds several labels joined by ``label_separator``
(``"sports|politics"``; a JSON list works too) and targets are multi-hot rows.

Bad data is reported where it was read, never dropped silently:

* a missing column: an error naming the columns the file has;
* a row with more or fewer fields than the header, invalid JSON, a missing label: an
  error naming the file and line;
* a validation or test label that the training file never had: an error naming the
  label and where it is;
* empty texts (empty, blank, or no tokens after the tokeniser): counted and named in
  :attr:`TextFilesDataModule.data_report`, then left out (``empty="error"`` refuses them);
* invalid UTF-8: replaced by ``U+FFFD`` and counted (``decode_report``), as every reader
  here does.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rnnkit.data.datasets.base import FileSplits, TextClassificationDataModule, TextCorpus
from rnnkit.data.errors import DataFormatError, DataNotFoundError
from rnnkit.data.files import DecodeReport, check_decodable, decode_utf8
from rnnkit.data.paths import require_file
from rnnkit.data.splits import random_split, stratified_split, subsample

__all__ = [
    "TEXT_FORMATS",
    "LabelledTexts",
    "TextFilesDataModule",
    "label_names",
    "read_labelled_texts",
    "read_text_rows",
    "to_corpus",
]

TEXT_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
"""File suffix → format; a directory is ``folder``."""
Format = Literal["csv", "tsv", "jsonl", "parquet", "folder"]
Empty = Literal["drop", "error"]
_SHOWN = 10  # places named in a message; the counts stay exact beyond that


@dataclass
class LabelledTexts:
    """Documents and their label names as read from one source, before ids are assigned.

    Attributes:
        texts: the non-empty documents.
        labels: each document's label names (one for single-label data).
        where: ``"file:line"`` (or ``"file, row i"``) of each document, for messages.
        source: the file or folder read.
        report: invalid UTF-8 bytes replaced while reading.
        empty: where the rows with an empty or blank text are (not in ``texts``).
    """

    texts: list[str]
    labels: list[list[str]]
    where: list[str]
    source: str
    report: DecodeReport = field(default_factory=DecodeReport)
    empty: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        return format
    if path.is_dir():
        return "folder"
    kind = TEXT_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataFormatError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; expected one of "
            f"{sorted(TEXT_FORMATS)} or a folder per class, or pass format= "
            "(csv, tsv, jsonl, parquet, folder)"
        )
    return kind


def _split_labels(cell: Any, *, multi_label: bool, separator: str) -> list[str] | None:
    """Label names of one cell; ``None`` when the cell is empty."""
    if cell is None:
        return None
    if isinstance(cell, list | tuple):
        names = [str(c).strip() for c in cell]
        return [n for n in names if n] if multi_label else (names if names else None)
    text = str(cell).strip()
    if not multi_label:
        return [text] if text else None
    return [part.strip() for part in text.split(separator) if part.strip()]


def read_text_rows(
    path: str | Path,
    *,
    text_column: str = "text",
    format: str | None = None,
    delimiter: str | None = None,
    columns: Sequence[str] = (),
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Stream the rows of a CSV, TSV, JSONL or Parquet file (or a plain text file, one
    document per line) as ``(where, {column: value})``.

    Arguments:
        path: the file.
        text_column: the column that must be there (and the key of a ``.txt`` line).
        format: ``csv``, ``tsv``, ``jsonl``, ``parquet`` or ``txt`` (default: the suffix;
            ``txt`` for any suffix not in :data:`TEXT_FORMATS`).
        delimiter: the CSV delimiter (default ``,``; ``\\t`` for TSV).
        columns: further columns that must be there.

    Raises:
        DataFormatError: a required column missing (naming the ones found), a row whose
            field count differs from the header's, a line that is not a JSON object.
    """
    path = require_file(path, "a text file")
    kind = format or TEXT_FORMATS.get(path.suffix.lower(), "txt")
    wanted = [text_column, *columns]
    if kind == "txt":
        yield from _txt_rows(path, text_column)
    elif kind in ("csv", "tsv"):
        sep = delimiter if delimiter is not None else ("\t" if kind == "tsv" else ",")
        yield from _csv_rows(path, sep, wanted)
    elif kind == "jsonl":
        yield from _jsonl_rows(path, wanted)
    elif kind == "parquet":
        yield from _parquet_rows(path, wanted)
    else:
        raise DataFormatError(f"{path}: unknown format {kind!r}; expected csv, tsv, jsonl, parquet")


def _decoded_lines(path: Path) -> Iterator[tuple[int, str, int]]:
    """``(line number, text, replaced bytes)`` of every line, UTF-8 with replacement."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            text, replaced = decode_utf8(raw)
            if number == 1:
                text = text.removeprefix("\ufeff")
            yield number, text.rstrip("\r\n"), replaced


def _txt_rows(path: Path, key: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, text, _ in _decoded_lines(path):
        yield f"{path}:{number}", {key: text}


def _missing_columns(path: Path, where: str, found: Sequence[str], wanted: Sequence[str]) -> None:
    absent = [c for c in wanted if c not in found]
    if absent:
        raise DataFormatError(
            f"{where}: expected column(s) {absent}, not found; the columns are {list(found)} "
            "(set data.text_column / data.label_column to the names your file uses)"
        )


def _csv_rows(path: Path, delimiter: str, wanted: Sequence[str]) -> Iterator[tuple[str, Any]]:
    text, _ = decode_utf8(path.read_bytes())
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=delimiter)
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise DataFormatError(f"{path}: expected a header row naming the columns, found nothing")
    header = [h.strip() for h in header]
    _missing_columns(path, f"{path}, line 1 (the header)", header, wanted)
    start = reader.line_num + 1
    for row in reader:
        line, start = start, reader.line_num + 1
        if not row:
            continue  # a blank line between rows
        if len(row) != len(header):
            raise DataFormatError(
                f"{path}, line {line}: expected {len(header)} fields ({', '.join(header)}), "
                f"found {len(row)}; quote a text that contains the delimiter {delimiter!r}"
            )
        yield f"{path}:{line}", dict(zip(header, row, strict=True))


def _jsonl_rows(path: Path, wanted: Sequence[str]) -> Iterator[tuple[str, Any]]:
    for number, line, _ in _decoded_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{path}, line {number}: expected a JSON object: {err}") from None
        if not isinstance(record, dict):
            raise DataFormatError(
                f"{path}, line {number}: expected a JSON object, found {type(record).__name__}"
            )
        _missing_columns(path, f"{path}, line {number}", list(record), wanted)
        yield where, record


def _parquet_rows(path: Path, wanted: Sequence[str]) -> Iterator[tuple[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataFormatError(
            f"{path}: reading Parquet needs pyarrow: pip install 'rnnkit[parquet]'"
        ) from None
    table = pq.ParquetFile(path)
    names = list(table.schema_arrow.names)
    _missing_columns(path, str(path), names, wanted)
    row = 0
    for batch in table.iter_batches(columns=list(dict.fromkeys(wanted))):
        for record in batch.to_pylist():
            row += 1
            yield f"{path}, row {row}", record


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _read_folder(root: Path) -> LabelledTexts:
    classes = sorted(
        (e for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")),
        key=lambda e: _natural_key(e.name),
    )
    if not classes:
        raise DataFormatError(
            f"{root}: expected one folder per class (root/<label>/<file>), found no folders"
        )
    out = LabelledTexts([], [], [], str(root))
    for folder in classes:
        files = sorted(
            (e for e in os.scandir(folder.path) if e.is_file() and not e.name.startswith(".")),
            key=lambda e: _natural_key(e.name),
        )
        for entry in files:
            text, replaced = decode_utf8(Path(entry.path).read_bytes())
            where = f"{root}/{folder.name}/{entry.name}"
            out.report.add(where, replaced)
            _add(out, where, text, [folder.name])
    return out


def _add(out: LabelledTexts, where: str, text: Any, labels: list[str]) -> None:
    text = "" if text is None else str(text)
    if not text.strip():
        out.empty.append(where)
        return
    out.texts.append(text)
    out.labels.append(labels)
    out.where.append(where)


def read_labelled_texts(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    format: str | None = None,
    delimiter: str | None = None,
    multi_label: bool = False,
    label_separator: str = "|",
) -> LabelledTexts:
    """Read labelled documents from a CSV, TSV, JSONL or Parquet file or a folder per class.

    Arguments:
        path: the file, or the folder holding one sub-folder per class.
        text_column, label_column: the column names.
        format: ``csv``, ``tsv``, ``jsonl``, ``parquet`` or ``folder`` (default: from the
            suffix; a directory is ``folder``).
        delimiter: the CSV delimiter (default ``,``, ``\\t`` for ``.tsv``).
        multi_label: a label cell holds several labels joined by ``label_separator``.
        label_separator: see ``multi_label``.

    Returns:
        :class:`LabelledTexts` (documents with an empty text are listed in ``empty``).

    Raises:
        DataNotFoundError: no such file or folder.
        DataFormatError: see the module docstring.

    Example::

        >>> rows = read_labelled_texts("reviews.csv")        # doctest: +SKIP
        >>> rows.texts[0], rows.labels[0], rows.where[0]     # doctest: +SKIP
        ('A great film.', ['pos'], 'reviews.csv:2')
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(
            f"expected a text file or a folder per class at {path}, found nothing"
        )
    kind = _format_of(path, format)
    if kind == "folder":
        if multi_label:
            raise DataFormatError(
                f"{path}: a folder per class gives one label per document; multi_label "
                "needs a CSV, TSV, JSONL or Parquet file with a label column"
            )
        folder = _read_folder(path)
        check_decodable(path, folder.report.files_with_replacements, folder.report.files)
        return folder
    out = LabelledTexts([], [], [], str(path))
    replaced_total = 0
    if kind in ("csv", "tsv", "jsonl"):
        replaced_total = _count_replaced(path)
    for where, record in read_text_rows(
        path, text_column=text_column, format=kind, delimiter=delimiter, columns=[label_column]
    ):
        labels = _split_labels(
            record[label_column], multi_label=multi_label, separator=label_separator
        )
        if labels is None and not multi_label:
            raise DataFormatError(f"{where}, column {label_column!r}: expected a label, found none")
        _add(out, where, record[text_column], labels or [])
    out.report.add(str(path), replaced_total)
    if replaced_total:
        bad = sum("\ufffd" in text for text in out.texts)
        check_decodable(path, bad, len(out.texts) + len(out.empty), "rows")
    return out


def _count_replaced(path: Path) -> int:
    # Newlines are ASCII, so no invalid sequence spans two lines: the whole file's count
    # equals the sum over its lines.
    return decode_utf8(path.read_bytes())[1]


def label_names(labels: Sequence[Sequence[str]]) -> list[str]:
    """The distinct label names, sorted (numerically when every name is an integer)."""
    names = {n for row in labels for n in row}
    if names and all(re.fullmatch(r"-?\d+", n) for n in names):
        return sorted(names, key=int)
    return sorted(names)


def to_corpus(texts: LabelledTexts, class_names: Sequence[str], *, multi_label: bool) -> TextCorpus:
    """Label names → class ids (or multi-hot rows) over ``class_names``.

    Raises:
        DataFormatError: a label that is not in ``class_names`` (naming it and where it is).
    """
    index = {name: i for i, name in enumerate(class_names)}
    unknown = [
        (where, name)
        for where, row in zip(texts.where, texts.labels, strict=True)
        for name in row
        if name not in index
    ]
    if unknown:
        shown = "; ".join(f"{where}: {name!r}" for where, name in unknown[:_SHOWN])
        more = f" (and {len(unknown) - _SHOWN} more)" if len(unknown) > _SHOWN else ""
        raise DataFormatError(
            f"{texts.source}: {len(unknown)} label(s) not among the training labels "
            f"{list(class_names)}: {shown}{more}"
        )
    if multi_label:
        labels = np.zeros((len(texts), len(class_names)), dtype=np.float32)
        for i, row in enumerate(texts.labels):
            labels[i, [index[n] for n in row]] = 1.0
    else:
        labels = np.array([index[row[0]] for row in texts.labels], dtype=np.int64)
    return TextCorpus(list(texts.texts), labels, list(texts.where), list(class_names), texts.report)


class TextFilesDataModule(FileSplits, TextClassificationDataModule):
    """Text classification from your own files (see the module docstring for formats).

    Splits: ``path=`` one file, split with the seed into test (``test_fraction``), then
    validation (``val_fraction`` of the rest), stratified by class; or ``train_path=``
    with ``test_path=`` and optionally ``val_path=`` (without ``test_path`` the test split
    is carved from the training file). Tokenising, the vocabulary (built on the training
    split only), ``max_length`` and bucketing are those of IMDB
    (:class:`~rnnkit.data.datasets.base.TextClassificationDataModule`).

    After ``setup``: ``class_names`` (kept in the run's data state), ``num_classes``,
    ``vocab``, ``split_sizes``, ``decode_report``, :attr:`data_report`.

    Batches: ``Batch(LongTensor (B, T), lengths (B,), targets LongTensor (B,))``, or
    ``FloatTensor (B, L)`` multi-hot targets with ``multi_label=True``.

    Arguments:
        path: one labelled file (or folder per class) to split.
        train_path, val_path, test_path: explicit split files instead.
        format: ``csv``, ``tsv``, ``jsonl``, ``parquet`` or ``folder`` (default: suffix).
        delimiter: CSV delimiter (default ``,``; ``\\t`` for ``.tsv``).
        text_column, label_column: column names.
        multi_label, label_separator: several labels per document (see the module docstring).
        labels: the label names, in this order (default: the training labels, sorted);
            a training label not listed is an error.
        test_fraction: share of ``path`` held out for testing.
        empty: documents without text or tokens: ``"drop"`` (counted and named in
            :attr:`data_report`) or ``"error"``.
        **kwargs: see :class:`~rnnkit.data.datasets.base.TextClassificationDataModule`.

    Example::

        >>> dm = TextFilesDataModule(path="reviews.csv", max_size=20_000)  # doctest: +SKIP
        >>> dm.setup("fit"); dm.class_names, dm.split_sizes               # doctest: +SKIP
        (['neg', 'pos'], {'train': 405, 'val': 45, 'test': 50})
    """

    def __init__(
        self,
        *,
        format: Format | None = None,
        delimiter: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        multi_label: bool = False,
        label_separator: str = "|",
        labels: Sequence[str] | None = None,
        test_fraction: float = 0.1,
        empty: Empty = "drop",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)  # FileSplits takes path, train_path, val_path, test_path
        if not 0.0 <= test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
        if empty not in ("drop", "error"):
            raise ValueError(f"empty must be 'drop' or 'error', got {empty!r}")
        self.format, self.delimiter = format, delimiter
        self.text_column, self.label_column = text_column, label_column
        self.multi_label, self.label_separator = multi_label, label_separator
        self.labels = list(labels) if labels is not None else None
        self.test_fraction = test_fraction
        self.empty: Empty = empty
        self.data_report: dict[str, Any] = {}

    expected_files = (
        "your labelled texts as a CSV, TSV, JSONL or Parquet file, or a folder per class "
        "(e.g. rnnkit train text --set data.path=reviews.csv)"
    )

    def _read_source(self, split: str, path: str) -> LabelledTexts:
        """One split's documents (a subclass reads other sources here)."""
        return read_labelled_texts(
            path,
            text_column=self.text_column,
            label_column=self.label_column,
            format=self.format,
            delimiter=self.delimiter,
            multi_label=self.multi_label,
            label_separator=self.label_separator,
        )

    def _sources(self) -> dict[str, LabelledTexts]:
        """``{"all" | "train", ["val"], ["test"]: documents}``."""
        return {split: self._read_source(split, path) for split, path in self._paths().items()}

    # -- splits ---------------------------------------------------------------------------

    def _read(self) -> tuple[TextCorpus, TextCorpus]:
        sources = self._sources()
        first = sources.get("all", sources.get("train"))
        assert first is not None
        self.class_names = self._class_names(first)
        corpora = {
            split: to_corpus(texts, self.class_names, multi_label=self.multi_label)
            for split, texts in sources.items()
        }
        self._val_corpus = corpora.get("val")
        self._start_report(sources)
        pool = corpora.pop("all", None) or corpora["train"]
        if "test" in corpora:
            return pool, corpora["test"]
        keep, held = self._split(pool.labels, self.test_fraction, seed=self.seed + 1)
        test = pool.take(held)
        test.report = DecodeReport()  # one file, one report: count it once (with train)
        return pool.take(keep), test

    def _class_names(self, train: LabelledTexts) -> list[str]:
        found = label_names(train.labels)
        if self.labels is None:
            if len(found) < (1 if self.multi_label else 2):
                raise DataFormatError(
                    f"{train.source}: expected at least two distinct labels in column "
                    f"{self.label_column!r}, found {found}"
                )
            return found
        extra = [n for n in found if n not in self.labels]
        if extra:
            raise DataFormatError(
                f"{train.source}: labels {extra} are not among data.labels {self.labels}"
            )
        return list(self.labels)

    def _split(
        self, labels: np.ndarray, fraction: float, *, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if labels.ndim == 2:
            return random_split(len(labels), fraction, seed=seed)
        return stratified_split(labels, fraction, seed=seed)

    def _validation_split(self, train_pool: TextCorpus) -> tuple[TextCorpus, TextCorpus]:
        val = getattr(self, "_val_corpus", None)
        if val is None:
            return super()._validation_split(train_pool)
        self.decode_report = self.decode_report.merge(val.report)
        labels = None if val.multi_label else val.labels
        return train_pool, val.take(subsample(labels, len(val), self.limit, seed=self.seed))

    # -- empty texts and the report -------------------------------------------------------

    def _start_report(self, sources: dict[str, LabelledTexts]) -> None:
        empty = [w for texts in sources.values() for w in texts.empty]
        self.data_report = {
            "files": {
                split: {"source": t.source, "documents": len(t) + len(t.empty)}
                for split, t in sources.items()
            },
            "empty_texts": {"policy": self.empty, "count": len(empty), "where": empty[:_SHOWN]},
        }
        if empty and self.empty == "error":
            raise DataFormatError(f"{len(empty)} document(s) have an empty text: {empty[:_SHOWN]}")

    def _without_empty(
        self, parts: dict[str, TextCorpus], tokens: dict[str, list[list[str]]]
    ) -> tuple[dict[str, TextCorpus], dict[str, list[list[str]]]]:
        """Leave out documents with no tokens after the tokeniser, counted and named."""
        report = self.data_report.setdefault(
            "empty_texts", {"policy": self.empty, "count": 0, "where": []}
        )
        for name in parts:
            keep = [i for i, t in enumerate(tokens[name]) if t]
            if len(keep) == len(tokens[name]):
                continue
            dropped = [parts[name].ids[i] for i, t in enumerate(tokens[name]) if not t]
            if self.empty == "error":
                raise DataFormatError(
                    f"{len(dropped)} document(s) have no tokens after the tokeniser: "
                    f"{dropped[:_SHOWN]}"
                )
            report["count"] += len(dropped)
            report["where"] = (report["where"] + dropped)[:_SHOWN]
            parts[name] = parts[name].take(keep)
            tokens[name] = [tokens[name][i] for i in keep]
        self._finish_report(parts)
        return parts, tokens

    def _finish_report(self, parts: dict[str, TextCorpus]) -> None:
        counts = {}
        for name, corpus in parts.items():
            if corpus.multi_label:
                per = corpus.labels.sum(axis=0).astype(int).tolist()
            else:
                per = np.bincount(corpus.labels, minlength=len(self.class_names)).tolist()
            counts[name] = dict(zip(self.class_names, per, strict=True))
        self.data_report["label_counts"] = counts
        self.data_report["decode"] = {
            "replaced_bytes": self.decode_report.replaced_bytes,
            "files_with_replacements": self.decode_report.files_with_replacements,
            "examples": [list(e) for e in self.decode_report.examples],
        }

    # -- what a reloaded run needs --------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The vocabulary and label names, and how the text and labels were read."""
        state = super().state_dict()
        if state:
            state |= {
                "text_column": self.text_column,
                "multi_label": self.multi_label,
                "label_separator": self.label_separator,
            }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the vocabulary and label names (a reloaded run needs no files)."""
        if state_dict.get("class_names") and not self.class_names:
            self.class_names = list(state_dict["class_names"])
        super().load_state_dict(state_dict)

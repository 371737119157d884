"""Numeric sequences with a label or a target: your recordings, sensors, UCR/UEA sets.

Each example is a ``(T_i, F)`` sequence of ``F`` features (``T_i`` may differ between
examples) with a class label (classification) or one or more numbers (regression).
Formats (from the suffix, or ``format=``):

* ``.npz``: ``x`` ``(N, T, F)`` (or ``(N, T)`` for one feature) with optional ``lengths``
  ``(N,)``, and ``y`` ``(N,)`` labels (ints or strings) or values ``(N,)`` / ``(N, n)``.
  A ragged ``x`` may also be an object array of ``(T_i, F)`` arrays; NumPy stores those
  with pickle, so they load only with ``allow_pickle=True`` (for files you trust);
* ``.csv``: long format, one row per step: ``id, step, <feature columns>, label``; rows
  are grouped by ``id`` and ordered by ``step``; missing values are spelled as for
  :func:`~rnnkit.data.datasets.timeseries.read_csv_series` (empty, ``NaN``, ``NA``, …);
* ``.ts``: the UCR/UEA time-series classification format (``@problemName`` …
  ``@data``; dimensions separated by ``:``, values by ``,``, the label last, ``?`` for a
  missing value), read by a small parser here (aeon's reader would bring scikit-learn
  and numba along).

Features are scaled per feature (``scaler="standard"``, ``"minmax"`` or ``"none"``),
fitted on the training split's steps only. Batches keep every sequence's length, so a
ragged batch trains on the BPTT engine.

Bad data is an error that names the file, the line (or case) and the column: a CSV row
with a different field count, a non-number, a missing value (unless ``fill=`` says how
to fill it), a sequence whose feature count differs from the others', a label that
changes within one sequence, lengths longer than the array, ``x`` and ``y`` of
different lengths.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from rnnkit.data.batching import PadCollate
from rnnkit.data.datasets.base import BaseDataModule, FileSplits
from rnnkit.data.datasets.textfiles import label_names
from rnnkit.data.datasets.timeseries import _parse_value
from rnnkit.data.errors import DamagedArchiveError, DataFormatError, DataNotFoundError
from rnnkit.data.files import decode_utf8, decompressing
from rnnkit.data.paths import require_file
from rnnkit.data.scaling import SCALERS, Scaler, scaler_from_dict
from rnnkit.data.splits import random_split, stratified_split, subsample

__all__ = [
    "SEQUENCE_FORMATS",
    "FeatureSequenceDataset",
    "SequenceDataModule",
    "SequenceTable",
    "read_long_csv",
    "read_npz",
    "read_sequences",
    "read_ts",
]

SEQUENCE_FORMATS = {".npz": "npz", ".csv": "csv", ".ts": "ts"}
"""File suffix → format."""
Fill = Literal["error", "ffill", "mean"]
Targets = Literal["classes", "values"]
_SHOWN = 10


@dataclass
class SequenceTable:
    """Sequences and their targets as read from one file.

    Attributes:
        sequences: ``(T_i, F)`` float64 arrays (missing values are NaN).
        targets: the label of each sequence as a string, or its values ``(n,)`` as floats;
            ``None`` when the file has no targets (inputs to predict on).
        ids: where each sequence is (``file:line``, ``file, case i`` or the CSV's id).
        source: the file read.
        feature_names: a name per feature column.
    """

    sequences: list[np.ndarray]
    targets: list[Any] | None
    ids: list[str]
    source: str
    feature_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def num_features(self) -> int:
        """``F``."""
        return int(self.sequences[0].shape[1]) if self.sequences else 0


def _check_features(table: SequenceTable) -> SequenceTable:
    if not table.sequences:
        raise DataFormatError(f"{table.source}: expected sequences, found none")
    widths = [s.shape[1] for s in table.sequences]
    first = widths[0]
    odd = [i for i, w in enumerate(widths) if w != first]
    if odd:
        shown = ", ".join(f"{table.ids[i]} ({widths[i]})" for i in odd[:_SHOWN])
        raise DataFormatError(
            f"{table.source}: every sequence needs the same number of features; "
            f"{table.ids[0]} has {first}, these differ: {shown}"
        )
    empty = [table.ids[i] for i, s in enumerate(table.sequences) if len(s) == 0]
    if empty:
        raise DataFormatError(f"{table.source}: sequences with no steps: {empty[:_SHOWN]}")
    if not table.feature_names:
        table.feature_names = [f"f{j}" for j in range(first)]
    return table


# -- .npz -------------------------------------------------------------------------------


def read_npz(
    path: str | Path,
    *,
    allow_pickle: bool = False,
    x_key: str = "x",
    y_key: str = "y",
    lengths_key: str = "lengths",
) -> SequenceTable:
    """Read ``x`` (``(N, T, F)``, ``(N, T)`` or an object array of ``(T_i, F)``), optional
    ``lengths`` and optional ``y`` from a NumPy ``.npz``.

    Raises:
        DataFormatError: ``x`` missing or of another rank, ``lengths`` or ``y`` not ``N``
            long, a length out of ``[1, T]``, an object array without ``allow_pickle``.
    """
    path = require_file(path, "a .npz file")
    try:
        with decompressing(path), np.load(path, allow_pickle=allow_pickle) as arrays:
            found = list(arrays.files)
            if x_key not in found:
                raise DataFormatError(f"{path}: expected an array {x_key!r}, found {found}")
            x = arrays[x_key]
            y = arrays[y_key] if y_key in found else None
            lengths = arrays[lengths_key] if lengths_key in found else None
    except DamagedArchiveError:
        raise
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise DataFormatError(f"{path}: not a readable .npz: {err}") from err
        raise DataFormatError(
            f"{path}: {x_key!r} is an object array (ragged sequences), which NumPy stores "
            "with pickle; pass allow_pickle=true for a file you trust, or save x padded as "
            "(N, T, F) with lengths (N,)"
        ) from None
    name = str(path)
    sequences = _npz_sequences(x, lengths, name, x_key, lengths_key)
    ids = [f"{name}, case {i}" for i in range(len(sequences))]
    targets = None if y is None else _npz_targets(y, len(sequences), name, y_key, x_key)
    return _check_features(SequenceTable(sequences, targets, ids, name))


def _npz_sequences(
    x: np.ndarray, lengths: np.ndarray | None, name: str, x_key: str, lengths_key: str
) -> list[np.ndarray]:
    if x.dtype == object:
        out = []
        for i, item in enumerate(x):
            a = np.asarray(item, dtype=np.float64)
            if a.ndim not in (1, 2):
                raise DataFormatError(
                    f"{name}: {x_key}[{i}] should be (T_i, F) or (T_i,), got shape {a.shape}"
                )
            out.append(a[:, None] if a.ndim == 1 else a)
        return out
    if x.ndim == 2:
        x = x[:, :, None]  # (N, T) → (N, T, 1): one feature
    if x.ndim != 3:
        raise DataFormatError(f"{name}: expected {x_key} of shape (N, T, F), got {x.shape}")
    x = x.astype(np.float64)
    if lengths is None:
        return list(x)
    lengths = np.asarray(lengths)
    if lengths.shape != (len(x),):
        raise DataFormatError(
            f"{name}: expected {lengths_key} of shape ({len(x)},), got {lengths.shape}"
        )
    bad = np.flatnonzero((lengths < 1) | (lengths > x.shape[1]))
    if len(bad):
        raise DataFormatError(
            f"{name}: {lengths_key} must lie in [1, T={x.shape[1]}]; cases "
            f"{bad[:_SHOWN].tolist()} have {lengths[bad[:_SHOWN]].tolist()}"
        )
    return [x[i, : int(n)] for i, n in enumerate(lengths)]


def _npz_targets(y: np.ndarray, n: int, name: str, y_key: str, x_key: str) -> list[Any]:
    if len(y) != n:
        raise DataFormatError(f"{name}: {x_key} has {n} sequences but {y_key} has {len(y)} targets")
    if y.dtype.kind in "fc":
        return [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in y]
    return [str(v) for v in y]


# -- long-format CSV --------------------------------------------------------------------


def read_long_csv(
    path: str | Path,
    *,
    id_column: str = "id",
    step_column: str = "step",
    label_column: str | None = "label",
    features: Sequence[str] | None = None,
) -> SequenceTable:
    """Read a long-format CSV: one row per step, ``id, step, <features…>, label``.

    Rows are grouped by ``id`` (in order of first appearance) and each group is ordered
    by ``step`` (a number). ``label_column`` (``None``, or absent from the file: no
    targets) must be the same on every row of an id; a number there is kept as a string
    for classification and read as a value for regression.

    Raises:
        DataFormatError: columns missing (naming those found), a row with another field
            count, a non-number, a repeated step within an id, a label that changes
            within an id.
    """
    path = require_file(path, "a CSV file")
    text, _ = decode_utf8(path.read_bytes())
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise DataFormatError(f"{path}: expected a header row naming the columns, found nothing")
    has_label = label_column is not None and label_column in header
    feats = (
        list(features)
        if features is not None
        else [c for c in header if c not in (id_column, step_column, label_column)]
    )
    wanted = [id_column, step_column, *feats, *([label_column] if has_label else [])]
    absent = [c for c in wanted if c not in header]
    if absent or not feats:
        raise DataFormatError(
            f"{path}, line 1 (the header): expected columns {absent or ['<features>']}; "
            f"the columns are {header}"
        )
    groups: dict[str, list[tuple[float, int, list[float]]]] = {}
    labels: dict[str, tuple[str, int]] = {}
    index = {c: header.index(c) for c in wanted}
    for line, row in _csv_body(reader, len(header), path):
        key = row[index[id_column]].strip()
        step = _number(row[index[step_column]], path, line, step_column, missing_ok=False)
        values = [_number(row[index[c]], path, line, c) for c in feats]
        groups.setdefault(key, []).append((step, line, values))
        if has_label:
            assert label_column is not None
            _same_label(labels, key, row[index[label_column]].strip(), line, path, label_column)
    sequences, ids = [], []
    for key, rows in groups.items():
        rows.sort(key=lambda r: r[0])
        repeats = [r[1] for a, r in itertools.pairwise(rows) if a[0] == r[0]]
        if repeats:
            raise DataFormatError(
                f"{path}, id {key!r}: repeated step at line(s) {repeats[:_SHOWN]}"
            )
        sequences.append(np.array([r[2] for r in rows], dtype=np.float64))  # (T_i, F)
        ids.append(f"{path}, id {key}")
    targets = [labels[k][0] for k in groups] if has_label else None
    return _check_features(SequenceTable(sequences, targets, ids, str(path), feats))


def _csv_body(reader: Any, width: int, path: Path) -> Any:
    start = reader.line_num + 1
    for row in reader:
        line, start = start, reader.line_num + 1
        if not row:
            continue
        if len(row) != width:
            raise DataFormatError(f"{path}, line {line}: expected {width} fields, found {len(row)}")
        yield line, row


def _number(text: str, path: Path, line: int, column: str, *, missing_ok: bool = True) -> float:
    """A cell as a float: the time-series reader's parsing, plus UCR's ``?`` for missing."""
    value = math.nan if text.strip() == "?" else _parse_value(text, line, column, path)
    if math.isnan(value) and not missing_ok:
        raise DataFormatError(
            f"{path}, line {line}, column {column!r}: expected a number, found {text.strip()!r}"
        )
    return value


def _same_label(
    labels: dict[str, tuple[str, int]], key: str, label: str, line: int, path: Path, column: str
) -> None:
    if not label:
        raise DataFormatError(
            f"{path}, line {line}, column {column!r}: expected a label, found none"
        )
    seen = labels.setdefault(key, (label, line))
    if seen[0] != label:
        raise DataFormatError(
            f"{path}, line {line}, column {column!r}: id {key!r} has label {label!r} here but "
            f"{seen[0]!r} at line {seen[1]}; a sequence has one label"
        )


# -- UCR/UEA .ts ------------------------------------------------------------------------


def read_ts(path: str | Path) -> SequenceTable:
    """Read a UCR/UEA ``.ts`` file (univariate or multivariate, equal or unequal length).

    Header lines start with ``@`` (``@dimensions``, ``@classLabel true a b c``,
    ``@targetLabel true`` for regression, ``@timeStamps`` — only ``false`` is read);
    ``#`` and ``%`` lines are comments. After ``@data`` each line is one case: its dimensions
    separated by ``:``, values by ``,``, the label (if any) last. ``?`` is a missing value.

    Raises:
        DataFormatError: no ``@data``, time stamps, a case with another dimension count,
            dimensions of different lengths within a case, a non-number, a label outside
            ``@classLabel``'s list.
    """
    path = require_file(path, "a .ts file")
    text, _ = decode_utf8(path.read_bytes())
    header: dict[str, str] = {}
    sequences, targets, ids = [], [], []
    in_data = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "%")):
            continue
        if not in_data:
            key, _, value = line.partition(" ")
            if key.lower() == "@data":
                in_data = _check_ts_header(header, path)
            elif key.startswith("@"):
                header[key[1:].lower()] = value.strip()
            else:
                raise DataFormatError(
                    f"{path}, line {number}: expected @-header lines before @data"
                )
            continue
        x, target = _ts_case(line, header, path, number)
        sequences.append(x)
        targets.append(target)
        ids.append(f"{path}:{number}")
    if not in_data:
        raise DataFormatError(f"{path}: expected a line '@data' before the cases, found none")
    has_target = _ts_flag(header, "classlabel") or _ts_flag(header, "targetlabel")
    table = SequenceTable(sequences, targets if has_target else None, ids, str(path))
    return _check_features(table)


def _ts_flag(header: dict[str, str], key: str) -> bool:
    return header.get(key, "false").split(" ")[0].lower() == "true"


def _check_ts_header(header: dict[str, str], path: Path) -> bool:
    if _ts_flag(header, "timestamps"):
        raise DataFormatError(f"{path}: @timeStamps true is not supported; save the values only")
    return True


def _ts_case(line: str, header: dict[str, str], path: Path, number: int) -> tuple[np.ndarray, Any]:
    parts = line.split(":")
    target: Any = None
    if _ts_flag(header, "classlabel"):
        target = parts.pop().strip()
        allowed = header["classlabel"].split()[1:]
        if allowed and target not in allowed:
            raise DataFormatError(
                f"{path}, line {number}: label {target!r} is not among @classLabel {allowed}"
            )
    elif _ts_flag(header, "targetlabel"):
        target = np.array([_number(parts.pop(), path, number, "target", missing_ok=False)])
    expected = int(header["dimensions"]) if "dimensions" in header else None
    if expected is not None and len(parts) != expected:
        raise DataFormatError(
            f"{path}, line {number}: expected {expected} dimensions (@dimensions), "
            f"found {len(parts)}"
        )
    dims = [
        [_number(v, path, number, f"dimension {d}") for v in part.split(",")]
        for d, part in enumerate(parts)
    ]
    lengths = {len(d) for d in dims}
    if len(lengths) != 1:
        raise DataFormatError(
            f"{path}, line {number}: the dimensions of one case need one length, "
            f"found {[len(d) for d in dims]}"
        )
    return np.array(dims, dtype=np.float64).T, target  # (T, F)


def read_sequences(path: str | Path, *, format: str | None = None, **options: Any) -> SequenceTable:
    """Read any supported file (see the module docstring); ``options`` go to its reader."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"expected a sequences file at {path}, found nothing")
    kind = format or SEQUENCE_FORMATS.get(path.suffix.lower())
    readers = {"npz": read_npz, "csv": read_long_csv, "ts": read_ts}
    if kind not in readers:
        raise DataFormatError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; expected "
            f"{sorted(SEQUENCE_FORMATS)} or format= (npz, csv, ts)"
        )
    return readers[kind](path, **options)


# -- the dataset and the DataModule -----------------------------------------------------


class FeatureSequenceDataset(Dataset[tuple[torch.Tensor, Any]]):
    """Scaled feature sequences with a class id or target values each.

    Schema: item ``i`` is ``(FloatTensor (T_i, F), int class id)`` or
    ``(FloatTensor (T_i, F), FloatTensor (n,) values)``.
    """

    def __init__(self, sequences: list[np.ndarray], targets: np.ndarray) -> None:
        if len(sequences) != len(targets):
            raise ValueError(f"{len(sequences)} sequences but {len(targets)} targets")
        self.sequences = [np.ascontiguousarray(s, dtype=np.float32) for s in sequences]
        self.targets = targets
        self.lengths = np.array([len(s) for s in sequences], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        x = torch.from_numpy(self.sequences[index])  # (T_i, F)
        if self.targets.ndim == 2:
            return x, torch.from_numpy(self.targets[index])
        return x, int(self.targets[index])


class SequenceDataModule(FileSplits, BaseDataModule):
    """Numeric sequences with a label (``targets="classes"``) or values (``"values"``).

    Splits: ``path=`` one file split with the seed into test (``test_fraction``) and
    validation (``val_fraction`` of the rest), stratified by class; or ``train_path=``
    with ``test_path=`` (a UCR ``_TRAIN.ts`` / ``_TEST.ts`` pair) and optionally
    ``val_path=``. The scalers are fitted on the training split only.

    After ``setup``: ``num_features == input_size`` (F), ``class_names`` and
    ``num_classes`` (classes) or ``num_targets`` and ``target_scaler`` (values),
    ``feature_scaler``, ``split_sizes``, :attr:`data_report`.

    Batches: ``Batch(FloatTensor (B, T, F), lengths (B,), targets LongTensor (B,)`` or
    ``FloatTensor (B, n))``, padded with zeros past each length.

    Arguments:
        path, train_path, val_path, test_path: the files (see above).
        format: ``npz``, ``csv`` or ``ts`` (default: the suffix).
        targets: ``"classes"`` (labels) or ``"values"`` (regression).
        scaler: ``"standard"``, ``"minmax"`` or ``"none"``, per feature.
        fill: missing values: ``"error"`` names the sequences; ``"ffill"`` carries the last
            value forward (leading gaps take the first value); ``"mean"`` uses the
            training split's feature mean.
        allow_pickle: load ``.npz`` object arrays (pickle: only files you trust).
        id_column, step_column, label_column, features: the long CSV's columns.
        test_fraction: share of ``path`` held out for testing.
        bucket: batches of similar length.
        **kwargs: see :class:`~rnnkit.data.datasets.base.BaseDataModule`.
    """

    def __init__(
        self,
        *,
        format: str | None = None,
        targets: Targets = "classes",
        scaler: str = "standard",
        fill: Fill = "error",
        allow_pickle: bool = False,
        id_column: str = "id",
        step_column: str = "step",
        label_column: str = "label",
        features: Sequence[str] | None = None,
        test_fraction: float = 0.2,
        bucket: bool = True,
        bucket_size_multiplier: int = 50,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)  # FileSplits takes path, train_path, val_path, test_path
        if targets not in ("classes", "values"):
            raise ValueError(f"targets must be 'classes' or 'values', got {targets!r}")
        if scaler not in SCALERS:
            raise ValueError(f"scaler must be one of {sorted(SCALERS)}, got {scaler!r}")
        if fill not in ("error", "ffill", "mean"):
            raise ValueError(f"fill must be 'error', 'ffill' or 'mean', got {fill!r}")
        self.format, self.targets, self.scaler_kind = format, targets, scaler
        self.fill: Fill = fill
        self.allow_pickle = allow_pickle
        self.csv_columns = {
            "id_column": id_column,
            "step_column": step_column,
            "label_column": label_column,
            "features": None if features is None else list(features),
        }
        self.test_fraction = test_fraction
        self.bucket, self.bucket_size_multiplier = bucket, bucket_size_multiplier
        self.feature_scaler: Scaler = SCALERS[scaler]()
        self.target_scaler: Scaler | None = None
        self.fill_values: np.ndarray | None = None
        self.class_names: list[str] = []
        self.feature_names: list[str] = []
        self.num_features = self.input_size = 0
        self.num_targets = 0
        self.multi_label = False
        self.data_report: dict[str, Any] = {}
        self.collate = PadCollate(0.0)

    @property
    def num_classes(self) -> int:
        """Number of classes (classification, after ``setup``)."""
        if self.targets != "classes":
            raise AttributeError("num_classes: these sequences have values, not classes")
        if not self.class_names:
            raise RuntimeError(f"{type(self).__name__}: call setup() first")
        return len(self.class_names)

    # -- reading --------------------------------------------------------------------------

    expected_files = (
        "your sequences as a .npz, a long-format .csv or a UCR/UEA .ts file "
        "(e.g. rnnkit train sequences --set data.path=recordings.npz)"
    )

    def read(self, path: str | Path, *, labelled: bool = True) -> SequenceTable:
        """Read one file with this module's format options (targets optional with
        ``labelled=False``)."""
        path = Path(path)
        kind = self.format or SEQUENCE_FORMATS.get(path.suffix.lower())
        options: dict[str, Any] = {}
        if kind == "npz":
            options["allow_pickle"] = self.allow_pickle
        elif kind == "csv":
            options = dict(self.csv_columns)
        table = read_sequences(path, format=kind, **options)
        if labelled and table.targets is None:
            raise DataFormatError(
                f"{path}: expected a label or target for every sequence, found none"
            )
        return table

    def _build(self) -> None:
        tables = {split: self.read(p) for split, p in self._paths().items()}
        first = tables.get("all", tables.get("train"))
        assert first is not None
        self.feature_names = list(first.feature_names)
        self.num_features = self.input_size = first.num_features
        for table in tables.values():
            if table.num_features != self.num_features:
                raise DataFormatError(
                    f"{table.source}: {table.num_features} features per step, but the training "
                    f"file {first.source} has {self.num_features}"
                )
        targets = self._encode_targets(tables, first)
        parts = self._split(tables, targets)
        self._fit(parts)
        sets = {}
        for name, (table, y) in parts.items():
            xs = [self._scaled(x, w) for x, w in zip(table.sequences, table.ids, strict=True)]
            if self.target_scaler is not None:  # regression trains on scaled targets
                y = self.target_scaler.transform(y.astype(np.float64)).astype(np.float32)
            sets[name] = FeatureSequenceDataset(xs, y)
        self._report(tables, parts)
        self.train_set, self.val_set, self.test_set = sets["train"], sets["val"], sets["test"]

    def _encode_targets(
        self, tables: dict[str, SequenceTable], first: SequenceTable
    ) -> dict[str, np.ndarray]:
        assert first.targets is not None
        if self.targets == "values":
            out = {s: _values(t) for s, t in tables.items()}
            self.num_targets = int(out["all" if "all" in out else "train"].shape[1])
            return out
        self.class_names = self.class_names or label_names([[str(v)] for v in first.targets])
        index = {n: i for i, n in enumerate(self.class_names)}
        out = {}
        for split, table in tables.items():
            assert table.targets is not None
            unknown = [
                (w, v) for w, v in zip(table.ids, table.targets, strict=True) if str(v) not in index
            ]
            if unknown:
                shown = "; ".join(f"{w}: {v!r}" for w, v in unknown[:_SHOWN])
                raise DataFormatError(
                    f"{table.source}: {len(unknown)} label(s) not among the training labels "
                    f"{self.class_names}: {shown}"
                )
            out[split] = np.array([index[str(v)] for v in table.targets], dtype=np.int64)
        self.num_targets = len(self.class_names)
        return out

    def _held_out(self, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        if self.targets == "values":
            return random_split(len(y), fraction, seed=seed)
        return stratified_split(y, fraction, seed=seed)

    def _split(
        self, tables: dict[str, SequenceTable], targets: dict[str, np.ndarray]
    ) -> dict[str, tuple[SequenceTable, np.ndarray]]:
        def take(split: str, idx: np.ndarray) -> tuple[SequenceTable, np.ndarray]:
            t = tables[split]
            table = SequenceTable(
                [t.sequences[i] for i in idx],
                None,
                [t.ids[i] for i in idx],
                t.source,
                t.feature_names,
            )
            return table, targets[split][idx]

        def limited(split: str) -> np.ndarray:
            y = targets[split]
            strata = None if self.targets == "values" else y
            return subsample(strata, len(y), self.limit, seed=self.seed)

        pool_name = "all" if "all" in tables else "train"
        pool = limited(pool_name)
        parts: dict[str, tuple[SequenceTable, np.ndarray]] = {}
        if "test" in tables:
            parts["test"] = take("test", limited("test"))
        else:
            keep, held = self._held_out(targets[pool_name][pool], self.test_fraction, self.seed + 1)
            parts["test"] = take(pool_name, pool[held])
            pool = pool[keep]
        if "val" in tables:
            parts["val"] = take("val", limited("val"))
        else:
            keep, held = self._held_out(targets[pool_name][pool], self.val_fraction, self.seed)
            parts["val"] = take(pool_name, pool[held])
            pool = pool[keep]
        parts["train"] = take(pool_name, pool)
        return {name: parts[name] for name in ("train", "val", "test")}

    # -- scaling and missing values -------------------------------------------------------

    def _fit(self, parts: dict[str, tuple[SequenceTable, np.ndarray]]) -> None:
        train, y = parts["train"]
        steps = np.concatenate(train.sequences)  # (sum T_i, F), training split only
        if self.fill == "mean":
            means = np.nanmean(np.where(np.isinf(steps), np.nan, steps), axis=0)
            self.fill_values = np.where(np.isnan(means), 0.0, means)
        filled = np.concatenate(
            [self._filled(x, w) for x, w in zip(train.sequences, train.ids, strict=True)]
        )
        self.feature_scaler = SCALERS[self.scaler_kind]().fit(filled)
        if self.targets == "values":
            self.target_scaler = SCALERS["standard"]().fit(y.astype(np.float64))

    def _filled(self, x: np.ndarray, where: str) -> np.ndarray:
        """``x`` with its missing values filled as ``fill`` says (or an error naming them)."""
        if np.isinf(x).any():
            steps = np.flatnonzero(np.isinf(x).any(axis=1))
            raise DataFormatError(f"{where}: infinite values at step(s) {steps[:_SHOWN].tolist()}")
        bad = np.isnan(x)
        if not bad.any():
            return x
        if self.fill == "error":
            steps = np.flatnonzero(bad.any(axis=1))
            cols = [self.feature_names[j] for j in np.flatnonzero(bad.any(axis=0))]
            raise DataFormatError(
                f"{where}: missing values at step(s) {steps[:_SHOWN].tolist()} in feature(s) "
                f"{cols}; set data.fill=ffill or data.fill=mean to fill them"
            )
        x = x.copy()
        if self.fill == "mean":
            assert self.fill_values is not None
            x[bad] = np.broadcast_to(self.fill_values, x.shape)[bad]
            return x
        for j in range(x.shape[1]):
            column = x[:, j]
            valid = np.flatnonzero(~np.isnan(column))
            if not len(valid):
                raise DataFormatError(
                    f"{where}: feature {self.feature_names[j]!r} has no value at all; "
                    "forward fill has nothing to carry (use data.fill=mean)"
                )
            # Each step takes the last valid value at or before it; leading gaps the first.
            last = np.maximum.accumulate(np.where(np.isnan(column), -1, np.arange(len(column))))
            column[:] = column[np.where(last < 0, valid[0], last)]
        return x

    def _scaled(self, x: np.ndarray, where: str) -> np.ndarray:
        return self.feature_scaler.transform(self._filled(x, where))

    def encode(self, x: np.ndarray, where: str = "input") -> torch.Tensor:
        """One raw ``(T, F)`` sequence → the model's ``FloatTensor (T, F)`` input (filled
        and scaled as the training data was).

        Raises:
            DataFormatError: another feature count, no steps, or missing values with
                ``fill="error"``.
        """
        if isinstance(x, str | bytes):
            raise DataFormatError(
                f"{where}: expected a numeric (T, {self.num_features}) sequence, got the text "
                f"{x[:40]!r}; give this run a file of sequences (--input: .npz, long CSV, .ts)"
            )
        x = np.asarray(x, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.num_features or len(x) == 0:
            raise DataFormatError(
                f"{where}: expected a (T, {self.num_features}) sequence with T >= 1, got shape "
                f"{x.shape}"
            )
        return torch.as_tensor(self._scaled(x, where), dtype=torch.float32)

    # -- report and state -----------------------------------------------------------

    def _report(
        self, tables: dict[str, SequenceTable], parts: dict[str, tuple[SequenceTable, np.ndarray]]
    ) -> None:
        lengths = np.array([len(s) for t in tables.values() for s in t.sequences])
        missing = int(sum(np.isnan(s).sum() for t in tables.values() for s in t.sequences))
        self.data_report = {
            "files": {s: {"source": t.source, "sequences": len(t)} for s, t in tables.items()},
            "features": self.feature_names,
            "lengths": {
                "min": int(lengths.min()),
                "median": float(np.median(lengths)),
                "max": int(lengths.max()),
            },
            "missing_values": {"count": missing, "fill": self.fill},
        }
        if self.targets == "classes":
            self.data_report["label_counts"] = {
                name: dict(
                    zip(
                        self.class_names,
                        np.bincount(y, minlength=len(self.class_names)).tolist(),
                        strict=True,
                    )
                )
                for name, (_, y) in parts.items()
            }

    def state_dict(self) -> dict[str, Any]:
        """What a reloaded run needs to read new sequences: the scalers, the fill values,
        the label names and the feature layout."""
        if self.train_set is None:
            return {}
        return {
            "targets": self.targets,
            "class_names": list(self.class_names),
            "feature_names": list(self.feature_names),
            "num_targets": self.num_targets,
            "feature_scaler": self.feature_scaler.to_dict(),
            "target_scaler": None if self.target_scaler is None else self.target_scaler.to_dict(),
            "fill_values": None if self.fill_values is None else self.fill_values.tolist(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the scalers and labels (nothing is read from disk)."""
        if not state_dict:
            return
        self.class_names = list(state_dict["class_names"])
        self.feature_names = list(state_dict["feature_names"])
        self.num_features = self.input_size = len(self.feature_names)
        self.num_targets = int(state_dict["num_targets"])
        self.feature_scaler = scaler_from_dict(state_dict["feature_scaler"])
        stored = state_dict.get("target_scaler")
        self.target_scaler = None if stored is None else scaler_from_dict(stored)
        fill = state_dict.get("fill_values")
        self.fill_values = None if fill is None else np.asarray(fill, dtype=np.float64)


def _values(table: SequenceTable) -> np.ndarray:
    assert table.targets is not None
    try:
        rows = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in table.targets]
    except ValueError:
        bad = next(
            (w, v) for w, v in zip(table.ids, table.targets, strict=True) if not _is_number(v)
        )
        raise DataFormatError(
            f"{bad[0]}: targets=values needs numbers, found {bad[1]!r} "
            "(use data.targets=classes for labels)"
        ) from None
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise DataFormatError(f"{table.source}: every sequence needs as many target values")
    values = np.stack(rows).astype(np.float32)  # (N, n)
    if not np.isfinite(values).all():
        bad_rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
        raise DataFormatError(
            f"{table.source}: missing target values in {[table.ids[i] for i in bad_rows[:_SHOWN]]}"
        )
    return values


def _is_number(value: Any) -> bool:
    try:
        np.asarray(value, dtype=np.float64)
    except ValueError:
        return False
    return True

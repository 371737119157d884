"""Time series from CSV: chronological splits, windows, no look-ahead.

:func:`read_csv_series` reads a date column and numeric columns (``csv`` + NumPy;
``Volume`` becomes float like every other column), sorts by date, and refuses
missing values unless told how to fill them. :class:`TimeSeriesDataModule` cuts
the rows into ``[train | val | test]`` in time order, fits the scalers on the train
rows only, and serves sliding windows:

* inputs: rows ``s … s+window-1`` of the feature columns, ``(window, F)``;
* targets: rows ``e+lead … e+lead+horizon-1`` of the target columns, where
  ``e = s+window-1`` is the last input row; ``(horizon,)`` for one target column,
  ``(horizon, n_targets)`` for several.

A window belongs to the split that contains all of its target rows; its inputs may
reach back into earlier splits (the past is known), never forward. The default,
``lead=1``, forecasts the next day(s) from the last ``window`` days.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from rnnkit.data.datasets.base import BaseDataModule
from rnnkit.data.errors import DataFormatError
from rnnkit.data.paths import locate, require_file, verify_checksum
from rnnkit.data.scaling import SCALERS, Scaler, scaler_from_dict
from rnnkit.data.splits import chronological_split

__all__ = [
    "SBUX_SHA256",
    "SeriesTable",
    "TimeSeriesDataModule",
    "WindowDataset",
    "read_csv_series",
    "window_starts",
]

MISSING = ("", "null", "NaN", "nan", "NA", "N/A", "None")
SBUX_SHA256 = {
    "f540369760416a79d440dd404d8b459ecee05ec2f9dacb4146a6442b339b430f": (
        "SBUX daily prices 2003-08-26 … 2023-08-25 (5,034 rows, Yahoo Finance export)"
    ),
}
CANDIDATES = ("stocks/SBUX.csv", "SBUX.csv")
HOW_TO_GET = (
    "Export the daily history of SBUX (Date,Open,High,Low,Close,Adj Close,Volume) "
    "from Yahoo Finance and save it as <data_dir>/stocks/SBUX.csv, or pass path=."
)
Fill = Literal["error", "ffill", "drop"]


@dataclass
class SeriesTable:
    """Numeric columns of a CSV, in date order.

    Attributes:
        dates: ``(N,)`` ``datetime64[D]`` (or the raw strings' order when not dates).
        columns: names of ``values``' columns.
        values: ``(N, C)`` float64.
        source: the file read.
        sorted_rows: ``True`` if the file was not already in ascending date order.
        filled: cells filled by ``fill="ffill"``.
        dropped_rows: file line numbers dropped by ``fill="drop"``.
    """

    dates: np.ndarray
    columns: list[str]
    values: np.ndarray
    source: Path
    sorted_rows: bool = False
    filled: int = 0
    dropped_rows: list[int] = field(default_factory=list)

    def column(self, name: str) -> np.ndarray:
        """One column, ``(N,)``."""
        return self.values[:, self.columns.index(name)]


def _header(path: Path, rows: list[list[str]]) -> list[str]:
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DataFormatError(f"expected a CSV header row in {path}, found an empty file")
    return [c.strip() for c in rows[0]]


def _parse_value(text: str, line: int, column: str, path: Path) -> float:
    text = text.strip()
    if text in MISSING:
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise DataFormatError(
            f"{path}, line {line}, column {column!r}: expected a number, found {text!r}"
        ) from None


def _parse_dates(raw: list[str], lines: list[int], path: Path, date_column: str) -> np.ndarray:
    try:
        return np.array(raw, dtype="datetime64[D]")
    except ValueError:
        for text, line in zip(raw, lines, strict=True):
            try:
                np.datetime64(text, "D")
            except ValueError:
                raise DataFormatError(
                    f"{path}, line {line}, column {date_column!r}: expected an ISO date "
                    f"(YYYY-MM-DD), found {text!r}"
                ) from None
        raise


def read_csv_series(
    path: str | Path,
    *,
    date_column: str = "Date",
    columns: Sequence[str] | None = None,
    fill: Fill = "error",
) -> SeriesTable:
    """Read a dated CSV into a float table, sorted by date.

    Arguments:
        path: the CSV file (header row first).
        date_column: the date index column (ISO dates).
        columns: numeric columns to read (default: every other column).
        fill: missing values (empty, ``null``, ``NaN``…): ``"error"`` raises naming
            the rows, ``"ffill"`` carries the last value forward, ``"drop"`` drops the
            rows (their line numbers are kept in ``dropped_rows``).

    Raises:
        DataNotFoundError: no such file.
        DataFormatError: empty file, missing columns (the message lists the available
            ones), unparsable numbers or dates, duplicate dates, or missing values with
            ``fill="error"``.

    Example::

        >>> t = read_csv_series("SBUX.csv", columns=["Close", "Volume"])  # doctest: +SKIP
        >>> t.values.shape, str(t.dates[0])                              # doctest: +SKIP
        ((5034, 2), '2003-08-26')
    """
    path = require_file(path, "a CSV file")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh)]
    header = _header(path, rows)
    wanted = list(columns) if columns is not None else [c for c in header if c != date_column]
    absent = [c for c in [date_column, *wanted] if c not in header]
    if absent:
        raise DataFormatError(
            f"{path}: expected columns {absent}, not in the header; available columns: {header}"
        )
    body = [(i, r) for i, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r)]
    if not body:
        raise DataFormatError(f"{path}: expected data rows after the header, found none")
    idx = [header.index(c) for c in wanted]
    date_idx = header.index(date_column)
    for line, r in body:
        if len(r) != len(header):
            raise DataFormatError(
                f"{path}, line {line}: expected {len(header)} fields, found {len(r)}"
            )
    values = np.array(
        [[_parse_value(r[j], line, header[j], path) for j in idx] for line, r in body],
        dtype=np.float64,
    ).reshape(len(body), len(wanted))
    lines = [line for line, _ in body]
    dates = _parse_dates([r[date_idx].strip() for _, r in body], lines, path, date_column)
    table = SeriesTable(dates, wanted, values, path)
    _order(table, lines)
    return _fill_missing(table, lines, fill)


def _order(table: SeriesTable, lines: list[int]) -> None:
    order = np.argsort(table.dates, kind="stable")
    if np.any(order != np.arange(len(order))):
        table.sorted_rows = True
        table.dates, table.values = table.dates[order], table.values[order]
        lines[:] = [lines[i] for i in order]
    dupes = np.flatnonzero(table.dates[1:] == table.dates[:-1])
    if len(dupes):
        shown = ", ".join(f"{table.dates[i]} (line {lines[i + 1]})" for i in dupes[:10])
        raise DataFormatError(f"{table.source}: expected one row per date, found repeats: {shown}")


def _fill_missing(table: SeriesTable, lines: list[int], fill: Fill) -> SeriesTable:
    bad = np.isnan(table.values)
    if not bad.any():
        return table
    rows = np.flatnonzero(bad.any(axis=1))
    if fill == "drop":
        keep = ~bad.any(axis=1)
        table.dropped_rows = [lines[i] for i in rows]
        table.dates, table.values = table.dates[keep], table.values[keep]
        return table
    if fill == "ffill" and not bad[0].any():
        values = table.values.copy()
        for r in rows:
            values[r] = np.where(np.isnan(values[r]), values[r - 1], values[r])
        table.filled = int(bad.sum())
        table.values = values
        return table
    shown = "; ".join(
        f"line {lines[r]} ({table.dates[r]}): "
        + ", ".join(c for c, b in zip(table.columns, bad[r], strict=True) if b)
        for r in rows[:10]
    )
    hint = (
        "the first row has missing values, which forward fill cannot fill"
        if fill == "ffill"
        else "pass fill='ffill' or fill='drop' to accept them"
    )
    raise DataFormatError(
        f"{table.source}: {len(rows)} rows have missing values ({hint}): {shown}"
        + (" …" if len(rows) > 10 else "")
    )


def window_starts(
    bounds: slice, *, n_rows: int, window: int, lead: int, horizon: int
) -> np.ndarray:
    """Start rows of the windows whose targets all lie in ``bounds``.

    The window starting at ``s`` has inputs ``s … s+window-1`` and targets
    ``s+window-1+lead … s+window-2+lead+horizon``.
    """
    start, stop = bounds.start or 0, min(bounds.stop, n_rows)
    first = max(0, start - (window - 1) - lead)  # first target row >= start
    last = stop - horizon - (window - 1) - lead  # last target row <= stop - 1
    return np.arange(first, last + 1) if last >= first else np.zeros(0, dtype=np.int64)


class WindowDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Sliding windows over a scaled series, built on access (no copies per window).

    Schema: item ``i`` is ``(FloatTensor (window, F), FloatTensor (horizon,)`` for one
    target column or ``(horizon, n_targets)`` for several``)``.
    """

    def __init__(
        self,
        features: np.ndarray,
        targets: np.ndarray,
        starts: np.ndarray,
        *,
        window: int,
        lead: int,
        horizon: int,
    ) -> None:
        self.features = torch.as_tensor(features, dtype=torch.float32)  # (N, F)
        self.targets = torch.as_tensor(targets, dtype=torch.float32)  # (N, n_targets)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.window, self.lead, self.horizon = window, lead, horizon

    def __len__(self) -> int:
        return len(self.starts)

    def target_rows(self, index: int) -> range:
        """The rows of the series that item ``index``'s targets come from."""
        first = int(self.starts[index]) + self.window - 1 + self.lead
        return range(first, first + self.horizon)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = int(self.starts[index])
        x = self.features[s : s + self.window]  # (window, F)
        rows = self.target_rows(index)
        y = self.targets[rows.start : rows.stop]  # (horizon, n_targets)
        return x, (y[:, 0] if y.shape[1] == 1 else y)


class TimeSeriesDataModule(BaseDataModule):
    """Windowed forecasting from a dated CSV (default: the SBUX daily prices).

    Rows split in time order: the last ``test_fraction`` (0.15) for testing, the last
    ``val_fraction`` (0.15) of the rest for validation. Scalers (``"standard"``,
    ``"minmax"`` or ``"none"``) are fitted on the training rows only. With the defaults
    on ``stocks/SBUX.csv`` (5,034 days): 3,637 / 642 / 755 rows, 3,617 / 642 / 755
    windows of 20 days predicting the next day's close.

    After ``setup``: ``num_features == input_size`` (F), ``num_targets``,
    ``feature_scaler`` and ``target_scaler`` (``inverse_transform`` gives prices
    back), ``dates``, ``split_rows`` (row slices), ``split_sizes`` (windows),
    ``table`` (the :class:`SeriesTable`).

    Batches: ``Batch(inputs FloatTensor (B, window, F), lengths (B,) all window,
    targets FloatTensor (B, horizon)`` or ``(B, horizon, n_targets))``.

    Arguments:
        path: the CSV (default ``<data_dir>/stocks/SBUX.csv``, then ``<data_dir>/SBUX.csv``).
        date_column: the date index.
        features: input columns (the course's variant: ``("Open", "High", "Low",
            "Volume")`` with ``lead=0``, same-day close from the day's other prices).
        targets: predicted columns.
        window, horizon, lead: see the module docstring; ``lead=0`` is refused when a
            target column is also a feature (it would be shown the answer).
        scaler: ``"standard"``, ``"minmax"`` or ``"none"``.
        test_fraction, val_fraction: shares of rows.
        fill: missing values (see :func:`read_csv_series`).
        limit: use only the first ``limit`` rows.
        **kwargs: see :class:`~rnnkit.data.datasets.base.BaseDataModule`.
    """

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        date_column: str = "Date",
        features: Sequence[str] = ("Open", "High", "Low", "Close", "Volume"),
        targets: Sequence[str] = ("Close",),
        window: int = 20,
        horizon: int = 1,
        lead: int = 1,
        scaler: str = "standard",
        test_fraction: float = 0.2,
        val_fraction: float = 0.1,
        fill: Fill = "error",
        **kwargs: Any,
    ) -> None:
        super().__init__(val_fraction=val_fraction, **kwargs)
        if window < 1 or horizon < 1 or lead < 0:
            raise ValueError(
                f"need window >= 1, horizon >= 1, lead >= 0; got {window}, {horizon}, {lead}"
            )
        overlap = [t for t in targets if t in features]
        if lead == 0 and overlap:
            raise ValueError(
                f"lead=0 with target column(s) {overlap} among the features would put the "
                "value to predict in the input; use lead >= 1 or drop them from features"
            )
        if scaler not in SCALERS:
            raise ValueError(f"scaler must be one of {sorted(SCALERS)}, got {scaler!r}")
        self.path = Path(path) if path is not None else None
        self.date_column = date_column
        self.features, self.targets = list(features), list(targets)
        self.window, self.horizon, self.lead = window, horizon, lead
        self.scaler_kind = scaler
        self.test_fraction = test_fraction
        self.fill: Fill = fill
        self.num_features = self.input_size = len(self.features)
        self.num_targets = len(self.targets)
        self.feature_scaler: Scaler = SCALERS[scaler]()
        self.target_scaler: Scaler = SCALERS[scaler]()
        self.table: SeriesTable | None = None
        self.split_rows: dict[str, slice] = {}

    def _csv_path(self) -> Path:
        if self.path is not None:
            return require_file(self.path, "a CSV file")
        return locate(self.data_dir, CANDIDATES, dataset="SBUX daily prices", how_to_get=HOW_TO_GET)

    def prepare_data(self) -> None:
        """Find the CSV; the bundled-by-name SBUX file is checked against its digest."""
        path = self._csv_path()
        if self.path is None and path.name == "SBUX.csv":
            verify_checksum(path, SBUX_SHA256, strict=not self.accept_modified)

    @property
    def target_feature_index(self) -> list[int] | None:
        """Positions of the target columns among the features, or ``None`` if absent."""
        if not all(t in self.features for t in self.targets):
            return None
        return [self.features.index(t) for t in self.targets]

    def naive_forecast(self, inputs: torch.Tensor) -> torch.Tensor:
        """The persistence baseline ("tomorrow = today") in scaled units.

        Repeats each window's last observed target value over the horizon; compare a
        model's loss with this one's. Needs the targets among the features (the
        feature and target scalers of one column share their statistics).

        Arguments:
            inputs: ``(B, window, F)``.

        Returns:
            ``(B, horizon)`` or ``(B, horizon, n_targets)``, like the batch targets.
        """
        index = self.target_feature_index
        if index is None:
            raise ValueError(
                f"targets {self.targets} are not all among the features {self.features}"
            )
        last = inputs[:, -1, index]  # (B, n_targets)
        out = last[:, None, :].expand(-1, self.horizon, -1)  # (B, H, n_targets)
        return out[..., 0] if self.num_targets == 1 else out

    def _build(self) -> None:
        columns = list(dict.fromkeys(self.features + self.targets))
        table = read_csv_series(
            self._csv_path(), date_column=self.date_column, columns=columns, fill=self.fill
        )
        if self.limit is not None:
            table.dates, table.values = table.dates[: self.limit], table.values[: self.limit]
        self.table = table
        n = len(table.values)
        train, val, test = chronological_split(
            n, val_fraction=self.val_fraction, test_fraction=self.test_fraction
        )
        self.split_rows = {"train": train, "val": val, "test": test}
        x = np.stack([table.column(c) for c in self.features], axis=1)  # (N, F)
        y = np.stack([table.column(c) for c in self.targets], axis=1)  # (N, n_targets)
        # Fitted on training rows only: nothing about val/test leaks into the scaling.
        self.feature_scaler.fit(x[train])
        self.target_scaler.fit(y[train])
        xs, ys = self.feature_scaler.transform(x), self.target_scaler.transform(y)
        sets = {}
        for name, rows in self.split_rows.items():
            starts = window_starts(
                rows, n_rows=n, window=self.window, lead=self.lead, horizon=self.horizon
            )
            sets[name] = WindowDataset(
                xs, ys, starts, window=self.window, lead=self.lead, horizon=self.horizon
            )
        if len(sets["train"]) == 0:
            raise DataFormatError(
                f"{table.source}: {train.stop} training rows are too few for one window of "
                f"{self.window} + lead {self.lead} + horizon {self.horizon}"
            )
        self.train_set, self.val_set, self.test_set = sets["train"], sets["val"], sets["test"]

    @property
    def dates(self) -> np.ndarray:
        """``(N,)`` the dates of the rows (after ``setup``)."""
        if self.table is None:
            raise RuntimeError("call setup() first")
        return self.table.dates

    def state_dict(self) -> dict[str, Any]:
        """The fitted scalers as plain data (stored in Lightning checkpoints)."""
        if self.table is None:
            return {}
        return {
            "feature_scaler": self.feature_scaler.to_dict(),
            "target_scaler": self.target_scaler.to_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the scalers (so a checkpoint's predictions can be inverted without the
        CSV); when already set up, the scalers fitted here must agree with the stored ones."""
        if not state_dict:
            return
        stored = {k: scaler_from_dict(state_dict[k]) for k in ("feature_scaler", "target_scaler")}
        if self.table is None:
            self.feature_scaler, self.target_scaler = (
                stored["feature_scaler"],
                stored["target_scaler"],
            )
            return
        for name, scaler in stored.items():
            if scaler.to_dict() != getattr(self, name).to_dict():
                raise DataFormatError(
                    f"the checkpoint's {name} differs from the one fitted on {self.table.source}: "
                    "the data changed since training"
                )

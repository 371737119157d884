"""IMDB: the aclImdb layout from a directory or a tar.gz, the DataModule, the real data."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.data import (
    Batch,
    BucketBatchSampler,
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    IMDBDataModule,
    basic_english,
    padding_fraction,
)
from rnnkit.data.datasets.imdb import read_imdb

REVIEWS = {
    "train/pos/0_9.txt": b"A great film.<br />Loved it!",
    "train/pos/1_8.txt": b"Great acting, great story",
    "train/pos/2_10.txt": b"Wonderful and great",
    "train/pos/3_7.txt": b"good good good",
    "train/pos/4_9.txt": b"Excellent caf\xe9 scene",  # one invalid UTF-8 byte
    "train/neg/0_1.txt": b"Awful. Boring film",
    "train/neg/1_2.txt": b"bad bad acting",
    "train/neg/2_3.txt": b"terrible",
    "train/neg/3_4.txt": b"dull and bad",
    "train/neg/4_1.txt": b"the worst",
    "test/pos/0_10.txt": b"great fun",
    "test/pos/1_8.txt": b"unseenword great",
    "test/neg/0_2.txt": b"bad",
    "test/neg/1_3.txt": b"boring boring",
    "train/unsup/0_0.txt": b"unlabelled, ignored",
}


def make_acl(root: Path, reviews: dict[str, bytes] = REVIEWS) -> Path:
    acl = root / "aclImdb"
    for name, data in reviews.items():
        path = acl / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (acl / "imdb.vocab").write_text("the\n", encoding="utf-8")
    return acl


def make_archive(root: Path, name: str = "imdb/aclImdb_v1.tar.gz", **kw) -> Path:
    acl = make_acl(root / "src", **kw)
    archive = root / name
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(acl, arcname="aclImdb")
    return archive


@pytest.mark.parametrize("kind", ["archive", "directory"])
def test_read_imdb(tmp_path: Path, kind: str) -> None:
    source = make_archive(tmp_path) if kind == "archive" else make_acl(tmp_path)
    corpora = read_imdb(source)
    train, test = corpora["train"], corpora["test"]
    assert (len(train), len(test)) == (10, 4)
    assert train.labels.tolist() == [0] * 5 + [1] * 5 and train.class_names == ["neg", "pos"]
    assert train.ids[0] == "train/neg/0_1" and train[5] == ("A great film.<br />Loved it!", 1)
    assert train.report.replaced_bytes == 1 and train.report.examples[0][0].endswith("4_9.txt")
    assert test.report.clean


def test_read_imdb_layout_errors(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.tar.gz"
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "review.txt").write_text("hi", encoding="utf-8")
    with tarfile.open(wrong, "w:gz") as tar:
        tar.add(tmp_path / "x", arcname="reviews")
    with pytest.raises(DataFormatError, match=r"aclImdb layout.*no reviews found for train/neg"):
        read_imdb(wrong)
    not_tar = tmp_path / "not.tar.gz"
    not_tar.write_bytes(b"plain bytes")
    with pytest.raises(DataFormatError, match="tar archive"):
        read_imdb(not_tar)
    empty = make_acl(tmp_path / "e", {**REVIEWS, "test/neg/9_1.txt": b"  \n"})
    with pytest.raises(DataFormatError, match=r"empty file"):
        read_imdb(empty)


def test_missing_data_names_the_paths_and_the_url(tmp_path: Path) -> None:
    dm = IMDBDataModule(data_dir=tmp_path)
    with pytest.raises(DataNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert str(tmp_path / "imdb" / "aclImdb_v1-labelled.tar.gz") in message
    assert "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz" in message


def test_datamodule_on_a_fixture(tmp_path: Path) -> None:
    make_archive(tmp_path)
    with pytest.raises(ChecksumError, match=r"SHA-256 [0-9a-f]{64} is none of .*c40f74a18d3b"):
        IMDBDataModule(data_dir=tmp_path).prepare_data()  # a home-made archive: refused
    dm = IMDBDataModule(
        data_dir=tmp_path, batch_size=4, val_fraction=0.2, seed=1, accept_modified=True
    )
    with pytest.warns(UserWarning, match="none of the known digests"):
        dm.prepare_data()  # unless accepted: warned, then parsed and checked
    dm.setup("fit")
    assert dm.split_sizes == {"train": 8, "val": 2, "test": 4}
    assert dm.num_classes == 2 and dm.decode_report.replaced_bytes == 1
    assert "unseenword" not in dm.vocab  # vocabulary from the training part only
    val_labels = [y for _, y in dm.val_set]
    assert sorted(val_labels) == [0, 1]  # stratified
    batches = list(dm.train_dataloader())
    assert sum(len(b.targets) for b in batches) == 8
    b = batches[0]
    assert isinstance(b, Batch) and b.inputs.dtype == torch.long and b.inputs.ndim == 2
    assert b.lengths.max() == b.inputs.shape[1]
    assert (b.inputs[b.lengths.argmin(), b.lengths.min() :] == dm.vocab.pad_id).all()
    test_tokens = [t for b in dm.test_dataloader() for t in b.inputs.flatten().tolist()]
    assert dm.vocab.unk_id in test_tokens


def test_datamodule_options(tmp_path: Path) -> None:
    make_acl(tmp_path / "imdb")
    dm = IMDBDataModule(
        data_dir=tmp_path, batch_size=3, max_length=2, fixed_length=True, bucket=False, limit=4
    )
    dm.setup()
    assert dm.split_sizes == {"train": 4, "val": 0, "test": 4}
    assert all(b.inputs.shape[1] == 2 for b in dm.train_dataloader())
    assert all(b.lengths.max() <= 2 for b in dm.test_dataloader())
    state = dm.state_dict()
    other = IMDBDataModule(data_dir=tmp_path, limit=4)
    other.load_state_dict(state)
    assert other.vocab == dm.vocab
    with pytest.raises(ValueError, match="fixed_length=True needs max_length"):
        IMDBDataModule(fixed_length=True)


# --- the real data -------------------------------------------------------------------------


def test_real_imdb_counts_and_balance(imdb_real) -> None:
    train, test = imdb_real["train"], imdb_real["test"]
    assert (len(train), len(test)) == (25_000, 25_000)
    assert np.bincount(train.labels).tolist() == [12_500, 12_500]
    assert np.bincount(test.labels).tolist() == [12_500, 12_500]
    assert train.report.clean and test.report.clean
    assert len(set(train.ids)) == 25_000


def test_real_imdb_bucketing_cuts_padding_threefold(imdb_real) -> None:
    """Batch 64 over the 25,000 training reviews: bucketed vs random batches."""
    lengths = np.array([len(basic_english(t)) for t in imdb_real["train"].texts])
    bucketed = BucketBatchSampler.from_lengths(lengths, 64, seed=0)
    perm = np.random.default_rng(0).permutation(len(lengths))
    random = [perm[i : i + 64] for i in range(0, len(perm), 64)]
    pad_bucketed = padding_fraction(lengths, bucketed)
    pad_random = padding_fraction(lengths, random)
    assert pad_random >= 3 * pad_bucketed, (pad_random, pad_bucketed)
    assert pad_random > 0.5 and pad_bucketed < 0.1  # ~0.74 against ~0.05 on the real data


@pytest.mark.slow
def test_real_imdb_datamodule_end_to_end(shared_data: Path) -> None:
    """The whole IMDB DataModule on the real archive (~15 s: tokenises 50,000 reviews)."""
    if not (shared_data / "imdb" / "aclImdb_v1-labelled.tar.gz").is_file():
        pytest.skip("imdb/aclImdb_v1-labelled.tar.gz absent from the shared data")
    dm = IMDBDataModule(data_dir=shared_data, batch_size=64, max_size=20_000)
    dm.prepare_data()
    dm.setup()
    assert dm.split_sizes == {"train": 22_500, "val": 2_500, "test": 25_000}
    assert len(dm.vocab) == 20_002 and dm.decode_report.clean
    assert len(dm.train_dataloader()) == len(list(dm.train_dataloader())) == 352
    batch = next(iter(dm.val_dataloader()))
    assert batch.inputs.shape[0] == 64 and int(batch.lengths.max()) == batch.inputs.shape[1]

"""Generated/TSV pairs, digit captions and the hello toy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import torch

from rnnkit.data import DigitCaptionsDataModule, HelloDataModule, PairsDataModule
from rnnkit.data.datasets import DIGIT_NAMES, date_pairs, decode_target, read_pairs
from rnnkit.data.errors import DataFormatError, DataNotFoundError


def test_date_pairs_are_correct_distinct_and_seeded() -> None:
    pairs = date_pairs(500, seed=3)
    assert pairs == date_pairs(500, seed=3) and pairs != date_pairs(500, seed=4)
    assert len({s for s, _ in pairs}) == 500
    for source, target in pairs:
        day = dt.date.fromisoformat(target)
        assert str(day.year) in source and day.strftime("%b").lower() in source.lower()


def test_pairs_datamodule_splits_and_batches() -> None:
    dm = PairsDataModule(num_pairs=300, batch_size=16, seed=1)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.split_sizes == {"train": 243, "val": 27, "test": 30}
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.dtype == torch.long and batch.inputs.shape[0] == 16
    assert (batch.targets[:, 0] == dm.target_vocab.bos_id).all()
    first = batch.targets[0]
    assert len(decode_target(dm.target_vocab, first)) == 10  # YYYY-MM-DD
    assert int(batch.lengths.max()) == batch.inputs.shape[1]
    # the vocabularies come back from plain data
    fresh = PairsDataModule(num_pairs=300, seed=1)
    fresh.load_state_dict(dm.state_dict())
    assert fresh.target_vocab == dm.target_vocab and fresh.encode_source(["1 May 2000"])


def test_tsv_pairs(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("hello\tbonjour\n\nthank you\tmerci\n" * 10)
    assert read_pairs(path)[:2] == [("hello", "bonjour"), ("thank you", "merci")]
    dm = PairsDataModule(source=str(path), tokenizer="whitespace", batch_size=4, val_fraction=0.2)
    dm.setup("fit")
    assert "merci" in dm.target_vocab and sum(dm.split_sizes.values()) == 20


def test_bad_tsv_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("a\tb\nno tab here\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:2: expected 'source<TAB>target'"):
        read_pairs(path)
    with pytest.raises(DataNotFoundError, match="found no file"):
        PairsDataModule(source=str(tmp_path / "missing.tsv")).prepare_data()


def test_digit_captions() -> None:
    dm = DigitCaptionsDataModule(batch_size=8, limit=200)
    dm.setup("fit")
    batch = next(iter(dm.test_dataloader()))
    assert batch.inputs.shape == (8, 28, 28)
    for caption, label in zip(
        batch.targets, [dm.test_set.images.labels[i] for i in range(8)], strict=True
    ):
        assert decode_target(dm.target_vocab, caption) == DIGIT_NAMES[label]


def test_hello_is_hell_to_ello() -> None:
    dm = HelloDataModule()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert "".join(dm.vocab.decode(batch.inputs[0])) == "hell"
    assert "".join(dm.vocab.decode(batch.targets[0])) == "ello"
    assert dm.num_classes == 4 and len(dm.vocab) == 4

"""Plain-text streams for language modelling (Tiny Shakespeare by default)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnkit.data import Batch, DataFormatError, DataNotFoundError, TextStreamDataModule
from rnnkit.data.datasets.textstream import BlockDataset, ContiguousBatchSampler

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20


def test_blocks_shift_by_one() -> None:
    ds = BlockDataset(torch.arange(10).numpy(), block_size=4)
    assert len(ds) == 2  # 0-3 -> 1-4, 4-7 -> 5-8; the tail 8,9 cannot fill a block
    x, y = ds[1]
    assert x.tolist() == [4, 5, 6, 7] and y.tolist() == [5, 6, 7, 8]
    assert len(BlockDataset(torch.arange(10).numpy(), 4, stride=1)) == 6
    assert len(BlockDataset(torch.arange(3).numpy(), 4)) == 0


def test_contiguous_batches_continue_row_by_row() -> None:
    batches = list(ContiguousBatchSampler(10, 3))
    assert batches == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]


def test_char_level_datamodule(tmp_path: Path) -> None:
    path = tmp_path / "play.txt"
    path.write_text(TEXT, encoding="utf-8")
    dm = TextStreamDataModule(
        path=path, block_size=16, batch_size=4, val_fraction=0.1, test_fraction=0.1
    )
    dm.prepare_data()
    dm.setup()
    assert dm.stream_length == len(TEXT)
    assert sum(dm.split_tokens.values()) == len(TEXT)
    assert dm.vocab.pad is None and dm.vocab.token(0) == "<unk>"
    assert dm.num_classes == len(dm.vocab) == 1 + len(set(TEXT))
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, Batch) and batch.inputs.shape == (4, 16) == batch.targets.shape
    assert batch.inputs.dtype == torch.long and batch.lengths.tolist() == [16] * 4
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
    text = "".join(dm.vocab.decode(dm.train_set[0][0]))
    assert text == TEXT[:16]


def test_contiguous_training_and_word_level(tmp_path: Path) -> None:
    path = tmp_path / "play.txt"
    path.write_text(TEXT, encoding="utf-8")
    dm = TextStreamDataModule(path=path, block_size=5, batch_size=2, contiguous=True)
    dm.setup()
    b0, b1 = list(dm.train_dataloader())[:2]
    n = len(dm.train_set) // 2
    assert torch.equal(b0.inputs[1], dm.train_set[n][0]) and torch.equal(
        b1.inputs[1], dm.train_set[n + 1][0]
    )
    words = TextStreamDataModule(path=path, tokenizer="whitespace", block_size=3)
    words.setup()
    assert words.stream_length == len(TEXT.split()) and "Citizen:" in words.vocab


def test_stream_bad_data(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes((b"abc\xff\n" + b"abcd\n" * 3) * 100)  # one line in four
    dm = TextStreamDataModule(path=bad, block_size=8)
    dm.setup()
    assert dm.decode_report.replaced_bytes == 100
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataFormatError, match="empty file"):
        TextStreamDataModule(path=empty).setup()
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("short", encoding="utf-8")
    with pytest.raises(DataFormatError, match="too few for one block of 128"):
        TextStreamDataModule(path=tiny).setup()
    with pytest.raises(DataNotFoundError, match=r"tinyshakespeare/input\.txt"):
        TextStreamDataModule(data_dir=tmp_path / "none").prepare_data()


def test_real_tiny_shakespeare(shared_data: Path) -> None:
    if not (shared_data / "tinyshakespeare" / "input.txt").is_file():
        pytest.skip("tinyshakespeare/input.txt absent from the shared data")
    dm = TextStreamDataModule(data_dir=shared_data, block_size=256, batch_size=32)
    dm.prepare_data()
    dm.setup()
    assert dm.stream_length == 1_115_394 and dm.decode_report.clean
    assert sum(dm.split_tokens.values()) == 1_115_394
    assert dm.split_tokens == {"train": 1_006_643, "val": 52_981, "test": 55_770}
    assert len(dm.vocab) == 66  # 65 characters + <unk>
    batch = next(iter(dm.val_dataloader()))
    assert batch.inputs.shape == (32, 256) and torch.equal(
        batch.inputs[:, 1:], batch.targets[:, :-1]
    )

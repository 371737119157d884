"""Plain text as one stream for character- or word-level language modelling.

The text is tokenised as a whole (characters by default), cut in time order into
``[train | val | test]`` token ranges, numericalised with a vocabulary built on the
training range, and served as blocks: inputs ``ids[s : s+T]``, targets
``ids[s+1 : s+T+1]`` (the next token at every step).

Default data: Tiny Shakespeare (``tinyshakespeare/input.txt``, 1,115,394 characters).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from rnnkit.data.batching import PadCollate
from rnnkit.data.datasets.base import BaseDataModule
from rnnkit.data.errors import DataFormatError
from rnnkit.data.files import DecodeReport, read_text
from rnnkit.data.paths import (
    RemoteFile,
    find_or_download,
    locate,
    require_file,
    verify_checksum,
)
from rnnkit.data.splits import chronological_split
from rnnkit.data.tokenizers import Tokenizer, get_tokenizer
from rnnkit.data.vocab import Vocab

__all__ = [
    "TINY_SHAKESPEARE",
    "BlockDataset",
    "ContiguousBatchSampler",
    "TextStreamDataModule",
]

TINY_SHAKESPEARE = RemoteFile(
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    path="tinyshakespeare/input.txt",
    sha256={
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed": (
            "char-rnn tinyshakespeare/input.txt, 1,115,394 bytes"
        ),
    },
)
CANDIDATES = (TINY_SHAKESPEARE.path, "tinyshakespeare.txt", "input.txt")
HOW_TO_GET = f"Download {TINY_SHAKESPEARE.url} (or pass download=True), or pass path=."


class BlockDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Fixed-length blocks of a token stream with next-token targets.

    Schema: item ``i`` is ``(LongTensor (T,) ids[s:s+T], LongTensor (T,) ids[s+1:s+T+1])``
    with ``s = i * stride``.

    Arguments:
        ids: ``(N,)`` the token stream.
        block_size: ``T``.
        stride: step between block starts (``T``: disjoint blocks; smaller: overlap).
    """

    def __init__(self, ids: np.ndarray, block_size: int, stride: int | None = None) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        self.block_size = block_size
        self.stride = stride or block_size
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")

    def __len__(self) -> int:
        usable = len(self.ids) - 1 - self.block_size  # the last block needs one more target
        return usable // self.stride + 1 if usable >= 0 else 0

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = index * self.stride
        return self.ids[s : s + self.block_size], self.ids[s + 1 : s + self.block_size + 1]


class ContiguousBatchSampler(Sampler[list[int]]):
    """Batches whose rows continue each other from one batch to the next.

    Row ``j`` of batch ``k`` is block ``j * n + k`` (``n = len // batch_size``), so
    with disjoint blocks a hidden state carried across batches (stateful truncated
    BPTT, detached between batches) keeps reading its own part of the stream. The
    leftover ``len % batch_size`` blocks are dropped. Not shuffled, not sharded:
    under distributed training use ``Trainer(use_distributed_sampler=False)`` with
    one process per stream, or random blocks instead.
    """

    def __init__(self, num_blocks: int, batch_size: int) -> None:
        self.num_blocks, self.batch_size = num_blocks, batch_size

    def __len__(self) -> int:
        return self.num_blocks // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self)
        for k in range(n):
            yield [j * n + k for j in range(self.batch_size)]


class TextStreamDataModule(BaseDataModule):
    """Language modelling on one text file (default: Tiny Shakespeare, characters).

    The stream is split in time order (no block straddles two splits): the last
    ``test_fraction`` (0.05) of the tokens for testing, the last ``val_fraction``
    (0.05) of the rest for validation: 1,006,643 / 52,981 / 55,770 characters of Tiny
    Shakespeare (66 tokens: 65 characters and ``<unk>``).
    After ``setup``: ``vocab`` (built on the training range; unseen tokens map to
    ``<unk>``), ``stream_length`` (tokens in the whole file), ``split_tokens``,
    ``split_sizes`` (blocks), ``decode_report``.

    Batches: ``Batch(inputs LongTensor (B, T), lengths (B,) all T,
    targets LongTensor (B, T))``.

    Arguments:
        path: a text file (default ``<data_dir>/tinyshakespeare/input.txt``).
        tokenizer: ``"characters"`` (default), ``"whitespace"``, any name or callable.
        block_size: ``T`` tokens per example.
        stride: step between training blocks (default ``T``); evaluation blocks never
            overlap.
        contiguous: training batches continue each other row by row (for stateful
            truncated BPTT) instead of shuffled blocks.
        vocab: use this vocabulary instead of building one.
        test_fraction, val_fraction: shares of the stream.
        **kwargs: see :class:`~rnnkit.data.datasets.base.BaseDataModule`; ``limit``
            keeps the first ``limit`` tokens.
    """

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        tokenizer: str | Tokenizer = "characters",
        block_size: int = 128,
        stride: int | None = None,
        contiguous: bool = False,
        vocab: Vocab | None = None,
        test_fraction: float = 0.05,
        val_fraction: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(val_fraction=val_fraction, **kwargs)
        self.path = Path(path) if path is not None else None
        self.tokenizer = get_tokenizer(tokenizer)
        self.block_size, self.stride, self.contiguous = block_size, stride, contiguous
        self.vocab: Vocab | None = vocab
        self.test_fraction = test_fraction
        self.stream_length = 0
        self.split_tokens: dict[str, int] = {}
        self.decode_report = DecodeReport()
        self.collate = PadCollate()

    def _text_path(self) -> Path:
        if self.path is not None:
            return require_file(self.path, "a text file")
        return locate(self.data_dir, CANDIDATES, dataset="Tiny Shakespeare", how_to_get=HOW_TO_GET)

    def prepare_data(self) -> None:
        """Find the text (downloading Tiny Shakespeare with ``download=True``)."""
        allowed = self.download and self.path is None
        path = find_or_download(self._text_path, TINY_SHAKESPEARE, self.data_dir, allowed=allowed)
        if self.path is None and path.name == "input.txt":
            verify_checksum(path, TINY_SHAKESPEARE.sha256, strict=not self.accept_modified)

    @property
    def num_classes(self) -> int:
        """Output classes of a next-token model: ``len(vocab)``."""
        if self.vocab is None:
            raise RuntimeError("call setup() first")
        return len(self.vocab)

    def _build(self) -> None:
        report = DecodeReport()
        text = read_text(self._text_path(), report=report)
        self.decode_report = report
        tokens = self.tokenizer(text)
        if self.limit is not None:
            tokens = tokens[: self.limit]
        self.stream_length = len(tokens)
        train, val, test = chronological_split(
            len(tokens), val_fraction=self.val_fraction, test_fraction=self.test_fraction
        )
        if self.vocab is None:
            self.vocab = Vocab.build([tokens[train]], pad=None, unk="<unk>")
        ids = np.fromiter(self.vocab.lookup(tokens), dtype=np.int64, count=len(tokens))
        self.split_tokens = {
            "train": train.stop,
            "val": val.stop - val.start,
            "test": test.stop - test.start,
        }
        self.train_set = BlockDataset(ids[train], self.block_size, self.stride)
        self.val_set = BlockDataset(ids[val], self.block_size)
        self.test_set = BlockDataset(ids[test], self.block_size)
        if len(self.train_set) == 0:
            raise DataFormatError(
                f"{self._text_path()}: {train.stop} training tokens are too few for one block "
                f"of {self.block_size} (+1 target)"
            )

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled blocks, or row-contiguous batches with ``contiguous=True``."""
        if not self.contiguous:
            return super().train_dataloader()
        dataset = self._require(self.train_set)
        return DataLoader(
            dataset,
            batch_sampler=ContiguousBatchSampler(len(dataset), self.batch_size),  # type: ignore[arg-type]
            collate_fn=self.collate,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )

    def state_dict(self) -> dict[str, Any]:
        """The vocabulary as plain data (stored in Lightning checkpoints)."""
        return {"vocab": self.vocab.to_dict()} if self.vocab is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the vocabulary; built splits are re-numericalised if it differs."""
        if "vocab" in state_dict:
            vocab = Vocab.from_dict(state_dict["vocab"])
            rebuild = self.train_set is not None and vocab != self.vocab
            self.vocab = vocab
            if rebuild:
                self._build()

"""Building blocks shared by the loaders: datasets and the DataModule base classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset

from rnnkit.config.convert import check_positive
from rnnkit.data.batching import BucketBatchSampler, PadCollate, SeededSampler, ShardedBatchSampler
from rnnkit.data.errors import DataNotFoundError
from rnnkit.data.files import DecodeReport
from rnnkit.data.paths import RemoteFile, find_or_download, resolve_data_dir, verify_checksum
from rnnkit.data.shaping import Ragged, numericalize
from rnnkit.data.splits import random_split, stratified_split, subsample
from rnnkit.data.tokenizers import Tokenizer, get_tokenizer
from rnnkit.data.vocab import Vocab

__all__ = [
    "BaseDataModule",
    "FileSplits",
    "ImageSequenceDataset",
    "TextClassificationDataModule",
    "TextCorpus",
    "TokenSequenceDataset",
]


@dataclass
class TextCorpus(Dataset[tuple[str, Any]]):
    """Labelled raw texts, as read from disk.

    Schema: item ``i`` is ``(texts[i], int(labels[i]))``, or ``(texts[i], labels[i])``
    with a multi-hot ``(L,)`` row for multi-label data.

    Attributes:
        texts: the documents.
        labels: ``(N,)`` int64 class ids, or ``(N, L)`` float32 multi-hot rows (one column
            per label name, several may be 1).
        ids: a stable identifier of each document (file name, ``file:line``, NEWID, ...).
        class_names: name of each class id (each label column).
        report: invalid UTF-8 bytes replaced while reading.
    """

    texts: list[str]
    labels: np.ndarray
    ids: list[str]
    class_names: list[str]
    report: DecodeReport = field(default_factory=DecodeReport)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, Any]:
        label = self.labels[index]
        return self.texts[index], (label if self.multi_label else int(label))

    @property
    def multi_label(self) -> bool:
        """Whether ``labels`` are multi-hot rows."""
        return self.labels.ndim == 2

    def take(self, indices: Sequence[int] | np.ndarray) -> TextCorpus:
        """The documents at ``indices`` (the report is shared)."""
        idx = np.asarray(indices, dtype=np.int64)
        return TextCorpus(
            [self.texts[i] for i in idx],
            self.labels[idx],
            [self.ids[i] for i in idx],
            self.class_names,
            self.report,
        )


class TokenSequenceDataset(Dataset[tuple[torch.Tensor, Any]]):
    """Numericalised sequences with one class label (or a multi-hot row) each.

    Schema: item ``i`` is ``(LongTensor (T_i,) token ids, int class id)``, or
    ``(LongTensor (T_i,), FloatTensor (L,) multi-hot)`` for multi-label data.

    Arguments:
        ids: the sequences (:class:`~rnnkit.data.shaping.Ragged`).
        labels: ``(N,)`` class ids, or ``(N, L)`` multi-hot rows.
    """

    def __init__(self, ids: Ragged, labels: np.ndarray) -> None:
        if len(ids) != len(labels):
            raise ValueError(f"{len(ids)} sequences but {len(labels)} labels")
        self.ids = ids
        labels = np.asarray(labels)
        self.labels = labels.astype(np.float32 if labels.ndim == 2 else np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        x = torch.from_numpy(self.ids[index].astype(np.int64))
        if self.labels.ndim == 2:
            return x, torch.from_numpy(self.labels[index])
        return x, int(self.labels[index])

    @property
    def lengths(self) -> np.ndarray:
        """``(N,)`` sequence lengths (for bucketing)."""
        return self.ids.lengths


class ImageSequenceDataset(Dataset[tuple[torch.Tensor, int]]):
    """Images read row by row: each ``H × W`` image is ``H`` steps of ``W`` features.

    Schema: item ``i`` is ``(FloatTensor (H, W) in [0, 1], int class id)``. Pixels are
    kept as ``uint8`` and scaled per item, so 70,000 images cost 55 MB, not 220.

    Arguments:
        images: ``(N, H, W)`` uint8.
        labels: ``(N,)`` class ids.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        if images.ndim != 3:
            raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.images[index]).to(torch.float32).div_(255.0)  # (H, W)
        return x, int(self.labels[index])


class FileSplits:
    """Where a DataModule of your own files reads from: ``path=`` one file to split, or
    ``train_path=`` with ``test_path=`` and optionally ``val_path=``.

    A mixin before the DataModule base (``class M(FileSplits, BaseDataModule)``): it takes
    the four file options and passes every other keyword on. Subclasses say in
    ``expected_files`` what ``data.path`` should be (for the error when it is missing).
    """

    expected_files: ClassVar[str] = "a data file"
    path: str | None
    train_path: str | None
    val_path: str | None
    test_path: str | None

    def __init__(
        self,
        *,
        path: str | None = None,
        train_path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if path is not None and train_path is not None:
            raise ValueError("give either path= (one file to split) or train_path=, not both")
        if train_path is None and (val_path is not None or test_path is not None):
            raise ValueError("val_path= and test_path= need train_path= as well")
        self.path, self.train_path, self.val_path, self.test_path = (
            path,
            train_path,
            val_path,
            test_path,
        )

    def _paths(self) -> dict[str, str]:
        """``{"all" | "train", ["val"], ["test"]: path}``."""
        if self.path is None and self.train_path is None:
            raise DataNotFoundError(
                f"expected data.path: {self.expected_files} (or data.train_path with "
                "data.test_path)"
            )
        named = {"all": self.path, "train": self.train_path}
        named |= {"val": self.val_path, "test": self.test_path}
        return {split: p for split, p in named.items() if p is not None}

    def prepare_data(self) -> None:
        """Check that the files are there (nothing to download)."""
        for path in self._paths().values():
            if not Path(path).exists():
                raise DataNotFoundError(f"expected {self.expected_files} at {path}, found nothing")


class BaseDataModule(L.LightningDataModule):
    """What every rnnkit DataModule shares.

    ``prepare_data()`` finds (and with ``download=True`` fetches) the files;
    ``setup(stage)`` reads them once and builds ``train_set``, ``val_set`` and
    ``test_set``; the dataloaders yield :class:`~rnnkit.data.Batch`.

    Arguments:
        data_dir: where the dataset lives (default ``$RNNKIT_DATA_DIR``, else
            ``~/.cache/rnnkit``).
        batch_size: examples per batch.
        seed: for every random choice (subsampling, validation split, shuffling).
        val_fraction: share of the training data held out for validation.
        num_workers: ``DataLoader`` worker processes.
        limit: keep at most this many examples of each source split (chosen with the
            seed, stratified where there are classes), for quick runs.
        pin_memory: ``DataLoader(pin_memory=...)``, for GPU training.
        download: allow ``prepare_data()`` to download missing files.
        accept_modified: read a dataset file whose SHA-256 digest is none of the known
            ones (a file you changed on purpose) with a warning; by default that is an
            error (:class:`~rnnkit.data.errors.ChecksumError`).
    """

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        batch_size: int = 64,
        seed: int = 0,
        val_fraction: float = 0.1,
        num_workers: int = 0,
        limit: int | None = None,
        pin_memory: bool = False,
        download: bool = False,
        accept_modified: bool = False,
    ) -> None:
        super().__init__()
        check_positive("batch_size", batch_size=batch_size)
        check_positive("limit", limit=limit)
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a number in [0, 1), got {val_fraction!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers: expected an integer >= 0, got {num_workers!r}")
        self.data_dir = resolve_data_dir(data_dir)
        self.batch_size = batch_size
        self.seed = seed
        self.val_fraction = val_fraction
        self.num_workers = num_workers
        self.limit = limit
        self.pin_memory = pin_memory
        self.download = download
        self.accept_modified = accept_modified
        self.train_set: Dataset[Any] | None = None
        self.val_set: Dataset[Any] | None = None
        self.test_set: Dataset[Any] | None = None
        self.collate = PadCollate()

    # lifecycle --------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Read the data and build the splits (once; later calls are no-ops)."""
        if self.train_set is None:
            self._build()

    def _build(self) -> None:
        raise NotImplementedError

    # sizes ------------------------------------------------------------------------------

    def _size(self, dataset: Dataset[Any] | None) -> int:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for sizes")
        return len(dataset)  # type: ignore[arg-type]

    @property
    def train_size(self) -> int:
        """Training examples."""
        return self._size(self.train_set)

    @property
    def val_size(self) -> int:
        """Validation examples."""
        return self._size(self.val_set)

    @property
    def test_size(self) -> int:
        """Test examples."""
        return self._size(self.test_set)

    @property
    def split_sizes(self) -> dict[str, int]:
        """``{"train": ..., "val": ..., "test": ...}``."""
        return {"train": self.train_size, "val": self.val_size, "test": self.test_size}

    # loaders ----------------------------------------------------------------------------

    def _require(self, dataset: Dataset[Any] | None) -> Dataset[Any]:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before the dataloaders")
        return dataset

    bucket: bool = False
    """Batches of similar length (for datasets with ``lengths``); subclasses take an option."""
    bucket_size_multiplier: int = 100
    """Batches per bucketing pool."""

    def shard(self) -> tuple[int, int]:
        """``(processes, this one's global rank)`` of the run this DataModule feeds.

        ``(1, 0)`` outside a Trainer; under distributed training every split is
        sharded by the loaders themselves (the Trainer's own ``DistributedSampler``
        injection is off in rnnkit runs): see :mod:`rnnkit.data.batching`.
        """
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def _batch_sampler(self, dataset: Dataset[Any], *, train: bool) -> BatchSampler:
        """Training: a new seeded order every epoch (``seed + epoch``), each step's batch
        split across processes. Evaluation: the split in order, every ``processes``-th
        example per rank (disjoint, nothing repeated, so metrics count each once). With
        ``bucket`` and a dataset that has ``lengths``, batches of similar length."""
        n = len(dataset)  # type: ignore[arg-type]
        processes, rank = self.shard()
        lengths = getattr(dataset, "lengths", None)
        if self.bucket and lengths is not None:
            return self._bucket_sampler(n, lengths, train=train, processes=processes, rank=rank)
        if train:
            order = SeededSampler(n, seed=self.seed)
            return ShardedBatchSampler(order, self.batch_size, num_replicas=processes, rank=rank)
        return BatchSampler(range(rank, n, processes), self.batch_size, drop_last=False)

    def _bucket_sampler(
        self, n: int, lengths: np.ndarray, *, train: bool, processes: int, rank: int
    ) -> BatchSampler:
        """Length-bucketed batches: seeded shuffled pools when training, each step's batch
        split across processes; this rank's share sorted by length otherwise."""
        if train:
            return BucketBatchSampler(
                SeededSampler(n, seed=self.seed),
                self.batch_size,
                False,
                lengths=lengths,
                bucket_size_multiplier=self.bucket_size_multiplier,
                seed=self.seed,
                num_replicas=processes,
                rank=rank,
            )
        return BucketBatchSampler(  # least padding
            range(rank, n, processes),
            self.batch_size,
            False,
            lengths=lengths,
            bucket_size_multiplier=None,
            shuffle=False,
        )

    def _loader(self, dataset: Dataset[Any] | None, *, train: bool) -> DataLoader[Any]:
        dataset = self._require(dataset)
        return DataLoader(
            dataset,
            batch_sampler=self._batch_sampler(dataset, train=train),
            collate_fn=self.collate,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            # Only for the workers' seeds: starting an epoch then leaves the global
            # random state alone, so a resumed run draws the same dropout masks.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled (seeded) training batches."""
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation batches, in a fixed order."""
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader[Any]:
        """Test batches, in a fixed order."""
        return self._loader(self.test_set, train=False)


class TextClassificationDataModule(BaseDataModule):
    """Base of the text-classification DataModules (IMDB, Reuters).

    ``setup`` reads the raw corpora, subsamples (``limit``), carves a stratified
    validation split from the training part, tokenises, builds the vocabulary on the
    training part only (no validation or test token leaks into it), numericalises,
    and truncates to ``max_length``. Batches are
    ``Batch(LongTensor (B, T), LongTensor (B,), LongTensor (B,))``, padded with
    ``vocab.pad_id``; with ``bucket=True`` they group similar lengths.

    Arguments (beyond :class:`BaseDataModule`'s):
        tokenizer: name or callable (see :func:`~rnnkit.data.get_tokenizer`).
        lower: lower-case tokens in the vocabulary (``basic_english`` already does).
        min_freq, max_size: vocabulary limits (see :meth:`Vocab.build`).
        vocab: use this vocabulary instead of building one (e.g. from a checkpoint).
        max_length: truncate longer examples to this many tokens.
        truncating: drop tokens from the end (``"post"``) or the start (``"pre"``).
        fixed_length: pad every batch to ``max_length`` (torchtext's ``fix_length``).
        bucket: length-bucketed batches (``BucketIterator``); ``False``: random batches.
        bucket_size_multiplier: batches per bucketing pool.
    """

    def __init__(
        self,
        *,
        tokenizer: str | Tokenizer = "basic_english",
        lower: bool = False,
        min_freq: int = 1,
        max_size: int | None = None,
        vocab: Vocab | None = None,
        max_length: int | None = None,
        truncating: Literal["pre", "post"] = "post",
        fixed_length: bool = False,
        bucket: bool = True,
        bucket_size_multiplier: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fixed_length and max_length is None:
            raise ValueError("fixed_length=True needs max_length")
        self.tokenizer = get_tokenizer(tokenizer)
        self.lower = lower
        self.min_freq = min_freq
        self.max_size = max_size
        self.vocab: Vocab | None = vocab
        self.max_length = max_length
        self.truncating: Literal["pre", "post"] = truncating
        self.fixed_length = fixed_length
        self.bucket = bucket
        self.bucket_size_multiplier = bucket_size_multiplier
        self.class_names: list[str] = []
        self.decode_report = DecodeReport()

    archive: ClassVar[RemoteFile]
    """The dataset's official archive: what ``prepare_data`` downloads and checks."""

    def _find(self) -> Path:
        """Where the raw data is: the archive, or a directory extracted from it."""
        raise NotImplementedError

    def _read(self) -> tuple[TextCorpus, TextCorpus]:
        """The raw ``(train, test)`` corpora."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Find the archive (downloading it with ``download=True``) and check its digest."""
        path = find_or_download(self._find, self.archive, self.data_dir, allowed=self.download)
        if path.is_file():  # an extracted directory has no digest to check
            verify_checksum(path, self.archive.sha256, strict=not self.accept_modified)

    @property
    def num_classes(self) -> int:
        """Number of classes (after ``setup``)."""
        if not self.class_names:
            raise RuntimeError(f"{type(self).__name__}: call setup() first")
        return len(self.class_names)

    @property
    def pad_id(self) -> int:
        """The padding id used in batches."""
        pad = self.vocab.pad_id if self.vocab is not None else None
        return 0 if pad is None else pad

    def _build(self) -> None:
        train_pool, test = self._read()
        self.class_names = list(train_pool.class_names)
        self.decode_report = train_pool.report.merge(test.report)
        train_pool = train_pool.take(
            subsample(_strata(train_pool.labels), len(train_pool), self.limit, seed=self.seed)
        )
        test = test.take(subsample(_strata(test.labels), len(test), self.limit, seed=self.seed))
        train, val = self._validation_split(train_pool)
        parts = {"train": train, "val": val, "test": test}
        tokens = {name: [self.tokenizer(t) for t in c.texts] for name, c in parts.items()}
        parts, tokens = self._without_empty(parts, tokens)
        if self.vocab is None:
            self.vocab = Vocab.build(
                tokens["train"], min_freq=self.min_freq, max_size=self.max_size, lower=self.lower
            )
        sets = {
            name: TokenSequenceDataset(
                numericalize(
                    tokens[name], self.vocab, max_length=self.max_length, truncating=self.truncating
                ),
                parts[name].labels,
            )
            for name in parts
        }
        self.collate = PadCollate(
            self.pad_id, pad_to=self.max_length if self.fixed_length else None
        )
        self.train_set, self.val_set, self.test_set = sets["train"], sets["val"], sets["test"]

    def _validation_split(self, train_pool: TextCorpus) -> tuple[TextCorpus, TextCorpus]:
        """``(train, val)``: a seeded ``val_fraction`` of the training pool (stratified by
        class; at random for multi-label data, which has no single class to stratify by)."""
        strata = _strata(train_pool.labels)
        if strata is None:
            keep, held = random_split(len(train_pool), self.val_fraction, seed=self.seed)
        else:
            keep, held = stratified_split(strata, self.val_fraction, seed=self.seed)
        return train_pool.take(keep), train_pool.take(held)

    def _without_empty(
        self, parts: dict[str, TextCorpus], tokens: dict[str, list[list[str]]]
    ) -> tuple[dict[str, TextCorpus], dict[str, list[list[str]]]]:
        """Hook for documents that have no tokens (kept here; a subclass may drop and count
        them: a sequence of no steps has nothing for a recurrent layer to read)."""
        return parts, tokens

    def state_dict(self) -> dict[str, Any]:
        """The vocabulary and class names, as plain JSON-able data (Lightning stores this
        in checkpoints, so a resumed or reloaded model sees the same token ids)."""
        if self.vocab is None:
            return {}
        return {"vocab": self.vocab.to_dict(), "class_names": list(self.class_names)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the vocabulary; already-built splits are re-numericalised if it differs."""
        if "vocab" not in state_dict:
            return
        vocab = Vocab.from_dict(state_dict["vocab"])
        rebuild = self.train_set is not None and vocab != self.vocab
        self.vocab = vocab
        if rebuild:
            self._build()


def _strata(labels: np.ndarray) -> np.ndarray | None:
    """Class ids to stratify splits by; ``None`` for multi-hot rows (split at random)."""
    return None if labels.ndim == 2 else labels

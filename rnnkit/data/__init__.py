"""The data pipeline: tokenisers, vocabularies, padding, bucketing, dataset loaders.

The torchtext replacement. Importing ``rnnkit.data`` is cheap (torch and NumPy only);
the DataModules (which need Lightning) load on first use, e.g.
``from rnnkit.data import IMDBDataModule``.

Every DataModule's dataloaders yield :class:`Batch` ``(inputs, lengths, targets)``,
batch-first.
"""

from __future__ import annotations

import importlib
from typing import Any

from rnnkit.data.batching import (
    Batch,
    BucketBatchSampler,
    PadCollate,
    SeededSampler,
    ShardedBatchSampler,
    pack_batch,
    pad_collate,
    padding_fraction,
)
from rnnkit.data.errors import (
    ChecksumError,
    ChecksumWarning,
    DataError,
    DataFormatError,
    DataNotFoundError,
)
from rnnkit.data.files import DecodeReport, decode_utf8, read_text
from rnnkit.data.paths import ENV_VAR, default_cache_dir, resolve_data_dir
from rnnkit.data.scaling import MinMaxScaler, Scaler, StandardScaler
from rnnkit.data.shaping import Ragged, numericalize, pad_sequences, to_categorical
from rnnkit.data.splits import chronological_split, random_split, stratified_split
from rnnkit.data.tokenizers import (
    HFTokenizer,
    Tokenizer,
    basic_english,
    characters,
    get_tokenizer,
    whitespace,
)
from rnnkit.data.vectors import VectorsReport, WordVectors, load_word_vectors
from rnnkit.data.vocab import Vocab

_LAZY = {
    "DATAMODULES",
    "BaseDataModule",
    "DigitCaptionsDataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "HFDataModule",
    "HelloDataModule",
    "PairsDataModule",
    "SequenceDataModule",
    "TextFilesDataModule",
    "IDXDataModule",
    "IMDBDataModule",
    "MNISTDataModule",
    "ReutersDataModule",
    "TextStreamDataModule",
    "TimeSeriesDataModule",
    "get_datamodule",
}


def __getattr__(name: str) -> Any:
    # DataModules import Lightning (seconds); load them only when asked for.
    if name in _LAZY:
        return getattr(importlib.import_module("rnnkit.data.datasets"), name)
    raise AttributeError(f"module 'rnnkit.data' has no attribute {name!r}")


__all__ = [
    "DATAMODULES",
    "ENV_VAR",
    "BaseDataModule",
    "Batch",
    "BucketBatchSampler",
    "ChecksumError",
    "ChecksumWarning",
    "DataError",
    "DataFormatError",
    "DataNotFoundError",
    "DecodeReport",
    "DigitCaptionsDataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "HFDataModule",
    "HFTokenizer",
    "HelloDataModule",
    "IDXDataModule",
    "IMDBDataModule",
    "MNISTDataModule",
    "MinMaxScaler",
    "PadCollate",
    "PairsDataModule",
    "Ragged",
    "ReutersDataModule",
    "Scaler",
    "SeededSampler",
    "SequenceDataModule",
    "ShardedBatchSampler",
    "StandardScaler",
    "TextFilesDataModule",
    "TextStreamDataModule",
    "TimeSeriesDataModule",
    "Tokenizer",
    "VectorsReport",
    "Vocab",
    "WordVectors",
    "basic_english",
    "characters",
    "chronological_split",
    "decode_utf8",
    "default_cache_dir",
    "get_datamodule",
    "get_tokenizer",
    "load_word_vectors",
    "numericalize",
    "pack_batch",
    "pad_collate",
    "pad_sequences",
    "padding_fraction",
    "random_split",
    "read_text",
    "resolve_data_dir",
    "stratified_split",
    "to_categorical",
    "whitespace",
]

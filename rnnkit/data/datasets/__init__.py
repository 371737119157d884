"""Dataset loaders: one module per source, each with a ``LightningDataModule``.

``DATAMODULES`` maps a name to its class; ``get_datamodule(name, **options)`` builds
one (the CLI and recipes use the same names).
"""

from __future__ import annotations

from typing import Any

from rnnkit.data.datasets.base import (
    BaseDataModule,
    ImageSequenceDataset,
    TextClassificationDataModule,
    TextCorpus,
    TokenSequenceDataset,
)
from rnnkit.data.datasets.captions import DIGIT_NAMES, DigitCaptionsDataModule
from rnnkit.data.datasets.digits import (
    DigitsDataModule,
    bundled_digits_path,
    read_digits,
    read_digits_csv,
)
from rnnkit.data.datasets.hf import HFDataModule, load_hf_dataset
from rnnkit.data.datasets.idx import (
    FashionMNISTDataModule,
    IDXDataModule,
    MNISTDataModule,
    read_idx,
)
from rnnkit.data.datasets.imdb import IMDBDataModule, read_imdb
from rnnkit.data.datasets.longrange import LongRangeDataModule
from rnnkit.data.datasets.pairs import PairsDataModule, date_pairs, decode_target, read_pairs
from rnnkit.data.datasets.reuters import ReutersDataModule, read_reuters, topic_corpora
from rnnkit.data.datasets.sequences import (
    FeatureSequenceDataset,
    SequenceDataModule,
    SequenceTable,
    read_long_csv,
    read_npz,
    read_sequences,
    read_ts,
)
from rnnkit.data.datasets.textfiles import (
    LabelledTexts,
    TextFilesDataModule,
    read_labelled_texts,
    read_text_rows,
)
from rnnkit.data.datasets.textstream import BlockDataset, TextStreamDataModule
from rnnkit.data.datasets.timeseries import (
    SeriesTable,
    TimeSeriesDataModule,
    WindowDataset,
    read_csv_series,
)
from rnnkit.data.datasets.toy import HelloDataModule
from rnnkit.registry import Registry

DATAMODULES: Registry[type[BaseDataModule]] = Registry("dataset")
"""DataModule classes by name (the names recipes and the CLI use)."""

for _name, _cls, _about in (
    ("digits", DigitsDataModule, "5,000 real MNIST digits bundled with rnnkit (offline)"),
    ("mnist", MNISTDataModule, "MNIST from IDX files, 28 steps x 28 features"),
    ("fashion-mnist", FashionMNISTDataModule, "Fashion-MNIST from IDX files, rows as steps"),
    ("imdb", IMDBDataModule, "IMDB movie reviews (aclImdb), sentiment"),
    ("reuters", ReutersDataModule, "Reuters-21578 newswires, 46 single-label topics"),
    ("text", TextFilesDataModule, "your labelled texts: CSV, TSV, JSONL, Parquet, class folders"),
    ("sequences", SequenceDataModule, "your numeric sequences: .npz, long CSV, UCR/UEA .ts"),
    ("hf", HFDataModule, "a local Hugging Face dataset (save_to_disk or csv/json/parquet)"),
    ("stocks", TimeSeriesDataModule, "daily prices from a CSV (e.g. SBUX), windows"),
    ("timeseries", TimeSeriesDataModule, "any CSV time series, windows"),
    ("shakespeare", TextStreamDataModule, "tiny Shakespeare as one character stream"),
    ("textstream", TextStreamDataModule, "any text file as one token stream"),
    ("pairs", PairsDataModule, "source-target pairs: generated dates or a TSV file"),
    ("digit-captions", DigitCaptionsDataModule, "bundled digits captioned with their names"),
    ("hello", HelloDataModule, "the course's 'hell' -> 'o' toy sequence"),
    ("longrange", LongRangeDataModule, "adding problem / copy-memory task at any length"),
):
    DATAMODULES.register(_name, _cls, description=_about)


def get_datamodule(name: str, **options: Any) -> BaseDataModule:
    """Build a registered DataModule: ``get_datamodule("imdb", batch_size=32)``."""
    return DATAMODULES.get(name)(**options)


__all__ = [
    "DATAMODULES",
    "DIGIT_NAMES",
    "BaseDataModule",
    "BlockDataset",
    "DigitCaptionsDataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "FeatureSequenceDataset",
    "HFDataModule",
    "HelloDataModule",
    "IDXDataModule",
    "IMDBDataModule",
    "ImageSequenceDataset",
    "LabelledTexts",
    "LongRangeDataModule",
    "MNISTDataModule",
    "PairsDataModule",
    "ReutersDataModule",
    "SequenceDataModule",
    "SequenceTable",
    "SeriesTable",
    "TextClassificationDataModule",
    "TextCorpus",
    "TextFilesDataModule",
    "TextStreamDataModule",
    "TimeSeriesDataModule",
    "TokenSequenceDataset",
    "WindowDataset",
    "bundled_digits_path",
    "date_pairs",
    "decode_target",
    "get_datamodule",
    "load_hf_dataset",
    "read_csv_series",
    "read_digits",
    "read_digits_csv",
    "read_idx",
    "read_imdb",
    "read_labelled_texts",
    "read_long_csv",
    "read_npz",
    "read_pairs",
    "read_reuters",
    "read_sequences",
    "read_text_rows",
    "read_ts",
    "topic_corpora",
]

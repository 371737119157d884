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
from rnnkit.data.datasets.digits import DigitsDataModule, bundled_digits_path, read_digits_csv
from rnnkit.data.datasets.idx import (
    FashionMNISTDataModule,
    IDXDataModule,
    MNISTDataModule,
    read_idx,
)
from rnnkit.data.datasets.imdb import IMDBDataModule, read_imdb
from rnnkit.data.datasets.reuters import ReutersDataModule, read_reuters, topic_corpora
from rnnkit.data.datasets.textstream import BlockDataset, TextStreamDataModule
from rnnkit.data.datasets.timeseries import (
    SeriesTable,
    TimeSeriesDataModule,
    WindowDataset,
    read_csv_series,
)

DATAMODULES: dict[str, type[BaseDataModule]] = {
    "digits": DigitsDataModule,
    "mnist": MNISTDataModule,
    "fashion-mnist": FashionMNISTDataModule,
    "imdb": IMDBDataModule,
    "reuters": ReutersDataModule,
    "stocks": TimeSeriesDataModule,
    "timeseries": TimeSeriesDataModule,
    "shakespeare": TextStreamDataModule,
    "textstream": TextStreamDataModule,
}
"""DataModule classes by name."""


def get_datamodule(name: str, **options: Any) -> BaseDataModule:
    """Build a registered DataModule: ``get_datamodule("imdb", batch_size=32)``."""
    try:
        cls = DATAMODULES[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; expected one of {', '.join(sorted(DATAMODULES))}"
        ) from None
    return cls(**options)


__all__ = [
    "DATAMODULES",
    "BaseDataModule",
    "BlockDataset",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "IDXDataModule",
    "IMDBDataModule",
    "ImageSequenceDataset",
    "MNISTDataModule",
    "ReutersDataModule",
    "SeriesTable",
    "TextClassificationDataModule",
    "TextCorpus",
    "TextStreamDataModule",
    "TimeSeriesDataModule",
    "TokenSequenceDataset",
    "WindowDataset",
    "bundled_digits_path",
    "get_datamodule",
    "read_csv_series",
    "read_digits_csv",
    "read_idx",
    "read_imdb",
    "read_reuters",
    "topic_corpora",
]

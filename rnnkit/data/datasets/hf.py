"""Hugging Face ``datasets`` as a text-classification source (optional: ``rnnkit[hf]``).

``data.name: hf`` reads a dataset that is already on this machine, never a download:

* ``path=`` a directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``
  (read with ``datasets.load_from_disk``);
* ``path=`` a local CSV, JSON Lines or Parquet file, or ``data_files=`` a mapping
  ``split → file`` (read with ``datasets.load_dataset("csv" | "json" | "parquet",
  data_files=...)``, the packaged builders, which need no network).

The splits are ``train_split`` (default ``"train"``), ``val_split`` (``"validation"``
when the dataset has one, else carved from training) and ``test_split`` (``"test"``, else
carved). A ``ClassLabel`` column gives the label names in its own order; a
``Sequence(ClassLabel)`` or a list column is multi-label (``multi_label=True``). From
there on everything is :class:`~rnnkit.data.datasets.textfiles.TextFilesDataModule`'s:
the tokeniser, the vocabulary on the training split, empty texts counted, unseen test
labels refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.data.datasets.textfiles import LabelledTexts, TextFilesDataModule, _add, _split_labels
from rnnkit.data.errors import DataFormatError, DataNotFoundError

__all__ = ["HFDataModule", "load_hf_dataset"]

_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DataNotFoundError(
            "data.name=hf needs the Hugging Face datasets package: pip install 'rnnkit[hf]'"
        ) from None
    return datasets


def load_hf_dataset(
    path: str | Path | None = None, *, data_files: dict[str, str] | None = None
) -> Any:
    """A local dataset as a ``datasets.DatasetDict`` (a single ``Dataset`` becomes its
    ``"train"`` split).

    Arguments:
        path: a ``save_to_disk`` directory, or one CSV/TSV/JSON(L)/Parquet file.
        data_files: ``{split: file}`` instead of ``path`` (all of one format).

    Raises:
        DataNotFoundError: ``datasets`` not installed, or nothing at ``path``.
        DataFormatError: a file suffix no packaged builder reads.
    """
    datasets = _datasets()
    if data_files is None:
        if path is None:
            raise DataNotFoundError(
                "expected data.path (a save_to_disk directory or a CSV/JSONL/Parquet file) "
                "or data.data_files"
            )
        path = Path(path)
        if not path.exists():
            raise DataNotFoundError(f"expected a Hugging Face dataset at {path}, found nothing")
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
            return loaded if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
        data_files = {"train": str(path)}
    suffixes = {Path(f).suffix.lower() for f in data_files.values()}
    builders = {_BUILDERS.get(s) for s in suffixes}
    if None in builders or len(builders) != 1:
        raise DataFormatError(
            f"data_files {data_files}: expected files of one format among {sorted(_BUILDERS)}"
        )
    for file in data_files.values():
        if not Path(file).is_file():
            raise DataNotFoundError(f"expected a data file at {file}, found nothing")
    builder = builders.pop()
    options = {"delimiter": "\t"} if suffixes == {".tsv"} else {}
    return datasets.load_dataset(builder, data_files=dict(data_files), **options)


class HFDataModule(TextFilesDataModule):
    """Text classification from a local Hugging Face dataset (see the module docstring).

    Arguments (beyond :class:`~rnnkit.data.datasets.textfiles.TextFilesDataModule`'s
    column, label, tokeniser and vocabulary options):
        path: a ``save_to_disk`` directory or a local data file.
        data_files: ``{split: file}`` instead of ``path``.
        train_split, val_split, test_split: split names (``val_split``/``test_split``
            absent from the dataset: carved from training with the seed).

    Example::

        >>> dm = HFDataModule(path="imdb_hf", max_size=20_000)   # doctest: +SKIP
        >>> dm.setup("fit"); dm.class_names                     # doctest: +SKIP
        ['neg', 'pos']
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        data_files: dict[str, str] | None = None,
        train_split: str = "train",
        val_split: str | None = "validation",
        test_split: str | None = "test",
        **kwargs: Any,
    ) -> None:
        super().__init__(path=path, **kwargs)
        self.data_files = dict(data_files) if data_files is not None else None
        self.train_split, self.val_split, self.test_split = train_split, val_split, test_split

    def _paths(self) -> dict[str, str]:
        if self.path is None and self.data_files is None:
            raise DataNotFoundError(
                "expected data.path: a directory saved with save_to_disk, or a local "
                "CSV/JSONL/Parquet file (e.g. --set data.name=hf --set data.path=imdb_hf)"
            )
        return {"all": self.path} if self.path is not None else dict(self.data_files or {})

    def prepare_data(self) -> None:
        """Check that ``datasets`` is installed and the files are there (no download)."""
        _datasets()
        for path in self._paths().values():
            if not Path(path).exists():
                raise DataNotFoundError(f"expected a Hugging Face dataset at {path}, found nothing")

    def _sources(self) -> dict[str, LabelledTexts]:
        loaded = load_hf_dataset(self.path, data_files=self.data_files)
        source = str(self.path or self.data_files)
        names = {"train": self.train_split, "val": self.val_split, "test": self.test_split}
        if self.train_split not in loaded:
            raise DataFormatError(
                f"{source}: expected a split {self.train_split!r} (data.train_split); "
                f"the splits are {list(loaded)}"
            )
        out = {}
        for role, split in names.items():
            if split is not None and split in loaded:
                out[role] = self._texts(loaded[split], f"{source}[{split}]")
        return out

    def _texts(self, dataset: Any, where: str) -> LabelledTexts:
        columns = list(dataset.column_names)
        absent = [c for c in (self.text_column, self.label_column) if c not in columns]
        if absent:
            raise DataFormatError(
                f"{where}: expected column(s) {absent}, not found; the columns are {columns} "
                "(set data.text_column / data.label_column)"
            )
        names = self._label_feature_names(dataset.features[self.label_column])
        if names is not None and self.labels is None:
            self.labels = names  # a ClassLabel's own order
        out = LabelledTexts([], [], [], where)
        texts, labels = dataset[self.text_column], dataset[self.label_column]
        for row, (text, cell) in enumerate(zip(texts, labels, strict=True)):
            if names is not None:
                cell = [names[i] for i in cell] if isinstance(cell, list) else names[cell]
            found = _split_labels(
                cell, multi_label=self.multi_label, separator=self.label_separator
            )
            if found is None and not self.multi_label:
                raise DataFormatError(f"{where}, row {row}: expected a label, found none")
            _add(out, f"{where}, row {row}", text, found or [])
        out.report.add(where, 0)  # datasets decodes text itself
        return out

    def _label_feature_names(self, feature: Any) -> list[str] | None:
        inner = getattr(feature, "feature", feature)  # Sequence(ClassLabel) → ClassLabel
        names = getattr(inner, "names", None)
        return list(names) if names else None

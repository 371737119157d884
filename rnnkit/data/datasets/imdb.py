"""IMDB movie reviews (Maas et al., ACL 2011): 25,000 train + 25,000 test, balanced.

Reads the official ``aclImdb`` layout, ``{train,test}/{pos,neg}/<id>_<rating>.txt``,
from the ``.tar.gz`` (streamed, never extracted) or from an extracted directory.
``train/unsup`` (unlabelled) and the ``*.feat`` files are ignored.

Schema: :func:`read_imdb` gives a :class:`~rnnkit.data.datasets.base.TextCorpus` per
split, item ``(review text, label)`` with label 0 = ``neg`` (rating ≤ 4) and
1 = ``pos`` (rating ≥ 7), ordered by (label, review id).
"""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.datasets.base import TextClassificationDataModule, TextCorpus
from rnnkit.data.errors import DataFormatError
from rnnkit.data.files import DecodeReport, check_decodable, decode_utf8, decompressing
from rnnkit.data.paths import RemoteFile, locate

__all__ = ["IMDB_ARCHIVE", "IMDBDataModule", "find_imdb", "read_imdb"]

CLASS_NAMES = ["neg", "pos"]
SPLITS = ("train", "test")

IMDB_ARCHIVE = RemoteFile(
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    path="imdb/aclImdb_v1.tar.gz",
    sha256={
        "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe": (
            "official aclImdb_v1.tar.gz, 84,125,825 bytes"
        ),
        "f4f975b76a8079c172b9b0d42e034a63264327e8dd49440b771004a55e6048f3": (
            "aclImdb_v1-labelled.tar.gz: the official files minus train/unsup, *.feat, urls_*"
        ),
    },
)
# Looked for in this order under the data directory.
CANDIDATES = (
    "imdb/aclImdb_v1-labelled.tar.gz",
    "imdb/aclImdb_v1.tar.gz",
    "imdb/aclImdb",
    "aclImdb_v1.tar.gz",
    "aclImdb",
)
HOW_TO_GET = (
    f"Download {IMDB_ARCHIVE.url} (or pass download=True) and keep it as "
    f"<data_dir>/{IMDB_ARCHIVE.path}; an extracted aclImdb/ directory works too."
)

_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


def find_imdb(root: Path) -> Path:
    """The IMDB archive or directory under ``root`` (see ``CANDIDATES``)."""
    return locate(root, CANDIDATES, dataset="IMDB", how_to_get=HOW_TO_GET)


class _Collector:
    """Gathers reviews per split while the files stream past."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.rows: dict[str, list[tuple[int, int, int, str]]] = {s: [] for s in SPLITS}
        self.reports = {s: DecodeReport() for s in SPLITS}
        self.seen: list[str] = []

    def add(self, name: str, read: Any) -> None:
        match = _MEMBER.search(name)
        if len(self.seen) < 8:
            self.seen.append(name)
        if match is None:
            return
        split, polarity, review_id, rating = match.groups()
        data: bytes = read()
        if not data.strip():
            raise DataFormatError(
                f"{self.source}: expected review text in {name}, found an empty file"
            )
        text, replaced = decode_utf8(data)
        self.reports[split].add(name, replaced)
        label = CLASS_NAMES.index(polarity)
        self.rows[split].append((label, int(review_id), int(rating), text))

    def corpora(self) -> dict[str, TextCorpus]:
        missing = [
            f"{s}/{p}"
            for s in SPLITS
            for p in CLASS_NAMES
            if not any(r[0] == CLASS_NAMES.index(p) for r in self.rows[s])
        ]
        if missing:
            raise DataFormatError(
                f"{self.source}: expected the aclImdb layout {{train,test}}/{{pos,neg}}/"
                f"<id>_<rating>.txt; no reviews found for {', '.join(missing)}. "
                f"First entries seen: {self.seen}"
            )
        merged = self.reports[SPLITS[0]].merge(self.reports[SPLITS[1]])
        check_decodable(self.source, merged.files_with_replacements, merged.files)
        out = {}
        for split in SPLITS:
            rows = sorted(self.rows[split], key=lambda r: (r[0], r[1]))
            out[split] = TextCorpus(
                texts=[r[3] for r in rows],
                labels=np.array([r[0] for r in rows], dtype=np.int64),
                ids=[f"{split}/{CLASS_NAMES[r[0]]}/{r[1]}_{r[2]}" for r in rows],
                class_names=list(CLASS_NAMES),
                report=self.reports[split],
            )
        return out


def read_imdb(source: str | Path) -> dict[str, TextCorpus]:
    """Read IMDB reviews from the official archive or an extracted ``aclImdb`` directory.

    Arguments:
        source: ``aclImdb_v1.tar.gz`` (or any tar with that layout), or a directory
            containing ``train/`` and ``test/`` (or an ``aclImdb/`` directory that does).

    Returns:
        ``{"train": TextCorpus, "test": TextCorpus}``; invalid UTF-8 bytes are replaced
        and counted in each corpus's ``report``.

    Raises:
        DataFormatError: not the aclImdb layout, a split/label missing, or an empty review.

    Example::

        >>> corpora = read_imdb("../shared/data/imdb/aclImdb_v1-labelled.tar.gz")  # doctest: +SKIP
        >>> len(corpora["train"]), corpora["train"][0][1]                          # doctest: +SKIP
        (25000, 0)
    """
    source = Path(source)
    collector = _Collector(source)
    if source.is_dir():
        root = source / "aclImdb" if (source / "aclImdb").is_dir() else source
        for split in SPLITS:
            for polarity in CLASS_NAMES:
                folder = root / split / polarity
                if not folder.is_dir():
                    continue
                for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                    collector.add(f"{split}/{polarity}/{entry.name}", Path(entry.path).read_bytes)
    else:
        try:
            # Stream mode: one sequential pass, nothing extracted to disk.
            with decompressing(source), tarfile.open(source, "r|*") as archive:
                for member in archive:
                    if member.isfile():
                        fh = archive.extractfile(member)
                        if fh is not None and _MEMBER.search(member.name):
                            collector.add(member.name, fh.read)
                        elif len(collector.seen) < 8:
                            collector.seen.append(member.name)
        except tarfile.TarError as err:
            raise DataFormatError(f"{source}: expected a (gzipped) tar archive: {err}") from err
    return collector.corpora()


class IMDBDataModule(TextClassificationDataModule):
    """IMDB sentiment classification as a LightningDataModule.

    Splits: the official 25,000 test reviews; the official 25,000 training reviews
    minus a stratified, seeded ``val_fraction`` (default 0.1: 22,500 / 2,500).
    After ``setup``: ``vocab`` (built on the training part), ``num_classes == 2``,
    ``class_names == ["neg", "pos"]``, ``split_sizes``, ``decode_report``.

    Batches: ``Batch(inputs LongTensor (B, T), lengths LongTensor (B,),
    targets LongTensor (B,))``, bucketed by length by default.

    Arguments: see :class:`~rnnkit.data.datasets.base.TextClassificationDataModule`
    and :class:`~rnnkit.data.datasets.base.BaseDataModule`.

    Example::

        >>> dm = IMDBDataModule(data_dir="../shared/data", max_size=20_000)  # doctest: +SKIP
        >>> dm.prepare_data(); dm.setup("fit")                               # doctest: +SKIP
        >>> batch = next(iter(dm.train_dataloader()))                        # doctest: +SKIP
        >>> batch.inputs.shape, len(dm.vocab)                                # doctest: +SKIP
        (torch.Size([64, 212]), 20002)
    """

    archive = IMDB_ARCHIVE

    def _find(self) -> Path:
        return find_imdb(self.data_dir)

    def _read(self) -> tuple[TextCorpus, TextCorpus]:
        corpora = read_imdb(self._find())
        return corpora["train"], corpora["test"]

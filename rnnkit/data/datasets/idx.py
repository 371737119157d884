"""MNIST and Fashion-MNIST from IDX files, as 28-step × 28-feature sequences.

The IDX format (LeCun et al.): a 4-byte magic ``0x00 0x00 <dtype> <ndim>``, ``ndim``
big-endian uint32 dimensions, then the values in C order. :func:`read_idx` reads raw
or gzipped files (detected from the content, not the name) and checks the header
against the file size.

Files are looked for, in order, in ``<data_dir>/<name>/``, ``<data_dir>/<name>/raw/``
and ``<data_dir>/``, each as ``.gz`` or raw; Fashion-MNIST also in
``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rnnkit.data.datasets.base import BaseDataModule, ImageSequenceDataset
from rnnkit.data.errors import DataFormatError, DataNotFoundError
from rnnkit.data.files import decompressing
from rnnkit.data.paths import RemoteFile, download, require_file, verify_checksum
from rnnkit.data.splits import stratified_split, subsample

__all__ = [
    "FASHION_MNIST",
    "MNIST",
    "FashionMNISTDataModule",
    "IDXDataModule",
    "IDXSource",
    "MNISTDataModule",
    "find_idx_files",
    "read_idx",
    "read_idx_split",
]

_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or gzipped) into an array of its declared shape.

    Raises:
        DataNotFoundError: no such file.
        DataFormatError: empty, a bad magic number, or a size that does not match the
            header's dimensions.

    Example::

        >>> read_idx("train-labels-idx1-ubyte.gz").shape  # doctest: +SKIP
        (60000,)
    """
    path = require_file(path, "an IDX file")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        with decompressing(path):
            data = gzip.decompress(data)
    if len(data) < 4:
        raise DataFormatError(f"{path}: expected an IDX header (4+ bytes), found {len(data)} bytes")
    zero, code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code not in _DTYPES or ndim == 0:
        raise DataFormatError(
            f"{path}: expected an IDX magic number 00 00 <type in 08,09,0B-0E> <ndim>, "
            f"found {data[:4].hex(' ')}"
        )
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _DTYPES[code]
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise DataFormatError(
            f"{path}: header says shape {dims} of {dtype} ({expected} bytes with the header), "
            f"file has {len(data)} bytes"
        )
    return (
        np.frombuffer(data, dtype=dtype, offset=header)
        .reshape(dims)
        .astype(dtype.newbyteorder("="))
    )


@dataclass(frozen=True)
class IDXSource:
    """Where a dataset's four IDX files come from.

    Attributes:
        name: folder under the data directory (``"mnist"``, ``"fashion-mnist"``).
        base_url: official location of the ``.gz`` files.
        sha256: file name → digest → what it identifies.
        system_dirs: system-wide fallbacks (Debian packages).
        install_hint: another way to get the files, for the not-found message.
        class_names: the ten class names.
    """

    name: str
    base_url: str
    sha256: dict[str, dict[str, str]]
    system_dirs: tuple[str, ...] = ()
    install_hint: str = ""
    class_names: tuple[str, ...] = tuple(str(d) for d in range(10))

    def remote(self, filename: str) -> RemoteFile:
        """The download of ``filename`` (a ``.gz`` name)."""
        return RemoteFile(
            self.base_url + filename, f"{self.name}/{filename}", self.sha256.get(filename, {})
        )


_OFFICIAL = "official"
MNIST = IDXSource(
    name="mnist",
    base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    sha256={
        "train-images-idx3-ubyte.gz": {
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609": _OFFICIAL,
        },
        "train-labels-idx1-ubyte.gz": {
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c": _OFFICIAL,
        },
        "t10k-images-idx3-ubyte.gz": {
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6": _OFFICIAL,
        },
        "t10k-labels-idx1-ubyte.gz": {
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6": _OFFICIAL,
        },
    },
)

_DEBIAN = "Debian dataset-fashion-mnist 0.0~git20200523.55506a9-1 (same IDX content, re-gzipped)"
FASHION_MNIST = IDXSource(
    name="fashion-mnist",
    base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    sha256={
        "train-images-idx3-ubyte.gz": {
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84": _OFFICIAL,
            "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7": _DEBIAN,
        },
        "train-labels-idx1-ubyte.gz": {
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845": _OFFICIAL,
            "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056": _DEBIAN,
        },
        "t10k-images-idx3-ubyte.gz": {
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073": _OFFICIAL,
            "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa": _DEBIAN,
        },
        "t10k-labels-idx1-ubyte.gz": {
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5": _OFFICIAL,
            "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05": _DEBIAN,
        },
    },
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    install_hint="on Debian/Ubuntu, apt-get install dataset-fashion-mnist",
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)


def _dirs(root: Path, source: IDXSource) -> list[Path]:
    return [root / source.name, root / source.name / "raw", root, *map(Path, source.system_dirs)]


def find_idx_files(root: Path, source: IDXSource, split: str) -> tuple[Path, Path]:
    """The ``(images, labels)`` files of ``split`` (``"train"``/``"test"``).

    Both files must come from the same directory, so a stray single file elsewhere
    cannot pair with the wrong labels.
    """
    stems = FILES[split]
    tried: list[Path] = []
    for folder in _dirs(root, source):
        found = []
        for stem in stems:
            options = [folder / f"{stem}.gz", folder / stem]
            tried.extend(options)
            found.append(next((p for p in options if p.is_file()), None))
        if all(found):
            return found[0], found[1]  # type: ignore[return-value]
    listed = "\n".join(f"  - {p}" for p in tried)
    raise DataNotFoundError(
        f"{source.name} ({split}): no IDX files found. Looked for:\n{listed}\n"
        f"Download {source.base_url}<file>.gz (or pass download=True) into "
        f"<data_dir>/{source.name}/"
        + (f"; or {source.install_hint}" if source.install_hint else "")
        + "."
    )


def read_idx_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, H, W) uint8, labels (N,) int64)``, checked to agree."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFormatError(
            f"{images_path}: expected uint8 images of shape (N, H, W), "
            f"found {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataFormatError(
            f"{labels_path}: expected {len(images)} labels for {images_path}, "
            f"found shape {labels.shape}"
        )
    return images, labels.astype(np.int64)


class IDXDataModule(BaseDataModule):
    """Images from IDX files, read row by row: ``H`` steps of ``W`` features.

    Splits: the official test set; the official training set minus a stratified,
    seeded ``val_fraction`` (default 0.1: 54,000 / 6,000 / 10,000 for MNIST and
    Fashion-MNIST). After ``setup``: ``num_classes``, ``class_names``,
    ``input_size == num_features == W`` (28), ``seq_len == H`` (28), ``split_sizes``.

    Batches: ``Batch(inputs FloatTensor (B, 28, 28) in [0, 1], lengths (B,) all 28,
    targets LongTensor (B,))``.
    """

    source: ClassVar[IDXSource] = MNIST

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.class_names = list(self.source.class_names)
        self.num_classes = len(self.class_names)
        self.input_size = self.num_features = 28
        self.seq_len = 28

    def prepare_data(self) -> None:
        """Find the four files (downloading missing ones with ``download=True``); check digests."""
        for split, stems in FILES.items():
            try:
                paths: tuple[Path, ...] = find_idx_files(self.data_dir, self.source, split)
            except FileNotFoundError:
                if not self.download:
                    raise
                paths = tuple(download(self.source.remote(f"{s}.gz"), self.data_dir) for s in stems)
            for path in paths:
                known = self.source.sha256.get(path.name)
                if known:
                    verify_checksum(path, known, strict=not self.accept_modified)

    def _build(self) -> None:
        splits = {s: read_idx_split(*find_idx_files(self.data_dir, self.source, s)) for s in FILES}
        (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
        self.input_size = self.num_features = int(train_x.shape[2])
        self.seq_len = int(train_x.shape[1])
        pool = subsample(train_y, len(train_y), self.limit, seed=self.seed)
        keep, held = stratified_split(train_y[pool], self.val_fraction, seed=self.seed)
        test = subsample(test_y, len(test_y), self.limit, seed=self.seed)
        self.train_set = ImageSequenceDataset(train_x[pool[keep]], train_y[pool[keep]])
        self.val_set = ImageSequenceDataset(train_x[pool[held]], train_y[pool[held]])
        self.test_set = ImageSequenceDataset(test_x[test], test_y[test])


class MNISTDataModule(IDXDataModule):
    """MNIST handwritten digits (60,000 / 10,000), 28 rows × 28 pixels per image."""

    source = MNIST


class FashionMNISTDataModule(IDXDataModule):
    """Fashion-MNIST (Zalando; 60,000 / 10,000), 28 rows × 28 pixels per image.

    Also found in ``/usr/share/datasets/fashion-mnist`` after
    ``apt-get install dataset-fashion-mnist``.
    """

    source = FASHION_MNIST

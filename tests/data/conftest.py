"""Fixtures of the data-pipeline tests: the real datasets (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def shared_data_dir() -> Path | None:
    """The real datasets: ``$RNNKIT_DATA_DIR``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("RNNKIT_DATA_DIR")
    path = Path(env) if env else REPO_ROOT / ".." / "shared" / "data"
    return path.resolve() if path.is_dir() else None


def real_file(relative: str) -> Path:
    """A file of the shared data directory, or skip the test saying what is missing."""
    root = shared_data_dir()
    if root is None:
        pytest.skip(
            "real datasets absent: neither $RNNKIT_DATA_DIR nor ../shared/data beside the "
            "checkout is a directory"
        )
    path = root / relative
    if not path.exists():
        pytest.skip(f"real dataset file absent: {path}")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data directory (the test is skipped without it)."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("real datasets absent: no $RNNKIT_DATA_DIR and no ../shared/data")
    return root


@pytest.fixture(scope="session")
def imdb_real() -> dict:
    """The real IMDB corpora, read once per session (a few seconds)."""
    from rnnkit.data.datasets.imdb import read_imdb

    return read_imdb(real_file("imdb/aclImdb_v1-labelled.tar.gz"))


@pytest.fixture(scope="session")
def reuters_real() -> tuple:
    """The real Reuters-21578 documents and decode report, read once per session."""
    from rnnkit.data.datasets.reuters import read_reuters

    return read_reuters(real_file("reuters21578/reuters21578.tar.gz"))


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """Debian's Fashion-MNIST files (``apt-get install dataset-fashion-mnist``)."""
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST absent: {FASHION_DIR} (apt-get install dataset-fashion-mnist)")
    return FASHION_DIR

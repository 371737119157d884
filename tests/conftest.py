"""Shared test setup: small tensors run fastest (and deterministically) on one thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def shared_data_dir() -> Path | None:
    """The real datasets: $RNNKIT_DATA_DIR, else ../shared/data beside the checkout."""
    env = os.environ.get("RNNKIT_DATA_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None

"""The map in docs/architecture.md stays true: the files one training step runs, file sizes.

One IMDB-style step (an embedding BiLSTM classifier, a ragged batch, training on the CPU,
so the engine rule picks the BPTT engine) is traced, forward and backward, and the rnnkit
files it runs must be exactly those the architecture page lists for it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import rnnkit
from rnnkit.data import Batch
from rnnkit.models import build_model
from rnnkit.training.module import SequenceTaskModule
from rnnkit.training.tasks import ClassificationTask

PACKAGE = Path(rnnkit.__file__).parent
DOC = PACKAGE.parent / "docs" / "architecture.md"


def _files_of_one_step() -> list[str]:
    torch.manual_seed(0)
    model = build_model(
        "classifier",
        {
            "input": {"kind": "embedding", "vocab_size": 50, "embedding_dim": 8, "dropout": 0.2},
            "num_classes": 2,
            "rnn": {"cell": "lstm", "hidden_size": 8, "bidirectional": True},
            "pooling": "mean",
            "head_hidden": [8],
        },
    )
    module = SequenceTaskModule(model, ClassificationTask(num_classes=2)).train()
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]  # no Trainer here
    lengths = torch.tensor([12, 7, 3, 12])
    batch = Batch(torch.randint(1, 50, (4, 12)), lengths, torch.tensor([0, 1, 1, 0]))

    def step() -> None:
        module.training_step(batch, 0).backward()

    step()  # warm up (the native kernels load on first use)
    seen: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        name = frame.f_code.co_filename
        if event == "call" and name.startswith(str(PACKAGE)):
            rel = Path(name).relative_to(PACKAGE).as_posix()
            if rel not in seen:
                seen.append(rel)

    sys.setprofile(profile)
    try:
        step()
    finally:
        sys.setprofile(None)
    return seen


def _documented_step_files() -> set[str]:
    text = DOC.read_text()
    section = text.split("## One training step, file by file", 1)[1].split("\n## ", 1)[0]
    paths = re.findall(
        r"`((?:training|models|layers|engines|cells|data|config)/[a-z_/]*?(?:\.py|/))`", section
    )
    return {p.rstrip("/") for p in paths}


def test_one_training_step_runs_exactly_the_files_the_map_lists() -> None:
    files = _files_of_one_step()
    documented = _documented_step_files()
    run = {f.removesuffix("/__init__.py") if f.endswith("/__init__.py") else f for f in files}
    assert run == documented, (
        f"docs/architecture.md lists {sorted(documented - run)} that the step does not run "
        f"and misses {sorted(run - documented)}; update the page"
    )


def test_one_training_step_stays_within_fifteen_files() -> None:
    assert len(_files_of_one_step()) <= 15


@pytest.mark.parametrize("path", sorted((PACKAGE / "cells").glob("*.py")), ids=lambda p: p.name)
def test_every_cell_file_holds_one_idea_in_at_most_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400

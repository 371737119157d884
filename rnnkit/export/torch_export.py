"""torch.export: the exported programs as ``.pt2`` archives, metadata as an extra file.

A program re-loads with plain PyTorch, no rnnkit import::

    extra = {"rnnkit.json": ""}
    program = torch.export.load("model.pt2", extra_files=extra)
    logits = program.module()(inputs, lengths)
    metadata = json.loads(extra["rnnkit.json"])

Its recurrences are ``torch``'s ``scan`` (:mod:`rnnkit.export.recurrence`), so the time
and batch axes stay dynamic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

EXTRA_FILE = "rnnkit.json"
"""The archive's extra file that holds the metadata (:mod:`rnnkit.export.metadata`)."""


def save_program(
    program: torch.export.ExportedProgram, path: Path, *, metadata: dict[str, Any]
) -> None:
    """Write ``program`` to ``path`` with ``metadata`` inside."""
    torch.export.save(program, str(path), extra_files={EXTRA_FILE: json.dumps(metadata)})


def load_program(path: str | Path) -> tuple[torch.export.ExportedProgram, dict[str, Any]]:
    """A saved program and its metadata."""
    extra = {EXTRA_FILE: ""}
    program = torch.export.load(str(path), extra_files=extra)
    return program, json.loads(extra[EXTRA_FILE]) if extra[EXTRA_FILE] else {}

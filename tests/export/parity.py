"""Export a model and hold the re-loaded files to the eager model on fresh ragged batches."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from rnnkit.export import export_model
from rnnkit.export.exporter import SUFFIXES, TOLERANCE, load_runner, relative_error
from rnnkit.export.graphs import plan_for

SIZES = ((1, 1), (1, 6), (6, 10), (2, 3))
"""(batch, steps) of the comparison batches: none is the traced (3, 7); the ragged ones
hold a full-length, a length-1 and (B = 6) an empty sequence."""


def assert_exports_faithfully(model: nn.Module, kind: str, fmt: str, tmp_path: Path) -> None:
    """Export ``model`` as ``fmt``, re-load every graph file and compare it with the model in
    eval mode (fp32, ``TOLERANCE`` of the output's scale) on every size of :data:`SIZES`."""
    model = model.eval()
    result = export_model(model, fmt, tmp_path / f"model{SUFFIXES[fmt]}", kind=kind)
    assert set(result.files) == {g.role for g in plan_for(kind, copy.deepcopy(model)).graphs}
    assert all(error <= TOLERANCE for error in result.errors.values()), result.errors
    reference = plan_for(kind, copy.deepcopy(model))
    runners = {role: load_runner(path, fmt) for role, path in result.files.items()}
    generator = torch.Generator().manual_seed(1)
    for batch, steps in SIZES:
        examples = reference.examples(batch, steps, generator)
        for graph in reference.graphs:
            inputs = examples[graph.role]
            with torch.no_grad():
                expected = graph.module(*inputs)
            expected = expected if isinstance(expected, tuple) else (expected,)
            actual = runners[graph.role](*inputs)
            assert len(actual) == len(expected)
            for name, a, e in zip(graph.output_names, actual, expected, strict=True):
                error = relative_error(a, e)
                assert error <= TOLERANCE, (
                    f"{kind} {graph.role}.{name} at B={batch} T={steps}: {error:.2e}"
                )

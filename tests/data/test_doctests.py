"""The examples in the data pipeline's docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "rnnkit.data.batching",
    "rnnkit.data.files",
    "rnnkit.data.paths",
    "rnnkit.data.scaling",
    "rnnkit.data.shaping",
    "rnnkit.data.splits",
    "rnnkit.data.tokenizers",
    "rnnkit.data.vectors",
    "rnnkit.data.vocab",
    "rnnkit.data.datasets.digits",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"

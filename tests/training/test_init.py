"""``rnnkit.training``: the public training API by name, loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rnnkit.training
from rnnkit.training import run, tasks


def test_every_exported_name_is_the_defining_modules() -> None:
    assert rnnkit.training.train is run.train and rnnkit.training.TASKS is tasks.TASKS
    for name in rnnkit.training.__all__:
        assert getattr(rnnkit.training, name) is not None
    assert set(dir(rnnkit.training)) == set(rnnkit.training.__all__)
    assert set(rnnkit.training._EXPORTS) == set(rnnkit.training.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'trian'"):
        rnnkit.training.trian  # noqa: B018


def test_a_light_module_does_not_import_lightning() -> None:
    code = (
        "import sys, rnnkit.training.tbptt, rnnkit.training.checkpoint; "
        "print('lightning' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"

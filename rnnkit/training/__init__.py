"""Training: tasks, the LightningModule, run directories, truncated BPTT.

=====================  ===========================================================
module                 holds
=====================  ===========================================================
:mod:`.tasks`          :data:`TASKS`: loss, metrics and baselines per input/output pattern
:mod:`.module`         :class:`SequenceTaskModule`, the LightningModule (one shared step)
:mod:`.run`            :func:`train`, :func:`load_run`, :func:`evaluate`: the run directory
:mod:`.callbacks`      Lightning plugins of a run: last checkpoint, checkpoint IO, history, ...
:mod:`.checkpoint`     run files as safetensors + JSON (nothing pickled), written atomically
:mod:`.predict`        a saved run applied to raw inputs
:mod:`.tbptt`          truncated BPTT windows and state carried across batches
=====================  ===========================================================

The run config itself (``RunConfig``, ``TrainConfig``, ``OptimizerConfig``) lives in
:mod:`rnnkit.config`. The names below load on first use, so importing a light module
such as :mod:`rnnkit.training.tbptt` does not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnkit.training.module import SequenceTaskModule
    from rnnkit.training.run import LoadedRun, RunResult, evaluate, load_run, train
    from rnnkit.training.tasks import (
        TASKS,
        CaptionTask,
        ClassificationTask,
        ForecastTask,
        LanguageModelTask,
        Seq2SeqTask,
        StepResult,
        TaggingTask,
        Task,
    )

_EXPORTS = {
    "train": "run",
    "load_run": "run",
    "evaluate": "run",
    "LoadedRun": "run",
    "RunResult": "run",
    "SequenceTaskModule": "module",
    "TASKS": "tasks",
    "Task": "tasks",
    "StepResult": "tasks",
    "ClassificationTask": "tasks",
    "LanguageModelTask": "tasks",
    "TaggingTask": "tasks",
    "Seq2SeqTask": "tasks",
    "CaptionTask": "tasks",
    "ForecastTask": "tasks",
}

__all__ = [
    "TASKS",
    "CaptionTask",
    "ClassificationTask",
    "ForecastTask",
    "LanguageModelTask",
    "LoadedRun",
    "RunResult",
    "Seq2SeqTask",
    "SequenceTaskModule",
    "StepResult",
    "TaggingTask",
    "Task",
    "evaluate",
    "load_run",
    "train",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return list(__all__)

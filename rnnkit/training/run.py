"""Train, evaluate and reload runs: the run directory is the unit of work.

A run directory holds::

    config.yaml          the fully resolved run config (data-derived values filled in)
    model.safetensors    the best epoch's weights (by the task's monitored value)
    data_state.json      what the data pipeline learnt from the training split
                         (vocabulary, class names, scalers) — never the data itself
    data_report.json     what the reader found (files, empty texts, replaced bytes,
                         label counts), for DataModules that keep a ``data_report``
    vectors.json         coverage of pretrained word vectors (``model.input.vectors``)
    metrics.json         test metrics on the held-out split (+ baselines where they apply)
    history.json         train/validation loss and metrics per epoch
    curves.png           train vs validation loss and main metric per epoch
    <task plots>         confusion matrix, forecast vs actual, samples, attention, ...
    resume/              last epoch's weights, optimiser state and progress
    logs/                the experiment log: ``metrics.csv`` (``train.logger: csv``) or
                         TensorBoard event files (``train.logger: tensorboard``)
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import CSVLogger, Logger
from torch import nn

from rnnkit.config import (
    Component,
    ConfigError,
    RunConfig,
    check_options,
    config_to_dict,
    load_yaml,
    run_config_from_dict,
    run_config_to_dict,
    save_yaml,
)
from rnnkit.training.callbacks import EpochHistory, SafetensorsCheckpoint
from rnnkit.training.checkpoint import load_json, load_optimizer, load_weights, save_json
from rnnkit.training.module import SequenceTaskModule
from rnnkit.training.pretrained import apply_input_vectors, load_input_vectors, with_vector_size
from rnnkit.training.tasks import TASKS, Task

CONFIG_FILE, WEIGHTS_FILE, DATA_STATE_FILE = "config.yaml", "model.safetensors", "data_state.json"
DATA_REPORT_FILE = "data_report.json"
METRICS_FILE, HISTORY_FILE, CURVES_FILE = "metrics.json", "history.json", "curves.png"


@dataclass
class RunResult:
    """What a finished training run produced.

    Attributes:
        run_dir: the run directory.
        config: the resolved config.
        metrics: test metrics (held-out split).
        epochs: epochs trained in total.
        seconds: wall time of this call.
        files: the files written, by role.
    """

    run_dir: Path
    config: RunConfig
    metrics: dict[str, float]
    epochs: int
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)


# -- building the pieces ------------------------------------------------------------


def build_datamodule(component: Component, *, data_dir: str | Path | None, seed: int) -> Any:
    """The DataModule a config names, with ``data_dir`` and the run's seed."""
    from rnnkit.data import DATAMODULES

    cls = DATAMODULES.get(component.name)
    check_options(cls, component.options, "data")
    options = {"seed": seed, **component.options}
    if data_dir is not None:
        options["data_dir"] = str(data_dir)
    return cls(**options)


def build_task(component: Component) -> Task:
    """The task a config names, with its options checked."""
    cls = TASKS.get(component.name)
    check_options(cls, component.options, "task")
    return cls(**component.options)


def build_model(component: Component) -> nn.Module:
    """The model a (resolved) config names."""
    from rnnkit.models import build_model as build

    return build(component.name, component.options)


def fill_defaults(
    options: dict[str, Any], defaults: dict[str, Any], path: str = "model"
) -> dict[str, Any]:
    """Fill ``options`` with data-derived ``defaults``; a disagreeing value is an error."""
    result = copy.deepcopy(options)
    for key, value in defaults.items():
        where = f"{path}.{key}"
        if isinstance(value, dict):
            current = result.get(key) or {}
            if not isinstance(current, dict):
                raise ConfigError(f"{where}: expected a mapping, got {current!r}")
            result[key] = fill_defaults(current, value, where)
        elif key not in result or result[key] is None:
            result[key] = value
        elif config_to_dict(result[key]) != config_to_dict(value):  # (1,) == [1] from YAML
            raise ConfigError(
                f"{where}={result[key]!r} disagrees with the data, which gives {value!r}; "
                f"leave it out to use the data's value"
            )
    return result


def resolve(config: RunConfig, datamodule: Any, task: Task) -> RunConfig:
    """The config with every default written out: the model's data-derived options and
    the Lightning Trainer arguments (``train.trainer`` over ``TRAINER_DEFAULTS``)."""
    options = fill_defaults(config.model.options, task.model_defaults(datamodule))
    train = replace(config.train, trainer=config.train.trainer_arguments())
    return replace(config, model=Component(config.model.name, options), train=train)


# -- training -----------------------------------------------------------------------


def _trainer(
    config: RunConfig,
    run_dir: Path,
    callbacks: list[L.Callback],
    max_epochs: int,
    log_version: str = "",
) -> L.Trainer:
    """The Trainer: the recipe's ``train.trainer`` arguments and the ones rnnkit sets
    itself (``rnnkit.config.CONTROLLED``, which a recipe cannot set)."""
    return L.Trainer(
        **config.train.trainer_arguments(),
        max_epochs=max_epochs,
        enable_progress_bar=config.train.progress_bar,
        enable_model_summary=config.train.progress_bar,
        enable_checkpointing=False,  # Lightning's checkpoints are pickles; ours are not
        logger=_logger(config.train.logger, run_dir, log_version),
        callbacks=callbacks,
        default_root_dir=str(run_dir),
    )


def _logger(kind: str, run_dir: Path, version: str) -> Logger:
    """``train.logger``: CSV (always available) or TensorBoard, under ``run_dir/logs``."""
    if kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        try:
            return TensorBoardLogger(save_dir=str(run_dir), name="logs", version=version)
        except ModuleNotFoundError as err:
            raise ConfigError(
                "train.logger=tensorboard needs the tensorboard package: "
                "pip install 'rnnkit[tensorboard]'"
            ) from err
    return CSVLogger(save_dir=str(run_dir), name="logs", version=version)


def _callbacks(
    config: RunConfig, task: Task, run_dir: Path, state: dict[str, Any]
) -> list[L.Callback]:
    offset = int(state.get("epochs_completed", 0))
    callbacks: list[L.Callback] = [
        EpochHistory(run_dir / HISTORY_FILE, epoch_offset=offset),
        SafetensorsCheckpoint(
            run_dir,
            monitor=task.monitor,
            mode=task.mode,
            epoch_offset=offset,
            best=state.get("best"),
            step_offset=int(state.get("global_step", 0)),
        ),
    ]
    if config.train.early_stopping_patience is not None:
        callbacks.append(
            EarlyStopping(
                task.monitor, mode=task.mode, patience=config.train.early_stopping_patience
            )
        )
    if config.train.gradflow_every:
        callbacks.append(_gradflow_callback(config.train.gradflow_every, run_dir))
    return callbacks


def _gradflow_callback(every: int, run_dir: Path) -> L.Callback:
    from rnnkit.diagnostics import GradientFlowCallback

    return GradientFlowCallback(every_n_steps=every, out_dir=run_dir)


def train(
    config: RunConfig,
    *,
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    resume: bool = False,
) -> RunResult:
    """Train a model as ``config`` says, test it on the held-out split, write the run.

    Arguments:
        config: the run config (a recipe, possibly with overrides).
        run_dir: the run directory (created; for ``resume``, an existing run).
        data_dir: where the datasets live (default: the data pipeline's own lookup).
        resume: continue an interrupted or finished run from its ``resume/`` state up
            to ``config.train.max_epochs`` epochs in total.

    Returns:
        A :class:`RunResult`.
    """
    start = time.perf_counter()
    run_dir = Path(run_dir)
    state: dict[str, Any] = load_json(run_dir / "resume" / "state.json") if resume else {}
    if not resume:
        _new_run_dir(run_dir)
    L.seed_everything(
        config.seed + int(state.get("epochs_completed", 0)), workers=True, verbose=False
    )
    datamodule = build_datamodule(config.data, data_dir=data_dir, seed=config.seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    _check_splits(datamodule, config)
    if resume:
        datamodule.load_state_dict(load_json(run_dir / DATA_STATE_FILE))
    task = build_task(config.task)
    task.bind(datamodule)
    vectors = None if resume else load_input_vectors(config, datamodule)
    config = resolve(with_vector_size(config, vectors), datamodule, task)
    model = build_model(config.model)
    apply_input_vectors(model, vectors, run_dir)  # (on resume: freezing only)
    optimizer_state = None
    if resume:
        load_weights(model, run_dir / "resume" / WEIGHTS_FILE)
        optimizer_state = load_optimizer(run_dir / "resume")
    save_yaml(run_config_to_dict(config), run_dir / CONFIG_FILE)
    save_json(datamodule.state_dict(), run_dir / DATA_STATE_FILE)
    if getattr(datamodule, "data_report", None):
        save_json(datamodule.data_report, run_dir / DATA_REPORT_FILE)

    remaining = config.train.max_epochs - int(state.get("epochs_completed", 0))
    if remaining <= 0:
        raise ConfigError(
            f"{run_dir} already trained {state['epochs_completed']} epochs; raise "
            f"train.max_epochs (now {config.train.max_epochs}) to train more"
        )
    module = SequenceTaskModule(
        model,
        task,
        config.optimizer,
        max_epochs=config.train.max_epochs,
        optimizer_state=optimizer_state,
    )
    done = int(state.get("epochs_completed", 0))
    version = f"resumed-at-epoch-{done}" if resume else ""  # keep the earlier sessions' logs
    trainer = _trainer(
        config, run_dir, _callbacks(config, task, run_dir, state), remaining, version
    )
    trainer.fit(module, datamodule=datamodule)
    metrics = _test(trainer, module, datamodule, run_dir)
    files = _report(config, task, module, datamodule, run_dir)
    epochs = int(load_json(run_dir / "resume" / "state.json")["epochs_completed"])
    return RunResult(run_dir, config, metrics, epochs, time.perf_counter() - start, files)


def _new_run_dir(run_dir: Path) -> None:
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(
            f"run directory {run_dir} exists and is not empty; choose another --out "
            "or resume it with --resume"
        )
    run_dir.mkdir(parents=True, exist_ok=True)


def _test(
    trainer: L.Trainer, module: SequenceTaskModule, datamodule: Any, run_dir: Path
) -> dict[str, float]:
    """Test the best epoch's weights on the held-out split; writes ``metrics.json``."""
    best = run_dir / WEIGHTS_FILE
    if best.exists():
        load_weights(module.model, best)
    results = trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in sorted(results[0].items())} if results else {}
    metrics.update(module.task.baseline_metrics(datamodule))
    save_json(
        {"split": _split_name(datamodule), "examples": datamodule.test_size, **metrics},
        run_dir / METRICS_FILE,
    )
    return metrics


def _split_name(datamodule: Any) -> str:
    """What the test metrics were measured on (a toy dataset says it holds nothing out)."""
    return getattr(datamodule, "evaluation_split", "test (held out)")


def _check_splits(datamodule: Any, config: RunConfig) -> None:
    """Every split must hold data: an empty one would train or test on nothing."""
    empty = [name for name, size in datamodule.split_sizes.items() if size == 0]
    if empty:
        raise ConfigError(
            f"data {config.data.name!r} with options {config.data.options} leaves the "
            f"{' and '.join(empty)} split(s) empty (sizes {datamodule.split_sizes}); "
            "raise data.limit or use more data"
        )


def _report(
    config: RunConfig, task: Task, module: SequenceTaskModule, datamodule: Any, run_dir: Path
) -> dict[str, Path]:
    from rnnkit.training.plots import plot_curves
    from rnnkit.training.reports import task_report

    files = {
        "config": run_dir / CONFIG_FILE,
        "weights": run_dir / WEIGHTS_FILE,
        "metrics": run_dir / METRICS_FILE,
    }
    history = load_json(run_dir / HISTORY_FILE) if (run_dir / HISTORY_FILE).exists() else []
    files["curves"] = plot_curves(
        history,
        run_dir / CURVES_FILE,
        metric=task.main_metric,
        title=f"{config.name}: training curves",
    )
    files.update(task_report(config, task, module.model, datamodule, run_dir))
    return files


# -- reloading ----------------------------------------------------------------------


@dataclass
class LoadedRun:
    """A run reloaded from its directory, in a fresh process.

    Attributes:
        run_dir: the directory.
        config: its resolved config.
        model: the best weights, in eval mode.
        task: the task, not yet bound to data.
        data_state: what the data pipeline learnt (vocabulary, scalers, ...).
    """

    run_dir: Path
    config: RunConfig
    model: nn.Module
    task: Task
    data_state: dict[str, Any]


def load_run(run_dir: str | Path, *, map_location: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild a trained model from a run directory (no dataset files needed)."""
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE, DATA_STATE_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(
                f"{run_dir} is not a finished rnnkit run: {name} is missing "
                "(train one with `rnnkit train`)"
            )
    config = run_config_from_dict(load_yaml(run_dir / CONFIG_FILE))
    model = build_model(config.model)
    load_weights(model, run_dir / WEIGHTS_FILE)
    model.to(map_location).eval()
    return LoadedRun(
        run_dir, config, model, build_task(config.task), load_json(run_dir / DATA_STATE_FILE)
    )


def evaluate(
    run_dir: str | Path, *, data_dir: str | Path | None = None, progress_bar: bool = False
) -> dict[str, float]:
    """Re-test a run's best weights on its held-out split; rewrites ``metrics.json``."""
    loaded = load_run(run_dir)
    config = loaded.config
    datamodule = build_datamodule(config.data, data_dir=data_dir, seed=config.seed)
    datamodule.prepare_data()
    datamodule.setup("test")
    datamodule.load_state_dict(loaded.data_state)
    loaded.task.bind(datamodule)
    module = SequenceTaskModule(loaded.model, loaded.task, config.optimizer)
    arguments = config.train.trainer_arguments()
    trainer = L.Trainer(
        accelerator=arguments["accelerator"],  # the devices the run trained on
        devices=arguments["devices"],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
    )
    return _test(trainer, module, datamodule, Path(run_dir))

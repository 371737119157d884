"""Train, evaluate and reload runs: the run directory is the unit of work.

A run directory holds::

    config.yaml          the fully resolved run config (data-derived values filled in)
    model.safetensors    the best epoch's weights (by ``train.monitor``, default the
                         task's monitored validation value)
    data_state.json      what the data pipeline learnt from the training split
                         (vocabulary, class names, scalers) — never the data itself
    data_report.json     what the reader found (files, empty texts, replaced bytes,
                         label counts), for DataModules that keep a ``data_report``
    vectors.json         coverage of pretrained word vectors (``model.input.vectors``)
    history.json         train/validation loss, metrics and learning rate per epoch
    checkpoints/last.safetensors
                         the whole training state after the last completed epoch:
                         weights, optimiser, schedule, early stopping, loop counters,
                         history, random states (``rnnkit train --resume``)
    curves.png           train vs validation loss and main metric per epoch
    <task plots>         confusion matrix, forecast vs actual, samples, attention, ...
    metrics.json         test metrics on the held-out split (+ baselines where they
                         apply); written last, so a run with it is finished
    logs/                the experiment log: ``metrics.csv`` (``train.logger: csv``) or
                         TensorBoard event files (``train.logger: tensorboard``)

Every file is written atomically (:func:`~rnnkit.training.checkpoint.atomic_path`),
and only by global rank zero under distributed training. A run that fails before
its first epoch ends is removed; a later failure leaves a run that ``--resume``
continues from its last epoch.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher
from torch import nn

from rnnkit.config import (
    Component,
    ConfigError,
    RunConfig,
    build_component,
    config_to_dict,
    load_yaml,
    run_config_from_dict,
    run_config_to_dict,
    save_yaml,
)
from rnnkit.data.errors import DecodeWarning
from rnnkit.registry import unknown_name_message
from rnnkit.training.callbacks import (
    BestWeights,
    DivergenceGuard,
    EarlyStopping,
    EpochHistory,
    LastCheckpoint,
    RandomState,
    SafetensorsIO,
)
from rnnkit.training.checkpoint import (
    TEMPORARY_GLOB,
    DamagedFileError,
    atomic_path,
    load_checkpoint,
    load_json,
    load_weights,
    save_json,
)
from rnnkit.training.module import SequenceTaskModule, check_optimizer
from rnnkit.training.pretrained import (
    VECTORS_FILE,
    apply_input_vectors,
    load_input_vectors,
    with_vector_size,
)
from rnnkit.training.progress import progress_display
from rnnkit.training.tasks import TASKS, Task

CONFIG_FILE, WEIGHTS_FILE, DATA_STATE_FILE = "config.yaml", "model.safetensors", "data_state.json"
DATA_REPORT_FILE = "data_report.json"
METRICS_FILE, HISTORY_FILE, CURVES_FILE = "metrics.json", "history.json", "curves.png"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FILE = f"{CHECKPOINT_DIR}/{LastCheckpoint.NAME}{LastCheckpoint.FILE_EXTENSION}"
RUN_DIR_ENV = "RNNKIT_RUN_DIR"
"""The environment variable that names the run directory to every process of a run."""


@dataclass
class RunResult:
    """What a finished training run produced.

    Attributes:
        run_dir: the run directory.
        config: the resolved config.
        metrics: test metrics (held-out split).
        epochs: epochs trained in total.
        seconds: wall time of this call.
        files: the files written, by role (empty on processes other than rank zero).
    """

    run_dir: Path
    config: RunConfig
    metrics: dict[str, float]
    epochs: int
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)


def is_rank_zero() -> bool:
    """Whether this process is global rank zero: the one that writes the run directory.

    Lightning's rank: from the launcher's variables (``RANK``, ``LOCAL_RANK``,
    ``SLURM_PROCID``) until training starts, then the strategy's. A process of a
    later node (``NODE_RANK`` > 0) is never rank zero.
    """
    from lightning.pytorch.utilities import rank_zero_only

    node = os.environ.get("NODE_RANK", "0") or "0"
    return getattr(rank_zero_only, "rank", 0) == 0 and node == "0"


# -- building the pieces ------------------------------------------------------------


def build_datamodule(component: Component, *, data_dir: str | Path | None, seed: int) -> Any:
    """The DataModule a config names, with ``data_dir`` and the run's seed.

    Raises:
        ConfigError: an option the DataModule does not take, of the wrong type, or with a
            value it rejects (``data.batch_size=0``).
    """
    from rnnkit.data import DATAMODULES

    given: dict[str, Any] = {"seed": seed}
    if data_dir is not None:
        given["data_dir"] = str(data_dir)
    return build_component(DATAMODULES.get(component.name), component.options, "data", **given)


def build_task(component: Component) -> Task:
    """The task a config names, with its options checked."""
    return build_component(TASKS.get(component.name), component.options, "task")


def build_model(component: Component) -> nn.Module:
    """The model a (resolved) config names."""
    from rnnkit.models import build_model as build

    try:
        return build(component.name, component.options)
    except ConfigError:
        raise
    except ValueError as err:  # a value the model's layers reject (hidden_size=-3)
        raise ConfigError(f"model: {err}") from err


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


def warn_replaced_bytes(report: Any, what: str = "data") -> None:
    """A :class:`~rnnkit.data.errors.DecodeWarning` when a reader replaced invalid UTF-8
    (its :class:`~rnnkit.data.files.DecodeReport`), so that no run trains on repaired text
    unannounced."""
    if report is not None and not report.clean:
        warnings.warn(f"{what}: {report}", DecodeWarning, stacklevel=2)


def _trainer(
    config: RunConfig,
    run_dir: Path,
    callbacks: list[L.Callback],
    max_epochs: int,
    log_version: str = "",
) -> L.Trainer:
    """The Trainer: the recipe's ``train.trainer`` arguments and the ones rnnkit sets
    itself (``rnnkit.config.CONTROLLED``, which a recipe cannot set)."""
    arguments = config.train.trainer_arguments()
    plugins = arguments.pop("plugins", None) or []
    callbacks = list(callbacks)
    if not any(isinstance(c, ModelCheckpoint) for c in callbacks):
        callbacks.append(LastCheckpoint(run_dir / CHECKPOINT_DIR))
    if config.train.progress_bar:
        callbacks.append(progress_display())
    logger = _logger(config.train.logger, run_dir, log_version)
    try:
        return L.Trainer(
            **arguments,
            max_epochs=max_epochs,
            enable_progress_bar=config.train.progress_bar,
            enable_model_summary=config.train.progress_bar,
            enable_checkpointing=True,
            plugins=[*(plugins if isinstance(plugins, list) else [plugins]), SafetensorsIO()],
            use_distributed_sampler=False,  # the DataModules shard every split themselves
            logger=logger,
            callbacks=callbacks,
            default_root_dir=str(run_dir),
        )
    except (MisconfigurationException, ValueError) as err:  # a value Lightning rejects
        raise ConfigError(f"train.trainer: {' '.join(str(err).split())}") from err


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


def run_monitor(config: RunConfig, task: Task) -> tuple[str, str]:
    """``(name, mode)`` of the validation value that selects the best epoch
    (``train.monitor``, else the task's), checked against what the task logs.

    Raises:
        ConfigError: the task logs no such value.
    """
    name, mode = config.train.monitored(task.monitor, task.mode)
    logged = ["val_loss", *(f"val_{metric}" for metric in task.metrics("val"))]
    if name not in logged:
        raise ConfigError(
            "train.monitor: "
            + unknown_name_message(f"value of task {config.task.name!r}", name, logged)
        )
    return name, mode


def _callbacks(config: RunConfig, task: Task, run_dir: Path) -> list[L.Callback]:
    """The run's callbacks, in the order their epoch-end hooks must run: the guard
    before anything writes, the checkpoint (moved last by Lightning) after all."""
    monitor, mode = run_monitor(config, task)
    callbacks: list[L.Callback] = [
        DivergenceGuard(run_dir / WEIGHTS_FILE),
        BestWeights(run_dir / WEIGHTS_FILE, monitor=monitor, mode=mode),
        EpochHistory(run_dir / HISTORY_FILE),
        RandomState(),
    ]
    if config.train.early_stopping_patience is not None:
        callbacks.append(
            EarlyStopping(monitor, mode=mode, patience=config.train.early_stopping_patience)
        )
    if config.train.gradflow_every:
        callbacks.append(_gradflow_callback(config.train.gradflow_every, run_dir))
    callbacks.append(LastCheckpoint(run_dir / CHECKPOINT_DIR))
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

    Under distributed training (``train.trainer.strategy``) every process calls this
    with the same ``run_dir``; rank zero writes the files.

    Arguments:
        config: the run config (a recipe, possibly with overrides).
        run_dir: the run directory (created; for ``resume``, an existing run).
        data_dir: where the datasets live (default: the data pipeline's own lookup).
        resume: continue a run from its last completed epoch
            (``checkpoints/last.safetensors``, restored exactly) up to
            ``config.train.max_epochs`` epochs in total; a run killed before its
            first epoch ended starts again, and a run that trained all its epochs
            but was not tested yet is tested.

    Returns:
        A :class:`RunResult`.

    Raises:
        FileExistsError: a new run's ``run_dir`` is not empty.
        ConfigError: a resumed run has nothing left to train.
        TrainingDiverged: a loss, metric or weight stopped being finite (the files
            keep the last good epoch).
    """
    start = time.perf_counter()
    run_dir = Path(run_dir)
    checkpoint = _resume_point(run_dir) if resume else None
    writer = is_rank_zero()
    if writer and not resume:
        _refuse_used_run_dir(run_dir)
    existed = run_dir.exists()
    threads = torch.get_num_threads()
    if config.train.num_threads is not None:
        torch.set_num_threads(config.train.num_threads)
    try:
        result = _train(config, run_dir, data_dir, checkpoint, resume=resume)
    except BaseException as err:
        if writer and not resume:
            note = _clean_up_failed_run(run_dir, existed)
            if note and isinstance(err, Exception):
                _add_note(err, note)
        raise
    finally:
        torch.set_num_threads(threads)  # a library call leaves the process as it found it
    return replace(result, seconds=time.perf_counter() - start)


def _train(
    config: RunConfig,
    run_dir: Path,
    data_dir: str | Path | None,
    checkpoint: Path | None,
    *,
    resume: bool,
) -> RunResult:
    check_optimizer(config.optimizer)
    L.seed_everything(config.seed, workers=True, verbose=False)
    datamodule = build_datamodule(config.data, data_dir=data_dir, seed=config.seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    warn_replaced_bytes(getattr(datamodule, "decode_report", None))
    _check_splits(datamodule, config)
    if resume and (run_dir / DATA_STATE_FILE).is_file():
        datamodule.load_state_dict(load_json(run_dir / DATA_STATE_FILE))
    task = build_task(config.task)
    task.bind(datamodule)
    vectors = None if resume else load_input_vectors(config, datamodule)
    if vectors is not None:
        warn_replaced_bytes(vectors.report.decode, "word vectors")
    config = resolve(with_vector_size(config, vectors), datamodule, task)
    model = build_model(config.model)
    vectors_report = apply_input_vectors(model, vectors)  # (on resume: freezing only)
    module = SequenceTaskModule(
        model,
        task,
        config.optimizer,
        max_epochs=config.train.max_epochs,
        monitor=run_monitor(config, task),
    )
    callbacks = _callbacks(config, task, run_dir)
    done, stopped = _progress(checkpoint, config, callbacks) if checkpoint else (0, False)
    if is_rank_zero():
        _write_run_start(run_dir, config, datamodule, vectors_report)
    version = f"resumed-at-epoch-{done}" if done else ""  # keep the earlier sessions' logs
    trainer = _trainer(config, run_dir, callbacks, config.train.max_epochs, version)
    _check_shardable(datamodule, config, trainer.world_size)
    if not stopped and done < config.train.max_epochs:
        trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
    record = _test(trainer, module, datamodule, run_dir)
    epochs = _epochs_done(load_checkpoint(run_dir / CHECKPOINT_FILE))
    files: dict[str, Path] = {}
    if is_rank_zero():
        files = _report(config, task, module, datamodule, run_dir)
        save_json({**record, "epochs": epochs}, run_dir / METRICS_FILE)  # last: the run is done
    metrics = {k: v for k, v in record.items() if k not in ("split", "examples")}
    return RunResult(run_dir, config, metrics, epochs, 0.0, files)


def _write_run_start(
    run_dir: Path, config: RunConfig, datamodule: Any, vectors_report: Any = None
) -> None:
    """The files a run writes before it trains: its resolved config, data state and
    reports (what the reader found, pretrained-vector coverage)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for leftover in run_dir.rglob(TEMPORARY_GLOB):  # of a process killed mid-write
        leftover.unlink(missing_ok=True)
    with atomic_path(run_dir / CONFIG_FILE) as tmp:
        save_yaml(run_config_to_dict(config), tmp)
    save_json(datamodule.state_dict(), run_dir / DATA_STATE_FILE)
    if getattr(datamodule, "data_report", None):
        save_json(datamodule.data_report, run_dir / DATA_REPORT_FILE)
    if vectors_report is not None:
        save_json(vectors_report, run_dir / VECTORS_FILE)


def _resume_point(run_dir: Path) -> Path | None:
    """The checkpoint to resume ``run_dir`` from (``None``: killed before one was taken)."""
    read_run_config(run_dir)
    last = run_dir / CHECKPOINT_FILE
    if last.is_file():
        return last
    if (run_dir / "resume").is_dir():
        raise ConfigError(
            f"{run_dir / 'resume'} holds an earlier rnnkit's resume state (weights, optimiser "
            "and progress in separate files), which cannot continue a run exactly; train the "
            "run again (its model.safetensors still works with evaluate and predict)"
        )
    return None


def _progress(checkpoint: Path, config: RunConfig, callbacks: list[L.Callback]) -> tuple[int, bool]:
    """``(epochs completed, stopped early)`` of a checkpoint; an error if the run is done."""
    state = load_checkpoint(checkpoint)
    done = _epochs_done(state)
    stopping = [c for c in callbacks if isinstance(c, EarlyStopping)]
    stopped = bool(stopping) and stopping[0].stopped(
        state.get("callbacks", {}).get(stopping[0].state_key, {})
    )
    run_dir = checkpoint.parent.parent
    if (stopped or done >= config.train.max_epochs) and _tested(run_dir, done):
        if stopped:
            raise ConfigError(
                f"{run_dir} stopped early after {done} epochs ({stopping[0].monitor} did not "
                f"improve for {stopping[0].patience}); raise train.early_stopping_patience "
                "to train on"
            )
        raise ConfigError(
            f"{run_dir} already trained {done} epochs; raise train.max_epochs "
            f"(now {config.train.max_epochs}) to train more"
        )
    return done, stopped


def _epochs_done(checkpoint: dict[str, Any]) -> int:
    """Training epochs completed when ``checkpoint`` was taken (at an epoch's end)."""
    return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["total"]["processed"])


def _tested(run_dir: Path, epochs: int) -> bool:
    """Whether ``metrics.json`` is there and tested the run after ``epochs`` epochs."""
    path = run_dir / METRICS_FILE
    return path.is_file() and load_json(path).get("epochs") == epochs


def _refuse_used_run_dir(run_dir: Path) -> None:
    """A new run needs an empty directory (a killed write's hidden leftover counts as empty)."""
    if run_dir.exists() and any(not p.match(TEMPORARY_GLOB) for p in run_dir.iterdir()):
        raise FileExistsError(
            f"run directory {run_dir} exists and is not empty; choose another --out, "
            f"or continue it with `rnnkit train --resume {run_dir}`"
        )


def _add_note(err: Exception, note: str) -> None:
    """``err.add_note(note)`` (Python 3.11), by hand on 3.10: the CLI shows notes."""
    if hasattr(err, "add_note"):
        err.add_note(note)
    else:
        err.__notes__ = [*getattr(err, "__notes__", []), note]  # type: ignore[attr-defined]


def _clean_up_failed_run(run_dir: Path, existed: bool) -> str:
    """After a failed new run: keep it if it has a checkpoint (it can resume), else remove
    what it wrote. Returns which, for the error's note (``""``: it wrote nothing)."""
    if (run_dir / CHECKPOINT_FILE).exists():
        return (
            f"{run_dir} keeps its last completed epoch: rnnkit train --resume {run_dir} "
            "continues it"
        )
    wrote = run_dir.is_dir() and (not existed or any(run_dir.iterdir()))
    _remove_failed_run(run_dir, existed)
    return f"nothing of it was kept in {run_dir}; the same command can run again" if wrote else ""


def _remove_failed_run(run_dir: Path, existed: bool) -> None:
    """Remove what a run that failed before its first checkpoint wrote: there is
    nothing to resume, and a rerun with the same ``--out`` should find room."""
    if not run_dir.is_dir():
        return
    if not existed:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for child in run_dir.iterdir():  # the directory was empty (else it was refused)
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _check_shardable(datamodule: Any, config: RunConfig, processes: int) -> None:
    """Every process needs at least one example of every split."""
    small = {name: n for name, n in datamodule.split_sizes.items() if n < processes}
    if small:
        raise ConfigError(
            f"data {config.data.name!r}: {processes} processes need at least {processes} "
            f"examples in every split, got {small}; use more data or fewer devices"
        )


def _test(
    trainer: L.Trainer, module: SequenceTaskModule, datamodule: Any, run_dir: Path
) -> dict[str, Any]:
    """Test the best epoch's weights on the held-out split: the ``metrics.json`` record."""
    trainer.strategy.barrier("rnnkit-best-weights")  # rank zero has written them
    best = run_dir / WEIGHTS_FILE
    if best.exists():
        load_weights(module.model, best)
    if isinstance(trainer.strategy.launcher, _MultiProcessingLauncher):
        trainer.loggers = []  # new processes would start logs/metrics.csv over
    results = trainer.test(module, datamodule=datamodule, verbose=False)
    _end_process_group()
    datamodule.trainer = None  # baselines and reports read whole splits, not one rank's share
    metrics = {k: float(v) for k, v in sorted(results[0].items())} if results else {}
    metrics.update(module.task.baseline_metrics(datamodule))
    return {"split": _split_name(datamodule), "examples": datamodule.test_size, **metrics}


def _end_process_group() -> None:
    """Leave the distributed process group once the processes have nothing more to do
    together: what follows (baselines, reports) runs on each process alone, and a
    metric would otherwise wait for the others to sync. Lightning opens it again for
    another ``fit``."""
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        distributed.barrier()
        distributed.destroy_process_group()


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


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """A run directory's ``config.yaml`` as a mapping.

    Raises:
        FileNotFoundError: ``run_dir`` has no ``config.yaml``.
        DamagedFileError: it is not valid YAML.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir} is not an rnnkit run: {CONFIG_FILE} is missing "
            "(train one with `rnnkit train`)"
        )
    try:
        return load_yaml(path)
    except yaml.YAMLError as err:
        reason = str(err).splitlines()[0]
        raise DamagedFileError(path, f"not valid YAML: {reason}") from None


def load_run(run_dir: str | Path, *, map_location: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild a trained model from a run directory (no dataset files needed)."""
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE, DATA_STATE_FILE):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(
                f"{run_dir} is not a finished rnnkit run: {name} is missing "
                "(train one with `rnnkit train`)"
            )
    config = run_config_from_dict(read_run_config(run_dir))
    model = build_model(config.model)
    load_weights(model, run_dir / WEIGHTS_FILE)
    model.to(map_location).eval()
    return LoadedRun(
        run_dir, config, model, build_task(config.task), load_json(run_dir / DATA_STATE_FILE)
    )


def evaluate(
    run_dir: str | Path, *, data_dir: str | Path | None = None, progress_bar: bool = False
) -> dict[str, float]:
    """Re-test a run's best weights on its held-out split; rewrites ``metrics.json``.

    The test runs on one device of the run's accelerator.
    """
    run_dir = Path(run_dir)
    loaded = load_run(run_dir)
    config = loaded.config
    datamodule = build_datamodule(config.data, data_dir=data_dir, seed=config.seed)
    datamodule.prepare_data()
    datamodule.setup("test")
    warn_replaced_bytes(getattr(datamodule, "decode_report", None))
    datamodule.load_state_dict(loaded.data_state)
    loaded.task.bind(datamodule)
    module = SequenceTaskModule(loaded.model, loaded.task, config.optimizer)
    trainer = L.Trainer(
        accelerator=config.train.trainer_arguments()["accelerator"],
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        callbacks=[progress_display()] if progress_bar else None,
    )
    record = _test(trainer, module, datamodule, run_dir)
    last = run_dir / CHECKPOINT_FILE
    if last.is_file():
        record["epochs"] = _epochs_done(load_checkpoint(last))
    save_json(record, run_dir / METRICS_FILE)
    return {k: v for k, v in record.items() if k not in ("split", "examples", "epochs")}

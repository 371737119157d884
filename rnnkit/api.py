"""The Python API: train on your data, reload the run, predict, in a few lines.

::

    import rnnkit

    run = rnnkit.fit("text", data={"path": "reviews.csv"}, train={"max_epochs": 3})
    run.metrics                                   # held-out test metrics (+ baselines)
    run = rnnkit.load(run.run_dir)                # later, in another process
    preds = run.predict(["great film", "dull"], batch_size=256)
    preds.labels, preds.probabilities             # ['pos', 'neg'], (2, 2) array
    run.predict_file("new.csv", "out.jsonl")      # streamed in batches
    run.evaluate()                                # re-test on the held-out split
    run.export("onnx", "model.onnx")              # ONNX Runtime / torch.export files
    lm = rnnkit.load("runs/char-lm").stream()     # feed tokens one at a time

:func:`fit` takes a recipe name (``rnnkit recipes``), a YAML file, a mapping or a
:class:`~rnnkit.config.RunConfig`, with per-section overrides (``data={...}``,
``train={...}``) and ``--set``-style strings; it writes a run directory exactly as
``rnnkit train`` does (the CLI is a thin layer over this module) and returns a
:class:`Run`. A :class:`Run` is the run directory as an object: its config, metrics,
history and data state are read from the files, the model is rebuilt on first use.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnkit.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    load_yaml,
    run_config_from_dict,
)
from rnnkit.config.run import run_config_to_dict

if TYPE_CHECKING:
    from rnnkit.cells.base import State
    from rnnkit.export import ExportResult
    from rnnkit.layers.stream import Stream
    from rnnkit.models.stream import DecoderStream, TokenStream

__all__ = ["FilePredictions", "Predictions", "Run", "build_config", "fit", "load"]

Progress = Callable[[int], None]
"""Called with the number of inputs done so far, after each batch."""
_SHOWN = 10


# -- configs --------------------------------------------------------------------------


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` deep-merged onto ``base`` (mappings merge, everything else replaces)."""
    merged = dict(base)
    for key, value in over.items():
        both = isinstance(value, Mapping) and isinstance(base.get(key), Mapping)
        merged[key] = _merge(base[key], value) if both else value
    return merged


def _base_mapping(config: str | Path | Mapping[str, Any] | RunConfig) -> dict[str, Any]:
    from rnnkit.recipes import load_recipe

    if isinstance(config, RunConfig):
        return run_config_to_dict(config)
    if isinstance(config, Mapping):
        return dict(config)
    text = str(config)
    if isinstance(config, Path) or text.endswith((".yaml", ".yml")):
        return load_yaml(config)
    return load_recipe(text)


def build_config(
    config: str | Path | Mapping[str, Any] | RunConfig = "digits",
    *,
    overrides: Sequence[str] = (),
    **sections: Any,
) -> RunConfig:
    """A checked :class:`~rnnkit.config.RunConfig` from a recipe and overrides.

    Arguments:
        config: a recipe name, a YAML file (``.yaml``/``.yml`` or a ``Path``), a recipe
            mapping or a ``RunConfig``.
        overrides: ``"key.sub=value"`` strings, as ``rnnkit train --set`` takes.
        **sections: mappings (or values) merged over the recipe's top-level sections:
            ``data={"path": "reviews.csv"}``, ``train={"max_epochs": 3}``, ``seed=1``.
            ``None`` values are left out.

    Raises:
        ConfigError: an unknown key, a wrong type (named as in a recipe, ``train.max_epochs``).
        UnknownNameError: an unknown recipe name (with the closest ones).
    """
    data = _merge(_base_mapping(config), {k: v for k, v in sections.items() if v is not None})
    return run_config_from_dict(apply_overrides(data, list(overrides)))


def default_run_dir(config: RunConfig, root: str | Path = "runs") -> Path:
    """``$RNNKIT_RUN_DIR`` (set for the processes of a distributed run), else
    ``runs/<name>-<YYYYmmdd-HHMMSS>``.

    Raises:
        ConfigError: the processes were started by an outside launcher (torchrun,
            srun: ``WORLD_SIZE`` or ``SLURM_NTASKS`` > 1), which cannot agree on a
            time stamp, and no directory is named.
    """
    from rnnkit.training.run import RUN_DIR_ENV

    named = os.environ.get(RUN_DIR_ENV)
    if named:
        return Path(named)
    processes = max(int(os.environ.get(k, "1") or 1) for k in ("WORLD_SIZE", "SLURM_NTASKS"))
    if processes > 1:
        raise ConfigError(
            f"{processes} processes were launched for this run, and each would choose "
            f"its own time-stamped directory: name one (rnnkit train --out, fit(run_dir=...) "
            f"or ${RUN_DIR_ENV})"
        )
    return Path(root) / f"{config.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"


@contextmanager
def _shared_run_dir(run_dir: Path) -> Iterator[None]:
    """Lightning's DDP launcher starts the other processes by running the same command
    again, with this process's environment: they must all find the same directory."""
    from rnnkit.training.run import RUN_DIR_ENV

    previous = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous


# -- training -------------------------------------------------------------------------


def fit(
    config: str | Path | Mapping[str, Any] | RunConfig | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    task: Mapping[str, Any] | None = None,
    optimizer: Mapping[str, Any] | None = None,
    train: Mapping[str, Any] | None = None,
    seed: int | None = None,
    name: str | None = None,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    resume: bool = False,
) -> Run:
    """Train a model, test it on the held-out split, write the run directory.

    Arguments:
        config: a recipe name (default ``"digits"``), a YAML file, a mapping or a
            ``RunConfig`` (see :func:`build_config`). With ``resume``, default: the run's
            own ``config.yaml``.
        data, model, task, optimizer, train, seed, name: merged over the recipe's sections.
        overrides: ``"key.sub=value"`` strings (``rnnkit train --set``).
        run_dir: where to write the run (default ``runs/<name>-<time>``); with ``resume``,
            the run to continue.
        data_dir: where the named datasets live (``$RNNKIT_DATA_DIR`` by default).
        resume: continue ``run_dir`` from its last epoch up to ``train.max_epochs``.

    Returns:
        The finished :class:`Run` (``run.metrics`` are its held-out test metrics).

    Example::

        >>> run = rnnkit.fit("text", data={"path": "reviews.csv"})  # doctest: +SKIP
        >>> run.metrics["test_acc"]                                  # doctest: +SKIP
        0.84
    """
    from rnnkit.training.run import train as train_run

    if resume and run_dir is None:
        raise ValueError("resume=True needs run_dir= (the run to continue)")
    if config is None:
        config = Path(run_dir) / "config.yaml" if resume and run_dir is not None else "digits"
    sections = {"data": data, "model": model, "task": task, "optimizer": optimizer}
    sections |= {"train": train, "seed": seed, "name": name}
    resolved = build_config(config, overrides=overrides, **sections)
    target = Path(run_dir) if run_dir is not None else default_run_dir(resolved)
    with _shared_run_dir(target):
        result = train_run(resolved, run_dir=target, data_dir=data_dir, resume=resume)
    return Run(result.run_dir, result=result)


def load(run_dir: str | Path, *, device: str | None = None) -> Run:
    """A finished run from its directory (no dataset files needed).

    Arguments:
        run_dir: a directory written by :func:`fit` or ``rnnkit train``.
        device: where the model runs (default: a GPU if the run's accelerator allows one
            and one is present, else the CPU).

    Raises:
        FileNotFoundError: not a finished run (its config, weights or data state missing).
    """
    run = Run(run_dir, device=device)
    run.config  # noqa: B018  (fail now, not at first use, when it is no run)
    return run


# -- predictions ----------------------------------------------------------------------


@dataclass
class Predictions(Sequence[dict[str, Any]]):
    """A run's answers for a list of inputs; a sequence of one record (dict) per input.

    Records hold ``input`` and, by task: ``label``, ``probability``, ``probabilities``
    (every class) and ``top`` (classification); ``labels`` and ``probabilities``
    (multi-label); ``values`` (regression); ``output``, ``caption`` or ``forecast``
    (the other tasks).

    Attributes:
        records: the records, in input order.
        class_names: the classes (labels) of a classifier, else ``[]``.
    """

    records: list[dict[str, Any]]
    class_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        return self.records[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    @property
    def labels(self) -> list[Any]:
        """The predicted label of each input (a list of labels for multi-label runs)."""
        key = "labels" if self.records and "labels" in self.records[0] else "label"
        return [r[key] for r in self.records]

    @property
    def probabilities(self) -> np.ndarray:
        """``(N, C)``: every class's probability (softmax; per-label sigmoid for multi-label)."""
        return np.array(
            [[r["probabilities"][c] for c in self.class_names] for r in self.records],
            dtype=np.float64,
        ).reshape(len(self.records), len(self.class_names))

    @property
    def values(self) -> np.ndarray:
        """``(N, n)``: a regression's predicted values, in the targets' units."""
        return np.array([r["values"] for r in self.records], dtype=np.float64)


@dataclass
class FilePredictions:
    """What :meth:`Run.predict_file` wrote.

    Attributes:
        output: the file written (JSONL or CSV).
        rows: inputs read.
        predicted: inputs answered.
        bad: ``(where, why)`` of each input that could not be read or encoded.
    """

    output: Path
    rows: int
    predicted: int
    bad: list[tuple[str, str]]


def _place(where: str, source: Path) -> dict[str, Any]:
    """``{"line": 17}`` for ``file:17``, ``{"item": "case 3"}`` for ``file, case 3``."""
    rest = where.removeprefix(str(source))
    match = re.fullmatch(r":(\d+)", rest)
    if match:
        return {"line": int(match.group(1))}
    return {"item": rest.removeprefix(", ") or where}


class _Writer:
    """JSON Lines or CSV (from the output's suffix), one row per input."""

    def __init__(
        self, path: Path, suffix: str, class_names: list[str], task: str, num_values: int
    ) -> None:
        self.path, self.task = path, task
        self.class_names, self.num_values = class_names, num_values
        self.csv = suffix.lower() in (".csv", ".tsv")
        self.handle = path.open("w", encoding="utf-8", newline="")
        self.writer: Any = None
        if self.csv:
            import csv

            delimiter = "\t" if suffix.lower() == ".tsv" else ","
            self.writer = csv.writer(self.handle, delimiter=delimiter)
            self.writer.writerow(self._header())

    def _header(self) -> list[str]:
        if self.task == "regression":
            n = self.num_values
            answer = ["value"] if n == 1 else [f"value_{j}" for j in range(n)]
        elif self.task == "multilabel_classification":
            answer = ["labels", *(f"p_{c}" for c in self.class_names)]
        else:
            answer = ["label", "probability", *(f"p_{c}" for c in self.class_names)]
        return ["line", "item", *answer, "error"]

    def write(
        self,
        place: dict[str, Any],
        result: dict[str, Any] | None,
        error: str | None,
        text: str | None = None,
    ) -> None:
        if not self.csv:
            shown = {"input": text} if text is not None else {}
            record = {**place, **shown, **(result or {}), **({"error": error} if error else {})}
            self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        cells: list[Any] = [place.get("line", ""), place.get("item", "")]
        width = len(self._header()) - 3
        if result is None:
            cells += [""] * width
        elif "values" in result:
            cells += result["values"]
        elif "labels" in result:
            cells += ["|".join(result["labels"]), *result["probabilities"].values()]
        else:
            cells += [result["label"], result["probability"], *result["probabilities"].values()]
        self.writer.writerow([*cells, error or ""])

    def close(self) -> None:
        self.handle.close()


# -- the run --------------------------------------------------------------------------


def _default_device(config: RunConfig) -> str:
    import torch

    accelerator = str(config.train.trainer_arguments().get("accelerator", "auto"))
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "cuda"
    return "cpu"


class Run:
    """A run directory as an object: what it learnt, how it scored, and its model.

    Arguments:
        run_dir: the run directory.
        device: where the model runs (see :func:`load`).
        result: the :class:`~rnnkit.training.run.RunResult` of a fresh :func:`fit`.

    Attributes:
        run_dir: the directory.
        result: the training result (``None`` for a loaded run).
    """

    def __init__(self, run_dir: str | Path, *, device: str | None = None, result: Any = None):
        self.run_dir = Path(run_dir)
        self.result = result
        self._device = device

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r})"

    # files ---------------------------------------------------------------------------

    def _json(self, name: str, default: Any = None) -> Any:
        path = self.run_dir / name
        from rnnkit.training.checkpoint import load_json

        return load_json(path) if path.is_file() else default

    @cached_property
    def _loaded(self) -> Any:
        from rnnkit.training.run import load_run

        return load_run(self.run_dir, map_location=self.device)

    @cached_property
    def config(self) -> RunConfig:
        """The resolved run config (``config.yaml``)."""
        path = self.run_dir / "config.yaml"
        if not path.is_file():
            raise FileNotFoundError(
                f"{self.run_dir} is not a finished rnnkit run: config.yaml is missing "
                "(train one with rnnkit.fit or `rnnkit train`)"
            )
        return run_config_from_dict(load_yaml(path))

    @property
    def metrics(self) -> dict[str, float]:
        """Held-out test metrics and baselines (``metrics.json``, re-read each time)."""
        data = self._json("metrics.json", {})
        return {k: v for k, v in data.items() if isinstance(v, int | float) and k != "examples"}

    @property
    def history(self) -> list[dict[str, Any]]:
        """Train and validation loss and metrics per epoch (``history.json``)."""
        return list(self._json("history.json", []))

    @property
    def data_state(self) -> dict[str, Any]:
        """What the data pipeline learnt from the training split (vocabulary, labels, scalers)."""
        return dict(self._json("data_state.json", {}))

    @property
    def data_report(self) -> dict[str, Any]:
        """What the reader found in the files (``data_report.json``; ``{}`` if none)."""
        return dict(self._json("data_report.json", {}))

    @property
    def class_names(self) -> list[str]:
        """The class (label) names of a classifier (``"0"``, ``"1"``, … when the data has
        no names, as for the digits), else ``[]``."""
        names = self.data_state.get("class_names")
        if names:
            return list(names)
        if self.config.task.name not in ("classification", "multilabel_classification"):
            return []
        return [str(i) for i in range(int(self.config.model.options.get("num_classes", 0)))]

    @property
    def device(self) -> str:
        """Where the model runs."""
        if self._device is None:
            self._device = _default_device(self.config)
        return self._device

    @property
    def model(self) -> Any:
        """The best epoch's model, in eval mode on :attr:`device` (built on first use)."""
        return self._loaded.model

    @cached_property
    def _datamodule(self) -> Any:
        from rnnkit.training.predict import run_datamodule

        return run_datamodule(self._loaded)

    # use -----------------------------------------------------------------------------

    def _to(self, device: str | None) -> None:
        if device is not None and device != self.device:
            self.model.to(device)
            self._device = device

    def _stream(self, items: Iterable[tuple[str, Any]], batch_size: int) -> Iterator[Any]:
        from rnnkit.training.predict import predict_stream

        return predict_stream(self._loaded, self._datamodule, items, batch_size=batch_size)

    def predict(
        self,
        inputs: Sequence[Any],
        *,
        batch_size: int = 256,
        device: str | None = None,
        top: int = 3,
        beam: int = 1,
    ) -> Predictions:
        """Predict a list of inputs in batches.

        Arguments:
            inputs: texts (text runs), image files or ``(H, W)`` arrays (image runs),
                ``(T, F)`` arrays (sequence runs); for the other tasks what
                ``rnnkit predict`` takes (source strings, CSV files, prompts).
            batch_size: inputs per forward pass.
            device: run on this device from now on (default: :attr:`device`).
            top: classes listed in each record's ``top``.
            beam: beam size (seq2seq and captioning runs).

        Raises:
            DataFormatError: an input that cannot be encoded (naming it).
        """
        import torch

        from rnnkit.training.predict import PREDICTORS

        self._to(device)
        if not inputs:
            raise ValueError("predict needs at least one input")
        answer = PREDICTORS.get(self.config.task.name)
        options = {"top": top, "beam": beam, "batch_size": batch_size}
        with torch.no_grad():
            records = answer(self._loaded, self._datamodule, list(inputs), options)
        return Predictions(records, self.class_names)

    def predict_file(
        self,
        input: str | Path,
        output: str | Path,
        *,
        batch_size: int = 256,
        device: str | None = None,
        text_column: str | None = None,
        skip_bad: bool = False,
        progress: Progress | None = None,
    ) -> FilePredictions:
        """Predict every input of a file, streamed in batches, into a JSONL or CSV file.

        Inputs: see :func:`~rnnkit.training.predict.read_inputs` (one text per line, a
        CSV/JSONL with the training text column, images, sequences). Output: one row per
        input, in input order. ``.jsonl``: one JSON object with ``line`` (or ``item``: a
        Parquet row, a sequence's case or id), the ``input`` text, then the answer
        (``label``, ``probability``, ``probabilities``; ``labels``; ``values``) or an
        ``error``. ``.csv``/``.tsv``: columns ``line``, ``item``, then ``label``,
        ``probability`` and ``p_<class>`` for every class, or ``labels`` and ``p_<label>``
        (multi-label), or ``value`` (regression), then ``error``.

        Arguments:
            input: the inputs file.
            output: the file to write (``.jsonl``, ``.csv`` or ``.tsv``).
            batch_size: inputs per forward pass.
            device: run on this device from now on.
            text_column: the column of the texts (default: the training one).
            skip_bad: write the good rows and list the bad ones (each bad input gets a row
                with its ``error``); otherwise any bad input is an error and no output is
                left behind.
            progress: called with the number of inputs done after each batch.

        Raises:
            DataFormatError: bad inputs without ``skip_bad`` (naming where each is).
        """
        from rnnkit.data.errors import DataFormatError
        from rnnkit.training.predict import read_inputs

        self._to(device)
        source, target = Path(input), Path(output)
        partial = target.with_name(target.name + ".partial")
        state = self.data_state
        values = int(state.get("num_targets") or 1)
        writer = _Writer(partial, target.suffix, self.class_names, self.config.task.name, values)
        rows, bad = 0, []
        try:
            items = read_inputs(source, self._datamodule, text_column=text_column)
            for row in self._stream(items, batch_size):
                rows += 1
                if row.error is not None:
                    bad.append((row.where, row.error))
                writer.write(_place(row.where, source), row.result, row.error, row.input)
                if progress is not None and rows % batch_size == 0:
                    progress(rows)
        except BaseException:
            writer.close()
            partial.unlink(missing_ok=True)
            raise
        writer.close()
        if progress is not None:
            progress(rows)
        if bad and not skip_bad:
            partial.unlink(missing_ok=True)
            shown = "; ".join(why for _, why in bad[:_SHOWN])
            raise DataFormatError(
                f"{source}: {len(bad)} of {rows} inputs could not be read ({shown}"
                f"{' …' if len(bad) > _SHOWN else ''}); nothing written to {target}. Fix them, "
                "or pass skip_bad (--skip-bad) to write the others with these listed"
            )
        partial.replace(target)
        return FilePredictions(target, rows, rows - len(bad), bad)

    def evaluate(
        self, *, data_dir: str | Path | None = None, progress_bar: bool = False
    ) -> dict[str, float]:
        """Re-test the best weights on the held-out split (rewrites ``metrics.json``)."""
        from rnnkit.training.run import evaluate

        return evaluate(self.run_dir, data_dir=data_dir, progress_bar=progress_bar)

    def export(
        self,
        format: str,
        out: str | Path,
        *,
        quantize: str | None = None,
        check: bool = True,
    ) -> ExportResult:
        """Export the model with the run's metadata (``rnnkit export``; docs/export.md).

        Arguments:
            format: ``"onnx"`` or ``"torch-export"``.
            out: the file to write (``.onnx`` / ``.pt2``); an encoder–decoder's second
                graph goes beside it as ``<stem>.decoder_step<suffix>``.
            quantize: ``"int8"`` for ONNX Runtime's dynamic int8 weights (ONNX only).
            check: load the files back and compare them with the model on a ragged batch.

        Returns:
            An :class:`~rnnkit.export.ExportResult`: ``files`` (graph role → path),
            ``metadata``, ``errors`` (the check's relative differences) and, with
            ``quantize``, ``quantized_errors`` (int8 against fp32).

        Raises:
            ExportError: an unknown format or quantisation, int8 with torch.export, a
                model kind the exporter does not know, or a file that fails the check.
        """
        from rnnkit.export import export_run
        from rnnkit.training.run import load_run

        # The exporter traces on the CPU; a run loaded onto a GPU is exported from a CPU copy.
        loaded = self._loaded if self.device == "cpu" else load_run(self.run_dir)
        return export_run(loaded, format, out, quantize=quantize, check=check)

    def stream(
        self, *inputs: Any, state: State | None = None
    ) -> TokenStream | DecoderStream | Stream:
        """A streaming object over the run's model, which is in eval mode (docs/export.md).

        * a language model or unidirectional tagger: a
          :class:`~rnnkit.models.stream.TokenStream` (``step(tokens (B,)) -> (B, V)``,
          ``chunk(tokens (B, T')) -> (B, T', V)``), from ``state`` or zeros;
        * a seq2seq or captioning model: a :class:`~rnnkit.models.stream.DecoderStream`
          that encodes ``inputs`` once (``src (B, S), src_lengths (B,)``; images
          ``(B, 1, 28, 28)`` or features ``(B, F)``), then ``step(previous tokens (B,))``;
        * a classifier or forecaster (whose head reads the whole sequence): a
          :class:`~rnnkit.layers.stream.Stream` over its recurrent layer, fed the
          features that layer reads (``step((B, I)) -> (B, O)``).

        Token ids are the run's vocabulary's (``run.data_state["vocab"]``).

        Raises:
            ValueError: a bidirectional recurrence (it reads each sequence from its end),
                or source ``inputs`` missing (encoder–decoders) or given (the others).
        """
        from rnnkit.layers.stream import Stream
        from rnnkit.models.stream import stream

        model = self.model
        if self.config.model.name in ("classifier", "forecaster"):
            if inputs:
                raise ValueError(f"stream: a {self.config.model.name} run takes no source inputs")
            return Stream(model.rnn, state)
        return stream(model, *inputs, state=state)

"""Predictions from a saved run on new inputs, in a fresh process.

The run's DataModule is constructed from the saved config (nothing is read from
disk) and given the saved data state, so new inputs are tokenised, numericalised and
scaled exactly as the training data was.

Classifiers, multi-label classifiers and regressors predict in batches
(:func:`predict_stream`): inputs are encoded one by one (an input that cannot be encoded
becomes a :class:`PredictedRow` with an ``error`` naming where it is, never a silent
gap), padded into batches of ``batch_size`` and run in eval mode under
``torch.inference_mode`` on the model's device. :func:`read_inputs` streams a file of
inputs (texts, images or sequences) for them. The other tasks (seq2seq, captioning,
forecasting, language models) answer through :data:`PREDICTORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.config import ConfigError
from rnnkit.data.batching import Batch, PadCollate
from rnnkit.data.errors import DataError, DataFormatError, DataNotFoundError
from rnnkit.registry import Registry
from rnnkit.training.run import LoadedRun, build_datamodule

BATCHED_TASKS = ("classification", "multilabel_classification", "regression")
"""Tasks whose runs predict in batches and from files."""

Predictor = Callable[[LoadedRun, Any, Sequence[str], dict[str, Any]], list[dict[str, Any]]]
PREDICTORS: Registry[Predictor] = Registry("predictor")


def run_datamodule(loaded: LoadedRun) -> Any:
    """The run's DataModule with its learnt state (vocabulary, scalers), not set up."""
    datamodule = build_datamodule(loaded.config.data, data_dir=None, seed=loaded.config.seed)
    datamodule.load_state_dict(loaded.data_state)
    return datamodule


def predict(loaded: LoadedRun, inputs: Sequence[str], **options: Any) -> list[dict[str, Any]]:
    """Predictions for raw inputs (texts, image files, CSV files, source strings).

    Arguments:
        loaded: a run from :func:`~rnnkit.training.run.load_run`.
        inputs: what the task takes, one item per prediction.
        options: task options (``top`` classes, ``beam`` size).

    Returns:
        One JSON-able dict per input.
    """
    if not inputs:
        raise DataFormatError("predict needs at least one input")
    if loaded.config.task.name not in PREDICTORS:
        raise ConfigError(
            f"predict does not take raw inputs for {loaded.config.task.name!r} runs "
            f"(it does for: {', '.join(PREDICTORS.names())}); use `rnnkit evaluate`"
        )
    with torch.no_grad():
        return PREDICTORS.get(loaded.config.task.name)(
            loaded, run_datamodule(loaded), inputs, options
        )


# -- inputs -------------------------------------------------------------------------


def load_image(path: str | Path, shape: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """A grey image in [0, 1] with the digit bright on dark, as MNIST stores it.

    Reads PNG/JPEG (via matplotlib), ``.npy`` arrays, or a CSV of pixel values. An
    image whose border is mostly bright (dark ink on white paper) is inverted.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"expected an image file, found nothing at {path}")
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
    elif path.suffix == ".csv":
        array = np.loadtxt(path, delimiter=",")
    else:
        import matplotlib.image

        array = matplotlib.image.imread(path)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 3:  # RGB(A): average the colour channels
        array = array[..., :3].mean(axis=-1)
    if array.shape != shape:
        raise DataFormatError(
            f"{path}: expected a {shape[0]}x{shape[1]} image, got shape {array.shape}"
        )
    if array.max() > 1.0:
        array = array / 255.0
    border = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    if border.mean() > 0.5:
        array = 1.0 - array
    return torch.as_tensor(array, dtype=torch.float32)


def _softmax_top(logits: torch.Tensor, names: Sequence[str], top: int) -> dict[str, Any]:
    probs = logits.softmax(-1)
    values, indices = probs.topk(min(top, len(names)))
    best = int(indices[0])
    return {
        "label": names[best],
        "probability": round(float(values[0]), 6),
        "top": {names[int(i)]: round(float(v), 6) for v, i in zip(values, indices, strict=True)},
    }


def _class_names(loaded: LoadedRun, dm: Any, count: int) -> list[str]:
    names = loaded.data_state.get("class_names") or getattr(dm, "class_names", None)
    return list(names) if names else [str(i) for i in range(count)]


# -- batched prediction -------------------------------------------------------------


@dataclass
class PredictedRow:
    """One input's answer, or why it has none.

    Attributes:
        where: the input's place (``file:line``, ``file, case i``, ``input 3``).
        result: ``label``, ``probability`` and every class's ``probabilities``
            (classification); ``labels`` and ``probabilities`` (multi-label); ``values``
            (regression). ``None`` for a bad input.
        error: what was wrong with a bad input, else ``None``.
        input: the raw input when it is short text (for display), else ``None``.
    """

    where: str
    result: dict[str, Any] | None = None
    error: str | None = None
    input: Any = None


def _text_encoder(dm: Any) -> Callable[[Any, str], torch.Tensor]:
    vocab, limit = dm.vocab, dm.max_length

    def encode(item: Any, where: str) -> torch.Tensor:
        if not isinstance(item, str):
            raise DataFormatError(f"{where}: expected a text, got {type(item).__name__}")
        ids = vocab.encode(dm.tokenizer(item))
        ids = ids[:limit] if limit else ids
        if not ids:
            raise DataFormatError(f"{where}: the text has no tokens")
        return torch.tensor(ids, dtype=torch.long)  # (T,)

    return encode


def _image_encoder(item: Any, where: str) -> torch.Tensor:
    if isinstance(item, str | Path):
        try:
            return load_image(item)  # (H, W)
        except (OSError, ValueError) as err:  # unreadable or not an image
            raise DataFormatError(f"{where}: cannot read an image from {item}: {err}") from None
    array = np.asarray(item, dtype=np.float32)
    if array.ndim != 2:
        raise DataFormatError(f"{where}: expected an (H, W) image, got shape {array.shape}")
    return torch.as_tensor(array / 255.0 if array.max() > 1.0 else array)


def example_encoder(dm: Any) -> Callable[[Any, str], torch.Tensor]:
    """How one raw input becomes a model input: text → ids ``(T,)``, a sequence →
    scaled features ``(T, F)``, an image (file or array) → rows ``(H, W)``."""
    if getattr(dm, "vocab", None) is not None:
        return _text_encoder(dm)
    if hasattr(dm, "encode"):
        return lambda item, where: dm.encode(item, where)
    return _image_encoder


def output_decoder(loaded: LoadedRun, dm: Any) -> Callable[[torch.Tensor], list[dict[str, Any]]]:
    """Model outputs ``(B, C)`` → one result per row, as the run's task reads them."""
    task = loaded.config.task.name
    if task == "regression":
        return lambda out: _values(dm, out)
    threshold = float(getattr(loaded.task, "threshold", 0.5))

    def decode(logits: torch.Tensor) -> list[dict[str, Any]]:
        names = _class_names(loaded, dm, logits.shape[-1])
        if task == "multilabel_classification":
            probs = torch.sigmoid(logits.float()).cpu().numpy()  # (B, L)
            return [
                {
                    "labels": [n for n, p in zip(names, row, strict=True) if p >= threshold],
                    "probabilities": _rounded(names, row),
                }
                for row in probs
            ]
        probs = logits.float().softmax(-1).cpu().numpy()  # (B, C)
        return [
            {
                "label": names[int(row.argmax())],
                "probability": round(float(row.max()), 6),
                "probabilities": _rounded(names, row),
            }
            for row in probs
        ]

    return decode


def _rounded(names: Sequence[str], probs: np.ndarray) -> dict[str, float]:
    return {n: round(float(p), 6) for n, p in zip(names, probs, strict=True)}


def _values(dm: Any, out: torch.Tensor) -> list[dict[str, Any]]:
    values = dm.target_scaler.inverse_transform(out.double().cpu().numpy())  # (B, n)
    return [{"values": [float(v) for v in row]} for row in values]


def predict_stream(
    loaded: LoadedRun,
    dm: Any,
    items: Iterable[tuple[str, Any]],
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> Iterator[PredictedRow]:
    """Predict ``(where, raw input)`` items in batches, in input order.

    Arguments:
        loaded: the run (its model is moved to ``device`` if given).
        dm: the run's DataModule with its data state (:func:`run_datamodule`).
        items: the inputs with their place, e.g. from :func:`read_inputs`.
        batch_size: inputs per forward pass.
        device: where to run (default: where the model is).

    Yields:
        One :class:`PredictedRow` per item, bad inputs included (with ``error``).
    """
    if loaded.config.task.name not in BATCHED_TASKS:
        raise ConfigError(
            f"batched prediction serves {', '.join(BATCHED_TASKS)} runs, not "
            f"{loaded.config.task.name!r}"
        )
    if batch_size < 1:
        raise ConfigError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    model = loaded.model.eval()
    if device is not None:
        model.to(device)
    target = next(model.parameters()).device
    encode, decode = example_encoder(dm), output_decoder(loaded, dm)
    collate = PadCollate(getattr(dm, "pad_id", 0) if getattr(dm, "vocab", None) else 0)
    pending: list[PredictedRow] = []
    encoded: list[tuple[int, torch.Tensor]] = []
    for where, item in items:
        row = PredictedRow(where, input=item if isinstance(item, str) else None)
        try:
            encoded.append((len(pending), encode(item, where)))
        except DataError as err:
            row.error = str(err)
        pending.append(row)
        if len(encoded) == batch_size:
            yield from _flush(model, collate, decode, pending, encoded, target)
            pending, encoded = [], []
    yield from _flush(model, collate, decode, pending, encoded, target)


def _flush(
    model: torch.nn.Module,
    collate: PadCollate,
    decode: Callable[[torch.Tensor], list[dict[str, Any]]],
    rows: list[PredictedRow],
    encoded: list[tuple[int, torch.Tensor]],
    device: torch.device,
) -> Iterator[PredictedRow]:
    if encoded:
        batch: Batch = collate([(x, 0) for _, x in encoded])
        with torch.inference_mode():
            out = model(batch.inputs.to(device), batch.lengths)  # (B, C)
        for (position, _), result in zip(encoded, decode(out), strict=True):
            rows[position].result = result
    yield from rows


# -- inputs from files --------------------------------------------------------------


def read_inputs(
    path: str | Path, dm: Any, *, text_column: str | None = None
) -> Iterator[tuple[str, Any]]:
    """Stream the inputs of a file as ``(where, raw input)`` for :func:`predict_stream`.

    * text runs: a ``.txt`` file (one text per line) or a CSV, TSV, JSONL or Parquet file
      with the training text column (``text_column`` overrides it);
    * sequence runs: a ``.npz``, long-format ``.csv`` or ``.ts`` file as for training
      (labels, if present, are ignored);
    * image runs: a ``.npy`` of ``(N, H, W)`` (or one ``(H, W)``) images, a ``.npz`` with
      ``images``, a folder of image files, or a ``.txt`` listing image files.

    Raises:
        DataNotFoundError: no such file. DataFormatError: a missing column, a file of the
            wrong kind (bad rows inside a good file are yielded, not raised).
    """
    from rnnkit.data.datasets.textfiles import read_text_rows

    path = Path(path)
    if getattr(dm, "vocab", None) is not None:
        column = text_column or getattr(dm, "text_column", None) or "text"
        for where, record in read_text_rows(path, text_column=column):
            value = record[column]
            yield where, "" if value is None else str(value)
        return
    if hasattr(dm, "encode"):
        table = dm.read(path, labelled=False)
        yield from zip(table.ids, table.sequences, strict=True)
        return
    yield from _image_inputs(path)


def _image_inputs(path: Path) -> Iterator[tuple[str, Any]]:
    from rnnkit.data.paths import require_file

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        yield from ((str(f), str(f)) for f in files)
        return
    path = require_file(path, "an input file")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "images" not in data.files:
                raise DataFormatError(f"{path}: expected an array 'images', found {data.files}")
            array = data["images"]
    elif path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
    if path.suffix in (".npy", ".npz"):
        array = array[None] if array.ndim == 2 else array
        yield from ((f"{path}, image {i}", a) for i, a in enumerate(array))
    elif path.suffix == ".txt":
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                target = Path(line.strip())
                target = target if target.is_absolute() else path.parent / target
                yield f"{path}:{number}", str(target)
    else:
        yield str(path), str(path)


# -- per task -----------------------------------------------------------------------


@PREDICTORS.register("classification")
@PREDICTORS.register("multilabel_classification")
@PREDICTORS.register("regression")
def classify(
    loaded: LoadedRun, dm: Any, inputs: Sequence[str], options: dict[str, Any]
) -> list[dict[str, Any]]:
    """Texts (a text classifier), image files (a digits classifier), or their multi-label
    and regression counterparts: one batched pass; a bad input is an error naming it."""
    top = int(options.get("top", 3))
    rows = predict_stream(
        loaded,
        dm,
        ((f"input {i + 1}", item) for i, item in enumerate(inputs)),
        batch_size=int(options.get("batch_size", 256)),
    )
    results = []
    for row, item in zip(rows, inputs, strict=True):
        if row.error is not None:
            raise DataFormatError(f"{row.error} ({str(item)[:40]!r})")
        assert row.result is not None
        result = {"input": item, **row.result}
        if "label" in result:
            ranked = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])[:top]
            result["top"] = dict(ranked)
        results.append(result)
    return results


@PREDICTORS.register("seq2seq")
def translate(
    loaded: LoadedRun, dm: Any, inputs: Sequence[str], options: dict[str, Any]
) -> list[dict[str, Any]]:
    """Source strings → decoded target strings (greedy, or beam search with ``beam``)."""
    from rnnkit.data.datasets.pairs import decode_target

    ids = dm.encode_source(list(inputs))
    if any(not i for i in ids):
        raise DataFormatError("every source string needs at least one token")
    src = torch.nn.utils.rnn.pad_sequence([torch.tensor(i) for i in ids], batch_first=True)
    lengths = torch.tensor([len(i) for i in ids])
    max_len = int(options.get("max_len", 64))
    beam = int(options.get("beam", 1))
    if beam > 1:
        tokens = loaded.model.beam_search(src, lengths, beam_size=beam, max_len=max_len)
    else:
        tokens = loaded.model.greedy_decode(src, lengths, max_len=max_len)
    joiner = "" if getattr(dm.tokenizer, "__name__", "") == "characters" else " "
    return [
        {"input": text, "output": decode_target(dm.target_vocab, row, joiner=joiner)}
        for text, row in zip(inputs, tokens, strict=True)
    ]


@PREDICTORS.register("caption")
def caption(
    loaded: LoadedRun, dm: Any, inputs: Sequence[str], options: dict[str, Any]
) -> list[dict[str, Any]]:
    """Image files → generated captions."""
    from rnnkit.data.datasets.pairs import decode_target

    images = torch.stack([load_image(p) for p in inputs]).unsqueeze(1)  # (B, 1, 28, 28)
    tokens = loaded.model.generate(
        images, max_len=int(options.get("max_len", 12)), beam_size=int(options.get("beam", 1))
    )
    return [
        {"input": path, "caption": decode_target(dm.target_vocab, row)}
        for path, row in zip(inputs, tokens, strict=True)
    ]


@PREDICTORS.register("forecast")
def forecast(
    loaded: LoadedRun, dm: Any, inputs: Sequence[str], options: dict[str, Any]
) -> list[dict[str, Any]]:
    """CSV files with the training columns → the next ``horizon`` values after their last row.

    The persistence forecast (last observed value) is reported beside the model's.
    """
    from rnnkit.data.datasets.timeseries import read_csv_series

    results = []
    for path in inputs:
        table = read_csv_series(
            path, date_column=dm.date_column, columns=list(dict.fromkeys(dm.features + dm.targets))
        )
        if len(table.dates) < dm.window:
            raise DataFormatError(
                f"{path}: needs at least window={dm.window} rows, has {len(table.dates)}"
            )
        x = np.stack([table.column(c) for c in dm.features], axis=1)[-dm.window :]  # (W, F)
        scaled = torch.as_tensor(dm.feature_scaler.transform(x), dtype=torch.float32).unsqueeze(0)
        pred = loaded.model(scaled)[0].detach().numpy()  # (H,) or (H, n)
        values = dm.target_scaler.inverse_transform(pred.reshape(-1, dm.num_targets))
        last = [float(table.column(t)[-1]) for t in dm.targets]
        results.append(
            {
                "input": str(path),
                "last_date": str(table.dates[-1])[:10],
                "targets": list(dm.targets),
                "forecast": values.tolist(),
                "persistence": [last for _ in range(len(values))],
            }
        )
    return results


@PREDICTORS.register("language_model")
def next_tokens(
    loaded: LoadedRun, dm: Any, inputs: Sequence[str], options: dict[str, Any]
) -> list[dict[str, Any]]:
    """A language model's most likely next tokens after each prompt."""
    vocab = dm.vocab
    results = []
    for text in inputs:
        ids = encode_prompt(dm, text)
        logits, _ = loaded.model(torch.tensor([ids]))
        names = list(vocab.tokens)
        results.append(
            {"input": text, **_softmax_top(logits[0, -1], names, int(options.get("top", 5)))}
        )
    return results


def encode_prompt(dm: Any, text: str) -> list[int]:
    """Prompt text → ids, refusing tokens the vocabulary cannot represent."""
    vocab = dm.vocab
    tokens = dm.tokenizer(text) if hasattr(dm, "tokenizer") else list(text)
    if not tokens:
        raise DataFormatError("the prompt has no tokens")
    if vocab.unk_id is None:
        unknown = sorted({t for t in tokens if t not in vocab})
        if unknown:
            raise DataFormatError(
                f"the prompt has tokens outside the vocabulary {list(vocab.tokens)}: {unknown}"
            )
    return vocab.encode(tokens)

"""Predictions from a saved run on new inputs, in a fresh process.

The run's DataModule is constructed from the saved config (nothing is read from
disk) and given the saved data state, so new inputs are tokenised, numericalised and
scaled exactly as the training data was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data.errors import DataFormatError
from rnnkit.registry import Registry
from rnnkit.training.run import LoadedRun, build_datamodule

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
        raise ValueError("predict needs at least one input")
    if loaded.config.task.name not in PREDICTORS:
        raise ValueError(
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
        raise FileNotFoundError(f"expected an image file, found nothing at {path}")
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


# -- per task -----------------------------------------------------------------------


def classify(
    loaded: LoadedRun, dm: Any, inputs: Sequence[str], options: dict[str, Any]
) -> list[dict[str, Any]]:
    """Texts (a text classifier) or image files (a digits/Fashion-MNIST classifier)."""
    vocab = getattr(dm, "vocab", None)
    results = []
    for item in inputs:
        if vocab is not None:
            tokens = dm.tokenizer(item)
            ids = vocab.encode(tokens)[: dm.max_length] if dm.max_length else vocab.encode(tokens)
            if not ids:
                raise ValueError(f"input {item[:40]!r} has no tokens")
            x, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
        else:
            image = load_image(item)
            x, lengths = image.unsqueeze(0), torch.tensor([image.shape[0]])
        logits = loaded.model(x, lengths)[0]  # (C,)
        names = _class_names(loaded, dm, logits.shape[-1])
        results.append({"input": item, **_softmax_top(logits, names, int(options.get("top", 3)))})
    return results


def translate(
    loaded: LoadedRun, dm: Any, inputs: Sequence[str], options: dict[str, Any]
) -> list[dict[str, Any]]:
    """Source strings → decoded target strings (greedy, or beam search with ``beam``)."""
    from rnnkit.data.datasets.pairs import decode_target

    ids = dm.encode_source(list(inputs))
    if any(not i for i in ids):
        raise ValueError("every source string needs at least one token")
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
        raise ValueError("the prompt has no tokens")
    if vocab.unk_id is None:
        unknown = sorted({t for t in tokens if t not in vocab})
        if unknown:
            raise ValueError(
                f"the prompt has tokens outside the vocabulary {list(vocab.tokens)}: {unknown}"
            )
    return vocab.encode(tokens)


PREDICTORS.register("classification", classify)
PREDICTORS.register("seq2seq", translate)
PREDICTORS.register("caption", caption)
PREDICTORS.register("forecast", forecast)
PREDICTORS.register("language_model", next_tokens)

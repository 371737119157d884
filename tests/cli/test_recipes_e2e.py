"""Every shipped recipe, end to end through the CLI, on tiny settings and local fixtures.

Each test trains a recipe for a few batches (seconds), checks the run directory, then
applies the saved run in a *fresh process* (``python -m rnnkit predict/generate``), as
a user would after training, and exports it (``rnnkit export``, ONNX in a fresh process,
torch.export in this one; the exporter checks both against the model).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from rnnkit.cli import main
from rnnkit.recipes import recipes
from tests.data.test_images import write_idx_set
from tests.data.test_imdb import make_archive
from tests.data.test_reuters import make_reuters
from tests.data.test_sequences import ragged, write_padded_npz
from tests.data.test_textfiles import reviews, write_jsonl
from tests.data.test_textfiles import write_csv as write_text_csv
from tests.data.test_timeseries import write_csv

pytestmark = pytest.mark.filterwarnings("ignore::rnnkit.data.errors.ChecksumWarning")
ACCEPT = "data.accept_modified=true"  # the fixtures are home-made archives

TINY = [
    "train.max_epochs=1",
    "train.trainer.limit_train_batches=2",
    "train.trainer.limit_val_batches=2",
    "train.trainer.limit_test_batches=2",
    "train.trainer.num_sanity_val_steps=0",
    "train.progress_bar=false",
]


def _no_data(tmp: Path) -> tuple[Path | None, list[str]]:
    return None, []


def _imdb(tmp: Path) -> tuple[Path | None, list[str]]:
    make_archive(tmp / "data")
    return tmp / "data", ["data.batch_size=4", "model.rnn.hidden_size=8", ACCEPT]


def _reuters(tmp: Path) -> tuple[Path | None, list[str]]:
    make_reuters(tmp / "data", archive=True)
    options = ["data.batch_size=2", "data.num_topics=4", "data.val_fraction=0.3", ACCEPT]
    return tmp / "data", [*options, "model.rnn.hidden_size=8"]


def _stock(tmp: Path) -> tuple[Path | None, list[str]]:
    (tmp / "data" / "stocks").mkdir(parents=True)
    path = write_csv(tmp / "data" / "stocks" / "series.csv", 200)
    return tmp / "data", [f"data.path={path}", "data.batch_size=8", "model.rnn.hidden_size=8"]


def _text(tmp: Path) -> tuple[Path | None, list[str]]:
    path = tmp / "text.txt"
    path.write_text("to be or not to be, that is the question. " * 60)
    return None, [f"data.path={path}", "data.block_size=16", "model.rnn.hidden_size=8"]


def _own_text(tmp: Path) -> tuple[Path | None, list[str]]:
    path = write_text_csv(tmp / "reviews.csv", reviews(60))
    return None, [f"data.path={path}", "data.batch_size=4", "model.rnn.hidden_size=8"]


def _own_tags(tmp: Path) -> tuple[Path | None, list[str]]:
    tags = ["sport|politics", "sport", "politics"]
    records = [{"text": f"goal {i} vote {i % 3}", "label": tags[i % 3]} for i in range(60)]
    path = write_jsonl(tmp / "tagged.jsonl", records)
    return None, [f"data.path={path}", "data.batch_size=4", "model.rnn.hidden_size=8"]


def _own_sequences(tmp: Path) -> tuple[Path | None, list[str]]:
    path = write_padded_npz(tmp / "seq.npz", *ragged(60))
    return None, [f"data.path={path}", "data.batch_size=4", "model.rnn.hidden_size=8"]


def _fashion(tmp: Path) -> tuple[Path | None, list[str]]:
    write_idx_set(tmp / "data" / "fashion-mnist", n_train=60, n_test=20)
    return tmp / "data", ["data.batch_size=8", "model.rnn.hidden_size=8", ACCEPT]


SMALL_DIGITS = ["data.limit=200", "model.rnn.hidden_size=8", "data.batch_size=16"]
FIXTURES: dict[str, Callable[[Path], tuple[Path | None, list[str]]]] = {
    "digits": lambda t: (None, SMALL_DIGITS),
    "caption": lambda t: (None, ["data.limit=200", "model.decoder.hidden_size=8"]),
    "fashion-mnist": _fashion,
    "imdb": _imdb,
    "imdb-cnn-lstm": _imdb,
    "reuters": _reuters,
    "stock": _stock,
    "text": _own_text,
    "text-multilabel": _own_tags,
    "sequences": _own_sequences,
    "stock-bilstm": _stock,
    "char-lm": _text,
    "hello": _no_data,
    "seq2seq": lambda t: (
        None,
        ["data.num_pairs=300", "model.encoder.hidden_size=8", "model.decoder.hidden_size=8"],
    ),
    "adding": lambda t: (None, ["data.steps=20", "data.limit=64", "model.rnn.hidden_size=8"]),
    "copy": lambda t: (None, ["data.steps=5", "data.limit=64", "model.rnn.hidden_size=8"]),
}

TASK_FILES = {
    "classification": "confusion_matrix.png",
    "multilabel_classification": "per_label.txt",
    "forecast": "forecast.png",
    "language_model": "samples.txt",
    "seq2seq": "samples.txt",
    "caption": "captions.png",
    "tagging": "samples.txt",
}


def test_every_recipe_has_a_fixture() -> None:
    assert sorted(FIXTURES) == recipes().names()


def test_the_recipes_export_every_model_kind() -> None:
    """So that exporting every recipe's run below covers every export plan."""
    from rnnkit.export.graphs import PLANS
    from rnnkit.recipes import load_recipe

    kinds = {load_recipe(name)["model"]["name"] for name in recipes().names()}
    assert kinds == set(PLANS.names())


def _fresh(*args: str) -> str:
    """Run ``python -m rnnkit ARGS`` in a new process; return its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _digit_file(tmp: Path) -> Path:
    from rnnkit.data.datasets.digits import bundled_digits_path, read_digits

    images, _ = read_digits(bundled_digits_path())
    path = tmp / "digit.npy"
    np.save(path, images[0])
    return path


def _prediction_args(name: str, run: Path, tmp: Path, overrides: list[str]) -> list[str] | None:
    """How to apply each recipe's run to a new input, or None (evaluation only)."""
    if name in ("digits", "fashion-mnist", "caption"):
        return ["predict", str(run), str(_digit_file(tmp)), "--json"]
    if name in ("imdb", "imdb-cnn-lstm", "reuters", "text", "text-multilabel"):
        return ["predict", str(run), "a wonderful film, truly moving", "--json"]
    if name == "sequences":
        data = next(o for o in overrides if o.startswith("data.path=")).split("=", 1)[1]
        return ["predict", str(run), "--input", data]  # JSON Lines on stdout
    if name in ("stock", "stock-bilstm"):
        csv = next(o for o in overrides if o.startswith("data.path=")).split("=", 1)[1]
        return ["predict", str(run), csv, "--json"]
    if name == "seq2seq":
        return ["predict", str(run), "the 3rd of March 1999", "--beam", "2", "--json"]
    if name in ("hello", "char-lm"):
        return [
            "generate",
            str(run),
            "--prompt",
            "h" if name == "hello" else "to be",
            "--length",
            "5",
            "--json",
        ]
    return None


def _export_both_ways(run: Path, tmp: Path) -> None:
    """``rnnkit export`` to ONNX in a fresh process, to torch.export here; both checked."""
    onnx_file = tmp / "exported.onnx"
    summary = json.loads(
        _fresh("export", str(run), "--format", "onnx", "--out", str(onnx_file), "--json")
    )
    assert Path(summary["files"][next(iter(summary["files"]))]) == onnx_file
    assert all(Path(f).is_file() for f in summary["files"].values())
    assert main(["export", str(run), "--format", "torch-export", "--out", str(tmp / "x.pt2")]) == 0


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_recipe_trains_and_its_run_is_usable(name: str, tmp_path: Path) -> None:
    data_dir, overrides = FIXTURES[name](tmp_path)
    run = tmp_path / "run"
    args = ["train", name, "--out", str(run), *(f"--set={o}" for o in TINY + overrides)]
    args += ["--data-dir", str(data_dir)] if data_dir else []
    assert main(args) == 0

    config = (run / "config.yaml").read_text()
    assert f"name: {name}" in config
    metrics = json.loads((run / "metrics.json").read_text())
    scores = {k: v for k, v in metrics.items() if k.startswith("test_")}
    assert "test_loss" in scores and all(math.isfinite(v) for v in scores.values())
    history = json.loads((run / "history.json").read_text())
    assert history[0]["epoch"] == 1 and "train_loss" in history[0] and "val_loss" in history[0]
    task = yaml.safe_load(config)["task"]["name"]
    for filename in ("model.safetensors", "curves.png", "data_state.json", TASK_FILES[task]):
        assert (run / filename).is_file(), filename
    assert not list(run.rglob("*.ckpt")) and not list(run.rglob("*.pt"))  # nothing pickled

    _export_both_ways(run, tmp_path)
    prediction = _prediction_args(name, run, tmp_path, overrides)
    if prediction is not None and "--input" in prediction:
        rows = [json.loads(line) for line in _fresh(*prediction).splitlines()]
        assert rows and all("label" in r for r in rows), f"{name}: no predictions"
    elif prediction is not None:
        result = json.loads(_fresh(*prediction))
        assert result, f"{name}: empty prediction"
    else:
        assert main(["evaluate", str(run), "--json"]) == 0

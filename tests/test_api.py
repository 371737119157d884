"""The Python API: fit, load, Run.predict / predict_file / evaluate, and a light import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit.api import Predictions, build_config
from rnnkit.config import ConfigError
from rnnkit.data import DataFormatError
from tests.data.test_sequences import ragged, write_padded_npz
from tests.data.test_textfiles import reviews, write_csv

QUIET = {"max_epochs": 1, "progress_bar": False, "trainer": {"num_sanity_val_steps": 0}}
SMALL = {"rnn": {"hidden_size": 8}}


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> rnnkit.Run:
    root = tmp_path_factory.mktemp("text")
    data = write_csv(root / "reviews.csv", reviews(80))
    return rnnkit.fit(
        "text",
        data={"path": str(data), "batch_size": 8},
        model=SMALL,
        train=QUIET,
        run_dir=root / "run",
    )


def test_import_rnnkit_stays_light() -> None:
    code = "import sys, rnnkit; print('lightning' in sys.modules, callable(rnnkit.fit))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_build_config_merges_sections_and_overrides() -> None:
    config = build_config(
        "text",
        data={"path": "r.csv"},
        train={"max_epochs": 3},
        overrides=["model.rnn.cell=gru"],
        seed=None,
    )
    assert config.data.options["path"] == "r.csv" and config.data.options["max_length"] == 400
    assert config.train.max_epochs == 3 and config.model.options["rnn"]["cell"] == "gru"
    assert config.model.options["rnn"]["hidden_size"] == 128  # the recipe's, kept
    with pytest.raises(ConfigError, match="max_epoch"):
        build_config("text", train={"max_epoch": 3})


def test_fit_returns_a_run_with_its_metrics_files_and_model(text_run: rnnkit.Run) -> None:
    assert 0.0 <= text_run.metrics["test_acc"] <= 1.0
    assert "test_majority_class_acc" in text_run.metrics and "examples" not in text_run.metrics
    assert text_run.class_names == ["neg", "pos"] and text_run.data_state["vocab"]
    assert text_run.history[0]["epoch"] == 1 and text_run.result.epochs == 1
    assert text_run.data_report["label_counts"]["test"] == {"neg": 4, "pos": 4}
    assert text_run.config.data.name == "text" and text_run.device == "cpu"
    assert not text_run.model.training


def test_load_and_predict_in_batches(text_run: rnnkit.Run) -> None:
    run = rnnkit.load(text_run.run_dir)
    preds = run.predict(["a great film", "a dull film", "loved it"], batch_size=2)
    assert isinstance(preds, Predictions) and len(preds) == 3
    assert set(preds.labels) <= {"neg", "pos"} and preds.probabilities.shape == (3, 2)
    np.testing.assert_allclose(preds.probabilities.sum(1), 1.0, rtol=1e-5)
    one_by_one = [
        run.predict([t], batch_size=1)[0]["probability"] for t in ("a great film", "loved it")
    ]
    assert one_by_one == pytest.approx([preds[0]["probability"], preds[2]["probability"]], abs=1e-5)
    with pytest.raises(DataFormatError, match=r"input 2: the text has no tokens"):
        run.predict(["fine", "   "])
    with pytest.raises(FileNotFoundError, match="not a finished rnnkit run"):
        rnnkit.load(text_run.run_dir / "nothing")


def test_predict_file_streams_csv_in_and_jsonl_or_csv_out(
    text_run: rnnkit.Run, tmp_path: Path
) -> None:
    source = tmp_path / "new.csv"
    source.write_text(
        'id,text\n1,"a great film"\n2,"dull, dull"\n3,""\n4,loved it\n', encoding="utf-8"
    )
    seen: list[int] = []
    with pytest.raises(DataFormatError, match=r"1 of 4 inputs.*new\.csv:4: the text has no tokens"):
        text_run.predict_file(source, tmp_path / "out.jsonl", batch_size=2)
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written is left behind
    report = text_run.predict_file(
        source, tmp_path / "out.jsonl", batch_size=2, skip_bad=True, progress=seen.append
    )
    assert (report.rows, report.predicted, [w for w, _ in report.bad]) == (4, 3, [f"{source}:4"])
    assert seen[-1] == 4
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rows] == [2, 3, 4, 5] and rows[1]["input"] == "dull, dull"
    assert set(rows[0]["probabilities"]) == {"neg", "pos"} and "error" in rows[2]
    text_run.predict_file(source, tmp_path / "out.csv", skip_bad=True)
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "line,item,label,probability,p_neg,p_pos,error" and len(lines) == 5


def test_evaluate_gives_the_training_metrics_back(text_run: rnnkit.Run) -> None:
    before = text_run.metrics
    after = rnnkit.load(text_run.run_dir).evaluate()
    assert after["test_acc"] == pytest.approx(before["test_acc"])


def test_sequences_fit_and_predict_arrays_and_files(tmp_path: Path) -> None:
    xs, y = ragged(60)
    data = write_padded_npz(tmp_path / "d.npz", xs, y)
    run = rnnkit.fit(
        "sequences",
        data={"path": str(data), "batch_size": 8},
        model=SMALL,
        train=QUIET,
        run_dir=tmp_path / "run",
    )
    preds = run.predict(xs[:5], batch_size=4)
    assert len(preds.labels) == 5 and preds.probabilities.shape == (5, 2)
    report = run.predict_file(data, tmp_path / "out.jsonl")
    assert report.rows == 60 and not report.bad
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert first["item"] == "case 0" and first["label"] == preds.labels[0]
    with pytest.raises(DataFormatError, match=r"input 1: expected a \(T, 3\) sequence"):
        run.predict([np.ones((4, 2))])


def test_image_runs_predict_stacks_folders_and_lists_of_files(tmp_path: Path) -> None:
    from rnnkit.data.datasets.digits import bundled_digits_path, read_digits

    run = rnnkit.fit(
        "digits",
        data={"limit": 200, "batch_size": 16},
        model=SMALL,
        train=QUIET,
        run_dir=tmp_path / "run",
    )
    images, _ = read_digits(bundled_digits_path())
    np.save(tmp_path / "stack.npy", images[:5])
    (tmp_path / "folder").mkdir()
    for i in range(3):
        np.save(tmp_path / "folder" / f"{i}.npy", images[i])
    (tmp_path / "list.txt").write_text("folder/0.npy\nfolder/missing.npy\n", encoding="utf-8")
    assert run.predict_file(tmp_path / "stack.npy", tmp_path / "a.jsonl").rows == 5
    assert run.predict_file(tmp_path / "folder", tmp_path / "b.jsonl").rows == 3
    report = run.predict_file(tmp_path / "list.txt", tmp_path / "c.csv", skip_bad=True)
    assert report.predicted == 1 and report.bad[0][0] == f"{tmp_path / 'list.txt'}:2"
    preds = run.predict([images[0], str(tmp_path / "folder" / "1.npy")])
    assert len(preds.labels) == 2 and preds.probabilities.shape == (2, 10)


# -- export and streaming -------------------------------------------------------------

TINY_TRAIN = {**QUIET, "trainer": {"num_sanity_val_steps": 0, "limit_train_batches": 2}}


@pytest.fixture(scope="module")
def char_lm_run(tmp_path_factory: pytest.TempPathFactory) -> rnnkit.Run:
    root = tmp_path_factory.mktemp("char-lm")
    text = root / "text.txt"
    text.write_text("to be or not to be, that is the question. " * 40)
    return rnnkit.fit(
        "char-lm",
        data={"path": str(text), "block_size": 16},
        model={"rnn": {"hidden_size": 8}},
        train=TINY_TRAIN,
        run_dir=root / "run",
    )


def test_run_export_writes_checked_files_with_the_run_metadata(
    text_run: rnnkit.Run, tmp_path: Path
) -> None:
    from rnnkit.export import ExportError, read_metadata

    run = rnnkit.load(text_run.run_dir)
    result = run.export("onnx", tmp_path / "text.onnx")
    assert result.files == {"model": tmp_path / "text.onnx"} and result.errors["model"] < 1e-4
    assert read_metadata(tmp_path / "text.onnx")["data"]["class_names"] == ["neg", "pos"]
    program = run.export("torch-export", tmp_path / "text.pt2", check=False)
    assert program.errors == {} and (tmp_path / "text.pt2").is_file()
    int8 = run.export("onnx", tmp_path / "int8.onnx", quantize="int8")
    assert int8.metadata["quantization"] == "int8-dynamic" and int8.quantized_errors["model"] < 0.05
    with pytest.raises(ExportError, match="applies to --format onnx"):
        run.export("torch-export", tmp_path / "x.pt2", quantize="int8")
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        run.export("tflite", tmp_path / "x.tflite")


def test_run_stream_feeds_a_language_model_token_by_token(char_lm_run: rnnkit.Run) -> None:
    import torch

    from rnnkit.models.stream import TokenStream

    run = rnnkit.load(char_lm_run.run_dir)
    tokens = torch.randint(1, run.model.config.vocab_size, (2, 7))
    with torch.no_grad():
        whole, _ = run.model(tokens)  # (B, T, V)
        lm = run.stream()
        assert isinstance(lm, TokenStream)
        pieces = [lm.chunk(tokens[:, :4]), *(lm.step(tokens[:, t])[:, None] for t in range(4, 7))]
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="takes no source inputs"):
        run.stream(tokens)


def test_run_stream_of_a_classifier_streams_its_recurrent_layer(tmp_path: Path) -> None:
    import torch

    from rnnkit.layers.stream import Stream

    run = rnnkit.fit(
        "digits",
        data={"limit": 100, "batch_size": 16},
        model=SMALL,
        train=TINY_TRAIN,
        run_dir=tmp_path / "run",
    )
    rows = torch.rand(3, 28, 28)  # (B, T, I): the digits' rows are the layer's input
    with torch.no_grad():
        whole, _ = run.model.rnn(rows)
        layer = run.stream()
        assert isinstance(layer, Stream)
        steps = torch.stack([layer.step(rows[:, t]) for t in range(28)], dim=1)
    torch.testing.assert_close(steps, whole, atol=1e-5, rtol=1e-5)


def test_run_stream_refuses_a_bidirectional_model(text_run: rnnkit.Run) -> None:
    with pytest.raises(ValueError, match="bidirectional layer cannot stream"):
        text_run.stream()

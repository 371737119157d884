"""Your own data, end to end in fresh processes, as a new user would run it.

A CSV of a few hundred labelled sentences and a ``.npz`` of ragged multivariate sequences
go through ``rnnkit train`` and ``rnnkit predict --input … --output …``, then through the
Python API; a multi-label JSONL run trains and predicts too.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from rnnkit.cli import main
from tests.data.test_sequences import ragged, write_padded_npz
from tests.data.test_textfiles import reviews, write_csv, write_jsonl

TINY = [
    "train.max_epochs=1",
    "train.progress_bar=false",
    "train.trainer.num_sanity_val_steps=0",
    "model.rnn.hidden_size=8",
    "data.batch_size=16",
]


def _fresh(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _sets(*overrides: str) -> list[str]:
    return [f"--set={o}" for o in [*TINY, *overrides]]


def test_csv_of_sentences_trains_and_predicts_a_file(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "reviews.csv", reviews(300))
    run = tmp_path / "run"
    trained = _fresh("train", "text", "--out", str(run), *_sets(f"data.path={data}"))
    assert "test (held out), 30 examples" in trained.stdout and "majority_class" in trained.stdout
    new = write_csv(tmp_path / "new.csv", [("a great film", ""), ("hated it", ""), ("fun", "")])
    done = _fresh("predict", str(run), "--input", str(new), "--output", str(tmp_path / "out.jsonl"))
    assert "3 of 3 inputs predicted" in done.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rows] == [2, 3, 4]
    assert all(
        r["label"] in ("neg", "pos") and set(r["probabilities"]) == {"neg", "pos"} for r in rows
    )


def test_bad_rows_stop_predict_unless_skipped(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "reviews.csv", reviews(100))
    run = tmp_path / "run"
    assert main(["train", "text", "--out", str(run), *_sets(f"data.path={data}")]) == 0
    new = tmp_path / "new.txt"
    new.write_text("great fun\n\nawful acting\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["predict", str(run), "--input", str(new), "--output", str(out)]) == 2
    assert not out.exists()
    assert main(["predict", str(run), "--input", str(new), "--output", str(out), "--skip-bad"]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["line"] for r in rows] == ["1", "2", "3"] and rows[1]["error"].endswith("no tokens")


def test_ragged_multivariate_npz_trains_and_predicts(tmp_path: Path) -> None:
    xs, y = ragged(120, features=4)
    data = write_padded_npz(tmp_path / "seq.npz", xs, y)
    run = tmp_path / "run"
    _fresh("train", "sequences", "--out", str(run), *_sets(f"data.path={data}"))
    state = json.loads((run / "data_state.json").read_text())
    assert state["feature_names"] == ["f0", "f1", "f2", "f3"] and state["class_names"] == ["0", "1"]
    new = tmp_path / "new.npz"
    np.savez(
        new,
        x=np.stack([np.pad(x, ((0, 14 - len(x)), (0, 0))) for x in xs[:6]]),
        lengths=np.array([len(x) for x in xs[:6]]),
    )
    _fresh("predict", str(run), "--input", str(new), "--output", str(tmp_path / "out.csv"))
    rows = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert [r["item"] for r in rows] == [f"case {i}" for i in range(6)]
    assert all(abs(float(r["p_0"]) + float(r["p_1"]) - 1) < 1e-5 for r in rows)


def test_the_same_two_through_the_python_api_in_a_fresh_process(tmp_path: Path) -> None:
    text = write_csv(tmp_path / "reviews.csv", reviews(200))
    xs, y = ragged(80)
    seq = write_padded_npz(tmp_path / "seq.npz", xs, y)
    script = textwrap.dedent(
        f"""
        import json, rnnkit
        quiet = {{"max_epochs": 1, "progress_bar": False}}
        small = {{"rnn": {{"hidden_size": 8}}}}
        run = rnnkit.fit("text", data={{"path": {str(text)!r}}}, model=small, train=quiet,
                         run_dir={str(tmp_path / "text")!r})
        again = rnnkit.load(run.run_dir)
        preds = again.predict(["great film", "dull"], batch_size=256)
        seq = rnnkit.fit("sequences", data={{"path": {str(seq)!r}}}, model=small, train=quiet,
                         run_dir={str(tmp_path / "seq")!r})
        file = rnnkit.load(seq.run_dir).predict_file({str(seq)!r}, {str(tmp_path / "s.jsonl")!r})
        print(json.dumps({{"labels": preds.labels, "shape": list(preds.probabilities.shape),
                          "acc": run.metrics["test_acc"], "rows": file.rows}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["labels"]) <= {"neg", "pos"} and result["shape"] == [2, 2]
    assert 0 <= result["acc"] <= 1 and result["rows"] == 80


def test_multi_label_jsonl_run(tmp_path: Path) -> None:
    records = [{"text": f"goal and vote {i}", "label": "sport|politics"} for i in range(40)]
    records += [{"text": f"goal scored {i}", "label": "sport"} for i in range(40)]
    records += [{"text": f"vote counted {i}", "label": ["politics"]} for i in range(40)]
    data = write_jsonl(tmp_path / "tagged.jsonl", records)
    run = tmp_path / "run"
    assert main(["train", "text-multilabel", "--out", str(run), *_sets(f"data.path={data}")]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"test_f1_micro", "test_f1_macro", "test_majority_class_f1_micro"} <= set(metrics)
    assert (run / "per_label.txt").read_text().count("\n") == 4  # title, header, 2 labels
    new = write_jsonl(tmp_path / "new.jsonl", [{"text": "goal"}, {"text": "vote"}])
    done = _fresh("predict", str(run), "--input", str(new), "--output", str(tmp_path / "o.jsonl"))
    assert "2 of 2" in done.stderr
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert all(set(r["probabilities"]) == {"politics", "sport"} for r in rows)
    assert all(set(r["labels"]) <= {"politics", "sport"} for r in rows)

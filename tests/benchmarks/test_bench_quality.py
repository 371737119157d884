"""The quality benchmark: its table, its docs block, and a tiny run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_quality
from rnnkit.api import build_config
from rnnkit.models import MODELS
from rnnkit.models.recurrent import build_recurrent

TINY = [
    "data.limit=60",
    "data.batch_size=16",
    "model.rnn.hidden_size=4",
    "model.rnn.num_layers=1",
    "train.max_epochs=1",
    "train.trainer.num_sanity_val_steps=0",
]


def _record(seed: int, acc: float, *, seconds: float = 60.0) -> dict:
    metrics = {"test_acc": acc, "test_f1": acc - 0.1}
    return {"recipe": "imdb", "seed": seed, "metrics": metrics, "seconds": seconds, "epochs": 3}


def test_rows_give_mean_and_spread_over_seeds_and_whether_the_target_is_met() -> None:
    row = bench_quality.summarise("imdb", "recipe", [_record(0, 0.90), _record(1, 0.92)])
    assert row["mean"] == pytest.approx(0.91) and row["std"] == pytest.approx(0.0141421, rel=1e-4)
    assert row["met"] and row["f1_mean"] == pytest.approx(0.81)
    assert not bench_quality.summarise("imdb", "recipe", [_record(0, 0.90)])["met"]
    slow = bench_quality.summarise("digits", "recipe", [_record(0, 0.99, seconds=200)])
    assert not slow["met"]  # digits must also finish within 3 minutes
    text = bench_quality.table([row])
    assert (
        "| imdb | test_acc 0.910 ± 0.014 | 0.810 ± 0.014 | — | 0.89 (DLwP LSTM) | ≥ 0.905 | yes |"
        in text
    )


def test_the_best_validation_epoch_is_read_from_the_history_by_the_goal_direction(
    tmp_path: Path,
) -> None:
    history = tmp_path / "history.json"
    epochs = [{"epoch": 0, "val_loss": 2.0, "val_acc": 0.6}, {"epoch": 1, "val_loss": 1.5}]
    history.write_text(json.dumps([*epochs, {"epoch": 2, "val_loss": 1.7, "val_acc": 0.7}]))
    assert bench_quality.best_validation(history, bench_quality.GOALS["char-lm"]) == 1.5
    assert bench_quality.best_validation(history, bench_quality.GOALS["imdb"]) == 0.7
    assert (
        bench_quality.best_validation(tmp_path / "missing.json", bench_quality.GOALS["imdb"])
        is None
    )
    records = [{**_record(0, 0.90), "validation": 0.91}, {**_record(1, 0.92), "validation": 0.93}]
    row = bench_quality.summarise("imdb", "recipe", records)
    assert row["val_mean"] == pytest.approx(0.92)
    assert "| 0.920 ± 0.014 |" in bench_quality.table([row])


def test_merged_rows_keep_other_recipes_and_replace_this_runs_in_goal_order() -> None:
    old = [{"recipe": "reuters", "mean": 0.8, "measured": "then"}, {"recipe": "imdb", "mean": 0.88}]
    new = [{"recipe": "imdb", "mean": 0.9}, {"recipe": "digits", "mean": 0.97}]
    merged = bench_quality.merge_rows(new, old, measured="now", command="c")
    assert [r["recipe"] for r in merged] == ["digits", "reuters", "imdb"]
    assert merged[2] == {"recipe": "imdb", "mean": 0.9, "measured": "now", "command": "c"}
    assert merged[1] == old[0]


def test_a_failed_recipe_is_a_row_that_says_why() -> None:
    failed = {"recipe": "reuters", "seed": 0, "error": "DataNotFoundError: no archive"}
    row = bench_quality.summarise("reuters", "recipe", [failed])
    assert "error: DataNotFoundError: no archive" in bench_quality.table([row])


def test_the_docs_block_is_replaced_between_its_markers_only() -> None:
    text = "a\n<!-- x:begin -->\nold\n<!-- x:end -->\nb\n"
    assert bench_quality.update_block(text, "x", "new") == (
        "a\n<!-- x:begin -->\nnew\n<!-- x:end -->\nb\n"
    )
    with pytest.raises(ValueError, match="expected the markers"):
        bench_quality.update_block("no markers", "x", "new")


def test_the_docs_carry_every_block_the_benchmark_writes() -> None:
    text = bench_quality.DOCS.read_text()
    for name in [
        "bench_quality",
        *(f"bench_quality:ablation-{r}" for r in bench_quality.ABLATIONS),
    ]:
        bench_quality.update_block(text, name, "table")


@pytest.mark.parametrize("recipe", list(bench_quality.ABLATIONS))
def test_every_ablation_variant_names_options_its_model_takes(recipe: str) -> None:
    """The model config and its recurrent layer accept each variant's overrides (built
    without a forward pass, which would compile the native loops)."""
    for variant, overrides in bench_quality.ABLATIONS[recipe].items():
        config = build_config(recipe, overrides=overrides)
        options = dict(config.model.options)
        if "input" in options:  # the data-derived values a run fills in
            options["input"] = {**options["input"], "vocab_size": 50, "unk_idx": 1}
        else:
            options |= {"vocab_size": 50, "unk_idx": 1}
        model_config = MODELS.get(config.model.name).Config.from_dict(options)
        assert build_recurrent(model_config.rnn, 16) is not None, variant


def test_a_tiny_digits_benchmark_writes_its_json_and_docs(tmp_path: Path) -> None:
    docs = tmp_path / "training.md"
    docs.write_text("before\n<!-- bench_quality:begin -->\n<!-- bench_quality:end -->\nafter\n")
    argv = ["--recipes", "digits", "--seeds", "2", "--budget-minutes", "1"]
    argv += [f"--set={item}" for item in TINY]
    argv += ["--out", str(tmp_path / "q.json"), "--runs", str(tmp_path / "runs")]
    results = tmp_path / "quality.json"
    stored = {"recipe": "reuters", "variant": "recipe", "metric": "test_acc", "seeds": [0]}
    stored |= {"anchor": "a", "target": "t", "mean": 0.8, "std": None, "minutes": 1.0}
    stored |= {"epochs": [2], "met": False, "measured": "2026-01-01", "machine": "m"}
    stored |= {"command": "python -m benchmarks.bench_quality --recipes reuters", "budget": "b"}
    results.write_text(json.dumps([stored]))
    argv += ["--update-docs", "--docs", str(docs), "--results", str(results)]
    assert bench_quality.main(argv) == 0
    result = json.loads((tmp_path / "q.json").read_text())
    assert [r["seed"] for r in result["records"]] == [0, 1]
    assert all(
        r["epochs"] == 1 and "train.trainer.max_time={seconds: 60}" in r["overrides"]
        for r in result["records"]
    )
    (row,) = result["rows"]
    assert row["recipe"] == "digits" and 0.0 <= row["mean"] <= 1.0 and row["std"] is not None
    written = docs.read_text()
    assert written.startswith("before\n") and written.endswith("after\n")
    assert "| digits | test_acc" in written and "| reuters | test_acc 0.800 |" in written
    assert "python -m benchmarks.bench_quality --recipes digits --seeds 2" in written
    assert "python -m benchmarks.bench_quality --recipes reuters\n" in written  # kept
    assert [r["recipe"] for r in json.loads(results.read_text())] == ["digits", "reuters"]


def test_the_command_in_the_docs_leaves_out_where_the_files_went() -> None:
    argv = ["--recipes", "imdb", "--out", "q.json", "--runs=r", "--update-docs"]
    assert bench_quality._command(argv) == (
        "python -m benchmarks.bench_quality --recipes imdb --update-docs"
    )

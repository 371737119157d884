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
        "| imdb | test_acc 0.910 ± 0.014 | 0.810 ± 0.014 | 0.89 (DLwP LSTM) | ≥ 0.905 | yes |"
        in text
    )


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
    argv += ["--update-docs", "--docs", str(docs)]
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
    assert "| digits | test_acc" in written
    assert "python -m benchmarks.bench_quality --recipes digits --seeds 2" in written

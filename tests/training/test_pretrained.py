"""Pretrained word vectors from the config: loaded after the vocabulary, frozen, reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rnnkit.api import build_config
from rnnkit.config import ConfigError
from rnnkit.training.run import load_run, train
from tests.data.test_textfiles import reviews, write_csv

TINY = [
    "data.batch_size=8",
    "model.rnn.hidden_size=8",
    "train.max_epochs=1",
    "train.progress_bar=false",
    "train.trainer.num_sanity_val_steps=0",
]


def _vectors(path: Path, dim: int = 4) -> Path:
    words = {"great": 1.0, "film": 2.0, "dull": 3.0, "Loved": 4.0}  # "Loved" matches "loved"
    path.write_text(
        f"{len(words)} {dim}\n"
        + "".join(f"{w} " + " ".join([str(v)] * dim) + "\n" for w, v in words.items()),
        encoding="utf-8",
    )
    return path


def _config(tmp_path: Path, *extra: str):
    data = write_csv(tmp_path / "r.csv", reviews(60))
    return build_config("text", overrides=[f"data.path={data}", *TINY, *extra])


def test_frozen_vectors_fill_the_embedding_and_stay_fixed(tmp_path: Path) -> None:
    vectors = _vectors(tmp_path / "v.txt")
    config = _config(
        tmp_path,
        f"model.input.vectors={vectors}",
        "model.input.freeze=true",
        "model.input.embedding_dim=null",
    )
    run = tmp_path / "run"
    train(config, run_dir=run)
    report = json.loads((run / "vectors.json").read_text())
    assert report["dim"] == 4 and report["found"] == 4 and report["lowercase_matches"] == 1
    assert report["frozen"] and 0 < report["coverage"] < 1
    loaded = load_run(run)
    assert loaded.config.model.options["input"]["embedding_dim"] == 4  # from the file
    vocab = json.loads((run / "data_state.json").read_text())["vocab"]
    weights = loaded.model.encoder.embedding.weight
    great = vocab["tokens"].index("great")
    assert torch.equal(weights[great], torch.full((4,), 1.0))  # unchanged by training


def test_unfrozen_vectors_are_trained(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        f"model.input.vectors={_vectors(tmp_path / 'v.txt')}",
        "model.input.embedding_dim=4",
    )
    train(config, run_dir=tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    vocab = json.loads((tmp_path / "run" / "data_state.json").read_text())["vocab"]
    row = loaded.model.encoder.embedding.weight[vocab["tokens"].index("great")]
    assert not torch.equal(row, torch.full((4,), 1.0))
    assert not json.loads((tmp_path / "run" / "vectors.json").read_text())["frozen"]


def test_a_dimension_that_disagrees_with_the_file_is_named(tmp_path: Path) -> None:
    config = _config(tmp_path, f"model.input.vectors={_vectors(tmp_path / 'v.txt')}")
    with pytest.raises(ConfigError, match=r"embedding_dim=128 disagrees.*4 dimensions"):
        train(config, run_dir=tmp_path / "run")


def test_freeze_without_vectors_and_vectors_without_embeddings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="freeze=true needs vectors"):
        train(_config(tmp_path, "model.input.freeze=true"), run_dir=tmp_path / "a")
    from rnnkit.models.inputs import InputSpec

    with pytest.raises(ValueError, match="apply to kind='embedding'"):
        InputSpec("identity", input_size=28, vectors="v.txt")
    digits = build_config("digits", overrides=["model.input.vectors=v.txt", *TINY])
    with pytest.raises(ConfigError, match="'digits' has no vocabulary"):
        train(digits, run_dir=tmp_path / "b")

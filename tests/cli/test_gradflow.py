"""``rnnkit gradflow`` and ``rnnkit activations`` run end to end and write their files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rnnkit.cli import build_parser, main
from rnnkit.cli.activations import NAMES, activations
from rnnkit.diagnostics.experiment import ExperimentConfig


def test_gradflow_writes_tables_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["gradflow", "--cells", "rnn,lstm", "--steps", "8", "--train-steps", "3"]
    assert main([*argv, "--hidden", "4", "--seed", "1", "--out", str(tmp_path)]) == 0
    names = ["gradflow.md", "gradflow.json", "gradient_norms.png", "gate_saturation.png",
             "loss_curves.png"]  # fmt: skip
    for name in names:
        assert (tmp_path / name).stat().st_size > 0, name
    table = json.loads((tmp_path / "gradflow.json").read_text())["table"]
    assert [row["cell"] for row in table] == ["rnn", "lstm"]
    assert all(row["ratio_init"] > 0 and row["test_loss"] > 0 for row in table)
    page = (tmp_path / "gradflow.md").read_text()
    assert page.startswith("# Gradient flow on the adding task, T = 8")
    assert "| lstm |" in page and "seed 1" in page
    captured = capsys.readouterr()  # results on stdout, progress on stderr
    assert captured.out.startswith("| cell |") and str(tmp_path / "loss_curves.png") in captured.out
    assert "rnn: at initialisation" in captured.err and "at initialisation" not in captured.out


def test_gradflow_compares_the_minimal_cells(tmp_path: Path) -> None:
    argv = ["gradflow", "--cells", "gru,mingru,minlstm", "--steps", "6", "--train-steps", "2"]
    assert main([*argv, "--hidden", "4", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "gradflow.json").read_text())
    assert [row["cell"] for row in data["table"]] == ["gru", "mingru", "minlstm"]
    assert all(row["ratio_init"] > 0 for row in data["table"])
    gates = [set(c["init"]["layers"][0]["gates"]) for c in data["cells"]]
    assert gates == [{"r", "z", "n"}, {"z", "h_tilde"}, {"i", "f", "h_tilde"}]


def test_gradflow_copy_task(tmp_path: Path) -> None:
    argv = ["gradflow", "--cells", "gru", "--task", "copy", "--steps", "3", "--train-steps", "2"]
    assert main([*argv, "--hidden", "4", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "gradflow.json").read_text())
    assert data["metric"] == "cross-entropy" and data["config"]["steps"] == 3


def test_gradflow_rejects_an_unknown_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gradflow", "--cells", "rnn,tcn", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        "rnnkit gradflow: error: expected cells from ['gru', 'lstm', 'mingru', 'minlstm', "
        "'rnn'], got ['rnn', 'tcn']\n"
    )
    assert not tmp_path.joinpath("gradflow.json").exists()


def test_gradflow_defaults_are_the_documented_experiment() -> None:
    args = build_parser().parse_args(["gradflow", "--out", "x"])
    config = ExperimentConfig()
    assert tuple(args.cells.split(",")) == config.cells
    for option in ("task", "steps", "train_steps", "hidden", "batch_size", "lr", "clip",
                   "forget_bias", "seed"):  # fmt: skip
        assert getattr(args, option) == getattr(config, option), option
    documented = {f.name for f in dataclasses.fields(ExperimentConfig)}
    assert documented - set(vars(args)) == {"test_size", "probe_size", "eval_every"}


def test_activations_writes_one_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["activations", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "activations.png").stat().st_size > 0
    assert str(tmp_path / "activations.png") in capsys.readouterr().out
    assert [name for name, _, _ in activations()] == list(NAMES)


def test_help_lists_the_new_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "gradflow" in out and "activations" in out

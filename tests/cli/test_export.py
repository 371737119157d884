"""``rnnkit export``: files with the run's metadata, and bad input as one line, exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rnnkit.cli import main
from rnnkit.export import read_metadata
from tests.cli.test_recipes_e2e import SMALL_DIGITS, TINY


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "digits"
    args = ["train", "digits", "--out", str(run), *(f"--set={o}" for o in TINY + SMALL_DIGITS)]
    assert main(args) == 0
    return run


def test_an_onnx_export_carries_what_a_consumer_needs(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "digits.onnx"
    assert main(["export", str(digits_run), "--format", "onnx", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == {"model": str(out)} and summary["errors"]["model"] < 1e-4
    metadata = read_metadata(out)
    assert metadata["schema"] == "rnnkit.export/1" and metadata["format"] == "onnx"
    assert metadata["model"]["kind"] == "classifier" and metadata["task"] == "classification"
    assert metadata["data"]["class_names"] == [str(d) for d in range(10)]
    model = metadata["graphs"]["model"]
    assert [i["name"] for i in model["inputs"]] == ["inputs", "lengths"]
    assert model["inputs"][0]["shape"] == ["batch", "time", 28]
    assert model["outputs"][0] == {
        "name": "logits",
        "dtype": "float32",
        "shape": ["batch", 10],
        "doc": "no softmax",
    }


def test_a_torch_export_program_carries_the_same_metadata(digits_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "digits.pt2"
    assert main(["export", str(digits_run), "--format", "torch-export", "--out", str(out)]) == 0
    metadata = read_metadata(out)
    assert metadata["format"] == "torch-export" and metadata["graphs"]["model"]["file"] == out.name


def test_int8_export_reports_its_difference_from_fp32(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "digits-int8.onnx"
    args = ["export", str(digits_run), "--format", "onnx", "--quantize", "int8", "--out", str(out)]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["quantization"] == "int8-dynamic"
    assert 0 < summary["quantized_errors"]["model"] < 0.05
    assert read_metadata(out)["quantization"] == "int8-dynamic"


def _one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["export", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("rnnkit export: error: ")
    return err


def test_bad_input_is_one_line_and_exit_code_2(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, out = str(digits_run), str(tmp_path / "x.onnx")
    assert "unknown export format 'tflite'" in _one_line_error(
        capsys, run, "--format", "tflite", "--out", out
    )
    assert "unknown quantization 'int4'" in _one_line_error(
        capsys, run, "--format", "onnx", "--quantize", "int4", "--out", out
    )
    assert "applies to --format onnx" in _one_line_error(
        capsys, run, "--format", "torch-export", "--quantize", "int8", "--out", out
    )
    assert "does not exist" in _one_line_error(
        capsys, run, "--format", "onnx", "--out", str(tmp_path / "no" / "x.onnx")
    )


def test_an_incomplete_run_directory_is_one_line_and_exit_code_2(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.yaml").write_text((digits_run / "config.yaml").read_text())
    err = _one_line_error(capsys, str(partial), "--format", "onnx", "--out", str(tmp_path / "x"))
    assert "model.safetensors is missing" in err


def test_without_the_export_extra_the_error_says_what_to_install(
    digits_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript -> ImportError
    err = _one_line_error(
        capsys, str(digits_run), "--format", "onnx", "--out", str(tmp_path / "x.onnx")
    )
    assert err.endswith("rnnkit export needs the export extra: pip install 'rnnkit[export]'")


def test_a_model_kind_without_an_export_plan_is_refused(tmp_path: Path) -> None:
    from torch import nn

    from rnnkit.export import ExportError, export_model

    with pytest.raises(ExportError, match="not a registered rnnkit model"):
        export_model(nn.Linear(2, 2), "onnx", tmp_path / "x.onnx")
    with pytest.raises(ExportError, match="cannot export a 'mystery' model"):
        export_model(nn.Linear(2, 2), "onnx", tmp_path / "x.onnx", kind="mystery")


def test_a_run_whose_model_kind_has_no_export_plan_is_one_line_and_exit_code_2(
    digits_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rnnkit.export.graphs import PLANS

    # As a model registered by a user, whose kind the exporter has no plan for.
    known = {k: v for k, v in PLANS._items.items() if k != "classifier"}
    monkeypatch.setattr(PLANS, "_items", known)
    err = _one_line_error(
        capsys, str(digits_run), "--format", "onnx", "--out", str(tmp_path / "x.onnx")
    )
    assert "cannot export a 'classifier' model: the exporter knows" in err
    assert not (tmp_path / "x.onnx").exists()

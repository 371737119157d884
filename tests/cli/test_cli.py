"""The command line: entry points and the registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.cli import COMMANDS, Command, build_parser, main, register
from rnnkit.config import ConfigError


def test_python_dash_m_runs_info() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rnnkit", "info"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("rnnkit ") and "torch" in done.stdout


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "info" in capsys.readouterr().out


def test_unknown_command_is_an_error() -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["trian"])
    assert exc.value.code == 2


def test_registry_refuses_duplicates() -> None:
    build_parser()
    with pytest.raises(ValueError, match="already registered"):
        register(Command("info", "again", lambda p: None, lambda a: 0))
    assert "info" in COMMANDS


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.gradient_clip_val=0.5", "write train.trainer.gradient_clip_val"),
        ("train.trainer.stratgy=ddp", "did you mean 'strategy'?"),
        ("train.trainer.logger=false", "rnnkit sets this Trainer argument itself"),
    ],
)
def test_a_config_error_is_one_line_and_exit_status_2(
    override: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "hello", "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit train: error: train.") and expected in err
    assert err.count("\n") == 1


def test_every_process_of_a_run_finds_the_same_run_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rnnkit.api import build_config, default_run_dir

    for name in ("RNNKIT_RUN_DIR", "WORLD_SIZE", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    config = build_config("digits")
    assert default_run_dir(config).parent == Path("runs")  # time-stamped
    monkeypatch.setenv("WORLD_SIZE", "4")  # torchrun: no process can pick a time for all
    with pytest.raises(ConfigError, match=r"4 processes were launched .*\(rnnkit train --out"):
        default_run_dir(config)
    monkeypatch.setenv("RNNKIT_RUN_DIR", str(tmp_path / "shared"))  # set by rnnkit for DDP
    assert default_run_dir(config) == tmp_path / "shared"

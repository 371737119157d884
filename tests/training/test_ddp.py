"""Distributed training: 2 CPU processes (gloo) with batch b train as 1 process with 2b.

``rnnkit train`` runs in a child with ``strategy=ddp``: Lightning starts the second
process by running the command again, and both must find one run directory (no
``--out``: the time-stamped default). Each step's two shards together are the
one-process batch and the losses are means over equal shards, so DDP's averaged
gradient is the big batch's: the weights agree up to the order of floating-point
sums. Measured: 3e-8 largest difference after 6 steps; the test allows 1e-6 (and
1e-5 relative for the logged values, which are reduced across the processes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnnkit.config import apply_overrides, run_config_from_dict
from rnnkit.recipes import load_recipe
from rnnkit.training.checkpoint import load_checkpoint
from rnnkit.training.run import CHECKPOINT_FILE, train

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed is not built in"
)

BATCH = 16
COMMON = [
    "data.limit=120",  # 96 training digits: 3 steps of 32 per epoch, 2 × 16 under DDP
    "model.rnn.hidden_size=8",
    "train.max_epochs=2",
    "train.progress_bar=false",
    "train.trainer.num_sanity_val_steps=0",
    "train.trainer.deterministic=true",
    "train.trainer.accelerator=cpu",
]
CHILD = Path(__file__).with_name("crash_child.py")


def _ddp(strategy: str) -> list[str]:
    return [
        *COMMON,
        f"data.batch_size={BATCH}",
        f"train.trainer.strategy={strategy}",
        "train.trainer.devices=2",
    ]


def rnnkit_train(cwd: Path, overrides: list[str], *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rnnkit", "train", "digits", *extra]
    command += [a for o in overrides for a in ("--set", o)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One process with the doubled batch."""
    run = tmp_path_factory.mktemp("single") / "run"
    overrides = [*COMMON, f"data.batch_size={2 * BATCH}", "train.trainer.devices=1"]
    train(run_config_from_dict(apply_overrides(load_recipe("digits"), overrides)), run_dir=run)
    return run


def assert_trains_as_one_process(run: Path, single: Path) -> None:
    last, reference = (
        load_checkpoint(run / CHECKPOINT_FILE),
        load_checkpoint(single / CHECKPOINT_FILE),
    )
    for name, tensor in reference["state_dict"].items():
        torch.testing.assert_close(last["state_dict"][name], tensor, atol=1e-6, rtol=0)
    assert last["global_step"] == reference["global_step"] == 6
    history, metrics = (
        [json.loads((r / name).read_text()) for r in (run, single)]
        for name in ("history.json", "metrics.json")
    )
    for got, want in [*zip(*history, strict=True), metrics]:  # reduced over both processes
        numbers = {k for k, v in want.items() if isinstance(v, float)}
        assert {k: v for k, v in got.items() if k not in numbers} == {
            k: v for k, v in want.items() if k not in numbers
        }
        assert {k: got[k] for k in numbers} == pytest.approx(
            {k: want[k] for k in numbers}, rel=1e-5
        )


def assert_one_set_of_files(run: Path, single: Path) -> None:
    def files(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    assert files(run) == files(single)  # one log, one history, one report of each kind
    rows = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in rows] == [1, 2]


def test_two_processes_train_as_one_with_the_doubled_batch(single: Path, tmp_path: Path) -> None:
    done = rnnkit_train(tmp_path, _ddp("ddp"), "--quiet")
    (run,) = (tmp_path / "runs").iterdir()  # both processes found the same directory
    assert done.stdout.count("run directory:") == 1  # rank zero's summary only
    assert_one_set_of_files(run, single)
    assert_trains_as_one_process(run, single)


@pytest.mark.slow
def test_ddp_spawn_trains_as_one_process_too(single: Path, tmp_path: Path) -> None:
    rnnkit_train(tmp_path, _ddp("ddp_spawn"), "--out", str(tmp_path / "run"))
    assert_one_set_of_files(tmp_path / "run", single)
    assert_trains_as_one_process(tmp_path / "run", single)


@pytest.mark.slow
def test_a_killed_ddp_run_resumes_under_ddp(single: Path, tmp_path: Path) -> None:
    """Both processes are killed mid-epoch 2; ``--resume`` (again 2 processes) ends as
    the one-process run."""
    run, marker = tmp_path / "run", tmp_path / "stopped"
    command = [sys.executable, str(CHILD), "batch:1:1", str(marker), "train", "digits"]
    command += ["--out", str(run), "--quiet", *(a for o in _ddp("ddp") for a in ("--set", o))]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    child = subprocess.Popen(command, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)  # the launcher and the process it started
    child.wait()
    assert marker.exists(), "the child ended before the kill point"
    rnnkit_train(tmp_path, [], "--resume", str(run), "--quiet")
    assert_trains_as_one_process(run, single)

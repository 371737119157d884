"""Kill a training process (SIGKILL) at chosen points, resume it, get the uninterrupted run.

The child (``crash_child.py``) runs ``rnnkit train`` and stops at a named point; the
test kills it there, checks that every run file on disk is complete (a half-written
one exists only under its hidden temporary name), resumes the run in this process
and compares it with an uninterrupted one: weights, optimiser state, history and
test metrics equal bit for bit (deterministic, one CPU thread on both sides).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from rnnkit.config import apply_overrides, run_config_from_dict
from rnnkit.recipes import load_recipe
from rnnkit.training.checkpoint import TEMPORARY_GLOB, load_checkpoint, load_json
from rnnkit.training.run import CONFIG_FILE, read_run_config, train
from tests.training.test_resume import EXACT, assert_same_run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

CHILD = Path(__file__).with_name("crash_child.py")
OVERRIDES = [*EXACT, "train.max_epochs=3", "optimizer.scheduler=cosine"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("crash") / "uninterrupted"
    train(run_config_from_dict(apply_overrides(load_recipe("digits"), OVERRIDES)), run_dir=run)
    return run


def kill_at(point: str, run: Path) -> None:
    """Start ``rnnkit train`` into ``run`` in a child and SIGKILL it at ``point``."""
    marker, log = run.with_name("stopped"), run.with_name("child.log")
    command = [sys.executable, str(CHILD), point, str(marker), "train", "digits"]
    command += ["--out", str(run), "--quiet", *(a for o in OVERRIDES for a in ("--set", o))]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # as this process
    with log.open("w") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 180
        while not marker.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                child.kill()
                pytest.fail(f"the child ended before {point}:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()


def assert_every_file_is_whole(run: Path, *, half_written: bool) -> None:
    """Each run file reads completely; the interrupted write is a hidden temporary,
    which no reader opens (and the resumed run removes)."""
    temporaries = list(run.rglob(TEMPORARY_GLOB))
    assert len(temporaries) == (1 if half_written else 0), temporaries
    assert all(path.name.startswith(".") for path in temporaries)
    for path in run.rglob("*"):
        if path.is_file() and path not in temporaries:
            _read(path)


def _read(path: Path) -> None:
    if path.suffix == ".json":
        load_json(path)
    elif path.suffix == ".yaml":
        read_run_config(path.parent)
    elif path.parent.name == "checkpoints":
        load_checkpoint(path)
    elif path.suffix == ".safetensors":
        load_file(path)


def resume(run: Path) -> None:
    """What a user does next: ``--resume`` a run that has its config, else start again."""
    if (run / CONFIG_FILE).is_file():
        train(run_config_from_dict(read_run_config(run)), run_dir=run, resume=True)
    else:
        config = run_config_from_dict(apply_overrides(load_recipe("digits"), OVERRIDES))
        train(config, run_dir=run)  # the same --out: only a hidden leftover is in it


def crash_and_resume(point: str, uninterrupted: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    kill_at(point, run)
    assert_every_file_is_whole(run, half_written=point.startswith("write:"))
    resume(run)
    assert not list(run.rglob(TEMPORARY_GLOB))
    assert_same_run(uninterrupted, run)


def test_a_kill_during_a_checkpoint_write_resumes_to_the_same_weights(
    uninterrupted: Path, tmp_path: Path
) -> None:
    """Killed while epoch 2's checkpoint is half written: epoch 1's is the one on disk."""
    crash_and_resume("write:last.safetensors:2", uninterrupted, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "point",
    [
        "batch:1:2",  # mid-epoch: epoch 2 is trained again from epoch 1's checkpoint
        "write:config.yaml:1",  # before anything: the same --out starts over
        "write:model.safetensors:1",  # before the first checkpoint: --resume starts over
        "write:last.safetensors:1",
        "write:history.json:2",  # the history runs ahead of the checkpoint
        "write:metrics.json:1",  # trained, not tested: --resume tests it
    ],
)
def test_a_kill_anywhere_resumes_to_the_same_weights(
    point: str, uninterrupted: Path, tmp_path: Path
) -> None:
    crash_and_resume(point, uninterrupted, tmp_path)

"""safetensors + JSON run files: weights (tied too), whole training states, atomic writes,
and one-line errors for damaged files."""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel
from torch import nn

from rnnkit.training import checkpoint as checkpoint_module
from rnnkit.training.callbacks import (
    EarlyStopping,
    EpochHistory,
    LastCheckpoint,
    RandomState,
    SafetensorsIO,
    random_states,
    set_random_states,
)
from rnnkit.training.checkpoint import (
    TEMPORARY_GLOB,
    DamagedFileError,
    atomic_path,
    load_checkpoint,
    load_json,
    load_weights,
    save_checkpoint,
    save_json,
    save_weights,
)
from tests.helpers import assert_same_tree


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.rnn = nn.GRU(4, 4, batch_first=True)
        self.out = nn.Linear(4, 7)
        self.out.weight = self.embed.weight  # weight tying


def test_weights_round_trip_keeps_tying(tmp_path: Path) -> None:
    model = Tied()
    save_weights(model, tmp_path / "m.safetensors")
    fresh = Tied()
    load_weights(fresh, tmp_path / "m.safetensors")
    for (name, a), (_, b) in zip(
        model.state_dict().items(), fresh.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert fresh.out.weight is fresh.embed.weight


def test_mismatched_weights_are_refused(tmp_path: Path) -> None:
    save_weights(nn.Linear(3, 2), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="do not fit Sequential: missing"):
        load_weights(nn.Sequential(nn.Linear(3, 2)), tmp_path / "m.safetensors")


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimizer_round_trip_continues_identically(tmp_path: Path, name: str) -> None:
    def make() -> tuple[nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        opt = (
            torch.optim.Adam(model.parameters(), lr=0.1)
            if name == "adam"
            else torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        )
        return model, opt

    x = torch.randn(5, 3)

    def train(model: nn.Module, opt: torch.optim.Optimizer, steps: int) -> None:
        for _ in range(steps):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()

    model, opt = make()
    train(model, opt, 3)
    save_checkpoint({"optimizer": opt.state_dict()}, tmp_path / "state.safetensors")
    save_weights(model, tmp_path / "m.safetensors")
    train(model, opt, 2)

    resumed, opt2 = make()
    load_weights(resumed, tmp_path / "m.safetensors")
    opt2.load_state_dict(load_checkpoint(tmp_path / "state.safetensors")["optimizer"])
    train(resumed, opt2, 2)
    assert torch.equal(resumed.weight, model.weight)
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.pkl"))


def test_what_json_cannot_say_comes_back_as_it_was(tmp_path: Path) -> None:
    shared = torch.arange(6.0)
    ordered = OrderedDict(w=torch.ones(2, 2))
    ordered._metadata = {"": {"version": 1}}  # type: ignore[attr-defined]
    state = {
        "tuple": (1, "two", (3.0,)),
        "int keys": {0: {"step": torch.tensor(3.0)}, 7: None},
        "tag-like key": {"$tensor": "not a tensor"},
        "floats": [math.inf, -math.inf, math.nan, -0.0, 0.1],
        "numpy": (np.arange(3, dtype=np.uint32), np.float64(0.5), np.int64(-2), np.bool_(True)),
        "bytes": b"\x00\xff",
        "ordered": ordered,
        "tied": [shared, shared],
        "views": [shared[:3], shared[3:]],
        "dtypes": [torch.zeros(2, dtype=d) for d in (torch.bfloat16, torch.uint8, torch.bool)],
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 3),
    }
    path = tmp_path / "state.safetensors"
    save_checkpoint(state, path)
    loaded = load_checkpoint(path)
    assert_same_tree(loaded, state)
    assert loaded["ordered"]._metadata == {"": {"version": 1}}
    assert loaded["tied"][0] is loaded["tied"][1]  # stored once


def test_an_object_that_is_not_data_is_refused_by_its_key(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"cannot store Linear at checkpoint key 'callbacks/x/m'"):
        save_checkpoint({"callbacks": {"x": {"m": nn.Linear(1, 1)}}}, tmp_path / "s.safetensors")
    assert not list(tmp_path.iterdir())  # nothing written, nothing pickled


def test_random_states_round_trip() -> None:
    states = random_states()
    draws = (random.random(), np.random.rand(), torch.rand(1))
    set_random_states(states)
    assert (random.random(), np.random.rand()) == draws[:2] and torch.equal(torch.rand(1), draws[2])


def test_a_lightning_checkpoint_round_trips_exactly(tmp_path: Path) -> None:
    """What Lightning puts in a checkpoint (loops, callbacks, optimiser and scheduler
    states, random states) comes back value for value and type for type."""

    class Scheduled(BoringModel):
        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            optimizer = torch.optim.Adam(self.parameters(), lr=0.1)
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 0.5**e)
            return {"optimizer": optimizer, "lr_scheduler": schedule}

        def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            self.log("val_loss", self.step(batch))

    trainer = L.Trainer(
        max_epochs=2,
        limit_train_batches=3,
        limit_val_batches=2,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[
            EpochHistory(tmp_path / "history.json"),
            RandomState(),
            EarlyStopping("val_loss", patience=3),
            LastCheckpoint(tmp_path / "checkpoints"),
        ],
        plugins=[SafetensorsIO()],
        default_root_dir=str(tmp_path),
    )
    trainer.fit(Scheduled())
    state = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
    save_checkpoint(state, tmp_path / "again.safetensors")
    assert_same_tree(load_checkpoint(tmp_path / "again.safetensors"), state)
    written = load_checkpoint(tmp_path / "checkpoints" / "last.safetensors")
    assert written["global_step"] == 6 and written["lr_schedulers"][0]["last_epoch"] == 2
    assert not list(tmp_path.rglob("*.ckpt"))


def _state(step: int) -> dict[str, object]:
    return {"step": step, "weights": torch.full((1000,), float(step))}


def test_a_write_that_dies_midway_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.safetensors"
    save_checkpoint(_state(1), path)

    def dies_midway(tensors: dict[str, torch.Tensor], filename: str, metadata: object) -> None:
        Path(filename).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{")  # half a header
        raise KeyboardInterrupt  # the process is stopped mid-write

    monkeypatch.setattr(checkpoint_module, "save_file", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_state(2), path)
    assert load_checkpoint(path)["step"] == 1  # the previous snapshot, complete
    assert not list(tmp_path.glob(TEMPORARY_GLOB))


def test_atomic_path_keeps_the_suffix_and_hides_the_temporary(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "curves.png") as tmp:
        assert tmp.name.startswith(".curves.tmp-") and tmp.suffix == ".png"
        assert tmp.match(TEMPORARY_GLOB)
        tmp.write_bytes(b"png")
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


_FILES = {
    "model.safetensors": (
        lambda p: save_weights(nn.Linear(8, 8), p),
        lambda p: load_weights(nn.Linear(8, 8), p),
    ),
    "last.safetensors": (lambda p: save_checkpoint(_state(1), p), load_checkpoint),
    "history.json": (lambda p: save_json([{"epoch": 1}], p), load_json),
}


@pytest.mark.parametrize("name", sorted(_FILES))
def test_a_truncated_file_is_named_in_one_line(tmp_path: Path, name: str) -> None:
    write, read = _FILES[name]
    path = tmp_path / name
    write(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DamagedFileError) as err:
        read(path)
    message = str(err.value)
    assert message.startswith(f"{path} is damaged (") and "\n" not in message
    assert err.value.path == path


def test_a_safetensors_file_that_is_not_a_checkpoint_says_so(tmp_path: Path) -> None:
    save_weights(nn.Linear(2, 2), tmp_path / "model.safetensors")
    with pytest.raises(DamagedFileError, match="without a training state"):
        load_checkpoint(tmp_path / "model.safetensors")

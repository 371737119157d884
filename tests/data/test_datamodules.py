"""The DataModule contract, the registry, and a real Lightning run over the batches."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch import nn

from rnnkit.data import (
    DATAMODULES,
    Batch,
    DigitsDataModule,
    IMDBDataModule,
    get_datamodule,
    pack_batch,
)

from .test_imdb import make_archive


def test_registry() -> None:
    assert {"digits", "mnist", "fashion-mnist", "imdb", "reuters", "stocks", "shakespeare"} <= set(
        DATAMODULES
    )
    dm = get_datamodule("digits", batch_size=8)
    assert isinstance(dm, DigitsDataModule) and dm.batch_size == 8
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'.* valid: .*\bdigits\b"):
        get_datamodule("cifar")


@pytest.mark.parametrize("name", DATAMODULES.names())
def test_common_constructor_options(name: str, tmp_path: Path) -> None:
    dm = DATAMODULES.get(name)(data_dir=tmp_path, batch_size=3, seed=5, num_workers=0, limit=7)
    assert (dm.batch_size, dm.seed, dm.limit, dm.data_dir) == (3, 5, 7, tmp_path)
    assert 0 <= dm.val_fraction < 1
    with pytest.raises(RuntimeError, match="setup"):
        dm.train_dataloader()


def test_option_validation() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        DigitsDataModule(batch_size=0)
    with pytest.raises(ValueError, match="val_fraction"):
        IMDBDataModule(val_fraction=1.0)
    with pytest.raises(ValueError, match="limit"):
        IMDBDataModule(limit=0)


def test_data_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RNNKIT_DATA_DIR", str(tmp_path))
    assert IMDBDataModule().data_dir == tmp_path


class _Classifier(L.LightningModule):
    """Just enough model to push the batches through Lightning."""

    def __init__(self, input_size: int, num_classes: int, vocab_size: int | None = None) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 8, padding_idx=0) if vocab_size else None
        self.rnn = nn.GRU(8 if vocab_size else input_size, 16, batch_first=True)
        self.head = nn.Linear(16, num_classes)

    def _step(self, batch: Batch) -> torch.Tensor:
        assert isinstance(batch, Batch)
        x = self.embed(batch.inputs) if self.embed is not None else batch.inputs  # (B, T, F)
        _, h = self.rnn(pack_batch(x, batch.lengths))  # h: (1, B, 16), the last valid step
        return nn.functional.cross_entropy(self.head(h[0]), batch.targets)

    def training_step(self, batch: Batch, _: int) -> torch.Tensor:
        return self._step(batch)

    def validation_step(self, batch: Batch, _: int) -> None:
        self.log("val_loss", self._step(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _trainer() -> L.Trainer:
    return L.Trainer(
        max_steps=3,
        limit_val_batches=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_lightning_fit_on_digits() -> None:
    dm = DigitsDataModule(batch_size=16, limit=200)
    trainer, model = _trainer(), _Classifier(28, 10)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3
    (metrics,) = trainer.validate(model, datamodule=dm, verbose=False)
    assert metrics["val_loss"] > 0


def test_lightning_fit_on_text_and_checkpointed_vocab(tmp_path: Path) -> None:
    make_archive(tmp_path)
    dm = IMDBDataModule(data_dir=tmp_path, batch_size=4, val_fraction=0.2, accept_modified=True)
    dm.setup()
    trainer = _trainer()
    with pytest.warns(UserWarning):  # the home-made archive's digest
        trainer.fit(_Classifier(0, 2, vocab_size=len(dm.vocab)), datamodule=dm)
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)  # plain data only, no pickled objects
    state = checkpoint["IMDBDataModule"]
    json.dumps(state)
    assert state["vocab"]["tokens"] == list(dm.vocab.tokens)


def _ids(loader: object) -> list[list[int]]:
    return [list(batch) for batch in loader.batch_sampler]  # type: ignore[attr-defined]


@pytest.mark.parametrize("bucket", [False, True])
def test_the_loaders_shard_every_split_across_processes(tmp_path: Path, bucket: bool) -> None:
    """Two processes with batch b: each training step together is the one-process
    batch of 2b; validation and test are split disjointly and completely."""
    if bucket:
        make_archive(tmp_path)
        dm = IMDBDataModule(data_dir=tmp_path, batch_size=2, val_fraction=0.2, accept_modified=True)
        with pytest.warns(UserWarning):  # the home-made archive's digest
            dm.prepare_data()
    else:
        dm = DigitsDataModule(batch_size=4, limit=60)
    dm.setup()
    dm.batch_size *= 2
    big = _ids(dm.train_dataloader())
    dm.batch_size //= 2
    shards = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)  # type: ignore[assignment]
        shards.append((_ids(dm.train_dataloader()), _ids(dm.val_dataloader())))
    dm.trainer = None
    assert len(shards[0][0]) == len(shards[1][0]) == len(big)
    for step, whole in enumerate(big):
        assert set(shards[0][0][step]) | set(shards[1][0][step]) == set(whole)
    val = [i for shard in shards for batch in shard[1] for i in batch]
    assert sorted(val) == list(range(dm.val_size))


def test_starting_an_epoch_leaves_the_global_random_state_alone() -> None:
    dm = DigitsDataModule(batch_size=8, limit=40)
    dm.setup()
    before = torch.get_rng_state()
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        next(iter(loader))
    assert torch.equal(torch.get_rng_state(), before)  # dropout masks stay reproducible
    loader = dm.train_dataloader()
    first = [b.targets.tolist() for b in loader]
    loader.batch_sampler.sampler.set_epoch(1)  # type: ignore[union-attr]
    assert [b.targets.tolist() for b in loader] != first

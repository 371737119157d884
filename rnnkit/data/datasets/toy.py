"""The course's first example: learn "hello" one character at a time.

One-hot characters ``h, e, l, o``; the input ``"hell"`` and the target ``"ello"``
(the next character at every step), so after ``"hell"`` the model should say ``"o"``.
It is a memorisation toy: there is one sequence, so the same sequence is the
training, validation and test data, and the metrics say only whether it was learnt.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from rnnkit.data.batching import PadCollate
from rnnkit.data.datasets.base import BaseDataModule
from rnnkit.data.vocab import Vocab


class _Repeated(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, copies: int) -> None:
        self.inputs, self.targets, self.copies = inputs, targets, copies

    def __len__(self) -> int:
        return self.copies

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs, self.targets


class HelloDataModule(BaseDataModule):
    """A word as a next-character task: ``word[:-1]`` → ``word[1:]``.

    After ``setup``: ``vocab`` (the word's characters, no specials), ``num_classes``.

    Batches: ``Batch(inputs LongTensor (B, T), lengths (B,) all T, targets (B, T))``.

    Arguments:
        word: the sequence to learn (default ``"hello"``).
        copies: copies of the sequence per training epoch (so an epoch is several
            optimisation steps).
        **kwargs: see :class:`~rnnkit.data.datasets.base.BaseDataModule`.
    """

    def __init__(self, *, word: str = "hello", copies: int = 32, **kwargs: Any) -> None:
        kwargs.setdefault("batch_size", 8)
        super().__init__(**kwargs)
        if len(word) < 2:
            raise ValueError(f"word needs at least 2 characters, got {word!r}")
        self.word, self.copies = word, copies
        self.vocab = Vocab(list(dict.fromkeys(word)), pad=None, unk=None)
        # There is one sequence: say so wherever test metrics are reported.
        self.evaluation_split = "the training sequence (a toy: nothing is held out)"
        self.collate = PadCollate()

    @property
    def num_classes(self) -> int:
        return len(self.vocab)

    def prepare_data(self) -> None:
        """Nothing to fetch."""

    def _build(self) -> None:
        ids = torch.tensor(self.vocab.encode(list(self.word)))
        inputs, targets = ids[:-1], ids[1:]  # "hell" -> "ello"
        self.train_set = _Repeated(inputs, targets, self.copies)
        self.val_set = _Repeated(inputs, targets, 1)
        self.test_set = _Repeated(inputs, targets, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "vocab" in state_dict:
            self.vocab = Vocab.from_dict(state_dict["vocab"])

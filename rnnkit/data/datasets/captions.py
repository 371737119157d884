"""Digit captioning: a real MNIST digit image → its English name, letter by letter.

The one-to-many pattern of image captioning, small enough to train on a CPU in a
minute: the bundled digits (see :mod:`~rnnkit.data.datasets.digits`) with targets
``"zero"`` … ``"nine"`` spelt as characters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rnnkit.data.batching import PadCollate
from rnnkit.data.datasets.base import ImageSequenceDataset
from rnnkit.data.datasets.digits import DigitsDataModule
from rnnkit.data.vocab import Vocab

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class CaptionDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images with a token-sequence caption each.

    Item ``i``: ``(FloatTensor (28, 28) in [0, 1], LongTensor (T_i,) BOS … EOS)``.
    """

    def __init__(self, images: ImageSequenceDataset, captions: list[list[int]]) -> None:
        self.images, self.captions = images, captions

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.images[index]
        return image, torch.tensor(self.captions[label])


class DigitCaptionsDataModule(DigitsDataModule):
    """The bundled digits captioned with their names (same splits as ``digits``).

    After ``setup``: ``target_vocab`` (the letters of the ten names, plus ``<pad>``,
    ``<unk>``, ``<bos>``, ``<eos>``), ``class_names``, ``split_sizes``.

    Batches: ``Batch(inputs FloatTensor (B, 28, 28), lengths (B,) all 28,
    targets LongTensor (B, T) BOS … EOS padded with the pad id)``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_vocab = Vocab.build(
            [list(name) for name in DIGIT_NAMES], bos="<bos>", eos="<eos>"
        )

    def _build(self) -> None:
        super()._build()
        captions = [
            self.target_vocab.encode(list(n), add_bos=True, add_eos=True) for n in DIGIT_NAMES
        ]
        for split in ("train_set", "val_set", "test_set"):
            setattr(self, split, CaptionDataset(getattr(self, split), captions))
        self.collate = PadCollate(0, target_pad_value=self.target_vocab.pad_id or 0)

    def test_images(self) -> np.ndarray:
        """The test images ``(N, 28, 28)`` uint8, in test-set order (for plots)."""
        assert isinstance(self.test_set, CaptionDataset)
        return self.test_set.images.images

    def state_dict(self) -> dict[str, Any]:
        return {"target_vocab": self.target_vocab.to_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "target_vocab" in state_dict:
            self.target_vocab = Vocab.from_dict(state_dict["target_vocab"])

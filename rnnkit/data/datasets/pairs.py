"""Source → target sequence pairs for encoder–decoder models.

Two sources: generated date normalisation (written dates such as
``"Wednesday, March 3, 1999"`` → ISO ``"1999-03-03"``), a small real translation task
with a checkable answer, and any user TSV file of ``source<TAB>target`` lines.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rnnkit.data.batching import PadCollate
from rnnkit.data.datasets.base import BaseDataModule
from rnnkit.data.errors import DataFormatError, DataNotFoundError
from rnnkit.data.files import DecodeReport, read_text
from rnnkit.data.paths import require_file
from rnnkit.data.splits import random_split
from rnnkit.data.tokenizers import Tokenizer, get_tokenizer
from rnnkit.data.vocab import Vocab

_ORDINALS = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}


def _ordinal(day: int) -> str:
    return f"{day}{_ORDINALS.get(day, 'th')}"


# Unambiguous written forms only: a numeric "03/04/1999" could be March or April.
_FORMATS = (
    lambda d: f"{d.day} {d:%B %Y}",
    lambda d: f"{d:%B} {d.day}, {d:%Y}",
    lambda d: f"{d:%A, %B} {d.day}, {d:%Y}",
    lambda d: f"{d.day} {d:%b %Y}",
    lambda d: f"{d:%b} {d.day} {d:%Y}",
    lambda d: f"the {_ordinal(d.day)} of {d:%B %Y}",
    lambda d: f"{d:%A} {_ordinal(d.day)} {d:%B %Y}",
    lambda d: f"{d:%d.%b.%Y}",
)


def date_pairs(
    count: int, *, seed: int = 0, start_year: int = 1950, end_year: int = 2049
) -> list[tuple[str, str]]:
    """Random written dates and their ISO 8601 form, all sources distinct.

    Arguments:
        count: pairs to make.
        seed: the random seed.
        start_year, end_year: the range of years (inclusive).

    Returns:
        ``[(source, target), ...]``, e.g. ``("the 3rd of March 1999", "1999-03-03")``;
        a third of the sources are lower-cased, as people type.
    """
    first = dt.date(start_year, 1, 1).toordinal()
    last = dt.date(end_year, 12, 31).toordinal()
    if count > (last - first + 1) * len(_FORMATS):
        raise ValueError(f"cannot make {count} distinct dates between {start_year} and {end_year}")
    rng = random.Random(seed)
    seen: set[str] = set()
    pairs = []
    while len(pairs) < count:
        day = dt.date.fromordinal(rng.randint(first, last))
        source = rng.choice(_FORMATS)(day)
        if rng.random() < 1 / 3:
            source = source.lower()
        if source not in seen:  # a source seen twice could sit in train and test at once
            seen.add(source)
            pairs.append((source, day.isoformat()))
    return pairs


def read_pairs(path: str | Path, *, report: DecodeReport | None = None) -> list[tuple[str, str]]:
    """Read ``source<TAB>target`` lines (blank lines skipped).

    Raises:
        DataNotFoundError: no file at ``path``.
        DataFormatError: a line without exactly one tab, an empty side, or no pairs.
    """
    path = require_file(path, "a TSV file of source<TAB>target pairs")
    pairs = []
    for number, line in enumerate(read_text(path, report=report).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise DataFormatError(
                f"{path}:{number}: expected 'source<TAB>target' (one tab, both sides non-empty), "
                f"got {line[:80]!r}"
            )
        pairs.append((parts[0].strip(), parts[1].strip()))
    if not pairs:
        raise DataFormatError(f"{path}: no source<TAB>target pairs found")
    return pairs


class PairDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Numericalised pairs. Item ``i``: ``(source ids (S_i,), target ids (T_i,))`` where the
    target is ``BOS … EOS``."""

    def __init__(self, sources: list[list[int]], targets: list[list[int]]) -> None:
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
        self.sources, self.targets = sources, targets

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(self.sources[index]), torch.tensor(self.targets[index])


class PairsDataModule(BaseDataModule):
    """Sequence-to-sequence pairs: generated dates (default) or a TSV file.

    ``setup`` splits the pairs at random (seeded) into test (``test_fraction``),
    validation (``val_fraction`` of the rest) and training, and builds both
    vocabularies on the training pairs only. After ``setup``: ``source_vocab``
    (``<pad>``, ``<unk>``), ``target_vocab`` (``<pad>``, ``<unk>``, ``<bos>``,
    ``<eos>``), ``split_sizes``.

    Batches: ``Batch(inputs LongTensor (B, S) source ids, lengths (B,) source lengths,
    targets LongTensor (B, T) BOS … EOS padded with the target pad id)``.

    Arguments:
        source: ``"dates"`` (generated) or the path of a TSV file.
        num_pairs: how many dates to generate.
        tokenizer: how to split both sides (``"characters"`` by default).
        test_fraction: share of the pairs held out for testing.
        **kwargs: see :class:`~rnnkit.data.datasets.base.BaseDataModule`; ``limit``
            caps the number of pairs.
    """

    def __init__(
        self,
        *,
        source: str = "dates",
        num_pairs: int = 20_000,
        tokenizer: str | Tokenizer = "characters",
        test_fraction: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        self.source, self.num_pairs = source, num_pairs
        self.tokenizer = get_tokenizer(tokenizer)
        self.test_fraction = test_fraction
        self.source_vocab: Vocab | None = None
        self.target_vocab: Vocab | None = None
        self.decode_report = DecodeReport()
        self.test_pairs: list[tuple[str, str]] = []

    def prepare_data(self) -> None:
        if self.source != "dates" and not Path(self.source).is_file():
            raise DataNotFoundError(
                f"expected source='dates' or a TSV file of source<TAB>target pairs, "
                f"found no file at {self.source}"
            )

    def _pairs(self) -> list[tuple[str, str]]:
        if self.source == "dates":
            return date_pairs(self.num_pairs, seed=self.seed)
        self.decode_report = DecodeReport()
        return read_pairs(self.source, report=self.decode_report)

    def _build(self) -> None:
        pairs = self._pairs()
        if self.limit is not None:
            pairs = pairs[: self.limit]
        pool, test = random_split(len(pairs), self.test_fraction, seed=self.seed)
        keep, held = random_split(len(pool), self.val_fraction, seed=self.seed + 1)
        parts = {"train": pool[keep], "val": pool[held], "test": test}
        split = {name: [pairs[i] for i in idx] for name, idx in parts.items()}
        if self.source_vocab is None or self.target_vocab is None:
            self.source_vocab = Vocab.build(self.tokenizer(s) for s, _ in split["train"])
            self.target_vocab = Vocab.build(
                (self.tokenizer(t) for _, t in split["train"]), bos="<bos>", eos="<eos>"
            )
        self.test_pairs = split["test"]
        sets = {name: self._numericalise(items) for name, items in split.items()}
        self.train_set, self.val_set, self.test_set = sets["train"], sets["val"], sets["test"]
        self.collate = PadCollate(
            self.source_vocab.pad_id or 0, target_pad_value=self.target_vocab.pad_id or 0
        )

    def _numericalise(self, pairs: Sequence[tuple[str, str]]) -> PairDataset:
        assert self.source_vocab is not None and self.target_vocab is not None
        sources = [self.source_vocab.encode(self.tokenizer(s)) for s, _ in pairs]
        targets = [
            self.target_vocab.encode(self.tokenizer(t), add_bos=True, add_eos=True)
            for _, t in pairs
        ]
        return PairDataset(sources, targets)

    def encode_source(self, texts: Sequence[str]) -> list[list[int]]:
        """Source ids for raw strings (prediction on new inputs)."""
        if self.source_vocab is None:
            raise RuntimeError("call setup() or load_state_dict() first")
        return [self.source_vocab.encode(self.tokenizer(t)) for t in texts]

    def state_dict(self) -> dict[str, Any]:
        """Both vocabularies as plain data."""
        if self.source_vocab is None or self.target_vocab is None:
            return {}
        return {
            "source_vocab": self.source_vocab.to_dict(),
            "target_vocab": self.target_vocab.to_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "source_vocab" not in state_dict:
            return
        source = Vocab.from_dict(state_dict["source_vocab"])
        target = Vocab.from_dict(state_dict["target_vocab"])
        rebuild = self.train_set is not None and (source, target) != (
            self.source_vocab,
            self.target_vocab,
        )
        self.source_vocab, self.target_vocab = source, target
        if rebuild:
            self._build()


def decode_target(
    vocab: Vocab, ids: Sequence[int] | np.ndarray | torch.Tensor, *, joiner: str = ""
) -> str:
    """Target ids → text, stopping at EOS and dropping BOS/padding."""
    if isinstance(ids, torch.Tensor | np.ndarray):
        ids = ids.tolist()
    tokens = []
    for i in ids:
        if i == vocab.eos_id:
            break
        if i not in (vocab.bos_id, vocab.pad_id):
            tokens.append(vocab.token(i))
    return joiner.join(tokens)

"""Generated long-range dependency tasks: the adding problem and the copy-memory task.

Both tasks put the information a model needs far from where it is needed, so they
show the long-term dependency problem directly: a vanilla RNN, whose gradients vanish
through time, stays at the memoryless baseline, while LSTM and GRU solve them.

* :class:`AddingProblem` (Hochreiter & Schmidhuber 1997; the two-halves variant of
  Le et al. 2015 and Arjovsky et al. 2016): sum the two marked values of a sequence.
* :class:`CopyMemory` (Arjovsky et al. 2016): reproduce the first ten symbols after
  a long blank delay.

Everything is deterministic from a seed. The batch functions
(:func:`adding_problem`, :func:`copy_memory`) draw from a ``torch.Generator`` and
suit an endless training stream; the datasets materialise a fixed set (a test set,
or a ``DataLoader``) from a seed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.data import Dataset

ADDING_BASELINE_MSE = 1.0 / 6.0
"""MSE of always predicting the mean target 1: the variance of a sum of two U(0, 1)."""

COPY_LENGTH = 10
"""How many symbols the copy-memory task asks the model to remember (Arjovsky et al.)."""


def adding_problem(
    num_samples: int, seq_len: int, *, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """A batch of the adding problem.

    Channel 0 holds values drawn from U(0, 1); channel 1 is a marker that is 1 at
    exactly two steps, one in each half of the sequence (``[0, T/2)`` and
    ``[T/2, T)``), so the first relevant value lies at least ``T/2`` steps before
    the end. The target is the sum of the two marked values; predicting the mean,
    1, gives MSE :data:`ADDING_BASELINE_MSE` ≈ 0.167.

    Arguments:
        num_samples: ``N``.
        seq_len: ``T``, at least 2.
        generator: the random source (seed it for determinism).

    Returns:
        ``(inputs, targets)``: inputs ``(N, T, 2)`` float32, targets ``(N, 1)`` float32.

    Example::

        >>> x, y = adding_problem(4, 100, generator=torch.Generator().manual_seed(0))
        >>> x.shape, y.shape, x[..., 1].sum(1).tolist()
        (torch.Size([4, 100, 2]), torch.Size([4, 1]), [2.0, 2.0, 2.0, 2.0])
    """
    _check_positive("adding_problem", num_samples=num_samples)
    if seq_len < 2:
        raise ValueError(f"adding_problem: expected seq_len >= 2 (two markers), got {seq_len}")
    values = torch.rand(num_samples, seq_len, generator=generator)  # (N, T)
    half = seq_len // 2
    first = torch.randint(0, half, (num_samples,), generator=generator)  # (N,)
    second = torch.randint(half, seq_len, (num_samples,), generator=generator)  # (N,)
    markers = torch.zeros(num_samples, seq_len)  # (N, T)
    rows = torch.arange(num_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = (values * markers).sum(dim=1, keepdim=True)  # (N, 1)
    return torch.stack([values, markers], dim=-1), targets


def copy_memory(
    num_samples: int,
    delay: int,
    *,
    num_symbols: int = 8,
    copy_length: int = COPY_LENGTH,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """A batch of the copy-memory task (Arjovsky et al. 2016).

    The alphabet has ``num_symbols + 2`` classes: ``0`` is the blank, ``1 ..
    num_symbols`` are data symbols and ``num_symbols + 1`` is the delimiter. With
    ``K = copy_length`` and ``D = delay`` a sequence has ``D + 2K`` steps::

        input:  s_1 … s_K | blank × (D − 1) | delimiter | blank × K
        target: blank × (D + K)                          | s_1 … s_K

    A memoryless model that outputs blanks and then guesses uniformly scores the
    cross-entropy :func:`copy_memory_baseline` ``= K·log(num_symbols) / (D + 2K)``.

    Arguments:
        num_samples: ``N``.
        delay: ``D``, the steps between the last symbol and the delimiter, at least 1.
        num_symbols: data symbols to draw from (8 in the paper).
        copy_length: ``K``, symbols to remember (10 in the paper).
        generator: the random source (seed it for determinism).

    Returns:
        ``(inputs, targets)``: one-hot inputs ``(N, D + 2K, num_symbols + 2)``
        float32, and targets ``(N, D + 2K)`` int64 class indices.

    Example::

        >>> x, y = copy_memory(2, 5, generator=torch.Generator().manual_seed(0))
        >>> x.shape, y.shape
        (torch.Size([2, 25, 10]), torch.Size([2, 25]))
    """
    _check_positive(
        "copy_memory",
        num_samples=num_samples,
        delay=delay,
        num_symbols=num_symbols,
        copy_length=copy_length,
    )
    seq_len = delay + 2 * copy_length
    symbols = torch.randint(1, num_symbols + 1, (num_samples, copy_length), generator=generator)
    tokens = torch.zeros(num_samples, seq_len, dtype=torch.long)  # (N, T), blanks
    tokens[:, :copy_length] = symbols
    tokens[:, copy_length + delay - 1] = num_symbols + 1  # the delimiter: "now recall"
    targets = torch.zeros(num_samples, seq_len, dtype=torch.long)  # (N, T)
    targets[:, -copy_length:] = symbols
    inputs = torch.nn.functional.one_hot(tokens, num_symbols + 2).float()  # (N, T, C)
    return inputs, targets


def copy_memory_baseline(
    delay: int, *, num_symbols: int = 8, copy_length: int = COPY_LENGTH
) -> float:
    """Mean per-step cross-entropy of the memoryless strategy on :func:`copy_memory`."""
    return copy_length * math.log(num_symbols) / (delay + 2 * copy_length)


class AddingProblem(Dataset[tuple[Tensor, Tensor]]):
    """The adding problem as a fixed, seeded dataset (see :func:`adding_problem`).

    Arguments:
        num_samples: ``N``.
        seq_len: ``T``.
        seed: the generator's seed; the same seed gives the same data.

    Items are ``(inputs (T, 2) float32, target (1,) float32)``.

    Example::

        >>> test = AddingProblem(1000, 100, seed=1)
        >>> x, y = test[0]
        >>> x.shape, y.shape
        (torch.Size([100, 2]), torch.Size([1]))
    """

    baseline_mse: float = ADDING_BASELINE_MSE

    def __init__(self, num_samples: int, seq_len: int, *, seed: int = 0) -> None:
        self.seq_len, self.seed = seq_len, seed
        generator = torch.Generator().manual_seed(seed)
        self.inputs, self.targets = adding_problem(num_samples, seq_len, generator=generator)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]


class CopyMemory(Dataset[tuple[Tensor, Tensor]]):
    """The copy-memory task as a fixed, seeded dataset (see :func:`copy_memory`).

    Arguments:
        num_samples: ``N``.
        delay: ``D``; sequences have ``D + 2·copy_length`` steps.
        num_symbols: data symbols (8).
        copy_length: ``K``, symbols to remember (10).
        seed: the generator's seed; the same seed gives the same data.

    Items are ``(inputs (D + 2K, num_symbols + 2) float32 one-hot,
    targets (D + 2K,) int64)``; :attr:`baseline_loss` is the memoryless cross-entropy.

    Example::

        >>> train = CopyMemory(512, 100, seed=0)
        >>> x, y = train[0]
        >>> x.shape, y.shape
        (torch.Size([120, 10]), torch.Size([120]))
    """

    def __init__(
        self,
        num_samples: int,
        delay: int,
        *,
        num_symbols: int = 8,
        copy_length: int = COPY_LENGTH,
        seed: int = 0,
    ) -> None:
        self.delay, self.num_symbols, self.copy_length, self.seed = (
            delay,
            num_symbols,
            copy_length,
            seed,
        )
        generator = torch.Generator().manual_seed(seed)
        self.inputs, self.targets = copy_memory(
            num_samples,
            delay,
            num_symbols=num_symbols,
            copy_length=copy_length,
            generator=generator,
        )

    @property
    def baseline_loss(self) -> float:
        """Cross-entropy of the memoryless strategy (blanks, then uniform guesses)."""
        return copy_memory_baseline(
            self.delay, num_symbols=self.num_symbols, copy_length=self.copy_length
        )

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]


def _check_positive(name: str, **values: int) -> None:
    for what, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected {what} to be an integer >= 1, got {value!r}")

"""``Forecaster``: a window of a (multivariate) time series → the next values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import Tensor, nn

from rnnkit.config import ConfigMixin, check_positive
from rnnkit.layers import last_step
from rnnkit.models.heads import MLP, check_head
from rnnkit.models.init import init_forget_bias_
from rnnkit.models.recurrent import RecurrentSpec, build_recurrent
from rnnkit.models.registry import register_model
from rnnkit.models.states import probe_stack


@dataclass(frozen=True)
class ForecasterConfig(ConfigMixin):
    """Config of :class:`Forecaster`.

    Attributes:
        input_size: ``F``, features per time step (e.g. Open, High, Low, Volume, Close).
        rnn: the recurrent stack.
        horizon: ``H``, steps ahead to predict (1: next step only).
        n_targets: ``N``, target series predicted at each step.
        head_hidden: hidden layer sizes of the MLP head (the course's stock model:
            ``(128,)``).
        head_dropout: dropout before each head layer.
        head_activation: activation between head layers.
        residual: forecast a *change* from the last observed target value instead of
            the level itself: ``ŷ = y_last + head(h)``. The head's last layer starts at
            zero, so an untrained model is exactly the persistence baseline. Prices
            that drift beyond the training range (SBUX doubled after 2019) then stay
            reachable; a level-forecasting tanh RNN saturates at the training range.
        target_index: positions of the target series among the input features
            (filled in from the data); required by ``residual``.
    """

    input_size: int = 1
    rnn: RecurrentSpec = field(default_factory=lambda: RecurrentSpec("gru", 64))
    horizon: int = 1
    n_targets: int = 1
    head_hidden: tuple[int, ...] = ()
    head_dropout: float = 0.0
    head_activation: str = "relu"
    residual: bool = False
    target_index: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        owner = "ForecasterConfig"
        if self.residual:
            index = self.target_index
            if index is None or len(index) != self.n_targets:
                raise ValueError(
                    f"{owner}: residual=True needs target_index with one feature position per "
                    f"target (n_targets={self.n_targets}), got {index!r}; the targets must "
                    "be among the input features"
                )
            if not all(0 <= i < self.input_size for i in index):
                raise ValueError(
                    f"{owner}: target_index {index} must lie in [0, input_size={self.input_size})"
                )
        check_positive(
            owner, input_size=self.input_size, horizon=self.horizon, n_targets=self.n_targets
        )
        check_head(owner, self.head_hidden, self.head_dropout, self.head_activation)


@register_model("forecaster", description="time-series window → next values (regression)")
class Forecaster(nn.Module):
    """Window ``(B, W, F)`` → recurrent stack → last valid step → MLP → forecasts.

    Always evaluate it beside the naive baselines of :mod:`rnnkit.models.baselines`
    (persistence, seasonal naive, moving average): a forecaster that does not beat
    "tomorrow = today" has learned nothing useful.

    Shape:
        ``window (B, W, F)``, ``lengths (B,)`` or ``None`` → ``(B, horizon)`` when
        ``n_targets == 1``, else ``(B, horizon, n_targets)``.

    Example::

        >>> model = Forecaster(ForecasterConfig(input_size=4, horizon=5, head_hidden=(128,)))
        >>> model(torch.randn(32, 30, 4)).shape
        torch.Size([32, 5])
    """

    Config = ForecasterConfig

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        self.config = config
        self.rnn = build_recurrent(config.rnn, config.input_size)
        size = probe_stack(self.rnn, config.input_size).output_size
        self.head = MLP.from_config(size, config.horizon * config.n_targets, config)
        init_forget_bias_(self)
        if config.residual:
            final = [m for m in self.head.modules() if isinstance(m, nn.Linear)][-1]
            nn.init.zeros_(final.weight)  # start as persistence: ŷ = y_last
            nn.init.zeros_(final.bias)

    def forward(self, window: Tensor, lengths: Tensor | Sequence[int] | None = None) -> Tensor:
        config = self.config
        if window.dim() != 3 or window.shape[-1] != config.input_size:
            raise ValueError(
                f"Forecaster: expected a window of shape (B, W, {config.input_size}), "
                f"got {tuple(window.shape)}"
            )
        out, _ = self.rnn(window, lengths=lengths)  # (B, W, H*D)
        last = last_step(out, lengths, batch_first=True, bidirectional=config.rnn.bidirectional)
        y = self.head(last).view(-1, config.horizon, config.n_targets)  # (B, H, N)
        if config.residual:
            index = list(config.target_index or ())
            observed = last_step(window[..., index], lengths, batch_first=True)  # (B, N)
            y = y + observed.unsqueeze(1)  # a change on top of the last value
        return y[..., 0] if config.n_targets == 1 else y  # (B, H) or (B, H, N)

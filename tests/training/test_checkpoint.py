"""safetensors + JSON checkpoints: weights (tied too) and optimiser state."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rnnkit.training.checkpoint import load_optimizer, load_weights, save_optimizer, save_weights


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
    save_optimizer(opt.state_dict(), tmp_path)
    save_weights(model, tmp_path / "m.safetensors")
    train(model, opt, 2)

    resumed, opt2 = make()
    load_weights(resumed, tmp_path / "m.safetensors")
    opt2.load_state_dict(load_optimizer(tmp_path))
    train(resumed, opt2, 2)
    assert torch.equal(resumed.weight, model.weight)
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.pkl"))

"""Every registered model, every cell: gradients reach every parameter, training works.

The pattern of timm's ``tests/test_models.py``: one test parametrised over the
whole registry, so a new model is covered the moment it is registered.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit.config import config_to_dict
from rnnkit.models import LAYERS, MODELS, build_model, register_layer
from tests.models.cases import CASES

CELL_NAMES = ["rnn", "lstm", "gru", "mingru", "minlstm"]


def test_every_registered_model_has_a_case() -> None:
    assert set(MODELS.names()) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_registry_entry(name: str) -> None:
    cls = MODELS.get(name)
    assert MODELS.description(name)
    config = cls.Config()  # every config has working defaults
    assert isinstance(build_model(name, config_to_dict(config)), cls)


def _check_gradients(model: nn.Module, loss: torch.Tensor) -> None:
    assert torch.isfinite(loss), loss
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_one_step_gives_every_parameter_a_gradient(name: str, cell: str) -> None:
    case = CASES[name](cell)
    model = case.model.train()
    _check_gradients(model, case.loss(model, case.batch))
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    for pname, param in model.named_parameters():
        assert torch.isfinite(param).all(), f"{pname} is not finite after one step"


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_decreases_when_overfitting_a_tiny_batch(name: str) -> None:
    case = CASES[name]("gru")
    model = case.model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = case.loss(model, case.batch)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.75 * losses[0], losses


class MinimalCell(nn.Module):
    """A user cell (``h_t = tanh(W [x_t; h_{t-1}])``) that rnnkit has never seen."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.output_size = input_size, hidden_size
        self.lin = nn.Linear(input_size + hidden_size, hidden_size)

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> torch.Tensor:
        return torch.zeros(batch_size, self.output_size, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.lin(torch.cat([x, h], dim=-1)))
        return h, h


@pytest.fixture
def user_cell() -> str:
    register_layer("test_minimal", MinimalCell, description="test only")
    yield "test_minimal"
    LAYERS._items.pop("test_minimal")
    LAYERS._descriptions.pop("test_minimal")


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_user_cell_works_in_every_model(name: str, user_cell: str) -> None:
    case = CASES[name](user_cell)
    _check_gradients(case.model, case.loss(case.model, case.batch))

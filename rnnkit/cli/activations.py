"""``rnnkit activations``: the course's activation functions and their derivatives.

One PNG, one panel per function, each with ``f(x)`` and ``f'(x)``: the derivative is
the factor every backward step multiplies by, which is why a sigmoid (``σ' ≤ 1/4``)
or a saturated tanh makes gradients vanish through time, and why ReLU's units can die.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rnnkit.cli._registry import Command, register

if TYPE_CHECKING:
    from torch import Tensor

LEAKY_SLOPE = 0.1
"""Negative slope drawn for Leaky ReLU; torch's default 0.01 would not show on the plot."""

NAMES = ("sigmoid", "tanh", "ReLU", "Leaky ReLU", "ELU", "GELU")


def activations() -> list[tuple[str, Callable[[Tensor], Tensor], str]]:
    """``(name, function, what to notice)`` for each of :data:`NAMES` (the course's list)."""
    import torch
    import torch.nn.functional as F

    return [
        ("sigmoid", torch.sigmoid, "0..1 gate switch; σ' ≤ 0.25, saturates"),
        ("tanh", torch.tanh, "-1..1, zero-centred; tanh' ≤ 1, saturates"),
        ("ReLU", torch.relu, "derivative 0 or 1; dead units for x < 0"),
        (
            "Leaky ReLU",
            lambda x: F.leaky_relu(x, LEAKY_SLOPE),
            f"slope {LEAKY_SLOPE} keeps x < 0 alive",
        ),
        ("ELU", F.elu, "smooth for x < 0; costs an exp"),
        ("GELU", F.gelu, "smooth ReLU, used in BERT"),
    ]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="directory for the PNG")


def _run(args: argparse.Namespace) -> int:
    path = plot_activations(args.out / "activations.png")
    print(f"{len(NAMES)} activation functions and their derivatives")
    print(f"wrote:\n  {path}")
    return 0


def plot_activations(path: Path) -> Path:
    """Draw every function of :func:`activations` and its derivative (autograd) to ``path``."""
    import torch
    from matplotlib.figure import Figure

    from rnnkit.diagnostics.plots import save

    fig = Figure(figsize=(13, 7.5))
    axes = fig.subplots(2, 3, sharex=True)
    for ax, (name, function, note) in zip(axes.flat, activations(), strict=True):
        x = torch.linspace(-5, 5, 1001, requires_grad=True)
        y = function(x)
        (dy,) = torch.autograd.grad(y.sum(), x)  # elementwise, so this is f'(x)
        xs = x.detach().numpy()
        ax.plot(xs, y.detach().numpy(), color="tab:blue", linewidth=2, label=f"{name}(x)")
        ax.plot(xs, dy.numpy(), color="tab:orange", linestyle="--", linewidth=2, label="derivative")
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.axvline(0, color="grey", linewidth=0.6)
        ax.set_title(f"{name}\n{note}", fontsize=10)
        ax.set_xlabel("x")
        ax.set_ylabel("value")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
    fig.suptitle("Activation functions (solid) and their derivatives (dashed)")
    fig.tight_layout()
    return save(fig, path)


register(
    Command(
        "activations",
        "plot sigmoid, tanh, ReLU, Leaky ReLU, ELU and GELU with their derivatives",
        _add_arguments,
        _run,
    )
)

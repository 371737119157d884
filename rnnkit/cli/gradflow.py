"""``rnnkit gradflow``: see the vanishing gradient, and LSTM and GRU fix it.

For each cell: ``‖∂L/∂h_t‖`` against ``t`` at initialisation and after training,
gate saturation, and the task's loss curve; a table (markdown and JSON) with
``‖∂L/∂h_1‖ / ‖∂L/∂h_T‖`` and the final test loss. See ``docs/diagnostics.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rnnkit.cli._registry import Command, register

if TYPE_CHECKING:
    from rnnkit.diagnostics.experiment import ExperimentResult

DEFAULT_CELLS = "rnn,lstm,gru"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cells", default=DEFAULT_CELLS, help=f"comma-separated cells (default {DEFAULT_CELLS})"
    )
    parser.add_argument(
        "--steps", type=int, default=100, help="sequence length T; the delay for copy (100)"
    )
    parser.add_argument("--task", choices=("adding", "copy"), default="adding")
    parser.add_argument("--train-steps", type=int, default=1500, help="optimiser steps (1500)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size H (64)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch (64)")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (0.01)")
    parser.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (1.0)")
    parser.add_argument(
        "--forget-bias", type=float, default=1.0, help="LSTM initial forget-gate bias (1.0)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="directory for figures and tables")


def _run(args: argparse.Namespace) -> int:
    from rnnkit.diagnostics.experiment import ExperimentConfig, run_experiment

    config = ExperimentConfig(
        cells=tuple(c.strip() for c in args.cells.split(",") if c.strip()),
        task=args.task,
        steps=args.steps,
        train_steps=args.train_steps,
        hidden=args.hidden,
        batch_size=args.batch_size,
        lr=args.lr,
        clip=args.clip,
        forget_bias=args.forget_bias,
        seed=args.seed,
    )
    result = run_experiment(config, progress=_note)
    paths = write_outputs(result, args.out)
    print(result.to_markdown(), end="")
    print("\nwrote:\n" + "\n".join(f"  {p}" for p in paths))
    return 0


def _note(line: str) -> None:
    """A progress line: on stderr, so that stdout holds only the table and the paths."""
    print(line, file=sys.stderr, flush=True)


def write_outputs(result: ExperimentResult, out: Path) -> list[Path]:
    """The table (markdown, JSON) and the three figures of an experiment result."""
    from rnnkit.diagnostics import plots

    out.mkdir(parents=True, exist_ok=True)
    table_md, table_json = out / "gradflow.md", out / "gradflow.json"
    table_md.write_text(_markdown_page(result))
    table_json.write_text(result.to_json())
    return [
        table_md,
        table_json,
        plots.plot_experiment_gradients(result, out / "gradient_norms.png"),
        plots.plot_experiment_gates(result, out / "gate_saturation.png"),
        plots.plot_experiment_losses(result, out / "loss_curves.png"),
    ]


def _markdown_page(result: ExperimentResult) -> str:
    c = result.config
    return (
        f"# Gradient flow on the {c.task} task, T = {c.steps}\n\n"
        f"hidden {c.hidden}, batch {c.batch_size}, Adam lr {c.lr}, clip {c.clip}, "
        f"{c.train_steps} steps, LSTM forget bias {c.forget_bias}, seed {c.seed}. "
        "Ratios are measured in float64 on one probe batch; the test loss on "
        f"{c.test_size} held-out sequences.\n\n" + result.to_markdown()
    )


register(
    Command(
        "gradflow",
        "show vanishing gradients: RNN vs LSTM vs GRU on a long-range task",
        _add_arguments,
        _run,
    )
)

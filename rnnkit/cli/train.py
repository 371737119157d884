"""``rnnkit train``: train a recipe (default: digits), test it, write the run directory."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path
from typing import Any

from rnnkit.cli._registry import Command, register

_NEXT = {
    "classification": "rnnkit predict {run} <input>",
    "forecast": "rnnkit predict {run} <csv file>",
    "language_model": "rnnkit generate {run} --prompt <text>",
    "seq2seq": "rnnkit predict {run} '<source text>'",
    "caption": "rnnkit predict {run} <image file>",
    "tagging": "rnnkit evaluate {run} --json",
}
BASELINES = ("persistence", "seasonal", "moving_average", "majority_class")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "recipe", nargs="?", help="a shipped recipe (see `rnnkit recipes`); default digits"
    )
    parser.add_argument(
        "--config", type=Path, help="a YAML run config (merged over the recipe if one is named)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_epochs=3 --set model.rnn.cell=lstm",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="where the datasets live (default $RNNKIT_DATA_DIR)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="the run directory (default $RNNKIT_RUN_DIR, else runs/<recipe>-<time>)",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue a run exactly from its last completed epoch",
    )
    parser.add_argument(
        "--gradflow-every", type=int, metavar="N", help="record gradient flow every N steps"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_config(args: argparse.Namespace) -> Any:
    """The run config from a recipe name, a YAML file and ``--set`` overrides."""
    from rnnkit.config import apply_overrides, load_yaml, run_config_from_dict
    from rnnkit.recipes import DEFAULT_RECIPE, load_recipe
    from rnnkit.training.run import read_run_config

    if args.resume is not None:
        data = read_run_config(args.resume)
    elif args.config is not None:
        data = load_yaml(args.config)
        if args.recipe:
            data = _merge(load_recipe(args.recipe), data)
    else:
        data = load_recipe(args.recipe or DEFAULT_RECIPE)
    overrides = list(args.overrides)
    if args.gradflow_every:
        overrides.append(f"train.gradflow_every={args.gradflow_every}")
    if args.quiet:
        overrides.append("train.progress_bar=false")
    return run_config_from_dict(apply_overrides(data, overrides))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = _merge(base[key], value) if both else value
    return merged


def _run(args: argparse.Namespace) -> int:
    from rnnkit.training.run import RUN_DIR_ENV, is_rank_zero, train

    config = build_config(args)
    run_dir = run_directory(args, config.name)
    # Lightning's DDP launcher starts every other process by running this command
    # again, with this environment: they must all find the same directory.
    previous = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        result = train(
            config, run_dir=run_dir, data_dir=args.data_dir, resume=args.resume is not None
        )
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous
    if is_rank_zero():
        print(summary(result))
    return 0


def run_directory(args: argparse.Namespace, name: str) -> Path:
    """``--resume``, ``--out``, ``$RNNKIT_RUN_DIR``, else ``runs/<name>-<time>``.

    Raises:
        ConfigError: the processes were started by an outside launcher (torchrun,
            srun: ``WORLD_SIZE`` or ``SLURM_NTASKS`` > 1), which cannot agree on a
            time stamp, and no directory is named.
    """
    from rnnkit.config import ConfigError
    from rnnkit.training.run import RUN_DIR_ENV

    named = args.resume or args.out or os.environ.get(RUN_DIR_ENV)
    if named:
        return Path(named)
    processes = max(int(os.environ.get(k, "1") or 1) for k in ("WORLD_SIZE", "SLURM_NTASKS"))
    if processes > 1:
        raise ConfigError(
            f"{processes} processes were launched for this run, and each would choose "
            f"its own time-stamped directory: name one with --out (or ${RUN_DIR_ENV})"
        )
    return Path("runs") / f"{name}-{dt.datetime.now():%Y%m%d-%H%M%S}"


def summary(result: Any) -> str:
    """What a user wants to see after training: the held-out score, where, what next."""
    from rnnkit.training.checkpoint import load_json

    metrics = load_json(result.run_dir / "metrics.json")
    lines = [
        f"{result.config.name}: trained {result.epochs} epoch(s) in {result.seconds:.0f} s",
        f"{metrics['split']}, {metrics['examples']} examples:",
        *_metric_lines(metrics),
        f"run directory: {result.run_dir}",
        "  " + ", ".join(sorted(p.name for p in result.files.values() if p.exists())),
        "next:",
        f"  rnnkit evaluate {result.run_dir}",
        "  " + _next_step(result.config).format(run=result.run_dir),
        "  rnnkit recipes    (other tasks from the course)",
    ]
    return "\n".join(lines)


def _next_step(config: Any) -> str:
    """How to apply the run (long-range toys have no inputs to predict on: compare cells)."""
    if config.data.name == "longrange":
        return "rnnkit gradflow --cells rnn,lstm,gru --steps 100   (why a vanilla RNN fails)"
    return _NEXT[config.task.name]


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    """The model's test metrics on one line, each naive baseline's on its own below."""
    scores = {k.removeprefix("test_"): v for k, v in metrics.items() if k.startswith("test_")}
    groups: dict[str, dict[str, float]] = {"model": {}}
    for name, value in scores.items():
        owner, _, metric = name.rpartition("_")
        key = owner if owner in BASELINES else "model"
        groups.setdefault(key, {})[metric if key != "model" else name] = value
    return [
        f"  {who:<15} " + ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        for who, values in groups.items()
    ]


register(Command("train", "train a recipe and test it on held-out data", _add_arguments, _run))

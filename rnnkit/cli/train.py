"""``rnnkit train``: train a recipe (default: digits), test it, write the run directory.

A thin layer over :func:`rnnkit.api.fit`: the recipe, ``--config`` and ``--set`` become
its arguments, and the summary is read from the run directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rnnkit.cli._registry import Command, register

_NEXT = {
    "classification": "rnnkit predict {run} <input>   (or --input FILE --output out.jsonl)",
    "multilabel_classification": "rnnkit predict {run} --input FILE --output out.jsonl",
    "regression": "rnnkit predict {run} --input FILE --output out.jsonl",
    "forecast": "rnnkit predict {run} <csv file>",
    "language_model": "rnnkit generate {run} --prompt <text>",
    "seq2seq": "rnnkit predict {run} '<source text>'",
    "caption": "rnnkit predict {run} <image file>",
    "tagging": "rnnkit evaluate {run} --json",
}
BASELINES = ("persistence", "seasonal", "moving_average", "majority_class", "mean")


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
    from rnnkit.api import build_config as build
    from rnnkit.config import load_yaml
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
    return build(data, overrides=overrides)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    from rnnkit.api import _merge as merge

    return merge(base, over)


def _run(args: argparse.Namespace) -> int:
    from rnnkit.api import fit
    from rnnkit.training.run import is_rank_zero

    config = build_config(args)
    run = fit(
        config,
        run_dir=args.resume or args.out,
        data_dir=args.data_dir,
        resume=args.resume is not None,
    )
    if is_rank_zero():  # every process of a distributed run gets here
        for note in _data_notes(run.result.run_dir):  # about the data, not results: stderr
            print(note, file=sys.stderr)
        print(summary(run.result))
    return 0


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


def _data_notes(run_dir: Path) -> list[str]:
    """What the reader had to report (empty texts left out, missing values filled) and the
    word vectors' coverage, one line each; nothing when there is nothing to say. (Replaced
    invalid UTF-8 is a :class:`~rnnkit.data.errors.DecodeWarning` while the data is read.)"""
    from rnnkit.training.checkpoint import load_json

    notes = []
    path = run_dir / "data_report.json"
    report = load_json(path) if path.exists() else {}
    empty = report.get("empty_texts", {})
    if empty.get("count"):
        shown = ", ".join(empty["where"][:3])
        notes.append(
            f"data: {empty['count']} empty text(s) left out (e.g. {shown}); see data_report.json"
        )
    missing = report.get("missing_values", {})
    if missing.get("count"):
        notes.append(f"data: {missing['count']} missing value(s) filled ({missing['fill']})")
    if (run_dir / "vectors.json").exists():
        v = load_json(run_dir / "vectors.json")
        notes.append(
            f"word vectors: {v['coverage']:.1%} of the vocabulary covered ({v['found']:,} of "
            f"{v['vocabulary_tokens']:,} tokens, {v['dim']} dimensions, "
            f"{'frozen' if v['frozen'] else 'fine-tuned'}); see vectors.json"
        )
    return notes


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
        owner = next((b for b in BASELINES if name.startswith(f"{b}_")), None)
        if owner is None:
            groups["model"][name] = value
        else:
            groups.setdefault(owner, {})[name.removeprefix(f"{owner}_")] = value
    return [
        f"  {who:<15} " + ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        for who, values in groups.items()
    ]


register(Command("train", "train a recipe and test it on held-out data", _add_arguments, _run))

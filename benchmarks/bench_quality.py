"""Held-out quality of the course recipes against published figures, at a fixed time budget.

Usage::

    python -m benchmarks.bench_quality --data-dir ../shared/data
    python -m benchmarks.bench_quality --recipes imdb reuters --seeds 3 --budget-minutes 30
    python -m benchmarks.bench_quality --recipes digits --update-docs     # rewrite docs/training.md
    python -m benchmarks.bench_quality --ablation char-lm --data-dir ../shared/data

Each recipe trains through the Python API (:func:`rnnkit.fit`) once per seed, for at most
``--budget-minutes`` (Lightning's ``max_time``) or the recipe's epochs, whichever ends
first; the test split (held out, never used for a choice) gives its metric. One table:
the mean ± standard deviation over the seeds, the published from-scratch figure it is
read beside (*anchor*), the figure the recipe aims at (*target*) and whether the mean
meets it, the wall time and the epochs trained. ``--set`` overrides reach every run;
``--out`` writes the records as JSON; ``--update-docs`` rewrites the marked block of
``docs/training.md`` (``<!-- bench_quality:begin -->`` … ``<!-- bench_quality:end -->``):
the latest row of every recipe (this run's rows replace theirs in :data:`RESULTS`, the
others stay), each with the date, machine and exact command that measured it. Every row
also gives the best epoch's validation figure, the one a choice between configurations
may read (the test figure is only reported).

``--ablation imdb|char-lm`` trains that recipe as it is and with each regulariser of
:data:`ABLATIONS` alone (variational recurrent dropout, DropConnect on ``W_hh``, zoneout,
layer norm, embedding dropout), all at the same budget (its own block in the docs).

Anchors: IMDB 0.89 (Chollet, *Deep Learning with Python*, LSTM); Fashion-MNIST 0.897
(GRU) / 0.900 (MLP), Reuters 0.78–0.80 (MLP, the course's figures); tiny Shakespeare
1.88 nats/char (nanoGPT's CPU character model). Digits has no published figure for the
5,000-digit subset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmarks._timing import markdown_table
from rnnkit.training.checkpoint import save_json, write_text

DOCS = Path(__file__).resolve().parent.parent / "docs" / "training.md"
RESULTS = Path(__file__).resolve().parent / "results" / "quality.json"
"""The latest row of every recipe, from which ``--update-docs`` writes the results block."""


@dataclass(frozen=True)
class Goal:
    """What a recipe is measured by, beside what.

    Attributes:
        metric: the ``metrics.json`` key.
        higher: whether larger is better.
        anchor: the published from-scratch figure it is read beside.
        target: the figure the recipe aims at, in words.
        threshold: the target as a number, for ``metric``.
        minutes: a wall-time target as well (``None``: none).
    """

    metric: str
    higher: bool
    anchor: str
    target: str
    threshold: float
    minutes: float | None = None

    def met(self, value: float, minutes: float) -> bool:
        """Whether a mean ``value`` reached in ``minutes`` meets the target."""
        good = value >= self.threshold if self.higher else value <= self.threshold
        return good and (self.minutes is None or minutes <= self.minutes)


GOALS: dict[str, Goal] = {
    "digits": Goal("test_acc", True, "—", "≥ 0.95 in ≤ 3 min", 0.95, minutes=3.0),
    "reuters": Goal("test_acc", True, "0.78–0.80 (MLP)", "≥ 0.85 (+ macro-F1)", 0.85),
    "fashion-mnist": Goal("test_acc", True, "0.897 (GRU) / 0.900 (MLP)", "≥ 0.915", 0.915),
    "imdb": Goal("test_acc", True, "0.89 (DLwP LSTM)", "≥ 0.905", 0.905),
    "char-lm": Goal("test_loss", False, "1.88 nats (nanoGPT, CPU)", "≤ 1.55 nats/char", 1.55),
}
"""The recipes this benchmark knows, in the table's order."""

_VARIANTS = {
    "recurrent dropout 0.25": ["model.rnn.options.recurrent_dropout=0.25"],  # Gal & Ghahramani
    "DropConnect 0.5": ["model.rnn.options.weight_drop=0.5"],  # AWD-LSTM's W_hh rate
    "zoneout 0.05 / 0.5": [  # Krueger et al.'s character-level rates (h, c)
        "model.rnn.options.zoneout_h=0.05",
        "model.rnn.options.zoneout_c=0.5",
    ],
    "layer norm": ["model.rnn.options.layer_norm=true"],
}
ABLATIONS: dict[str, dict[str, list[str]]] = {
    "imdb": {
        "recipe as is": [],
        **_VARIANTS,
        "embedding dropout 0.1": ["model.input.embedding_dropout=0.1"],
    },
    "char-lm": {
        "recipe as is": [],
        **_VARIANTS,
        "embedding dropout 0.1": ["model.embedding_dropout=0.1"],
    },
}
"""Per recipe: variant → the overrides that add one regulariser to it."""


def budget_overrides(minutes: float) -> list[str]:
    """``train.trainer.max_time`` for a budget (Lightning stops at the next step after it)."""
    return [f"train.trainer.max_time={{seconds: {max(1, round(minutes * 60))}}}"]


def run_once(
    recipe: str,
    *,
    seed: int,
    overrides: Sequence[str],
    data_dir: str | None,
    run_dir: Path,
) -> dict[str, Any]:
    """Train and test one recipe with one seed: its record (metrics, time, epochs or error)."""
    import rnnkit

    record: dict[str, Any] = {"recipe": recipe, "seed": seed, "run_dir": str(run_dir)}
    start = time.perf_counter()
    try:
        run = rnnkit.fit(
            recipe,
            seed=seed,
            overrides=["train.progress_bar=false", *overrides],
            run_dir=run_dir,
            data_dir=data_dir,
        )
    except Exception as err:  # one recipe's failure (missing data) leaves the others
        record["error"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return record
    record["seconds"] = time.perf_counter() - start
    record["metrics"] = dict(run.metrics)
    record["epochs"] = int(run.result.epochs)
    validation = best_validation(run_dir / "history.json", GOALS[recipe])
    if validation is not None:
        record["validation"] = validation
    return record


def best_validation(history: Path, goal: Goal) -> float | None:
    """The best epoch's validation figure of ``goal``'s metric (``val_`` for ``test_``) in a
    run's ``history.json``: what a choice between configurations may read."""
    if not history.is_file():
        return None
    key = goal.metric.replace("test_", "val_", 1)
    values = [epoch[key] for epoch in json.loads(history.read_text()) if key in epoch]
    if not values:
        return None
    return max(values) if goal.higher else min(values)


def summarise(recipe: str, variant: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row from a recipe's records over its seeds."""
    goal = GOALS[recipe]
    done = [r for r in records if "error" not in r]
    row: dict[str, Any] = {
        "recipe": recipe,
        "variant": variant,
        "metric": goal.metric,
        "seeds": [r["seed"] for r in records],
        "anchor": goal.anchor,
        "target": goal.target,
    }
    if not done:
        row["error"] = records[0].get("error", "no run") if records else "no run"
        return row
    values = [r["metrics"][goal.metric] for r in done]
    row["mean"], row["std"] = _mean_std(values)
    validation = [r["validation"] for r in done if "validation" in r]
    if validation:
        row["val_mean"], row["val_std"] = _mean_std(validation)
    f1 = [r["metrics"]["test_f1"] for r in done if "test_f1" in r["metrics"]]
    if f1:
        row["f1_mean"], row["f1_std"] = _mean_std(f1)
    row["minutes"] = statistics.fmean(r["seconds"] for r in done) / 60
    row["epochs"] = [r["epochs"] for r in done]
    row["met"] = goal.met(row["mean"], row["minutes"])
    if len(done) < len(records):
        row["error"] = next(r["error"] for r in records if "error" in r)
    return row


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _figure(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as one markdown table."""
    header = ["recipe", "test metric", "macro-F1", "best validation", "anchor", "target", "met"]
    header += ["wall time", "epochs", "seeds"]
    if any("measured" in row for row in rows):
        header.append("measured")
    lines = []
    for row in rows:
        name = row["recipe"] if row["variant"] == "recipe" else f"{row['recipe']}: {row['variant']}"
        if "mean" not in row:
            lines.append([name, f"error: {row['error']}", "—", "—", row["anchor"], row["target"]])
            lines[-1] += ["—", "—", "—", _seeds(row["seeds"])]
            lines[-1] += [row["measured"]] if "measured" in header else []
            continue
        metric = f"{row['metric']} {_figure(row['mean'], row['std'])}"
        f1 = _figure(row.get("f1_mean"), row.get("f1_std"))
        lines.append(
            [
                name,
                metric,
                f1,
                _figure(row.get("val_mean"), row.get("val_std")),
                row["anchor"],
                row["target"],
                "yes" if row["met"] else "no",
                f"{row['minutes']:.1f} min",
                ", ".join(map(str, row["epochs"])),
                _seeds(row["seeds"]),
            ]
        )
        if "measured" in header:
            lines[-1].append(row.get("measured", "—"))
    return markdown_table(header, lines)


def _seeds(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds))


def machine() -> str:
    """The machine in words: CPUs, torch threads, GPU."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{platform.machine()}, {cpus} CPUs, {torch.get_num_threads()} torch threads, {gpu}; "
        f"torch {torch.__version__}"
    )


def update_block(text: str, name: str, body: str) -> str:
    """``text`` with the block between ``<!-- {name}:begin -->`` and ``<!-- {name}:end -->``
    replaced by ``body``.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"expected the markers {begin} … {end} in the file, in that order")
    return text[: start + len(begin)] + "\n" + body.strip() + "\n" + text[stop:]


def docs_body(rows: list[dict[str, Any]], args: argparse.Namespace, argv: Sequence[str]) -> str:
    """What an ablation's docs block says: when, where, the table, the command."""
    return (
        f"Measured {_today()} on {machine()}: {_budget(args)}\n\n"
        f"{table(rows)}\n\n"
        f"```bash\n{_command(argv)}\n```"
    )


def merge_rows(
    rows: list[dict[str, Any]], stored: list[dict[str, Any]], **provenance: str
) -> list[dict[str, Any]]:
    """The latest row of every recipe, in :data:`GOALS`' order: this run's rows (stamped
    with ``provenance``: when, where, the command) over those stored from earlier runs."""
    latest = {row["recipe"]: row for row in stored}
    latest |= {row["recipe"]: {**row, **provenance} for row in rows}
    return [latest[recipe] for recipe in GOALS if recipe in latest]


def results_body(rows: list[dict[str, Any]]) -> str:
    """The results block: the latest row of every recipe, then each run's command."""
    runs: dict[tuple[str, str, str, str], list[str]] = {}
    for row in rows:
        key = (row["command"], row["measured"], row["machine"], row["budget"])
        runs.setdefault(key, []).append(row["recipe"])
    commands = [
        f"{', '.join(recipes)}: measured {when} on {where}; {budget}.\n\n```bash\n{command}\n```"
        for (command, when, where, budget), recipes in runs.items()
    ]
    intro = "Each row is the latest measurement of its recipe, by the command below the table."
    return "\n\n".join([intro, table(rows), *commands])


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def _command(argv: Sequence[str]) -> str:
    """The command that reproduces a run: ``argv`` without where its files went."""
    kept: list[str] = []
    skip = False
    for item in argv:
        if not skip and item.split("=", 1)[0] not in _PLACES:
            kept.append(item)
        skip = not skip and item in _PLACES  # the next item is that place's value
    return shlex.join(["python", "-m", "benchmarks.bench_quality", *kept])


_PLACES = ("--out", "--runs")


def _budget(args: argparse.Namespace) -> str:
    return (
        f"{args.seeds} seed(s) per row, at most {args.budget_minutes:g} min per run "
        "(Lightning's `max_time`) or the recipe's epochs; mean ± standard deviation over "
        "the seeds"
    )


def plan(args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """``(recipe, variant, overrides)`` of every row the arguments ask for."""
    if args.ablation:
        return [(args.ablation, v, o) for v, o in ABLATIONS[args.ablation].items()]
    return [(recipe, "recipe", []) for recipe in args.recipes]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipes", nargs="+", choices=list(GOALS), default=list(GOALS))
    parser.add_argument("--ablation", choices=list(ABLATIONS), help="one recipe's regularisers")
    parser.add_argument("--data-dir", help="where the datasets live ($RNNKIT_DATA_DIR)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per row")
    parser.add_argument("--budget-minutes", type=float, default=20.0, help="per run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="write the records and rows to this JSON file")
    parser.add_argument("--runs", default="runs/bench_quality", help="run directories under")
    parser.add_argument("--update-docs", action="store_true", help="rewrite the docs block")
    parser.add_argument("--docs", default=str(DOCS), help=argparse.SUPPRESS)
    parser.add_argument("--results", default=str(RESULTS), help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; the table goes to stdout, progress to stderr. Exit 1 on errors."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.seeds < 1 or args.budget_minutes <= 0:
        _parser().error("--seeds must be >= 1 and --budget-minutes > 0")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    runs = Path(args.runs) / stamp
    records, rows = [], []
    for recipe, variant, extra in plan(args):
        overrides = [*budget_overrides(args.budget_minutes), *extra, *args.set]
        mine = []
        for seed in range(args.seeds):
            label = recipe if variant == "recipe" else f"{recipe}-{_slug(variant)}"
            print(f"bench_quality: {label}, seed {seed}", file=sys.stderr, flush=True)
            run_dir = runs / f"{label}-s{seed}"
            record = run_once(
                recipe, seed=seed, overrides=overrides, data_dir=args.data_dir, run_dir=run_dir
            )
            mine.append({**record, "variant": variant, "overrides": overrides})
        records += mine
        rows.append(summarise(recipe, variant, mine))
    print(table(rows))
    if args.out:
        save_json(
            {"command": argv, "machine": machine(), "records": records, "rows": rows}, args.out
        )
    if args.update_docs:
        write_docs(rows, args, argv)
    return 1 if any("error" in r for r in records) else 0


def write_docs(rows: list[dict[str, Any]], args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Rewrite the docs block of this run: an ablation's own, or the results block from the
    latest row of every recipe (this run's replacing those in :data:`RESULTS`)."""
    docs = Path(args.docs)
    if args.ablation:
        block, body = f"bench_quality:ablation-{args.ablation}", docs_body(rows, args, argv)
    else:
        results = Path(args.results)
        stored = json.loads(results.read_text()) if results.is_file() else []
        provenance = dict(measured=_today(), machine=machine(), command=_command(argv))
        rows = merge_rows(rows, stored, budget=_budget(args), **provenance)
        results.parent.mkdir(parents=True, exist_ok=True)
        save_json(rows, results)
        block, body = "bench_quality", results_body(rows)
    write_text(docs, update_block(docs.read_text(), block, body))


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


if __name__ == "__main__":
    sys.exit(main())

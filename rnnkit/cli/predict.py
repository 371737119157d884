"""``rnnkit predict RUN_DIR INPUT...``: apply a trained run to new inputs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rnnkit.cli._registry import Command, register

_HELP = (
    "texts (text classifiers), image files .png/.npy/.csv (digit classifiers, captioners), "
    "source strings (seq2seq), CSV files (forecasters) or prompts (language models)"
)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory written by `rnnkit train`")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=_HELP)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--top", type=int, default=3, help="classes to list (classifiers)")
    parser.add_argument("--beam", type=int, default=1, help="beam size (seq2seq, captioning)")


def _run(args: argparse.Namespace) -> int:
    from rnnkit.training.predict import predict
    from rnnkit.training.run import load_run

    loaded = load_run(args.run_dir)
    results = predict(loaded, args.inputs, top=args.top, beam=args.beam)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print(_line(result))
    return 0


def _line(result: dict[str, Any]) -> str:
    shown = str(result["input"])
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if "label" in result:
        top = ", ".join(f"{k} {v:.3f}" for k, v in result["top"].items())
        return f"{shown!r}: {result['label']} (p={result['probability']:.3f}; top: {top})"
    if "output" in result:
        return f"{shown!r} => {result['output']!r}"
    if "caption" in result:
        return f"{shown}: {result['caption']!r}"
    values = ", ".join(f"{v[0]:.4g}" for v in result["forecast"])
    last = ", ".join(f"{v[0]:.4g}" for v in result["persistence"])
    return (
        f"{shown}: after {result['last_date']}, {result['targets'][0]} forecast [{values}] "
        f"(persistence baseline [{last}])"
    )


register(Command("predict", "apply a trained run to new inputs", _add_arguments, _run))

"""``rnnkit evaluate RUN_DIR``: re-test a run's best weights on its held-out split
(:meth:`rnnkit.api.Run.evaluate`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rnnkit.cli._registry import Command, register


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory written by `rnnkit train`")
    parser.add_argument("--data-dir", type=Path, help="where the datasets live")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _run(args: argparse.Namespace) -> int:
    from rnnkit.api import load

    metrics = load(args.run_dir).evaluate(data_dir=args.data_dir)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        width = max(map(len, metrics), default=0)
        print(f"test metrics of {args.run_dir} (held-out split):")
        print(
            "\n".join(f"  {k.removeprefix('test_'):<{width}}  {v:.4f}" for k, v in metrics.items())
        )
    return 0


register(Command("evaluate", "re-test a trained run on its held-out split", _add_arguments, _run))

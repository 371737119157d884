"""``rnnkit predict RUN_DIR INPUT...`` or ``--input FILE --output FILE``: apply a trained run.

A thin layer over :meth:`rnnkit.api.Run.predict` (inputs on the command line) and
:meth:`rnnkit.api.Run.predict_file` (a file streamed in batches, progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rnnkit.cli._registry import Command, register

_HELP = (
    "texts (text classifiers), image files .png/.npy/.csv (digit classifiers, captioners), "
    "source strings (seq2seq), CSV files (forecasters) or prompts (language models)"
)
_INPUT_HELP = (
    "a file of inputs, predicted in batches: texts (one per line, or a CSV/TSV/JSONL/Parquet "
    "with the training text column), images (.npy/.npz stack, a folder, a .txt of paths) or "
    "sequences (.npz, long CSV, .ts)"
)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory written by `rnnkit train`")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help=_HELP)
    parser.add_argument("--input", type=Path, metavar="FILE", help=_INPUT_HELP)
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="where --input's predictions go: .jsonl or .csv (default: JSON Lines on stdout)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="inputs per forward pass")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: the run's)")
    parser.add_argument("--text-column", help="the texts' column (default: the training one)")
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="write the good rows and list the bad ones (default: any bad row is an error)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--top", type=int, default=3, help="classes to list (classifiers)")
    parser.add_argument("--beam", type=int, default=1, help="beam size (seq2seq, captioning)")


def _run(args: argparse.Namespace) -> int:
    from rnnkit.api import load
    from rnnkit.config import ConfigError

    if args.input is not None and args.inputs:
        raise ConfigError("give inputs on the command line or --input FILE, not both")
    if args.input is None and not args.inputs:
        raise ConfigError("give INPUT arguments, or --input FILE [--output FILE]")
    for flag, value in (
        ("--batch-size", args.batch_size),
        ("--top", args.top),
        ("--beam", args.beam),
    ):
        if value < 1:
            raise ConfigError(f"{flag}: expected an integer >= 1, got {value}")
    run = load(args.run_dir, device=args.device)
    if args.input is not None:
        return _predict_file(run, args)
    results = run.predict(args.inputs, batch_size=args.batch_size, top=args.top, beam=args.beam)
    if args.json:
        print(json.dumps(results.records, indent=2))
    else:
        for result in results:
            print(_line(result))
    return 0


class _Progress:
    """Inputs done, on stderr: one updating line on a terminal, else a line every ~10 s."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.start = self.last = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        rate = done / max(now - self.start, 1e-9)
        text = f"predicted {done:,} inputs ({rate:,.0f}/s)"
        if self.tty:
            print(f"\r{text}", end="", file=sys.stderr, flush=True)
        elif now - self.last >= 10:
            print(text, file=sys.stderr, flush=True)
            self.last = now

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _predict_file(run: Any, args: argparse.Namespace) -> int:
    import tempfile

    to_stdout = args.output is None
    output = args.output or Path(tempfile.mkdtemp()) / "predictions.jsonl"
    progress = _Progress()
    try:
        report = run.predict_file(
            args.input,
            output,
            batch_size=args.batch_size,
            text_column=args.text_column,
            skip_bad=args.skip_bad,
            progress=progress,
        )
    finally:
        progress.close()
    if to_stdout:
        sys.stdout.write(output.read_text(encoding="utf-8"))
        output.unlink()
    where = "stdout" if to_stdout else str(report.output)
    print(f"{report.predicted:,} of {report.rows:,} inputs predicted -> {where}", file=sys.stderr)
    for place, why in report.bad[:20]:
        print(f"  skipped {place}: {why}", file=sys.stderr)
    if len(report.bad) > 20:
        more = len(report.bad) - 20
        print(f"  ... and {more} more (rows with an 'error' in the output)", file=sys.stderr)
    return 0


def _line(result: dict[str, Any]) -> str:
    shown = str(result["input"])
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if "label" in result:
        top = ", ".join(f"{k} {v:.3f}" for k, v in result["top"].items())
        return f"{shown!r}: {result['label']} (p={result['probability']:.3f}; top: {top})"
    if "labels" in result:
        probs = ", ".join(f"{k} {v:.3f}" for k, v in result["probabilities"].items())
        return f"{shown!r}: {result['labels']} ({probs})"
    if "values" in result:
        return f"{shown!r}: {', '.join(f'{v:.4g}' for v in result['values'])}"
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

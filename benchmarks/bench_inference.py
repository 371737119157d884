"""Inference of exported runs: torch eager against ONNX Runtime fp32 and int8, in one run.

Usage::

    python -m benchmarks.bench_inference --classifier runs/digits --lm runs/char-lm
    python -m benchmarks.bench_inference --classifier runs/imdb --data-dir ../shared/data
    python -m benchmarks.bench_inference --classifier runs/digits --classifier runs/imdb \
        --data-dir ../shared/data                   # several classifiers in one run
    python -m benchmarks.bench_inference --small      # a quick check with untrained models

For a trained classifier and a character LM's generation step, every candidate runs
interleaved round by round (``benchmarks/_timing.py``): the run as trained (torch eager),
PyTorch int8 (``rnnkit.export.quantize_model``), ONNX Runtime fp32 (``rnnkit export``)
and ONNX Runtime int8 (``--quantize int8``). Rows: B=1 latency (one example; one token
with its state) and B=64 throughput, with ratios to torch eager. For the classifier each
candidate's accuracy on the whole test split is measured too, and each file's size.
Without ``--lm`` the char-lm recipe's model (untrained, 65 symbols) is timed; without
``--classifier`` the digits recipe's. Every candidate is checked against eager first.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._timing import markdown_table, time_interleaved
from rnnkit.export import export_model, export_run, quantize_model
from rnnkit.export.onnx import session
from rnnkit.models import build_model
from rnnkit.recipes import load_recipe
from rnnkit.training.run import LoadedRun, build_datamodule, load_run

Runner = Callable[..., Any]


def _untrained(recipe: str, data_derived: dict[str, Any]) -> torch.nn.Module:
    """A recipe's model at full size, untrained, with the options its data would fill in."""
    model = dict(load_recipe(recipe)["model"])
    name = model.pop("name")
    return build_model(name, {**model, **data_derived}).eval()


def _export(source: LoadedRun | torch.nn.Module, out: Path, quantize: str | None) -> Path:
    if isinstance(source, LoadedRun):
        return export_run(source, "onnx", out, quantize=quantize).files
    return export_model(source, "onnx", out, quantize=quantize).files


def _ort(path: Path, threads: int) -> Any:
    return session(path, threads=threads)


def _size_mb(path_or_model: Path | torch.nn.Module) -> float:
    if isinstance(path_or_model, Path):
        return path_or_model.stat().st_size / 1e6
    buffer = io.BytesIO()  # in memory only: the int8 modules' packed weights have no safetensors
    torch.save(path_or_model.state_dict(), buffer)
    return buffer.tell() / 1e6


# -- the classifier -------------------------------------------------------------------


def classifier_candidates(
    model: torch.nn.Module, files: dict[str, Path], threads: int
) -> dict[str, Runner]:
    """name → ``run(inputs, lengths) -> logits (numpy)``."""
    int8_torch = quantize_model(model)
    sessions = {"ONNX Runtime fp32": _ort(files["fp32"], threads)}
    sessions["ONNX Runtime int8"] = _ort(files["int8"], threads)

    def eager(m: torch.nn.Module) -> Runner:
        def run(x: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
            with torch.no_grad():
                return m(x, lengths).numpy()

        return run

    def ort(sess: Any) -> Runner:
        return lambda x, lengths: sess.run(None, {"inputs": x.numpy(), "lengths": lengths.numpy()})[
            0
        ]

    runners = {"torch eager": eager(model), "PyTorch int8": eager(int8_torch)}
    runners.update({name: ort(sess) for name, sess in sessions.items()})
    return runners


def accuracy(run: Runner, batches: list[Any]) -> float:
    hits = total = 0
    for batch in batches:
        logits = run(batch.inputs, batch.lengths)
        hits += int((logits.argmax(-1) == batch.targets.numpy()).sum())
        total += len(batch.targets)
    return hits / total


def bench_classifier(run_dir: Path | None, args: argparse.Namespace, tmp: Path) -> list[list[str]]:
    tmp.mkdir(exist_ok=True)
    what = "digits classifier (untrained)"
    if run_dir is not None:
        loaded = load_run(run_dir)
        model, source = loaded.model, loaded
        what = f"{loaded.config.name} classifier"
    else:
        digits = {"num_classes": 10, "input": {"kind": "identity", "input_size": 28}}
        model = _untrained("digits", digits)
        loaded, source = None, model
    files = {"fp32": _export(source, tmp / "clf.onnx", None)["model"]}
    files["int8"] = _export(source, tmp / "clf-int8.onnx", "int8")["model"]
    runners = classifier_candidates(model, files, args.threads)
    batches = _test_batches(loaded, args) if loaded is not None else []
    example = _classifier_example(model, batches)
    rows = []
    for batch_size in (1, 64):
        x, lengths = _batch_of(example, batch_size)
        expected = runners["torch eager"](x, lengths)
        for name, run in runners.items():  # a candidate that disagrees must not be timed
            assert np.allclose(run(x, lengths), expected, atol=0.1), name
        times = time_interleaved(_calls(runners, x, lengths), rounds=args.rounds)
        rows += _rows(f"{what}, T={x.shape[1]}", batch_size, times)
    sizes = {
        "torch eager": _size_mb(model),
        "PyTorch int8": _size_mb(quantize_model(model)),
        "ONNX Runtime fp32": _size_mb(files["fp32"]),
        "ONNX Runtime int8": _size_mb(files["int8"]),
    }
    if batches:
        eager_acc = accuracy(runners["torch eager"], batches)
        for row in rows:
            acc = accuracy(runners[row[2]], batches) if row[1] == "B=1" else None
            row += [f"{sizes[row[2]]:.2f}", "" if acc is None else f"{100 * acc:.2f}"]
            row += ["" if acc is None else f"{100 * (acc - eager_acc):+.2f}"]
    else:
        for row in rows:
            row += [f"{sizes[row[2]]:.2f}", "", ""]
    return rows


def _stem(run_dir: Path | None) -> str:
    """A folder per classifier (made here), so that their files do not overwrite each other."""
    return run_dir.name if run_dir is not None else "untrained"


def _test_batches(loaded: LoadedRun, args: argparse.Namespace) -> list[Any]:
    config = loaded.config
    dm = build_datamodule(config.data, data_dir=args.data_dir, seed=config.seed)
    dm.prepare_data()
    dm.setup("test")
    dm.load_state_dict(loaded.data_state)
    batches = list(dm.test_dataloader())
    return batches[: args.limit_batches] if args.limit_batches else batches


def _classifier_example(
    model: torch.nn.Module, batches: list[Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    if batches:
        return batches[0].inputs, batches[0].lengths
    spec = model.config.input
    return torch.rand(64, 28, spec.input_size), torch.full((64,), 28)


def _batch_of(
    example: tuple[torch.Tensor, torch.Tensor], size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    x, lengths = example
    index = torch.arange(size) % x.shape[0]
    x, lengths = x[index], lengths[index]
    return x[:, : int(lengths.max())].contiguous(), lengths


# -- the language model's generation step ---------------------------------------------


def lm_candidates(
    model: torch.nn.Module, files: dict[str, Path], threads: int
) -> dict[str, Runner]:
    """name → ``step(tokens (B, 1), h, c) -> (logits, h, c)``: one generation step."""
    int8_torch = quantize_model(model)

    def eager(m: torch.nn.Module) -> Runner:
        def step(tokens: torch.Tensor, *state: torch.Tensor) -> Any:
            with torch.no_grad():
                return m(tokens, None, state if len(state) > 1 else state[0])

        return step

    def ort(sess: Any) -> Runner:
        names = [i.name for i in sess.get_inputs()]

        def step(tokens: torch.Tensor, *state: torch.Tensor) -> Any:
            feeds = {n: t.numpy() for n, t in zip(names, (tokens, *state), strict=True)}
            return sess.run(None, feeds)

        return step

    runners = {"torch eager": eager(model), "PyTorch int8": eager(int8_torch)}
    runners["ONNX Runtime fp32"] = ort(_ort(files["fp32"], threads))
    runners["ONNX Runtime int8"] = ort(_ort(files["int8"], threads))
    return runners


def bench_lm(args: argparse.Namespace, tmp: Path) -> list[list[str]]:
    if args.lm:
        loaded = load_run(args.lm)
        model, source = loaded.model, loaded
    else:
        model = _untrained("char-lm", {"vocab_size": 65})
        source = model
    files = {"fp32": _export(source, tmp / "lm.onnx", None)["step"]}
    files["int8"] = _export(source, tmp / "lm-int8.onnx", "int8")["step"]
    runners = lm_candidates(model, files, args.threads)
    spec = model.config.rnn
    rows = []
    for batch_size in (1, 64):
        tokens = torch.randint(model.config.vocab_size, (batch_size, 1))
        leaves = 2 if spec.cell == "lstm" else 1
        state = [
            0.1 * torch.randn(spec.num_layers, batch_size, spec.hidden_size) for _ in range(leaves)
        ]
        times = time_interleaved(_calls(runners, tokens, *state), rounds=args.rounds)
        rows += _rows("char LM step", batch_size, times)
    sizes = {
        "torch eager": _size_mb(model),
        "PyTorch int8": _size_mb(quantize_model(model)),
        "ONNX Runtime fp32": _size_mb(files["fp32"]),
        "ONNX Runtime int8": _size_mb(files["int8"]),
    }
    for row in rows:
        row += [f"{sizes[row[2]]:.2f}", "", ""]
    return rows


def _calls(runners: dict[str, Runner], *inputs: torch.Tensor) -> dict[str, Callable[[], Any]]:
    return {name: (lambda run=run: run(*inputs)) for name, run in runners.items()}


def _rows(what: str, batch_size: int, times: dict[str, float]) -> list[list[str]]:
    base = times["torch eager"]
    rows = []
    for name, seconds in times.items():
        rate = batch_size / seconds
        rows.append(
            [
                what,
                f"B={batch_size}",
                name,
                f"{seconds * 1e3:.3f}",
                f"{rate:,.0f}",
                f"{seconds / base:.3f}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--classifier",
        type=Path,
        action="append",
        help="a trained classifier run (digits, imdb); repeat for several",
    )
    parser.add_argument("--lm", type=Path, help="a trained language-model run (char-lm)")
    parser.add_argument("--data-dir", type=Path, help="where the classifier's data lives")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--limit-batches", type=int, help="test batches for the accuracy")
    parser.add_argument("--small", action="store_true", help="few rounds: check that it runs")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.small:
        args.rounds, args.limit_batches = 2, args.limit_batches or 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            row
            for run_dir in args.classifier or [None]
            for row in bench_classifier(run_dir, args, Path(tmp) / _stem(run_dir))
        ]
        rows += bench_lm(args, Path(tmp))
    header = [
        "model",
        "batch",
        "candidate",
        "ms/call",
        "items/s",
        "ratio vs eager",
        "MB",
        "test acc %",
        "Δ acc",
    ]
    print(f"torch {torch.__version__}, threads {args.threads}; ratio < 1: faster than eager")
    print(markdown_table(header, rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps([dict(zip(header, r, strict=True)) for r in rows], indent=2)
        )


if __name__ == "__main__":
    main()

"""rnnkit.MinGRU / MinLSTM (the scan engine) versus torch.nn.GRU / LSTM: speed-ups in one run.

Usage::

    python -m benchmarks.bench_scan                      # B=32, I=H=256, fp32, 2 threads
    python -m benchmarks.bench_scan --steps 128,1024 --rounds 3 --no-memory
    python -m benchmarks.bench_scan --steps 16 --rounds 1 --batch 4 --size 32   # a smoke run

For every sequence length ``T``, the candidates run interleaved (``benchmarks._timing``):
inference (forward under ``no_grad``) and a training step (forward + backward of a scalar
loss). The table gives milliseconds per call, the speed-up over ``nn.GRU`` and over
``nn.LSTM`` (their time / the candidate's: above 1 is faster) and the peak memory of one
call (the growth of the resident set of a fresh process running it once: torch's CPU
allocator returns large blocks to the system, so this is the call's own peak). Then the
crossover: from which ``T`` on ``MinGRU`` beats ``nn.GRU``.

Candidates: ``nn.GRU``, ``nn.LSTM`` (oneDNN/ATen fused kernels), ``rnnkit.MinGRU`` and
``rnnkit.MinLSTM`` (scan engine, the native recurrence where built), ``MinGRU, pure
torch`` (the scan engine's chunked form, as where no compiler is), and ``MinGRU's
projection alone``, the GEMMs of its input projection without the scan: the floor under
any minimal layer's time, and so the largest speed-up over ``nn.GRU`` a faster scan could
reach on the machine. A second table times the recurrence alone, ``linear_scan`` on
``(T, B, H)``, in each of its forms.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

import rnnkit
from benchmarks._timing import markdown_table, time_interleaved
from rnnkit.engines.bptt import native
from rnnkit.engines.linear import linear_scan


class Projection(nn.Linear):
    """MinGRU's input projection alone, ``x W^T + b`` to ``2H`` gate pre-activations.

    The floor of any minimal layer's time: its forward is one GEMM over all ``B·T`` rows
    and its backward two more (``δx``, ``δW``), which the scan cannot avoid; what a
    ``MinGRU`` call costs above this row is the scan and the layout.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, 2 * hidden_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return super().forward(x), None


CANDIDATES: dict[str, tuple[Callable[[int, int], nn.Module], Callable[[], AbstractContextManager]]]
CANDIDATES = {
    "nn.GRU": (lambda i, h: nn.GRU(i, h, batch_first=True), nullcontext),
    "nn.LSTM": (lambda i, h: nn.LSTM(i, h, batch_first=True), nullcontext),
    "rnnkit.MinGRU": (lambda i, h: rnnkit.MinGRU(i, h, batch_first=True), nullcontext),
    "rnnkit.MinLSTM": (lambda i, h: rnnkit.MinLSTM(i, h, batch_first=True), nullcontext),
    "MinGRU, pure torch": (lambda i, h: rnnkit.MinGRU(i, h, batch_first=True), native.disabled),
    "MinGRU's projection alone": (Projection, nullcontext),
}
FORMS = ("native", "chunked", "log")


def _call(name: str, layer: nn.Module, x: torch.Tensor, mode: str) -> Callable[[], None]:
    context = CANDIDATES[name][1]

    def inference() -> None:
        with torch.no_grad(), context():
            layer(x)

    def training() -> None:
        layer.zero_grad(set_to_none=True)
        with context():
            out, _ = layer(x)
            out.sum().backward()

    return inference if mode == "inference" else training


def _inputs(batch: int, steps: int, size: int) -> torch.Tensor:
    return torch.randn(batch, steps, size, requires_grad=True)


def bench_layers(args: argparse.Namespace, steps: int) -> list[dict]:
    x = _inputs(args.batch, steps, args.size)
    layers = {name: make(args.size, args.size) for name, (make, _) in CANDIDATES.items()}
    rows = []
    for mode in ("inference", "training"):
        fns = {name: _call(name, layer, x, mode) for name, layer in layers.items()}
        times = time_interleaved(fns, rounds=args.rounds, per_round=1, warmup=1)
        for name, seconds in times.items():
            rows.append(
                dict(
                    T=steps,
                    mode=mode,
                    candidate=name,
                    ms=seconds * 1e3,
                    vs_gru=times["nn.GRU"] / seconds,
                    vs_lstm=times["nn.LSTM"] / seconds,
                    peak_mib=_peak_memory(args, name, steps, mode) if args.memory else None,
                )
            )
    return rows


def _peak_memory(args: argparse.Namespace, name: str, steps: int, mode: str) -> float:
    """MiB the resident set grows by while a fresh process runs one call."""
    sizes = ["--batch", str(args.batch), "--size", str(args.size), "--threads", str(args.threads)]
    command = [sys.executable, "-m", "benchmarks.bench_scan", "--probe", name, str(steps), mode]
    command += sizes
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def _probe(args: argparse.Namespace) -> None:
    """The child of :func:`_peak_memory`: build everything, then run one call."""
    name, steps, mode = args.probe[0], int(args.probe[1]), args.probe[2]
    x = _inputs(args.batch, steps, args.size)
    fn = _call(name, CANDIDATES[name][0](args.size, args.size), x, mode)
    if name.startswith("rnnkit") or "pure" in name:
        native.ops()  # load (or build) the kernels before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024)


def bench_recurrence(args: argparse.Namespace, steps: int) -> list[dict]:
    shape = (steps, args.batch, args.size)
    a = torch.rand(shape).requires_grad_()
    b = torch.randn(shape).requires_grad_()
    h0 = torch.zeros(shape[1:])
    forms = [f for f in FORMS if f != "native" or native.ops() is not None]
    rows = []
    for mode in ("inference", "training"):

        def make(form: str, mode: str = mode) -> Callable[[], None]:
            def run() -> None:
                if mode == "inference":
                    with torch.no_grad():
                        linear_scan(a, b, h0, method=form)
                else:
                    linear_scan(a, b, h0, method=form).sum().backward()

            return run

        times = time_interleaved(
            {f: make(f) for f in forms}, rounds=args.rounds, per_round=1, warmup=1
        )
        rows += [dict(T=steps, mode=mode, form=f, ms=s * 1e3) for f, s in times.items()]
    return rows


def _crossover(rows: list[dict], mode: str) -> str:
    """From which T on (in the list) MinGRU beats nn.GRU, in words."""
    mine = [r for r in rows if r["mode"] == mode and r["candidate"] == "rnnkit.MinGRU"]
    faster = {r["T"]: r["vs_gru"] > 1 for r in mine}
    steps = sorted(faster)
    slower = [t for t in steps if not faster[t]]
    if not slower:
        return f"{mode}: MinGRU is faster than nn.GRU at every T measured (from T={steps[0]})"
    if slower[-1] == steps[-1]:
        return f"{mode}: MinGRU is slower than nn.GRU up to T={steps[-1]}"
    after = steps[steps.index(slower[-1]) + 1]
    return f"{mode}: MinGRU is slower than nn.GRU at T={slower[-1]}, faster from T={after} on"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", default="1,4,16,64,128,512,1024,4096", help="T values")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=256, help="I = H")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--probe", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.probe:
        _probe(args)
        return
    native.ops()  # build (or load) the kernels before any timing
    steps = [int(t) for t in args.steps.split(",")]
    layers = [row for t in steps for row in bench_layers(args, t)]
    forms = [row for t in steps for row in bench_recurrence(args, t)]
    print(
        f"torch {torch.__version__}, {platform.processor() or 'cpu'}, threads "
        f"{torch.get_num_threads()}, B={args.batch}, I=H={args.size}, fp32; "
        f"native kernels: {native.status()}"
    )
    header = ["T", "mode", "candidate", "ms/call", "× vs nn.GRU", "× vs nn.LSTM", "peak MiB"]
    table = [
        [str(r["T"]), r["mode"], r["candidate"], f"{r['ms']:.1f}", f"{r['vs_gru']:.2f}",
         f"{r['vs_lstm']:.2f}", "—" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"]
        for r in layers
    ]  # fmt: skip
    print(markdown_table(header, table))
    print("\n".join(["", _crossover(layers, "training"), _crossover(layers, "inference"), ""]))
    print("the recurrence alone, linear_scan on (T, B, H):")
    table = [[str(r["T"]), r["mode"], r["form"], f"{r['ms']:.2f}"] for r in forms]
    print(markdown_table(["T", "mode", "form", "ms/call"], table))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"layers": layers, "recurrence": forms}, f, indent=2)


if __name__ == "__main__":
    main()

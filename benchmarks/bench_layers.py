"""rnnkit.RNN/LSTM/GRU versus torch.nn: time ratios in one run.

Usage::

    python -m benchmarks.bench_layers            # CPU, 2 threads, SHAPES large and small
    python -m benchmarks.bench_layers --device cuda

For every layer type and shape, the torch.nn layer and the rnnkit layer (same
weights) run interleaved: inference (forward under ``no_grad``) and a training step
(forward + backward of a scalar loss). The table gives milliseconds per call and the
ratio rnnkit / torch.nn (1.00 = same cost). Also timed: rnnkit's loop engine, a
padded batch with full ``lengths=``, and a *ragged* batch (lengths drawn from
``[T/3, T]``): there the baseline is what a torch.nn user writes (pack, run, pad) and
rnnkit takes ``lengths=`` (fused kernel for inference; on the CPU the BPTT engine for
training, see ``rnnkit.LSTM.engine_for``).
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from benchmarks._timing import markdown_table, time_interleaved

SHAPES = {"large": dict(B=64, T=100, I=256, H=256), "small": dict(B=1, T=200, I=128, H=128)}
LAYERS = {"LSTM": (nn.LSTM, rnnkit.LSTM), "GRU": (nn.GRU, rnnkit.GRU), "RNN": (nn.RNN, rnnkit.RNN)}


def _training_step(layer: nn.Module, x: torch.Tensor, **kwargs: object) -> Callable[[], None]:
    def step() -> None:
        layer.zero_grad(set_to_none=True)
        out, _ = layer(x, **kwargs)
        out.sum().backward()

    return step


def _inference(layer: nn.Module, x: torch.Tensor, **kwargs: object) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            layer(x, **kwargs)

    return run


def _packed(layer: nn.Module, lengths: torch.Tensor) -> nn.Module:
    """What a torch.nn user runs on a ragged padded batch: pack, run, pad."""

    class Packed(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = layer(packed)
            return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], None

    return Packed()


def _rows(times: dict[str, float], base: str, **fields: object) -> list[dict]:
    return [
        dict(**fields, candidate=name, ms=seconds * 1e3, ratio=seconds / times[base])
        for name, seconds in times.items()
    ]


def bench_case(
    name: str, shape: dict[str, int], device: str, rounds: int, loop: bool
) -> list[dict]:
    torch_cls, ours_cls = LAYERS[name]
    b, t, i, h = shape["B"], shape["T"], shape["I"], shape["H"]
    reference = torch_cls(i, h, batch_first=True).to(device)
    ours = ours_cls(i, h, batch_first=True).to(device)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(b, t, i, device=device, requires_grad=True)
    lengths = torch.full((b,), t)
    ragged_lengths = torch.randint(
        max(t // 3, 1), t + 1, (b,), generator=torch.Generator().manual_seed(0)
    )
    results = []
    for mode, make in (("inference", _inference), ("training", _training_step)):
        fns = {"torch.nn": make(reference, x), "rnnkit": make(ours, x)}
        fns["rnnkit lengths="] = make(ours, x, lengths=lengths)
        if loop:
            looped = ours_cls(i, h, batch_first=True, engine="loop").to(device)
            looped.load_state_dict(reference.state_dict())
            fns["rnnkit loop engine"] = make(looped, x)
        times = time_interleaved(fns, rounds=rounds, device=device)
        fields = dict(layer=name, shape=f"B={b} T={t} I={i} H={h}", mode=mode)
        results += _rows(times, "torch.nn", **fields)
        ragged = {
            "torch.nn packed (ragged)": make(_packed(reference, ragged_lengths), x),
            "rnnkit lengths= (ragged)": make(ours, x, lengths=ragged_lengths),
        }
        times = time_interleaved(ragged, rounds=rounds, device=device)
        results += _rows(times, "torch.nn packed (ragged)", **fields)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--shapes", default="large,small")
    parser.add_argument("--layers", default="LSTM,GRU,RNN")
    parser.add_argument("--no-loop", action="store_true", help="skip the (slow) loop engine")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    for shape_name in args.shapes.split(","):
        for layer in args.layers.split(","):
            results += bench_case(
                layer, SHAPES[shape_name], args.device, args.rounds, not args.no_loop
            )
    rows = [
        [r["layer"], r["shape"], r["mode"], r["candidate"], f"{r['ms']:.2f}", f"{r['ratio']:.3f}"]
        for r in results
    ]
    device = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else platform.processor() or "cpu"
    )
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    print("baseline: torch.nn on the same padded batch; ragged rows: torch.nn packed (ragged)")
    print(
        markdown_table(
            ["layer", "shape", "mode", "candidate", "ms/call", "ratio vs baseline"], rows
        )
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

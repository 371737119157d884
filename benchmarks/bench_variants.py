"""Cell variants on the BPTT engine versus torch.nn and versus autograd loops, in one run.

Usage::

    python -m benchmarks.bench_variants                 # CPU, 2 threads, B=64 T=100 I=H=256
    python -m benchmarks.bench_variants --variants ln_lstm,ln_gru --rounds 11

For every variant, four candidates run interleaved (``benchmarks._timing``), in training
(forward + backward of a scalar, train mode: masks drawn) and inference (eval mode,
``no_grad``: dropout off, zoneout in expectation form):

* ``torch.nn`` — the plain ``nn.LSTM``/``nn.GRU`` of the same size (the target's base);
* ``rnnkit bptt`` — ``rnnkit.LSTM/GRU(..., <variant>)``, which runs the BPTT engine
  (its native C++ loops, :mod:`rnnkit.engines.bptt.native`, where they could be built);
* ``bptt, python loops`` — the same engine on its Python loops, the reference path;
* ``loop engine`` — the same layer forced to ``engine="loop"``: the variant's reference
  step, one autograd step per time step (input projection inside the step);
* ``hoisted loop`` — a hand-written autograd loop as one would write it well: the input
  projection (and its LN, input dropout) for all steps as one op, split with ``unbind``,
  then per step the recurrent product and the gates with autograd.

The table gives ms per call, the ratio to ``torch.nn`` (target: LSTM variants ≤ 1.3,
GRU variants ≤ 1.1) and the speed-up of the BPTT engine over each loop (target ≥ 1.4).
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import rnnkit
from benchmarks._timing import markdown_table, time_interleaved
from rnnkit.cells.options import LAYER_NORM_EPS
from rnnkit.cells.variant_steps import zoneout
from rnnkit.engines.bptt import native

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "ln_lstm": ("lstm", {"layer_norm": True}),
    "zoneout_lstm": ("lstm", {"zoneout_h": 0.1, "zoneout_c": 0.1}),
    "recurrent_dropout_lstm": ("lstm", {"recurrent_dropout": 0.25}),
    "peephole_lstm": ("lstm", {"peephole": True}),
    "ln_gru": ("gru", {"layer_norm": True}),
    "zoneout_gru": ("gru", {"zoneout_h": 0.1}),
    "recurrent_dropout_gru": ("gru", {"recurrent_dropout": 0.25}),
}
TARGETS = {"lstm": 1.3, "gru": 1.1}
LAYERS = {"lstm": (nn.LSTM, rnnkit.LSTM), "gru": (nn.GRU, rnnkit.GRU)}


def hoisted_loop(layer: rnnkit.LSTM | rnnkit.GRU, x: Tensor) -> Tensor:
    """A well-written autograd loop of one variant layer (one direction, one layer).

    Uses the layer's own weights and masks, so it computes what the layer computes.
    """
    w, options = layer.variant_weights(0, 0), layer.variant
    steps, batch, _ = x.shape
    hidden = layer.hidden_size
    (masks,) = layer.sample_masks(batch, steps, like=x)
    x_in = x if masks.input is None else x * masks.input
    a = F.linear(x_in, w.weight_ih)  # (T, B, G·H): one GEMM for all steps
    if options.layer_norm:
        a = F.layer_norm(a, a.shape[-1:], w.ln_weight_ih, eps=LAYER_NORM_EPS)
    # unbind, not a[t]: indexing inside an autograd loop makes every step's backward
    # materialise a zero tensor the size of all of ``a``.
    a_steps = (a + w.bias_ih).unbind(0)
    w_hh = w.weight_hh if masks.weight is None else w.weight_hh * masks.weight
    h = x.new_zeros(batch, hidden)
    c = x.new_zeros(batch, hidden)
    outputs = []
    z_hs = masks.zoneout_h.unbind(0) if isinstance(masks.zoneout_h, Tensor) else None
    z_cs = masks.zoneout_c.unbind(0) if isinstance(masks.zoneout_c, Tensor) else None
    for t in range(steps):
        z_h = masks.zoneout_h if z_hs is None else z_hs[t]
        h_in = h if masks.recurrent is None else h * masks.recurrent
        r = F.linear(h_in, w_hh)
        if options.layer_norm:
            r = F.layer_norm(r, r.shape[-1:], w.ln_weight_hh, eps=LAYER_NORM_EPS)
        r = r + w.bias_hh
        if layer.family == "lstm":
            z_c = masks.zoneout_c if z_cs is None else z_cs[t]
            h, c = _lstm_gates(a_steps[t] + r, h, c, w, options.layer_norm, z_h, z_c)
        else:
            h = _gru_gates(a_steps[t], r, h, z_h)
        outputs.append(h)
    return torch.stack(outputs)


def _lstm_gates(
    gates: Tensor, h: Tensor, c: Tensor, w: Any, ln: bool, z_h: Any, z_c: Any
) -> tuple[Tensor, Tensor]:
    a_i, a_f, a_g, a_o = gates.chunk(4, dim=-1)
    if w.weight_ci is not None:
        a_i, a_f = a_i + w.weight_ci * c, a_f + w.weight_cf * c
    c_new = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
    if w.weight_co is not None:
        a_o = a_o + w.weight_co * c_new
    shown = c_new
    if ln:
        shown = F.layer_norm(c_new, c_new.shape[-1:], w.ln_weight_c, w.ln_bias_c)
    h_new = torch.sigmoid(a_o) * torch.tanh(shown)
    return zoneout(h_new, h, z_h), zoneout(c_new, c, z_c)


def _gru_gates(a: Tensor, r: Tensor, h: Tensor, z_h: Any) -> Tensor:
    x_r, x_z, x_n = a.chunk(3, dim=-1)
    h_r, h_z, h_n = r.chunk(3, dim=-1)
    reset, update = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + reset * h_n)
    return zoneout(n + update * (h - n), h, z_h)


def _call(
    layer: nn.Module, x: Tensor, training: bool, python_loops: bool = False
) -> Callable[[], None]:
    layer.train(training)

    def run() -> None:
        if python_loops:
            with native.disabled():
                return call()
        return call()

    def call() -> None:
        if training:
            layer.zero_grad(set_to_none=True)
            out = layer(x)
            out = out[0] if isinstance(out, tuple) else out
            out.sum().backward()
        else:
            with torch.no_grad():
                layer(x)

    return run


class _Hoisted(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        return hoisted_loop(self.layer, x)


def bench_variant(name: str, shape: dict[str, int], rounds: int) -> list[dict[str, Any]]:
    family, options = VARIANTS[name]
    torch_cls, ours_cls = LAYERS[family]
    b, t, i, h = shape["B"], shape["T"], shape["I"], shape["H"]
    reference = torch_cls(i, h)
    ours = ours_cls(i, h, **options)
    looped = ours_cls(i, h, engine="loop", **options)
    looped.load_state_dict(ours.state_dict())
    hoisted = _Hoisted(ours_cls(i, h, **options))
    hoisted.layer.load_state_dict(ours.state_dict())
    assert ours.active_engine == "bptt", ours.active_engine
    x = torch.randn(t, b, i, requires_grad=True)
    results = []
    for mode in ("training", "inference"):
        training = mode == "training"
        fns = {
            "torch.nn": _call(reference, x, training),
            "rnnkit bptt": _call(ours, x, training),
            "bptt, python loops": _call(ours, x, training, python_loops=True),
            "loop engine": _call(looped, x, training),
            "hoisted loop": _call(hoisted, x, training),
        }
        times = time_interleaved(fns, rounds=rounds, per_round=1, warmup=2)
        for candidate, seconds in times.items():
            results.append(
                dict(
                    variant=name,
                    mode=mode,
                    candidate=candidate,
                    ms=seconds * 1e3,
                    vs_torch=seconds / times["torch.nn"],
                    bptt_speedup=seconds / times["rnnkit bptt"],
                    target=TARGETS[family],
                )
            )
    return results


def _rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        if r["candidate"] == "torch.nn":
            speedup = ""
        elif r["candidate"] == "rnnkit bptt":
            speedup = f"target ≤ {r['target']}" if r["mode"] == "training" else ""
        else:
            speedup = f"{r['bptt_speedup']:.2f}×"
        rows.append(
            [
                r["variant"],
                r["mode"],
                r["candidate"],
                f"{r['ms']:.1f}",
                f"{r['vs_torch']:.2f}",
                speedup,
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = dict(B=args.batch, T=args.steps, I=args.hidden, H=args.hidden)
    load_before = os.getloadavg()[0]
    results = []
    for name in args.variants.split(","):
        results += bench_variant(name, shape, args.rounds)
    load_after = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, B={shape['B']} T={shape['T']} "
        f"I=H={shape['H']} fp32, median of {args.rounds} interleaved rounds; "
        f"1-min load average {load_before:.2f} before, {load_after:.2f} after "
        f"({os.cpu_count()} CPUs)"
    )
    print(f"BPTT engine: {native.status()}")
    print()
    header = ["variant", "mode", "candidate", "ms/call", "× torch.nn", "bptt speed-up"]
    print(markdown_table(header, _rows(results)))


if __name__ == "__main__":
    main()

"""The BPTT engine's native C++ loops against its Python loops (the reference path).

* Over random configurations (hypothesis): LSTM and GRU, every variant option, stacked,
  bidirectional, ragged lengths with empty sequences, an initial state or not, training
  or eval mode: outputs, final and per-step states and every gradient agree, fp64
  within 1e-10 (same algorithm, same buffers). In fp32 they agree within 1e-5; with
  layer norm they round differently enough (the native path has its own ``exp`` and
  fp64 row sums) that the native one is held to the fp64 result instead.
* Inference (no gradient: one reused buffer slot per step) gives the training outputs.
* Where the kernels cannot be built the engine warns once and runs the Python loops;
  ``RNNKIT_NATIVE=0`` and :func:`native.disabled` switch them off.

The fp64 ``gradcheck`` of both paths is in ``test_bptt_gradcheck.py``.
"""

from __future__ import annotations

import shutil
import warnings
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnkit
from rnnkit.engines.bptt import native
from tests.engines.test_bptt import weighted_sum
from tests.helpers import assert_close, leaves

IN, H, T, B = 3, 5, 6, 3
OPTION_SETS = {
    "lstm": st.fixed_dictionaries(
        {},
        optional={
            "layer_norm": st.just(True),
            "peephole": st.just(True),
            "zoneout_h": st.sampled_from([0.2, 0.5]),
            "zoneout_c": st.sampled_from([0.2, 0.5]),
            "recurrent_dropout": st.just(0.3),
            "input_dropout": st.just(0.3),
            "weight_drop": st.just(0.3),
            "bias": st.just(False),
        },
    ),
    "gru": st.fixed_dictionaries(
        {},
        optional={
            "layer_norm": st.just(True),
            "zoneout_h": st.sampled_from([0.2, 0.5]),
            "recurrent_dropout": st.just(0.3),
            "input_dropout": st.just(0.3),
            "weight_drop": st.just(0.3),
            "bias": st.just(False),
        },
    ),
}
LAYERS = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU}


@pytest.fixture(scope="module", autouse=True)
def kernels() -> None:
    """The kernels must build wherever a compiler and ninja are (not a silent skip)."""
    if native.ops() is not None:
        return
    if native.os.environ.get(native.ENV_SWITCH) == "0":
        pytest.skip(native.status())
    if shutil.which("c++") is None:
        pytest.skip(f"no C++ compiler here: {native.status()}")
    pytest.fail(f"the native kernels did not build although a compiler is here: {native.status()}")


def _run(layer: torch.nn.Module, x: torch.Tensor, hx: Any, lengths: Any) -> list[torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    hx = None if hx is None else tuple(t.detach().clone().requires_grad_(True) for t in hx)
    state = None if hx is None else (hx if len(hx) == 2 else hx[0])
    torch.manual_seed(11)  # the same masks on both paths
    out, final, states = layer(x, state, lengths=lengths, return_states=True)
    loss = weighted_sum([out, *leaves(final), *leaves(states)])
    inputs = [x, *(hx or ()), *layer.parameters()]
    return [out, *leaves(final), *leaves(states), *torch.autograd.grad(loss, inputs)]


def _both_paths(layer: torch.nn.Module, x: torch.Tensor, hx: Any, lengths: Any) -> tuple:
    fast = _run(layer, x, hx, lengths)
    with native.disabled():
        reference = _run(layer, x, hx, lengths)
    return fast, reference


@st.composite
def configurations(draw: st.DrawFn) -> dict[str, Any]:
    family = draw(st.sampled_from(["lstm", "gru"]))
    return dict(
        family=family,
        options=draw(OPTION_SETS[family]),
        layers=draw(st.integers(1, 2)),
        bidirectional=draw(st.booleans()),
        lengths=draw(st.one_of(st.none(), st.lists(st.integers(0, T), min_size=B, max_size=B))),
        initial=draw(st.booleans()),
        training=draw(st.booleans()),
    )


def _layer(config: dict[str, Any]) -> tuple[torch.nn.Module, torch.Tensor, Any, Any]:
    torch.manual_seed(0)
    dirs = 2 if config["bidirectional"] else 1
    layer = LAYERS[config["family"]](
        IN,
        H,
        num_layers=config["layers"],
        bidirectional=config["bidirectional"],
        dtype=torch.float64,
        engine="bptt",
        **config["options"],
    )
    layer.train(config["training"])
    with torch.no_grad():  # LN gains away from 1, so that their gradients matter
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(T, B, IN, dtype=torch.float64)
    hx = None
    if config["initial"]:
        h0 = torch.randn(config["layers"] * dirs, B, H, dtype=torch.float64)
        hx = (h0, torch.randn_like(h0)) if config["family"] == "lstm" else (h0,)
    lengths = None if config["lengths"] is None else torch.tensor(config["lengths"])
    return layer, x, hx, lengths


@settings(max_examples=40, deadline=None)
@given(config=configurations())
def test_native_loops_equal_the_python_loops_in_fp64(config: dict[str, Any]) -> None:
    layer, x, hx, lengths = _layer(config)
    fast, reference = _both_paths(layer, x, hx, lengths)
    for i, (got, want) in enumerate(zip(fast, reference, strict=True)):
        assert_close(got, want, what=f"{config}: tensor {i} (outputs, states, grads)")


@settings(max_examples=30, deadline=None)
@given(config=configurations())
def test_native_loops_in_fp32_are_as_close_to_fp64_as_the_python_loops(
    config: dict[str, Any],
) -> None:
    layer, x, hx, lengths = _layer(config)
    truth = _run(layer, x, hx, lengths)
    layer.float()
    x = x.float()
    hx = None if hx is None else tuple(t.float() for t in hx)
    fast, reference = _both_paths(layer, x, hx, lengths)

    def error(got: list[torch.Tensor]) -> float:
        pairs = zip(got, truth, strict=True)
        return max(((g.double() - t) / (1 + t.abs())).abs().max().item() for g, t in pairs)

    if not config["options"].get("layer_norm"):
        for i, (got, want) in enumerate(zip(fast, reference, strict=True)):
            assert_close(got, want, what=f"{config}: tensor {i} (outputs, states, grads)")
        return
    # LN over the tests' 4H = 20 or 3H = 15 units amplifies rounding: both paths land up
    # to ~5e-4 from fp64, and which is closer depends on the draw (native 0.5-8x python).
    errors = {"native": error(fast), "python": error(reference)}
    assert errors["native"] <= max(1e-4, 10 * errors["python"]), errors


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_inference_reuses_one_slot_and_gives_the_training_outputs(family: str) -> None:
    config = dict(
        family=family,
        options={"layer_norm": True, "zoneout_h": 0.3},
        layers=2,
        bidirectional=True,
        lengths=[T, 2, 0],
        initial=True,
        training=False,
    )
    layer, x, hx, lengths = _layer(config)
    state = hx if family == "lstm" else hx[0]
    with torch.no_grad():
        fast = layer(x, state, lengths=lengths)
        with native.disabled():
            reference = layer(x, state, lengths=lengths)
    with_grad = layer(x, state, lengths=lengths)
    for got, want, graded in zip(leaves(fast), leaves(reference), leaves(with_grad), strict=True):
        assert_close(got, want)
        assert_close(got, graded.detach())


def test_a_failed_build_warns_once_and_the_python_loops_take_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer, x, _, _ = _layer(
        dict(
            family="lstm",
            options={"layer_norm": True},
            layers=1,
            bidirectional=False,
            lengths=None,
            initial=False,
            training=True,
        )
    )
    expected = _run(layer, x, None, None)

    def broken() -> None:
        raise OSError("no compiler on this machine")

    monkeypatch.setattr(native, "_ops", None)
    monkeypatch.setattr(native, "_failure", None)
    monkeypatch.setattr(native, "_build", broken)
    with pytest.warns(RuntimeWarning, match="could not be built.*no compiler on this machine"):
        assert native.ops() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, not at every call
        got = _run(layer, x, None, None)
        assert "unavailable: OSError: no compiler" in native.status()
    for a, b in zip(got, expected, strict=True):
        assert_close(a, b)


def test_the_switches_keep_the_engine_on_its_python_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native.ops() is not None
    with native.disabled():
        assert native.ops() is None
        assert "switched off" in native.status()
    monkeypatch.setenv(native.ENV_SWITCH, "0")
    assert native.ops() is None
    assert native.usable(torch.zeros(1)) is None
    monkeypatch.delenv(native.ENV_SWITCH)
    assert native.usable(torch.zeros(1)) is not None
    assert native.usable(torch.zeros(1, dtype=torch.bfloat16)) is None  # no bf16 kernels

"""The scan engine's linear recurrence ``h_t = a_t ⊙ h_{t-1} + b_t``: every form against a
plain Python loop (values and gradients, both directions, hypothesis-drawn shapes), fp64
``gradcheck``, long saturated sequences in fp32, and the native kernel's build and switches.

The native and chunked forms are held to the project's parity tolerance (fp32 1e-5,
fp64 1e-10). The log-space form (the paper's) is held to looser ones, 1e-4 and 1e-8: its
two large logarithms cancel, the weakness ``rnnkit/engines/linear.py`` documents.
"""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnkit
from rnnkit.engines.bptt import native
from rnnkit.engines.linear import _chunked, linear_scan, scan_method
from tests.helpers import assert_close, weighted_sum

FORMS = ["native", "chunked", "log"]
LOG_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-8}


@pytest.fixture(scope="module", autouse=True)
def kernels() -> None:
    """The kernels must build wherever a compiler and ninja are (not a silent skip)."""
    if native.ops() is not None or native.os.environ.get(native.ENV_SWITCH) == "0":
        return
    if shutil.which("c++") is None:
        return
    pytest.fail(f"the native kernels did not build although a compiler is here: {native.status()}")


def _skip_without_native(method: str) -> None:
    if method == "native" and native.ops() is None:
        pytest.skip(native.status())


def reference(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, reverse: bool) -> torch.Tensor:
    """The recurrence as written: one step at a time (autograd differentiates it)."""
    hs = [None] * a.shape[0]
    h = h0
    for t in reversed(range(a.shape[0])) if reverse else range(a.shape[0]):
        h = a[t] * h + b[t]
        hs[t] = h
    return torch.stack(hs)


def _inputs(steps: int, shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> list:
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(steps, *shape, generator=gen, dtype=dtype)  # in [0, 1), as the cells' a
    b = torch.randn(steps, *shape, generator=gen, dtype=dtype)
    h0 = torch.randn(*shape, generator=gen, dtype=dtype)
    return [t.requires_grad_() for t in (a, b, h0)]


def _values_and_grads(fn, inputs: list) -> list[torch.Tensor]:
    hs = fn(*inputs)
    return [hs, *torch.autograd.grad(weighted_sum([hs]), inputs)]


def _loss(hs: torch.Tensor) -> torch.Tensor:
    """A weighted sum whose weights are the same numbers in every dtype."""
    gen = torch.Generator().manual_seed(1)
    return (hs * torch.randn(hs.shape, generator=gen, dtype=torch.float64).to(hs.dtype)).sum()


def _check(got: list, expected: list, method: str, what: str) -> None:
    for name, g, e in zip(("hs", "δa", "δb", "δh0"), got, expected, strict=True):
        if method == "log":
            tol = LOG_TOLERANCE[e.dtype]
            torch.testing.assert_close(g, e, atol=tol, rtol=tol, msg=lambda m, n=name: f"{n}: {m}")
        else:
            assert_close(g, e, what=f"{what} {name}")


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(1, 40),
    shape=st.sampled_from([(1,), (3,), (2, 5), (4, 1, 3)]),
    reverse=st.booleans(),
    double=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_every_form_equals_the_loop_values_and_gradients(
    steps: int, shape: tuple[int, ...], reverse: bool, double: bool, seed: int
) -> None:
    dtype = torch.float64 if double else torch.float32
    inputs = _inputs(steps, shape, dtype, seed)
    expected = _values_and_grads(lambda a, b, h0: reference(a, b, h0, reverse), inputs)
    for method in FORMS:
        if method == "native" and native.ops() is None:
            continue
        got = _values_and_grads(
            lambda a, b, h0, m=method: linear_scan(a, b, h0, reverse=reverse, method=m), inputs
        )
        _check(got, expected, method, f"{method}, T={steps}, reverse={reverse}")


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 12, 13, 40])
@pytest.mark.parametrize("reverse", [False, True])
def test_every_chunk_size_gives_the_loop(chunk: int, reverse: bool) -> None:
    a, b, h0 = (t.detach() for t in _inputs(12, (3,), torch.float64, chunk))
    assert_close(_chunked(a, b, h0, reverse, chunk), reference(a, b, h0, reverse))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("method", FORMS)
def test_gradcheck_in_fp64(method: str, reverse: bool) -> None:
    _skip_without_native(method)
    a, b, h0 = _inputs(9, (2, 3), torch.float64, 3)
    with torch.no_grad():
        a.mul_(0.8).add_(0.1)  # away from 0, where the log form's clamp would show
    assert torch.autograd.gradcheck(
        lambda a, b, h0: linear_scan(a, b, h0, reverse=reverse, method=method), (a, b, h0)
    )


def _saturated(steps: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """A minGRU's coefficients with update gates pushed to saturation both ways."""
    gen = torch.Generator().manual_seed(0)
    k = 40 * torch.randn(steps, 2, 8, generator=gen, dtype=torch.float64)  # |k| up to ~150
    k[:, 0] = k[:, 0].abs()  # one sequence always writes (z ≈ 1): a underflows to 0
    k[:, 1, :4] = -k[:, 1, :4].abs()  # some units always keep (z ≈ 0): a = 1 exactly
    h_tilde = 3 * torch.randn(steps, 2, 8, generator=gen, dtype=torch.float64)
    z = torch.sigmoid(k)
    a, b, h0 = 1 - z, z * h_tilde, torch.randn(2, 8, generator=gen, dtype=torch.float64)
    return [t.to(dtype).requires_grad_() for t in (a, b, h0)]


@pytest.mark.parametrize("method", FORMS)
def test_4096_saturated_steps_in_fp32_stay_finite_and_match_fp64(method: str) -> None:
    _skip_without_native(method)
    inputs = _saturated(4096, torch.float32)
    hs = linear_scan(*inputs, method=method)
    got = [hs, *torch.autograd.grad(_loss(hs), inputs)]
    for value in got:
        assert torch.isfinite(value).all(), method
    if method == "log":
        return  # finite is all it promises here; its fp32 error is documented, not tested
    exact_inputs = _saturated(4096, torch.float64)
    hs = reference(*exact_inputs, reverse=False)
    exact = [hs, *torch.autograd.grad(_loss(hs), exact_inputs)]
    for name, g, e in zip(("hs", "δa", "δb", "δh0"), got, exact, strict=True):
        torch.testing.assert_close(g.double(), e, atol=1e-5, rtol=1e-5, msg=lambda m, n=name: n + m)


def test_auto_takes_native_on_the_cpu_and_chunked_without_it() -> None:
    x = torch.zeros(2, 3)
    if native.ops() is not None:
        assert scan_method(x) == "native"
    assert scan_method(x.to(torch.bfloat16)) == "chunked"
    with native.disabled():
        assert scan_method(x) == "chunked"
        with pytest.raises(ValueError, match="method='native' needs CPU fp32/fp64"):
            linear_scan(x, x, x[0], method="native")


def test_a_failed_build_falls_back_to_the_chunked_form(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = _inputs(7, (2, 3), torch.float64, 5)
    expected = _values_and_grads(lambda a, b, h0: reference(a, b, h0, False), inputs)
    layer = rnnkit.MinLSTM(3, 4, bidirectional=True, dtype=torch.float64)
    x, lengths = torch.randn(7, 2, 3, dtype=torch.float64), torch.tensor([7, 3])
    expected_layer = layer(x, lengths=lengths)  # on the fused native kernel, if built

    def broken() -> None:
        raise OSError("no compiler on this machine")

    monkeypatch.setattr(native, "_ops", None)
    monkeypatch.setattr(native, "_failure", None)
    monkeypatch.setattr(native, "_build", broken)
    with pytest.warns(RuntimeWarning, match="could not be built.*no compiler on this machine"):
        assert scan_method(inputs[0]) == "chunked"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, not at every call
        got = _values_and_grads(lambda a, b, h0: linear_scan(a, b, h0), inputs)
        got_layer = layer(x, lengths=lengths)  # the layer's gates in torch, then chunked
    _check(got, expected, "chunked", "after a failed build")
    for g, e in zip(got_layer, expected_layer, strict=True):
        assert_close(g, e, what="a layer after a failed build")


def test_shapes_and_methods_are_checked() -> None:
    a = torch.zeros(4, 2, 3)
    with pytest.raises(
        ValueError, match=r"h0 of shape \(\.\.\.\), got a \(4, 2, 3\), b \(4, 2, 3\), h0 \(3,\)"
    ):
        linear_scan(a, a, torch.zeros(3))
    with pytest.raises(ValueError, match="method must be one of"):
        linear_scan(a, a, a[0], method="cuda")

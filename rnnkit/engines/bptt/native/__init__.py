"""Native (C++) kernels of rnnkit's engines on the CPU, built on first use.

* ``recurrence.cpp``: the BPTT engine's LSTM and GRU time loops. The Python loops in
  :mod:`rnnkit.engines.bptt.lstm` and :mod:`~rnnkit.engines.bptt.gru` run one small ATen
  op per piece of a step's element-wise work (a dozen or so per step, forward and
  backward), each a separate pass over ``(B, ·)`` memory plus dispatch overhead; the C++
  loop runs the same algorithm, with the same buffers, as one loop per direction: per
  step the ATen GEMM, then one fused pass per batch row for the gates, layer norms,
  peepholes and zoneout, rows spread over threads.
* ``scan.cpp``: the scan engine's linear recurrence ``h_t = a_t ⊙ h_{t-1} + b_t`` and its
  backward (:mod:`rnnkit.engines.linear`), one memory pass each, vectorised and threaded
  over the ``B·H`` independent columns; and the same fused with the minimal cells' gates.
* ``activations.h``: the vectorisable ``exp``, ``sigmoid`` and ``tanh`` both share.

The Python loops (and the scan engine's pure torch forms) stay as the reference path;
tests check that both agree (outputs, gradients and fp64 ``gradcheck``). Both files build
into one library, ``torch.ops.rnnkit_native``, so one build, one switch and one
:func:`status` cover every engine.

The kernels are compiled on first use with :func:`torch.utils.cpp_extension.load`
(a C++ compiler and ``ninja`` are needed; the build takes about half a minute and is
cached under ``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``).
Where they cannot be built, or where ``RNNKIT_NATIVE=0`` is set, the engines run their
Python forms, with the same results. :func:`status` says which, and why.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnkit.cells.options import LAYER_NORM_EPS

SOURCES = tuple(Path(__file__).with_name(name) for name in ("recurrence.cpp", "scan.cpp"))
HEADERS = (Path(__file__).with_name("activations.h"),)
ENV_SWITCH = "RNNKIT_NATIVE"
"""Set to ``0`` to keep the engines on their Python forms (never build the kernels)."""

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_ops: Any = None
_failure: str | None = None
_enabled = True


def _cpu_flags() -> list[str]:
    """Vector instructions for the build: AVX2 + FMA where this CPU has them."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split() for line in info.splitlines() if line.startswith("flags")), [])
    return ["-mavx2", "-mfma"] if {"avx2", "fma"} <= set(flags) else []


def _build() -> Any:
    from torch.utils import cpp_extension  # imported late: it is slow to import

    _log.info(
        "rnnkit: loading the engines' native kernels (the first time on this machine "
        "they are compiled: about half a minute)"
    )
    # No -ffast-math: IEEE arithmetic is kept; these two only let loops with a division
    # or a conversion vectorise (torch builds with them too).
    flags = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", *_cpu_flags()]
    # The name carries a hash of the source and flags, so an upgraded rnnkit or another
    # CPU never loads a stale build from the shared cache.
    source = b"".join(path.read_bytes() for path in SOURCES + HEADERS)
    digest = hashlib.sha1(source + " ".join(flags).encode()).hexdigest()[:10]
    cpp_extension.load(
        name=f"rnnkit_native_{digest}",
        sources=[str(path) for path in SOURCES],
        extra_cflags=flags,
        extra_ldflags=["-fopenmp"],
        is_python_module=False,
        verbose=False,
    )
    return torch.ops.rnnkit_native


def ops() -> Any:
    """The kernels (``torch.ops.rnnkit_native``), built on first call; ``None`` if unavailable.

    Never raises: a failed build is remembered (see :func:`status`), reported once with
    a :class:`RuntimeWarning`, and the engines keep to their Python forms.
    """
    global _ops, _failure
    if _switched_off():
        return None
    if _ops is not None or _failure is not None:
        return _ops
    with _lock:
        if _ops is None and _failure is None:
            try:
                _ops = _build()
            except Exception as error:  # a missing compiler, ninja, headers, ...
                _failure = f"{type(error).__name__}: {error}".strip()
                warnings.warn(
                    "rnnkit: the native kernels could not be built, so the BPTT and scan "
                    f"engines run their Python forms (same results, slower): {_failure[:500]}",
                    RuntimeWarning,
                    stacklevel=2,
                )
    return _ops


def _switched_off() -> bool:
    return not _enabled or os.environ.get(ENV_SWITCH, "1") == "0"


def usable(like: Tensor) -> Any:
    """The kernels if they apply to tensors like ``like`` (CPU, fp32 or fp64), else ``None``."""
    if like.device.type != "cpu" or like.dtype not in (torch.float32, torch.float64):
        return None
    return ops()


def forward_loop(
    family: str, python_loop: Callable[..., tuple[Tensor | None, ...]], args: tuple[Any, ...]
) -> tuple[Tensor | None, ...]:
    """A recurrence's forward loop: ``{family}_forward`` in C++ where the kernels apply to
    ``args[0]``, else ``python_loop(*args)``; the same buffers either way."""
    kernels = usable(args[0])
    if kernels is None:
        return python_loop(*args)
    return tuple(getattr(kernels, f"{family}_forward")(*args, LAYER_NORM_EPS))


def status() -> str:
    """Whether the BPTT engine's loops and the scan engine's recurrence run natively, or why not."""
    if _switched_off():
        return f"python loops (native kernels switched off: {ENV_SWITCH}=0 or disabled())"
    if ops() is not None:
        return "native kernels (C++, CPU fp32/fp64); Python loops on other devices and dtypes"
    return f"python loops (native kernels unavailable: {_failure})"


@contextmanager
def disabled() -> Iterator[None]:
    """Run the engines on their Python forms inside the block (the reference path)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def keep_layout(keep: Tensor | None) -> Tensor | None:
    """A keep-weight tensor in the layout the kernels read: last dim of stride 1, or of size 1."""
    if keep is None or keep.shape[-1] == 1 or keep.stride(-1) == 1:
        return keep
    return keep.contiguous()

"""The exporter's user error (the CLI reports it in one line, exit code 2)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from rnnkit.errors import RnnkitError


class ExportError(RnnkitError, ValueError):
    """A run, format or option the exporter cannot handle; the message says what to do."""


MISSING_EXTRA = "rnnkit export needs the export extra: pip install 'rnnkit[export]'"
"""The message when onnx / onnxruntime / onnxscript are not installed."""


@contextmanager
def quiet_logs(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise the level of the named loggers (``""``: the root) for a block.

    The exporters log advice that is not about the user's model (PyTorch's ONNX registry
    misses torchvision; ONNX Runtime's quantiser suggests pre-processing on the root logger).
    """
    loggers = [logging.getLogger(name or None) for name in names]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, previous, strict=True):
            logger.setLevel(old)


@contextmanager
def quiet_pytree_warning() -> Iterator[None]:
    """Hide a deprecation notice that PyTorch's own pytree code raises while exporting."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        yield

"""``rnnkit train`` in a child process that stops at a named point, so a test can kill it.

Usage::

    python crash_child.py POINT MARKER rnnkit-arguments...

``POINT`` is ``batch:E:B`` (before training batch ``B`` of epoch ``E``, both 0-based)
or ``write:NAME:K`` (the ``K``-th atomic write of the run file ``NAME``, 1-based,
once its bytes are in the temporary file and before the rename; the temporary file
is cut to half its size first, so the kill leaves a half-written file on disk).
At the point the child creates ``MARKER`` and sleeps until it is killed; if the
point is never reached it finishes normally.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L

from rnnkit.cli import main
from rnnkit.training import checkpoint, run


def _stop(marker: Path) -> None:
    marker.write_text("stopped")
    time.sleep(600)


def _stop_at_write(name: str, count: int, marker: Path) -> None:
    flush, seen = checkpoint._flush, [0]

    def stopping_flush(tmp: Path) -> None:
        match = re.fullmatch(r"\.(.*)\.tmp-\d+(.*)", tmp.name)
        if match and "".join(match.groups()) == name:
            seen[0] += 1
            if seen[0] == count:
                tmp.write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
                _stop(marker)
        flush(tmp)

    checkpoint._flush = stopping_flush


class _StopAtBatch(L.Callback):
    def __init__(self, epoch: int, batch: int, marker: Path) -> None:
        self.epoch, self.batch, self.marker = epoch, batch, marker

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if (trainer.current_epoch, args[-1]) == (self.epoch, self.batch):
            _stop(self.marker)


def _stop_at_batch(epoch: int, batch: int, marker: Path) -> None:
    callbacks = run._callbacks
    run._callbacks = lambda *a: [*callbacks(*a), _StopAtBatch(epoch, batch, marker)]  # type: ignore[assignment]


if __name__ == "__main__":
    point, marker, *arguments = sys.argv[1:]
    kind, what, number = point.split(":")
    if kind == "write":
        _stop_at_write(what, int(number), Path(marker))
    else:
        _stop_at_batch(int(what), int(number), Path(marker))
    sys.exit(main(arguments))

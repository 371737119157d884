"""``rnnkit info``: versions, devices and engines of this installation."""

from __future__ import annotations

import argparse
import platform

from rnnkit.cli._registry import Command, register


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def _run(args: argparse.Namespace) -> int:
    import torch

    import rnnkit
    from rnnkit.engines.bptt import native
    from rnnkit.layers import ENGINES

    lines = [
        f"rnnkit {rnnkit.__version__}",
        f"python {platform.python_version()} on {platform.machine()}",
        f"torch {torch.__version__} ({torch.get_num_threads()} CPU threads)",
        f"cuda available: {torch.cuda.is_available()}"
        + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""),
        f"cudnn: {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'no'}",
        f"onednn (mkldnn): {torch.backends.mkldnn.is_available()}",
        f"layer engines: {', '.join(ENGINES)}",
        f"bptt engine loops: {native.status()}",
    ]
    print("\n".join(lines))
    return 0


register(Command("info", "show versions, devices and engines", _add_arguments, _run))

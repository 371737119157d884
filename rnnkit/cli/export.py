"""``rnnkit export RUN_DIR --format onnx|torch-export [--quantize int8] --out FILE``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rnnkit.cli._registry import Command, register


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory written by `rnnkit train`")
    # No argparse choices: a wrong format is reported in one line, as other input errors.
    parser.add_argument("--format", required=True, help="onnx or torch-export")
    parser.add_argument("--quantize", help="int8: dynamic int8 weights (onnx only)")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the file to write (.onnx / .pt2); an encoder-decoder's decoder step goes beside "
        "it as <stem>.decoder_step<suffix>",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable summary")


def _run(args: argparse.Namespace) -> int:
    from rnnkit.export import export_run

    result = export_run(args.run_dir, args.format, args.out, quantize=args.quantize)
    summary = {
        "files": {role: str(path) for role, path in result.files.items()},
        "kind": result.metadata["model"]["kind"],
        "format": args.format,
        "quantization": result.metadata["quantization"],
        "errors": result.errors,
        "quantized_errors": result.quantized_errors,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for role, path in result.files.items():
        checked = result.errors.get(role)
        note = f" (checked: {checked:.1e} of the output's scale)" if checked is not None else ""
        drift = result.quantized_errors.get(role)
        note += f" (int8 vs fp32: {drift:.1e})" if drift is not None else ""
        print(f"{role}: {path}{note}")
    return 0


register(Command("export", "export a trained run to ONNX or torch.export", _add_arguments, _run))

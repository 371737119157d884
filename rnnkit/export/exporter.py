"""``export_run``: a trained run (or a model) → ONNX or torch.export files, checked.

The steps, for each graph of the model kind (:mod:`rnnkit.export.graphs`):

1. a copy of the model in eval mode, its recurrent layers in their export form
   (:mod:`rnnkit.export.recurrence`: ONNX's own operators where a cell has one for ONNX,
   ``torch``'s ``scan`` otherwise);
2. ``torch.export.export`` with dynamic batch and time axes, on a ragged example batch;
3. the file: ONNX (:mod:`rnnkit.export.onnx`) or a ``.pt2`` archive
   (:mod:`rnnkit.export.torch_export`), with the metadata (:mod:`rnnkit.export.metadata`);
4. the check: the file, loaded back, against the original model in eval mode on a batch
   of another size and length (ragged, with a length-1 and a full-length sequence);
   a difference above :data:`TOLERANCE` times the output's scale is an error.

With ``quantize="int8"`` (ONNX only) the checked fp32 file is then quantised
(:mod:`rnnkit.export.quantize`) and the result's difference from fp32 is reported.
"""

from __future__ import annotations

import copy
import inspect
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.config import config_to_dict
from rnnkit.export.errors import ExportError, quiet_pytree_warning
from rnnkit.export.graphs import ExportPlan, Graph, plan_for
from rnnkit.export.metadata import build_metadata, data_metadata
from rnnkit.export.recurrence import export_form

FORMATS = ("onnx", "torch-export")
"""The formats of :func:`export_run`."""

QUANTIZATIONS = ("int8",)
"""The values of ``quantize=`` (ONNX only): dynamic int8 (:mod:`rnnkit.export.quantize`)."""

SUFFIXES = {"onnx": ".onnx", "torch-export": ".pt2"}

TOLERANCE = 1e-4
"""Largest ``max |exported - eager| / max(1, max |eager|)`` the check accepts (fp32)."""

TRACE_SIZES = (3, 7)
"""Batch size and steps of the example the graphs are traced with."""

CHECK_SIZES = (5, 11)
"""Batch size and steps of the check batch (different from the traced ones on purpose)."""


@dataclass
class ExportResult:
    """What :func:`export_run` wrote.

    Attributes:
        files: graph role → file (``model``; ``step``; ``encoder`` and ``decoder_step``).
        metadata: the metadata every file carries.
        errors: graph role → ``max |exported - eager| / max(1, max |eager|)`` on the check
            batch (fp32), or empty without a check.
        quantized_errors: the same for the int8 file against the fp32 model.
    """

    files: dict[str, Path]
    metadata: dict[str, Any]
    errors: dict[str, float] = field(default_factory=dict)
    quantized_errors: dict[str, float] = field(default_factory=dict)


def export_run(
    run: Any,
    format: str,
    out: str | Path,
    *,
    quantize: str | None = None,
    check: bool = True,
) -> ExportResult:
    """Export a trained run's model with everything a consumer needs to apply it.

    Arguments:
        run: a run directory, or a :class:`~rnnkit.training.run.LoadedRun`.
        format: ``"onnx"`` or ``"torch-export"``.
        out: the file to write (``.onnx`` / ``.pt2``); an encoder–decoder's second graph
            goes beside it as ``<stem>.decoder_step<suffix>``.
        quantize: ``"int8"`` for dynamic int8 weights (ONNX only), or ``None``.
        check: load the files back and compare them with the model (see the module
            docstring); a mismatch raises :class:`ExportError`.

    Returns:
        An :class:`ExportResult`.

    Example::

        >>> result = export_run("runs/digits", "onnx", "digits.onnx")
        >>> result.files, result.errors
        ({'model': PosixPath('digits.onnx')}, {'model': 2.1e-07})
    """
    check_options(format, quantize)
    from rnnkit.training.predict import run_datamodule
    from rnnkit.training.run import LoadedRun, load_run

    loaded = run if isinstance(run, LoadedRun) else load_run(run)
    config = loaded.config
    try:
        datamodule = run_datamodule(loaded)
    except Exception:  # the data description is a courtesy; the graphs do not need it
        datamodule = None
    context = {
        "task": config.task.name,
        "run": {"name": config.name, "description": getattr(config, "description", "")},
        "data": data_metadata(config, loaded.data_state, datamodule),
    }
    return export_model(
        loaded.model,
        format,
        out,
        kind=config.model.name,
        quantize=quantize,
        check=check,
        context=context,
    )


def check_options(format: str, quantize: str | None) -> None:
    """Raise :class:`ExportError` for an unknown format or quantisation."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ExportError(
            f"unknown quantization {quantize!r}; expected one of {', '.join(QUANTIZATIONS)}"
        )
    if quantize is not None and format != "onnx":
        raise ExportError(
            f"--quantize {quantize} applies to --format onnx (ONNX Runtime's dynamic int8); "
            "for PyTorch, rnnkit.export.quantize_model(model) gives an int8 CPU model"
        )


def export_model(
    model: nn.Module,
    format: str,
    out: str | Path,
    *,
    kind: str | None = None,
    quantize: str | None = None,
    check: bool = True,
    context: dict[str, Any] | None = None,
) -> ExportResult:
    """Export a model (no run directory): :func:`export_run` without the data metadata.

    Arguments:
        model: an rnnkit model (any kind in :data:`rnnkit.export.graphs.PLANS`).
        format, out, quantize, check: as :func:`export_run`.
        kind: its ``MODELS`` name (found from its class when ``None``).
        context: ``task``, ``run`` and ``data`` entries of the metadata.
    """
    check_options(format, quantize)
    if format == "onnx":
        from rnnkit.export.onnx import require_extra

        require_extra()  # before any tracing
    kind = kind or model_kind(model)
    reference = plan_for(kind, copy.deepcopy(model).eval())
    exported = copy.deepcopy(model).eval().requires_grad_(False)
    plan = plan_for(kind, exported)
    export_form(exported, form="native" if format == "onnx" else "scan")
    generator = torch.Generator().manual_seed(0)
    examples = reference.examples(*TRACE_SIZES, generator)
    programs = {g.role: trace(g, examples[g.role]) for g in plan.graphs}
    files = graph_files(Path(out), plan, format)
    metadata = _metadata(model, kind, plan, files, format, quantize, context or {})
    result = ExportResult(files, metadata)
    with tempfile.TemporaryDirectory() as tmp:
        written = files if quantize is None else {r: Path(tmp) / p.name for r, p in files.items()}
        for graph in plan.graphs:
            _write(programs[graph.role], graph, written[graph.role], format, metadata)
        if check:
            result.errors = check_files(written, format, reference, generator)
        if quantize is not None:
            from rnnkit.export.quantize import quantize_onnx

            for role, path in written.items():
                quantize_onnx(path, files[role], metadata=metadata)
            result.quantized_errors = check_files(
                files, format, reference, generator, tolerance=None
            )
    return result


def model_kind(model: nn.Module) -> str:
    """The ``MODELS`` name of ``model``'s class."""
    from rnnkit.models import MODELS

    for name in MODELS.names():
        if type(model) is MODELS.get(name):
            return name
    raise ExportError(
        f"cannot export a {type(model).__name__}: it is not a registered rnnkit model "
        f"({', '.join(MODELS.names())})"
    )


def graph_files(out: Path, plan: ExportPlan, format: str) -> dict[str, Path]:
    """Where each graph goes: ``out`` for the first, ``<stem>.<role><suffix>`` beside it."""
    suffix = out.suffix or SUFFIXES[format]
    if not out.parent.is_dir():
        raise FileNotFoundError(f"cannot write {out}: the directory {out.parent} does not exist")
    files = {plan.graphs[0].role: out}
    for graph in plan.graphs[1:]:
        files[graph.role] = out.with_name(f"{out.stem}.{graph.role}{suffix}")
    return files


def dynamic_shapes(graph: Graph) -> tuple[Any, ...]:
    """``torch.export`` dynamic shapes: one ``Dim`` per axis name, shared across inputs,
    grouped as the module's ``forward`` takes its arguments (a ``*state`` is one tuple)."""
    dims: dict[str, Any] = {}
    shapes: list[Any] = []
    for spec in graph.inputs:
        axes = {}
        for i, size in enumerate(spec.shape):
            if isinstance(size, str):
                axes[i] = dims.setdefault(size, torch.export.Dim(size, min=1))
        shapes.append(axes)
    parameters = inspect.signature(graph.module.forward).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        named = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)
        return (*shapes[:named], tuple(shapes[named:]))
    return tuple(shapes)


def trace(graph: Graph, example: tuple[Tensor, ...]) -> torch.export.ExportedProgram:
    """``torch.export`` of one graph with its dynamic axes; failures as :class:`ExportError`."""
    try:
        with quiet_pytree_warning():
            return torch.export.export(
                graph.module, example, dynamic_shapes=dynamic_shapes(graph), strict=False
            )
    except ExportError:
        raise
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(
            f"the {graph.role} graph does not trace with dynamic batch and time axes: {first}"
        ) from err


def _metadata(
    model: nn.Module,
    kind: str,
    plan: ExportPlan,
    files: dict[str, Path],
    format: str,
    quantize: str | None,
    context: dict[str, Any],
) -> dict[str, Any]:
    from rnnkit.export.onnx import OPSET

    graphs = {
        g.role: {
            "file": files[g.role].name,
            "inputs": [s.to_dict() for s in g.inputs],
            "outputs": [s.to_dict() for s in g.outputs],
        }
        for g in plan.graphs
    }
    config = getattr(model, "config", None)
    return build_metadata(
        kind=kind,
        model_config=config_to_dict(config) if config is not None else {},
        graphs=graphs,
        format=format,
        opset=OPSET if format == "onnx" else None,
        quantization=None if quantize is None else f"{quantize}-dynamic",
        notes=plan.notes,
        **context,
    )


def _write(
    program: torch.export.ExportedProgram,
    graph: Graph,
    path: Path,
    format: str,
    metadata: dict[str, Any],
) -> None:
    if format == "onnx":
        from rnnkit.export.onnx import to_onnx

        to_onnx(
            program,
            path,
            input_names=graph.input_names,
            output_names=graph.output_names,
            metadata=metadata,
        )
    else:
        from rnnkit.export.torch_export import save_program

        save_program(program, path, metadata=metadata)


# -- the check ------------------------------------------------------------------------


def relative_error(actual: Tensor, expected: Tensor) -> float:
    """``max |actual - expected| / max(1, max |expected|)`` (exact match for bool outputs)."""
    if expected.dtype == torch.bool:
        return 0.0 if torch.equal(actual.bool(), expected) else float("inf")
    if actual.shape != expected.shape:
        return float("inf")
    expected = expected.float()
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    return float((actual.float() - expected).abs().max()) / scale if expected.numel() else 0.0


def load_runner(path: Path, format: str) -> Any:
    """A callable ``inputs -> list of output tensors`` for an exported file."""
    if format == "onnx":
        from rnnkit.export.onnx import run, session

        sess = session(path)
        names = [i.name for i in sess.get_inputs()]
        return lambda *inputs: [torch.from_numpy(o) for o in run(sess, names, inputs)]
    from rnnkit.export.torch_export import load_program

    module = load_program(path)[0].module()
    return lambda *inputs: list(_as_tuple(module(*inputs)))


def check_files(
    files: dict[str, Path],
    format: str,
    reference: ExportPlan,
    generator: torch.Generator,
    *,
    tolerance: float | None = TOLERANCE,
) -> dict[str, float]:
    """Each file's error against the eager model on a check batch (:data:`CHECK_SIZES`).

    Raises :class:`ExportError` when an error exceeds ``tolerance`` (``None``: report only).
    """
    examples = reference.examples(*CHECK_SIZES, generator)
    errors = {}
    for graph in reference.graphs:
        inputs = examples[graph.role]
        with torch.no_grad():
            expected = _as_tuple(graph.module(*inputs))
        actual = load_runner(files[graph.role], format)(*inputs)
        errors[graph.role] = max(
            relative_error(a, e) for a, e in zip(actual, expected, strict=True)
        )
        if tolerance is not None and errors[graph.role] > tolerance:
            raise ExportError(
                f"the exported {graph.role} graph ({files[graph.role].name}) differs from the "
                f"model by {errors[graph.role]:.2e} of the output's scale (tolerance "
                f"{tolerance:.0e})"
            )
    return errors


def _as_tuple(value: Any) -> tuple[Tensor, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)

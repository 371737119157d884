"""Which engine a layer call runs on: the one rule, for every rnnkit layer.

:class:`rnnkit.Recurrent`, the drop-in :class:`rnnkit.RNN`/``LSTM``/``GRU`` and
:class:`rnnkit.MinGRU`/``MinLSTM`` describe a call by its :class:`EngineFacts` and ask
:func:`select_engine`; ``layer.engine_for(...)`` and ``layer.active_engine`` are that
question. The rule, for ``engine="auto"``, first matching row wins:

===  ==============================================================  ======================
row  the call                                                        engine
===  ==============================================================  ======================
1    the cells are linear in their state (``MinGRU``, ``MinLSTM``,   ``scan``; ``loop`` if
     a ``Recurrent`` of cells with ``coefficients``, see             ``record_steps`` is
     :class:`~rnnkit.cells.base.LinearCell`)                         active
2    a variant changes the forward pass (layer norm, peepholes,      ``bptt``; ``loop`` if
     zoneout, dropouts), or the layer has no fused kernels           the BPTT engine
     (``Recurrent``)                                                 refuses the cells or
                                                                     ``record_steps`` is
                                                                     active
3    ``return_states=True`` (fused kernels keep only the last        ``loop``
     state; ``record_steps`` users rely on this row)
4    ragged lengths, training on the CPU (grad enabled and a         ``bptt``
     parameter that needs it), the BPTT engine takes the cells and
     no ``record_steps`` block: there the packed fused kernel's
     backward costs 2.6–4× the BPTT engine's (``docs/benchmarks.md``)
5    anything else (init-only options such as ``forget_bias`` too)   ``fused``
===  ==============================================================  ======================

The BPTT engine refuses a ``Recurrent`` whose cells have no registered backward
(:func:`rnnkit.engines.bptt.register_backward`) or an unsupported configuration (an
``LSTMCell`` with ``proj_size``), a drop-in ``LSTM`` with ``proj_size``, and the minimal
layers (their fast path is the scan engine).

A forced engine (``engine="fused"``, ``"bptt"``, ``"scan"`` or ``"loop"``, or
:func:`rnnkit.layers.use_engine`) runs if it can, else raises a ``ValueError`` that says
why: ``fused`` with a variant that changes the forward pass or with ``return_states``,
``fused`` on a layer without fused kernels, ``bptt`` where the BPTT engine refuses the
cells, ``scan`` where a cell is not linear in its state. ``loop`` runs everything.
"""

from __future__ import annotations

from dataclasses import dataclass

ENGINES = ("auto", "fused", "bptt", "scan", "loop")
"""The values of a layer's ``engine=``: ``"auto"`` picks by the rule above."""


@dataclass(frozen=True)
class EngineFacts:
    """What the engine rule looks at for one layer call.

    Attributes:
        layer: the layer's name, for error messages.
        forced: the layer's ``engine=`` (``"auto"`` or the engine to force).
        fused_kernel: the layer has torch's fused kernels (the drop-in layers).
        variant: the variant options, described, if any changes the forward pass
            (``VariantOptions.describe()``), else ``""``.
        bptt_refusal: why the BPTT engine cannot run the layer's cells, or ``None``.
        linear: every cell is linear in its state, so the scan engine runs the layer.
        return_states: the call asks for every step's state.
        ragged: the batch's lengths differ from the number of steps somewhere.
        cpu_training: the call runs on the CPU with grad enabled and a parameter that
            needs it.
        recording: a :func:`rnnkit.engines.record_steps` block is active.
    """

    layer: str
    forced: str = "auto"
    fused_kernel: bool = False
    variant: str = ""
    bptt_refusal: str | None = None
    linear: bool = False
    return_states: bool = False
    ragged: bool = False
    cpu_training: bool = False
    recording: bool = False


def select_engine(facts: EngineFacts) -> str:
    """The engine a call with these facts runs on: ``"fused"``, ``"bptt"``, ``"scan"``, ``"loop"``.

    See the module docstring for the rule; a forced engine that cannot run raises.
    """
    if facts.forced == "auto":
        return _automatic(facts)
    if facts.forced not in ENGINES:
        raise ValueError(f"{facts.layer}: engine must be one of {ENGINES}, got {facts.forced!r}")
    if facts.forced == "fused":
        _check_fused(facts)
    if facts.forced == "bptt" and facts.bptt_refusal is not None:
        raise ValueError(facts.bptt_refusal)
    if facts.forced == "scan" and not facts.linear:
        raise ValueError(
            f"{facts.layer}: the scan engine runs only cells linear in their state "
            "(MinGRUCell, MinLSTMCell, a LinearCell); use engine='auto', 'bptt' or 'loop'"
        )
    return facts.forced


def _automatic(facts: EngineFacts) -> str:
    if facts.linear:  # row 1
        return "loop" if facts.recording else "scan"
    bptt_possible = facts.bptt_refusal is None and not facts.recording
    if facts.variant or not facts.fused_kernel:  # row 2
        return "bptt" if bptt_possible else "loop"
    if facts.return_states:  # row 3
        return "loop"
    if facts.ragged and facts.cpu_training and bptt_possible:  # row 4
        return "bptt"
    return "fused"  # row 5


def _check_fused(facts: EngineFacts) -> None:
    name = facts.layer
    if not facts.fused_kernel:
        raise ValueError(f"{name}: has no fused kernels; use engine='auto', 'bptt' or 'loop'")
    if facts.variant:
        raise ValueError(
            f"{name}: fused kernels cannot run the variant options "
            f"({facts.variant}); use engine='auto', 'bptt' or 'loop'"
        )
    if facts.return_states:
        raise ValueError(
            f"{name}: return_states=True needs the 'loop' engine (fused "
            "kernels keep only the last state); use engine='auto' or engine='loop'"
        )

"""What each model kind exports: its graphs, their named inputs and outputs, and examples.

=========================  ==============================  ===================================
model kind                 graphs                          inputs → outputs
=========================  ==============================  ===================================
``classifier``             ``model``                       ``inputs, lengths → logits``
``tagger``                 ``model``                       ``inputs, lengths → logits``
``forecaster``             ``model``                       ``window, lengths → forecast``
``language_model``         ``step``                        ``tokens, h0[, c0] → logits, h_n[, c_n]``
``seq2seq``                ``encoder``, ``decoder_step``   ``src, src_lengths → memory, keys,
                                                           src_mask, h0[, c0]``;
                                                           ``tokens, h0[, c0], memory, keys,
                                                           src_mask → logits, h_n[, c_n],
                                                           attention``
``conditional_generator``  ``encoder``, ``decoder_step``   ``images → h0[, c0][, feed]``;
                                                           ``tokens, h0[, c0][, feed] →
                                                           logits, h_n[, c_n]``
=========================  ==============================  ===================================

The state leaves are named after the state's fields (an LSTM's ``h``, ``c``): ``h0`` in,
``h_n`` out, each ``(L, B, H)``; the encoder's outputs carry the decoder step's input
names, so they feed it as they are. Axes named by a string (``batch``, ``time``,
``source_time``) are dynamic. A model's graphs are built from its export form
(:func:`rnnkit.export.recurrence.export_form`) and run its own modules otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells.base import State, map_state, state_leaves
from rnnkit.export.errors import ExportError
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.models.conditional import ConditionalGenerator
from rnnkit.models.decoder import EncoderMemory
from rnnkit.models.forecaster import Forecaster
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.models.states import probe_stack, state_from_leaves
from rnnkit.models.tagger import LanguageModel, SequenceTagger
from rnnkit.registry import Registry

Shape = tuple[int | str, ...]

IMAGE_SIZE = (28, 28)
"""The image size of an exported CNN encoder (the digits' and Fashion-MNIST's)."""


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output.

    Attributes:
        name: its name in the graph.
        dtype: ``"float32"``, ``"int64"`` or ``"bool"``.
        shape: sizes; a string names a dynamic axis (``"batch"``, ``"time"``, ...).
        doc: what it holds.
    """

    name: str
    dtype: str
    shape: Shape
    doc: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "doc": self.doc}


@dataclass
class Graph:
    """One exported graph.

    Attributes:
        role: ``"model"``, ``"step"``, ``"encoder"`` or ``"decoder_step"``.
        module: takes the inputs positionally, returns the outputs as a tuple.
        inputs, outputs: their specs, in order.
    """

    role: str
    module: nn.Module
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]


Examples = Callable[[int, int, torch.Generator], dict[str, tuple[Tensor, ...]]]
"""``examples(batch, steps, generator) -> {role: inputs}``: consistent inputs for every
graph (a decoder step's come from running the encoder), ragged where lengths apply."""


@dataclass
class ExportPlan:
    """The graphs of one model and how to make example inputs for them.

    Attributes:
        kind: the model kind (its ``MODELS`` name).
        graphs: in the order a consumer runs them.
        examples: see :data:`Examples`.
        notes: facts a consumer needs (special token ids, image size, ...).
    """

    kind: str
    graphs: list[Graph]
    examples: Examples
    notes: dict[str, Any] = field(default_factory=dict)


PLANS: Registry[Callable[[nn.Module], ExportPlan]] = Registry("exportable model kind")
"""Model kind → ``plan(model)``, for the models in ``rnnkit.models.MODELS``."""


def plan_for(kind: str, model: nn.Module) -> ExportPlan:
    """The export plan of ``model`` (already in its export form), a ``kind`` model."""
    if kind not in PLANS:
        raise ExportError(
            f"cannot export a {kind!r} model: the exporter knows {', '.join(PLANS.names())}"
        )
    return PLANS.get(kind)(model)


# -- example inputs -----------------------------------------------------------------


def ragged_lengths(batch: int, steps: int, generator: torch.Generator) -> Tensor:
    """``(B,)`` lengths in ``[1, T]`` with a full-length one, (``B > 1``) a length-1 one
    and (``B >= 6``) an empty one, which the exported graphs treat as rnnkit does."""
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[0] = steps
    if batch > 1:
        lengths[1] = 1
    if batch >= 6:
        lengths[2] = 0
    return lengths


def _tokens(shape: Sequence[int], vocab: int, generator: torch.Generator, low: int = 0) -> Tensor:
    return torch.randint(low, vocab, tuple(shape), generator=generator)


def _sequence_inputs(model: nn.Module, batch: int, steps: int, g: torch.Generator) -> Tensor:
    spec = model.config.input  # type: ignore[union-attr]
    if spec.tokens:
        return _tokens((batch, steps), spec.vocab_size, g, low=1)
    return torch.randn(batch, steps, spec.input_size, generator=g)


def _input_spec(model: nn.Module) -> TensorSpec:
    spec = model.config.input  # type: ignore[union-attr]
    if spec.tokens:
        return TensorSpec("inputs", "int64", ("batch", "time"), "token ids")
    return TensorSpec("inputs", "float32", ("batch", "time", spec.input_size), "features")


LENGTHS = TensorSpec("lengths", "int64", ("batch",), "valid steps of each sequence")


# -- states -------------------------------------------------------------------------


def leaf_names(template: State) -> list[str]:
    """Names of a state's leaves: its fields (``h``, ``c``), or ``h`` for one tensor."""
    if isinstance(template, Tensor):
        return ["h"]
    fields = getattr(template, "_fields", None)
    names: list[str] = []
    for i, part in enumerate(template):
        base = fields[i] if fields else f"s{i}"
        sub = leaf_names(part)
        names.extend([base] if sub == ["h"] else [f"{base}_{s}" for s in sub])
    return names


def _state_specs(template: State, suffix: str, what: str) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(f"{name}{suffix}", "float32", (leaf.shape[0], "batch", leaf.shape[-1]), what)
        for name, leaf in zip(leaf_names(template), state_leaves(template), strict=True)
    )


def _meta(template: State) -> State:
    """A state's structure only (leaves on the meta device), kept by the graph modules."""
    return map_state(lambda s: s.detach().to("meta"), template)


# -- the graph modules --------------------------------------------------------------


class _Classify(nn.Module):
    """``inputs, lengths → logits`` (classifier, tagger, forecaster)."""

    def __init__(self, model: nn.Module, *, per_step_state: bool = False) -> None:
        super().__init__()
        self.model, self.per_step_state = model, per_step_state

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        out = self.model(inputs, lengths)
        return out[0] if self.per_step_state else out  # a tagger also returns its state


class _TokenStep(nn.Module):
    """``tokens, *state → logits, *new state`` (a language model's step or chunk)."""

    def __init__(self, model: nn.Module, template: State) -> None:
        super().__init__()
        self.model, self.template = model, _meta(template)

    def forward(self, tokens: Tensor, *leaves: Tensor) -> tuple[Tensor, ...]:
        state = state_from_leaves(self.template, list(leaves))
        logits, state = self.model(tokens, None, state)
        return (logits, *state_leaves(state))


class _EncodeSource(nn.Module):
    """``src, src_lengths → [memory, keys, src_mask,] *decoder state`` (``Seq2Seq``)."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        memory, state = self.model.encode(src, src_lengths)
        if self.model.decoder.attention is None:
            return tuple(state_leaves(state))
        assert memory.values is not None and memory.keys is not None and memory.mask is not None
        return (memory.values, memory.keys, memory.mask, *state_leaves(state))


class _EncodeFeatures(nn.Module):
    """``images or features → *decoder state [, feed]`` (``ConditionalGenerator``)."""

    def __init__(self, model: ConditionalGenerator) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Tensor) -> tuple[Tensor, ...]:
        memory, state = self.model.encode(features)
        feed = () if memory.feed is None else (memory.feed,)
        return (*state_leaves(state), *feed)


class _DecoderStep(nn.Module):
    """``tokens, *state[, memory, keys, src_mask][, feed] → logits, *new state[, attention]``."""

    def __init__(self, model: nn.Module, *, attention: bool, feed: bool) -> None:
        super().__init__()
        self.decoder = model.decoder
        self.template = _meta(self.decoder.shape.template)
        self.attention, self.feed = attention, feed

    def forward(self, tokens: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        n = len(state_leaves(self.template))
        state = state_from_leaves(self.template, list(rest[:n]))
        values = keys = mask = feed = None
        if self.attention:
            values, keys, mask = rest[n : n + 3]
        if self.feed:
            feed = rest[-1]
        memory = EncoderMemory(values, keys, mask, feed)
        logits, state, weights = self.decoder.step(tokens, state, memory)
        attention = () if weights is None else (weights,)
        return (logits, *state_leaves(state), *attention)


# -- the plans ----------------------------------------------------------------------


def _examples_with_lengths(model: nn.Module) -> Examples:
    def make(batch: int, steps: int, g: torch.Generator) -> dict[str, tuple[Tensor, ...]]:
        return {
            "model": (_sequence_inputs(model, batch, steps, g), ragged_lengths(batch, steps, g))
        }

    return make


@PLANS.register("classifier")
def _classifier(model: SequenceClassifier) -> ExportPlan:
    logits = TensorSpec("logits", "float32", ("batch", model.config.num_classes), "no softmax")
    graph = Graph("model", _Classify(model), (_input_spec(model), LENGTHS), (logits,))
    return ExportPlan("classifier", [graph], _examples_with_lengths(model))


@PLANS.register("tagger")
def _tagger(model: SequenceTagger) -> ExportPlan:
    logits = TensorSpec(
        "logits", "float32", ("batch", "time", model.config.num_classes), "zero input past lengths"
    )
    module = _Classify(model, per_step_state=True)
    graph = Graph("model", module, (_input_spec(model), LENGTHS), (logits,))
    return ExportPlan("tagger", [graph], _examples_with_lengths(model))


@PLANS.register("forecaster")
def _forecaster(model: Forecaster) -> ExportPlan:
    config = model.config
    window = TensorSpec("window", "float32", ("batch", "time", config.input_size), "scaled")
    lengths = TensorSpec("lengths", "int64", ("batch",), "valid steps of each window")
    shape: Shape = ("batch", config.horizon)
    if config.n_targets > 1:
        shape = (*shape, config.n_targets)
    forecast = TensorSpec("forecast", "float32", shape, "scaled; invert with the target scaler")

    def examples(batch: int, steps: int, g: torch.Generator) -> dict[str, tuple[Tensor, ...]]:
        x = torch.randn(batch, steps, config.input_size, generator=g)
        return {"model": (x, ragged_lengths(batch, steps, g))}

    graph = Graph("model", _Classify(model), (window, lengths), (forecast,))
    return ExportPlan("forecaster", [graph], examples)


@PLANS.register("language_model")
def _language_model(model: LanguageModel) -> ExportPlan:
    template = probe_stack(model.rnn, model.encoder.output_size).template
    vocab = model.config.vocab_size
    tokens = TensorSpec("tokens", "int64", ("batch", "time"), "token ids; time = 1 for one step")
    logits = TensorSpec("logits", "float32", ("batch", "time", vocab), "next-token scores")
    inputs = (tokens, *_state_specs(template, "0", "state before the tokens (zeros to start)"))
    outputs = (logits, *_state_specs(template, "_n", "state after the last token"))
    layers = state_leaves(template)[0].shape[0]

    def examples(batch: int, steps: int, g: torch.Generator) -> dict[str, tuple[Tensor, ...]]:
        state = [
            0.5 * torch.randn(layers, batch, leaf.shape[-1], generator=g)
            for leaf in state_leaves(template)
        ]
        return {"step": (_tokens((batch, steps), vocab, g), *state)}

    graph = Graph("step", _TokenStep(model, template), inputs, outputs)
    return ExportPlan("language_model", [graph], examples)


def _decoder_notes(model: nn.Module) -> dict[str, Any]:
    d = model.decoder
    never = sorted({d.bos_id, d.pad_id} - {d.eos_id})
    return {
        "bos_id": d.bos_id,
        "eos_id": d.eos_id,
        "pad_id": d.pad_id,
        "never_emit": never,
        "decoding": "feed bos_id first, then each step's chosen token, until eos_id; "
        "the step's logits never pick never_emit (mask them with -inf)",
    }


@PLANS.register("seq2seq")
def _seq2seq(model: Seq2Seq) -> ExportPlan:
    config = model.config
    template = model.decoder.shape.template
    attention = model.decoder.attention is not None
    src = TensorSpec("src", "int64", ("batch", "source_time"), "source token ids")
    src_lengths = TensorSpec("src_lengths", "int64", ("batch",), "valid source steps")
    memory_specs: tuple[TensorSpec, ...] = ()
    probe = _EncodeSource(model)(
        torch.ones(1, 1, dtype=torch.long), torch.ones(1, dtype=torch.long)
    )
    if attention:
        m, k = probe[0].shape[-1], probe[1].shape[-1]
        memory_specs = (
            TensorSpec("memory", "float32", ("batch", "source_time", m), "encoder outputs"),
            TensorSpec("keys", "float32", ("batch", "source_time", k), "attention keys"),
            TensorSpec("src_mask", "bool", ("batch", "source_time"), "true at valid positions"),
        )
    initial = _state_specs(template, "0", "decoder state")
    encoder = Graph("encoder", _EncodeSource(model), (src, src_lengths), (*memory_specs, *initial))
    tokens = TensorSpec("tokens", "int64", ("batch",), "previous tokens (bos_id first)")
    logits = TensorSpec("logits", "float32", ("batch", config.tgt_vocab_size), "next-token scores")
    weights = (
        (TensorSpec("attention", "float32", ("batch", "source_time"), "attention weights"),)
        if attention
        else ()
    )
    step = Graph(
        "decoder_step",
        _DecoderStep(model, attention=attention, feed=False),
        (tokens, *initial, *memory_specs),
        (logits, *_state_specs(template, "_n", "decoder state after the step"), *weights),
    )

    def examples(batch: int, steps: int, g: torch.Generator) -> dict[str, tuple[Tensor, ...]]:
        source = _tokens((batch, steps), config.src_vocab_size, g, low=1)
        lengths = ragged_lengths(batch, steps, g)
        with torch.no_grad():
            encoded = encoder.module(source, lengths)
        n = len(memory_specs)
        first = _tokens((batch,), config.tgt_vocab_size, g)
        return {"encoder": (source, lengths), "decoder_step": (first, *encoded[n:], *encoded[:n])}

    return ExportPlan("seq2seq", [encoder, step], examples, _decoder_notes(model))


@PLANS.register("conditional_generator")
def _conditional(model: ConditionalGenerator) -> ExportPlan:
    config = model.config
    template = model.decoder.shape.template
    if config.encoder == "cnn":
        shape: Shape = ("batch", config.image_channels, *IMAGE_SIZE)
        source = TensorSpec("images", "float32", shape, "grey in [0, 1], bright on dark")
    else:
        source = TensorSpec("features", "float32", ("batch", config.input_size), "vectors")
    feed = (
        (TensorSpec("feed", "float32", ("batch", config.feature_size), "per-step features"),)
        if config.feed_features
        else ()
    )
    initial = _state_specs(template, "0", "decoder state")
    encoder = Graph("encoder", _EncodeFeatures(model), (source,), (*initial, *feed))
    tokens = TensorSpec("tokens", "int64", ("batch",), "previous tokens (bos_id first)")
    logits = TensorSpec("logits", "float32", ("batch", config.vocab_size), "next-token scores")
    step = Graph(
        "decoder_step",
        _DecoderStep(model, attention=False, feed=config.feed_features),
        (tokens, *initial, *feed),
        (logits, *_state_specs(template, "_n", "decoder state after the step")),
    )

    def examples(batch: int, steps: int, g: torch.Generator) -> dict[str, tuple[Tensor, ...]]:
        sizes = [s for s in source.shape[1:] if isinstance(s, int)]
        x = torch.rand(batch, *sizes, generator=g)
        with torch.no_grad():
            encoded = encoder.module(x)
        first = _tokens((batch,), config.vocab_size, g)
        return {"encoder": (x,), "decoder_step": (first, *encoded)}

    notes = {**_decoder_notes(model), "image_size": list(IMAGE_SIZE)}
    return ExportPlan("conditional_generator", [encoder, step], examples, notes)

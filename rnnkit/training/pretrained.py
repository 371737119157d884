"""Pretrained word vectors from the config: ``model.input.vectors: PATH``, ``freeze``.

A run reads the vectors once its vocabulary is built on the training split, fills the
model's ``embedding_dim`` from the file (a recipe value that disagrees is an error),
copies the vectors of its vocabulary into the embedding
(:func:`~rnnkit.data.load_word_vectors`), optionally freezes them, and writes the
coverage report into the run directory as ``vectors.json``. The trained weights carry the
vectors from then on: a reloaded or resumed run does not read the file again.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnkit.config import Component, ConfigError, RunConfig
from rnnkit.data.vectors import WordVectors, load_word_vectors
from rnnkit.training.checkpoint import save_json

__all__ = ["VECTORS_FILE", "apply_input_vectors", "load_input_vectors", "with_vector_size"]

VECTORS_FILE = "vectors.json"
_LISTED = 50  # missing tokens named in the report


def _input_options(config: RunConfig) -> dict[str, Any]:
    spec = config.model.options.get("input")
    return spec if isinstance(spec, dict) else {}


def load_input_vectors(config: RunConfig, datamodule: Any) -> WordVectors | None:
    """The vectors ``model.input.vectors`` names, for the DataModule's vocabulary (or ``None``)."""
    path = _input_options(config).get("vectors")
    if path is None:
        return None
    vocab = getattr(datamodule, "vocab", None)
    if vocab is None:
        raise ConfigError(
            f"model.input.vectors: data {config.data.name!r} has no vocabulary to look "
            "vectors up for (word vectors need a text DataModule)"
        )
    return load_word_vectors(path, vocab, seed=config.seed)


def with_vector_size(config: RunConfig, vectors: WordVectors | None) -> RunConfig:
    """``model.input.embedding_dim`` filled from the vectors' dimension (when absent)."""
    if vectors is None:
        return config
    options = dict(config.model.options)
    spec = dict(_input_options(config))
    dim = vectors.report.dim
    given = spec.get("embedding_dim")
    if given is not None and int(given) != dim:
        raise ConfigError(
            f"model.input.embedding_dim={given} disagrees with the word vectors in "
            f"{spec['vectors']}, which have {dim} dimensions; set "
            f"model.input.embedding_dim={dim} (or null)"
        )
    options["input"] = {**spec, "embedding_dim": dim}
    return replace(config, model=Component(config.model.name, options))


def _embeddings(model: nn.Module) -> list[tuple[nn.Embedding, bool]]:
    """The embeddings of input encoders that name vectors, with their ``freeze``."""
    from rnnkit.models.inputs import InputEncoder

    found = []
    for module in model.modules():
        if isinstance(module, InputEncoder) and module.spec.vectors is not None:
            assert module.embedding is not None  # InputSpec allows vectors for embeddings only
            found.append((module.embedding, module.spec.freeze))
    return found


def apply_input_vectors(
    model: nn.Module, vectors: WordVectors | None, run_dir: str | Path | None = None
) -> dict[str, Any] | None:
    """Copy ``vectors`` into the model's embedding (if given) and freeze it as the config
    says; write ``vectors.json`` into ``run_dir``. Returns the report written, or ``None``.

    With ``vectors=None`` (a resumed run: the weights already hold them) only ``freeze``
    is applied.
    """
    embeddings = _embeddings(model)
    for embedding, freeze in embeddings:
        if vectors is not None:
            with torch.no_grad():
                embedding.weight.copy_(vectors.weights.to(embedding.weight))
        embedding.weight.requires_grad_(not freeze)
    if vectors is None or not embeddings:
        return None
    report = vectors.report
    summary = {
        "dim": report.dim,
        "vectors_read": report.vectors_read,
        "vocabulary_tokens": report.found + len(report.missing),
        "found": report.found,
        "lowercase_matches": report.lowercase_matches,
        "coverage": round(report.coverage, 6),
        "missing": len(report.missing),
        "missing_examples": report.missing[:_LISTED],
        "bad_lines": len(report.bad_lines),
        "invalid_utf8_bytes": report.decode.replaced_bytes,
        "frozen": embeddings[0][1],
    }
    if run_dir is not None:
        save_json(summary, Path(run_dir) / VECTORS_FILE)
    return summary

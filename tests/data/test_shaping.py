"""Numericalisation, Keras-style padding, one-hot encoding, ragged storage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data import Ragged, Vocab, numericalize, pad_sequences, to_categorical


def reference_pad(seqs, maxlen, padding, truncating, value):
    """Keras's documented pad_sequences semantics, one sequence at a time."""
    if maxlen is None:
        maxlen = max((len(s) for s in seqs), default=0)
    rows = []
    for s in seqs:
        s = list(s)
        if len(s) > maxlen:
            s = s[len(s) - maxlen :] if truncating == "pre" else s[:maxlen]
        pad = [value] * (maxlen - len(s))
        rows.append(pad + s if padding == "pre" else s + pad)
    return np.array(rows, dtype=np.int32).reshape(len(seqs), maxlen)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.integers(1, 99), max_size=9), max_size=6),
    st.none() | st.integers(1, 10),
    st.sampled_from(["pre", "post"]),
    st.sampled_from(["pre", "post"]),
    st.integers(-1, 0),
)
def test_pad_sequences_matches_keras_semantics(seqs, maxlen, padding, truncating, value) -> None:
    out, lengths = pad_sequences(
        seqs,
        maxlen=maxlen,
        padding=padding,
        truncating=truncating,
        value=value,
        return_lengths=True,
    )
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, reference_pad(seqs, maxlen, padding, truncating, value))
    limit = maxlen if maxlen is not None else max((len(s) for s in seqs), default=0)
    assert lengths.tolist() == [min(len(s), limit) for s in seqs]


def test_pad_sequences_keras_examples() -> None:
    seqs = [[1, 2, 3], [4], []]
    np.testing.assert_array_equal(pad_sequences(seqs), [[1, 2, 3], [0, 0, 4], [0, 0, 0]])
    np.testing.assert_array_equal(
        pad_sequences(seqs, maxlen=2, padding="post", truncating="post"), [[1, 2], [4, 0], [0, 0]]
    )


def test_pad_sequences_of_vectors_and_errors() -> None:
    out = pad_sequences([np.ones((2, 3)), np.zeros((1, 3))], dtype="float32", padding="post")
    assert out.shape == (2, 2, 3) and out[1, 1].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match=r"shape \(2,\), expected \(3,\)"):
        pad_sequences([np.ones((2, 3)), np.zeros((1, 2))])
    with pytest.raises(ValueError, match="padding"):
        pad_sequences([[1]], padding="middle")  # type: ignore[arg-type]


def test_to_categorical_keras_semantics() -> None:
    np.testing.assert_array_equal(to_categorical([0, 2, 1]), np.eye(3)[[0, 2, 1]])
    col = to_categorical(np.array([[1], [0]]), num_classes=2)  # (N, 1) labels: axis dropped
    assert col.shape == (2, 2) and col.dtype == np.float32
    assert to_categorical(torch.tensor([[0, 1], [1, 1]])).shape == (2, 2, 2)
    assert to_categorical(np.array([1.0, 0.0])).tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match=r"\[0, 2\), found min 0 and max 2"):
        to_categorical([0, 2], num_classes=2)
    with pytest.raises(ValueError, match="integers"):
        to_categorical([0.5])


def test_numericalize_truncates_and_maps_unknowns() -> None:
    vocab = Vocab.build([["a", "b", "b"]])
    docs = [["b", "a", "x", "b"], [], ["a"]]
    post = numericalize(docs, vocab, max_length=2)
    assert post.tolist() == [[2, 3], [], [3]] and post.lengths.tolist() == [2, 0, 1]
    pre = numericalize(docs, vocab, max_length=2, truncating="pre")
    assert pre.tolist()[0] == [1, 2]
    assert numericalize(docs, vocab).values.dtype == np.int32
    with pytest.raises(ValueError, match="max_length"):
        numericalize(docs, vocab, max_length=0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 50), max_size=5), max_size=8), st.data())
def test_ragged_take(seqs, data) -> None:
    ragged = Ragged.from_sequences(seqs)
    assert ragged.tolist() == seqs
    idx = data.draw(st.lists(st.integers(0, max(len(seqs) - 1, 0)), max_size=10)) if seqs else []
    assert ragged.take(idx).tolist() == [seqs[i] for i in idx]


def test_ragged_validates_offsets() -> None:
    with pytest.raises(ValueError, match="end at len"):
        Ragged(np.arange(3), np.array([0, 2]))
    with pytest.raises(ValueError, match="starting at 0"):
        Ragged(np.arange(3), np.array([1, 3]))

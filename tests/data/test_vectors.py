"""Pretrained word vectors: GloVe and word2vec files, the OOV report, errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.data import DataFormatError, DataNotFoundError, Vocab, load_word_vectors


def _vocab() -> Vocab:
    return Vocab.build([["cat", "dog", "Paris", "zebra"]])


def test_glove_vectors_with_oov_report(tmp_path: Path) -> None:
    path = tmp_path / "glove.txt"
    path.write_text("cat 1 2 3\nthe 0 0 0\ndog 4 5 6\nparis 7 8 9\nbroken 1 2\n", encoding="utf-8")
    wv = load_word_vectors(path, _vocab(), init="zeros")
    vocab = _vocab()
    assert wv.weights.shape == (len(vocab), 3) and wv.weights.dtype == torch.float32
    assert wv.weights[vocab["cat"]].tolist() == [1, 2, 3]
    assert wv.weights[vocab["Paris"]].tolist() == [7, 8, 9]  # via its lower-cased form
    assert wv.weights[vocab["zebra"]].tolist() == [0, 0, 0]
    r = wv.report
    assert (r.dim, r.vectors_read, r.found, r.lowercase_matches) == (3, 4, 3, 1)
    assert r.missing == ["zebra"] and r.bad_lines == [5]
    assert r.coverage == pytest.approx(0.75)


def test_word2vec_header_gzip_and_normal_init(tmp_path: Path) -> None:
    path = tmp_path / "vectors.vec.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("2 2\ncat 1 -1\nzebra 3 -3\n")
    vocab = _vocab()
    wv = load_word_vectors(path, vocab, init="normal", seed=0)
    assert wv.report.dim == 2 and wv.report.found == 2
    assert wv.weights[vocab.pad_id].tolist() == [0, 0]  # pad stays zero
    missing = wv.weights[vocab["dog"]]
    assert missing.abs().sum() > 0  # random, not zero
    again = load_word_vectors(path, vocab, init="normal", seed=0)
    assert torch.equal(again.weights, wv.weights)  # seeded


def test_word_vectors_invalid_utf8_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes(b"cat 1 2\ncaf\xe9 3 4\n")
    wv = load_word_vectors(path, _vocab())
    assert wv.report.decode.replaced_bytes == 1 and wv.report.vectors_read == 2


def test_word_vectors_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="word-vectors"):
        load_word_vectors(tmp_path / "nope.txt", _vocab())
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty file"):
        load_word_vectors(empty, _vocab())
    with pytest.raises(ValueError, match="init"):
        load_word_vectors(empty, _vocab(), init="uniform")


def test_word_vectors_feed_an_embedding(tmp_path: Path) -> None:
    path = tmp_path / "glove.txt"
    path.write_text("cat 1 2\n", encoding="utf-8")
    vocab = _vocab()
    wv = load_word_vectors(path, vocab)
    emb = torch.nn.Embedding.from_pretrained(wv.weights, freeze=False, padding_idx=vocab.pad_id)
    out = emb(torch.tensor([[vocab["cat"], vocab.pad_id]]))
    assert out.shape == (1, 2, 2) and np.allclose(out[0, 0].tolist(), [1, 2])

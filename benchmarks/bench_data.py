"""Benchmark: tokenise and numericalise all 50,000 IMDB reviews (target: <= 30 s on 2 cores).

Times each stage of the text pipeline on the real archive, single process:

1. read: stream the 50,000 reviews out of the ``.tar.gz`` and decode them;
2. tokenise: ``basic_english`` on every review;
3. vocab: count the 25,000 training reviews' tokens and rank them;
4. numericalise: map all 50,000 token lists to ids (one flat ``int32`` array);

and, for reference, torchtext's own ``basic_english`` (its chain of regex
substitutions, reproduced) on the same texts, plus the padded fraction of batches
of 64 with and without length bucketing. Prints a Markdown table.

Usage::

    python benchmarks/bench_data.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data import BucketBatchSampler, Vocab, basic_english, numericalize, padding_fraction
from rnnkit.data.datasets.imdb import find_imdb, read_imdb

_TT = [
    (re.compile(p), r)
    for p, r in zip(
        [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"],
        [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "],
        strict=True,
    )
]


def torchtext_basic_english(line: str) -> list[str]:
    """torchtext 0.18's regex-chain ``basic_english`` (same tokens, for the timing only)."""
    line = line.lower()
    for pattern, replacement in _TT:
        line = pattern.sub(replacement, line)
    return line.split()


def timed(fn: Callable[[], Any]) -> tuple[Any, tuple[float, float]]:
    """``fn()``, with (wall seconds, CPU seconds of this process).

    CPU time is what the stage costs on an idle core; on a shared machine the wall
    time also includes waiting for the CPU, so both are reported.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall, time.process_time() - cpu)


def _add(*times: tuple[float, float]) -> tuple[float, float]:
    return sum(t[0] for t in times), sum(t[1] for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("RNNKIT_DATA_DIR") or str(
        Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
    parser.add_argument(
        "--data-dir", default=default, help="directory with imdb/ (default: %(default)s)"
    )
    parser.add_argument(
        "--skip-reference", action="store_true", help="skip torchtext's regex tokeniser"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    load_before = os.getloadavg()
    source = find_imdb(Path(args.data_dir))
    corpora, t_read = timed(lambda: read_imdb(source))
    texts = corpora["train"].texts + corpora["test"].texts
    tokens, t_tok = timed(lambda: [basic_english(t) for t in texts])
    vocab, t_vocab = timed(lambda: Vocab.build(tokens[:25_000]))
    ids, t_num = timed(lambda: numericalize(tokens, vocab))
    n_tokens = len(ids.values)
    rows = [
        ("read 50,000 reviews from the .tar.gz", t_read),
        ("tokenise (basic_english)", t_tok),
        ("vocabulary from the 25,000 training reviews", t_vocab),
        ("numericalise 50,000 reviews", t_num),
        ("**tokenise + vocabulary + numericalise**", _add(t_tok, t_vocab, t_num)),
        ("**whole pipeline, read included**", _add(t_read, t_tok, t_vocab, t_num)),
    ]
    if not args.skip_reference:
        reference, t_ref = timed(lambda: [torchtext_basic_english(t) for t in texts])
        assert reference == tokens, "the reference tokeniser disagrees"
        rows.append(("reference: torchtext's regex-chain basic_english", t_ref))
    load_after = os.getloadavg()

    lengths = ids.lengths[:25_000]
    bucketed = padding_fraction(lengths, BucketBatchSampler.from_lengths(lengths, 64, seed=0))
    perm = np.random.default_rng(0).permutation(len(lengths))
    random = padding_fraction(lengths, [perm[i : i + 64] for i in range(0, len(perm), 64)])

    print(f"IMDB: {len(texts):,} reviews, {n_tokens:,} tokens, vocabulary {len(vocab):,}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, one process"
    )
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}\n")
    print("| stage | wall s | CPU s |")
    print("|---|---:|---:|")
    for name, (wall, cpu) in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    cpu_tok_num = t_tok[1] + t_num[1]
    rate = n_tokens / cpu_tok_num
    print(f"\nthroughput: {rate:,.0f} tokens per CPU second (tokenise + numericalise)")
    print(
        f"padded fraction, batches of 64 over the training reviews: random {random:.3f}, "
        f"bucketed {bucketed:.3f} ({random / bucketed:.1f}x less padding)"
    )


if __name__ == "__main__":
    main()

"""``rnnkit generate RUN_DIR --prompt TEXT``: sample text from a trained language model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rnnkit.cli._registry import Command, register


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a language-model run written by `rnnkit train`")
    parser.add_argument("--prompt", required=True, help="the text to continue")
    parser.add_argument("--length", type=int, default=200, help="tokens to generate")
    parser.add_argument("--temperature", type=float, default=0.8, help="> 0; lower is safer")
    parser.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    parser.add_argument("--samples", type=int, default=1, help="independent continuations")
    parser.add_argument("--seed", type=int, default=0, help="for reproducible samples")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _run(args: argparse.Namespace) -> int:
    import torch

    from rnnkit.config import ConfigError
    from rnnkit.training.predict import encode_prompt, run_datamodule
    from rnnkit.training.run import load_run

    _check_arguments(args)
    loaded = load_run(args.run_dir)
    if loaded.config.task.name != "language_model":
        raise ConfigError(
            f"{args.run_dir} is a {loaded.config.task.name!r} run; generate needs a language "
            f"model (try `rnnkit predict {args.run_dir} ...`)"
        )
    dm = run_datamodule(loaded)
    ids = encode_prompt(dm, args.prompt)
    prompt = torch.tensor([ids] * args.samples)
    generator = torch.Generator().manual_seed(args.seed)
    out = loaded.model.generate(
        prompt, args.length, temperature=args.temperature, top_k=args.top_k, generator=generator
    )
    vocab = dm.vocab
    joiner = "" if all(len(t) == 1 for t in vocab.tokens if t not in vocab.specials) else " "
    texts = [joiner.join(vocab.decode(row)) for row in out]
    if args.json:
        print(json.dumps({"prompt": args.prompt, "samples": texts}, indent=2))
    else:
        print("\n\n".join(texts))
    return 0


def _check_arguments(args: argparse.Namespace) -> None:
    """The sampling options, checked before the run is loaded."""
    from rnnkit.config import ConfigError

    if not args.temperature > 0:
        raise ConfigError(
            f"--temperature: expected a number > 0, got {args.temperature} (--top-k 1 is greedy)"
        )
    for flag, value, least in (
        ("--length", args.length, 0),
        ("--samples", args.samples, 1),
        ("--top-k", args.top_k, 1),
    ):
        if value is not None and value < least:
            raise ConfigError(f"{flag}: expected an integer >= {least}, got {value}")


register(Command("generate", "sample text from a trained language model", _add_arguments, _run))

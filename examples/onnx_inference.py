"""Apply exported rnnkit models with ONNX Runtime and NumPy only: no rnnkit, no PyTorch.

Export two trained runs first (``pip install 'rnnkit[export]'``)::

    rnnkit export runs/digits --format onnx --out digits.onnx
    rnnkit export runs/char-lm --format onnx --out char_lm.onnx

then, wherever ``onnxruntime`` and ``numpy`` are installed::

    python examples/onnx_inference.py classify digits.onnx digit.png
    python examples/onnx_inference.py generate char_lm.onnx --prompt "ROMEO:" --length 100

Everything the script needs besides the graphs (class names, the vocabulary, which
inputs the graphs take) is in the files' metadata (``docs/export.md``).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort


def load(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """An ONNX Runtime session and the rnnkit metadata of an exported file."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    metadata = json.loads(session.get_modelmeta().custom_metadata_map["rnnkit"])
    return session, metadata


# -- images ---------------------------------------------------------------------------


def read_png(path: Path) -> np.ndarray:
    """An 8-bit grey(+alpha) or RGB(A) non-interlaced PNG as ``(H, W)`` floats in [0, 255]."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: expected an 8-bit non-interlaced grey/RGB(A) PNG")
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows = np.zeros((height, stride), dtype=np.int32)
    previous = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], np.frombuffer(raw[start + 1 : start + 1 + stride], np.uint8)
        rows[y] = previous = _unfilter(kind, line.astype(np.int32), previous, channels)
    pixels = rows.reshape(height, width, channels).astype(np.float64)
    colour_channels = pixels[..., : 3 if channels >= 3 else 1]
    return colour_channels.mean(axis=-1)


def _unfilter(kind: int, line: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """Undo one PNG scanline filter (None, Sub, Up, Average, Paeth)."""
    if kind == 0:
        return line
    if kind == 2:
        return (line + above) % 256
    out = line.copy()
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        corner = above[i - bpp] if i >= bpp else 0
        if kind == 1:
            predictor = left
        elif kind == 3:
            predictor = (left + above[i]) // 2
        else:
            p = left + above[i] - corner
            pa, pb, pc = abs(p - left), abs(p - above[i]), abs(p - corner)
            predictor = left if pa <= pb and pa <= pc else above[i] if pb <= pc else corner
        out[i] = (out[i] + predictor) % 256
    return out


def read_image(path: str | Path) -> np.ndarray:
    """A digit image as the exported classifier wants it: ``(28, 28)`` in [0, 1], bright on dark."""
    path = Path(path)
    image = np.load(path) if path.suffix == ".npy" else read_png(path)
    image = np.asarray(image, dtype=np.float64)
    if image.max() > 1.0:
        image = image / 255.0
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    if border.mean() > 0.5:  # dark ink on white paper
        image = 1.0 - image
    return image.astype(np.float32)


# -- the two tasks --------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def classify(model: str | Path, image_path: str | Path) -> tuple[str, float]:
    """The class name and probability of one digit image."""
    session, metadata = load(model)
    image = read_image(image_path)[None]  # (1, 28, 28): one row of 28 pixels per step
    lengths = np.array([image.shape[1]], dtype=np.int64)
    (logits,) = session.run(["logits"], {"inputs": image, "lengths": lengths})
    probs = softmax(logits[0])
    names = metadata["data"].get("class_names") or [str(i) for i in range(len(probs))]
    best = int(probs.argmax())
    return str(names[best]), float(probs[best])


def generate(
    model: str | Path, prompt: str, length: int, *, temperature: float = 0.8, seed: int = 0
) -> str:
    """``length`` characters sampled after ``prompt`` from an exported character LM."""
    session, metadata = load(model)
    step = metadata["graphs"]["step"]
    vocab = metadata["data"]["vocab"]
    tokens = vocab["tokens"]
    index = {token: i for i, token in enumerate(tokens)}
    specials = [vocab[k] for k in ("pad", "unk", "bos", "eos") if vocab.get(k)]
    never = [index[t] for t in specials + vocab.get("extra_specials", []) if t in index]
    unknown = sorted({c for c in prompt if c not in index})
    if unknown:
        raise ValueError(f"the prompt has characters outside the vocabulary: {unknown}")
    state_in = [s["name"] for s in step["inputs"][1:]]  # h0, c0: zeros to start
    state_out = [s["name"] for s in step["outputs"][1:]]  # h_n, c_n: fed back
    state = {
        spec["name"]: np.zeros([1 if d == "batch" else d for d in spec["shape"]], np.float32)
        for spec in step["inputs"][1:]
    }
    rng = np.random.default_rng(seed)
    ids = np.array([[index[c] for c in prompt]], dtype=np.int64)  # (1, T0): the whole prompt
    out = []
    for _ in range(length):
        results = session.run(["logits", *state_out], {"tokens": ids, **state})
        state = dict(zip(state_in, results[1:], strict=True))
        scores = results[0][0, -1] / temperature
        scores[never] = -np.inf  # no <pad>/<unk> in the text
        probs = softmax(scores)
        choice = int(rng.choice(len(probs), p=probs / probs.sum()))
        out.append(tokens[choice])
        ids = np.array([[choice]], dtype=np.int64)  # one step at a time from here on
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cls = sub.add_parser("classify", help="classify a digit image (.png or .npy)")
    cls.add_argument("model")
    cls.add_argument("image")
    gen = sub.add_parser("generate", help="sample characters from a character LM")
    gen.add_argument("model")
    gen.add_argument("--prompt", default="\n")
    gen.add_argument("--length", type=int, default=100)
    gen.add_argument("--temperature", type=float, default=0.8)
    gen.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "classify":
        label, probability = classify(args.model, args.image)
        print(f"{args.image}: {label} (p={probability:.3f})")
    else:
        text = generate(
            args.model, args.prompt, args.length, temperature=args.temperature, seed=args.seed
        )
        print(args.prompt + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run files as safetensors + JSON: written atomically, read with one-line errors.

Nothing here pickles. A pickled checkpoint runs arbitrary code when loaded and ties
the file to the classes that wrote it; safetensors holds only named tensors and
JSON holds only plain data, so a run directory can be shared and inspected safely.

=========================  ==========================================================
function                   file
=========================  ==========================================================
:func:`save_weights`       a model's parameters and buffers (``model.safetensors``)
:func:`save_checkpoint`    a whole training state (Lightning's checkpoint dict) as one
                           safetensors file: every tensor under its key path, the rest
                           as JSON in the file's header (``checkpoints/last.safetensors``)
:func:`save_json`          plain data (``metrics.json``, ``history.json``, ...)
:func:`write_text`         any text (reports)
=========================  ==========================================================

Every writer goes through :func:`atomic_path`: the bytes go to a hidden temporary
file in the same folder, are flushed to disk, and the file is renamed over the
target, so a reader (or a run killed at any moment) sees the old file or the new
one, never half of one. Readers turn a truncated or foreign file into a
:class:`DamagedFileError` that names the file and what to do.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_file, save_model
from torch import Tensor, nn

from rnnkit.errors import DamagedFileError

TEMPORARY_GLOB = ".*.tmp-*"
"""The names :func:`atomic_path` writes to (left behind only by a killed process)."""

_CHECKPOINT_KEY = "rnnkit.checkpoint"  # the JSON tree in a checkpoint's header metadata
_NOT_THIS_RUN = "it belongs to another run: put back this run's own file"


# -- atomic writes ------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; renamed to ``path`` when the block ends.

    The temporary file is hidden (``.name.tmp-<pid>.suffix``: the suffix stays, so
    writers that choose a format by it still do), flushed to disk before the rename,
    and removed if the block raises. ``os.replace`` is atomic within one folder.

    Example::

        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "notes.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("all or nothing")
        >>> target.read_text()
        'all or nothing'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        _flush(tmp)
        os.replace(tmp, path)
        _flush_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _flush(path: Path) -> None:
    with path.open("rb+") as fh:
        os.fsync(fh.fileno())


def _flush_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a folder)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# -- weights --------------------------------------------------------------------------------


def save_weights(model: nn.Module, path: str | Path) -> None:
    """Write a model's parameters and buffers to a ``.safetensors`` file.

    Tied weights (a language model's shared embedding and output matrix) are stored
    once and restored as tied.
    """
    with atomic_path(path) as tmp:
        save_model(model, str(tmp))


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load weights saved by :func:`save_weights`; every tensor must match by name and shape.

    Raises:
        DamagedFileError: the file is truncated or not a safetensors file, or its tensors
            do not fit ``model`` (another run's weights): a ``ValueError`` as before.
    """
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except SafetensorError as err:
        raise DamagedFileError(path, f"not a complete safetensors file: {err}") from None
    except RuntimeError as err:  # torch: "size mismatch for rnn.weight_ih_l0: ..."
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
        raise DamagedFileError(
            path, f"its tensors do not fit {type(model).__name__}: {first}", _NOT_THIS_RUN
        ) from None
    if missing or unexpected:
        raise DamagedFileError(
            path,
            f"its tensors do not fit {type(model).__name__}: missing {sorted(missing)}, "
            f"unexpected {sorted(unexpected)}",
            _NOT_THIS_RUN,
        )


# -- plain data -----------------------------------------------------------------------------


def save_json(data: Any, path: str | Path) -> None:
    """Write plain data as indented JSON (tensors and NumPy values become lists/numbers)."""
    write_text(path, json.dumps(data, indent=2, default=_plain) + "\n")


def load_json(path: str | Path) -> Any:
    """Read a JSON file.

    Raises:
        DamagedFileError: the file is not complete JSON.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DamagedFileError(path, f"not valid JSON: {err}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


# -- whole training states ------------------------------------------------------------------


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write a training state (any nesting of tensors and plain data) as one safetensors file.

    Every tensor is stored under its key path (``state_dict/model.head.weight``,
    ``optimizer_states/0/state/3/exp_avg``); a tensor met twice (tied weights) is
    stored once. Everything else becomes JSON in the header's metadata, with tags for
    what JSON cannot say by itself: tuples, non-string keys, ordered dicts (their
    ``_metadata`` too), non-finite floats, NumPy arrays and scalars, bytes. The file
    is complete or absent (:func:`atomic_path`).

    Raises:
        TypeError: a value that is none of these, named by its key path (nothing is
            ever pickled instead).
    """
    tensors = _TensorTable()
    tree = _encode(checkpoint, "", tensors)
    text = json.dumps(tree, allow_nan=False, separators=(",", ":"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors.for_file(), str(tmp), metadata={"format": "pt", _CHECKPOINT_KEY: text})


def load_checkpoint(
    path: str | Path, *, map_location: str | torch.device | None = None
) -> dict[str, Any]:
    """Read a training state written by :func:`save_checkpoint` (tensors on ``map_location``,
    default the CPU).

    Raises:
        FileNotFoundError: there is no such file.
        DamagedFileError: it is truncated, not a safetensors file, or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    device = "cpu" if map_location is None else str(map_location)
    fix = "delete it to train the run from the start, or put back an intact copy"
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except SafetensorError as err:
        raise DamagedFileError(path, f"not a complete safetensors file: {err}", fix) from None
    if _CHECKPOINT_KEY not in metadata:
        raise DamagedFileError(path, "a safetensors file without a training state", fix)
    try:
        tree = json.loads(metadata[_CHECKPOINT_KEY])
    except json.JSONDecodeError as err:
        raise DamagedFileError(path, f"its training state is not valid JSON: {err}", fix) from None
    return _decode(tree, tensors)


class _TensorTable:
    """The tensors of a checkpoint by name, each distinct tensor once."""

    def __init__(self) -> None:
        self.named: dict[str, Tensor] = {}
        self._seen: dict[tuple[Any, ...], str] = {}

    def add(self, path: str, tensor: Tensor) -> str:
        t = tensor.detach()
        view = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), t.dtype)
        view += (tuple(t.shape), t.stride())
        if t.numel() and view in self._seen:
            return self._seen[view]  # the same tensor under two keys: tied weights
        name, n = path, 1
        while name in self.named:
            name, n = f"{path}#{n}", n + 1
        self.named[name] = t
        self._seen[view] = name
        return name

    def for_file(self) -> dict[str, Tensor]:
        """Contiguous CPU tensors; views into one storage get their own copies, as
        safetensors refuses to guess how shared memory should be restored."""
        cpu = {name: t.cpu() for name, t in self.named.items()}
        storages: dict[int, list[str]] = {}
        for name, t in cpu.items():
            if t.numel():
                storages.setdefault(t.untyped_storage().data_ptr(), []).append(name)
        for names in storages.values():
            if len(names) > 1:
                cpu.update({name: cpu[name].clone() for name in names})
        return {name: t.contiguous() for name, t in cpu.items()}


_TAGS = ("$tensor", "$tuple", "$items", "$ordered", "$float", "$ndarray", "$bytes")


def _encode(value: Any, path: str, tensors: _TensorTable) -> Any:
    if isinstance(value, Tensor):
        return {"$tensor": tensors.add(path, value)}
    if isinstance(value, np.ndarray | np.generic):  # before float: np.float64 is a float
        array = np.asarray(value)
        return {"$ndarray": [array.dtype.str, list(array.shape), array.ravel().tolist()]}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(float(value))}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if type(value) is tuple:
        return {"$tuple": [_encode(v, _join(path, i), tensors) for i, v in enumerate(value)]}
    if type(value) is list:
        return [_encode(v, _join(path, i), tensors) for i, v in enumerate(value)]
    if type(value) is OrderedDict:
        metadata = getattr(value, "_metadata", None)  # a state_dict's per-module versions
        return {"$ordered": [_encode(dict(value), path, tensors), _encode(metadata, "", tensors)]}
    if type(value) is dict:
        return _encode_dict(value, path, tensors)
    raise TypeError(
        f"cannot store {type(value).__name__} at checkpoint key {path!r}: a checkpoint "
        "holds tensors, numbers, strings, lists, tuples, dicts and NumPy arrays (nothing is "
        "pickled); return plain data from the state_dict that produced it"
    )


def _join(path: str, key: Any) -> str:
    return f"{path}/{key}" if path else str(key)


def _encode_dict(value: dict[Any, Any], path: str, tensors: _TensorTable) -> Any:
    plain = all(isinstance(k, str) and not k.startswith("$") for k in value)
    if plain:
        return {k: _encode(v, _join(path, k), tensors) for k, v in value.items()}
    return {  # ints as keys (optimizer states), or a key that looks like a tag
        "$items": [
            [_encode(k, "", tensors), _encode(v, _join(path, k), tensors)] for k, v in value.items()
        ]
    }


def _decode(value: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and (tag := next(iter(value))) in _TAGS:
        return _decode_tagged(tag, value[tag], tensors)
    return {k: _decode(v, tensors) for k, v in value.items()}


def _decode_tagged(tag: str, body: Any, tensors: dict[str, Tensor]) -> Any:
    if tag == "$tensor":
        return tensors[body]
    if tag == "$tuple":
        return tuple(_decode(v, tensors) for v in body)
    if tag == "$items":
        return {_decode(k, tensors): _decode(v, tensors) for k, v in body}
    if tag == "$ordered":
        items, metadata = body
        ordered = OrderedDict(_decode(items, tensors))
        if metadata is not None:
            ordered._metadata = _decode(metadata, tensors)  # type: ignore[attr-defined]
        return ordered
    if tag == "$float":
        return float(body)
    if tag == "$ndarray":
        dtype, shape, data = body
        array = np.asarray(data, dtype=np.dtype(dtype)).reshape(shape)
        return array[()] if not shape else array  # a NumPy scalar stays one
    return base64.b64decode(body)  # $bytes

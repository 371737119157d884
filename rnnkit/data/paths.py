"""Where datasets live, and how they get there.

The data directory is, in order of precedence:

1. the ``data_dir`` argument of a loader or DataModule;
2. the environment variable ``RNNKIT_DATA_DIR``;
3. a per-user cache, ``$XDG_CACHE_HOME/rnnkit`` (default ``~/.cache/rnnkit``).

Inside it, each dataset has its own folder (``imdb/``, ``reuters21578/``,
``tinyshakespeare/``, ``stocks/``, ``mnist/``, ``fashion-mnist/``). Nothing is read or
downloaded at import time; downloads happen only in ``prepare_data()`` when asked for
(``download=True``), are checked against published SHA-256 digests, and are written
atomically (``.part`` file, then rename).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.data.errors import ChecksumError, ChecksumWarning, DataNotFoundError
from rnnkit.data.files import sha256_file

__all__ = [
    "ENV_VAR",
    "RemoteFile",
    "default_cache_dir",
    "download",
    "find_or_download",
    "locate",
    "require_file",
    "resolve_data_dir",
    "verify_checksum",
]

ENV_VAR = "RNNKIT_DATA_DIR"


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file with an official source.

    Attributes:
        url: where to download it from.
        path: where it is stored, relative to the data directory (``"imdb/aclImdb_v1.tar.gz"``).
        sha256: known digests, each mapped to what it identifies (the official file
            first; known repacks after it).
    """

    url: str
    path: str
    sha256: Mapping[str, str] = field(default_factory=dict)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rnnkit``, else ``~/.cache/rnnkit``."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "rnnkit"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``data_dir``, else ``$RNNKIT_DATA_DIR``, else the user cache.

    The directory need not exist; nothing is created here.

    Example::

        >>> resolve_data_dir("/tmp/data")
        PosixPath('/tmp/data')
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_cache_dir()


def locate(
    root: Path,
    candidates: Sequence[str],
    *,
    dataset: str,
    how_to_get: str,
    extra: Sequence[Path] = (),
) -> Path:
    """The first of ``root / candidate`` (then ``extra``) that exists.

    Arguments:
        root: the data directory.
        candidates: paths relative to ``root``, most preferred first.
        dataset: the dataset's name, for the message.
        how_to_get: one sentence on how to obtain the file, for the message.
        extra: absolute fallbacks (system-wide installs), tried last.

    Raises:
        DataNotFoundError: none exists; the message lists every path tried.
    """
    tried = [root / c for c in candidates] + list(extra)
    for path in tried:
        if path.exists():
            return path
    listed = "\n".join(f"  - {p}" for p in tried)
    raise DataNotFoundError(
        f"{dataset}: no data found. Looked for:\n{listed}\n{how_to_get}\n"
        f"Point data_dir= (or ${ENV_VAR}) at a directory that has it."
    )


def require_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path`, if a file is there.

    Arguments:
        path: where the file should be.
        what: what was expected there, for the message (``"a CSV file"``).

    Raises:
        DataNotFoundError: nothing (or a directory) at ``path``.

    Example::

        >>> require_file("/no/SBUX.csv", "a CSV file")
        Traceback (most recent call last):
        ...
        rnnkit.data.errors.DataNotFoundError: expected a CSV file at /no/SBUX.csv, found nothing
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"expected {what} at {path}, found nothing")
    return path


def verify_checksum(path: Path, known: Mapping[str, str], *, strict: bool = True) -> str:
    """Check a file's SHA-256 digest against the known ones.

    Arguments:
        path: the file.
        known: digest → what it identifies.
        strict: raise :class:`~rnnkit.data.errors.ChecksumError` on an unknown digest
            (the default: a truncated or tampered archive must not become training
            data); ``False`` (a DataModule's ``accept_modified=True``) warns with
            :class:`~rnnkit.data.errors.ChecksumWarning` instead, for a file changed on
            purpose; parsing still checks its structure.

    Returns:
        The digest.
    """
    digest = sha256_file(path)
    if known and digest not in known:
        expected = ", ".join(f"{d} ({what})" for d, what in known.items())
        message = f"{path}: SHA-256 {digest} is none of the known digests: {expected}"
        if strict:
            raise ChecksumError(
                f"{message}; if you changed this file on purpose, set data.accept_modified=true"
            )
        warnings.warn(f"{message}; accepted (data.accept_modified)", ChecksumWarning, stacklevel=2)
    return digest


def download(remote: RemoteFile, root: Path, *, timeout: float = 60.0) -> Path:
    """Download ``remote`` into ``root / remote.path`` and verify its digest.

    The bytes go to a ``.part`` file first and are renamed into place only after the
    digest matched, so an interrupted or corrupt download never looks like data.

    Raises:
        DataNotFoundError: the download failed (no network); the message says where
            to put the file by hand.
        ChecksumError: the downloaded bytes have an unknown digest.
    """
    dest = root / remote.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(remote.url, timeout=timeout) as response, part.open("wb") as fh:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                fh.write(chunk)
    except (urllib.error.URLError, OSError) as err:
        part.unlink(missing_ok=True)
        raise DataNotFoundError(
            f"could not download {remote.url} to {dest}: {err}. Without network, fetch "
            f"that URL elsewhere and copy the file to {dest}."
        ) from err
    if remote.sha256 and digest.hexdigest() not in remote.sha256:
        part.unlink(missing_ok=True)
        expected = ", ".join(remote.sha256)
        raise ChecksumError(
            f"downloaded {remote.url} (for {dest}): SHA-256 {digest.hexdigest()}, expected "
            f"one of {expected}; nothing was kept, download it again"
        )
    part.replace(dest)
    return dest


def find_or_download(
    find: Callable[[], Path], remote: RemoteFile, root: Path, *, allowed: bool
) -> Path:
    """What ``find()`` finds; when it finds nothing, ``remote`` downloaded into ``root``.

    Arguments:
        find: looks for the data, raising ``FileNotFoundError`` (or
            :class:`~rnnkit.data.errors.DataNotFoundError`) when it is absent.
        remote: the official file to download instead.
        root: the data directory.
        allowed: whether downloading is allowed (a DataModule's ``download=True``);
            if not, ``find()``'s error, which says where the data was looked for, stands.
    """
    try:
        return find()
    except FileNotFoundError:
        if not allowed:
            raise
        return download(remote, root)

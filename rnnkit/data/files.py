"""Reading bytes and text with an honest account of what was replaced.

Real corpora contain the odd invalid byte (Reuters-21578 has a Latin-1 ``ü`` in
``reut2-017.sgm``). Readers here decode UTF-8 with replacement, so one bad byte does
not lose a document, and count every replaced byte in a :class:`DecodeReport` that
the caller can inspect.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import hashlib
import lzma
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.data.errors import (
    DamagedArchiveError,
    DataFormatError,
    DataNotFoundError,
    UndecodableTextError,
)

__all__ = [
    "DecodeReport",
    "check_decodable",
    "decode_utf8",
    "decompressing",
    "read_text",
    "sha256_file",
]

_MAX_LISTED = 20  # files named in a report; the counts stay exact beyond that
_ERRORS = "rnnkit.count_replace"
_tally = threading.local()


def _count_and_replace(err: UnicodeError) -> tuple[str, int]:
    # Same output as the built-in "replace" handler (one U+FFFD per invalid span),
    # and it counts the bytes it skipped; linear time however many errors there are.
    if not isinstance(err, UnicodeDecodeError):
        raise err
    _tally.replaced += err.end - err.start
    return "\ufffd", err.end


codecs.register_error(_ERRORS, _count_and_replace)


@dataclass
class DecodeReport:
    """What a reader had to repair while decoding text.

    Attributes:
        files: number of files (or archive members) decoded.
        replaced_bytes: invalid UTF-8 bytes replaced by ``U+FFFD``.
        files_with_replacements: number of files that had at least one.
        examples: up to 20 ``(name, replaced_bytes)`` pairs, in reading order.

    Example::

        >>> report = DecodeReport()
        >>> report.add("a.txt", 0); report.add("b.txt", 2)
        >>> report.replaced_bytes, report.clean
        (2, False)
    """

    files: int = 0
    replaced_bytes: int = 0
    files_with_replacements: int = 0
    examples: list[tuple[str, int]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """``True`` when nothing was replaced."""
        return self.replaced_bytes == 0

    def add(self, name: str, replaced: int) -> None:
        """Record one decoded file that needed ``replaced`` byte replacements."""
        self.files += 1
        if replaced:
            self.replaced_bytes += replaced
            self.files_with_replacements += 1
            if len(self.examples) < _MAX_LISTED:
                self.examples.append((name, replaced))

    def merge(self, other: DecodeReport) -> DecodeReport:
        """A new report that counts both."""
        merged = DecodeReport(
            self.files + other.files,
            self.replaced_bytes + other.replaced_bytes,
            self.files_with_replacements + other.files_with_replacements,
            (self.examples + other.examples)[:_MAX_LISTED],
        )
        return merged

    def __str__(self) -> str:
        if self.clean:
            return f"{self.files} files decoded as UTF-8, no invalid bytes"
        names = ", ".join(f"{n} ({k})" for n, k in self.examples)
        return (
            f"{self.files} files decoded as UTF-8; {self.replaced_bytes} invalid bytes in "
            f"{self.files_with_replacements} files replaced by U+FFFD: {names}"
        )


def decode_utf8(data: bytes) -> tuple[str, int]:
    """Decode UTF-8, replacing invalid bytes with ``U+FFFD``, and count them.

    The result equals ``data.decode("utf-8", "replace")``; the count is the number of
    invalid *bytes* (one ``U+FFFD`` may stand for several, as in a truncated sequence).

    Arguments:
        data: the raw bytes.

    Returns:
        ``(text, replaced_bytes)``.

    Example::

        >>> decode_utf8(b"caf\\xc3\\xa9 na\\xefve")
        ('café na\\ufffdve', 1)
    """
    try:
        return data.decode("utf-8"), 0  # the fast path: almost every file is clean
    except UnicodeDecodeError:
        pass
    _tally.replaced = 0
    text = data.decode("utf-8", _ERRORS)
    return text, _tally.replaced


def read_text(path: str | Path, *, report: DecodeReport | None = None) -> str:
    """Read a UTF-8 text file, replacing (and counting) invalid bytes.

    Arguments:
        path: the file.
        report: a :class:`DecodeReport` to add this file to.

    Returns:
        The text.

    Raises:
        DataNotFoundError: the file does not exist.
        DataFormatError: the file is empty.
        UndecodableTextError: most of its lines have invalid UTF-8 (:func:`check_decodable`).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"expected a text file at {path}, found nothing there")
    data = path.read_bytes()
    if not data:
        raise DataFormatError(f"expected text in {path}, found an empty file (0 bytes)")
    text, replaced = decode_utf8(data)
    if replaced:
        lines = text.splitlines()
        check_decodable(path, sum("\ufffd" in line for line in lines), len(lines), "lines")
    if report is not None:
        report.add(str(path), replaced)
    return text


def sha256_file(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


_TRUNCATED = (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile, lzma.LZMAError)
_REFETCH = "download it again, or put back an intact copy"


@contextmanager
def decompressing(path: str | Path) -> Iterator[None]:
    """Report a compressed file (``.gz``, ``.tar.gz``, ``.zip``, ``.npz``) that stops
    decompressing inside the block as damaged, in one line that names it.

    Raises:
        DamagedArchiveError: the data ends early or fails its check (a truncated copy);
            a file that is not an archive at all is left to the caller's own error.
    """
    try:
        yield
    except _TRUNCATED as err:
        raise DamagedArchiveError(path, f"it ends early or is corrupt: {err}", _REFETCH) from None
    except tarfile.ReadError as err:
        if "unexpected end" not in str(err) and not _stream_breaks(Path(path)):
            raise  # not a tar at all: the caller says what was expected
        raise DamagedArchiveError(path, f"the archive ends early: {err}", _REFETCH) from None


_OPENERS = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open, b"\xfd7": lzma.open}


def _stream_breaks(path: Path) -> bool:
    """Whether ``path`` is compressed and its compressed stream ends early or is corrupt
    (tarfile reports a truncated ``.tar.gz`` read as a stream as a bad tar header)."""
    with path.open("rb") as fh:
        opener = _OPENERS.get(fh.read(2))
    if opener is None:
        return False
    try:
        with opener(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except (*_TRUNCATED, OSError):
        return True
    return False


UNDECODABLE_SHARE = 0.5
"""Above this share of files (or rows) with invalid UTF-8, a text source is refused."""


def check_decodable(source: str | Path, bad: int, total: int, unit: str = "files") -> None:
    """Refuse text that is mostly not UTF-8 (another encoding, or not text at all).

    Arguments:
        source: the file or folder, for the message.
        bad: ``unit`` with at least one invalid byte.
        total: all ``unit`` read.
        unit: what was counted (``"files"``, ``"rows"``, ``"lines"``).

    Raises:
        UndecodableTextError: more than :data:`UNDECODABLE_SHARE` of them had invalid bytes.
    """
    if total and bad / total > UNDECODABLE_SHARE:
        raise UndecodableTextError(
            f"{source}: expected UTF-8 text, but {bad} of {total} {unit} have invalid bytes "
            f"(more than {UNDECODABLE_SHARE:.0%}); convert it to UTF-8 first (e.g. iconv -f "
            "latin1 -t utf-8)"
        )

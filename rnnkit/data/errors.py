"""Errors and warnings of the data pipeline.

Every error names what was expected and what was found, so that bad data is
reported at the place it was read, never dropped silently.
"""

from __future__ import annotations

from rnnkit.errors import DamagedFileError, RnnkitError, RnnkitWarning


class DataError(RnnkitError):
    """Base class of the data pipeline's errors."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset file or directory is not where it was looked for.

    The message lists every path that was tried and how to get the file.
    """


class DataFormatError(DataError, ValueError):
    """A file exists but does not have the expected layout or content."""


class ChecksumError(DataFormatError):
    """A downloaded file's SHA-256 digest is not one of the published ones."""


class ChecksumWarning(RnnkitWarning):
    """A local file's SHA-256 digest is not one of the known ones.

    Local files may be legitimate repacks (for example Debian's re-compressed
    Fashion-MNIST), so this is a warning; structural checks still apply when the
    file is parsed.
    """


class DamagedArchiveError(DataFormatError, DamagedFileError):
    """A compressed file (``.gz``, ``.tar.gz``, ``.zip``) that does not decompress: truncated."""


class UndecodableTextError(DataFormatError):
    """Most of the texts are not UTF-8: reading them would train on replacement characters."""


class DecodeWarning(RnnkitWarning):
    """Invalid UTF-8 bytes were replaced by ``U+FFFD`` while reading; the message counts them."""

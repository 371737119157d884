"""Errors and warnings of the data pipeline.

Every error names what was expected and what was found, so that bad data is
reported at the place it was read, never dropped silently.
"""

from __future__ import annotations


class DataError(Exception):
    """Base class of the data pipeline's errors."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset file or directory is not where it was looked for.

    The message lists every path that was tried and how to get the file.
    """


class DataFormatError(DataError, ValueError):
    """A file exists but does not have the expected layout or content."""


class ChecksumError(DataFormatError):
    """A downloaded file's SHA-256 digest is not one of the published ones."""


class ChecksumWarning(UserWarning):
    """A local file's SHA-256 digest is not one of the known ones.

    Local files may be legitimate repacks (for example Debian's re-compressed
    Fashion-MNIST), so this is a warning; structural checks still apply when the
    file is parsed.
    """

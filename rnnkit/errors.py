"""rnnkit's exceptions: one base class for every error that means "fix your input".

A user error — a recipe key that does not exist, a value out of range, a file that is
missing, damaged or of the wrong kind, a run directory that cannot do what was asked —
derives from :class:`RnnkitError`. Its message is one line that names what was expected
and what was given, and the CLI prints it as ``rnnkit <command>: error: <message>`` with
exit status 2. Anything else is a bug in rnnkit (or in a library under it) and keeps its
traceback.

Each error also keeps the built-in type it has always had (``ConfigError`` is a
``ValueError``, ``DataNotFoundError`` a ``FileNotFoundError``, ``UnknownNameError`` a
``KeyError``), so ``except ValueError`` in older code still catches it.

==========================================  ===========================================
class                                       raised for
==========================================  ===========================================
:class:`rnnkit.config.ConfigError`          a config key, type or value (recipes, ``--set``)
:class:`rnnkit.registry.UnknownNameError`   a name that is not registered (cell, recipe, ...)
:class:`rnnkit.data.errors.DataError`       data: missing, malformed, checksum, undecodable
:class:`DamagedFileError`                   a file that exists but cannot be read (truncated)
:class:`rnnkit.export.ExportError`          a run, format or option the exporter cannot handle
:class:`rnnkit.training.TrainingDiverged`   a non-finite loss, metric or weight stopped the run
==========================================  ===========================================
"""

from __future__ import annotations

from pathlib import Path

_REWRITE = "train the run again, or put back an intact copy"


class RnnkitError(Exception):
    """Base class of rnnkit's user errors: the message is one line for the user."""


class RnnkitWarning(UserWarning):
    """Base class of rnnkit's warnings (the CLI prints them on stderr)."""


class DamagedFileError(RnnkitError, ValueError):
    """A file exists but cannot be read: truncated, or not what its name says.

    Arguments:
        path: the file.
        reason: what is wrong with it.
        fix: what the user can do.
    """

    def __init__(self, path: str | Path, reason: str, fix: str = _REWRITE) -> None:
        self.path = Path(path)
        super().__init__(f"{path} is damaged ({reason}); {fix}")


__all__ = ["DamagedFileError", "RnnkitError", "RnnkitWarning"]

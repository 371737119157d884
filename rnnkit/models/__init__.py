"""Models: input encoding + recurrent layers + head, one per input/output pattern."""

from rnnkit.models.recurrent import CELLS, RecurrentSpec, build_recurrent, register_cell

__all__ = ["CELLS", "RecurrentSpec", "build_recurrent", "register_cell"]

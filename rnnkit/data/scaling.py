"""Column scalers fitted on the training part only, invertible on arrays and tensors.

Small on purpose (scikit-learn's scalers do the same maths, but they do not take torch
tensors and importing scikit-learn costs a second): ``fit`` on ``(N, F)`` rows,
``transform``/``inverse_transform`` on anything whose last axis is ``F``; a scaler of
one column broadcasts over any shape, so ``(B, H)`` forecasts invert directly.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch

__all__ = ["SCALERS", "MinMaxScaler", "Scaler", "StandardScaler", "scaler_from_dict"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


class Scaler:
    """Base class: ``y = (x - shift) / scale`` per column."""

    kind = "identity"

    def __init__(self) -> None:
        self.shift: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.fitted_rows = 0

    @property
    def n_features(self) -> int:
        """Columns the scaler was fitted on."""
        self._check_fitted()
        assert self.shift is not None
        return len(self.shift)

    def fit(self, rows: np.ndarray) -> Scaler:
        """Fit on ``(N, F)`` rows (the training part only)."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or len(rows) == 0:
            raise ValueError(f"fit expects a non-empty (N, F) array, got shape {rows.shape}")
        shift, scale = self._stats(rows)
        scale = np.where(scale > 0, scale, 1.0)  # a constant column stays finite
        self.shift, self.scale, self.fitted_rows = shift, scale, len(rows)
        return self

    def _stats(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(rows.shape[1]), np.ones(rows.shape[1])

    def _params(self, x: ArrayT) -> tuple[Any, Any]:
        self._check_fitted()
        assert self.shift is not None and self.scale is not None
        shift, scale = self.shift, self.scale
        if len(shift) == 1:
            shift, scale = shift[0], scale[0]
        elif x.shape[-1] != len(shift):
            raise ValueError(
                f"expected a last axis of {len(shift)} features, got shape {tuple(x.shape)}"
            )
        if isinstance(x, torch.Tensor):
            return (
                torch.as_tensor(shift, dtype=x.dtype, device=x.device),
                torch.as_tensor(scale, dtype=x.dtype, device=x.device),
            )
        return np.asarray(shift, dtype=x.dtype), np.asarray(scale, dtype=x.dtype)

    def transform(self, x: ArrayT) -> ArrayT:
        """Scale ``x`` (last axis = features; any shape for a one-column scaler)."""
        shift, scale = self._params(x)
        return (x - shift) / scale

    def inverse_transform(self, x: ArrayT) -> ArrayT:
        """Undo :meth:`transform` (e.g. on model outputs, to get prices back)."""
        shift, scale = self._params(x)
        return x * scale + shift

    def _check_fitted(self) -> None:
        if self.shift is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters (for checkpoints)."""
        self._check_fitted()
        assert self.shift is not None and self.scale is not None
        return {
            "kind": self.kind,
            "shift": self.shift.tolist(),
            "scale": self.scale.tolist(),
            "fitted_rows": self.fitted_rows,
        }

    def __repr__(self) -> str:
        state = f"fitted on {self.fitted_rows} rows" if self.shift is not None else "not fitted"
        return f"{type(self).__name__}({state})"


class StandardScaler(Scaler):
    """Zero mean, unit variance per column (population standard deviation).

    Example::

        >>> s = StandardScaler().fit(np.array([[1.0], [3.0]]))
        >>> s.transform(np.array([3.0])), s.inverse_transform(np.array([1.0]))
        (array([1.]), array([3.]))
    """

    kind = "standard"

    @property
    def mean(self) -> np.ndarray:
        """Column means of the fitted rows."""
        self._check_fitted()
        assert self.shift is not None
        return self.shift

    def _stats(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows.mean(axis=0), rows.std(axis=0)


class MinMaxScaler(Scaler):
    """Map each column's fitted ``[min, max]`` to ``[0, 1]``.

    Example::

        >>> MinMaxScaler().fit(np.array([[2.0], [4.0]])).transform(np.array([3.0]))
        array([0.5])
    """

    kind = "minmax"

    def _stats(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low = rows.min(axis=0)
        return low, rows.max(axis=0) - low


SCALERS: dict[str, type[Scaler]] = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "none": Scaler,
}
"""Scalers by name."""


def scaler_from_dict(data: dict[str, Any]) -> Scaler:
    """Inverse of :meth:`Scaler.to_dict`."""
    kinds = {cls.kind: cls for cls in SCALERS.values()}
    scaler = kinds[data["kind"]]()
    scaler.shift = np.asarray(data["shift"], dtype=np.float64)
    scaler.scale = np.asarray(data["scale"], dtype=np.float64)
    scaler.fitted_rows = int(data["fitted_rows"])
    return scaler

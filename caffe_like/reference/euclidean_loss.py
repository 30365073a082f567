r"""Reference for Caffe's ``EuclideanLoss`` layer (``euclidean_loss_layer.cpp``).

With ``N = a.shape[0]``::

    loss = sum((a - b)^2) / (2 N)
    da   = +loss_weight * (a - b) / N
    db   = -loss_weight * (a - b) / N

Both bottoms get a gradient (EuclideanLoss is the one Caffe loss that allows backward to bottom 1).

Shape:
    a: ``(N, ...)``; b: ``(N, ...)`` with the same number of elements (Caffe checks ``count(1)`` and the
    first axis); loss: ``()``; da has a's shape, db has b's shape.

See: Caffe ``EuclideanLossLayer``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import as_float, loss_weight, scalar

TYPE = "EuclideanLoss"


def _diff(a, b):
    a, b = as_float(a, b)
    if a.ndim < 1 or b.ndim < 1:
        raise ValueError(f"{TYPE}: both bottoms need a batch axis")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{TYPE}: the bottoms' first axes differ ({a.shape[0]} vs {b.shape[0]})")
    if a.size != b.size:
        raise ValueError(f"{TYPE}: the bottoms have different counts ({a.shape} vs {b.shape})")
    return a, b, a - b.reshape(a.shape)


def forward(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray]:
    """Returns ``(loss,)`` with ``loss = sum((a-b)^2) / (2 N)``."""
    a, _, d = _diff(a, b)
    return (scalar(np.sum(d * d) / a.shape[0] / 2.0, a.dtype),)


def backward(a: np.ndarray, b: np.ndarray, *, top_diffs: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(da, db)`` = ``(+lw (a-b)/N, -lw (a-b)/N)``, ``lw = top_diffs[0]``."""
    lw = loss_weight(top_diffs, TYPE)
    a, b, d = _diff(a, b)
    da = d * (lw / a.shape[0])
    return da, (-da).reshape(b.shape)

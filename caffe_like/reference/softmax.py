r"""Reference for Caffe's ``Softmax`` layer (``softmax_layer.cpp``).

Forward, along ``axis`` (``softmax_param.axis``, default 1), with the maximum subtracted first as Caffe
does for stability::

    y = exp(x - max_axis x) / sum_axis exp(x - max_axis x)

Backward (Caffe computes the dot product over the channel axis at every outer/inner position)::

    dx = (dy - sum_axis(dy * y)) * y

Shape:
    x: any shape with at least ``axis + 1`` axes; y and dx have x's shape.

See: Caffe ``SoftmaxLayer``.  NOTE: unlike Caffe, the reference computes in float64 when given float64
(Caffe's float32 build rounds each step to float32).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import as_float, canonical_axis, top_diff

TYPE = "Softmax"


def softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """Max-subtracted softmax of ``x`` along ``axis`` (x must already be a float array)."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def forward(x: np.ndarray, *, axis: int = 1) -> tuple[np.ndarray]:
    """Softmax along ``axis``; returns ``(y,)``."""
    (x,) = as_float(x)
    ax = canonical_axis(axis, x.ndim, TYPE)
    return (softmax(x, ax),)


def backward(x: np.ndarray, *, top_diffs: Sequence[np.ndarray], axis: int = 1) -> tuple[np.ndarray]:
    """``(dx,)`` with ``dx = (dy - sum_axis(dy*y)) * y``; ``top_diffs = (dy,)``."""
    (x,) = as_float(x)
    ax = canonical_axis(axis, x.ndim, TYPE)
    dy = top_diff(top_diffs, 0, TYPE)
    if dy is None:
        raise ValueError(f"{TYPE}: top_diffs[0] (the diff of y) is required")
    if dy.shape != x.shape:
        raise ValueError(f"{TYPE}: top diff shape {dy.shape} does not match the top shape {x.shape}")
    y = softmax(x, ax)
    dx = (dy - np.sum(dy * y, axis=ax, keepdims=True)) * y
    return (dx.astype(x.dtype, copy=False),)

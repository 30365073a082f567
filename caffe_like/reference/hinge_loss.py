r"""Reference for Caffe's ``HingeLoss`` layer (``hinge_loss_layer.cpp``), one-vs-all hinge.

With ``N = x.shape[0]``, ``x`` viewed as ``(N, dim)``, ``t[n, k] = +1`` if ``k == label[n]`` else ``-1`` and
``h = max(0, 1 - t * x)``::

    L1 (default): loss = sum(h) / N,    dx = -t * [h > 0] * loss_weight / N
    L2:           loss = sum(h^2) / N,  dx = -2 * t * h * loss_weight / N

(Caffe's L1 gradient is ``sign(-t*h)``, so it is 0 exactly at the kink ``t*x = 1``.)

Shape:
    x: ``(N, ...)`` (``dim = count(1)`` classes); label: ``N`` elements; loss: ``()``.

See: Caffe ``HingeLossLayer`` (``hinge_loss_param.norm``: L1 | L2).
NOTE: unlike Caffe, out-of-range labels raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import as_float, int_labels, loss_weight, scalar

TYPE = "HingeLoss"


def _setup(x, label, norm):
    (x,) = as_float(x)
    mode = str(norm).upper()
    if mode not in ("L1", "L2"):
        raise ValueError(f"{TYPE}: unknown norm {norm!r}; choose L1 or L2")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{TYPE}: the scores need a non-empty batch axis")
    n = x.shape[0]
    x2 = x.reshape(n, -1)
    lab, _ = int_labels(label, expected=n, num_classes=x2.shape[1], layer=TYPE)
    t = -np.ones_like(x2)
    t[np.arange(n), lab] = 1.0
    h = np.maximum(0.0, 1.0 - t * x2)
    return x, mode, n, t, h


def forward(x: np.ndarray, label: np.ndarray, *, norm: str = "L1") -> tuple[np.ndarray]:
    """Returns ``(loss,)``: ``sum(h)/N`` (L1) or ``sum(h^2)/N`` (L2)."""
    x, mode, n, _, h = _setup(x, label, norm)
    total = np.sum(h) if mode == "L1" else np.sum(h * h)
    return (scalar(total / n, x.dtype),)


def backward(
    x: np.ndarray, label: np.ndarray, *, top_diffs: Sequence[object], norm: str = "L1"
) -> tuple[np.ndarray, None]:
    """Returns ``(dx, None)``."""
    lw = loss_weight(top_diffs, TYPE)
    x, mode, n, t, h = _setup(x, label, norm)
    if mode == "L1":
        dx = -t * (h > 0) * (lw / n)
    else:
        dx = -2.0 * t * h * (lw / n)
    return dx.reshape(x.shape), None

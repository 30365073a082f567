r"""Reference for Caffe's ``SigmoidCrossEntropyLoss`` layer, BVLC master version.

Per element, in Caffe's numerically stable form (``x`` the input, ``t`` the target probability)::

    l = -( x * (t - [x >= 0]) - log(1 + exp(x - 2 x [x >= 0])) )
      = max(x, 0) - x t + log(1 + exp(-|x|))         (= -t log s(x) - (1-t) log(1 - s(x)))
    loss = sum over valid elements of l / normalizer
    dx   = loss_weight / normalizer * (sigmoid(x) - t)   at valid elements, 0 at ignored ones

* An element is ignored when ``static_cast<int>(t) == ignore_label``.
* normalizer (then ``max(1, .)``): BATCH_SIZE = ``x.shape[0]`` -- the default when neither
  ``normalization`` nor the legacy ``normalize`` is set, for backward compatibility with the older layer
  that always divided by the batch size --; VALID = number of non-ignored elements; FULL = ``x.size``;
  NONE = 1.  ``normalize=True/False`` means VALID/BATCH_SIZE when ``normalization`` is None.
* The target gets no gradient (Caffe refuses to backpropagate to it): ``backward`` returns None for it.

Shape:
    x: ``(N, ...)``; target: same number of elements; loss: ``()``; dx: x's shape.

See: Caffe ``SigmoidCrossEntropyLossLayer`` (BVLC master, with ``ignore_label``/``normalization``).
NOTE: unlike Caffe, ``log(1 + exp(-|x|))`` is computed with ``log1p`` (same value, better rounding).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import as_float, loss_weight, normalizer, resolve_normalization, scalar

TYPE = "SigmoidCrossEntropyLoss"


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow for large ``|x|``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _setup(x, target, normalization, normalize, ignore_label):
    x, target = as_float(x, target)
    if x.ndim < 1:
        raise ValueError(f"{TYPE}: the input needs a batch axis")
    if target.size != x.size:
        raise ValueError(f"{TYPE}: input and target must have the same count ({x.shape} vs {target.shape})")
    target = target.reshape(x.shape)
    mode = resolve_normalization(normalization, normalize, "BATCH_SIZE", TYPE)
    if ignore_label is None:
        valid = np.ones(x.shape, dtype=bool)
    else:
        if not np.all(np.isfinite(target)):
            raise ValueError(f"{TYPE}: targets must be finite")
        valid = np.trunc(target).astype(np.int64) != int(ignore_label)
    outer = x.shape[0]
    norm = normalizer(mode, outer, x.size // max(outer, 1), int(valid.sum()))
    return x, target, valid, norm


def forward(
    x: np.ndarray,
    target: np.ndarray,
    *,
    normalization: str | None = None,
    normalize: bool | None = None,
    ignore_label: int | None = None,
) -> tuple[np.ndarray]:
    """Returns ``(loss,)``."""
    x, target, valid, norm = _setup(x, target, normalization, normalize, ignore_label)
    per_element = np.maximum(x, 0.0) - x * target + np.log1p(np.exp(-np.abs(x)))
    return (scalar(np.sum(per_element[valid]) / norm, x.dtype),)


def backward(
    x: np.ndarray,
    target: np.ndarray,
    *,
    top_diffs: Sequence[object],
    normalization: str | None = None,
    normalize: bool | None = None,
    ignore_label: int | None = None,
) -> tuple[np.ndarray, None]:
    """Returns ``(dx, None)``."""
    lw = loss_weight(top_diffs, TYPE)
    x, target, valid, norm = _setup(x, target, normalization, normalize, ignore_label)
    dx = (sigmoid(x) - target) * valid * (lw / norm)
    return dx, None

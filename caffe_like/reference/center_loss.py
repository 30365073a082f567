r"""Reference for the ``CenterLoss`` layer (ydwen/caffe-face ``center_loss_layer.cpp``).

With features ``x`` flattened from ``axis`` into ``(M, K)``, centers ``C`` of shape ``(num_output, K)``,
``d_i = x_i - c_{y_i}`` and ``n_j`` the number of samples of class j in the batch::

    loss  = sum_i ||d_i||^2 / (2 M)
    dx_i  = loss_weight * d_i / M
    dC_j  = sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)      (0 for a class absent from the batch)

``dC`` is **not** the derivative of the loss: it is Caffe-face's center update rule written into the
centers' diff, scaled neither by the loss weight nor by ``M`` (the solver's lr times lr_mult plays the
paper's alpha).  A finite-difference check of ``C`` would therefore fail by design, so
:data:`NON_GRADIENT_INPUTS` marks the centers (input index 2 = bottoms + blobs) and
:func:`caffe_like.reference.gradcheck.check_layer` checks only ``x`` by default.

Deviations, all deliberate:

* caffe-face takes ``M = shape(0)`` and ``K = count(axis)``, which only agree with the blob for ``axis = 1``
  (the value every example uses); the reference uses ``M = count(0, axis)``, as InnerProduct does.
* The caffe-face CPU backward *adds* ``dC`` to the existing diff (the GPU one overwrites it); ``backward``
  returns the contribution of this call.
* caffe-face overrides LossLayer's setup, so a CenterLoss without an explicit ``loss_weight`` has weight 0;
  here the loss weight is whatever ``top_diffs[0]`` says.
* Out-of-range labels raise ``ValueError``.

Shape:
    x: ``(M, ...)`` flattened from ``axis``; label: ``M`` elements; centers: ``(num_output, K)``;
    loss: ``()``.

See: ydwen/caffe-face ``CenterLossLayer``; ``loss_layers.md`` §2 and §7.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import as_float, canonical_axis, count, int_labels, loss_weight, scalar

TYPE = "CenterLoss"

#: indices into ``(x, label, centers)`` whose backward output is not a derivative of forward.
NON_GRADIENT_INPUTS = (2,)


def _setup(x, label, centers, axis):
    x, centers = as_float(x, centers)
    if x.ndim < 1:
        raise ValueError(f"{TYPE}: the feature blob needs at least one axis")
    ax = canonical_axis(axis, x.ndim, TYPE)
    rows, k = count(x.shape, 0, ax), count(x.shape, ax)
    if centers.ndim != 2 or centers.shape[1] != k:
        raise ValueError(
            f"{TYPE}: centers must have shape (num_output, {k}) for features of shape {x.shape}, got {centers.shape}"
        )
    lab, _ = int_labels(label, expected=rows, num_classes=centers.shape[0], layer=TYPE)
    x2 = x.reshape(rows, k)
    return x, x2, lab, centers, x2 - centers[lab]


def forward(x: np.ndarray, label: np.ndarray, centers: np.ndarray, *, axis: int = 1) -> tuple[np.ndarray]:
    """Returns ``(loss,)`` with ``loss = sum ||x_i - c_{y_i}||^2 / (2M)``."""
    x, x2, _, _, d = _setup(x, label, centers, axis)
    return (scalar(np.sum(d * d) / x2.shape[0] / 2.0, x.dtype),)


def backward(
    x: np.ndarray, label: np.ndarray, centers: np.ndarray, *, top_diffs: Sequence[object], axis: int = 1
) -> tuple[np.ndarray, None, np.ndarray]:
    """Returns ``(dx, None, dC)``: the feature gradient and Caffe-face's center update (see above)."""
    lw = loss_weight(top_diffs, TYPE)
    x, x2, lab, centers, d = _setup(x, label, centers, axis)
    dx = d * (lw / x2.shape[0])
    n_per_class = np.bincount(lab, minlength=centers.shape[0])
    dC = np.zeros_like(centers)
    np.add.at(dC, lab, -d)
    dC /= (1.0 + n_per_class)[:, None]
    return dx.reshape(x.shape), None, dC

r"""Reference for Caffe's ``MultinomialLogisticLoss`` layer (``multinomial_logistic_loss_layer.cpp``).

The input is already a probability (e.g. a Softmax output).  With ``N = prob.shape[0]``, ``prob`` viewed as
``(N, dim)`` and ``T = kLOG_THRESHOLD``::

    loss = -sum_n log(max(prob[n, label[n]], T)) / N
    dprob[n, label[n]] = -loss_weight / N / max(prob[n, label[n]], T),  0 elsewhere

``kLOG_THRESHOLD`` is declared in Caffe's ``loss_layer.hpp`` as ``const float kLOG_THRESHOLD = 1e-20``; being
a float, its value is 1e-20 rounded to float32, 9.99999968e-21, which is what is used here too.  Below the
threshold Caffe's gradient is ``-lw/(N T)`` although the clamped loss is flat there, so finite-difference
checks must keep the label probabilities above it.

Shape:
    prob: ``(N, ...)`` (``dim = count(1)``); label: ``N`` elements (Caffe wants ``(N, 1, 1, 1)``); loss: ``()``.

See: Caffe ``MultinomialLogisticLossLayer``.
NOTE: unlike Caffe, out-of-range labels raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import as_float, int_labels, loss_weight, scalar

TYPE = "MultinomialLogisticLoss"

#: Caffe's ``kLOG_THRESHOLD``: the float32 value of 1e-20.
KLOG_THRESHOLD = float(np.float32(1e-20))


def _setup(prob, label):
    (prob,) = as_float(prob)
    if prob.ndim < 1 or prob.shape[0] == 0:
        raise ValueError(f"{TYPE}: the probabilities need a non-empty batch axis")
    n = prob.shape[0]
    p2 = prob.reshape(n, -1)
    lab, _ = int_labels(label, expected=n, num_classes=p2.shape[1], layer=TYPE)
    p_label = np.maximum(p2[np.arange(n), lab], KLOG_THRESHOLD)
    return prob, n, lab, p_label


def forward(prob: np.ndarray, label: np.ndarray) -> tuple[np.ndarray]:
    """Returns ``(loss,)``."""
    prob, n, _, p_label = _setup(prob, label)
    return (scalar(-np.sum(np.log(p_label)) / n, prob.dtype),)


def backward(prob: np.ndarray, label: np.ndarray, *, top_diffs: Sequence[object]) -> tuple[np.ndarray, None]:
    """Returns ``(dprob, None)``."""
    lw = loss_weight(top_diffs, TYPE)
    prob, n, lab, p_label = _setup(prob, label)
    diff = np.zeros((n, prob.size // n), dtype=prob.dtype)
    diff[np.arange(n), lab] = -(lw / n) / p_label
    return diff.reshape(prob.shape), None

r"""Reference for ``ReciprocalNormLoss``, the paper's feature incay term (Eq. 8; DESIGN.md §3).

With features ``f`` flattened from axis 1 into ``(N, K)``, scores ``(N, C)``, ``h_i = [argmax_j scores_ij
== label_i]`` (an indicator, not differentiated; argmax ties resolve to the *first* maximum, as
``np.argmax``) and ``D`` the normaliser::

    loss = sum_i h_i / (||f_i||^2 + eps) / D
    df_i = loss_weight * (-2 f_i h_i / (||f_i||^2 + eps)^2) / D

``normalization`` (``loss_param.normalization``): ``"BATCH_SIZE"`` (the default, and what None means: the
paper's ``1/N``), ``"FULL"`` (also ``N``: one element per sample), ``"VALID"`` (the number of correctly
classified samples, clamped at 1) or ``"NONE"`` (1).  Misclassified samples get zero gradient; the scores
and the label get none (``backward`` returns None for them).  ``eps`` is
``reciprocal_norm_loss_param.epsilon``.

This layer is caffe_like's own (the paper's authors released no code); ``loss_layers.md`` §3 lists the
third-party variants.  Out-of-range labels raise ``ValueError``.

Shape:
    feature: ``(N, K)`` or ``(N, C, H, W)`` (flattened from axis 1); scores: ``(N, C)`` (trailing singleton
    axes allowed: flattened from axis 1); label: ``N`` elements; loss: ``()``.

See: paper.md ("The loss (paper's Eq. 8)").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import NORMALIZATION_MODES, as_float, int_labels, loss_weight, scalar

TYPE = "ReciprocalNormLoss"


def _setup(feature, scores, label, epsilon, normalization):
    (feature,) = as_float(feature)
    scores = np.asarray(scores)
    if feature.ndim < 1 or feature.shape[0] == 0:
        raise ValueError(f"{TYPE}: the feature blob needs a non-empty batch axis")
    n = feature.shape[0]
    if scores.ndim < 1 or scores.shape[0] != n:
        raise ValueError(
            f"{TYPE}: scores {scores.shape} and features {feature.shape} differ in the batch axis"
        )
    s2 = scores.reshape(n, -1)
    lab, _ = int_labels(label, expected=n, num_classes=s2.shape[1], layer=TYPE)
    eps = float(epsilon)
    if not eps >= 0:
        raise ValueError(f"{TYPE}: epsilon must be >= 0, got {epsilon}")
    mode = "BATCH_SIZE" if normalization is None else str(normalization).upper()
    if mode not in NORMALIZATION_MODES:
        raise ValueError(
            f"{TYPE}: unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATION_MODES)}"
        )
    f2 = feature.reshape(n, -1)
    h = np.argmax(s2, axis=1) == lab
    denom = {"BATCH_SIZE": n, "FULL": n, "VALID": max(1, int(h.sum())), "NONE": 1}[mode]
    sq = np.einsum("ik,ik->i", f2, f2) + eps
    return feature, f2, h, sq, float(denom)


def forward(
    feature: np.ndarray,
    scores: np.ndarray,
    label: np.ndarray,
    *,
    epsilon: float = 1e-5,
    normalization: str | None = "BATCH_SIZE",
) -> tuple[np.ndarray]:
    """Returns ``(loss,)`` with ``loss = sum_i h_i / (||f_i||^2 + eps) / D``."""
    feature, _, h, sq, denom = _setup(feature, scores, label, epsilon, normalization)
    return (scalar(np.sum(h / sq) / denom, feature.dtype),)


def backward(
    feature: np.ndarray,
    scores: np.ndarray,
    label: np.ndarray,
    *,
    top_diffs: Sequence[object],
    epsilon: float = 1e-5,
    normalization: str | None = "BATCH_SIZE",
) -> tuple[np.ndarray, None, None]:
    """Returns ``(dfeature, None, None)``."""
    lw = loss_weight(top_diffs, TYPE)
    feature, f2, h, sq, denom = _setup(feature, scores, label, epsilon, normalization)
    coef = np.where(h, -2.0 / sq**2, 0.0) * (lw / denom)
    return (coef[:, None] * f2).reshape(feature.shape), None, None

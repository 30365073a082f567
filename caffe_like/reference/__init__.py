"""Independent NumPy references for caffe_like's loss layers, and Caffe's gradient checker.

These modules exist to catch the torch layers' mistakes, so they share no code with them: they import
NumPy and each other, never torch and never the rest of caffe_like (a test imports them with torch
blocked).  Each is written from the formulas in ``reference/loss_layers.md``, ``caffe_semantics.md`` and
``paper.md`` and names the Caffe source it mirrors and where caffe_like deliberately differs.

The contract every layer module follows
---------------------------------------
* ``TYPE``: the Caffe layer type string.
* ``forward(*bottoms, *blobs, **params) -> tuple of tops``.  Learnable blobs (L-Softmax's ``W``,
  CenterLoss's centers) come as extra positional arguments after the bottoms; params are keyword
  arguments named and defaulted as in caffe.proto (e.g. ``axis=1``, ``normalization=None`` = unset,
  ``ignore_label=None`` = unset).  Tops are NumPy arrays in the common floating dtype of the data inputs
  (float64 for float64 or integer input, float32 stays float32); a loss top is a 0-d array (Caffe's
  scalar loss, shape ``[]``) holding the *unweighted* loss.  Optional extra tops are requested with a
  ``<name>_top=True`` flag (``prob_top``, ``lambda_top``, ``per_class_top``).
* ``backward(*bottoms, *blobs, top_diffs, **params) -> tuple of diffs``: one per bottom, then one per
  learnable blob; None where Caffe sends no gradient (labels, targets, ReciprocalNormLoss's scores).
  ``top_diffs`` is keyword-only, a tuple aligned with the tops.  For a loss top the diff is its loss
  weight, as Caffe seeds loss tops' diffs with ``loss_weight``: ``backward(..., top_diffs=(2.5,))`` gives
  2.5 times the gradient.  Diffs of tops the Caffe layer ignores in backward (``prob``, ``lambda``) may be
  given and are ignored.  A blob's diff is this call's contribution (Caffe accumulates into the diff).
* Pure functions: inputs are never modified; labels are float arrays cast to int by truncation, as
  Caffe's ``static_cast<int>``; invalid inputs (label out of range, mismatched shapes) raise ``ValueError``.
* ``NON_GRADIENT_INPUTS`` (optional): indices into ``bottoms + blobs`` whose "gradient" is not a
  derivative of ``forward`` (CenterLoss's center update rule); :func:`gradcheck.check_layer` skips them.
* Accuracy has no backward: its ``backward`` raises ``NotImplementedError``, as Caffe's does.

:mod:`.gradcheck` is Caffe's ``GradientChecker`` for any pair of NumPy callables (also torch layers
wrapped as such), with exhaustive, objective and random-direction modes.

Modules (explicit list; ``REFERENCES`` maps each layer type to its module)::

    softmax  softmax_with_loss  euclidean_loss  hinge_loss  sigmoid_cross_entropy_loss
    multinomial_logistic_loss  accuracy  large_margin_inner_product  center_loss  reciprocal_norm_loss
    gradcheck
    _common   (private: dtype, axis, label and loss-normalisation helpers shared by the layer modules)
"""

from __future__ import annotations

from . import (
    accuracy,
    center_loss,
    euclidean_loss,
    gradcheck,
    hinge_loss,
    large_margin_inner_product,
    multinomial_logistic_loss,
    reciprocal_norm_loss,
    sigmoid_cross_entropy_loss,
    softmax,
    softmax_with_loss,
)

#: Caffe layer type -> reference module.
REFERENCES = {
    module.TYPE: module
    for module in (
        softmax,
        softmax_with_loss,
        euclidean_loss,
        hinge_loss,
        sigmoid_cross_entropy_loss,
        multinomial_logistic_loss,
        accuracy,
        large_margin_inner_product,
        center_loss,
        reciprocal_norm_loss,
    )
}

__all__ = [
    "REFERENCES",
    "accuracy",
    "center_loss",
    "euclidean_loss",
    "gradcheck",
    "hinge_loss",
    "large_margin_inner_product",
    "multinomial_logistic_loss",
    "reciprocal_norm_loss",
    "sigmoid_cross_entropy_loss",
    "softmax",
    "softmax_with_loss",
]

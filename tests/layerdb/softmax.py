"""LayerInfo entry: Softmax (Caffe's per-position softmax along ``axis``)."""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample


def _samples(rng):
    return [
        LayerSample("axis1_4d", (rng.standard_normal((2, 4, 2, 3)),)),
        LayerSample("axis3_4d", (rng.standard_normal((2, 3, 2, 4)),), layer={"softmax_param": {"axis": 3}}),
        LayerSample("axis_neg1_3d", (rng.standard_normal((3, 2, 6)),), layer={"softmax_param": {"axis": -1}}),
        LayerSample("axis0", (rng.standard_normal((4, 3)),), layer={"softmax_param": {"axis": 0}}),
        LayerSample("2d_default", (rng.standard_normal((5, 7)),)),
        LayerSample("1d_axis0", (rng.standard_normal(6),), layer={"softmax_param": {"axis": 0}}),
        LayerSample("large_scores_no_overflow", (1000.0 + 3 * rng.standard_normal((2, 4, 3)),)),
        LayerSample("single_class_is_1", (rng.standard_normal((3, 1, 2)),), expected=(np.ones((3, 1, 2)),)),
        LayerSample("hand_computed", (np.array([[0.0, np.log(3.0)], [np.log(2.0), np.log(2.0)]]),),
                    expected=(np.array([[0.25, 0.75], [0.5, 0.5]]),)),
    ]


def _reference(sample, bottoms, blobs):
    x = bottoms[0]
    axis = sample.layer.get("softmax_param", {}).get("axis", 1) % x.ndim
    moved = np.moveaxis(x, axis, -1)
    out = np.empty_like(moved)
    for index in np.ndindex(moved.shape[:-1]):  # one softmax per (outer, inner) position
        row = moved[index]
        e = np.exp(row - row.max())
        out[index] = e / e.sum()
    return [np.moveaxis(out, -1, axis)]


INFOS = [LayerInfo("Softmax", _samples, reference=_reference)]

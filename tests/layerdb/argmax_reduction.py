"""LayerInfo entries: ArgMax (no gradient) and Reduction."""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample

# -- ArgMax -----------------------------------------------------------------------------------------


def _argmax_samples(rng):
    x4 = rng.standard_normal((2, 3, 2, 2))
    ties = np.array([[1.0, 3.0, 3.0, 0.0, 3.0], [2.0, 2.0, 2.0, 2.0, 2.0]])
    return [
        LayerSample("flat_top1", (rng.standard_normal((3, 5)),), check_grad=False),
        LayerSample("flat_4d_top3_max_val", (x4,), layer={"argmax_param": {"top_k": 3, "out_max_val": True}},
                    check_grad=False),
        LayerSample("axis1_top2", (x4,), layer={"argmax_param": {"axis": 1, "top_k": 2}}, check_grad=False),
        LayerSample("axis_negative_max_val", (x4,), layer={"argmax_param": {"axis": -1, "out_max_val": True}},
                    check_grad=False),
        LayerSample("axis0", (x4,), layer={"argmax_param": {"axis": 0}}, check_grad=False),
        # std::greater on (value, index) pairs: among equal values the larger index ranks first
        LayerSample("ties_larger_index_first", (ties,), layer={"argmax_param": {"top_k": 3, "out_max_val": True}},
                    check_grad=False,
                    expected=(np.array([[[4.0, 2.0, 1.0], [3.0, 3.0, 3.0]], [[4.0, 3.0, 2.0], [2.0, 2.0, 2.0]]]),)),
        LayerSample("ties_top1", (ties,), check_grad=False, expected=(np.array([[[4.0]], [[4.0]]]),)),
        LayerSample("ties_axis", (ties.T.copy(),), layer={"argmax_param": {"axis": 0, "top_k": 2}}, check_grad=False,
                    expected=(np.array([[4.0, 4.0], [2.0, 3.0]]),)),
    ]


def _argmax_reference(sample, bottoms, blobs):
    p = sample.layer.get("argmax_param", {})
    x = bottoms[0]
    k = p.get("top_k", 1)
    out_max_val = p.get("out_max_val", False)
    if "axis" not in p:
        flat = x.reshape(x.shape[0], -1)
        top_shape = [1] * max(x.ndim, 3)
        top_shape[0], top_shape[1], top_shape[2] = x.shape[0], 2 if out_max_val else 1, k
        out = np.zeros((x.shape[0], 2 if out_max_val else 1, k))
        for n in range(flat.shape[0]):
            pairs = sorted(((flat[n, j], j) for j in range(flat.shape[1])), reverse=True)[:k]
            for j, (value, index) in enumerate(pairs):
                out[n, 0, j] = index
                if out_max_val:
                    out[n, 1, j] = value
        return [out.reshape(top_shape)]
    axis = p["axis"] % x.ndim
    moved = np.moveaxis(x, axis, -1)
    out = np.zeros(moved.shape[:-1] + (k,))
    for pos in np.ndindex(*moved.shape[:-1]):
        row = moved[pos]
        pairs = sorted(((row[j], j) for j in range(row.size)), reverse=True)[:k]
        for j, (value, index) in enumerate(pairs):
            out[pos + (j,)] = value if out_max_val else index
    return [np.moveaxis(out, -1, axis)]


# -- Reduction --------------------------------------------------------------------------------------


def _reduction_samples(rng):
    x = rng.standard_normal((2, 3, 4))
    away_from_zero = np.sign(x) * (0.2 + np.abs(x))  # ASUM has a kink at 0
    return [
        LayerSample("sum_all_default", (x,)),
        LayerSample("sum_axis1_coeff", (x,), layer={"reduction_param": {"axis": 1, "coeff": -1.5}}),
        LayerSample("asum_axis1", (away_from_zero,), layer={"reduction_param": {"operation": "ASUM", "axis": 1}}),
        LayerSample("sumsq_axis_negative_coeff", (x,),
                    layer={"reduction_param": {"operation": "SUMSQ", "axis": -1, "coeff": 0.5}}),
        LayerSample("mean_axis2_coeff", (x,), layer={"reduction_param": {"operation": "MEAN", "axis": 2, "coeff": 3.0}}),
        LayerSample("mean_all", (x,), layer={"reduction_param": {"operation": "MEAN"}}),
        LayerSample("asum_zeros", (np.array([[0.0, -2.0, 1.0], [0.0, 0.0, 0.0]]),),
                    layer={"reduction_param": {"operation": "ASUM", "axis": 1}}, check_grad=False,
                    expected=(np.array([3.0, 0.0]),)),
    ]


def _reduction_reference(sample, bottoms, blobs):
    p = sample.layer.get("reduction_param", {})
    x = bottoms[0]
    axis = p.get("axis", 0) % x.ndim
    op = p.get("operation", "SUM")
    coeff = p.get("coeff", 1.0)
    outer = int(np.prod(x.shape[:axis]))
    rows = x.reshape(outer, -1)
    out = np.zeros(outer)
    for i in range(outer):
        total = 0.0
        for v in rows[i]:
            total += {"SUM": v, "MEAN": v, "ASUM": abs(v), "SUMSQ": v * v}[op]
        out[i] = coeff * (total / rows.shape[1] if op == "MEAN" else total)
    return [out.reshape(x.shape[:axis])]


INFOS = [
    LayerInfo("ArgMax", _argmax_samples, reference=_argmax_reference, grad_bottoms=()),
    LayerInfo("Reduction", _reduction_samples, reference=_reduction_reference,
              tol={"float64": (1e-9, 1e-12), "float32": (1e-5, 1e-5)}),
]

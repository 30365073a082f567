"""LayerInfo entries: Eltwise (SUM with coeff, PROD stable/unstable, MAX with Caffe's tie rule).

Gradient-checked samples use 3 bottoms (``grad_bottoms`` is per entry); the 2-bottom and tie cases are
forward-only here and their gradients are checked in tests/layers/test_eltwise.py.
"""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample


def _distinct(rng, shape, n):
    """n arrays whose entries differ pairwise by more than 0.1 at every position (no MAX ties or kinks)."""
    common = rng.standard_normal(shape)
    ranks = np.argsort(rng.random((n, *shape)), axis=0)  # a random order of the bottoms at each position
    jitter = rng.uniform(-0.03, 0.03, (n, *shape))
    return tuple(common + 0.2 * ranks[i] + jitter[i] for i in range(n))


def _samples(rng):
    shape = (2, 3, 2, 2)
    x3 = tuple(rng.standard_normal(shape) for _ in range(3))
    ties_a = np.array([[1.0, 2.0, 3.0, -1.0]])
    ties_b = np.array([[1.0, 5.0, 3.0, -1.0]])
    ties_c = np.array([[1.0, 2.0, 3.0, 0.0]])
    return [
        LayerSample("sum_default", x3),
        LayerSample("sum_coeff", x3, layer={"eltwise_param": {"operation": "SUM", "coeff": [1.0, -0.5, 2.0]}}),
        LayerSample("sum_two", x3[:2], check_grad=False),
        LayerSample("prod", x3, layer={"eltwise_param": {"operation": "PROD"}}),
        LayerSample("prod_with_zeros", (np.where(x3[0] > 0.5, 0.0, x3[0]), x3[1], np.where(x3[2] < -0.5, 0.0, x3[2])),
                    layer={"eltwise_param": {"operation": "PROD"}}),
        LayerSample("prod_unstable_grad", tuple(np.sign(x) * (0.5 + np.abs(x)) for x in x3),
                    layer={"eltwise_param": {"operation": "PROD", "stable_prod_grad": False}}),
        LayerSample("max", _distinct(rng, shape, 3), layer={"eltwise_param": {"operation": "MAX"}}),
        LayerSample("max_two", _distinct(rng, (3, 4), 2), layer={"eltwise_param": {"operation": "MAX"}},
                    check_grad=False),
        # ties: values are the same whoever wins; the winner matters for the gradient (focused tests)
        LayerSample("max_ties", (ties_a, ties_b, ties_c), layer={"eltwise_param": {"operation": "MAX"}},
                    check_grad=False, expected=(np.array([[1.0, 5.0, 3.0, 0.0]]),)),
    ]


def _reference(sample, bottoms, blobs):
    p = sample.layer.get("eltwise_param", {})
    op = p.get("operation", "SUM")
    shape = bottoms[0].shape
    flat = [b.reshape(-1) for b in bottoms]
    out = np.zeros(flat[0].size)
    if op == "SUM":
        coeff = p.get("coeff", [1.0] * len(bottoms))
        for c, x in zip(coeff, flat):
            out += c * x
    elif op == "PROD":
        out[:] = 1.0
        for x in flat:
            out *= x
    else:  # Caffe's loop: strict a > b between bottoms 0 and 1, then strictly greater than the running max
        for j in range(out.size):
            best = flat[0][j] if flat[0][j] > flat[1][j] else flat[1][j]
            for x in flat[2:]:
                if x[j] > best:
                    best = x[j]
            out[j] = best
    return [out.reshape(shape)]


INFOS = [
    LayerInfo("Eltwise", _samples, reference=_reference, grad_bottoms=(0, 1, 2)),
]

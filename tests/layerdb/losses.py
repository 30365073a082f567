"""LayerInfo entries: SoftmaxWithLoss, EuclideanLoss, HingeLoss, SigmoidCrossEntropyLoss,
MultinomialLogisticLoss (references: plain NumPy here, from Caffe's formulas)."""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample

FLT_MIN = 1.17549435e-38


def _labels(rng, shape, n_classes):
    return rng.integers(0, n_classes, size=shape).astype(np.float64)


# -- SoftmaxWithLoss --------------------------------------------------------------------------------

def _swl_samples(rng):
    s2 = rng.standard_normal((6, 4)) * 2
    y2 = _labels(rng, (6,), 4)
    s4 = rng.standard_normal((2, 5, 3, 2))
    y4 = _labels(rng, (2, 1, 3, 2), 5)
    y4_ignore = y4.copy()
    y4_ignore[0, 0, 1, :] = 255
    huge = np.array([[0.0, 200.0, -200.0]])
    return [
        LayerSample("2d_default", (s2, y2)),
        LayerSample("4d_valid", (s4, y4)),
        LayerSample("ignore_valid", (s4, y4_ignore), layer={"loss_param": {"ignore_label": 255}}),
        LayerSample("ignore_full", (s4, y4_ignore), layer={"loss_param": {"ignore_label": 255, "normalization": "FULL"}}),
        LayerSample("ignore_batch", (s4, y4_ignore), layer={"loss_param": {"ignore_label": 255, "normalization": "BATCH_SIZE"}}),
        LayerSample("none", (s4, y4), layer={"loss_param": {"normalization": "NONE"}}),
        LayerSample("legacy_normalize_false", (s4, y4), layer={"loss_param": {"normalize": False}}),
        LayerSample("axis2", (np.moveaxis(s4, 1, 2).copy(), y4.reshape(2, 3, 1, 2)), layer={"softmax_param": {"axis": 2}}),
        LayerSample("prob_top", (s2, y2), n_tops=2, layer={"loss_weight": [1, 0]}),
        LayerSample("cap_87", (huge, np.array([2.0])), expected=(np.array(-np.log(FLT_MIN)),), check_grad=False),
        LayerSample("all_ignored", (s2, np.full(6, 7.0)), layer={"loss_param": {"ignore_label": 7}},
                    expected=(np.array(0.0),)),
    ]


def _swl_reference(sample, bottoms, blobs):
    scores, labels = bottoms
    axis = sample.layer.get("softmax_param", {}).get("axis", 1)
    lp = sample.layer.get("loss_param", {})
    ignore = lp.get("ignore_label")
    mode = lp.get("normalization", "VALID" if lp.get("normalize", True) else "BATCH_SIZE")
    moved = np.moveaxis(scores, axis, -1)
    shifted = moved - moved.max(axis=-1, keepdims=True)
    prob = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    flat_p = prob.reshape(-1, prob.shape[-1])
    flat_y = labels.reshape(-1).astype(int)
    loss, valid = 0.0, 0
    for p, y in zip(flat_p, flat_y):
        if ignore is not None and y == ignore:
            continue
        loss -= np.log(max(p[y], FLT_MIN))
        valid += 1
    outer = int(np.prod(scores.shape[:axis]))
    norm = {"FULL": flat_y.size, "VALID": valid, "BATCH_SIZE": outer, "NONE": 1}[mode]
    tops = [np.array(loss / max(norm, 1))]
    if sample.n_tops == 2:
        tops.append(np.moveaxis(prob, -1, axis))
    return tops


# -- EuclideanLoss ----------------------------------------------------------------------------------

def _euclid_samples(rng):
    return [
        LayerSample("3d", (rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2)))),
        LayerSample("shapes_differ", (rng.standard_normal((5, 1)), rng.standard_normal((5,)))),
        LayerSample("weight_2", (rng.standard_normal((2, 3)), rng.standard_normal((2, 3))), layer={"loss_weight": 2}),
    ]


def _euclid_reference(sample, bottoms, blobs):
    a, b = bottoms
    return [np.array(((a - b.reshape(a.shape)) ** 2).sum() / (2 * a.shape[0]))]


# -- HingeLoss --------------------------------------------------------------------------------------

def _hinge_samples(rng):
    def away(x):  # keep 1 - t*x away from the hinge for gradcheck
        return np.where(np.abs(np.abs(x) - 1) < 0.05, x + 0.2, x)

    x = away(rng.standard_normal((4, 5)) * 1.5)
    y = _labels(rng, (4,), 5)
    return [
        LayerSample("l1", (x, y)),
        LayerSample("l2", (x, y), layer={"hinge_loss_param": {"norm": "L2"}}),
        LayerSample("4d_scores", (away(rng.standard_normal((3, 2, 2, 1))), _labels(rng, (3,), 4))),
    ]


def _hinge_reference(sample, bottoms, blobs):
    x, y = bottoms
    n = x.shape[0]
    flat = x.reshape(n, -1)
    t = -np.ones_like(flat)
    t[np.arange(n), y.astype(int)] = 1
    h = np.maximum(0, 1 - t * flat)
    if sample.layer.get("hinge_loss_param", {}).get("norm") == "L2":
        h = h**2
    return [np.array(h.sum() / n)]


# -- SigmoidCrossEntropyLoss ------------------------------------------------------------------------

def _sce_samples(rng):
    x = rng.standard_normal((3, 4, 2)) * 3
    t = rng.uniform(0, 1, size=(3, 4, 2))
    t_ignore = (rng.uniform(size=(3, 4, 2)) > 0.5).astype(np.float64)
    t_ignore[0, 0, :] = -1
    return [
        LayerSample("default_batch", (x, t)),
        LayerSample("valid_ignore", (x, t_ignore), layer={"loss_param": {"normalization": "VALID", "ignore_label": -1}}),
        LayerSample("legacy_normalize_true", (x, t), layer={"loss_param": {"normalize": True}}),
        LayerSample("large_logits", (np.array([[40.0, -40.0, 0.5]]), np.array([[0.0, 1.0, 1.0]]))),
    ]


def _sce_reference(sample, bottoms, blobs):
    x, t = bottoms
    t = t.reshape(x.shape)
    lp = sample.layer.get("loss_param", {})
    ignore = lp.get("ignore_label")
    mode = lp.get("normalization", ("VALID" if lp["normalize"] else "BATCH_SIZE") if "normalize" in lp else "BATCH_SIZE")
    # −[t·log σ(x) + (1−t)·log(1−σ(x))] in the form that never overflows
    per = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    valid = np.ones_like(x, dtype=bool) if ignore is None else t != ignore
    norm = {"FULL": x.size, "VALID": valid.sum(), "BATCH_SIZE": x.shape[0], "NONE": 1}[mode]
    return [np.array(per[valid].sum() / max(norm, 1))]


# -- MultinomialLogisticLoss ------------------------------------------------------------------------

def _mll_samples(rng):
    raw = rng.uniform(0.1, 1.0, size=(5, 4))
    prob = raw / raw.sum(axis=1, keepdims=True)
    return [
        LayerSample("probs", (prob, _labels(rng, (5,), 4))),
        LayerSample("floor", (np.array([[0.0, 1.0]]), np.array([0.0])), expected=(np.array(-np.log(1e-20)),),
                    check_grad=False),
    ]


def _mll_reference(sample, bottoms, blobs):
    p, y = bottoms
    n = p.shape[0]
    picked = p.reshape(n, -1)[np.arange(n), y.astype(int)]
    return [np.array(-np.log(np.maximum(picked, 1e-20)).sum() / n)]


_LOSS_TOL = {"float64": (1e-9, 1e-10), "float32": (2e-5, 2e-5)}
# Loss layers are training-only (a deploy net drops them), and their label checks depend on the data,
# which torch.export refuses to trace: they are not exported to ONNX.

INFOS = [
    LayerInfo("SoftmaxWithLoss", _swl_samples, reference=_swl_reference, tol=_LOSS_TOL, onnx=False),
    LayerInfo("EuclideanLoss", _euclid_samples, reference=_euclid_reference, grad_bottoms=(0, 1), tol=_LOSS_TOL, onnx=False),
    LayerInfo("HingeLoss", _hinge_samples, reference=_hinge_reference, tol=_LOSS_TOL, onnx=False),
    LayerInfo("SigmoidCrossEntropyLoss", _sce_samples, reference=_sce_reference, tol=_LOSS_TOL, onnx=False),
    LayerInfo("MultinomialLogisticLoss", _mll_samples, reference=_mll_reference, tol=_LOSS_TOL, onnx=False),
]

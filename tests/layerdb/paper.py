"""LayerInfo entries: the paper's layers LargeMarginInnerProduct, CenterLoss, ReciprocalNormLoss.

References call :mod:`caffe_like.reference`'s forward functions (NumPy, float64).  L-Softmax samples that
torch.autograd.gradcheck runs keep λ constant (gamma 0), since every TRAIN forward advances the layer's
counter; CenterLoss samples that gradcheck runs freeze the centers (lr_mult 0), whose "gradient" is
Caffe-face's update rule, not a derivative (tests/paper checks it against the reference).
"""

from __future__ import annotations

import math

import numpy as np

from caffe_like.reference import center_loss as ref_center
from caffe_like.reference import large_margin_inner_product as ref_lmip
from caffe_like.reference import reciprocal_norm_loss as ref_rn

from layer_db import LayerInfo, LayerSample


def _labels(rng, shape, n_classes):
    return rng.integers(0, n_classes, size=shape).astype(np.float64)


# -- LargeMarginInnerProduct ------------------------------------------------------------------------

def _at_angle(w: np.ndarray, cos: float, norm: float, rng) -> np.ndarray:
    """A vector of norm ``norm`` at cosine ``cos`` to ``w``."""
    u = w / np.linalg.norm(w)
    v = rng.standard_normal(w.shape)
    v -= (v @ u) * u
    v /= np.linalg.norm(v)
    return norm * (cos * u + math.sqrt(max(0.0, 1.0 - cos * cos)) * v)


def _lmip(m: str, n: int = 4, **extra) -> dict:
    block = {"num_output": n, "type": m, "weight_filler": {"type": "gaussian", "std": 1.0}}
    block.update(extra)
    return {"largemargin_inner_product_param": block}


def _lmip_samples(rng):
    x = rng.standard_normal((6, 5))
    y = _labels(rng, (6,), 4)
    # rows at angles within 1e-3 of the switch points k·pi/m (m = 3, 4) to their class's weight
    w = rng.standard_normal((4, 5))
    y_sw = np.array([0, 1, 2, 3, 0, 1, 2, 3], dtype=np.float64)
    angles = [math.pi / 3 + 1e-3, 2 * math.pi / 3 - 1e-3, math.pi / 4 - 1e-3, math.pi / 2 + 1e-3,
              3 * math.pi / 4 + 1e-3, math.pi / 3 - 1e-3, 2 * math.pi / 3 + 1e-3, math.pi / 4 + 1e-3]
    x_sw = np.stack([_at_angle(w[int(c)], math.cos(t), 1.5, rng) for c, t in zip(y_sw, angles)])
    x_zero = x.copy()
    x_zero[2] = 0.0
    x4 = rng.standard_normal((3, 2, 2, 2))
    return [
        LayerSample("single_schedule", (x, y), layer=_lmip("SINGLE", base=5, gamma=0.5, iteration=2)),
        LayerSample("double", (x, y), layer=_lmip("DOUBLE", base=3)),
        LayerSample("triple", (x, y), layer=_lmip("TRIPLE", base=0.5)),
        LayerSample("quadruple", (x, y), layer=_lmip("QUADRUPLE", base=2)),
        LayerSample("lambda_zero_pure_psi", (x, y), layer=_lmip("QUADRUPLE", base=0)),
        LayerSample("proto_defaults_lambda_1", (x, y), layer=_lmip("DOUBLE"), n_tops=2),
        LayerSample("schedule_lambda_top", (x, y), n_tops=2, check_grad=False,
                    layer=_lmip("TRIPLE", base=10, gamma=0.5, power=2, iteration=3, lambda_min=0.25)),
        LayerSample("schedule_floor", (x, y), n_tops=2, check_grad=False,
                    layer=_lmip("DOUBLE", base=10, gamma=0.5, power=2, iteration=30, lambda_min=0.25)),
        LayerSample("switch_points_m3", (x_sw, y_sw), layer=_lmip("TRIPLE", base=0.5), blobs=(w,)),
        LayerSample("switch_points_m4", (x_sw, y_sw), layer=_lmip("QUADRUPLE", base=0.5), blobs=(w,)),
        LayerSample("zero_feature_row", (x_zero, y), layer=_lmip("QUADRUPLE", base=1), check_grad=False),
        LayerSample("4d_features", (x4, _labels(rng, (3,), 4)), layer=_lmip("TRIPLE", base=1)),
        LayerSample("axis2", (rng.standard_normal((2, 3, 4)), _labels(rng, (2, 3), 5)),
                    layer=_lmip("QUADRUPLE", n=5, base=1, axis=2)),
        LayerSample("test_phase_plain", (x, y), layer=_lmip("QUADRUPLE", base=1), phase="TEST", n_tops=2),
        LayerSample("test_phase_no_label", (x,), layer=_lmip("DOUBLE", base=1), phase="TEST"),
    ]


def _lmip_reference(sample, bottoms, blobs):
    p = sample.layer["largemargin_inner_product_param"]
    if sample.phase == "TEST":
        lam = 0.0
    else:
        lam = ref_lmip.lambda_schedule(p.get("iteration", 0) + 1, base=p.get("base", 1.0),
                                       gamma=p.get("gamma", 0.0), power=p.get("power", 1.0),
                                       lambda_min=p.get("lambda_min", 0.0))
    label = bottoms[1] if len(bottoms) > 1 else None
    return list(ref_lmip.forward(bottoms[0], label, blobs[0], m=p["type"], lam=lam, phase=sample.phase,
                                 axis=p.get("axis", 1), lambda_top=sample.n_tops > 1))


# -- CenterLoss -------------------------------------------------------------------------------------

def _center(n: int = 4, weight: float = 0.01, frozen: bool = True, **extra) -> dict:
    layer = {"center_loss_param": {"num_output": n, "center_filler": {"type": "gaussian", "std": 1.0}, **extra},
             "loss_weight": weight}
    if frozen:  # gradcheck sees only the features; the centers' update rule is checked in tests/paper
        layer["param"] = [{"lr_mult": 0}]
    return layer


def _center_samples(rng):
    x = rng.standard_normal((8, 3))
    y = _labels(rng, (8,), 4)
    y_absent = np.array([0, 0, 1, 1, 1, 3, 3, 0], dtype=np.float64)  # class 2 absent
    return [
        LayerSample("weight_0_01", (x, y), layer=_center()),
        LayerSample("weight_2_5", (x, y), layer=_center(weight=2.5)),
        LayerSample("4d_features", (rng.standard_normal((4, 2, 2, 2)), _labels(rng, (4,), 3)), layer=_center(n=3)),
        LayerSample("absent_class_trainable_centers", (x, y_absent), layer=_center(frozen=False), check_grad=False),
        LayerSample("at_the_centers_is_0", (np.array([[1.0, 2.0], [-1.0, 0.5]]), np.array([1.0, 0.0])),
                    layer=_center(n=2), blobs=(np.array([[-1.0, 0.5], [1.0, 2.0]]),), expected=(np.array(0.0),)),
    ]


def _center_reference(sample, bottoms, blobs):
    axis = sample.layer["center_loss_param"].get("axis", 1)
    return list(ref_center.forward(bottoms[0], bottoms[1], blobs[0], axis=axis))


# -- ReciprocalNormLoss -----------------------------------------------------------------------------

def _rn_samples(rng):
    f = rng.standard_normal((8, 3)) * 2
    scores = rng.standard_normal((8, 4))
    y = scores.argmax(axis=1).astype(np.float64)
    y[::3] = (y[::3] + 1) % 4  # rows 0, 3, 6 misclassified
    f4 = rng.standard_normal((4, 2, 2, 2))
    s4 = rng.standard_normal((4, 3, 1, 1))
    y4 = s4.reshape(4, 3).argmax(axis=1).astype(np.float64)
    y4[1] = (y4[1] + 1) % 3
    ties = np.array([[0.5, 0.5, 0.1], [0.2, 0.7, 0.7], [0.3, 0.1, 0.3]])
    f_ties = np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 0.5]])
    y_ties = np.array([0.0, 2.0, 0.0])  # first max wins: rows 0 and 2 correct, row 1 wrong
    eps = 1e-5
    wrong = (scores.argmax(axis=1) + 1) % 4
    f_zero = f.copy()
    f_zero[1] = 0.0
    return [
        LayerSample("default_batch_size", (f, scores, y)),
        LayerSample("batch_size", (f, scores, y), layer={"loss_param": {"normalization": "BATCH_SIZE"}}),
        LayerSample("full", (f, scores, y), layer={"loss_param": {"normalization": "FULL"}}),
        LayerSample("valid", (f, scores, y), layer={"loss_param": {"normalization": "VALID"}}),
        LayerSample("none", (f, scores, y), layer={"loss_param": {"normalization": "NONE"}}),
        LayerSample("legacy_normalize_true_is_valid", (f, scores, y), layer={"loss_param": {"normalize": True}}),
        LayerSample("weight_0_1_eps_0_5", (f, scores, y),
                    layer={"loss_weight": 0.1, "reciprocal_norm_loss_param": {"epsilon": 0.5}}),
        LayerSample("4d_features", (f4, s4, y4)),
        LayerSample("none_correct_valid_is_0", (f, scores, wrong.astype(np.float64)),
                    layer={"loss_param": {"normalization": "VALID"}}, expected=(np.array(0.0),)),
        LayerSample("ties_first_max", (f_ties, ties, y_ties),
                    expected=(np.array((1 / (2 + eps) + 1 / (0.25 + eps)) / 3),)),
        LayerSample("zero_feature_is_1_over_eps", (f_zero, scores, y), check_grad=False),
    ]


def _rn_reference(sample, bottoms, blobs):
    lp = sample.layer.get("loss_param", {})
    mode = lp.get("normalization")
    if mode is None and "normalize" in lp:
        mode = "VALID" if lp["normalize"] else "BATCH_SIZE"
    eps = sample.layer.get("reciprocal_norm_loss_param", {}).get("epsilon", 1e-5)
    return list(ref_rn.forward(*bottoms, epsilon=eps, normalization=mode))


# the float32 tolerance: float32 rounding of values of order 1-30 (L-Softmax logits, 1/eps for a zero feature)
_TOL = {"float64": (1e-9, 1e-10), "float32": (2e-5, 2e-5)}

INFOS = [
    LayerInfo("LargeMarginInnerProduct", _lmip_samples, reference=_lmip_reference, tol=_TOL, onnx=False),
    LayerInfo("CenterLoss", _center_samples, reference=_center_reference, tol=_TOL, onnx=False),
    LayerInfo("ReciprocalNormLoss", _rn_samples, reference=_rn_reference, tol=_TOL, onnx=False),
]

"""The references against numbers computed by the original Caffe (../shared/caffe_cases, float32, CPU).

The layer parameters are hard-coded here from each case's net.prototxt; learnable blobs come from the
case's weights.caffemodel through caffemodel_blobs.py.  The references run in float64 on the float32
inputs, so they are compared with rtol 1e-5, atol 1e-6 (float32 rounding of values of order 1-40).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from caffe_like.reference import (
    center_loss,
    euclidean_loss,
    hinge_loss,
    large_margin_inner_product,
    sigmoid_cross_entropy_loss,
    softmax,
    softmax_with_loss,
)

from ._helpers import case_dir, load_npz64
from .caffemodel_blobs import read_caffemodel_blobs

pytestmark = pytest.mark.caffe_cases

RTOL, ATOL = 1e-5, 1e-6


def close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=RTOL, atol=ATOL)


def load(name):
    path = case_dir(name)
    topdiff = load_npz64(path / "topdiff.npz") if (path / "topdiff.npz").exists() else {}
    return (
        load_npz64(path / "inputs.npz"),
        load_npz64(path / "forward.npz"),
        load_npz64(path / "backward.npz"),
        topdiff,
        json.loads((path / "case.json").read_text()),
        path,
    )


# ---- softmax_losses --------------------------------------------------------------------------------------

# layer suffix -> (SoftmaxWithLoss params, loss_weight), read off softmax_losses/net.prototxt
SOFTMAX_LOSSES = {
    "default": ({}, 1.0),
    "ignore": ({"ignore_label": 255}, 1.0),
    "full": ({"ignore_label": 255, "normalization": "FULL"}, 1.0),
    "batch": ({"ignore_label": 255, "normalization": "BATCH_SIZE"}, 1.0),
    "none": ({"ignore_label": 255, "normalization": "NONE"}, 1.0),
    "legacy_nonorm": ({"normalize": False}, 1.0),
    "w25": ({}, 2.5),
    "2d": ({}, 1.0),
}


@pytest.mark.parametrize("suffix", list(SOFTMAX_LOSSES))
def test_softmax_with_loss(suffix):
    inputs, fwd, bwd, _, case, _ = load("softmax_losses")
    params, weight = SOFTMAX_LOSSES[suffix]
    assert case["loss_weights"][f"loss_{suffix}"] == weight
    scores, label = inputs[f"s_{suffix}"], inputs[f"y_{suffix}"]
    (loss,) = softmax_with_loss.forward(scores, label, **params)
    close(loss, fwd[f"loss_{suffix}"])  # the top holds the unweighted loss
    dscores, dlabel = softmax_with_loss.backward(scores, label, top_diffs=(weight,), **params)
    close(dscores, bwd[f"in/s_{suffix}"])
    assert dlabel is None and not bwd[f"in/y_{suffix}"].any()


@pytest.mark.parametrize(("blob", "axis"), [("prob", 1), ("prob_ax3", 3)])
def test_softmax(blob, axis):
    inputs, fwd, bwd, topdiff, _, _ = load("softmax_losses")
    bottom = {"prob": "s_soft", "prob_ax3": "s_soft_ax3"}[blob]
    (y,) = softmax.forward(inputs[bottom], axis=axis)
    close(y, fwd[blob])
    (dx,) = softmax.backward(inputs[bottom], top_diffs=(topdiff[blob],), axis=axis)
    close(dx, bwd[f"in/{bottom}"])


def test_euclidean_loss():
    inputs, fwd, bwd, _, _, _ = load("softmax_losses")
    (loss,) = euclidean_loss.forward(inputs["e_a"], inputs["e_b"])
    close(loss, fwd["loss_euc"])
    da, db = euclidean_loss.backward(inputs["e_a"], inputs["e_b"], top_diffs=(1.0,))
    close(da, bwd["in/e_a"])
    close(db, bwd["in/e_b"])


@pytest.mark.parametrize(
    ("layer", "bottom", "norm"), [("loss_hinge_l1", "h1", "L1"), ("loss_hinge_l2", "h2", "L2")]
)
def test_hinge_loss(layer, bottom, norm):
    inputs, fwd, bwd, _, _, _ = load("softmax_losses")
    x, label = inputs[bottom], inputs[f"y_{bottom}"]
    (loss,) = hinge_loss.forward(x, label, norm=norm)
    close(loss, fwd[layer])
    dx, _ = hinge_loss.backward(x, label, top_diffs=(1.0,), norm=norm)
    close(dx, bwd[f"in/{bottom}"])


def test_sigmoid_cross_entropy_loss():
    """The case's Caffe build predates normalization/ignore_label and divides by the batch size, which is
    also BVLC master's default when neither normalization nor normalize is set."""
    inputs, fwd, bwd, _, _, _ = load("softmax_losses")
    (loss,) = sigmoid_cross_entropy_loss.forward(inputs["sce"], inputs["sce_t"])
    close(loss, fwd["loss_sce"])
    dx, dt = sigmoid_cross_entropy_loss.backward(inputs["sce"], inputs["sce_t"], top_diffs=(1.0,))
    close(dx, bwd["in/sce"])
    assert dt is None and not bwd["in/sce_t"].any()


# ---- lsoftmax_m2: LargeMarginInnerProduct (DOUBLE) + SoftmaxWithLoss ---------------------------------------


def test_large_margin_inner_product_m2():
    inputs, fwd, bwd, topdiff, case, path = load("lsoftmax_m2")
    (W,) = read_caffemodel_blobs(path / "weights.caffemodel")["lm_ip"]
    W = W.astype(np.float64)
    assert [list(W.shape)] == next(
        layer["param_shapes"] for layer in case["layers"] if layer["name"] == "lm_ip"
    )
    # largemargin_inner_product_param { type: DOUBLE base: 10 gamma: 0.1 power: 1 iteration: 3 lambda_min: 0 }
    lam = large_margin_inner_product.lambda_schedule(3 + 1, base=10.0, gamma=0.1, power=1.0, lambda_min=0.0)
    params = {"m": "DOUBLE", "lam": lam}
    x, label = inputs["x"], inputs["label"]

    logits, lam_top = large_margin_inner_product.forward(x, label, W, lambda_top=True, **params)
    close(lam_top, fwd["lambda"])
    close(logits, fwd["logits"])
    (loss,) = softmax_with_loss.forward(logits, label)
    close(loss, fwd["loss"])

    dlogits, _ = softmax_with_loss.backward(logits, label, top_diffs=(1.0,))
    dx, dlabel, dW = large_margin_inner_product.backward(
        x, label, W, top_diffs=(dlogits, topdiff["lambda"]), lambda_top=True, **params
    )
    close(dx, bwd["in/x"])
    close(dW, bwd["param/lm_ip/0"])
    assert dlabel is None and not bwd["in/label"].any()


# ---- center_loss -------------------------------------------------------------------------------------------


def test_center_loss():
    inputs, fwd, bwd, _, case, path = load("center_loss")
    (centers,) = read_caffemodel_blobs(path / "weights.caffemodel")["center"]
    centers = centers.astype(np.float64)
    weight = case["loss_weights"]["center_loss"]
    assert weight == 0.5  # loss_weight: 0.5 in net.prototxt
    x, label = inputs["x"], inputs["label"]
    (loss,) = center_loss.forward(x, label, centers)
    close(loss, fwd["center_loss"])
    dx, dlabel, dC = center_loss.backward(x, label, centers, top_diffs=(weight,))
    close(dx, bwd["in/x"])
    close(dC, bwd["param/center/0"])
    assert dlabel is None and not bwd["in/label"].any()
    # the case's notes: class 3 absent (update 0), class 4 seen once ((c - x)/2)
    assert not bwd["param/center/0"][3].any() and np.all(dC[3] == 0.0)
    single = int(np.flatnonzero(label == 4)[0])
    close(dC[4], (centers[4] - x[single]) / 2)

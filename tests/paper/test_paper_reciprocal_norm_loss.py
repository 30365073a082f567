"""ReciprocalNormLoss (feature incay, paper Eq. 8), torch layer: the trust chain and its conventions.

reference backward == finite differences is tests/reference/test_reciprocal_norm_loss.py; here torch == the
reference for every normalisation (float64 rtol 1e-10/atol 1e-12; float32 see paper_helpers),
autograd.gradcheck, and the layer's conventions (default BATCH_SIZE, no gradient to scores or label, ...).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caffe_like.errors import CaffeLikeError
from caffe_like.reference import reciprocal_norm_loss as ref

from paper_helpers import F32_BWD, F32_FWD, F64, build, rounded, run

MODES = [None, "BATCH_SIZE", "FULL", "VALID", "NONE"]


def data(seed, n=8, k=3, classes=4):
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((n, k)) * 2
    scores = rng.standard_normal((n, classes))
    y = scores.argmax(axis=1).astype(np.float64)
    y[::3] = (y[::3] + 1) % classes  # rows 0, 3, 6 misclassified
    return f, scores, y


def fields(mode=None, eps=None, weight=None):
    out = {}
    if mode is not None:
        out["loss_param"] = {"normalization": mode}
    if eps is not None:
        out["reciprocal_norm_loss_param"] = {"epsilon": eps}
    if weight is not None:
        out["loss_weight"] = weight
    return out


def compare(f, s, y, mode=None, eps=1e-5, weight=1.0, *, dtype="float64", fwd_tol=F64, bwd_tol=F64,
            extra_fields=None):
    spec = fields(mode, eps, weight)
    spec.update(extra_fields or {})
    net = build("ReciprocalNormLoss", (f, s, y), spec, dtype=dtype)
    tops, grads, _ = run(net, (f, s, y), top_diffs=(np.asarray(weight),), grad_bottoms=(0,), dtype=dtype)
    (fr,) = rounded((f,), dtype)
    sr = rounded((s,), dtype)[0]
    (want,) = ref.forward(fr, sr, y, epsilon=eps, normalization=mode)
    want_df, _, _ = ref.backward(fr, sr, y, epsilon=eps, normalization=mode, top_diffs=(weight,))
    np.testing.assert_allclose(tops[0], want, **fwd_tol)
    np.testing.assert_allclose(grads[0], want_df, **bwd_tol)
    return tops[0], grads[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("weight", [1.0, 0.1])
def test_equals_the_reference_float64(mode, weight):
    compare(*data(1), mode, weight=weight)


@pytest.mark.parametrize("mode", MODES)
def test_equals_the_reference_float32(mode):
    compare(*data(2), mode, dtype="float32", fwd_tol=F32_FWD, bwd_tol=F32_BWD)


def test_default_is_batch_size_not_caffes_valid():
    f, s, y = data(3)
    default, _ = compare(f, s, y, None)
    batch, _ = compare(f, s, y, "BATCH_SIZE")
    valid, _ = compare(f, s, y, "VALID")
    assert default == batch
    n, correct = len(y), int((s.argmax(axis=1) == y).sum())
    assert correct == 5
    assert valid == pytest.approx(batch * n / correct, rel=1e-14)


def test_legacy_normalize_flag():
    f, s, y = data(4)
    true, _ = compare(f, s, y, "VALID")
    got_true, _ = compare(f, s, y, "VALID", extra_fields={"loss_param": {"normalize": True}})
    got_false, _ = compare(f, s, y, "BATCH_SIZE", extra_fields={"loss_param": {"normalize": False}})
    assert got_true == true
    assert got_false == compare(f, s, y, "BATCH_SIZE")[0]


def test_epsilon_and_a_zero_feature():
    f, s, y = data(5)
    f[1] = 0.0  # row 1 is correctly classified: it contributes 1/eps
    top, grad = compare(f, s, y, "NONE", eps=0.5)
    assert np.all(np.isfinite(grad)) and np.all(grad[1] == 0.0)
    rest = [i for i in range(8) if i not in (0, 1, 3, 6)]
    assert top == pytest.approx(2.0 + sum(1 / (f[i] @ f[i] + 0.5) for i in rest), rel=1e-14)


def test_misclassified_rows_get_zero_gradient_and_scores_and_label_none():
    f, s, y = data(6)
    net = build("ReciprocalNormLoss", (f, s, y), {})
    _, grads, _ = run(net, (f, s, y), top_diffs=(np.asarray(1.0),), grad_bottoms=(0, 1, 2))
    df, ds, dy = grads
    assert ds is None and dy is None
    assert np.all(df[[0, 3, 6]] == 0.0) and np.all(df[[1, 2, 4, 5, 7]] != 0.0)


def test_ties_resolve_to_the_first_maximum():
    f = np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 0.5]])
    s = np.array([[0.5, 0.5, 0.1], [0.2, 0.7, 0.7], [0.3, 0.1, 0.3]])
    y = np.array([0.0, 2.0, 0.0])
    top, _ = compare(f, s, y)
    assert top == pytest.approx((1 / (2 + 1e-5) + 1 / (0.25 + 1e-5)) / 3, rel=1e-14)


def test_four_d_features_and_scores():
    rng = np.random.default_rng(7)
    f = rng.standard_normal((4, 2, 2, 2))
    s = rng.standard_normal((4, 3, 1, 1))
    y = s.reshape(4, 3).argmax(axis=1).astype(np.float64)
    y[1] = (y[1] + 1) % 3
    _, grad = compare(f, s, y, "VALID")
    assert grad.shape == f.shape


def test_autograd_gradcheck():
    f, s, y = data(8)
    net = build("ReciprocalNormLoss", (f, s, y), fields("VALID"))
    layer = net.layer_dict()["L"]
    st, yt = torch.tensor(s), torch.tensor(y)
    assert torch.autograd.gradcheck(lambda ft: layer(ft, st, yt)[0], (torch.tensor(f, requires_grad=True),),
                                    eps=1e-6, atol=1e-5, rtol=1e-3)


def test_it_is_a_loss_layer_with_default_weight_1():
    f, s, y = data(9)
    net = build("ReciprocalNormLoss", (f, s, y), {})
    net(b0=torch.tensor(f), b1=torch.tensor(s), b2=torch.tensor(y))
    assert float(net.loss) == pytest.approx(float(ref.forward(f, s, y)[0]), rel=1e-14)
    weighted = build("ReciprocalNormLoss", (f, s, y), {"loss_weight": 0.01})
    weighted(b0=torch.tensor(f), b1=torch.tensor(s), b2=torch.tensor(y))
    assert float(weighted.loss) == pytest.approx(0.01 * float(net.loss), rel=1e-14)


@pytest.mark.parametrize("bad", [4.0, -2.0])
def test_labels_out_of_range_name_the_layer(bad):
    f, s, y = data(10)
    y[5] = bad
    net = build("ReciprocalNormLoss", (f, s, y), {})
    with pytest.raises(CaffeLikeError) as err:
        run(net, (f, s, y))
    assert "layer 'L' (ReciprocalNormLoss)" in str(err.value) and "out of range" in str(err.value)


def test_ignore_label_is_refused():
    f, s, y = data(11)
    with pytest.raises(CaffeLikeError, match="ignore_label"):
        build("ReciprocalNormLoss", (f, s, y), {"loss_param": {"ignore_label": 0}})

"""LargeMarginInnerProduct (L-Softmax), torch layer: the trust chain and the edge cases of issue 8.

reference backward == finite differences is tests/reference/test_large_margin_inner_product.py; here:
torch forward and backward == the reference (float64 rtol 1e-10/atol 1e-12, float32 see paper_helpers),
torch.autograd.gradcheck as a third opinion, θ at and near every switch point kπ/m for m = 1..4, λ = 0 and
huge, feature norms ~1e-8 / ~1e3 / 0, zero weight rows, labels out of range, the TEST phase, the λ schedule
through the layer's counter (loss_layers.md §1.3), and the counter's extra state.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest
import torch

from caffe_like.errors import CaffeLikeError
from caffe_like.layers.large_margin_inner_product import lambda_value
from caffe_like.reference import large_margin_inner_product as ref

from paper_helpers import F32_BWD, F32_FWD, F64, build, rounded, run

TYPES = {1: "SINGLE", 2: "DOUBLE", 3: "TRIPLE", 4: "QUADRUPLE"}


def fields(m, *, base=1.0, gamma=0.0, power=1.0, iteration=0, lambda_min=0.0, num_output=4, axis=1):
    return {"largemargin_inner_product_param": {
        "num_output": num_output, "type": TYPES[m], "base": base, "gamma": gamma, "power": power,
        "iteration": iteration, "lambda_min": lambda_min, "axis": axis}}


def compare(m, x, y, W, lam, *, dtype="float64", fwd_tol=F64, bwd_tol=F64, seed=0):
    """torch (through a one-layer net, λ = base with gamma 0) vs the reference, forward and backward."""
    net = build("LargeMarginInnerProduct", (x, y), fields(m, base=lam, num_output=W.shape[0]), blobs=(W,),
                dtype=dtype, n_tops=2)
    G = np.random.default_rng(seed).standard_normal((x.shape[0], W.shape[0]))
    tops, (dx, dlabel), (dW,) = run(net, (x, y), top_diffs=(G, np.ones(1)), dtype=dtype)
    xr, Wr = rounded((x, W), dtype)
    assert tops[1][0] == pytest.approx(lam, rel=1e-7 if dtype == "float32" else 0)
    lam = float(tops[1][0])  # the layer's own λ (float32 arithmetic in a float32 net)
    (want,) = ref.forward(xr, y, Wr, m=m, lam=lam)
    want_dx, _, want_dW = ref.backward(xr, y, Wr, m=m, lam=lam, top_diffs=(G,))
    np.testing.assert_allclose(tops[0], want, **fwd_tol)
    np.testing.assert_allclose(dx, want_dx, **bwd_tol)
    np.testing.assert_allclose(dW, want_dW, **bwd_tol)
    assert dlabel is None
    return tops[0], dx, dW


def data(seed, n=7, k=5, classes=4, norm=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, k))
    if norm is not None:
        x *= norm / np.linalg.norm(x, axis=1, keepdims=True)
    return x, rng.integers(0, classes, size=n).astype(np.float64), rng.standard_normal((classes, k))


# ---- torch == reference ------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("lam", [0.0, 0.5, 3.0, 1e12])
def test_forward_and_backward_equal_the_reference_float64(m, lam):
    compare(m, *data(10 + m), lam)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("lam", [0.0, 0.5, 3.0])
def test_forward_and_backward_equal_the_reference_float32(m, lam):
    compare(m, *data(20 + m), lam, dtype="float32", fwd_tol=F32_FWD, bwd_tol=F32_BWD)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_bigger_batch_float64(m):
    x, y, W = data(30 + m, n=64, k=32, classes=10)
    compare(m, x, y, W * 0.1, 2.0)


def gradcheck(m, x, y, W, lam, *, eps=1e-6, atol=1e-5, rtol=1e-3):
    net = build("LargeMarginInnerProduct", (x, y), fields(m, base=lam, num_output=W.shape[0]), blobs=(W,))
    layer = net.layer_dict()["L"]
    label = torch.tensor(y)

    def fn(xt, wt):
        return torch.func.functional_call(layer, {"blobs.0": wt}, (xt, label))[0]

    leaves = (torch.tensor(x, requires_grad=True), torch.tensor(W, requires_grad=True))
    return torch.autograd.gradcheck(fn, leaves, eps=eps, atol=atol, rtol=rtol)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("lam", [0.0, 0.5, 1e6])
def test_autograd_gradcheck(m, lam):
    assert gradcheck(m, *data(40 + m), lam)


# ---- switch points, λ extremes, norms ----------------------------------------------------------------


def switch_batch(m, a=2.0):
    """Rows at θ = kπ/m + δ (k = 0..m, δ = 0, ±1e-7, ±1e-4, clipped to [0, π]) from w_0 = (1.5, 0); label 0."""
    thetas = sorted({min(math.pi, max(0.0, k * math.pi / m + d))
                     for k in range(m + 1) for d in (0.0, 1e-7, -1e-7, 1e-4, -1e-4)})
    x = np.array([[a * math.cos(t), a * math.sin(t)] for t in thetas])
    W = np.array([[1.5, 0.0], [0.3, -0.7]])
    return x, np.zeros(len(thetas)), W, np.array(thetas)


def psi_oracle(theta, m):
    k = min(int(math.floor(theta * m / math.pi)), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_every_switch_point(m):
    """At and within 1e-7 / 1e-4 of every kπ/m: finite, the reference's values and gradients, ψ(θ) at λ = 0,
    and autograd.gradcheck passes (ψ is C¹ in cos θ, so the closed form is the derivative there too; P'' jumps
    at the switch, so the difference step is 1e-8, well inside the 1e-7 offsets, as in the reference's test)."""
    x, y, W, thetas = switch_batch(m)
    logits, dx, dW = compare(m, x, y, W, 0.0)
    assert np.all(np.isfinite(logits)) and np.all(np.isfinite(dx)) and np.all(np.isfinite(dW))
    if m > 1:
        expected = [2.0 * 1.5 * psi_oracle(t, m) for t in thetas]
        np.testing.assert_allclose(logits[:, 0], expected, rtol=1e-8, atol=1e-8)
    assert gradcheck(m, x, y, W, 0.0, eps=1e-8, atol=1e-6)
    assert gradcheck(m, x, y, W, 0.7, eps=1e-8, atol=1e-6)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_lambda_zero_is_pure_psi_and_huge_lambda_the_plain_product(m):
    x, y, W = data(50 + m)
    pure, _, _ = compare(m, x, y, W, 0.0)
    big, _, _ = compare(m, x, y, W, 1e12)
    plain = x @ W.T
    np.testing.assert_allclose(big, plain, rtol=1e-10, atol=1e-10)
    rows, cols = np.arange(len(y)), y.astype(int)
    off = np.ones_like(plain, dtype=bool)
    off[rows, cols] = False
    np.testing.assert_allclose(pure[off], plain[off], rtol=1e-15)
    if m == 1:
        np.testing.assert_allclose(pure, plain, rtol=1e-15)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_huge_feature_norms(m):
    x, y, W = data(60 + m, norm=1e3)
    logits, dx, dW = compare(m, x, y, W, 0.25)
    assert np.abs(logits).max() > 100
    assert gradcheck(m, x, y, W, 0.25)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_tiny_feature_norms(m):
    """Norms ~1e-8: the original's 1e-9 in cos θ is then ~5% of ‖x‖‖w‖, so its closed-form backward is no longer
    the derivative of its forward (autograd.gradcheck would disagree by design); torch still equals the
    reference, and everything is finite."""
    x, y, W = data(70 + m, norm=1e-8)
    logits, dx, dW = compare(m, x, y, W, 0.25, fwd_tol={"rtol": 1e-10, "atol": 1e-20},
                             bwd_tol={"rtol": 1e-9, "atol": 1e-14})
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dW))


@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_zero_feature_row_is_finite(m, dtype):
    """Deviation: the original's input gradient is NaN there; here finite and equal to the reference's
    documented convention (margin term dropped), the row's logits 0 and its weight gradient 0."""
    x, y, W = data(80 + m)
    x[2] = 0.0
    tol = (F64, F64) if dtype == "float64" else (F32_FWD, F32_BWD)
    logits, dx, dW = compare(m, x, y, W, 0.3, dtype=dtype, fwd_tol=tol[0], bwd_tol=tol[1])
    assert np.all(logits[2] == 0.0)
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dW))
    G = np.random.default_rng(0).standard_normal((7, 4))
    j = int(y[2])
    others = [c for c in range(4) if c != j]
    expected = G[2, j] * 0.3 / 1.3 * W[j] + G[2, others] @ W[others]
    np.testing.assert_allclose(dx[2], expected, rtol=1e-12 if dtype == "float64" else 1e-5, atol=1e-6)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_zero_weight_row_follows_the_original_cpu_code(m):
    x, y, W = data(90 + m)
    W[int(y[0])] = 0.0
    compare(m, x, y, W, 0.4)


# ---- labels --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [4.0, -1.0, 100.0])
def test_labels_out_of_range_name_the_layer(bad):
    x, y, W = data(100)
    y[3] = bad
    net = build("LargeMarginInnerProduct", (x, y), fields(2), blobs=(W,))
    with pytest.raises(CaffeLikeError) as err:
        run(net, (x, y))
    text = str(err.value)
    assert "layer 'L'" in text and "LargeMarginInnerProduct" in text and "out of range" in text
    assert str(int(bad)) in text


def test_the_label_gets_no_gradient():
    x, y, W = data(101)
    net = build("LargeMarginInnerProduct", (x, y), fields(3), blobs=(W,))
    _, (dx, dlabel), _ = run(net, (x, y), top_diffs=(np.ones((7, 4)),), grad_bottoms=(0, 1))
    assert dx is not None and dlabel is None


def test_train_phase_needs_the_label():
    x, _, _ = data(102)
    with pytest.raises(CaffeLikeError, match="label"):
        build("LargeMarginInnerProduct", (x,), fields(2))


# ---- TEST phase ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_test_phase_is_x_w_transposed_and_never_reads_labels(m):
    x, y, W = data(110 + m)
    counter = fields(m, base=10, gamma=0.5, iteration=5)
    net = build("LargeMarginInnerProduct", (x, y), counter, blobs=(W,), phase="TEST", n_tops=2)
    G = np.random.default_rng(1).standard_normal((7, 4))
    tops, (dx, _), (dW,) = run(net, (x, y), top_diffs=(G, None))
    np.testing.assert_allclose(tops[0], x @ W.T, rtol=1e-14, atol=1e-14)
    assert tops[1].tolist() == [0.0]
    np.testing.assert_allclose(dx, G @ W, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(dW, G.T @ x, rtol=1e-14, atol=1e-14)
    for other in (np.zeros(7), np.full(7, 99.0), np.full(7, -3.0)):  # other labels, even invalid ones
        again, _, _ = run(net, (x, other))
        np.testing.assert_array_equal(again[0], tops[0])
    assert net.layer_dict()["L"].iter == 5  # the TEST phase does not move the counter
    no_label = build("LargeMarginInnerProduct", (x,), counter, blobs=(W,), phase="TEST")
    alone, _, _ = run(no_label, (x,))
    np.testing.assert_array_equal(alone[0], tops[0])


# ---- the λ schedule and its counter -----------------------------------------------------------------------

# loss_layers.md §1.3; columns: MNIST (m=4; base 1000, gamma 2.5e-5, power 35), CIFAR10 (m=2; 1000, 2e-5, 45),
# CIFAR10+ (m=2; 1000, 1e-5, 45); "iter" is the value a forward uses
LAMBDA_TABLE = [
    (1, "999", "999", "1000"),
    (1000, "421", "410", "639"),
    (2000, "181", "171", "410"),
    (5000, "16.2", "13.7", "111"),
    (7500, "2.44", "1.86", "38.6"),
    (10000, "0.41", "0.27", "13.7"),
    (12000, "0.10", "0.0625", "6.1"),
    (15000, "0.014", "0.0075", "1.86"),
    (20000, "6.9e-4", "2.7e-4", "0.27"),
    (30000, "3e-6", "7e-7", "0.0075"),
]
SETTINGS = {"MNIST": (4, 1000, 2.5e-5, 35), "CIFAR10": (2, 1000, 2e-5, 45), "CIFAR10+": (2, 1000, 1e-5, 45)}


@pytest.mark.parametrize("column", list(SETTINGS))
def test_lambda_table_through_the_layer_counter(column):
    """A float32 layer (Caffe's arithmetic) whose counter starts at iter − 1: its first TRAIN forward reports
    the table's λ in its lambda top, within half a unit of the printed last digit."""
    m, base, gamma, power = SETTINGS[column]
    x, y, W = data(120)
    for iteration, *printed in LAMBDA_TABLE:
        text = printed[list(SETTINGS).index(column)]
        net = build("LargeMarginInnerProduct", (x, y),
                    fields(m, base=base, gamma=gamma, power=power, iteration=iteration - 1), blobs=(W,),
                    dtype="float32", n_tops=2)
        tops, _, _ = run(net, (x, y), dtype="float32")
        half_unit = 0.5 * 10.0 ** Decimal(text).as_tuple().exponent
        assert abs(float(tops[1][0]) - float(text)) <= half_unit * (1 + 1e-6), (iteration, text, tops[1])
        assert net.layer_dict()["L"].iter == iteration


def test_lambda_table_by_counting_train_forwards():
    """The same table reached by running TRAIN forwards from iteration 0 (rows up to 5000; the later rows
    continue from a counter restored with set_extra_state, as a resumed solver does)."""
    x, y = np.ones((1, 2)), np.zeros(1)
    layers = {}
    for column, (m, base, gamma, power) in SETTINGS.items():
        net = build("LargeMarginInnerProduct", (x, y), fields(m, base=base, gamma=gamma, power=power, num_output=1),
                    blobs=(np.ones((1, 2)),), dtype="float32", n_tops=2)
        layers[column] = net.layer_dict()["L"]
    xt, yt = torch.ones((1, 2)), torch.zeros(1)
    done = 0
    with torch.no_grad():
        for iteration, *printed in LAMBDA_TABLE:
            for column, layer in layers.items():
                if iteration > 5000:
                    layer.set_extra_state({"iter": iteration - 1})
                else:
                    for _ in range(iteration - done - 1):
                        layer(xt, yt)
                lam = float(layer(xt, yt)[1][0])
                text = printed[list(SETTINGS).index(column)]
                half_unit = 0.5 * 10.0 ** Decimal(text).as_tuple().exponent
                assert abs(lam - float(text)) <= half_unit * (1 + 1e-6), (column, iteration, text, lam)
                assert layer.iter == iteration and layer.last_lambda == lam
            done = iteration


def test_counter_increments_before_use_on_every_train_forward():
    x, y, W = data(121)
    schedule = {"base": 10.0, "gamma": 0.5, "power": 2.0, "iteration": 3, "lambda_min": 0.35}
    net = build("LargeMarginInnerProduct", (x, y), fields(4, **schedule), blobs=(W,), n_tops=2)
    seen = [float(run(net, (x, y))[0][1][0]) for _ in range(6)]
    expected = [ref.lambda_schedule(3 + k, base=10.0, gamma=0.5, power=2.0, lambda_min=0.35) for k in range(1, 7)]
    assert seen == expected  # float64: the reference's formula exactly
    assert expected[-1] == 0.35 and expected[-2] == 0.4  # the floor, reached at iter 9
    assert net.layer_dict()["L"].iter == 9


def test_float32_lambda_is_caffes_float_arithmetic():
    """base 10, gamma 0.1, power 1, first forward iter 4: Caffe's float build reports 7.1428576 (lsoftmax_m2's
    forward.npz), not the float32 rounding of 10/1.4 (7.142857)."""
    assert np.float32(lambda_value(4, base=10, gamma=0.1, power=1, lambda_min=0, dtype=torch.float32)) == \
        np.float32(7.1428576)
    assert np.float32(7.1428576) != np.float32(10 / 1.4)
    assert lambda_value(4, base=10, gamma=0.1, power=1, lambda_min=0) == 10 / (1 + 0.1 * 4)


def test_single_margin_still_reports_lambda_and_counts():
    x, y, W = data(122)
    net = build("LargeMarginInnerProduct", (x, y), fields(1, base=8, gamma=1.0, iteration=1), blobs=(W,), n_tops=2)
    tops, _, _ = run(net, (x, y))
    np.testing.assert_allclose(tops[0], x @ W.T, rtol=1e-14)
    assert tops[1].tolist() == [8 / 3] and net.layer_dict()["L"].iter == 2


def test_counter_survives_extra_state_and_state_dict():
    """Deviation: the counter is saved (the original restarts it at `iteration` on resume)."""
    x, y, W = data(123)
    schedule = fields(2, base=100.0, gamma=0.25, power=1.0, iteration=7)

    def lam_of(net):
        return float(run(net, (x, y))[0][1][0])

    net = build("LargeMarginInnerProduct", (x, y), schedule, blobs=(W,), n_tops=2)
    for _ in range(5):
        lam_of(net)
    states = net.extra_states()
    assert states == {"L": {"iter": 12}}
    expected_next = ref.lambda_schedule(13, base=100.0, gamma=0.25)

    resumed = build("LargeMarginInnerProduct", (x, y), schedule, blobs=(W,), n_tops=2)
    resumed.load_extra_states(states)
    assert lam_of(resumed) == expected_next

    via_torch = build("LargeMarginInnerProduct", (x, y), schedule, blobs=(W,), n_tops=2)
    via_torch.load_state_dict(net.state_dict())
    assert lam_of(via_torch) == expected_next

    fresh = build("LargeMarginInnerProduct", (x, y), schedule, blobs=(W,), n_tops=2)
    assert lam_of(fresh) == ref.lambda_schedule(8, base=100.0, gamma=0.25)  # what the original does on resume

    with pytest.raises(CaffeLikeError, match="counter"):
        fresh.layer_dict()["L"].set_extra_state({"wrong": 1})


# ---- shapes -----------------------------------------------------------------------------------------------


def test_axis_and_4d_features_flatten_like_inner_product():
    rng = np.random.default_rng(130)
    x = rng.standard_normal((2, 3, 2, 2))
    W = rng.standard_normal((5, 4))
    y = rng.integers(0, 5, size=(2, 3)).astype(np.float64)
    net = build("LargeMarginInnerProduct", (x, y), fields(3, base=0.5, num_output=5, axis=2), blobs=(W,))
    G = rng.standard_normal((2, 3, 5))
    tops, (dx, _), (dW,) = run(net, (x, y), top_diffs=(G,))
    assert tops[0].shape == (2, 3, 5) and dx.shape == x.shape
    (want,) = ref.forward(x, y, W, m=3, lam=0.5, axis=2)
    want_dx, _, want_dW = ref.backward(x, y, W, m=3, lam=0.5, axis=2, top_diffs=(G,))
    np.testing.assert_allclose(tops[0], want, **F64)
    np.testing.assert_allclose(dx, want_dx, **F64)
    np.testing.assert_allclose(dW, want_dW, **F64)


def test_frozen_weights_get_no_gradient_and_the_input_still_does():
    x, y, W = data(131)
    net = build("LargeMarginInnerProduct", (x, y), {**fields(4, base=0.5), "param": [{"lr_mult": 0}]}, blobs=(W,))
    G = np.random.default_rng(2).standard_normal((7, 4))
    _, (dx, _), (dW,) = run(net, (x, y), top_diffs=(G,))
    assert dW is None
    want_dx = ref.backward(x, y, W, m=4, lam=0.5, top_diffs=(G,))[0]
    np.testing.assert_allclose(dx, want_dx, **F64)

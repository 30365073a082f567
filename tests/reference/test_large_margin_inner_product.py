"""L-Softmax (LargeMarginInnerProduct) reference: psi polynomial, margin logits, gradients, degenerate rows,
TEST phase and the lambda schedule (loss_layers.md §1)."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from caffe_like.reference import large_margin_inner_product as lmip

from ._helpers import assert_grad

SQRT_HALF = math.sqrt(0.5)


def psi_oracle(c: float, m: int) -> float:
    """psi(theta) = (-1)^k cos(m theta) - 2k with theta = acos(c) in [k pi/m, (k+1) pi/m], via acos."""
    theta = math.acos(c)
    k = min(int(math.floor(theta * m / math.pi)), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


def special_cosines() -> list[float]:
    """Every switch point of m = 2, 3, 4 (cos of k pi/m), exactly and within 1e-7 / 1e-12 of it."""
    points = {1.0, -1.0, 0.5, -0.5, 0.0, SQRT_HALF, -SQRT_HALF}
    points |= {math.cos(k * math.pi / m) for m in (2, 3, 4) for k in range(m + 1)}
    out = set()
    for p in points:
        for delta in (0.0, 1e-7, -1e-7, 1e-12, -1e-12):
            out.add(min(1.0, max(-1.0, p + delta)))
    return sorted(out)


# ---- the target polynomial -----------------------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_polynomial_equals_psi_at_and_near_every_switch_point(m):
    cs = np.array(special_cosines() + list(np.linspace(-1, 1, 2001)))
    got = lmip.psi(cs, m)
    expected = np.array([psi_oracle(float(c), m) for c in cs])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_coefficients_are_the_derivative(m):
    """A = P'(c) (checked by central differences away from the switch points) and B = c A - P."""
    cs = np.array([-0.93, -0.61, -0.3, -0.12, 0.08, 0.33, 0.58, 0.8, 0.97])
    p, a, b = lmip.psi_coefficients(cs, m)
    h = 1e-6
    np.testing.assert_allclose(a, (lmip.psi(cs + h, m) - lmip.psi(cs - h, m)) / (2 * h), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(b, cs * a - p, rtol=1e-14, atol=1e-14)


def test_a_at_zero_cosine():
    """A(0), which decides the zero-weight-row gradient: 0, 3, 0 for m = 2, 3, 4 (sign(0) = 0)."""
    assert [float(lmip.psi_coefficients(np.array(0.0), m)[1]) for m in (2, 3, 4)] == [0.0, 3.0, 0.0]


# ---- forward -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("m", "psi_120"), [(2, -1.5), (3, -3.0), (4, -4.5)])
@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_hand_case_at_120_degrees(m, psi_120, lam):
    """x = (3, 0), w_0 = (-1, sqrt 3) (|w| = 2, theta = 120 deg), w_1 = (1, 1): the target logit is
    (lam * w.x + |w||x| psi(120 deg)) / (1 + lam) with w.x = -3, |w||x| = 6; the other logit is w_1.x = 3."""
    x = np.array([[3.0, 0.0]])
    W = np.array([[-1.0, math.sqrt(3.0)], [1.0, 1.0]])
    (logits,) = lmip.forward(x, np.array([0.0]), W, m=m, lam=lam)
    np.testing.assert_allclose(logits, [[(lam * -3.0 + 6.0 * psi_120) / (1 + lam), 3.0]], rtol=1e-9)


@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("c", special_cosines())
def test_switch_points_in_the_layer(m, c):
    """Features whose cos(theta) to the target weight sits at or within 1e-7 of a switch point: the logit
    is |w||x| psi(theta) (lam = 0) and the gradient matches finite differences."""
    a, b = 2.0, 1.5
    theta = math.acos(c)
    x = np.array([[a * math.cos(theta), a * math.sin(theta)]])
    W = np.array([[b, 0.0], [0.3, -0.7]])
    label = np.array([0.0])
    (logits,) = lmip.forward(x, label, W, m=m, lam=0.0)
    assert logits[0, 0] == pytest.approx(a * b * psi_oracle(c, m), rel=1e-8, abs=1e-8)
    dx, _, dW = lmip.backward(x, label, W, top_diffs=(np.ones((1, 2)),), m=m, lam=0.0)
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dW))
    assert_grad(lmip, [x, label], {"m": m, "lam": 0.0}, blobs=[W], stepsize=1e-8, threshold=1e-6)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_lambda_zero_is_the_pure_psi_logit_and_huge_lambda_the_plain_one(m):
    rng = np.random.default_rng(40)
    x, W = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    label = rng.integers(0, 5, size=6).astype(np.float64)
    y = label.astype(int)
    plain = x @ W.T
    (pure,) = lmip.forward(x, label, W, m=m, lam=0.0)
    a, b = np.linalg.norm(x, axis=1), np.linalg.norm(W[y], axis=1)
    c = plain[np.arange(6), y] / (a * b + 1e-9)  # the documented cosine, with the original's epsilon
    psi = np.array([psi_oracle(float(v), m) for v in c])
    expected = plain.copy()
    if m > 1:
        expected[np.arange(6), y] = a * b * psi
    np.testing.assert_allclose(pure, expected, rtol=1e-12, atol=1e-12)
    (big,) = lmip.forward(
        x, label, W, m=m, lam=1e6
    )  # (lam w.x + a b P)/(1+lam) = w.x + (a b P - w.x)/(1+lam)
    np.testing.assert_allclose(big - plain, (pure - plain) / (1 + 1e6), rtol=1e-6, atol=1e-14)


def test_single_margin_is_the_plain_inner_product_whatever_lambda():
    rng = np.random.default_rng(41)
    x, W = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    for lam in (0.0, 0.5, 1e3):
        (logits,) = lmip.forward(x, rng.integers(0, 4, size=5), W, m="SINGLE", lam=lam)
        np.testing.assert_allclose(logits, x @ W.T, rtol=1e-15)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_test_phase_is_x_times_w_transposed_and_ignores_labels(m):
    rng = np.random.default_rng(42)
    x, W = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    (none,) = lmip.forward(x, None, W, m=m, lam=0.0, phase="TEST")
    (some,) = lmip.forward(x, rng.integers(0, 4, size=5), W, m=m, lam=0.0, phase="TEST")
    np.testing.assert_array_equal(none, x @ W.T)
    np.testing.assert_array_equal(some, none)
    G = rng.normal(size=(5, 4))
    dx, dlabel, dW = lmip.backward(x, None, W, top_diffs=(G,), m=m, lam=0.0, phase="TEST")
    assert dlabel is None
    np.testing.assert_allclose(dx, G @ W, rtol=1e-14)
    np.testing.assert_allclose(dW, G.T @ x, rtol=1e-14)


# ---- backward ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("lam", [0.0, 0.5, 1e6])
def test_gradient_matches_finite_differences(m, lam):
    rng = np.random.default_rng(43 + m)
    x, W = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    label = rng.integers(0, 5, size=6).astype(np.float64)
    assert_grad(lmip, [x, label], {"m": m, "lam": lam}, blobs=[W])
    assert_grad(lmip, [x, label], {"m": m, "lam": lam, "phase": "TEST"}, blobs=[W])


@pytest.mark.parametrize("m", [2, 3, 4])
def test_gradient_for_tiny_features(m):
    """Norms ~1e-3: the forward's 1e-9 in the cosine is then ~1e-6 relative to |x||w|, so the closed form
    (the original's) and the derivative of the epsilon'd forward differ by about that: threshold 1e-5."""
    rng = np.random.default_rng(50 + m)
    x = rng.normal(size=(5, 3))
    x *= 1e-3 / np.linalg.norm(x, axis=1, keepdims=True)
    W = rng.normal(size=(4, 3))
    label = rng.integers(0, 4, size=5).astype(np.float64)
    assert_grad(lmip, [x, label], {"m": m, "lam": 0.25}, blobs=[W], stepsize=1e-9, threshold=1e-5)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_gradient_for_huge_features(m):
    """Norms ~1e3: logits ~1e3, so x (gradient ~|w|) needs a step of 1e-3 to keep the rounding error of the
    difference small, while W (gradient ~|x|, curvature ~|x|/|w|^2) keeps 1e-6."""
    rng = np.random.default_rng(60 + m)
    x = rng.normal(size=(5, 3))
    x *= 1e3 / np.linalg.norm(x, axis=1, keepdims=True)
    W = rng.normal(size=(4, 3))
    label = rng.integers(0, 4, size=5).astype(np.float64)
    params = {"m": m, "lam": 0.25}
    assert_grad(lmip, [x, label], params, blobs=[W], check=[0], stepsize=1e-3)
    assert_grad(lmip, [x, label], params, blobs=[W], check=[2], stepsize=1e-6)


def test_random_directions_on_a_bigger_input():
    rng = np.random.default_rng(44)
    x, W = rng.normal(size=(64, 32)), rng.normal(size=(10, 32)) * 0.1
    label = rng.integers(0, 10, size=64).astype(np.float64)
    assert_grad(lmip, [x, label], {"m": 4, "lam": 2.0}, blobs=[W], mode="random", stepsize=1e-5)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_zero_feature_row_is_finite_with_the_documented_gradient(m):
    rng = np.random.default_rng(45)
    x, W = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    label = np.array([1.0, 2.0, 0.0, 4.0])
    x[1] = 0.0
    G = rng.normal(size=(4, 5))
    lam = 0.3
    (logits,) = lmip.forward(x, label, W, m=m, lam=lam)
    assert np.all(logits[1] == 0.0)
    dx, _, dW = lmip.backward(x, label, W, top_diffs=(G,), m=m, lam=lam)
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dW))
    # dx_1 = g_1y lam/(1+lam) w_y + sum_{j != y} g_1j w_j: the margin term is dropped
    others = [j for j in range(5) if j != 2]
    expected = G[1, 2] * lam / (1 + lam) * W[2] + G[1, others] @ W[others]
    np.testing.assert_allclose(dx[1], expected, rtol=1e-14)
    # the zero row adds nothing to dW, and the other rows are unaffected
    keep = [0, 2, 3]
    dx_rest, _, dW_rest = lmip.backward(x[keep], label[keep], W, top_diffs=(G[keep],), m=m, lam=lam)
    np.testing.assert_allclose(dW, dW_rest, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(dx[keep], dx_rest, rtol=1e-14)


@pytest.mark.parametrize(("m", "a_zero"), [(2, 0.0), (3, 3.0), (4, 0.0)])
def test_zero_weight_row_follows_the_original_cpu_code(m, a_zero):
    """||w_y|| = 0: c = 0, the (a/b) B w term vanishes (the CPU code's 1e-9 on ||w||), so the target entry
    gives g (A(0) + lam)/(1 + lam) x to dW_y and nothing to dx."""
    x = np.array([[0.6, -1.2, 2.0]])
    W = np.array([[0.0, 0.0, 0.0], [0.5, 0.25, -1.0]])
    g = np.array([[1.5, -0.5]])
    lam = 0.4
    (logits,) = lmip.forward(x, np.array([0.0]), W, m=m, lam=lam)
    assert logits[0, 0] == 0.0
    dx, _, dW = lmip.backward(x, np.array([0.0]), W, top_diffs=(g,), m=m, lam=lam)
    np.testing.assert_allclose(dW[0], 1.5 * (a_zero + lam) / (1 + lam) * x[0], rtol=1e-14)
    np.testing.assert_allclose(dW[1], -0.5 * x[0], rtol=1e-14)
    np.testing.assert_allclose(dx[0], -0.5 * W[1], rtol=1e-14)


def test_lambda_top_and_its_ignored_diff():
    rng = np.random.default_rng(46)
    x, W, label = rng.normal(size=(3, 2)), rng.normal(size=(4, 2)), np.array([0.0, 3.0, 1.0])
    logits, lam_top = lmip.forward(x, label, W, m=2, lam=0.75, lambda_top=True)
    assert lam_top.shape == (1,) and float(lam_top[0]) == 0.75
    G = rng.normal(size=logits.shape)
    with_lambda = lmip.backward(x, label, W, top_diffs=(G, np.array([9.0])), m=2, lam=0.75, lambda_top=True)
    without = lmip.backward(x, label, W, top_diffs=(G,), m=2, lam=0.75)
    for a, b in zip(with_lambda, without):
        assert (a is None and b is None) or np.array_equal(a, b)
    assert_grad(lmip, [x, label], {"m": 2, "lam": 0.75, "lambda_top": True}, blobs=[W])


@pytest.mark.parametrize("axis", [1, 2])
def test_axis_flattening(axis):
    rng = np.random.default_rng(47)
    x = rng.normal(size=(2, 3, 2, 2))
    rows = int(np.prod(x.shape[:axis]))
    k = x.size // rows
    W = rng.normal(size=(5, k))
    label = rng.integers(0, 5, size=rows).astype(np.float64)
    (logits,) = lmip.forward(x, label, W, m=3, lam=0.5, axis=axis)
    assert logits.shape == x.shape[:axis] + (5,)
    (flat,) = lmip.forward(x.reshape(rows, k), label, W, m=3, lam=0.5)
    np.testing.assert_array_equal(logits.reshape(rows, 5), flat)
    assert_grad(lmip, [x, label], {"m": 3, "lam": 0.5, "axis": axis}, blobs=[W])


def test_invalid_inputs():
    x, W, label = np.ones((2, 3)), np.ones((4, 3)), np.array([0.0, 1.0])
    with pytest.raises(ValueError, match="W must have shape"):
        lmip.forward(x, label, np.ones((4, 2)), m=2)
    with pytest.raises(ValueError, match="out of range"):
        lmip.forward(x, np.array([0.0, 4.0]), W, m=2)
    with pytest.raises(ValueError, match="margin m"):
        lmip.forward(x, label, W, m=5)
    with pytest.raises(ValueError, match="margin type"):
        lmip.forward(x, label, W, m="QUINTUPLE")
    with pytest.raises(ValueError, match="needs the label"):
        lmip.forward(x, None, W, m=2)
    with pytest.raises(ValueError, match="lambda"):
        lmip.forward(x, label, W, m=2, lam=-1.0)
    with pytest.raises(ValueError, match="phase"):
        lmip.forward(x, label, W, m=2, phase="DEPLOY")


# ---- the lambda schedule -------------------------------------------------------------------------------

# loss_layers.md §1.3; columns: MNIST (m=4; base 1000, gamma 2.5e-5, power 35), CIFAR10 (1000, 2e-5, 45),
# CIFAR10+ (1000, 1e-5, 45).  "iter" is the value the forward uses (the first forward uses iteration+1).
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
SETTINGS = {"MNIST": (1000, 2.5e-5, 35), "CIFAR10": (1000, 2e-5, 45), "CIFAR10+": (1000, 1e-5, 45)}


@pytest.mark.parametrize("column", list(SETTINGS))
@pytest.mark.parametrize("row", LAMBDA_TABLE, ids=[str(r[0]) for r in LAMBDA_TABLE])
def test_lambda_table_of_the_fact_sheet(row, column):
    """Each printed value is the schedule rounded to its printed digits: within half a unit of its last one."""
    iteration, *printed = row
    text = printed[list(SETTINGS).index(column)]
    base, gamma, power = SETTINGS[column]
    lam = lmip.lambda_schedule(iteration, base=base, gamma=gamma, power=power)
    half_unit = 0.5 * 10.0 ** Decimal(text).as_tuple().exponent
    assert abs(lam - float(text)) <= half_unit * (1 + 1e-12), (
        f"lambda({iteration}) = {lam:.6g}, table says {text}"
    )


def test_lambda_schedule_counter_floor_and_defaults():
    # the layer's counter starts at the `iteration` field and is incremented before use
    first_forward_with_iteration_3 = 3 + 1
    lam = lmip.lambda_schedule(first_forward_with_iteration_3, base=10.0, gamma=0.1, power=1.0)
    assert lam == pytest.approx(10 / 1.4, rel=1e-15)
    assert lmip.lambda_schedule(12345) == 1.0  # proto defaults: base 1, gamma 0
    assert lmip.lambda_schedule(10**6, base=1000, gamma=1e-3, power=2, lambda_min=5.0) == 5.0
    assert lmip.lambda_schedule(1, base=0.0, gamma=1.0) == 0.0  # base 0 removes lambda
    with pytest.raises(ValueError, match="positive"):
        lmip.lambda_schedule(10, gamma=-1.0)

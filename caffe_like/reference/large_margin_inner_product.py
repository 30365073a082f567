r"""Reference for the L-Softmax layer ``LargeMarginInnerProduct`` (wy1iu/LargeMargin_Softmax_Loss, CPU code).

Notation (``loss_layers.md`` §1): sample i with feature ``x_i`` (``x`` flattened from ``axis`` into
``(M, K)``), label ``y = y_i``, weights ``W`` of shape ``(N, K)`` (no bias), ``a = ||x_i||``, ``b = ||w_y||``::

    c   = (w_y . x_i) / (a b + 1e-9)                      the CPU code's epsilon (the GPU code has none)
    f_ij = w_j . x_i                                      for j != y (also every logit when m = 1 or TEST)
    f_iy = (lam * (w_y . x_i) + a b P_m(c)) / (1 + lam)   the target logit, m >= 2, TRAIN

``P_m`` is the sign/Chebyshev form of ``psi(theta) = (-1)^k cos(m theta) - 2k`` on
``[k pi/m, (k+1) pi/m]``, never computed through ``acos`` (``sgn(0) = 0`` as Caffe's ``caffe_sign``)::

    m=1: P = c
    m=2: s0 = sgn(c);  P = 2 s0 c^2 - 1
    m=3: s1 = sgn(|c| - 1/2), s2 = s0 (1 + s1) - 2;  P = s1 (4c^3 - 3c) + s2
    m=4: s3 = s0 sgn(2c^2 - 1), s4 = 2 s0 + s3 - 3;  P = s3 (8c^4 - 8c^2 + 1) + s4

Backward, from the closed form (sign terms constant): with ``A = P'(c)`` and ``B = c P'(c) - P(c)``::

    d(a b P)/dx = A w_y - (b/a) B x_i          d(a b P)/dw_y = A x_i - (a/b) B w_y
    m=2: A = 4 s0 c,            B = 2 s0 c^2 + 1
    m=3: A = s1 (12c^2 - 3),    B = 8 s1 c^3 - s2
    m=4: A = s3 (32c^3 - 16c),  B = s3 (24c^4 - 8c^2 - 1) - s4

and the target entry's diff ``g = dL/df_iy`` contributes ``g [(A w_y - (b/a) B x_i)/(1+lam) + lam/(1+lam) w_y]``
to ``dx_i`` and ``g [(A x_i - (a/b) B w_y)/(1+lam) + lam/(1+lam) x_i]`` to ``dW_y``; every other entry gives the
plain ``g_ij w_j`` and ``g_ij x_i``.  ``c`` is the forward's (with the 1e-9), so the backward is the
closed form of the original, not the derivative of the epsilon (a relative difference of ~1e-9/(a b)).

Degenerate rows (the documented caffe_like choices; the torch layer is tested against them):

* ``||x_i|| = 0`` exactly: the forward gives ``c = 0`` and ``f_iy = 0`` (finite; the original computes about
  ``-2e-9/(1+lam)`` there).  The margin term ``a b P(c)`` is positively homogeneous of degree 1 in ``x_i``
  and has no derivative at ``x_i = 0`` (the original returns NaN: ``(b/a) B x`` is 0/0).  The reference
  drops that term from the input gradient -- its value and every factor ``a``, ``x_i`` in it vanish, which
  is also what autograd of the polynomial form gives with the zero subgradient of the norm -- so the row's
  input gradient is ``dx_i = g_iy lam/(1+lam) w_y + sum_{j != y} g_ij w_j``.  Its weight gradient is exactly
  0 (the true derivative: the row's logits do not depend on ``W``).
* ``||w_y|| = 0``: as in the original CPU backward, which adds 1e-9 to its stored ``||w||``, the
  ``(a/b) B w_y`` term is 0, so the target entry contributes ``g A(0) x_i/(1+lam) + g lam/(1+lam) x_i`` to
  ``dW_y`` (``A(0)`` = 0, 3, 0 for m = 2, 3, 4) and nothing to ``dx_i``.

Other deviations, all deliberate:

* TEST phase (``phase="TEST"``) returns ``x W^T`` and never reads ``label`` (may be None); its backward is
  the plain inner product's.  The original has no phase-dependent code and applies the margin in TEST too.
* Non-target logits are ``w_j . x_i`` exactly (Caffe computes ``(w.x + lam w.x)/(1+lam)``: equal up to
  rounding).  ``lam`` is an argument, not a counter: the layer's iteration counter and the lambda schedule
  live in the torch layer; :func:`lambda_schedule` gives the value.
* ``backward`` returns the weight diff of this call; Caffe *adds* it to the existing diff.
* The optional ``lambda`` top (``lambda_top=True``) is ``[lam]`` (shape ``(1,)``), as the original emits
  (even for m = 1, where it is unused); its diff is ignored, as in the original.

Shape:
    x: ``(d0, ..., d_{axis-1}, ...)`` flattened to ``(M, K)``; label: ``M`` elements; W: ``(N, K)``;
    logits: ``x.shape[:axis] + (N,)``.

See: wy1iu/LargeMargin_Softmax_Loss ``largemargin_inner_product_layer.cpp`` (commit 521bc0d);
``loss_layers.md`` §1 and §7.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import as_float, canonical_axis, count, int_labels, top_diff

TYPE = "LargeMarginInnerProduct"

#: ``LargeMarginInnerProductParameter.type`` -> the margin m.
MARGIN_TYPES = {"SINGLE": 1, "DOUBLE": 2, "TRIPLE": 3, "QUADRUPLE": 4}

#: added to ``||x|| ||w||`` before dividing, in the original CPU forward.
COS_EPS = 1e-9
#: added to ``||w||`` in the ``a/b`` factor, in the original CPU backward.
WNORM_EPS = 1e-9


def lambda_schedule(
    iteration: float, *, base: float = 1.0, gamma: float = 0.0, power: float = 1.0, lambda_min: float = 0.0
) -> float:
    """``lam = max(base * (1 + gamma * iteration)^(-power), lambda_min)``.

    ``iteration`` is the value the layer uses: its counter starts at the ``iteration`` field and is
    incremented at the *start* of every forward, so the k-th forward (k = 1, 2, ...) uses
    ``iteration_field + k``.  Computed in float64 (the original uses float32).
    """
    growth = 1.0 + gamma * iteration
    if growth <= 0.0:
        raise ValueError(f"{TYPE}: 1 + gamma*iteration = {growth} must be positive for the lambda schedule")
    return max(base * growth ** (-power), lambda_min)


def _margin(m: int | str) -> int:
    if isinstance(m, str):
        if m.upper() not in MARGIN_TYPES:
            raise ValueError(f"{TYPE}: unknown margin type {m!r}; choose one of {', '.join(MARGIN_TYPES)}")
        return MARGIN_TYPES[m.upper()]
    if isinstance(m, bool) or int(m) != m or not 1 <= m <= 4:
        raise ValueError(f"{TYPE}: the margin m must be 1, 2, 3 or 4, got {m!r}")
    return int(m)


def psi_coefficients(c: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P, A, B)`` at cosines ``c``: the target polynomial ``P_m(c)``, ``A = P'(c)``, ``B = c A - P``."""
    m = _margin(m)
    c = np.asarray(c)
    s0 = np.sign(c)
    if m == 1:
        return c.copy(), np.ones_like(c), np.zeros_like(c)
    if m == 2:
        p = 2 * s0 * c**2 - 1
        return p, 4 * s0 * c, 2 * s0 * c**2 + 1
    if m == 3:
        s1 = np.sign(np.abs(c) - 0.5)
        s2 = s0 * (1 + s1) - 2
        p = s1 * (4 * c**3 - 3 * c) + s2
        return p, s1 * (12 * c**2 - 3), 8 * s1 * c**3 - s2
    s3 = s0 * np.sign(2 * c**2 - 1)
    s4 = 2 * s0 + s3 - 3
    p = s3 * (8 * c**4 - 8 * c**2 + 1) + s4
    return p, s3 * (32 * c**3 - 16 * c), s3 * (24 * c**4 - 8 * c**2 - 1) - s4


def psi(c: np.ndarray, m: int) -> np.ndarray:
    """``P_m(c)`` = ``psi(arccos c)`` = ``(-1)^k cos(m theta) - 2k``, computed without ``acos``."""
    return psi_coefficients(c, m)[0]


def _setup(x, W, axis, m, lam, phase):
    x, W = as_float(x, W)
    if x.ndim < 1:
        raise ValueError(f"{TYPE}: the feature blob needs at least one axis")
    ax = canonical_axis(axis, x.ndim, TYPE)
    rows, k = count(x.shape, 0, ax), count(x.shape, ax)
    if W.ndim != 2 or W.shape[1] != k:
        raise ValueError(
            f"{TYPE}: W must have shape (num_output, {k}) for features of shape {x.shape}, got {W.shape}"
        )
    margin = _margin(m)
    mode = str(phase).upper()
    if mode not in ("TRAIN", "TEST"):
        raise ValueError(f"{TYPE}: phase must be 'TRAIN' or 'TEST', got {phase!r}")
    lam = float(lam)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"{TYPE}: lambda must be finite and >= 0, got {lam}")
    plain = margin == 1 or mode == "TEST"
    return x, x.reshape(rows, k), W, margin, lam, plain, x.shape[:ax] + (W.shape[0],)


def _target(x2, W, label, margin):
    """Labels, target inner products ``w_y.x``, norms ``a``, ``b`` and the cosine ``c`` of every row."""
    lab, _ = int_labels(label, expected=x2.shape[0], num_classes=W.shape[0], layer=TYPE)
    wy = W[lab]
    wx = np.einsum("ik,ik->i", x2, wy)
    a = np.linalg.norm(x2, axis=1)
    b = np.linalg.norm(wy, axis=1)
    c = wx / (a * b + COS_EPS)
    return lab, wy, wx, a, b, c


def forward(
    x: np.ndarray,
    label: np.ndarray | None,
    W: np.ndarray,
    *,
    m: int | str = 1,
    lam: float = 1.0,
    phase: str = "TRAIN",
    axis: int = 1,
    lambda_top: bool = False,
) -> tuple[np.ndarray, ...]:
    """Returns ``(logits,)``, or ``(logits, [lam])`` with ``lambda_top=True``.

    ``m`` is 1..4 or the enum name (SINGLE..QUADRUPLE); ``lam`` the current lambda (proto defaults
    base 1, gamma 0 give 1).
    """
    x, x2, W, margin, lam, plain, out_shape = _setup(x, W, axis, m, lam, phase)
    logits = x2 @ W.T
    if not plain:
        if label is None:
            raise ValueError(f"{TYPE}: TRAIN phase with m >= 2 needs the label bottom")
        lab, _, wx, a, b, c = _target(x2, W, label, margin)
        rows = np.arange(x2.shape[0])
        logits[rows, lab] = (lam * wx + a * b * psi(c, margin)) / (1.0 + lam)
    logits = logits.reshape(out_shape)
    if lambda_top:
        return logits, np.asarray([lam], dtype=logits.dtype)
    return (logits,)


def backward(
    x: np.ndarray,
    label: np.ndarray | None,
    W: np.ndarray,
    *,
    top_diffs: Sequence[object],
    m: int | str = 1,
    lam: float = 1.0,
    phase: str = "TRAIN",
    axis: int = 1,
    lambda_top: bool = False,
) -> tuple[np.ndarray, None, np.ndarray]:
    """Returns ``(dx, None, dW)``; ``top_diffs[0]`` is the logits' diff, a ``lambda`` diff is ignored."""
    del lambda_top  # the original never reads the lambda top's diff
    x, x2, W, margin, lam, plain, out_shape = _setup(x, W, axis, m, lam, phase)
    g_all = top_diff(top_diffs, 0, TYPE)
    if g_all is None:
        raise ValueError(f"{TYPE}: top_diffs[0] (the diff of the logits) is required")
    if g_all.size != x2.shape[0] * W.shape[0]:
        raise ValueError(f"{TYPE}: the logits' diff has shape {g_all.shape}, expected {out_shape}")
    G = g_all.reshape(x2.shape[0], W.shape[0]).astype(x2.dtype, copy=True)
    if plain:
        return (G @ W).reshape(x.shape), None, G.T @ x2
    if label is None:
        raise ValueError(f"{TYPE}: TRAIN phase with m >= 2 needs the label bottom")
    lab, wy, _, a, b, c = _target(x2, W, label, margin)
    rows = np.arange(x2.shape[0])
    g = G[rows, lab].copy()
    G[rows, lab] = 0.0
    dx = G @ W
    dW = G.T @ x2

    _, A, B = psi_coefficients(c, margin)
    zero_row = a == 0
    b_over_a = np.divide(b, a, out=np.zeros_like(a), where=~zero_row)
    A_x = np.where(zero_row, 0.0, A)  # zero rows: the margin term is dropped from dx (see module docstring)
    mix = lam / (1.0 + lam)
    d_dx = (A_x[:, None] * wy - (b_over_a * B)[:, None] * x2) / (1.0 + lam) + mix * wy
    d_dw = (A[:, None] * x2 - (a / (b + WNORM_EPS) * B)[:, None] * wy) / (1.0 + lam) + mix * x2
    dx += g[:, None] * d_dx
    np.add.at(dW, lab, g[:, None] * d_dw)
    return dx.reshape(x.shape), None, dW

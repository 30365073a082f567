r"""LargeMarginInnerProduct (L-Softmax): a bias-free inner product whose target logit carries an angular margin.

With features ``x`` flattened from ``axis`` into ``(M, K)``, weights ``W`` ``(N, K)`` (no bias), label ``y`` of
sample i, ``a = ‖x_i‖``, ``b = ‖w_y‖`` and the margin m = 1..4 (``type`` SINGLE, DOUBLE, TRIPLE, QUADRUPLE)::

    c     = (w_y·x_i) / (a·b + 1e-9)                          (the original CPU code's epsilon)
    f_ij  = w_j·x_i                                           j ≠ y, and every logit when m = 1
    f_iy  = (λ·(w_y·x_i) + a·b·P_m(c)) / (1 + λ)              m ≥ 2, TRAIN phase

``P_m(c) = ψ(θ) = (−1)^k cos(mθ) − 2k`` on ``[kπ/m, (k+1)π/m]``, evaluated without ``acos`` through the
sign/Chebyshev form (``sgn(0) = 0``)::

    m=2: s0 = sgn(c);                                 P = 2·s0·c² − 1
    m=3: s1 = sgn(|c| − ½), s2 = s0·(1 + s1) − 2;     P = s1·(4c³ − 3c) + s2
    m=4: s3 = s0·sgn(2c² − 1), s4 = 2·s0 + s3 − 3;    P = s3·(8c⁴ − 8c² + 1) + s4

(the polynomials are evaluated in nested Chebyshev form, e.g. 8c⁴ − 8c² + 1 = 2·(2c² − 1)² − 1: equal up to
rounding).  With m = 1 the layer is a plain ``x·Wᵀ``; λ is still computed, counted and reported, as in the original.
The target column is computed for the whole batch with ``gather``/``scatter`` (no loop over samples or classes).

λ schedule: ``λ = max(base·(1 + gamma·iter)^(−power), lambda_min)``.  The layer's counter ``iter`` starts at
the ``iteration`` field and is incremented *before use* on every TRAIN forward (so the first forward uses
``iteration + 1``); it counts forward passes, not solver steps.  λ is computed in the blob dtype: float32
arithmetic (``powf``) for float32 nets, as the original float build (e.g. it gives 7.1428576, not the rounded
10/1.4 = 7.142857, for base 10, gamma 0.1, iter 4); float64 for float64 nets.

Backward (the original's closed form, sign terms constant; ``A = P′(c)``, ``B = c·P′(c) − P(c)``, ``c`` the
forward's, with the 1e-9): for the target entry's diff ``g``::

    dx_i  += g·[(A·w_y − (b/a)·B·x_i)/(1+λ) + λ/(1+λ)·w_y]
    dw_y  += g·[(A·x_i − (a/(b+1e-9))·B·w_y)/(1+λ) + λ/(1+λ)·x_i]

and every other entry the plain ``g_ij·w_j`` / ``g_ij·x_i``.  This is a custom ``torch.autograd.Function``
(autograd of the forward would differentiate the 1e-9 too and differ from the original by ~1e-9/(a·b)
relative); it equals :mod:`caffe_like.reference.large_margin_inner_product`'s backward to float64 rounding.
It is first-order only (no double backward).  The label gets no gradient; the ``lambda`` top's diff is ignored.

Shape:
    x ``(d0, ..., d_{axis-1}, ...)`` flattened to ``(M, K)``; label with M entries (float integers, Caffe's
    habit); W ``(num_output, K)``; top 0 ``x.shape[:axis] + (num_output,)``; optional top 1 ``lambda`` ``(1,)``.

NOTE: unlike the original, the TEST phase gives ``x·Wᵀ`` (no margin, no λ mixing) and never reads the labels
(a TEST-phase instance may even omit the label bottom); its counter does not move and its ``lambda`` top is 0,
what the original examples' separate TEST instance (SINGLE, base 0) reports.  The original has no
phase-dependent code and applies the margin in TEST too (loss_layers.md §7).
NOTE: unlike the original, the counter is saved and restored with the layer (``get_extra_state`` /
``set_extra_state``, which the solver stores in its snapshots), so resuming continues the λ schedule; the
original restarts it at ``iteration``.
NOTE: unlike the original, an all-zero feature row gives finite values and gradients: its target logit is 0
(the original's ≈ −2e-9/(1+λ)) and its input gradient drops the margin term, which has no derivative there
(the original's is NaN: (b/a)·B·x = 0/0), leaving ``g·λ/(1+λ)·w_y + Σ_{j≠y} g_ij·w_j``; its weight gradient is 0.
A zero weight row follows the original CPU backward (its ``(a/b)·B·w`` term is 0).
NOTE: unlike the original (whose non-target logits are ``(w·x + λ·w·x)/(1+λ)``), non-target logits are
``w_j·x_i`` exactly (equal up to rounding).
NOTE: unlike the original (which reads out of bounds), labels outside [0, num_output) in TRAIN are an error
naming the layer.

See: wy1iu/LargeMargin_Softmax_Loss ``src/caffe/layers/largemargin_inner_product_layer.cpp`` (commit 521bc0d);
``reference/loss_layers.md`` §1 and §7.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .base import Layer, canonical_axis
from .loss_common import labels_as_index
from .registry import register_layer

#: LargeMarginType -> the margin m
MARGINS = {"SINGLE": 1, "DOUBLE": 2, "TRIPLE": 3, "QUADRUPLE": 4}
#: added to ‖x‖·‖w‖ before dividing (original CPU forward)
COS_EPS = 1e-9
#: added to ‖w‖ in the a/b factor (original CPU backward)
WNORM_EPS = 1e-9


def lambda_and_inverse(iteration: int, *, base: float, gamma: float, power: float, lambda_min: float,
                       dtype: torch.dtype = torch.float64) -> tuple[float, float]:
    """``λ = max(base·(1 + gamma·iteration)^(−power), lambda_min)`` and ``1/(1 + λ)``, in ``dtype``'s precision.

    float32 (and half types) repeat the original float build's arithmetic: every parameter rounded to float32
    (caffe.proto's ``float`` fields), the product, sum, ``powf`` and ``(Dtype)1/((Dtype)1 + λ)`` in float32.
    float64 uses the parameters as given, in double precision (the reference's ``lambda_schedule``).
    """
    if dtype == torch.float64:
        growth = 1.0 + gamma * iteration
        if not growth > 0:
            raise ValueError(f"1 + gamma*iteration = {growth} must be positive for the lambda schedule")
        lam = max(base * growth ** (-power), lambda_min)
        return lam, 1.0 / (1.0 + lam)
    f32 = np.float32
    growth = f32(1) + f32(gamma) * f32(iteration)
    if not growth > 0:
        raise ValueError(f"1 + gamma*iteration = {float(growth)} must be positive for the lambda schedule")
    with np.errstate(over="ignore"):  # a huge λ is the user's choice; it is finite or inf, never a warning
        lam = max(f32(base) * np.power(growth, -f32(power)), f32(lambda_min))
        return float(lam), float(f32(1) / (f32(1) + lam))


def lambda_value(iteration: int, *, base: float, gamma: float, power: float, lambda_min: float,
                 dtype: torch.dtype = torch.float64) -> float:
    """``max(base·(1 + gamma·iteration)^(−power), lambda_min)`` in ``dtype``'s precision (see
    :func:`lambda_and_inverse`)."""
    return lambda_and_inverse(iteration, base=base, gamma=gamma, power=power, lambda_min=lambda_min, dtype=dtype)[0]


class _Counter:
    """The layer's iteration counter and the λ of its last forward (a plain object: updating it every forward
    must not go through ``nn.Module.__setattr__``)."""

    __slots__ = ("iter", "lam")

    def __init__(self, iteration: int) -> None:
        self.iter = iteration
        self.lam: float | None = None


_CONSTANTS: dict = {}


def _constants(like: torch.Tensor) -> dict[str, torch.Tensor]:
    """0-d constant tensors in ``like``'s dtype and device (cached: a Python scalar operand costs a tensor
    creation per op, which dominates on these (M,)-sized vectors)."""
    key = (like.dtype, like.device)
    found = _CONSTANTS.get(key)
    if found is None:
        found = {name: torch.tensor(value, dtype=like.dtype, device=like.device)
                 for name, value in (("m1", -1.0), ("m2", -2.0), ("m3", -3.0), ("half", 0.5), ("sixteen", 16.0))}
        _CONSTANTS[key] = found
    return found


def psi_terms(c: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(P, A, −B)`` at cosines ``c``: ``P_m(c)``, ``A = P′(c)`` and ``−B = P − c·A`` (sign terms constant).

    The original's sign terms, with the Chebyshev polynomials in nested form (equal up to rounding)::

        m=2: P = 2·c·|c| − 1 (= 2·s0·c² − 1),  A = 4·|c|
        m=3: s1 = sgn(|c| − ½), s2 = s0·(1 + s1) − 2,  P = s1·c·(4c² − 3) + s2,  A = s1·(12c² − 3)
        m=4: T2 = 2c² − 1, s3 = s0·sgn(T2), s4 = 2·s0 + s3 − 3,  P = s3·(2·T2² − 1) + s4,  A = 16·s3·c·T2
    """
    if m == 1:
        return c, torch.ones_like(c), torch.zeros_like(c)
    k = _constants(c)
    if m == 2:
        abs_c = c.abs()
        p = torch.addcmul(k["m1"], c, abs_c, value=2)
        a = abs_c.mul(4)
    elif m == 3:
        abs_c = c.abs()
        s0 = torch.sign(c)
        s1 = torch.sign(abs_c - k["half"])
        s2 = torch.addcmul(s0 + k["m2"], s0, s1)
        p = torch.addcmul(s2, s1, torch.addcmul(k["m3"], c, c, value=4).mul_(c))
        a = torch.addcmul(k["m3"], c, c, value=12).mul_(s1)
    else:
        s0 = torch.sign(c)
        t2 = torch.addcmul(k["m1"], c, c, value=2)
        s3 = s0 * torch.sign(t2)
        s4 = torch.add(s3, s0, alpha=2).add_(k["m3"])
        p = torch.addcmul(s4, s3, torch.addcmul(k["m1"], t2, t2, value=2))
        a = (s3 * c).mul_(t2).mul_(k["sixteen"])
    return p, a, torch.addcmul(p, c, a, value=-1)


class _MarginLogits(torch.autograd.Function):
    """All logits ``(M, N)`` of the TRAIN phase for m ≥ 2, with the original's closed-form backward.

    Written for few operations: the (M,)-sized per-sample terms cost an op's overhead each, so the backward
    folds the A·w_y, λ·w_y (dx) and A·x, λ·x (dW) terms into the two matmuls by replacing the target column of
    the diff with g·(A + λ)/(1+λ), leaving one ``addcmul`` each for the (b/a)·B·x and (a/b)·B·w terms.
    """

    @staticmethod
    def forward(ctx, x2, weight, label, lam, inv, m):
        # per-sample terms are (M, 1) columns, so that they broadcast against rows without view ops
        logits = x2 @ weight.t()
        rows = label.unsqueeze(1)
        wx = logits.gather(1, rows)
        a = torch.linalg.vector_norm(x2, dim=1, keepdim=True)
        b = torch.linalg.vector_norm(weight, dim=1, keepdim=True).index_select(0, label)
        ab = a * b
        c = wx / (ab + COS_EPS)
        p, coef_a, neg_b = psi_terms(c, m)
        # Caffe's order: (a·b·P + λ·w·x) · (1/(1+λ))
        logits.scatter_(1, rows, torch.add(ab * p, wx, alpha=lam).mul_(inv))
        ctx.save_for_backward(x2, weight, label, a, b, coef_a, neg_b)
        ctx.lam, ctx.inv, ctx.m = lam, inv, m
        return logits

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x2, weight, label, a, b, coef_a, neg_b = ctx.saved_tensors
        lam, inv = ctx.lam, ctx.inv
        rows = label.unsqueeze(1)
        g = grad.gather(1, rows)
        if ctx.m == 3:
            # zero feature rows (c = 0 there): the margin term has no derivative and is dropped from dx; A(0) is
            # 0 for m = 2, 4 but 3 for m = 3.  (Their x is 0, so dW does not see it either.)
            coef_a = torch.where(a > 0, coef_a, 0.0)
        # g·(A + λ)/(1+λ) in the target column
        mixed = grad.scatter(1, rows, torch.addcmul(g * (lam * inv), g, coef_a, value=inv))
        g_neg_b = (g * neg_b).mul_(inv)  # −g·B/(1+λ)
        dx = dw = None
        if ctx.needs_input_grad[0]:
            # b/a, and 0 on zero rows (b/0 = inf, 0/0 = nan there; see above)
            b_over_a = torch.nan_to_num(b / a, nan=0.0, posinf=0.0)
            dx = (mixed @ weight).addcmul_(g_neg_b * b_over_a, x2)
        if ctx.needs_input_grad[1]:
            per_class = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
            per_class.index_add_(0, label, g_neg_b.mul_(a).div_(b + WNORM_EPS).squeeze(1))
            dw = (mixed.t() @ x2).addcmul_(per_class.unsqueeze(1), weight)
        return dx, dw, None, None, None, None


@register_layer
class LargeMarginInnerProduct(Layer):
    """L-Softmax's classifier (see the module docstring for the formulas, shapes and deviations)."""

    TYPE = "LargeMarginInnerProduct"
    BOTTOMS = (1, 2)
    TOPS = (1, 2)
    NO_GRAD_BOTTOMS = (1,)

    def setup(self, bottom_shapes):
        p = self.param("largemargin_inner_product_param")
        shape = bottom_shapes[0]
        if p.num_output <= 0:
            raise self.fail("largemargin_inner_product_param.num_output must be given and positive", shape=False)
        self.axis = canonical_axis(p.axis, len(shape), self)
        self.num_output = int(p.num_output)
        self.k = math.prod(shape[self.axis:])
        self.m = MARGINS[p.type]
        self.base, self.gamma, self.power, self.lambda_min = float(p.base), float(p.gamma), float(p.power), float(p.lambda_min)
        self.iteration = int(p.iteration)
        self._counter = _Counter(self.iteration)
        if len(bottom_shapes) < 2 and self.training_phase:
            raise self.fail("the TRAIN phase needs the label bottom: bottoms are [feature, label]",
                            fix="add the label blob as the second bottom", shape=False)
        if len(bottom_shapes) == 2 and self.training_phase:
            rows = math.prod(shape[: self.axis])
            if math.prod(bottom_shapes[1]) != rows:
                raise self.fail(f"features {list(shape)} have {rows} samples (axes before {self.axis}) but the label "
                                f"blob {list(bottom_shapes[1])} has {math.prod(bottom_shapes[1])} entries",
                                fix="give one label per sample")
        self.add_blob((self.num_output, self.k), p.weight_filler)

    def infer_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        k = math.prod(shape[self.axis:])
        if k != self.k:
            raise self.fail(f"input has {k} features from axis {self.axis} but the layer was set up for {self.k}")
        tops = [shape[: self.axis] + (self.num_output,)]
        if len(self.spec.top) > 1:
            tops.append((1,))
        return tops

    # -- the λ schedule and its counter ------------------------------------------------------------

    @property
    def iter(self) -> int:
        """The counter: the iteration the last TRAIN forward used (starts at the ``iteration`` field)."""
        return self._counter.iter

    @iter.setter
    def iter(self, value: int) -> None:
        self._counter.iter = int(value)

    @property
    def last_lambda(self) -> float | None:
        """The λ of the last forward (0 in TEST; None before the first forward)."""
        return self._counter.lam

    def lambda_at(self, iteration: int, dtype: torch.dtype = torch.float64) -> float:
        """λ for a forward that uses ``iteration`` (the schedule, in ``dtype``'s arithmetic)."""
        return self._lambda_and_inverse(iteration, dtype)[0]

    def _lambda_and_inverse(self, iteration: int, dtype: torch.dtype) -> tuple[float, float]:
        try:
            return lambda_and_inverse(iteration, base=self.base, gamma=self.gamma, power=self.power,
                                      lambda_min=self.lambda_min, dtype=dtype)
        except ValueError as err:
            raise self.fail(str(err), shape=False) from None

    def get_extra_state(self) -> dict:
        return {"iter": int(self._counter.iter)}

    def set_extra_state(self, state) -> None:
        if not isinstance(state, dict) or "iter" not in state:
            raise self.fail(f"cannot restore the iteration counter from {state!r} (expected {{'iter': int}})",
                            shape=False)
        self._counter.iter = int(state["iter"])

    # -- forward -----------------------------------------------------------------------------------

    def _labels(self, label: torch.Tensor, rows: int) -> torch.Tensor:
        """Labels as int64 indices (truncated, as Caffe's static_cast<int>); out of range is an error naming
        the layer.  (One aminmax instead of loss_common's four ops: this runs every TRAIN forward.)"""
        index = label.reshape(-1).long()
        if index.numel() == rows and index.numel():
            low, high = torch.aminmax(index)
            if int(low) >= 0 and int(high) < self.num_output:
                return index
        return labels_as_index(label, rows, self, n_classes=self.num_output, ignore_label=None)  # raises

    def forward(self, x, label=None):
        flat = x.reshape(math.prod(x.shape[: self.axis]), -1)
        weight = self.blobs[0]
        counter = self._counter
        if not self.training_phase:
            lam = 0.0
            logits = F.linear(flat, weight)
        else:
            counter.iter += 1
            lam, inv = self._lambda_and_inverse(counter.iter, x.dtype)
            index = self._labels(label, flat.shape[0])
            if self.m == 1:
                logits = F.linear(flat, weight)
            else:
                logits = _MarginLogits.apply(flat, weight, index.to(flat.device), lam, inv, self.m)
        counter.lam = lam
        logits = logits.reshape(x.shape[: self.axis] + (self.num_output,))
        if len(self.spec.top) > 1:
            return logits, torch.full((1,), lam, dtype=x.dtype, device=x.device)
        return (logits,)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, m={self.m}, iter={self.iter}"

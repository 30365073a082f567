"""Caffe's ``ApplyUpdate``: clip, normalize, regularize and the update rules of SGD, Nesterov, AdaGrad,
RMSProp, AdaDelta and Adam, with Caffe's exact formulas and order (``sgd_solver.cpp``, ``solvers/*.cpp``).

For the learnable blobs w_i (Caffe's ``learnable_params``, in net order) with accumulated gradients
G_i (the sum over the ``iter_size`` passes; 0 where autograd produced none), one update at rate α
(``lr_policy``) and iteration ``it`` does, in this order:

1. **clip** (``clip_gradients`` = c ≥ 0): L = sqrt(Σ_i Σ G_i²) over all blobs; if L > c every G_i *= c/L.
   This runs on the raw accumulated sums, before the division by iter_size and before weight decay.
2. **normalize**: G_i *= 1/iter_size (when iter_size > 1).
3. **regularize**, every blob, every iteration (even without a gradient): λ_i = weight_decay·decay_mult_i;
   L2: g_i = G_i + λ_i·w_i; L1: g_i = G_i + λ_i·sign(w_i) (sign(0) = 0).
4. **rule**, with the local rate r_i = α·lr_mult_i and history blobs that start at 0:

   =========  ====================================================================================
   SGD        v = μ·v + r·g;  step = v                  (the history holds the rate: a drop of α
                                                         does not rescale it, unlike torch.optim.SGD)
   Nesterov   v' = μ·v + r·g;  step = (1+μ)·v' − μ·v
   AdaGrad    h += g²;  step = r·g / (sqrt(h) + δ)
   RMSProp    h = ρ·h + (1−ρ)·g²;  step = r·g / (sqrt(h) + δ)          (ρ = rms_decay)
   AdaDelta   h1 = μ·h1 + (1−μ)·g²;  u = g·sqrt((h2+δ)/(h1+δ));  h2 = μ·h2 + (1−μ)·u²;  step = r·u
   Adam       m = β1·m + (1−β1)·g;  s = β2·s + (1−β2)·g²;  t = it+1;
              step = r·sqrt(1−β2^t)/(1−β1^t) · m/(sqrt(s) + δ)         (β1 = momentum, β2 = momentum2)
   =========  ====================================================================================

5. w_i -= step_i.

History layout (the .solverstate's): P blobs for SGD, Nesterov, AdaGrad and RMSProp; 2P for AdaDelta
and Adam (the first P are v/h1/m, the next P h2/s), P = number of learnable blobs.

Blobs with lr_mult 0 (frozen ones and BatchNorm's statistics) are skipped: their step is r·(...) = 0
and Caffe gives them no gradient; their history blobs stay allocated (zeros) to keep Caffe's layout.
The arithmetic runs in the blobs' dtype with ``torch._foreach_*`` ops over the blobs grouped by
(lr_mult, decay_mult), so the cost per iteration is a few kernel launches per group, with no Python
loop over blobs.  Scalars are float32 values computed as Caffe's float solver computes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Updater", "RULES", "history_count"]


def _f32(value: float) -> float:
    return float(np.float32(value))


def _mul32(a: float, b: float) -> float:
    """a·b in float32 arithmetic (Caffe's ``Dtype`` products of float parameters)."""
    return float(np.float32(a) * np.float32(b))


@dataclass
class _Group:
    """Active blobs (lr_mult != 0) sharing one (lr_mult, decay_mult) pair, with their history blobs."""

    lr_mult: float
    decay_mult: float
    params: list[torch.nn.Parameter]
    history: list[list[torch.Tensor]]


class _Rule:
    """One update rule: turns regularized gradients into steps, updating its history in place."""

    N_HISTORY = 1

    def __init__(self, p) -> None:
        self.momentum = _f32(p.momentum)
        self.delta = _f32(p.delta)

    def steps(self, grads: list[torch.Tensor], history: list[list[torch.Tensor]], rate: float,
              it: int) -> list[torch.Tensor]:
        raise NotImplementedError


class _SGD(_Rule):
    """v = μ·v + r·g; step = v."""

    def steps(self, grads, history, rate, it):
        (v,) = history
        torch._foreach_mul_(v, self.momentum)
        torch._foreach_add_(v, grads, alpha=rate)
        return v


class _Nesterov(_Rule):
    """v' = μ·v + r·g; step = (1+μ)·v' − μ·v (computed as Caffe: −μ·v, then + (1+μ)·v')."""

    def steps(self, grads, history, rate, it):
        (v,) = history
        step = torch._foreach_mul(v, -self.momentum)
        torch._foreach_mul_(v, self.momentum)
        torch._foreach_add_(v, grads, alpha=rate)
        torch._foreach_add_(step, v, alpha=_f32(np.float32(1) + np.float32(self.momentum)))
        return step


class _AdaGrad(_Rule):
    """h += g²; step = r·g / (sqrt(h) + δ)."""

    def steps(self, grads, history, rate, it):
        (h,) = history
        torch._foreach_addcmul_(h, grads, grads)
        denominator = torch._foreach_sqrt(h)
        torch._foreach_add_(denominator, self.delta)
        torch._foreach_div_(grads, denominator)
        torch._foreach_mul_(grads, rate)
        return grads


class _RMSProp(_Rule):
    """h = ρ·h + (1−ρ)·g²; step = r·g / (sqrt(h) + δ)."""

    def __init__(self, p) -> None:
        super().__init__(p)
        self.rms_decay = _f32(p.rms_decay)
        self.one_minus = _f32(np.float32(1) - np.float32(self.rms_decay))

    def steps(self, grads, history, rate, it):
        (h,) = history
        squares = torch._foreach_mul(grads, grads)
        torch._foreach_mul_(h, self.rms_decay)
        torch._foreach_add_(h, squares, alpha=self.one_minus)
        denominator = torch._foreach_sqrt(h)
        torch._foreach_add_(denominator, self.delta)
        torch._foreach_div_(grads, denominator)
        torch._foreach_mul_(grads, rate)
        return grads


class _AdaDelta(_Rule):
    """h1 = μ·h1 + (1−μ)·g²; u = g·sqrt((h2+δ)/(h1+δ)); h2 = μ·h2 + (1−μ)·u²; step = r·u."""

    N_HISTORY = 2

    def steps(self, grads, history, rate, it):
        h1, h2 = history
        one_minus = _f32(np.float32(1) - np.float32(self.momentum))
        squares = torch._foreach_mul(grads, grads)
        torch._foreach_mul_(h1, self.momentum)
        torch._foreach_add_(h1, squares, alpha=one_minus)
        ratio = torch._foreach_add(h2, self.delta)
        denominator = torch._foreach_add(h1, self.delta)
        torch._foreach_div_(ratio, denominator)
        torch._foreach_sqrt_(ratio)
        torch._foreach_mul_(grads, ratio)
        squares = torch._foreach_mul(grads, grads)
        torch._foreach_mul_(h2, self.momentum)
        torch._foreach_add_(h2, squares, alpha=one_minus)
        torch._foreach_mul_(grads, rate)
        return grads


class _Adam(_Rule):
    """m = β1·m + (1−β1)·g; s = β2·s + (1−β2)·g²; step = r·sqrt(1−β2^t)/(1−β1^t) · m/(sqrt(s)+δ), t = it+1."""

    N_HISTORY = 2

    def __init__(self, p) -> None:
        super().__init__(p)
        self.beta1 = self.momentum
        self.beta2 = _f32(p.momentum2)

    def steps(self, grads, history, rate, it):
        m, s = history
        t = it + 1
        correction = _f32(math.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t))
        torch._foreach_mul_(m, self.beta1)
        torch._foreach_add_(m, grads, alpha=_f32(np.float32(1) - np.float32(self.beta1)))
        squares = torch._foreach_mul(grads, grads)
        torch._foreach_mul_(s, self.beta2)
        torch._foreach_add_(s, squares, alpha=_f32(np.float32(1) - np.float32(self.beta2)))
        denominator = torch._foreach_sqrt(s)
        torch._foreach_add_(denominator, self.delta)
        step = torch._foreach_div(m, denominator)
        torch._foreach_mul_(step, _mul32(rate, correction))
        return step


#: solver ``type`` -> update rule
RULES: dict[str, type[_Rule]] = {
    "SGD": _SGD,
    "Nesterov": _Nesterov,
    "AdaGrad": _AdaGrad,
    "RMSProp": _RMSProp,
    "AdaDelta": _AdaDelta,
    "Adam": _Adam,
}


def history_count(solver_type: str, n_params: int) -> int:
    """Number of history blobs a .solverstate holds for ``n_params`` learnable blobs."""
    return RULES[solver_type].N_HISTORY * n_params


class Updater:
    """Caffe's ``SGDSolver::ApplyUpdate`` (and its subclasses' ``ComputeUpdateValue``) for a net.

    Args:
        learnables: the net's ``learnable_params()`` (LearnableParam: param, lr_mult, decay_mult), in order.
        param: the SolverParameter (type, momentum, momentum2, rms_decay, delta, weight_decay,
            regularization_type, clip_gradients, iter_size).
    """

    def __init__(self, learnables, param) -> None:
        self.rule = RULES[param.type](param)
        self.params = [lp.param for lp in learnables]
        #: history[k][i]: history blob k (0 or 1) of learnable blob i, zeros at the start (Caffe's layout)
        self.history = [[torch.zeros_like(p, memory_format=torch.contiguous_format) for p in self.params]
                        for _ in range(self.rule.N_HISTORY)]
        self.weight_decay = _f32(param.weight_decay)
        self.l1 = param.regularization_type == "L1"
        self.clip = _f32(param.clip_gradients)
        self.iter_size = int(param.iter_size)
        groups: dict[tuple[float, float], _Group] = {}
        for index, lp in enumerate(learnables):
            if lp.lr_mult == 0:
                continue
            key = (_f32(lp.lr_mult), _f32(lp.decay_mult))
            group = groups.setdefault(key, _Group(key[0], key[1], [], [[] for _ in self.history]))
            group.params.append(lp.param)
            for slot, blobs in zip(group.history, self.history):
                slot.append(blobs[index])
        self.groups = list(groups.values())

    def history_blobs(self) -> list[torch.Tensor]:
        """The history blobs in .solverstate order (all first blobs, then all second blobs)."""
        return [blob for slot in self.history for blob in slot]

    def load_history(self, arrays) -> None:
        """Copy ``arrays`` (in :meth:`history_blobs` order, any shape with the right count) in place."""
        with torch.no_grad():
            for blob, array in zip(self.history_blobs(), arrays, strict=True):
                source = torch.as_tensor(np.ascontiguousarray(array)).reshape(blob.shape)
                blob.copy_(source)

    @staticmethod
    def _grads(group: _Group) -> list[torch.Tensor]:
        return [p.grad if p.grad is not None else torch.zeros_like(p) for p in group.params]

    @torch.no_grad()
    def apply(self, rate: float, it: int) -> None:
        """One update of every blob at rate ``rate`` (the lr policy's, for iteration ``it``), in place."""
        grads = [self._grads(group) for group in self.groups]
        if self.clip >= 0:
            flat = [g for gs in grads for g in gs]
            if flat:
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(flat)))
                scale = torch.where(norm > self.clip, self.clip / norm, torch.ones_like(norm))
                torch._foreach_mul_(flat, scale)
        for group, gs in zip(self.groups, grads):
            if self.iter_size > 1:
                torch._foreach_mul_(gs, _f32(1.0 / self.iter_size))
            decay = _mul32(self.weight_decay, group.decay_mult)
            if decay:
                torch._foreach_add_(gs, torch._foreach_sign(group.params) if self.l1 else group.params,
                                    alpha=decay)
            steps = self.rule.steps(gs, group.history, _mul32(rate, group.lr_mult), it)
            torch._foreach_sub_(group.params, steps)

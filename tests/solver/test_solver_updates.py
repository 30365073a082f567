"""Hand-computed updates: every solver type and lr policy on a least-squares net (an Input, an InnerProduct
and an EuclideanLoss, as Caffe's test_gradient_based_solver.cpp), against Caffe's formulas written out
in float64 NumPy here (reference/caffe_semantics.md §4.2-4.5).

Tolerance: the solver runs in float32, the reference in float64; after 1-4 iterations the weights agree
to rtol 2e-5 / atol 2e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from caffe_like.solver import Solver, learning_rate
from caffe_like.spec.solver import SolverSpec

from solver_helpers import batches, least_squares_net, toy_data_layer

RTOL, ATOL = 2e-5, 2e-6


def ls_grads(w, b, x, y):
    """Gradients of Σ (x·wᵀ + b − y)² / (2N): dW [1, D], db [1]."""
    r = x.astype(np.float64) @ w.T + b - y.astype(np.float64)
    return r.T @ x / len(x), r.sum(axis=0) / len(x)


class CaffeReference:
    """Caffe's ApplyUpdate in float64: clip -> 1/iter_size -> decay (L2/L1) -> rule with rate·lr_mult."""

    def __init__(self, solver_type, shapes, *, momentum=0.0, momentum2=0.999, rms_decay=0.99, delta=1e-8,
                 weight_decay=0.0, regularization="L2", clip=-1.0, iter_size=1, lr_mults=None, decay_mults=None):
        self.type = solver_type
        self.momentum, self.momentum2, self.rms_decay, self.delta = momentum, momentum2, rms_decay, delta
        self.weight_decay, self.regularization, self.clip, self.iter_size = weight_decay, regularization, clip, iter_size
        self.lr_mults = lr_mults or [1.0] * len(shapes)
        self.decay_mults = decay_mults or [1.0] * len(shapes)
        self.h1 = [np.zeros(s) for s in shapes]
        self.h2 = [np.zeros(s) for s in shapes]

    def update(self, params, grads, rate, it):
        grads = [np.array(g, dtype=np.float64) for g in grads]
        if self.clip >= 0:
            norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
            if norm > self.clip:
                grads = [g * (self.clip / norm) for g in grads]
        out = []
        for i, (w, g) in enumerate(zip(params, grads)):
            g = g / self.iter_size
            decay = self.weight_decay * self.decay_mults[i]
            g = g + decay * (np.sign(w) if self.regularization == "L1" else w)
            r = rate * self.lr_mults[i]
            m = self.momentum
            if self.type == "SGD":
                self.h1[i] = m * self.h1[i] + r * g
                step = self.h1[i]
            elif self.type == "Nesterov":
                old = self.h1[i]
                self.h1[i] = m * old + r * g
                step = (1 + m) * self.h1[i] - m * old
            elif self.type == "AdaGrad":
                self.h1[i] = self.h1[i] + g * g
                step = r * g / (np.sqrt(self.h1[i]) + self.delta)
            elif self.type == "RMSProp":
                self.h1[i] = self.rms_decay * self.h1[i] + (1 - self.rms_decay) * g * g
                step = r * g / (np.sqrt(self.h1[i]) + self.delta)
            elif self.type == "AdaDelta":
                self.h1[i] = m * self.h1[i] + (1 - m) * g * g
                u = g * np.sqrt((self.h2[i] + self.delta) / (self.h1[i] + self.delta))
                self.h2[i] = m * self.h2[i] + (1 - m) * u * u
                step = r * u
            elif self.type == "Adam":
                b1, b2, t = m, self.momentum2, it + 1
                self.h1[i] = b1 * self.h1[i] + (1 - b1) * g
                self.h2[i] = b2 * self.h2[i] + (1 - b2) * g * g
                step = r * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * self.h1[i] / (np.sqrt(self.h2[i]) + self.delta)
            out.append(w - step)
        return out


def make_solver(settings: dict, net: dict | None = None) -> Solver:
    solver = {"net_param": net or least_squares_net(), "lr_policy": "fixed", "random_seed": 3, **settings}
    return Solver(solver, device="cpu", quiet=True, log=False)


def current(solver):
    w, b = solver.net.params["ip"]
    return [w.detach().numpy().astype(np.float64), b.detach().numpy().astype(np.float64)]


SOLVER_CASES = {
    "SGD": {"base_lr": 0.1, "momentum": 0.9},
    "Nesterov": {"base_lr": 0.1, "momentum": 0.9},
    "AdaGrad": {"base_lr": 0.3, "delta": 1e-6},
    "RMSProp": {"base_lr": 0.05, "rms_decay": 0.95, "delta": 1e-6},
    "AdaDelta": {"base_lr": 1.0, "momentum": 0.95, "delta": 1e-6},
    "Adam": {"base_lr": 0.05, "momentum": 0.9, "momentum2": 0.999},
}


@pytest.mark.parametrize("solver_type", list(SOLVER_CASES))
def test_every_solver_type_matches_caffe_formulas(solver_type):
    settings = {"type": solver_type, "weight_decay": 0.05, **SOLVER_CASES[solver_type]}
    solver = make_solver(settings)
    kwargs = {k: settings[k] for k in ("momentum", "momentum2", "rms_decay", "delta") if k in settings}
    reference = CaffeReference(solver_type, [(1, 3), (1,)], weight_decay=0.05, **kwargs)
    params = current(solver)
    for it, (x, y) in enumerate(batches(4)):
        params = reference.update(params, ls_grads(*params, x, y), settings["base_lr"], it)
        solver.step(1, data=x, target=y)
        for got, want in zip(current(solver), params):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{solver_type} iteration {it}")
    assert solver.iter == 4
    n_history = 2 if solver_type in ("Adam", "AdaDelta") else 1
    assert len(solver.updater.history_blobs()) == 2 * n_history


# -- learning-rate policies -------------------------------------------------------------------------


def policy_param(**fields):
    base = {"net_param": least_squares_net(), "base_lr": 0.5}
    return SolverSpec.load({**base, **fields}).param


POLICY_CASES = {
    "fixed": ({}, lambda it: 0.5),
    "step": ({"gamma": 0.5, "stepsize": 3}, lambda it: 0.5 * 0.5 ** (it // 3)),
    "exp": ({"gamma": 0.9}, lambda it: 0.5 * 0.9 ** it),
    "inv": ({"gamma": 0.1, "power": 0.75}, lambda it: 0.5 * (1 + 0.1 * it) ** -0.75),
    "multistep": ({"gamma": 0.1, "stepvalue": [2, 5]}, lambda it: 0.5 * 0.1 ** ((it >= 2) + (it >= 5))),
    "poly": ({"power": 2.0, "max_iter": 10}, lambda it: 0.5 * (1 - it / 10) ** 2),
    "sigmoid": ({"gamma": -0.5, "stepsize": 4}, lambda it: 0.5 / (1 + math.exp(0.5 * (it - 4)))),
}


@pytest.mark.parametrize("policy", list(POLICY_CASES))
def test_lr_policy_formulas(policy):
    fields, formula = POLICY_CASES[policy]
    param = policy_param(lr_policy=policy, **fields)
    step = 0
    for it in range(10):
        rate, step = learning_rate(param, it, step)
        assert rate == pytest.approx(formula(it), rel=1e-6), (policy, it)
        assert rate == float(np.float32(rate))  # Caffe's float rate


def test_multistep_advances_at_most_one_step_per_call():
    param = policy_param(lr_policy="multistep", gamma=0.1, stepvalue=[1, 2, 3])
    rate, step = learning_rate(param, 10, 0)  # a solver resumed late catches up one step per iteration
    assert step == 1 and rate == pytest.approx(0.05)
    rate, step = learning_rate(param, 11, step)
    assert step == 2 and rate == pytest.approx(0.005)


@pytest.mark.parametrize("policy", list(POLICY_CASES))
def test_lr_policy_drives_the_updates(policy):
    fields, formula = POLICY_CASES[policy]
    solver = make_solver({"lr_policy": policy, "base_lr": 0.5, "momentum": 0.5, **fields})
    reference = CaffeReference("SGD", [(1, 3), (1,)], momentum=0.5)
    params = current(solver)
    for it, (x, y) in enumerate(batches(6)):
        assert solver.lr == pytest.approx(formula(it), rel=1e-6)
        params = reference.update(params, ls_grads(*params, x, y), formula(it), it)
        solver.step(1, data=x, target=y)
        for got, want in zip(current(solver), params):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{policy} iteration {it}")


def test_lr_drop_with_momentum_keeps_caffe_velocity_not_torch_sgd():
    """Caffe's history holds lr·g; after the drop it decays as μ^k.  torch.optim.SGD rescales it at once."""
    settings = {"type": "SGD", "base_lr": 0.2, "momentum": 0.9, "lr_policy": "step", "gamma": 0.1, "stepsize": 2}
    solver = make_solver(settings)
    reference = CaffeReference("SGD", [(1, 3), (1,)], momentum=0.9)
    params = current(solver)
    w_torch = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    optimizer = torch.optim.SGD(w_torch, lr=0.2, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    for it, (x, y) in enumerate(batches(4)):
        rate = 0.2 * 0.1 ** (it // 2)
        params = reference.update(params, ls_grads(*params, x, y), rate, it)
        solver.step(1, data=x, target=y)
        grads = ls_grads(*(w.detach().numpy() for w in w_torch), x, y)
        for w, g in zip(w_torch, grads):
            w.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        scheduler.step()
        ours = current(solver)
        for got, want in zip(ours, params):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
        torch_params = [w.detach().numpy() for w in w_torch]
        differs = max(float(np.max(np.abs(a - b))) for a, b in zip(ours, torch_params))
        if it < 2:  # constant lr: the two forms are the same
            assert differs < 1e-5
        else:  # after the drop: torch rescales the velocity by 0.1, Caffe does not
            assert differs > 1e-3, f"iteration {it}: caffe_like equals torch.optim.SGD after an lr drop"


# -- clip, iter_size, regularization, multipliers ---------------------------------------------------


def test_clip_gradients_uses_the_accumulated_sum_before_iter_size():
    """With iter_size 2 and the same batch twice, the accumulated diff is 2g; Caffe compares 2g's norm with
    clip_gradients before dividing by iter_size (so a norm between |g| and |2g| still clips)."""
    (x, y), = batches(1)
    probe = make_solver({"base_lr": 0.1})
    g = ls_grads(*current(probe), x, y)
    norm_g = math.sqrt(sum(float((a ** 2).sum()) for a in g))
    clip = 1.5 * norm_g
    solver = make_solver({"base_lr": 0.1, "momentum": 0.9, "clip_gradients": clip, "iter_size": 2,
                          "weight_decay": 0.01})
    reference = CaffeReference("SGD", [(1, 3), (1,)], momentum=0.9, clip=clip, iter_size=2, weight_decay=0.01)
    params = current(solver)
    for it, (x, y) in enumerate(batches(3)):
        grads = [2 * a for a in ls_grads(*params, x, y)]  # two passes over the same fed batch
        params = reference.update(params, grads, 0.1, it)
        solver.step(1, data=x, target=y)
        for got, want in zip(current(solver), params):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    unclipped = make_solver({"base_lr": 0.1, "momentum": 0.9, "iter_size": 2, "weight_decay": 0.01})
    for x, y in batches(3):
        unclipped.step(1, data=x, target=y)
    assert not np.allclose(current(unclipped)[0], current(solver)[0], rtol=1e-4)


def test_iter_size_equals_one_big_batch(toy_layers):
    """For a linear model, 2 passes of 4 samples (mean of the batch means) = 1 pass of 8 samples."""
    small = make_solver({"base_lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "iter_size": 2},
                        least_squares_net(toy_data_layer(4)))
    big = make_solver({"base_lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
                      least_squares_net(toy_data_layer(8)))
    small.step(5)
    big.step(5)
    for a, b in zip(current(small), current(big)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert small.net.layer_dict()["data"].cursor == big.net.layer_dict()["data"].cursor == 40


def test_lr_mult_and_decay_mult_per_blob():
    settings = {"base_lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}
    net = least_squares_net(param=[{"lr_mult": 1, "decay_mult": 1}, {"lr_mult": 2, "decay_mult": 0}])
    solver = make_solver(settings, net)
    reference = CaffeReference("SGD", [(1, 3), (1,)], momentum=0.9, weight_decay=0.1,
                               lr_mults=[1, 2], decay_mults=[1, 0])
    params = current(solver)
    for it, (x, y) in enumerate(batches(3)):
        params = reference.update(params, ls_grads(*params, x, y), 0.1, it)
        solver.step(1, data=x, target=y)
        for got, want in zip(current(solver), params):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_l1_regularization():
    settings = {"type": "Adam", "base_lr": 0.01, "momentum": 0.9, "weight_decay": 0.2,
                "regularization_type": "L1"}
    solver = make_solver(settings)
    reference = CaffeReference("Adam", [(1, 3), (1,)], momentum=0.9, weight_decay=0.2, regularization="L1")
    params = current(solver)
    for it, (x, y) in enumerate(batches(3)):
        params = reference.update(params, ls_grads(*params, x, y), 0.01, it)
        solver.step(1, data=x, target=y)
        for got, want in zip(current(solver), params):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_lr_mult_zero_blob_is_unchanged_and_has_no_gradient():
    net = least_squares_net(param=[{"lr_mult": 1}, {"lr_mult": 0}])
    solver = make_solver({"base_lr": 0.1, "momentum": 0.9, "weight_decay": 0.5}, net)
    bias = solver.net.params["ip"][1]
    before = bias.detach().clone()
    for x, y in batches(3):
        solver.step(1, data=x, target=y)
    assert torch.equal(bias.detach(), before)
    assert bias.grad is None and not bias.requires_grad
    assert not solver.updater.history_blobs()[1].any()  # its history stays 0 (Caffe's layout is kept)


def test_weight_decay_applies_to_a_blob_without_gradient():
    """A branch that does not reach the loss gets no gradient, but Caffe still decays it every iteration:
    v = μ·v + lr·λ·w; w -= v."""
    side = {"name": "side", "type": "InnerProduct", "bottom": "data", "top": "side",
            "inner_product_param": {"num_output": 2, "weight_filler": {"type": "constant", "value": 1.0}}}
    solver = make_solver({"base_lr": 0.1, "momentum": 0.9, "weight_decay": 0.5},
                         least_squares_net(extra_layers=[side]))
    w = np.ones((2, 3))
    v = np.zeros((2, 3))
    for x, y in batches(3):
        solver.step(1, data=x, target=y)
        assert solver.net.params["side"][0].grad is None
        v = 0.9 * v + 0.1 * 0.5 * w
        w = w - v
        np.testing.assert_allclose(solver.net.params["side"][0].detach().numpy(), w, rtol=RTOL)

"""Caffe's learning-rate policies (``SGDSolver::GetLearningRate``), as pure functions.

``it`` is the number of updates already applied (0 for the first update); the rate is computed once per
iteration, just before the update.  With ``base_lr`` = α, the policies are:

==========  =====================================================================================
fixed       α
step        α · γ^⌊it / stepsize⌋                    (also sets current_step = ⌊it / stepsize⌋)
exp         α · γ^it
inv         α · (1 + γ·it)^(−power)
multistep   α · γ^current_step; current_step goes up by **at most one per call**, when
            ``it >= stepvalue[current_step]`` (it is solver state, saved in the .solverstate)
poly        α · (1 − it/max_iter)^power
sigmoid     α / (1 + exp(−γ·(it − stepsize)))
==========  =====================================================================================

Arithmetic follows Caffe's float solver: the parameters are float32 values (as SolverParameter stores
them), the formula is evaluated in double precision and the rate is rounded to float32 (Caffe's
``Dtype rate``).  Rates are unitless multipliers of the gradient (per iteration).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["learning_rate", "POLICIES", "fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid"]


def _f32(value: float) -> float:
    """``value`` rounded to float32 (Caffe stores every SolverParameter float as a C float)."""
    return float(np.float32(value))


def _pow(x: float, y: float) -> float:
    """C's ``pow``: NaN for a negative base with a fractional exponent, inf on overflow."""
    try:
        return math.pow(x, y)
    except ValueError:
        return math.nan
    except OverflowError:
        return math.inf


def fixed(p, it: int, current_step: int) -> tuple[float, int]:
    """α"""
    return _f32(p.base_lr), current_step


def step(p, it: int, current_step: int) -> tuple[float, int]:
    """α · γ^⌊it / stepsize⌋; current_step becomes ⌊it / stepsize⌋"""
    current_step = it // p.stepsize
    return _f32(p.base_lr) * _pow(_f32(p.gamma), current_step), current_step


def exp(p, it: int, current_step: int) -> tuple[float, int]:
    """α · γ^it"""
    return _f32(p.base_lr) * _pow(_f32(p.gamma), it), current_step


def inv(p, it: int, current_step: int) -> tuple[float, int]:
    """α · (1 + γ·it)^(−power)"""
    return _f32(p.base_lr) * _pow(1.0 + _f32(p.gamma) * it, -_f32(p.power)), current_step


def multistep(p, it: int, current_step: int) -> tuple[float, int]:
    """α · γ^current_step, current_step += 1 (at most once per call) when it >= stepvalue[current_step]"""
    if current_step < len(p.stepvalue) and it >= p.stepvalue[current_step]:
        current_step += 1
    return _f32(p.base_lr) * _pow(_f32(p.gamma), current_step), current_step


def poly(p, it: int, current_step: int) -> tuple[float, int]:
    """α · (1 − it/max_iter)^power"""
    return _f32(p.base_lr) * _pow(1.0 - it / p.max_iter, _f32(p.power)), current_step


def sigmoid(p, it: int, current_step: int) -> tuple[float, int]:
    """α / (1 + exp(−γ·(it − stepsize)))"""
    try:
        denominator = 1.0 + math.exp(-_f32(p.gamma) * (it - p.stepsize))
    except OverflowError:
        denominator = math.inf
    return _f32(p.base_lr) / denominator, current_step


POLICIES = {f.__name__: f for f in (fixed, step, exp, inv, multistep, poly, sigmoid)}


def learning_rate(param, it: int, current_step: int = 0) -> tuple[float, int]:
    """The rate of iteration ``it`` under ``param.lr_policy`` and the solver's new ``current_step``.

    Args:
        param: a SolverParameter (reads base_lr, lr_policy, gamma, power, stepsize, stepvalue, max_iter).
        it: updates applied so far (Caffe's ``iter_``).
        current_step: the step counter before this call (multistep's state; ``step`` overwrites it).

    Returns:
        ``(rate, current_step)``; the rate is a Python float holding a float32 value.
    """
    policy = POLICIES.get(param.lr_policy)
    if policy is None:
        raise ValueError(f"unknown lr_policy {param.lr_policy!r}; known: {', '.join(POLICIES)}")
    rate, current_step = policy(param, it, current_step)
    return _f32(rate), current_step

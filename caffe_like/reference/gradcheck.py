r"""Caffe's ``GradientChecker`` in NumPy, for any layer written as two pure functions.

A layer is a pair of callables::

    forward(inputs: list[np.ndarray]) -> list[np.ndarray]                       # the tops
    backward(inputs: list[np.ndarray], top_diffs: list[np.ndarray]) -> list[np.ndarray | None]

``inputs`` are the bottoms followed by the learnable blobs; ``backward`` returns one gradient per input
(None where there is none, e.g. labels).  Both must be pure: they must not modify ``inputs``, and a
stochastic layer (Dropout) must be made deterministic by the caller (e.g. a fixed mask or a reseeded
generator inside ``forward``), which Caffe gets by reseeding its RNG before every forward.

:func:`check_gradient` compares ``backward`` with central differences
``(F(x + h) - F(x - h)) / (2h)`` of a scalar objective ``F`` of the tops, element by element, and accepts
an element when ``|analytic - numeric| <= threshold * max(|analytic|, |numeric|, 1)`` (Caffe's rule: relative,
floored at 1).  Input elements with ``kink - kink_range <= |x| <= kink + kink_range`` are skipped (nothing
with the default ``kink_range = -1``).  Modes:

``"exhaustive"`` (Caffe's ``CheckGradientExhaustive``)
    for every selected top ``t`` and element ``j`` the objective is ``2 y_t[j]`` (top diff 2 there, 0
    elsewhere): the whole Jacobian is compared.  Computed with one backward per top element and two
    forwards per input element, which gives the same numbers as Caffe's loop for pure functions.
``"objective"`` (Caffe's ``CheckGradient``)
    ``F = 1/2 sum_t sum y_t^2`` over the selected tops; the top diffs are the top data.
``"random"`` (for inputs too big for the above)
    ``F = sum_t sum r_t y_t`` with fixed Gaussian top weights ``r`` (the top diffs); for each checked
    input, ``n_directions`` random unit directions ``v`` (Gaussian, 0 at kink-skipped elements) compare the
    directional derivative ``(F(x + h v) - F(x - h v)) / (2h)`` with ``<analytic gradient, v>``.

Inputs are copied once and used in their own dtype (float64 for the references' tests, float32 when a
float32 layer is wrapped); objectives are summed in float64.  Caffe's defaults are ``stepsize = 1e-2``,
``threshold = 1e-2``; in float64 much tighter values work (the reference tests use ``1e-6``/``1e-7``).

:func:`check_layer` wires a :mod:`caffe_like.reference` layer module (``forward(*bottoms, *blobs, **params)``
and ``backward(..., top_diffs=..., **params)``) into :func:`check_gradient`.

See: Caffe ``include/caffe/test/test_gradient_check_util.hpp`` (``caffe_semantics.md`` §5).
NOTE: unlike Caffe, a check that compares nothing (every element skipped, no input with a gradient)
does not pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

__all__ = ["GradCheckReport", "WorstElement", "check_gradient", "check_layer"]

Forward = Callable[[list[np.ndarray]], Sequence[np.ndarray]]
Backward = Callable[[list[np.ndarray], list[np.ndarray]], Sequence["np.ndarray | None"]]

MODES = ("exhaustive", "objective", "random")


@dataclass(frozen=True)
class WorstElement:
    """The comparison with the largest relative error."""

    input_index: int  #: which input (bottoms then blobs)
    element: tuple[int, ...]  #: index of the input element; in random mode ``(direction,)``
    analytic: float  #: backward's value (a directional derivative in random mode)
    numeric: float  #: the central difference
    top: tuple[int, tuple[int, ...]] | None = (
        None  #: exhaustive mode: (top index, top element) of the objective
    )


@dataclass(frozen=True)
class GradCheckReport:
    """Outcome of :func:`check_gradient`."""

    mode: str  #: "exhaustive", "objective" or "random"
    passed: bool  #: every comparison within the threshold, and at least one comparison made
    max_rel_error: float  #: largest ``|a - n| / max(|a|, |n|, 1)`` (inf for a NaN)
    worst: WorstElement | None  #: where ``max_rel_error`` occurred (None if nothing was compared)
    n_checked: int  #: comparisons made (exhaustive: input element x top element; random: directions)
    n_skipped: int  #: input elements skipped by the kink rule
    n_failed: int  #: comparisons over the threshold
    stepsize: float
    threshold: float

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        if self.worst is None:
            where = "nothing compared"
        else:
            w = self.worst
            top = "" if w.top is None else f" of top {w.top[0]}{list(w.top[1])}"
            elem = f"direction {w.element[0]}" if self.mode == "random" else f"element {list(w.element)}"
            where = (
                f"worst: input {w.input_index} {elem}{top}: "
                f"analytic {w.analytic:.10g} vs numeric {w.numeric:.10g}"
            )
        return (
            f"gradcheck[{self.mode}] {verdict}: max rel error {self.max_rel_error:.3g} "
            f"(threshold {self.threshold:g}, stepsize {self.stepsize:g}); {where}; "
            f"{self.n_checked} checked, {self.n_failed} failed, {self.n_skipped} skipped"
        )

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` naming the worst element unless the check passed."""
        if not self.passed:
            raise AssertionError(str(self))


class _Tracker:
    """Accumulates comparisons and remembers the worst one."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.max_rel = 0.0
        self.worst: WorstElement | None = None
        self.n_checked = 0
        self.n_failed = 0

    def add(self, analytic: object, numeric: object) -> int | None:
        """Record a batch of comparisons; return the batch index of a new overall worst, else None."""
        analytic = np.asarray(analytic, dtype=np.float64).reshape(-1)
        numeric = np.asarray(numeric, dtype=np.float64).reshape(-1)
        if analytic.size == 0:
            return None
        scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1.0)
        rel = np.abs(analytic - numeric) / scale
        rel = np.where(np.isnan(rel), np.inf, rel)
        self.n_checked += rel.size
        self.n_failed += int(np.sum(~(rel <= self.threshold)))
        i = int(np.argmax(rel))
        if self.worst is not None and not rel[i] > self.max_rel:
            return None
        self.max_rel = float(rel[i])
        return i


def _as_list(values: object, what: str) -> list[np.ndarray]:
    if isinstance(values, np.ndarray) or not isinstance(values, Sequence):
        raise TypeError(f"gradcheck: {what} must return a list/tuple of arrays, got {type(values).__name__}")
    return [np.asarray(v) for v in values]


def _index(shape: tuple[int, ...], flat_index: int) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(flat_index), shape))


def _central(flat: np.ndarray, e: int, h: float, evaluate: Callable[[], object]) -> np.ndarray:
    """Central difference of ``evaluate()`` with respect to ``flat[e]`` (perturbed in place, then restored)."""
    original = flat[e]
    flat[e] = original + h
    plus = np.asarray(evaluate(), dtype=np.float64)
    flat[e] = original - h
    minus = np.asarray(evaluate(), dtype=np.float64)
    flat[e] = original
    return (plus - minus) / (2.0 * h)


def check_gradient(
    forward: Forward,
    backward: Backward,
    inputs: Sequence[np.ndarray],
    *,
    check: Sequence[int] | None = None,
    tops: Sequence[int] | None = None,
    stepsize: float = 1e-2,
    threshold: float = 1e-2,
    kink: float = 0.0,
    kink_range: float = -1.0,
    mode: str = "exhaustive",
    n_directions: int = 10,
    seed: int = 1701,
) -> GradCheckReport:
    """Compare ``backward`` with central differences of ``forward`` (see the module docstring).

    Args:
        forward, backward: the layer as pure functions of ``inputs`` (bottoms then blobs).
        inputs: the point to check at; copied, never modified.
        check: indices of the inputs to check; default: every input whose gradient is not None.
        tops: indices of the tops entering the objective; default all.  Exclude tops whose diff the layer
            ignores (e.g. SoftmaxWithLoss's ``prob``), as they would make the check fail.
        stepsize, threshold, kink, kink_range: Caffe's ``GradientChecker`` settings.
        mode: "exhaustive", "objective" or "random".
        n_directions: random mode: directions per checked input.
        seed: random mode: seed of the top weights and directions.
    """
    if mode not in MODES:
        raise ValueError(f"gradcheck: unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if not stepsize > 0:
        raise ValueError(f"gradcheck: stepsize must be positive, got {stepsize}")
    if mode == "random" and int(n_directions) < 1:
        raise ValueError(f"gradcheck: n_directions must be at least 1, got {n_directions}")
    work = [np.array(x, copy=True) for x in inputs]
    base = _as_list(forward(work), "forward")
    top_ids = list(range(len(base))) if tops is None else [int(t) for t in tops]
    for t in top_ids:
        if not 0 <= t < len(base):
            raise ValueError(f"gradcheck: top index {t} out of range (forward returned {len(base)} tops)")

    def run_backward(diffs: list[np.ndarray]) -> list[np.ndarray | None]:
        grads = backward(work, diffs)
        if isinstance(grads, np.ndarray) or not isinstance(grads, Sequence) or len(grads) != len(work):
            raise ValueError(
                f"gradcheck: backward must return one gradient (or None) per input ({len(work)})"
            )
        return [None if g is None else np.asarray(g) for g in grads]

    def zero_diffs() -> list[np.ndarray]:
        return [np.zeros(y.shape, dtype=y.dtype if y.dtype.kind == "f" else np.float64) for y in base]

    def tops_now() -> list[np.ndarray]:
        ys = _as_list(forward(work), "forward")
        return [np.asarray(ys[t], dtype=np.float64) for t in top_ids]

    rng = np.random.default_rng(seed)
    if mode == "exhaustive":
        # the objective 2*y_t[j] for every selected top element: one backward per element = the Jacobian's rows
        sel = [(t, j) for t in top_ids for j in range(base[t].size)]
        rows = []
        for t, j in sel:
            diffs = zero_diffs()
            diffs[t].reshape(-1)[j] = 2.0
            rows.append(run_backward(diffs))
        probe = rows[0] if rows else run_backward(zero_diffs())
    else:
        diffs = zero_diffs()
        for t in top_ids:
            if mode == "objective":  # F = 1/2 sum y^2, so dF/dy = y
                diffs[t] = np.array(base[t], dtype=diffs[t].dtype)
            else:  # F = sum r y with fixed random r
                diffs[t] = np.asarray(rng.standard_normal(base[t].shape)).astype(diffs[t].dtype)
        weights = [np.asarray(diffs[t], dtype=np.float64) for t in top_ids]
        probe = run_backward(diffs)

    check_ids = (
        [k for k, g in enumerate(probe) if g is not None] if check is None else [int(k) for k in check]
    )
    for k in check_ids:
        if not 0 <= k < len(work):
            raise ValueError(f"gradcheck: input index {k} out of range ({len(work)} inputs)")
        if probe[k] is None:
            raise ValueError(f"gradcheck: input {k} is to be checked but backward returns None for it")
        if work[k].dtype.kind != "f":
            raise ValueError(
                f"gradcheck: input {k} has dtype {work[k].dtype}; only floating inputs can be checked"
            )
        if probe[k].shape != work[k].shape:
            raise ValueError(
                f"gradcheck: gradient of input {k} has shape {probe[k].shape}, input has {work[k].shape}"
            )

    tracker = _Tracker(threshold)
    n_skipped = 0
    for k in check_ids:
        x = work[k]
        flat = x.reshape(-1)  # a view: perturbing it perturbs the input
        magnitude = np.abs(flat.astype(np.float64))
        skip = (kink - kink_range <= magnitude) & (magnitude <= kink + kink_range)
        n_skipped += int(skip.sum())
        if mode == "exhaustive":
            if not sel:
                continue
            jac = np.stack([row[k].reshape(-1) for row in rows]).astype(np.float64)  # (top elements, x.size)
            for e in np.flatnonzero(~skip):
                numeric = 2.0 * _central(
                    flat, int(e), stepsize, lambda: np.concatenate([y.reshape(-1) for y in tops_now()])
                )
                s = tracker.add(jac[:, e], numeric)
                if s is not None:
                    t, j = sel[s]
                    tracker.worst = WorstElement(
                        k,
                        _index(x.shape, e),
                        float(jac[s, e]),
                        float(numeric[s]),
                        (t, _index(base[t].shape, j)),
                    )
        elif mode == "objective":
            grad = probe[k].reshape(-1).astype(np.float64)
            for e in np.flatnonzero(~skip):
                numeric = _central(
                    flat, int(e), stepsize, lambda: 0.5 * sum(float(np.sum(y * y)) for y in tops_now())
                )
                if tracker.add(grad[e], numeric) is not None:
                    tracker.worst = WorstElement(k, _index(x.shape, e), float(grad[e]), float(numeric))
        else:
            if skip.all():
                continue
            grad = probe[k].reshape(-1).astype(np.float64)
            original = flat.copy()
            for d in range(n_directions):
                v = rng.standard_normal(flat.size)
                v[skip] = 0.0
                v /= np.linalg.norm(v)
                values = []
                for sign in (1.0, -1.0):
                    flat[...] = original + sign * stepsize * v
                    values.append(sum(float(np.sum(w * y)) for w, y in zip(weights, tops_now())))
                flat[...] = original
                numeric = (values[0] - values[1]) / (2.0 * stepsize)
                analytic = float(grad @ v)
                if tracker.add(analytic, numeric) is not None:
                    tracker.worst = WorstElement(k, (d,), analytic, numeric)

    return GradCheckReport(
        mode=mode,
        passed=tracker.n_checked > 0 and tracker.n_failed == 0,
        max_rel_error=tracker.max_rel,
        worst=tracker.worst,
        n_checked=tracker.n_checked,
        n_skipped=n_skipped,
        n_failed=tracker.n_failed,
        stepsize=float(stepsize),
        threshold=float(threshold),
    )


def check_layer(
    module: ModuleType,
    bottoms: Sequence[np.ndarray],
    params: dict | None = None,
    blobs: Sequence[np.ndarray] = (),
    *,
    dtype: type | np.dtype | None = np.float64,
    **checker_kwargs: object,
) -> GradCheckReport:
    """Gradient-check a reference layer module: ``module.forward(*bottoms, *blobs, **params)`` and
    ``module.backward(*bottoms, *blobs, top_diffs=..., **params)``.

    Floating bottoms and blobs are cast to ``dtype`` (float64 by default; None keeps them).  Unless
    ``check`` is given, every input with a gradient is checked except the module's
    ``NON_GRADIENT_INPUTS`` (CenterLoss's centers, whose "gradient" is an update rule).  Other keyword
    arguments go to :func:`check_gradient`.
    """
    params = dict(params or {})
    inputs = [np.asarray(a) for a in (*bottoms, *blobs)]
    if dtype is not None:
        inputs = [a.astype(dtype) if a.dtype.kind == "f" else a for a in inputs]

    def fwd(xs: list[np.ndarray]) -> list[np.ndarray]:
        return list(module.forward(*xs, **params))

    def bwd(xs: list[np.ndarray], diffs: list[np.ndarray]) -> list[np.ndarray | None]:
        return list(module.backward(*xs, top_diffs=tuple(diffs), **params))

    if checker_kwargs.get("check") is None:
        excluded = set(getattr(module, "NON_GRADIENT_INPUTS", ()))
        tops = fwd(inputs)
        probe = bwd(inputs, [np.ones_like(np.asarray(y, dtype=np.float64)) for y in tops])
        checker_kwargs["check"] = [k for k, g in enumerate(probe) if g is not None and k not in excluded]
    return check_gradient(fwd, bwd, inputs, **checker_kwargs)

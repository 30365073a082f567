"""The trust chain of every loss layer, as a library: what ``caffe-like gradcheck`` runs.

For each loss layer (and Accuracy, forward only) a few fixed cases are checked four ways:

``ref/fd``
    the NumPy reference's backward against central differences of its forward
    (:func:`caffe_like.reference.gradcheck.check_layer`, float64, exhaustive: step 1e-6, threshold 1e-7);
``fwd``
    the torch layer's forward against the reference's forward (in the chosen dtype; the reference runs in
    float64 on the same, dtype-rounded, inputs);
``bwd``
    the torch layer's autograd backward against the reference's backward, for the same top diffs (a loss top's
    diff is its loss weight), every input with a gradient (CenterLoss's centers: the update rule, included);
``autograd.gradcheck`` (float64) / ``caffe-fd`` (float32)
    a third opinion on the torch layer: ``torch.autograd.gradcheck`` (eps 1e-6, atol 1e-5, rtol 1e-3) over the
    inputs with a true derivative, its max relative error computed from the analytic and central-difference
    Jacobians; in float32, Caffe's own checker settings (stepsize 1e-2, threshold 1e-2) on the float32 layer.

The relative error is Caffe's: ``|a − b| / max(|a|, |b|, 1)``.  Checks that compare no gradient (Accuracy's
backward, an input without derivative) are left out.  :func:`run_suite` returns :class:`CheckResult` rows;
:func:`format_table` prints them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Case", "CheckResult", "TorchLayer", "cases", "run_case", "run_suite", "format_table", "LAYER_TYPES",
           "THRESHOLDS"]

#: the layers the suite covers, in table order
LAYER_TYPES = (
    "SoftmaxWithLoss",
    "EuclideanLoss",
    "HingeLoss",
    "SigmoidCrossEntropyLoss",
    "MultinomialLogisticLoss",
    "LargeMarginInnerProduct",
    "CenterLoss",
    "ReciprocalNormLoss",
    "Accuracy",
)

#: check -> dtype -> threshold on the max relative error
THRESHOLDS = {
    "fwd": {"float64": 1e-10, "float32": 1e-5},
    "bwd": {"float64": 1e-10, "float32": 1e-4},
}
#: the reference's own finite-difference check (float64)
REF_FD = {"stepsize": 1e-6, "threshold": 1e-7}
#: torch.autograd.gradcheck's settings (float64)
AUTOGRAD = {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3}
#: Caffe's GradientChecker settings of its float tests, for the float32 third opinion
CAFFE32 = {"stepsize": 1e-2, "threshold": 1e-2}


@dataclass(frozen=True)
class Case:
    """One way to call a layer.

    Attributes:
        layer: the Caffe type.
        name: short id.
        bottoms: float64 arrays (labels as float integers).
        blobs: the layer's learnable blobs (in Caffe's order).
        fields: the layer's prototxt fields besides name/type/bottom/top (``*_param`` blocks, loss_weight).
        ref_params: keyword arguments of the reference's forward/backward.
        n_tops: tops to declare.
        phase: TRAIN or TEST.
        loss_weight: the diff of a scalar loss top (other tops get fixed Gaussian diffs).
        fd_tops: tops entering the finite-difference objectives (None: all).
        ref_fd: overrides of :data:`REF_FD` for this case.
        caffe32: overrides of :data:`CAFFE32` for this case.
    """

    layer: str
    name: str
    bottoms: tuple[np.ndarray, ...]
    blobs: tuple[np.ndarray, ...] = ()
    fields: dict = field(default_factory=dict)
    ref_params: dict = field(default_factory=dict)
    n_tops: int = 1
    phase: str = "TRAIN"
    loss_weight: float = 1.0
    fd_tops: tuple[int, ...] | None = None
    ref_fd: dict = field(default_factory=dict)
    caffe32: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    """One row of the table."""

    layer: str
    case: str
    check: str
    max_rel_error: float
    threshold: str
    passed: bool
    detail: str = ""


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Caffe's relative error, maximised: ``max |a − b| / max(|a|, |b|, 1)`` (inf for NaN or a shape mismatch)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    rel = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1.0)
    rel = np.where(np.isnan(rel), np.inf, rel)
    return float(rel.max())


# -- the torch side: a one-layer net as NumPy functions ----------------------------------------------


class TorchLayer:
    """A caffe_like layer in a one-layer net (an Input per bottom), used as pure NumPy functions of
    ``bottoms + blobs``, like the references.  A layer with extra state (L-Softmax's counter) is reset to its
    initial state before every forward, so repeated forwards compute the same function."""

    def __init__(self, case: Case, dtype: str = "float64") -> None:
        import torch

        from .net import Net

        self.torch = torch
        self.case = case
        self.dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
        layers = [{"name": f"in{i}", "type": "Input", "top": f"b{i}",
                   "input_param": {"shape": {"dim": list(b.shape)}}} for i, b in enumerate(case.bottoms)]
        under_test = {"name": "L", "type": case.layer, "bottom": [f"b{i}" for i in range(len(case.bottoms))],
                      "top": [f"t{i}" for i in range(case.n_tops)]}
        under_test.update(case.fields)
        layers.append(under_test)
        self.net = Net({"name": f"gradcheck_{case.layer}", "layer": layers}, phase=case.phase, seed=1701,
                       dtype=self.dtype)
        self.layer = self.net.layer_dict()["L"]
        self.n_bottoms = len(case.bottoms)
        self.grad_bottoms = [i for i in range(self.n_bottoms) if i not in self.layer.NO_GRAD_BOTTOMS]
        has_state = type(self.layer).get_extra_state is not torch.nn.Module.get_extra_state
        self._state = self.layer.get_extra_state() if has_state else None

    def _load(self, inputs: Sequence[np.ndarray], grad: bool):
        torch = self.torch
        bottoms = [torch.tensor(np.asarray(b), dtype=self.dtype) for b in inputs[: self.n_bottoms]]
        if grad:
            for i in self.grad_bottoms:
                bottoms[i].requires_grad_(True)
        with torch.no_grad():
            for blob, value in zip(self.layer.blobs, inputs[self.n_bottoms:]):
                blob.copy_(torch.as_tensor(np.asarray(value)))
        if self._state is not None:
            self.layer.set_extra_state(self._state)
        return bottoms

    def _tops(self, bottoms):
        self.net(**{f"b{i}": b for i, b in enumerate(bottoms)})
        return [self.net.blobs[f"t{i}"] for i in range(self.case.n_tops)]

    def forward(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        with self.torch.no_grad():
            tops = self._tops(self._load(inputs, grad=False))
        return [t.detach().double().numpy() for t in tops]

    def backward(self, inputs: Sequence[np.ndarray], top_diffs: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """One gradient per input (None for bottoms that get none), for the given top diffs, by autograd."""
        torch = self.torch
        bottoms = self._load(inputs, grad=True)
        tops = self._tops(bottoms)
        objective = sum((t * torch.as_tensor(np.asarray(d), dtype=t.dtype)).sum()
                        for t, d in zip(tops, top_diffs) if t.requires_grad and d is not None)
        wrt = [bottoms[i] for i in self.grad_bottoms] + [b for b in self.layer.blobs if b.requires_grad]
        if not wrt or not isinstance(objective, torch.Tensor):
            grads = [None] * len(wrt)
        else:
            grads = torch.autograd.grad(objective, wrt, allow_unused=True)
        out: list[np.ndarray | None] = [None] * (self.n_bottoms + len(self.layer.blobs))
        it = iter(grads)
        for i in self.grad_bottoms:
            g = next(it)
            out[i] = np.zeros(bottoms[i].shape) if g is None else g.double().numpy()
        for k, blob in enumerate(self.layer.blobs):
            if blob.requires_grad:
                g = next(it)
                out[self.n_bottoms + k] = np.zeros(tuple(blob.shape)) if g is None else g.double().numpy()
        return out

    def function(self, wrt: Sequence[int], inputs: Sequence[np.ndarray], tops: Sequence[int]) -> Callable:
        """A torch function of the inputs ``wrt`` (the others fixed) returning the tops ``tops``, for
        ``torch.autograd.gradcheck`` (blobs are substituted with ``torch.func.functional_call``)."""
        torch = self.torch
        fixed = self._load(inputs, grad=False)
        blob_names = {k: f"blobs.{k}" for k in range(len(self.layer.blobs))}

        def fn(*values):
            bottoms = list(fixed)
            overrides = {}
            for index, value in zip(wrt, values):
                if index < self.n_bottoms:
                    bottoms[index] = value
                else:
                    overrides[blob_names[index - self.n_bottoms]] = value
            if self._state is not None:
                self.layer.set_extra_state(self._state)
            outs = torch.func.functional_call(self.layer, overrides, tuple(bottoms))
            return tuple(outs[t] for t in tops)

        return fn


# -- the cases ----------------------------------------------------------------------------------------


def _labels(rng, shape, n):
    return rng.integers(0, n, size=shape).astype(np.float64)


def _at_angle(w: np.ndarray, cos: float, norm: float, rng) -> np.ndarray:
    u = w / np.linalg.norm(w)
    v = rng.standard_normal(w.shape)
    v -= (v @ u) * u
    v /= np.linalg.norm(v)
    return norm * (cos * u + math.sqrt(max(0.0, 1.0 - cos * cos)) * v)


def _lmip_case(name, x, y, W, m, *, base=1.0, gamma=0.0, power=1.0, iteration=0, lambda_min=0.0,
               phase="TRAIN", n_tops=1, **extra):
    from .reference.large_margin_inner_product import lambda_schedule

    block = {"num_output": W.shape[0], "type": m, "base": base, "gamma": gamma, "power": power,
             "iteration": iteration, "lambda_min": lambda_min}
    lam = 0.0 if phase == "TEST" else lambda_schedule(iteration + 1, base=base, gamma=gamma, power=power,
                                                      lambda_min=lambda_min)
    return Case("LargeMarginInnerProduct", name, (x, y), (W,), {"largemargin_inner_product_param": block},
                {"m": m, "lam": lam, "phase": phase, "lambda_top": n_tops > 1}, n_tops=n_tops, phase=phase,
                fd_tops=(0,), **extra)


def cases(layer_types: Iterable[str] | None = None) -> list[Case]:
    """The fixed cases (seeded), for ``layer_types`` (default: every type in :data:`LAYER_TYPES`)."""
    wanted = list(LAYER_TYPES if layer_types is None else layer_types)
    rng = np.random.default_rng(1701)
    out: list[Case] = []

    # SoftmaxWithLoss: Caffe's test data N(0, 10^2) would make finite differences of a float64 reference
    # needlessly hard; N(0, 2^2) keeps every probability away from the 87.34 cap
    s2, y2 = rng.standard_normal((6, 4)) * 2, _labels(rng, (6,), 4)
    s4, y4 = rng.standard_normal((2, 5, 3, 2)) * 2, _labels(rng, (2, 1, 3, 2), 5)
    y4i = y4.copy()
    y4i[0, 0, 1, :] = 255
    out += [
        Case("SoftmaxWithLoss", "2d", (s2, y2)),
        Case("SoftmaxWithLoss", "4d_ignore_valid", (s4, y4i), fields={"loss_param": {"ignore_label": 255}},
             ref_params={"ignore_label": 255}),
        Case("SoftmaxWithLoss", "4d_ignore_none_w2.5", (s4, y4i),
             fields={"loss_param": {"ignore_label": 255, "normalization": "NONE"}, "loss_weight": 2.5},
             ref_params={"ignore_label": 255, "normalization": "NONE"}, loss_weight=2.5),
    ]
    a, b = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    out += [
        Case("EuclideanLoss", "3d", (a, b)),
        Case("EuclideanLoss", "w0.5", (a[:, :, 0], b[:, :, 0]), fields={"loss_weight": 0.5}, loss_weight=0.5),
    ]
    xh = rng.standard_normal((4, 5)) * 1.5
    xh = np.where(np.abs(np.abs(xh) - 1) < 0.05, xh + 0.2, xh)  # away from the hinge
    yh = _labels(rng, (4,), 5)
    out += [
        Case("HingeLoss", "L1", (xh, yh)),
        Case("HingeLoss", "L2", (xh, yh), fields={"hinge_loss_param": {"norm": "L2"}}, ref_params={"norm": "L2"}),
    ]
    xs, ts = rng.standard_normal((3, 4, 2)) * 3, rng.uniform(0, 1, size=(3, 4, 2))
    ti = (rng.uniform(size=(3, 4, 2)) > 0.5).astype(np.float64)
    ti[0, 0, :] = -1
    out += [
        Case("SigmoidCrossEntropyLoss", "batch_size", (xs, ts)),
        Case("SigmoidCrossEntropyLoss", "valid_ignore", (xs, ti),
             fields={"loss_param": {"normalization": "VALID", "ignore_label": -1}},
             ref_params={"normalization": "VALID", "ignore_label": -1}),
    ]
    raw = rng.uniform(0.1, 1.0, size=(5, 4))
    out.append(Case("MultinomialLogisticLoss", "probs", (raw / raw.sum(axis=1, keepdims=True), _labels(rng, (5,), 4))))

    x, W, y = rng.standard_normal((6, 5)), rng.standard_normal((4, 5)), _labels(rng, (6,), 4)
    for m, base in (("SINGLE", 5.0), ("DOUBLE", 3.0), ("TRIPLE", 0.5), ("QUADRUPLE", 2.0)):
        out.append(_lmip_case(m.lower(), x, y, W, m, base=base))
    out.append(_lmip_case("quadruple_lambda0", x, y, W, "QUADRUPLE", base=0.0))
    out.append(_lmip_case("double_schedule", x, y, W, "DOUBLE", base=10.0, gamma=0.5, power=2.0, iteration=3,
                          n_tops=2))
    y_sw = np.array([0, 1, 2, 3, 0, 1, 2, 3], dtype=np.float64)
    angles = [math.pi / 3 + 1e-3, 2 * math.pi / 3 - 1e-3, math.pi / 4 - 1e-3, math.pi / 2 + 1e-3,
              3 * math.pi / 4 + 1e-3, math.pi / 3 - 1e-3, 2 * math.pi / 3 + 1e-3, math.pi / 4 + 1e-3]
    x_sw = np.stack([_at_angle(W[int(c)], math.cos(t), 1.5, rng) for c, t in zip(y_sw, angles)])
    # 1e-3 rad from a switch point, where P'' jumps: Caffe's float step 1e-2 would straddle it
    near = {"caffe32": {"stepsize": 1e-3}}
    out.append(_lmip_case("triple_switch_points", x_sw, y_sw, W, "TRIPLE", base=0.5, **near))
    out.append(_lmip_case("quadruple_switch_points", x_sw, y_sw, W, "QUADRUPLE", base=0.5, **near))
    out.append(_lmip_case("quadruple_test_phase", x, y, W, "QUADRUPLE", base=1.0, phase="TEST"))

    xc, C = rng.standard_normal((8, 3)), rng.standard_normal((4, 3))
    yc = np.array([0, 0, 1, 1, 1, 3, 3, 0], dtype=np.float64)  # class 2 absent
    x4c = rng.standard_normal((4, 2, 2, 2))
    out += [
        Case("CenterLoss", "absent_class_w0.01", (xc, yc), (C,),
             fields={"center_loss_param": {"num_output": 4}, "loss_weight": 0.01}, loss_weight=0.01),
        Case("CenterLoss", "4d_w2.5", (x4c, _labels(rng, (4,), 3)), (rng.standard_normal((3, 8)),),
             fields={"center_loss_param": {"num_output": 3}, "loss_weight": 2.5}, loss_weight=2.5),
    ]

    f = rng.standard_normal((8, 3)) * 2
    sc = rng.standard_normal((8, 4))
    yr = sc.argmax(axis=1).astype(np.float64)
    yr[::3] = (yr[::3] + 1) % 4  # rows 0, 3, 6 misclassified
    f4 = rng.standard_normal((4, 2, 2, 2))
    sc4 = rng.standard_normal((4, 3, 1, 1))
    y4r = sc4.reshape(4, 3).argmax(axis=1).astype(np.float64)
    y4r[1] = (y4r[1] + 1) % 3
    out += [
        Case("ReciprocalNormLoss", "batch_size_default", (f, sc, yr)),
        Case("ReciprocalNormLoss", "valid_w0.1", (f, sc, yr),
             fields={"loss_param": {"normalization": "VALID"}, "loss_weight": 0.1},
             ref_params={"normalization": "VALID"}, loss_weight=0.1),
        Case("ReciprocalNormLoss", "none_eps0.5", (f, sc, yr),
             fields={"loss_param": {"normalization": "NONE"}, "reciprocal_norm_loss_param": {"epsilon": 0.5}},
             ref_params={"normalization": "NONE", "epsilon": 0.5}),
        Case("ReciprocalNormLoss", "4d_features", (f4, sc4, y4r)),
    ]

    sa, ya = rng.standard_normal((8, 5)), _labels(rng, (8,), 5)
    out += [
        Case("Accuracy", "top1", (sa, ya)),
        Case("Accuracy", "top2_ignore_per_class", (sa, np.where(np.arange(8) % 3 == 0, 4.0, ya)),
             fields={"accuracy_param": {"top_k": 2, "ignore_label": 4}},
             ref_params={"top_k": 2, "ignore_label": 4, "per_class_top": True}, n_tops=2),
    ]
    return [c for c in out if c.layer in wanted]


# -- running the checks -------------------------------------------------------------------------------


def _reference(layer_type: str):
    from .reference import REFERENCES

    return REFERENCES[layer_type]


def _top_diffs(case: Case, tops: Sequence[np.ndarray]) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    diffs = []
    for top in tops:
        if top.ndim == 0:  # a scalar loss top: its diff is its loss weight
            diffs.append(np.asarray(case.loss_weight, dtype=np.float64))
        else:
            diffs.append(rng.standard_normal(top.shape))
    return diffs


def _as_dtype(arrays: Sequence[np.ndarray], dtype: str) -> list[np.ndarray]:
    """The inputs rounded to ``dtype`` and back to float64 (what the torch layer sees)."""
    return [np.asarray(a, dtype=np.float64).astype(dtype).astype(np.float64) for a in arrays]


def run_case(case: Case, dtype: str = "float64") -> list[CheckResult]:
    """The rows of one case (see the module docstring)."""
    import torch

    from .reference.gradcheck import check_gradient, check_layer

    ref = _reference(case.layer)
    rows: list[CheckResult] = []
    has_backward = case.layer != "Accuracy"

    def row(check, err, threshold, passed, detail=""):
        rows.append(CheckResult(case.layer, case.name, check, err, threshold, bool(passed), detail))

    # 1. the reference's backward against finite differences of its forward (float64)
    derivative_inputs: list[int] = []
    if has_backward:
        settings = {**REF_FD, **case.ref_fd}
        report = check_layer(ref, case.bottoms, case.ref_params, blobs=case.blobs, tops=case.fd_tops, **settings)
        row("ref/fd float64", report.max_rel_error, f"{settings['threshold']:g}", report.passed,
            "" if report.passed else str(report))
        tops = ref.forward(*case.bottoms, *case.blobs, **case.ref_params)
        probe = ref.backward(*case.bottoms, *case.blobs, top_diffs=tuple(_top_diffs(case, tops)), **case.ref_params)
        excluded = set(getattr(ref, "NON_GRADIENT_INPUTS", ()))
        derivative_inputs = [k for k, g in enumerate(probe) if g is not None and k not in excluded]

    # 2. torch forward against the reference
    layer = TorchLayer(case, dtype)
    inputs = _as_dtype((*case.bottoms, *case.blobs), dtype)
    n_b = len(case.bottoms)
    want = [np.asarray(t, dtype=np.float64) for t in ref.forward(*inputs[:n_b], *inputs[n_b:], **case.ref_params)]
    got = layer.forward(inputs)
    err = max((_rel(g, w) for g, w in zip(got, want)), default=0.0) if len(got) == len(want) else math.inf
    threshold = THRESHOLDS["fwd"][dtype]
    row(f"torch fwd == ref {dtype}", err, f"{threshold:g}", err <= threshold)
    if not has_backward:
        return rows

    # 3. torch backward against the reference, for the same top diffs
    diffs = _top_diffs(case, want)
    want_g = ref.backward(*inputs[:n_b], *inputs[n_b:], top_diffs=tuple(diffs), **case.ref_params)
    got_g = layer.backward(inputs, diffs)
    errs = []
    for g, w in zip(got_g, want_g):
        if (g is None) != (w is None):  # a gradient on one side only
            errs.append(math.inf)
        elif g is not None:
            errs.append(_rel(g, w))
    err = max(errs, default=0.0)
    threshold = THRESHOLDS["bwd"][dtype]
    row(f"torch bwd == ref {dtype}", err, f"{threshold:g}", err <= threshold)

    # 4. a third opinion on the torch layer's gradient: the inputs with a true derivative that torch differentiates
    wrt = [k for k in derivative_inputs
           if (k < n_b and k in layer.grad_bottoms) or (k >= n_b and layer.layer.blobs[k - n_b].requires_grad)]
    fd_tops = list(range(case.n_tops)) if case.fd_tops is None else list(case.fd_tops)
    if not wrt:
        return rows
    if dtype == "float64":
        leaves = tuple(torch.tensor(inputs[k], dtype=torch.float64, requires_grad=True) for k in wrt)
        fn = layer.function(wrt, inputs, fd_tops)
        try:
            ok = torch.autograd.gradcheck(fn, leaves, eps=AUTOGRAD["eps"], atol=AUTOGRAD["atol"],
                                          rtol=AUTOGRAD["rtol"], raise_exception=False)
        except Exception as exc:  # a broken backward may raise instead of returning False
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        else:
            detail = ""
        err = _jacobian_error(fn, leaves, AUTOGRAD["eps"])
        row("autograd.gradcheck float64", err, f"atol={AUTOGRAD['atol']:g},rtol={AUTOGRAD['rtol']:g}", ok, detail)
    else:
        settings = {**CAFFE32, **case.caffe32}
        report = check_gradient(lambda xs: [layer.forward(xs)[t] for t in range(case.n_tops)], layer.backward,
                                [np.asarray(a, dtype=np.float32) for a in inputs], check=wrt, tops=fd_tops,
                                **settings)
        row(f"caffe-fd float32 h={settings['stepsize']:g}", report.max_rel_error, f"{settings['threshold']:g}",
            report.passed, "" if report.passed else str(report))
    return rows


def _jacobian_error(fn: Callable, leaves: tuple, eps: float) -> float:
    """Max Caffe relative error between the autograd Jacobian and central differences of ``fn``."""
    import torch

    def flat_out(*values):
        return torch.cat([o.reshape(-1) for o in fn(*values)])

    try:
        analytic = torch.autograd.functional.jacobian(flat_out, leaves)
    except Exception:
        return math.inf
    worst = 0.0
    with torch.no_grad():
        for index in range(len(leaves)):
            numeric = torch.zeros_like(analytic[index])
            base = [v.detach().clone() for v in leaves]
            flat = base[index].reshape(-1)
            for e in range(flat.numel()):
                original = flat[e].item()
                flat[e] = original + eps
                plus = flat_out(*base)
                flat[e] = original - eps
                minus = flat_out(*base)
                flat[e] = original
                numeric.reshape(numeric.shape[0], -1)[:, e] = (plus - minus) / (2 * eps)
            worst = max(worst, _rel(analytic[index].numpy(), numeric.numpy()))
    return worst


def run_suite(layer_types: Iterable[str] | None = None, dtype: str = "float64") -> list[CheckResult]:
    """Every case's rows (see :func:`run_case`); a case that raises gives one failed row with the error."""
    rows: list[CheckResult] = []
    for case in cases(layer_types):
        try:
            rows.extend(run_case(case, dtype))
        except Exception as exc:  # report and continue: one broken layer must not hide the others
            rows.append(CheckResult(case.layer, case.name, "run", math.inf, "-", False, f"{type(exc).__name__}: {exc}"))
    return rows


def format_table(rows: Sequence[CheckResult]) -> str:
    """A fixed-width table: layer, case, check, max rel error, threshold, verdict (then failure details)."""
    header = ("layer", "case", "check", "max rel err", "threshold", "verdict")
    body = [(r.layer, r.case, r.check, f"{r.max_rel_error:.2e}", r.threshold, "ok" if r.passed else "FAIL")
            for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failed = [r for r in rows if not r.passed]
    for r in failed:
        if r.detail:
            lines.append(f"FAIL {r.layer}/{r.case} [{r.check}]: {r.detail}")
    n_cases = len({(r.layer, r.case) for r in rows})
    lines.append(f"{len(rows) - len(failed)} of {len(rows)} checks passed ({n_cases} cases)"
                 + ("" if not failed else f"; {len(failed)} FAILED"))
    return "\n".join(lines)

"""Export a Caffe net to one self-contained, validated ONNX file (DESIGN §7).

``export_onnx(net_or_spec, path)`` derives the deploy net (:mod:`caffe_like.export.deploy`), builds it,
loads the weights, wraps it in a module with positional inputs and a tuple of outputs, and exports it
with a **dynamic batch axis**.  Then the model is given its metadata (:mod:`caffe_like.export.metadata`),
shape-inferred (``onnx.shape_inference``), checked (``onnx.checker.check_model(full_check=True)``),
written atomically as one file, and (``verify=True``, the default) run with onnxruntime on CPU at two
batch sizes against the PyTorch net.

The exporter (``docs/formats.md``, "ONNX export", has the measurements behind the choice):

* ``exporter="dynamo"`` (default): ``torch.onnx.export(dynamo=True)``, torch.export-based, opset 18 by
  default (its minimum), ``external_data=False`` so weights stay inside the one file.  It needs the
  ``onnxscript`` package.  Python control flow that depends on values or on the batch size fails loudly
  instead of being frozen into the graph.
* ``exporter="torchscript"``: the legacy tracer (``dynamo=False``, opset 17 by default), deprecated
  since torch 2.9.  Kept for comparison (``tools/bench_onnx.py``); it freezes Python-level decisions
  taken on traced values, which the verification step then has to catch.

No silent approximation: a layer that cannot be exported is an :class:`~caffe_like.errors.ExportError`
naming the layer and its type, found by the rules below, by the exporter failing (the failing layer is
then located by exporting the layers one by one), or by the verification disagreeing with PyTorch.

* ``Python`` layers (arbitrary code);
* random layers in TRAIN: ``Dropout``, ``Pooling`` with ``pool: STOCHASTIC``;
* ``BatchNorm`` in TRAIN (it updates its statistics as it runs);
* a layer class may add its own reason with a method ``onnx_unsupported(self) -> str | None``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CaffeLikeError, ExportError
from . import metadata as meta
from .deploy import DeployNet, derive_deploy, file_sha256

__all__ = ["export_onnx", "ExportResult", "EXPORTERS", "DEFAULT_OPSET", "check_exportable", "DeployModule"]

EXPORTERS = ("dynamo", "torchscript")
#: default opset per exporter: 22 for dynamo (its minimum is 18), the first whose MaxPool/AveragePool
#: ceil_mode output size is PyTorch's (a last window starting in the padding is dropped); see docs/formats.md
DEFAULT_OPSET = {"dynamo": 22, "torchscript": 17}
#: tolerance of the export-time verification (float32 ONNX vs float32 PyTorch)
VERIFY_RTOL, VERIFY_ATOL = 1e-4, 1e-5


@dataclass
class ExportResult:
    """What :func:`export_onnx` did."""

    path: Path
    inputs: dict[str, list]
    outputs: list[str]
    prediction: str | None
    opset: int
    exporter: str
    seconds: float
    size_bytes: int
    verify_max_abs: float | None = None
    deploy: DeployNet | None = None
    skipped_weights: list[str] = field(default_factory=list)


class DeployModule(nn.Module):
    """A Net as exporters want it: positional inputs, a tuple of output tensors."""

    def __init__(self, net, input_names, output_names) -> None:
        super().__init__()
        self.net = net
        self.input_names = list(input_names)
        self.output_names = list(output_names)

    def forward(self, *inputs):
        self.net(**dict(zip(self.input_names, inputs)))
        return tuple(self.net.blobs[name] for name in self.output_names)


# -- rules ---------------------------------------------------------------------------------------------

def _unsupported(layer, spec_layer) -> str | None:
    hook = getattr(layer, "onnx_unsupported", None)
    if callable(hook):
        reason = hook()
        if reason:
            return reason
    kind, phase = spec_layer.type, getattr(layer, "phase", "TEST")
    if kind == "Python":
        return "a Python layer runs arbitrary code that ONNX cannot represent; register it as a caffe_like layer"
    if phase == "TRAIN":
        if kind == "Dropout" and getattr(layer, "ratio", 0.5) != 0.0:
            return "Dropout in TRAIN drops random values; export the TEST phase"
        if kind == "Pooling" and getattr(layer, "pool", "") == "STOCHASTIC":
            return "STOCHASTIC pooling in TRAIN draws random windows; export the TEST phase"
        if kind == "BatchNorm":
            return "BatchNorm in TRAIN updates its moving averages as it runs; export the TEST phase"
    return None


def check_exportable(net) -> None:
    """Raise ExportError for the first layer of ``net`` that the rules refuse."""
    for name, layer, spec_layer in zip(net.layer_names, net.layers, net.spec.layers):
        reason = _unsupported(layer, spec_layer)
        if reason:
            raise ExportError(f"cannot be exported to ONNX: {reason}", layer=name, layer_type=spec_layer.type,
                              **_where(net, spec_layer))


def _where(net, spec_layer) -> dict:
    where = net.spec.where(spec_layer)
    return {"file": where.get("file"), "line": where.get("line")}


# -- running the exporters ------------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet():
    """Hide the exporters' chatter (deprecation notes, tracer warnings, torchvision-missing logs)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript",
                                              "torch.fx.experimental.symbolic_shapes", "torch._export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


_REGISTRIES: dict = {}


@contextlib.contextmanager
def _cached_registry():
    """Reuse torch.onnx's table of ATen -> ONNX functions between exports in one process.

    torch 2.13 rebuilds it (parsing ~500 onnxscript functions' source, ~3 s) on every export; it depends
    only on the opset and is not changed by an export without a custom translation table.  This touches a
    private torch API (torch is pinned); without it, exports are just slower.
    """
    try:
        from torch.onnx._internal.exporter import _registration

        cls = _registration.ONNXRegistry
        original = cls.__dict__["from_torchlib"]
    except (ImportError, AttributeError, KeyError):
        yield
        return

    def cached(klass, opset_version=None, **kwargs):
        key = (opset_version, tuple(sorted(kwargs.items())))
        if key not in _REGISTRIES:
            args = {} if opset_version is None else {"opset_version": opset_version}
            _REGISTRIES[key] = original.__func__(klass, **args, **kwargs)
        return _REGISTRIES[key]

    cls.from_torchlib = classmethod(cached)
    try:
        yield
    finally:
        cls.from_torchlib = original


def _export_module(module: nn.Module, args: tuple, input_names, output_names, *, exporter: str, opset: int,
                   dynamic: bool = True):
    """Run one exporter; returns an onnx ModelProto (nothing is written)."""
    import onnx

    if exporter == "dynamo":
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise ExportError(
                "the torch.export-based ONNX exporter needs the 'onnxscript' package",
                fix="pip install onnxscript (or caffe-like[onnx]), or pass exporter='torchscript'",
            ) from None
        batch = torch.export.Dim("N", min=1)
        # forward(*inputs): one entry, the varargs tuple
        shapes = (tuple({0: batch} for _ in args),) if dynamic else None
        with _quiet(), _cached_registry():
            program = torch.onnx.export(module, args, None, dynamo=True, input_names=list(input_names),
                                        output_names=list(output_names), opset_version=opset,
                                        dynamic_shapes=shapes, external_data=False, verbose=False,
                                        optimize=True, report=False)
        return program.model_proto
    buffer = io.BytesIO()
    axes = {name: {0: "N"} for name in [*input_names, *output_names]} if dynamic else None
    with _quiet():
        torch.onnx.export(module, args, buffer, dynamo=False, input_names=list(input_names),
                          output_names=list(output_names), opset_version=opset, dynamic_axes=axes,
                          do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())


def _ort_session(model_bytes: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _compare(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    if not np.allclose(got, want, rtol=VERIFY_RTOL, atol=VERIFY_ATOL * max(1.0, float(np.nanmax(np.abs(want)))
                                                                           if want.size else 1.0),
                       equal_nan=True):
        return float("inf")
    both = np.isfinite(got) & np.isfinite(want)
    return float(np.abs(got[both] - want[both]).max()) if both.any() else 0.0


def _max_abs(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    both = np.isfinite(got) & np.isfinite(want)
    return float(np.abs(got[both] - want[both]).max()) if both.any() else 0.0


def _random_inputs(shapes: dict, batch: int | None, seed: int) -> list[torch.Tensor]:
    """Standard normal inputs; ``batch`` None keeps each input's declared axis 0."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(tuple(shape) if batch is None or not shape else (batch, *shape[1:]), generator=generator)
            for shape in shapes.values()]


class _OneLayer(nn.Module):
    def __init__(self, layer) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, *bottoms):
        tops = self.layer(*bottoms)
        return (tops,) if isinstance(tops, torch.Tensor) else tuple(tops)


def _locate(net, args, *, exporter: str, opset: int, dynamic: bool = True) -> tuple[str, str, str] | None:
    """Export the net's layers one at a time: the first that fails or disagrees -> (name, type, why)."""
    blobs = dict(zip(net.input_names, args))
    with torch.no_grad():
        for name, layer, spec_layer in zip(net.layer_names, net.layers, net.spec.layers):
            if spec_layer.type == "Input":
                continue
            bottoms = [blobs[b] for b in spec_layer.bottom]
            try:
                tops = _OneLayer(layer)(*bottoms)
            except Exception as err:
                return name, spec_layer.type, f"it fails on the example input: {_first_line(err)}"
            in_names = [f"in{i}" for i in range(len(bottoms))]
            out_names = [f"out{i}" for i in range(len(tops))]
            try:
                model = _export_module(_OneLayer(layer), tuple(bottoms), in_names, out_names, exporter=exporter,
                                       opset=opset, dynamic=dynamic and all(b.dim() > 0 for b in bottoms))
                session = _ort_session(model.SerializeToString())
                got = session.run(None, {n: b.numpy() for n, b in zip(in_names, bottoms)})
            except ExportError:
                raise
            except Exception as err:  # the exporter's or onnxruntime's own failure
                return name, spec_layer.type, f"{type(err).__name__}: {_first_line(err)}"
            for index, (g, t) in enumerate(zip(got, tops)):
                if _compare(g, t.numpy()) == float("inf"):
                    return name, spec_layer.type, (f"onnxruntime's top {index} differs from PyTorch's (max abs "
                                                   f"error {_max_abs(g, t.numpy()):.3g})")
            blobs.update(zip(spec_layer.top, tops))
    return None


def _first_line(err: Exception) -> str:
    """The telling line of an exporter's (long) message: the exception summary of torch.onnx's report."""
    text = str(err).replace("\x1b[96m", "").replace("\x1b[0m", "")
    if "## Exception summary" in text:
        text = text.split("## Exception summary", 1)[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = lines[0][:400] if lines else type(err).__name__
    for i, line in enumerate(lines):  # torch.export names the call that failed: say where it is
        if line.startswith("The following call raised this error") and i + 2 < len(lines):
            return f"{first} (at {lines[i + 1]}: {lines[i + 2]})"
    return first


# -- the entry point ------------------------------------------------------------------------------------

def _as_is(net, outputs) -> DeployNet:
    """A DeployNet describing ``net`` exported without derivation (its own Input layers and outputs)."""
    from .deploy import _text_sha256

    extras = [b for b in (outputs or ()) if b not in net.output_names]
    for blob in extras:
        if blob not in net.blob_shapes:
            raise ExportError(f"cannot export blob '{blob}': the net has no such blob",
                              fix="the net's blobs are: " + ", ".join(sorted(net.blob_shapes)))
    sources = [t for name, spec_layer in zip(net.layer_names, net.spec.layers) if not spec_layer.bottom
               for t in spec_layer.top]
    others = [t for t in sources if t not in net.input_names]
    if others:
        raise ExportError(f"the net reads data from layers ({', '.join(others)}); export it with derive=True",
                          file=net.spec.file)
    outs = list(net.output_names) + extras
    file = net.spec.file
    return DeployNet(spec=net.spec, inputs={n: tuple(net.blob_shapes[n]) for n in net.input_names}, outputs=outs,
                     prediction="prob" if "prob" in outs else (outs[0] if len(outs) == 1 else None),
                     source_file=file, source_sha256=file_sha256(file) if file else _text_sha256(net.spec))


def _deploy_and_net(net_or_spec, *, weights, outputs, input_shape, deploy, phase, derive):
    from ..net import Net

    if isinstance(net_or_spec, Net):
        source = net_or_spec
        if not derive:
            skipped = _load(source, weights) if weights is not None else []
            return _as_is(source, outputs), source, skipped
        state = source.spec.param.state  # the NetState the net was built for (its stages included)
        derived = derive_deploy(source.spec, outputs=outputs or (), input_shape=input_shape, phase=source.phase,
                                level=getattr(state, "level", None), stages=list(getattr(state, "stage", []) or []),
                                probe=_probe_with_layers)
        net = Net(derived.spec, phase=source.phase, dtype=torch.float32)
        given = source.layer_dict()
        with torch.no_grad():
            for name, layer in net.layer_dict().items():
                if name in given:
                    for blob, value in zip(layer.blobs, given[name].blobs):
                        blob.copy_(value.detach().to(blob.dtype).cpu())
        skipped = _load(net, weights) if weights is not None else []
        return derived, net, skipped
    if not derive:
        net = Net(net_or_spec, phase=phase, dtype=torch.float32)
        skipped = _load(net, weights) if weights is not None else []
        return _as_is(net, outputs), net, skipped
    definition = deploy if deploy is not None else net_or_spec
    derived = derive_deploy(definition, outputs=outputs or (), input_shape=input_shape, phase=phase,
                            probe=_probe_with_layers,
                            preprocess_from=net_or_spec if deploy is not None else None)
    net = Net(derived.spec, phase=phase, dtype=torch.float32)
    skipped = _load(net, weights) if weights is not None else []
    return derived, net, skipped


def _load(net, weights) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(net.load_weights(weights))


def _probe_with_layers(layer, spec):
    """Build a data layer alone (it reads its source) to learn its top-0 shape; None if that fails."""
    from ..layers.registry import LAYERS
    from ..net import Net
    from ..spec.net import NetSpec
    from ..spec.schema import to_plain

    if layer.type not in LAYERS:
        return None
    plain = to_plain(layer)
    plain.pop("include", None)
    plain.pop("exclude", None)
    try:
        one = NetSpec.load({"name": spec.name, "layer": [plain]})
        one.file = spec.file
        built = Net(one, phase="TEST")
    except (CaffeLikeError, OSError):
        return None
    return built.blob_shapes.get(layer.top[0])


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise ExportError(f"ONNX export needs the '{module}' package, which is not installed",
                          fix="pip install onnx onnxscript onnxruntime (see the README, 'ONNX')") from None


def _labels(labels_file) -> list[str]:
    try:
        text = Path(labels_file).read_text(encoding="utf-8")
    except OSError as err:
        raise ExportError(f"cannot read the labels file: {err.strerror or err}", file=str(labels_file)) from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ExportError("the labels file has no labels (one class name per line)", file=str(labels_file))
    return labels


def export_onnx(
    net_or_spec,
    path,
    *,
    weights=None,
    outputs=None,
    opset: int | None = None,
    input_shape=None,
    labels_file=None,
    deploy=None,
    exporter: str = "dynamo",
    phase: str = "TEST",
    channel_order: str | None = None,
    verify: bool = True,
    example_batch: int = 2,
    derive: bool = True,
    dynamic_batch: bool = True,
    example_inputs: dict | None = None,
) -> ExportResult:
    """Export ``net_or_spec`` to the ONNX file ``path`` (see the module docstring).

    Args:
        net_or_spec: a built :class:`caffe_like.Net` (its current weights are exported, its phase kept),
            or a net definition (path to .prototxt/.yaml, dict, NetSpec): a train/test net or a deploy net.
        path: the .onnx file to write (one file; replaced atomically).
        weights: a .caffemodel to load (layers the deploy net lacks, e.g. CenterLoss, are skipped).
        outputs: blobs to export besides the net's outputs (e.g. ``["ip1"]`` for the feature).
        opset: the ONNX opset (default 18 for dynamo, 17 for torchscript).
        input_shape: the data input's shape (C,H,W or N,C,H,W), or {input: shape}, when the data layer
            does not tell it (or to override it).
        labels_file: a text file with one class name per line, stored in the metadata.
        deploy: a deploy net (path/dict/NetSpec) to use instead of deriving one; ``net_or_spec`` then only
            supplies the preprocessing (its TEST data layers).
        exporter: "dynamo" (default) or "torchscript".
        phase: the phase to export (TEST; TRAIN only for nets without random or stateful layers).
        channel_order: override the channel order recorded in the metadata ("BGR", "RGB", "gray").
        verify: run the model with onnxruntime against PyTorch (batch 1 and example_batch + 1).
        example_batch: batch size of the example input used to export.
        derive: False exports the net exactly as it is (its Input layers are the inputs, its outputs
            plus ``outputs`` the outputs; loss layers included), e.g. to test one layer.
        dynamic_batch: False keeps every input's axis 0 at its declared size (for nets whose axis 0 is
            not a batch axis).
        example_inputs: {input: array} to export (and verify) with, instead of standard normal values
            (e.g. valid labels for a net that checks them).
    Returns:
        an ExportResult.
    Raises:
        ExportError: a layer that cannot be exported, a failed check, a bad argument.
    """
    _require("onnx")
    if verify:
        _require("onnxruntime")
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter '{exporter}'", fix=f"use one of: {', '.join(EXPORTERS)}")
    opset = int(opset) if opset is not None else DEFAULT_OPSET[exporter]
    if exporter == "dynamo" and opset < 18:
        raise ExportError(f"the torch.export-based exporter needs opset >= 18, got {opset}",
                          fix="use --opset 18 or higher, or exporter='torchscript' for opset 17 and below")
    if channel_order not in (None, "BGR", "RGB", "gray"):
        raise ExportError(f"unknown channel order '{channel_order}'", fix="use BGR, RGB or gray")
    labels = _labels(labels_file) if labels_file is not None else None
    started = time.perf_counter()
    derived, net, skipped = _deploy_and_net(net_or_spec, weights=weights, outputs=outputs,
                                            input_shape=input_shape, deploy=deploy, phase=phase, derive=derive)
    net.eval()
    check_exportable(net)
    input_names = list(derived.inputs)
    output_names = list(derived.outputs)
    if not output_names:
        raise ExportError("the deploy net has no outputs", file=derived.source_file)
    module = DeployModule(net, input_names, output_names).eval()
    batch = example_batch if dynamic_batch else None
    if example_inputs is not None:
        args = tuple(torch.as_tensor(np.asarray(example_inputs[name]), dtype=torch.float32) for name in input_names)
    else:
        args = tuple(_random_inputs(derived.inputs, batch, seed=0))
    try:
        model = _export_module(module, args, input_names, output_names, exporter=exporter, opset=opset,
                               dynamic=dynamic_batch)
    except ExportError:
        raise
    except Exception as err:  # the exporter's own failure (surfacing through Net.forward as a ShapeError too)
        culprit = _locate(net, args, exporter=exporter, opset=opset, dynamic=dynamic_batch)
        if culprit is not None:
            name, kind, why = culprit
            raise ExportError(f"cannot be exported to ONNX ({exporter} exporter): {why}", layer=name,
                              layer_type=kind, file=derived.source_file) from None
        raise ExportError(f"the {exporter} exporter failed: {type(err).__name__}: {_first_line(err)}",
                          file=derived.source_file) from None

    info = _model_info(derived, net, weights=weights, labels=labels, exporter=exporter, opset=opset,
                       channel_order=channel_order)
    model = _finish(model, info, net.name)
    data = model.SerializeToString()
    verify_err = None
    if verify:
        verify_err = _verify(data, module, derived, net, args, exporter=exporter, opset=opset,
                             dynamic=dynamic_batch, given=example_inputs is not None)
    _write_atomic(Path(path), data)
    seconds = time.perf_counter() - started
    return ExportResult(path=Path(path), inputs=info.inputs, outputs=output_names, prediction=derived.prediction,
                        opset=opset, exporter=exporter, seconds=seconds, size_bytes=len(data),
                        verify_max_abs=verify_err, deploy=derived, skipped_weights=skipped)


def _model_info(derived: DeployNet, net, *, weights, labels, exporter, opset, channel_order) -> meta.ModelInfo:
    import onnx

    import caffe_like

    inputs = {name: ["N", *[int(d) for d in shape[1:]]] for name, shape in derived.inputs.items()}
    preprocessing = {k: dict(v) for k, v in derived.preprocessing.items()}
    if channel_order is not None:
        for value in preprocessing.values():
            value["channel_order"] = channel_order
    if labels is not None:
        if derived.prediction is None:
            raise ExportError("a labels file is given but the net's classifier output cannot be told",
                              fix="name it with --output, or give a deploy net with one output")
        classes = net.blob_shapes[derived.prediction]
        count = int(np.prod(classes[1:])) if len(classes) > 1 else 1
        if count != len(labels):
            raise ExportError(f"the labels file has {len(labels)} labels but the output '{derived.prediction}' "
                              f"has {count} classes", fix="give one class name per line, in class order")
    return meta.ModelInfo(
        source_net=derived.spec.name,
        source_file=Path(derived.source_file).name if derived.source_file else "",
        source_sha256=derived.source_sha256,
        weights_file=Path(weights).name if weights is not None else "",
        weights_sha256=file_sha256(weights) if weights is not None else "",
        inputs=inputs,
        outputs=list(derived.outputs),
        prediction=derived.prediction,
        preprocessing=preprocessing,
        labels=labels,
        deploy_changes=list(derived.changes),
        exporter=(f"torch.onnx.export(dynamo={exporter == 'dynamo'}) opset {opset}, torch {torch.__version__}, "
                  f"onnx {onnx.__version__}, caffe_like {caffe_like.__version__}"),
    )


def _finish(model, info: meta.ModelInfo, name: str):
    import onnx

    import caffe_like

    model.producer_name = "caffe_like"
    model.producer_version = caffe_like.__version__
    model.graph.name = name or "net"
    model.doc_string = f"Caffe net '{info.source_net}' exported by caffe_like"
    meta.write(model, info)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"the exported model fails onnx's checks: {_first_line(err)}") from None
    return model


def _verify(data: bytes, module, derived: DeployNet, net, args, *, exporter, opset, dynamic, given=False) -> float:
    """Run the model with onnxruntime (CPU) at batch 1 and example_batch + 1 against PyTorch."""
    session = _ort_session(data)
    worst = 0.0
    runs = ((1, 1), (args[0].shape[0] + 1, 2)) if dynamic else ((None, 1),)
    for batch, seed in runs:
        inputs = _random_inputs(derived.inputs, batch, seed) if batch is not None or not given else list(args)
        with torch.no_grad():
            want = [t.numpy() for t in module(*inputs)]
        got = session.run(None, {n: x.numpy() for n, x in zip(derived.inputs, inputs)})
        for name, g, w in zip(derived.outputs, got, want):
            err = _compare(g, w)
            if err == float("inf"):
                culprit = _locate(net, tuple(inputs), exporter=exporter, opset=opset, dynamic=dynamic)
                if culprit is not None:
                    lname, kind, why = culprit
                    raise ExportError(f"cannot be exported to ONNX faithfully: {why}", layer=lname, layer_type=kind,
                                      file=derived.source_file)
                raise ExportError(f"onnxruntime's output '{name}' (batch {batch}, shape {list(np.shape(g))}) "
                                  f"differs from PyTorch's (shape {list(np.shape(w))}, max abs error "
                                  f"{_max_abs(g, w) if np.shape(g) == np.shape(w) else float('nan'):.3g})",
                                  file=derived.source_file)
            worst = max(worst, err)
    return worst


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise

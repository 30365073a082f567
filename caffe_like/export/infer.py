"""Run an exported model with onnxruntime, and compare it with the PyTorch net (DESIGN §7).

``OnnxModel(path)`` opens an inference session with the providers CUDA then CPU, keeping those the
installed onnxruntime offers (``onnxruntime-gpu`` offers CUDA even where no GPU or CUDA library is
present, and then falls back to CPU); :attr:`OnnxModel.provider` is what the session actually got.
onnxruntime's log lines about missing CUDA libraries are silenced unless ``verbose=True``.

``check_parity(model, net, weights, feeds)`` runs the PyTorch deploy net of ``net`` on the same inputs
and reports, per output, the max abs error and the max error relative to the largest |value| of
PyTorch's output, and whether the predictions (argmax of the prediction output) agree.

Example::

    model = OnnxModel("lenet.onnx")
    batch = load_inputs("t10k-images-idx3-ubyte.gz", model.input_shapes, model.info.preprocessing)
    out = model.run(batch.arrays)                     # {output: array}
    top_k(out[model.info.prediction], 5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, ExportError
from . import metadata as meta

__all__ = ["OnnxModel", "top_k", "check_parity", "ParityReport", "OutputParity", "PREFERRED_PROVIDERS"]

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
#: onnxruntime's log severities: 0 verbose, 1 info, 2 warning (its default), 3 error, 4 fatal
_QUIET, _DEFAULT = 4, 2


class OnnxModel:
    """An ONNX model in an onnxruntime session, with caffe_like's metadata (if any).

    Attributes:
        path, session, provider (the provider the session runs on), providers (all it got),
        info (a :class:`~caffe_like.export.metadata.ModelInfo`), input_shapes ({input: [dims]}, dim 0 "N"),
        output_names.
    """

    def __init__(self, path, *, providers=None, verbose: bool = False) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as err:
            raise ExportError(f"cannot read the model: {err.strerror or err}", file=str(path)) from None
        available = ort.get_available_providers()
        wanted = [p for p in (providers or PREFERRED_PROVIDERS) if p in available] or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.log_severity_level = _DEFAULT if verbose else _QUIET
        ort.set_default_logger_severity(_DEFAULT if verbose else _QUIET)
        try:
            self.session = ort.InferenceSession(data, options, providers=wanted)
        except Exception as err:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
            raise ExportError(f"not a model onnxruntime can load: {_short(err)}", file=str(path),
                              fix="give an .onnx file written by 'caffe-like export'") from None
        finally:
            ort.set_default_logger_severity(_DEFAULT)
        self.providers = list(self.session.get_providers())
        self.provider = self.providers[0]
        self.info = meta.read(dict(self.session.get_modelmeta().custom_metadata_map))
        self.input_shapes = {i.name: ["N" if not isinstance(d, int) else d for d in i.shape]
                             for i in self.session.get_inputs()}
        self._input_types = {i.name: i.type for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def prediction(self) -> str:
        """The output used for top-k: the metadata's prediction, else the first output."""
        name = self.info.prediction
        return name if name in self.output_names else self.output_names[0]

    def check_feeds(self, feeds: dict[str, np.ndarray], file: str | None = None) -> None:
        for name, shape in self.input_shapes.items():
            if name not in feeds:
                raise DataError(f"no value for the model input '{name}'", file=file)
            value = feeds[name]
            want = [d for d in shape[1:]]
            if self._input_types[name] == "tensor(float)" and value.dtype != np.float32:
                raise DataError(f"input '{name}' has dtype {value.dtype}; the model expects float32 "
                                f"(N, {', '.join(map(str, want))})", file=file)
            if value.ndim != len(shape) or any(isinstance(d, int) and d != v for d, v in zip(shape[1:], value.shape[1:])):
                raise DataError(f"input '{name}' has shape {list(value.shape)}; the model expects "
                                f"(N, {', '.join(map(str, want))})", file=file)

    def run(self, feeds: dict[str, np.ndarray], *, batch_size: int | None = None,
            file: str | None = None) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` ({input: (N, ...) float32}) in chunks of ``batch_size`` (all at once
        by default); returns {output: (N, ...)}."""
        self.check_feeds(feeds, file)
        count = len(next(iter(feeds.values())))
        step = batch_size or max(count, 1)
        parts: dict[str, list] = {name: [] for name in self.output_names}
        for start in range(0, count, step):
            chunk = {name: value[start:start + step] for name, value in feeds.items()}
            for name, value in zip(self.output_names, self.session.run(None, chunk)):
                parts[name].append(value)
        return {name: np.concatenate(values) if values else np.zeros((0,)) for name, values in parts.items()}


def _short(err: Exception) -> str:
    text = " ".join(str(err).split())
    return text[:300]


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values) of the k largest scores per item (scores flattened after axis 0); ties keep the
    lower index first."""
    flat = np.asarray(scores).reshape(len(scores), -1)
    k = max(1, min(int(k), flat.shape[1]))
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(flat, order, axis=1)


@dataclass
class OutputParity:
    name: str
    max_abs: float
    max_rel: float
    scale: float
    allclose: bool


@dataclass
class ParityReport:
    """onnxruntime vs PyTorch on the same inputs."""

    items: int
    outputs: list[OutputParity] = field(default_factory=list)
    prediction: str | None = None
    disagreements: int = 0
    first_disagreement: int | None = None
    rtol: float = 1e-4
    atol: float = 1e-5

    @property
    def max_abs(self) -> float:
        return max((o.max_abs for o in self.outputs), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((o.max_rel for o in self.outputs), default=0.0)

    @property
    def ok(self) -> bool:
        return self.disagreements == 0 and all(o.allclose for o in self.outputs)

    def as_dict(self) -> dict:
        return {"items": self.items, "prediction": self.prediction, "predictions_agree": self.disagreements == 0,
                "disagreements": self.disagreements, "max_abs_error": self.max_abs, "max_rel_error": self.max_rel,
                "rtol": self.rtol, "atol": self.atol, "ok": self.ok,
                "outputs": [o.__dict__ for o in self.outputs]}


def torch_outputs(net_source, weights, feeds: dict[str, np.ndarray], outputs: list[str], *,
                  batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Run the PyTorch deploy net of ``net_source`` (with ``weights``) on ``feeds``; {output: array}."""
    import torch

    from ..net import Net
    from .deploy import derive_deploy

    shapes = {name: (1, *value.shape[1:]) for name, value in feeds.items()}
    deploy = derive_deploy(net_source, outputs=outputs, input_shape=shapes)
    missing = [n for n in feeds if n not in deploy.inputs]
    if missing:
        raise ExportError(f"the net has no input named {', '.join(missing)} (its inputs: "
                          f"{', '.join(deploy.inputs)})", file=deploy.source_file)
    net = Net(deploy.spec, phase="TEST", dtype=torch.float32)
    if weights is not None:
        net.load_weights(weights)
    net.eval()
    count = len(next(iter(feeds.values())))
    step = batch_size or 256
    parts: dict[str, list] = {name: [] for name in outputs}
    with torch.no_grad():
        for start in range(0, count, step):
            net(**{name: torch.from_numpy(value[start:start + step]) for name, value in feeds.items()})
            for name in outputs:
                parts[name].append(net.blobs[name].numpy().copy())
    return {name: np.concatenate(values) for name, values in parts.items()}


def check_parity(model: OnnxModel, net_source, weights, feeds: dict[str, np.ndarray], *,
                 onnx_out: dict[str, np.ndarray] | None = None, batch_size: int | None = None,
                 rtol: float = 1e-4, atol: float = 1e-5) -> ParityReport:
    """Compare ``model`` with the PyTorch net ``net_source`` + ``weights`` on ``feeds`` (see module doc).

    An output is close when max|onnx - torch| <= atol + rtol * max|torch| (float32 both sides)."""
    if onnx_out is None:
        onnx_out = model.run(feeds, batch_size=batch_size)
    names = list(model.output_names)
    reference = torch_outputs(net_source, weights, feeds, names, batch_size=batch_size)
    report = ParityReport(items=len(next(iter(feeds.values()))), prediction=model.prediction, rtol=rtol, atol=atol)
    for name in names:
        got, want = onnx_out[name].astype(np.float64), reference[name].astype(np.float64)
        if got.shape != want.shape:
            raise ExportError(f"output '{name}' has shape {list(got.shape)} in onnxruntime but "
                              f"{list(want.shape)} in PyTorch", file=str(model.path))
        diff = np.abs(got - want)
        max_abs = float(diff.max()) if diff.size else 0.0
        scale = float(np.abs(want).max()) if want.size else 0.0
        max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        report.outputs.append(OutputParity(name, max_abs, max_rel, scale, max_abs <= atol + rtol * scale))
    pred = model.prediction
    a = onnx_out[pred].reshape(report.items, -1).argmax(axis=1)
    b = reference[pred].reshape(report.items, -1).argmax(axis=1)
    wrong = np.flatnonzero(a != b)
    report.disagreements = int(wrong.size)
    report.first_disagreement = int(wrong[0]) if wrong.size else None
    return report

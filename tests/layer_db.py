"""LAYER_DB: one LayerInfo per registered layer type, driving the generic layer tests.

Each layer family declares its entries in ``tests/layerdb/<family>.py`` (a list ``INFOS``); this module
collects them through an explicit import list.  A LayerInfo holds the layer's sample inputs (edge cases
included), an independent NumPy reference of its forward, which bottoms are differentiable, tolerances
per dtype, and whether it exports to ONNX.  ``tests/test_layers.py`` runs every sample through the same
checks: shape inference == actual shapes, forward == reference (float64, and float32 within its
tolerance), ``torch.autograd.gradcheck`` in float64, and (for exportable layers) an ONNX round trip.

Adding a layer means adding one entry; a registered layer without one fails ``test_every_layer_has_an_entry``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

import caffe_like

Array = np.ndarray


@dataclass(frozen=True)
class LayerSample:
    """One way to call a layer.

    Attributes:
        desc: short id for the test name ("k3s2_ceil_overhang").
        bottoms: the inputs, float64 arrays (labels as float arrays of integers, Caffe's habit).
        layer: the layer's fields besides name/type/bottom/top (its *_param blocks, loss_weight, ...).
        n_tops: how many tops to declare.
        phase: TRAIN or TEST.
        blobs: values for the layer's blobs (None: the fillers, seeded with ``seed``).
        expected: hand-computed tops (Caffe's own numbers), compared in float64 with the entry's tolerance.
        check_grad: run torch.autograd.gradcheck on this sample (needs inputs away from kinks and ties).
        seed: seeds fillers and torch's RNG before every forward (so Dropout masks repeat).
        feeds: values for tops of the layer itself when it has no bottoms (Input), by top name.
        grad_bottoms: the differentiable bottoms of this sample, when they differ from the entry's.
    """

    desc: str
    bottoms: tuple[Array, ...]
    layer: dict = field(default_factory=dict)
    n_tops: int = 1
    phase: str = "TRAIN"
    blobs: tuple[Array, ...] | None = None
    expected: tuple[Array, ...] | None = None
    check_grad: bool = True
    seed: int = 0
    feeds: dict = field(default_factory=dict)
    grad_bottoms: tuple[int, ...] | None = None


@dataclass(frozen=True)
class XFail:
    """A known failure: which check ("forward", "grad", "float32", "onnx", "shapes"), why (required)."""

    check: str
    reason: str


@dataclass(frozen=True)
class LayerInfo:
    """The test declaration of one layer type (see the module docstring).

    ``reference(sample, bottoms, blobs) -> list of tops`` is an independent NumPy forward (float64);
    None when ``expected`` values in the samples are the only oracle.
    """

    type: str
    samples: Callable[[np.random.Generator], list[LayerSample]]
    reference: Callable[[LayerSample, list[Array], list[Array]], list[Array]] | None = None
    grad_bottoms: tuple[int, ...] = (0,)
    tol: dict = field(default_factory=lambda: {"float64": (1e-9, 1e-10), "float32": (1e-4, 1e-5)})
    onnx: bool = True
    deterministic: bool = True
    xfails: tuple[XFail, ...] = ()

    def xfail_reason(self, check: str) -> str | None:
        for xf in self.xfails:
            if xf.check == check:
                return xf.reason
        return None


# -- building and running one layer ----------------------------------------------------------------

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def layer_net_dict(type_name: str, sample: LayerSample) -> dict:
    """A net with one Input per bottom (b0, b1, ...) and the layer under test ("L") with tops t0, t1..."""
    layers = [
        {"name": f"in{i}", "type": "Input", "top": f"b{i}", "input_param": {"shape": {"dim": list(b.shape)}}}
        for i, b in enumerate(sample.bottoms)
    ]
    under_test = {"name": "L", "type": type_name, "bottom": [f"b{i}" for i in range(len(sample.bottoms))],
                  "top": [f"t{i}" for i in range(sample.n_tops)]}
    under_test.update(sample.layer)
    layers.append(under_test)
    return {"name": f"test_{type_name}", "layer": layers}


def build(type_name: str, sample: LayerSample, dtype: str = "float64") -> caffe_like.Net:
    """Build the one-layer net for ``sample`` (blobs set from ``sample.blobs`` when given)."""
    net = caffe_like.Net(layer_net_dict(type_name, sample), phase=sample.phase, seed=sample.seed,
                         dtype=_DTYPES[dtype])
    if sample.blobs is not None:
        layer = net.layer_dict()["L"]
        assert len(layer.blobs) == len(sample.blobs), "sample.blobs must give every blob"
        with torch.no_grad():
            for blob, value in zip(layer.blobs, sample.blobs):
                blob.copy_(torch.as_tensor(value))
    return net


def inputs_of(sample: LayerSample, dtype: str = "float64") -> dict[str, torch.Tensor]:
    inputs = {f"b{i}": torch.tensor(b, dtype=_DTYPES[dtype]) for i, b in enumerate(sample.bottoms)}
    inputs.update({name: torch.tensor(v, dtype=_DTYPES[dtype]) for name, v in sample.feeds.items()})
    return inputs


def run(net: caffe_like.Net, sample: LayerSample, dtype: str = "float64") -> list[torch.Tensor]:
    """Forward the sample; returns the tops of the layer under test."""
    torch.manual_seed(sample.seed)
    net(**inputs_of(sample, dtype))
    return [net.blobs[f"t{i}"] for i in range(sample.n_tops)]


def collect() -> list[LayerInfo]:
    """Every LayerInfo, from the family modules in tests/layerdb (explicit list)."""
    import importlib

    infos: list[LayerInfo] = []
    for family in FAMILIES:
        infos.extend(importlib.import_module(f"layerdb.{family}").INFOS)
    return infos


#: the family modules under tests/layerdb, each with a list INFOS
FAMILIES = (
    "basic",
    "convolution",
    "pooling",
    "lrn",
    "neuron",
    "dropout",
    "batch_norm",
    "scale_bias",
    "softmax",
    "eltwise",
    "shape",
    "argmax_reduction",
    "accuracy",
    "dummy_data",
    "losses",
    "paper",
    "data_layers",
    "python_layer",
)

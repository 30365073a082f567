"""ONNX export, validation and onnxruntime inference (DESIGN §7).

* :mod:`.deploy` — the deploy net of a train/test net (a pure, torch-free spec transformation);
* :mod:`.preprocess` — the data layer's preprocessing as data (metadata), and applying it again;
* :mod:`.metadata` — the model's ``metadata_props``;
* :mod:`.onnx_export` — :func:`export_onnx` (torch, onnx, onnxscript);
* :mod:`.infer` — onnxruntime sessions, input files, top-k, parity against the PyTorch net;
* :mod:`.inputs` — reading .npy/.npz, IDX and image files.

``import caffe_like.export`` stays torch-free: the torch-based names load on first use (PEP 562).
"""

from __future__ import annotations

import importlib

from .deploy import DATA_LAYER_TYPES, REMOVED_TYPES, DeployNet, derive_deploy

_LAZY = {
    "export_onnx": "caffe_like.export.onnx_export",
    "ExportResult": "caffe_like.export.onnx_export",
    "OnnxModel": "caffe_like.export.infer",
    "check_parity": "caffe_like.export.infer",
    "top_k": "caffe_like.export.infer",
    "load_inputs": "caffe_like.export.inputs",
}

__all__ = ["DATA_LAYER_TYPES", "REMOVED_TYPES", "DeployNet", "derive_deploy", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'caffe_like.export' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

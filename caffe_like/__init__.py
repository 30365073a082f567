"""caffe_like: Caffe's nets, solvers and semantics on PyTorch.

    import caffe_like
    net = caffe_like.Net("lenet.prototxt", phase="TEST")
    solver = caffe_like.Solver("lenet_solver.prototxt")

Names that need torch (Net, Layer, Solver, ...) are imported on first use, so that the torch-free parts
(``caffe_like.spec``, ``caffe_like.reference``, ``caffe_like.weights``) load without torch.
"""

from __future__ import annotations

import importlib

from .errors import CaffeLikeError, DataError, ExportError, ShapeError, SolverError, SpecError, WeightsError

__version__ = "0.1.0"

#: public name -> module that defines it (imported lazily, PEP 562)
_LAZY = {
    "Net": "caffe_like.net",
    "NetSpec": "caffe_like.spec.net",
    "SolverSpec": "caffe_like.spec.solver",
    "Layer": "caffe_like.layers",
    "register_layer": "caffe_like.layers",
    "Solver": "caffe_like.solver",
    "export_onnx": "caffe_like.export",
}

__all__ = [
    *_LAZY,
    "CaffeLikeError",
    "SpecError",
    "ShapeError",
    "WeightsError",
    "DataError",
    "SolverError",
    "ExportError",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'caffe_like' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

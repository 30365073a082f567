"""caffe_like: Caffe's nets, solvers and semantics on PyTorch.

    import caffe_like
    net = caffe_like.Net("lenet.prototxt", phase="TEST")
    solver = caffe_like.Solver("lenet_solver.prototxt")
"""

from .errors import CaffeLikeError, DataError, ShapeError, SolverError, SpecError, WeightsError
from .layers import Layer, register_layer
from .net import Net
from .spec.net import NetSpec
from .spec.solver import SolverSpec

__version__ = "0.1.0"

__all__ = [
    "Net",
    "NetSpec",
    "SolverSpec",
    "Layer",
    "register_layer",
    "CaffeLikeError",
    "SpecError",
    "ShapeError",
    "WeightsError",
    "DataError",
    "SolverError",
]

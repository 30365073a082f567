"""LayerInfo entry: Python (Caffe Python layers run unmodified through caffe_like.pycaffe_compat).

The layers under test are the Caffe-style modules in tests/porting/ (pyloss.py, pyscale.py, pymult.py),
found on sys.path as pycaffe would find them.  The reference is NumPy, per layer class.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from layer_db import LayerInfo, LayerSample

_LAYERS_DIR = str(Path(__file__).resolve().parents[1] / "porting")
if _LAYERS_DIR not in sys.path:
    sys.path.append(_LAYERS_DIR)


def _python(module: str, layer: str, param_str: str | None = None, **extra) -> dict:
    block = {"module": module, "layer": layer}
    if param_str is not None:
        block["param_str"] = param_str
    return {"python_param": block, **extra}


def _reference(sample, bottoms, blobs):
    cls = sample.layer["python_param"]["layer"]
    x = bottoms[0]
    if cls == "EuclideanLossLayer":
        return [np.array([np.sum((x - bottoms[1]) ** 2) / x.shape[0] / 2.0])]
    if cls == "ChannelScaleLayer":
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        return [x * blobs[0].reshape(shape)]
    if cls == "MultiplyLayer":
        import yaml

        params = yaml.safe_load(sample.layer["python_param"]["param_str"])
        if params.get("test_identity") and sample.phase == "TEST":
            return [x.copy()]
        return [x * float(params["factor"]) + float(params.get("bias", 0.0))]
    raise AssertionError(cls)


def _samples(rng):
    x = rng.standard_normal((4, 3, 2, 5))
    return [
        # Caffe's pyloss ignores top[0].diff (it assumes loss_weight 1), which gradcheck's "backward is
        # multiplied by grad_output" test rejects; tests/porting checks its gradient by finite differences
        LayerSample("pyloss_euclidean", (x, rng.standard_normal(x.shape)),
                    layer=_python("pyloss", "EuclideanLossLayer", loss_weight=1), check_grad=False),
        LayerSample("pyloss_hand_computed", (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [0.0, 4.0]])),
                    layer=_python("pyloss", "EuclideanLossLayer", loss_weight=1), check_grad=False,
                    expected=(np.array([(4.0 + 9.0) / 2 / 2]),)),
        LayerSample("pyscale_learned_blob", (x,), blobs=(np.array([0.5, -1.5, 2.0]),),
                    layer=_python("pyscale", "ChannelScaleLayer")),
        LayerSample("pyscale_param_str_init", (rng.standard_normal((6, 4)),),
                    layer=_python("pyscale", "ChannelScaleLayer", "init: 0.75")),
        LayerSample("pymult_json", (x,), layer=_python("pymult", "MultiplyLayer", '{"factor": 2.5, "bias": 1}')),
        LayerSample("pymult_yaml", (x,), layer=_python("pymult", "MultiplyLayer", "{factor: -3}")),
        LayerSample("pymult_test_phase_identity", (x,), phase="TEST",
                    layer=_python("pymult", "MultiplyLayer", "{factor: 3, test_identity: true}"), expected=(x,)),
    ]


INFOS = [
    LayerInfo("Python", _samples, reference=_reference, grad_bottoms=(0, 1), onnx=False),
]

"""LayerInfo entries: Input, InnerProduct."""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample


def _input_samples(rng):
    return [LayerSample("two_tops", (), layer={"input_param": {"shape": [{"dim": [2, 3]}, {"dim": [2]}]}},
                        n_tops=2, check_grad=False,
                        feeds={"t0": rng.standard_normal((2, 3)), "t1": np.array([1.0, 0.0])})]


def _ip_samples(rng):
    x = rng.standard_normal((3, 2, 2, 2))
    filler = {"weight_filler": {"type": "gaussian", "std": 0.5}, "bias_filler": {"type": "gaussian"}}
    return [
        LayerSample("axis1_bias", (x,), layer={"inner_product_param": {"num_output": 4, **filler}}),
        LayerSample("axis2_nobias", (x,), layer={"inner_product_param": {"num_output": 3, "axis": 2,
                                                                         "bias_term": False, **filler}}),
        LayerSample("transpose", (x,), layer={"inner_product_param": {"num_output": 5, "transpose": True, **filler}}),
        LayerSample("no_filler_is_zero", (x,), layer={"inner_product_param": {"num_output": 2}},
                    expected=(np.zeros((3, 2)),)),
    ]


def _ip_reference(sample, bottoms, blobs):
    p = sample.layer["inner_product_param"]
    axis = p.get("axis", 1)
    x = bottoms[0]
    flat = x.reshape(x.shape[:axis] + (-1,))
    w = blobs[0]
    y = flat @ (w if p.get("transpose", False) else w.T)
    if p.get("bias_term", True):
        y = y + blobs[1]
    return [y]


INFOS = [
    LayerInfo("Input", _input_samples, reference=lambda s, b, w: [s.feeds["t0"], s.feeds["t1"]], grad_bottoms=(),
              onnx=False),
    LayerInfo("InnerProduct", _ip_samples, reference=_ip_reference),
]

"""LayerInfo entry: DummyData.

Constant-filled samples run in TEST (the reference and hand values check them); random fillers refill on
every forward from torch's generator, so their samples run in TRAIN, where the generic forward test
skips them (``deterministic=False``); their statistics and refilling are checked in
tests/layers/test_dummy_data.py.  Shapes and float32 == float64 (the draws are made in float64) still run.
"""

from __future__ import annotations

import numpy as np

from layer_db import LayerInfo, LayerSample


def _samples(rng):
    return [
        LayerSample("no_filler_is_zero_one_shape_two_tops", (), n_tops=2, phase="TEST",
                    layer={"dummy_data_param": {"shape": {"dim": [2, 3]}}},
                    expected=(np.zeros((2, 3)), np.zeros((2, 3)))),
        LayerSample("constant_for_all", (), n_tops=2, phase="TEST",
                    layer={"dummy_data_param": {"shape": [{"dim": [2]}, {"dim": [1, 2, 2]}],
                                                "data_filler": {"type": "constant", "value": 2.5}}},
                    expected=(np.full((2,), 2.5), np.full((1, 2, 2), 2.5))),
        LayerSample("constant_per_top", (), n_tops=2, phase="TEST",
                    layer={"dummy_data_param": {"shape": {"dim": [3]},
                                                "data_filler": [{"type": "constant", "value": 1.0},
                                                                {"type": "constant", "value": -1.0}]}},
                    expected=(np.ones(3), -np.ones(3))),
        LayerSample("legacy_nchw", (), n_tops=2, phase="TEST",
                    layer={"dummy_data_param": {"num": [2], "channels": [3, 1], "height": [1], "width": [2],
                                                "data_filler": {"type": "constant", "value": 0.5}}},
                    expected=(np.full((2, 3, 1, 2), 0.5), np.full((2, 1, 1, 2), 0.5))),
        LayerSample("scalar_and_empty_shapes", (), n_tops=2, phase="TEST",
                    layer={"dummy_data_param": {"shape": [{"dim": []}, {"dim": [2, 0]}],
                                                "data_filler": {"type": "constant", "value": 7.0}}},
                    expected=(np.array(7.0), np.zeros((2, 0)))),
        LayerSample("gaussian", (), layer={"dummy_data_param": {"shape": {"dim": [4, 5]},
                                                                 "data_filler": {"type": "gaussian", "std": 2.0}}},
                    check_grad=False, seed=3),
        LayerSample("uniform_and_constant", (), n_tops=2,
                    layer={"dummy_data_param": {"shape": [{"dim": [3, 2]}, {"dim": [2]}],
                                                "data_filler": [{"type": "uniform", "min": -1.0, "max": 2.0},
                                                                {"type": "constant", "value": 4.0}]}},
                    check_grad=False, seed=5),
    ]


def _reference(sample, bottoms, blobs):
    """Constant fillers only (the TEST samples); the shapes follow Caffe's one-or-per-top rules."""
    p = sample.layer["dummy_data_param"]
    fillers = p.get("data_filler", [])
    fillers = [fillers] if isinstance(fillers, dict) else fillers
    if "shape" in p:
        shapes = p["shape"] if isinstance(p["shape"], list) else [p["shape"]]
        shapes = [tuple(s["dim"]) for s in shapes]
    else:
        fields = [p[name] for name in ("num", "channels", "height", "width")]
        shapes = [tuple(f[0] if len(f) == 1 else f[i] for f in fields) for i in range(sample.n_tops)]
    tops = []
    for i in range(sample.n_tops):
        shape = shapes[0] if len(shapes) == 1 else shapes[i]
        filler = {} if not fillers else (fillers[0] if len(fillers) == 1 else fillers[i])
        assert filler.get("type", "constant") == "constant", "the reference covers constant fillers only"
        tops.append(np.full(shape, float(filler.get("value", 0.0))))
    return tops


INFOS = [
    LayerInfo("DummyData", _samples, reference=_reference, grad_bottoms=(), onnx=False, deterministic=False),
]

"""LayerInfo entry: Dropout.

TRAIN is stochastic (deterministic=False): the generic forward check only runs the TEST samples and the
samples with hand-computed values; shapes, float32 and gradcheck run for all (the harness reseeds torch
before every forward, so the mask repeats).  tests/layers/test_dropout.py checks the TRAIN statistics.
"""

from __future__ import annotations

from layer_db import LayerInfo, LayerSample


def _samples(rng):
    x4 = rng.standard_normal((2, 3, 4, 5))
    return [
        LayerSample("train_default_0.5", (x4,)),
        LayerSample("train_ratio_0.2_odd", (rng.standard_normal((3, 7)),), layer={"dropout_param": {"dropout_ratio": 0.2}}),
        LayerSample("train_ratio_0_identity", (x4,), layer={"dropout_param": {"dropout_ratio": 0.0}}, expected=(x4,)),
        LayerSample("test_identity", (x4,), phase="TEST"),
        LayerSample("test_ratio_0.9_identity", (rng.standard_normal((5,)),), phase="TEST",
                    layer={"dropout_param": {"dropout_ratio": 0.9}}),
    ]


def _reference(sample, bottoms, blobs):
    """TEST phase (the only deterministic one): the identity."""
    return [bottoms[0].copy()]


INFOS = [LayerInfo("Dropout", _samples, reference=_reference, deterministic=False)]

"""Helpers for the data tests (a uniquely named module: tests/data has no __init__.py)."""

from __future__ import annotations

import numpy as np

import caffe_like


def data_net(layer: dict, *, phase: str = "TRAIN", tops=("data", "label"), seed: int = 7, dtype=None,
             **options) -> caffe_like.Net:
    """A net with one data layer named 'd' (its fields in ``layer``)."""
    spec = {"name": "data_test", "layer": [{"name": "d", "top": list(tops), **layer}]}
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return caffe_like.Net(spec, phase=phase, seed=seed, options=options, **kwargs)


def batches(net: caffe_like.Net, n: int) -> list[tuple[np.ndarray, ...]]:
    """``n`` forwards, as NumPy copies of the tops."""
    out = []
    for _ in range(n):
        net()
        out.append(tuple(net.blobs[t].detach().cpu().numpy().copy() for t in net.layer_dict()["d"].spec.top))
    return out

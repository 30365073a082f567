"""Helpers of the paper layers' trust-chain tests: one-layer nets, torch forward/backward as NumPy, tolerances.

Tolerances (what is honestly achievable, measured on these cases):

* float64, torch vs the NumPy reference: rtol 1e-10, atol 1e-12 (observed differences ~1e-15: rounding only,
  as both evaluate the same closed forms in a different order);
* float32, torch (float32 inputs and blobs) vs the reference (float64 on the same float32-rounded values):
  forward rtol 1e-5, atol 1e-5; backward rtol 1e-4, atol 1e-5 (float32 rounding of O(1-30) values, amplified
  by the L-Softmax coefficients up to ~30·|c|³; observed ≤ 2e-6 relative);
* the original Caffe's float32 numbers: rtol 1e-5, atol 1e-6 (observed ≤ 1 ulp: 5e-7 absolute on logits ~7).
"""

from __future__ import annotations

import numpy as np
import torch

import caffe_like

F64 = {"rtol": 1e-10, "atol": 1e-12}
F32_FWD = {"rtol": 1e-5, "atol": 1e-5}
F32_BWD = {"rtol": 1e-4, "atol": 1e-5}
CAFFE = {"rtol": 1e-5, "atol": 1e-6}

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def net_dict(layer_type: str, shapes, fields: dict, n_tops: int = 1, name: str = "L") -> dict:
    """An Input per bottom (b0, b1, ...) and the layer ``name`` with tops t0, t1, ..."""
    layers = [{"name": f"in{i}", "type": "Input", "top": f"b{i}", "input_param": {"shape": {"dim": list(s)}}}
              for i, s in enumerate(shapes)]
    layer = {"name": name, "type": layer_type, "bottom": [f"b{i}" for i in range(len(shapes))],
             "top": [f"t{i}" for i in range(n_tops)]}
    layer.update(fields)
    layers.append(layer)
    return {"name": f"test_{layer_type}", "layer": layers}


def build(layer_type: str, bottoms, fields: dict, *, blobs=(), phase: str = "TRAIN", dtype: str = "float64",
          n_tops: int = 1) -> caffe_like.Net:
    net = caffe_like.Net(net_dict(layer_type, [np.shape(b) for b in bottoms], fields, n_tops), phase=phase,
                         seed=3, dtype=DTYPES[dtype])
    layer = net.layer_dict()["L"]
    with torch.no_grad():
        for blob, value in zip(layer.blobs, blobs):
            blob.copy_(torch.as_tensor(np.asarray(value)))
    return net


def run(net: caffe_like.Net, bottoms, *, top_diffs=None, grad_bottoms=(0,), dtype: str = "float64"):
    """Forward (and, with ``top_diffs``, backward by autograd of Σ top·diff).

    Returns ``(tops, bottom_grads, blob_grads)`` as float64 arrays; a bottom gradient is None when autograd
    produced none.  Blob gradients are the ``.grad`` of this pass (zeroed before it)."""
    layer = net.layer_dict()["L"]
    tensors = [torch.tensor(np.asarray(b), dtype=DTYPES[dtype]) for b in bottoms]
    for i in grad_bottoms:
        tensors[i].requires_grad_(True)
    for blob in layer.blobs:
        blob.grad = None
    net(**{f"b{i}": t for i, t in enumerate(tensors)})
    tops = [net.blobs[f"t{i}"] for i in range(len(layer.spec.top))]
    if top_diffs is None:
        return [t.detach().double().numpy() for t in tops], None, None
    objective = sum((t * torch.as_tensor(np.asarray(d), dtype=t.dtype)).sum()
                    for t, d in zip(tops, top_diffs) if d is not None and t.requires_grad)
    objective.backward()
    bottom_grads = [None if t.grad is None else t.grad.double().numpy() for t in tensors]
    blob_grads = [None if b.grad is None else b.grad.double().numpy() for b in layer.blobs]
    return [t.detach().double().numpy() for t in tops], bottom_grads, blob_grads


def rounded(arrays, dtype: str):
    """The arrays rounded to ``dtype`` and back to float64 (what a float32 layer sees)."""
    return [np.asarray(a, dtype=np.float64).astype(dtype).astype(np.float64) for a in arrays]

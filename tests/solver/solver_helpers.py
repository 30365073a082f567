"""Shared pieces of the solver tests: small nets and a toy data layer with a reading position (registered
per test by the ``toy_layers`` fixture of conftest.py)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from caffe_like.layers import Layer

#: the learned weights of the toy regression data: target = x · W_TRUE + 0.5 + noise
W_TRUE = np.array([1.0, -2.0, 0.5], dtype=np.float64)


class ToyData(Layer):
    """A data layer over a fixed table of 64 samples, read in order like Caffe's Data layer.

    Tops: data [B, 3], target [B, 1]; B = the first ``input_param`` shape's first dim.  The reading
    position is the layer's state (``get_extra_state``), as the real data layers expose theirs.
    """

    TYPE = "SolverToyData"
    BOTTOMS = (0, 0)
    TOPS = (2, 2)
    SAMPLES = 64

    def setup(self, bottom_shapes):
        self.batch = int(self.param("input_param").shape[0].dim[0])
        rng = np.random.default_rng(7)
        x = rng.standard_normal((self.SAMPLES, 3))
        y = x @ W_TRUE + 0.5 + 0.1 * rng.standard_normal(self.SAMPLES)
        self.register_buffer("table_x", torch.tensor(x, dtype=self.ctx.dtype), persistent=False)
        self.register_buffer("table_y", torch.tensor(y[:, None], dtype=self.ctx.dtype), persistent=False)
        self.cursor = 0

    def infer_shapes(self, bottom_shapes):
        return [(self.batch, 3), (self.batch, 1)]

    def forward(self):
        index = (torch.arange(self.batch) + self.cursor) % self.SAMPLES
        self.cursor = (self.cursor + self.batch) % self.SAMPLES
        return self.table_x[index], self.table_y[index]

    def get_extra_state(self):
        return {"cursor": self.cursor}

    def set_extra_state(self, state):
        self.cursor = int(state["cursor"])


def input_layer(batch: int = 4, dim: int = 3) -> dict:
    return {"name": "data", "type": "Input", "top": ["data", "target"],
            "input_param": {"shape": [{"dim": [batch, dim]}, {"dim": [batch, 1]}]}}


def toy_data_layer(batch: int = 4) -> dict:
    return {"name": "data", "type": ToyData.TYPE, "top": ["data", "target"],
            "input_param": {"shape": [{"dim": [batch, 3]}]}}


def least_squares_net(source: dict | None = None, *, param=None, extra_layers=()) -> dict:
    """Input (or ``source``) -> InnerProduct 'ip' (1 output, gaussian init) -> EuclideanLoss, as Caffe's
    test_gradient_based_solver.cpp: loss = Σ (x·w + b − y)² / (2N)."""
    ip = {"name": "ip", "type": "InnerProduct", "bottom": "data", "top": "pred",
          "inner_product_param": {"num_output": 1, "weight_filler": {"type": "gaussian", "std": 0.5},
                                  "bias_filler": {"type": "constant", "value": 0.1}}}
    if param is not None:
        ip["param"] = param
    return {"name": "least_squares", "layer": [
        copy.deepcopy(source) if source is not None else input_layer(),
        ip,
        {"name": "loss", "type": "EuclideanLoss", "bottom": ["pred", "target"], "top": "loss"},
        *extra_layers,
    ]}


def batches(count: int, batch: int = 4, dim: int = 3, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` float32 (data, target) batches of a noisy linear model."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        x = rng.standard_normal((batch, dim)).astype(np.float32)
        y = (x @ W_TRUE[:dim] + 0.5 + 0.3 * rng.standard_normal(batch)).astype(np.float32)[:, None]
        out.append((x, y))
    return out


def weights_of(solver) -> dict[str, list[np.ndarray]]:
    return {name: [b.detach().cpu().numpy().copy() for b in blobs] for name, blobs in solver.net.params.items()}

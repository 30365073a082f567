"""The original Caffe's solver trajectories (../shared/caffe_cases/solvers): every step's loss and weights.

Each case: a small conv net (Convolution, ReLU, Pooling, InnerProduct, SoftmaxWithLoss) with Input layers,
Caffe's initial weights, one batch per step, and what Caffe (CPU, float32) computed.  We feed the same
batches with ``solver.step(1, data=..., label=...)``.

Tolerances (float32 against float32, different summation orders): each step's loss within
1e-5·max(|loss|, 1e-2) absolute (the losses go down to ~1e-6, where only an absolute bound makes sense),
and each blob after each step within 1e-5 of its largest magnitude.  Measured (weights; losses, absolute):
SGD (step policy, lr drops at 10 and 20) 1.3e-6, 2.3e-6; Adam (poly policy) 1.8e-7, 1.8e-7.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from caffe_like.layers.registry import LAYERS
from caffe_like.solver import Solver

NEEDED = ("Input", "Convolution", "ReLU", "Pooling", "InnerProduct", "SoftmaxWithLoss")

pytestmark = [
    pytest.mark.caffe_cases,
    pytest.mark.skipif(not set(NEEDED) <= set(LAYERS),
                       reason=f"layer types not registered yet: {sorted(set(NEEDED) - set(LAYERS))}"),
]


@pytest.mark.parametrize("case", ["sgd_step", "adam_poly"])
def test_caffe_trajectory(caffe_cases, tmp_path, case):
    folder = tmp_path / case
    shutil.copytree(caffe_cases / "solvers" / case, folder)  # snapshots would go beside the solver
    solver = Solver(folder / "solver.prototxt", device="cpu", quiet=True, log=False)
    solver.net.load_weights(folder / "init.caffemodel")
    data = np.load(folder / "data.npz")
    losses = np.load(folder / "trajectory.npz")["loss"]
    history = np.load(folder / "param_history.npz")
    worst = 0.0
    for i in range(len(losses)):
        solver.step(1, data=data[f"data_{i}"], label=data[f"label_{i}"])
        loss = solver.losses.window[-1]
        assert abs(loss - losses[i]) <= 1e-5 * max(abs(losses[i]), 1e-2), f"step {i}: loss {loss} vs {losses[i]}"
        for name, blobs in solver.net.params.items():
            for j, blob in enumerate(blobs):
                want = history[f"iter_{i}/param/{name}/{j}"]
                err = float(np.max(np.abs(blob.detach().numpy() - want)) / np.max(np.abs(want)))
                worst = max(worst, err)
                assert err <= 1e-5, f"step {i}, {name}[{j}]: relative error {err:.3g}"
    final = np.load(folder / "trajectory.npz")
    for name, blobs in solver.net.params.items():
        for j, blob in enumerate(blobs):
            np.testing.assert_allclose(blob.detach().numpy(), final[f"param/{name}/{j}"], rtol=1e-4, atol=1e-6)
    assert solver.iter == len(losses)

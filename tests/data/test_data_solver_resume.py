"""Through the solver: a snapshot taken while the prefetch thread reads ahead resumes the exact run."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_like.solver import Solver


def solver_spec(source: str, prefix: str, seed: int) -> dict:
    net = {"name": "tiny", "layer": [
        {"name": "d", "type": "Data", "top": ["data", "label"],
         "transform_param": {"scale": 0.00390625, "mirror": True, "crop_size": 4},
         "data_param": {"source": source, "backend": "NPZ", "batch_size": 3, "shuffle": True}},
        {"name": "ip", "type": "InnerProduct", "bottom": "data", "top": "ip",
         "inner_product_param": {"num_output": 4, "weight_filler": {"type": "gaussian", "std": 0.1}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"},
    ]}
    return {"net_param": net, "base_lr": 0.1, "momentum": 0.9, "lr_policy": "fixed", "max_iter": 100,
            "snapshot_prefix": prefix, "random_seed": seed, "display": 0}


@pytest.mark.parametrize("resume_seed", [3, -1])
def test_snapshot_resume_is_bit_exact(tmp_path, resume_seed):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "set.npz", data=rng.integers(0, 256, size=(7, 2, 5, 6), dtype=np.uint8),
             label=rng.integers(0, 4, size=7))
    spec = solver_spec("set.npz", str(tmp_path / "run"), 3)
    whole = Solver(spec, device="cpu", data_root=tmp_path, quiet=True, log=False)
    whole.step(8)  # 24 records: 3+ shuffled epochs
    first = Solver(spec, device="cpu", data_root=tmp_path, quiet=True, log=False)
    first.step(3)
    state = first.snapshot()
    first.step(2)  # the original goes on (and its thread reads ahead) after the snapshot
    # a resumed run may be built with another random_seed (-1: unseeded): the state carries the data order
    resumed = Solver(solver_spec("set.npz", str(tmp_path / "run"), resume_seed), device="cpu",
                     data_root=tmp_path, quiet=True, log=False, snapshot=state)
    resumed.step(5)
    for name, blobs in whole.net.params.items():
        for a, b in zip(blobs, resumed.net.params[name]):
            assert np.array_equal(a.detach().numpy(), b.detach().numpy()), name

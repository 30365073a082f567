"""The CIFAR10 / CIFAR100 paper configs build on CIFAR-format data and train for a few iterations (CPU).

The data are small CIFAR "python version" batches written here (random pixels, every class present), read
through the CIFAR backend's restricted unpickler.  The real nets at batch 128 take seconds (CIFAR10) to ~30 s
(CIFAR100) per iteration on 2 CPU cores, so training uses the committed configs with the batch size lowered to 4.
"""

from __future__ import annotations

import io
import json
import pickle
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import yaml

from caffe_like.cli import main as cli
from caffe_like.solver import Solver

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "prototxt" / "paper"


def write_cifar(root: Path, *, records: int = 20) -> Path:
    """cifar-10-batches-py/{data_batch_1..5,test_batch} and cifar-100-python/{train,test} under ``root``."""
    rng = np.random.default_rng(0)
    ten = root / "cifar-10-batches-py"
    ten.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (records, 3072), dtype=np.uint8),
                 "labels": [i % 10 for i in range(records)], "batch_label": name,
                 "filenames": [f"{name}_{i}.png" for i in range(records)]}
        (ten / name).write_bytes(pickle.dumps(batch, protocol=2))
    hundred = root / "cifar-100-python"
    hundred.mkdir()
    for name in ("train", "test"):
        batch = {b"data": rng.integers(0, 256, (records, 3072), dtype=np.uint8),
                 b"fine_labels": [(7 * i) % 100 for i in range(records)],
                 b"coarse_labels": [i % 20 for i in range(records)], b"batch_label": name.encode(),
                 b"filenames": [b"x"] * records}
        (hundred / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    return write_cifar(tmp_path_factory.mktemp("cifar"))


@pytest.mark.parametrize("net, classes", [("cifar10", 10), ("cifar100", 100)])
def test_train_net_summary_reads_cifar(net, classes, cifar_root):
    from caffe_like import Net

    summary = Net(PAPER / net / "rn_center.yaml", phase="TRAIN",
                  options={"data_root": str(cifar_root), "peek_only": True}).summary()
    shapes = {top: shape for layer in summary["layers"] for top, shape in layer["top_shapes"].items()}
    assert shapes["data"] == [128, 3, 32, 32] and shapes["label"] == [128]
    assert shapes["feature"] == [128, 512] and shapes["score"] == [128, classes]
    assert shapes["pool3"] == [128, 256 if net == "cifar10" else 512, 4, 4]
    deploy = Net(PAPER / net / "deploy.yaml").summary()["total_params"]
    centers = classes * 512
    assert summary["total_params"] == deploy + centers  # + the CenterLoss centers; RN and the losses have no blobs

    out = io.StringIO()  # the command, with the data root from the environment
    with redirect_stdout(out), pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAFFE_LIKE_DATA", str(cifar_root))
        assert cli(["summary", str(PAPER / net / "rn_center.yaml"), "--phase", "TRAIN", "--json"]) == 0
    assert json.loads(out.getvalue())["total_params"] == summary["total_params"]


def _small(variant: str, net: str, tmp_path: Path, batch: int = 4) -> dict:
    """The committed solver with its net inlined and the batch sizes lowered."""
    net_param = yaml.safe_load((PAPER / net / f"{variant}.yaml").read_text())
    for layer in net_param["layer"]:
        if layer["type"] == "Data":
            layer["data_param"]["batch_size"] = batch
    solver = yaml.safe_load((PAPER / net / f"{variant}_solver.yaml").read_text())
    solver.pop("net")
    solver.update(net_param=net_param, test_iter=[2], test_interval=3, snapshot_prefix=str(tmp_path / variant),
                  snapshot_after_train=False, display=1)
    return solver


@pytest.mark.slow
@pytest.mark.parametrize("net, variant", [("cifar10", "rn_lsoftmax"), ("cifar10", "softmax"),
                                          ("cifar100", "rn_center")])
def test_paper_cifar_configs_train_a_few_iterations(net, variant, cifar_root, tmp_path):
    solver = Solver(_small(variant, net, tmp_path), device="cpu", data_root=cifar_root, max_iter=3, quiet=True)
    weights = [lp.param.detach().clone() for lp in solver.net.learnable_params()]
    solver.solve()
    assert solver.iter == 3
    changed = sum(not bool((lp.param.detach() == w).all()) for lp, w in zip(solver.net.learnable_params(), weights))
    assert changed > len(weights) // 2  # most blobs moved (BatchNorm statistics are not learned)
    results = solver.test_all()
    assert 0.0 <= results[0]["accuracy"] <= 1.0 and np.isfinite(results[0]["loss"])
    rows = (tmp_path / f"{variant}_log.csv").read_text().splitlines()
    assert any(",train,loss," in row for row in rows)

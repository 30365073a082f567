"""The quick start: its net is the paper's, mnist-mini is what the tool makes, and the main job runs on it.

The full quick start (2,000 iterations) is what ``caffe-like quickstart`` runs; CI runs the same job shortened
to 200 iterations (training, ONNX export, onnxruntime classification): ~20 s on 2 idle cores, more when shared.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import yaml

from caffe_like.cli import main as cli
from caffe_like.export.inputs import read_idx
from caffe_like.quickstart import MNIST_MINI, NET, SOLVER, train

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "prototxt" / "paper" / "mnist2d"


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_net_is_the_paper_net_apart_from_the_data_source():
    quick = yaml.safe_load(NET.read_text())
    paper = yaml.safe_load((PAPER / "rn_softmax.yaml").read_text())
    sources = []
    for layer in quick["layer"]:
        if layer["type"] == "Data":
            sources.append(layer["data_param"]["source"])
            layer["data_param"]["source"] = layer["data_param"]["source"].replace("mnist-mini/", "mnist/")
    assert sources == ["mnist-mini/train", "mnist-mini/t10k"]
    assert quick == paper


def test_quickstart_solver_is_the_paper_solver_apart_from_its_length():
    quick = yaml.safe_load(SOLVER.read_text())
    paper = yaml.safe_load((PAPER / "rn_softmax_solver.yaml").read_text())
    ratio = quick["max_iter"] / paper["max_iter"]
    assert 0 < ratio < 1
    assert quick.pop("stepvalue") == [int(s * ratio) for s in paper.pop("stepvalue")]
    assert quick.pop("test_iter") == [20] and paper.pop("test_iter") == [100]  # 2,000 vs 10,000 test images
    for key in ("max_iter", "snapshot_prefix"):  # the length, and where it writes
        quick.pop(key), paper.pop(key)
    assert quick == paper


def test_mnist_mini_is_the_head_of_mnist_and_regenerates_identically(tmp_path, mnist_dir):
    load_tool("make_mnist_mini").main(["--src", str(mnist_dir), "--out", str(tmp_path)])
    for path in sorted(MNIST_MINI.glob("*")):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
    for prefix, count in (("train", 10_000), ("t10k", 2_000)):
        images = read_idx(MNIST_MINI / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(MNIST_MINI / f"{prefix}-labels-idx1-ubyte.gz")
        assert images.shape == (count, 28, 28) and labels.shape == (count,)
        full = read_idx(mnist_dir / f"{prefix}-images-idx3-ubyte.gz")
        np.testing.assert_array_equal(images, full[:count])
        np.testing.assert_array_equal(labels, read_idx(mnist_dir / f"{prefix}-labels-idx1-ubyte.gz")[:count])
        assert sorted(set(labels.tolist())) == list(range(10))
    with gzip.open(MNIST_MINI / "t10k-labels-idx1-ubyte.gz") as handle:  # a plain gzip stream
        assert handle.read(4) == b"\0\0\x08\x01"


def test_mnist_mini_carries_its_licence_and_attribution():
    readme = (MNIST_MINI / "README.md").read_text()
    for needle in ("CC BY-SA 3.0", "Yann LeCun", "Corinna Cortes", "Burges", "tools/make_mnist_mini.py"):
        assert needle in readme
    total = sum(p.stat().st_size for p in MNIST_MINI.glob("*.gz"))
    assert 1_500_000 < total < 2_500_000


@pytest.mark.slow
def test_quickstart_command_end_to_end(tmp_path):
    """`caffe-like quickstart`, shortened to 200 iterations: train on mnist-mini (the loss falls, a snapshot is
    written), export to ONNX, classify the 2,000 test digits with onnxruntime, print the numbers."""
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli(["quickstart", "--out", str(tmp_path), "--max-iter", "200", "--no-progress"]) == 0
    text = out.getvalue()
    assert "test accuracy:" in text and "average feature L2 norm:" in text and "onnxruntime" in text
    accuracy = float(text.split("test accuracy:")[1].split("%")[0])
    norm = float(text.split("average feature L2 norm:")[1].split()[0])
    assert accuracy > 40.0  # 200 of 2,000 iterations: ~50-60 % (chance 10 %)
    assert 0.0 < norm < 1e4
    for name in ("mnist2d_rn_softmax.onnx", "mnist2d_rn_softmax_iter_200.caffemodel", "mnist2d_rn_softmax_log.csv"):
        assert (tmp_path / name).exists()
    with open(tmp_path / "mnist2d_rn_softmax_log.csv", newline="") as f:
        losses = [float(r["value"]) for r in csv.DictReader(f) if r["net"] == "train" and r["kind"] == "loss"]
    assert len(losses) >= 2 and losses[-1] < losses[0] and np.isfinite(losses).all()


def test_quickstart_library_trains_a_few_iterations(tmp_path):
    solver = train(tmp_path, max_iter=20, device="cpu", progress=False, quiet=True)
    assert solver.iter == 20 and (tmp_path / "mnist2d_rn_softmax_iter_20.caffemodel").exists()
    assert solver.param.stepvalue == [10, 15, 20]  # scaled with the length


@pytest.mark.parametrize("argv", [["--max-iter", "0"]])
def test_quickstart_rejects_bad_arguments(argv, capsys):
    assert cli(["quickstart", *argv]) == 2
    assert "--max-iter must be positive" in capsys.readouterr().err

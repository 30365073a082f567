"""The porting walk-through of docs/porting.md: the fork's BN as a plugin (examples/porting/fork_bn.py) against
a NumPy transcription of the fork's formulas, its gradient, the BatchNorm + Scale rewrite and weight mapping
(examples/porting/bn_to_batchnorm.py), the generated coverage tables, and the whole walk-through script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import caffe_like

from conftest import EXAMPLES, REPO

EPS, MOMENTUM = 1e-5, 0.9


@pytest.fixture
def fork_bn(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import fork_bn as module

    return module


@pytest.fixture
def bn_to_batchnorm(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import bn_to_batchnorm as module

    return module


def _bn_net(shape, *, frozen=False, extra=None) -> dict:
    bn = {"name": "bn", "type": "BN", "bottom": "x", "top": "y",
          "bn_param": {"slope_filler": {"type": "gaussian", "mean": 1.0, "std": 0.3},
                       "bias_filler": {"type": "gaussian", "std": 0.3}, "frozen": frozen, **(extra or {})}}
    return {"name": "bn", "layer": [
        {"name": "x", "type": "Input", "top": "x", "input_param": {"shape": {"dim": list(shape)}}}, bn]}


def _build(net: dict, phase: str, dtype=torch.float64):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return caffe_like.Net(net, phase=phase, dtype=dtype, seed=3)


def _fork_forward_train(x, slope, bias, mean_avg, inv_avg, momentum=MOMENTUM, eps=EPS):
    """The fork's BN Forward_cpu in TRAIN, written from its loops (channels on axis 1)."""
    axes = tuple(i for i in range(x.ndim) if i != 1)
    shape = [1, x.shape[1]] + [1] * (x.ndim - 2)
    mean = x.mean(axis=axes)
    centred = x - mean.reshape(shape)
    inv_std = (np.mean(centred ** 2, axis=axes) + eps) ** -0.5
    y = centred * inv_std.reshape(shape) * slope.reshape(shape) + bias.reshape(shape)
    return y, momentum * mean_avg + (1 - momentum) * mean, momentum * inv_avg + (1 - momentum) * inv_std


def _fork_forward_test(x, slope, bias, mean_avg, inv_avg):
    shape = [1, x.shape[1]] + [1] * (x.ndim - 2)
    return (x - mean_avg.reshape(shape)) * inv_avg.reshape(shape) * slope.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("shape", [(4, 3, 2, 5), (6, 5)])
def test_fork_bn_matches_the_forks_formulas(fork_bn, shape):
    rng = np.random.default_rng(0)
    train = _build(_bn_net(shape), "TRAIN")
    blobs = train.params["bn"]
    assert [tuple(b.shape) for b in blobs] == [(1, shape[1])] * 4  # the fork's layout: [1, C] each
    assert torch.equal(blobs[2].detach(), torch.zeros(1, shape[1])) and torch.equal(
        blobs[3].detach(), torch.ones(1, shape[1], dtype=torch.float64))
    slope, bias = (b.detach().numpy().reshape(-1).copy() for b in blobs[:2])
    mean_avg, inv_avg = np.zeros(shape[1]), np.ones(shape[1])
    for _ in range(3):
        x = rng.standard_normal(shape) * 2 + 1
        y = train(x=torch.from_numpy(x))["y"].detach().numpy()
        want, mean_avg, inv_avg = _fork_forward_train(x, slope, bias, mean_avg, inv_avg)
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(blobs[2].detach().numpy().reshape(-1), mean_avg, rtol=1e-12)
        np.testing.assert_allclose(blobs[3].detach().numpy().reshape(-1), inv_avg, rtol=1e-12)
    test = _build(_bn_net(shape), "TEST")
    with torch.no_grad():
        for mine, theirs in zip(test.params["bn"], blobs):
            mine.copy_(theirs)
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(test(x=torch.from_numpy(x))["y"].detach().numpy(),
                               _fork_forward_test(x, slope, bias, mean_avg, inv_avg), rtol=1e-12)


def test_fork_bn_param_block_and_frozen(fork_bn):
    net = _build(_bn_net((4, 2), frozen=True, extra={"momentum": 0.5, "eps": 0.1}), "TRAIN")
    layer = net.layer_dict()["bn"]
    assert (layer.momentum, layer.eps, layer.frozen) == (0.5, 0.1, True)
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    before = [b.detach().clone() for b in net.params["bn"]]
    y = net(x=x)["y"]
    slope, bias = before[0].reshape(-1), before[1].reshape(-1)
    assert torch.allclose(y, x * slope + bias)  # moving mean 0, inverse std 1
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, net.params["bn"]))  # nothing moves
    y.sum().backward()
    assert torch.allclose(x.grad, slope.expand(4, 2)) and net.params["bn"][0].grad is None  # frozen: no slope grad
    default = _build({"name": "d", "layer": [
        {"name": "x", "type": "Input", "top": "x", "input_param": {"shape": {"dim": [2, 3]}}},
        {"name": "bn", "type": "BN", "bottom": "x", "top": "y"}]}, "TRAIN").layer_dict()["bn"]
    assert (default.momentum, default.eps, default.frozen) == (0.9, 1e-5, False)
    assert not default.blobs[0].detach().any()  # Caffe's default filler: constant 0


def test_fork_bn_gradcheck_float64(fork_bn):
    net = _build(_bn_net((4, 3, 2, 2)), "TRAIN")
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    slope, bias = (p.detach().clone().requires_grad_(True) for p in net.params["bn"][:2])

    def f(x, s, b):
        return torch.func.functional_call(net, {"layers.1.blobs.0": s, "layers.1.blobs.1": b}, (), {"x": x})["y"]

    assert torch.autograd.gradcheck(f, (x, slope, bias), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_fork_bn_stats_get_weight_decay_as_in_the_fork(fork_bn, tmp_path):
    """With the example's two param blocks, blobs 2 and 3 are learnable with lr_mult 1, decay_mult 1: the solver
    regularizes them (their gradient is 0), as Caffe does with the fork's layer."""
    (tmp_path / "net.prototxt").write_text(
        'layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 4 dim: 2 } } }\n'
        'layer { name: "bn" type: "BN" bottom: "x" top: "y" param { lr_mult: 1 decay_mult: 0 } '
        'param { lr_mult: 1 decay_mult: 0 } bn_param { frozen: true slope_filler { type: "constant" value: 1 } } }\n'
        'layer { name: "loss" type: "Reduction" bottom: "y" top: "loss" loss_weight: 1 }\n')
    (tmp_path / "solver.prototxt").write_text('net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\n'
                                              'weight_decay: 0.5\nmax_iter: 1\nsnapshot_after_train: false\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solver = caffe_like.Solver(tmp_path / "solver.prototxt", log=False, quiet=True, device="cpu")
    solver.step(1, x=torch.ones(4, 2))
    inv_std = solver.net.params["bn"][3].detach()
    assert torch.allclose(inv_std, torch.full((1, 2), 1 - 0.1 * 0.5))  # 1 - lr * decay * 1


def test_rewrite_is_the_committed_batchnorm_net(bn_to_batchnorm, tmp_path):
    out = tmp_path / "lsoftmax_mnist_batchnorm.prototxt"
    assert bn_to_batchnorm.main([str(EXAMPLES / "lsoftmax_mnist_bn.prototxt"), str(out)]) == 0
    assert out.read_text() == (EXAMPLES / "lsoftmax_mnist_batchnorm.prototxt").read_text()
    text = out.read_text()
    assert text.count('type: "BatchNorm"') == 11 and text.count('type: "Scale"') == 11 and '"BN"' not in text


def test_converted_weights_give_the_same_test_outputs(fork_bn, bn_to_batchnorm, tmp_path):
    net = tmp_path / "bn.prototxt"
    net.write_text(
        'name: "small"\n'
        'layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 5 dim: 2 dim: 4 dim: 4 } } }\n'
        'layer { name: "conv" type: "Convolution" bottom: "x" top: "conv" convolution_param { num_output: 3 '
        'kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }\n'
        'layer { name: "bn" type: "BN" bottom: "conv" top: "bn" param { lr_mult: 1 decay_mult: 0 } '
        'param { lr_mult: 1 decay_mult: 0 } bn_param { slope_filler { type: "constant" value: 1 } '
        'bias_filler { type: "constant" value: 0 } } }\n'
        'layer { name: "relu" type: "ReLU" bottom: "bn" top: "bn" }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "bn" top: "ip" inner_product_param { num_output: 4 '
        'weight_filler { type: "xavier" } } }\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = caffe_like.Net(net, phase="TRAIN", seed=1)
        with torch.no_grad():
            train.params["bn"][0].uniform_(0.5, 1.5)
            train.params["bn"][1].uniform_(-0.5, 0.5)
            for _ in range(5):  # move the moving averages away from 0 and 1
                train(x=torch.randn(5, 2, 4, 4) * 3 + 1)
        train.save_weights(tmp_path / "bn.caffemodel")
        out = tmp_path / "batchnorm.prototxt"
        bn_to_batchnorm.main([str(net), str(out), "--weights", str(tmp_path / "bn.caffemodel"),
                              str(tmp_path / "batchnorm.caffemodel")])
        fork = caffe_like.Net(net, phase="TEST", weights=tmp_path / "bn.caffemodel")
        bvlc = caffe_like.Net(out, phase="TEST", weights=tmp_path / "batchnorm.caffemodel")
    assert [layer for layer in bvlc.layer_names] == ["x", "conv", "bn", "bn_scale", "relu", "ip"]
    x = torch.randn(5, 2, 4, 4) * 3 + 1
    with torch.no_grad():
        np.testing.assert_allclose(bvlc(x=x)["ip"].numpy(), fork(x=x)["ip"].numpy(), rtol=1e-4, atol=1e-5)


def test_coverage_tables_are_up_to_date():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "layer_coverage.py"), "--check",
                             str(REPO / "docs" / "porting.md")], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_coverage_lists_every_caffe_type():
    from caffe_like.porting import layer_coverage
    from caffe_like.spec.params import LAYER_PARAM_FIELDS

    rows = {row["type"]: row for row in layer_coverage()}
    assert set(LAYER_PARAM_FIELDS) <= set(rows)
    assert rows["Convolution"]["status"] == "supported" and rows["LSTM"]["status"] == "not supported"
    assert rows["Python"]["status"] == "partial" and rows["LargeMarginInnerProduct"]["origin"] == "paper"


def test_walkthrough_script_prints_the_documented_commands():
    result = subprocess.run(["bash", str(REPO / "tools" / "porting_walkthrough.sh"), "--print"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    for command in ("caffe-like check fork/", "python bn_to_batchnorm.py", "caffe-like --plugin fork_bn train",
                    "caffe-like gradcheck --layer LargeMarginInnerProduct", "caffe-like --plugin fork_bn export",
                    "caffe-like test --model lsoftmax_mnist_batchnorm.prototxt"):
        assert command in script, command


@pytest.mark.slow
def test_walkthrough_runs(tmp_path, mnist_root):
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist").symlink_to(mnist_root / "mnist" if (mnist_root / "mnist").is_dir() else mnist_root)
    env = {**os.environ, "CAFFE_LIKE_DATA": str(data), "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "2",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(["bash", str(REPO / "tools" / "porting_walkthrough.sh")], capture_output=True, text=True,
                            cwd=REPO, env=env, timeout=1500)
    out = result.stdout
    assert result.returncode == 0, (out + result.stderr)[-6000:]
    assert "not portable yet (exit status 1)" in out
    assert out.count("everything is portable") == 2
    assert "BN gradcheck (float64): True" in out and "checks passed" in out
    assert "wrote lsoftmax_bn.onnx" in out and "wrote lsoftmax_batchnorm.onnx" in out
    scores = re.findall(r"^accuracy = (\S+)$", out, re.M)
    assert len(scores) == 2 and scores[0] == scores[1]  # the converted weights score the same

"""The Solver's speed options: channels_last, compile, amp (CUDA), the malloc tuning, and their CLI flags.

Speed itself is measured by tools/bench.py, never here; these tests pin behaviour: each option trains the
same trajectory as the plain solver (up to rounding), snapshots and resumes, and refuses what it cannot do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from caffe_like import SpecError
from caffe_like.cli import main
from caffe_like.solver import Solver
from caffe_like.weights import read_solverstate

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
REPO = Path(__file__).resolve().parents[2]


def _net(batch=6):
    return {"name": "options", "layer": [
        {"name": "in", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [batch, 2, 8, 8]}, {"dim": [batch]}]}},
        {"name": "conv", "type": "Convolution", "bottom": "data", "top": "conv",
         "param": [{"lr_mult": 1}, {"lr_mult": 2}],
         "convolution_param": {"num_output": 4, "kernel_size": 3, "pad": 1, "weight_filler": {"type": "xavier"}}},
        {"name": "bn", "type": "BatchNorm", "bottom": "conv", "top": "conv"},
        {"name": "scale", "type": "Scale", "bottom": "conv", "top": "conv", "scale_param": {"bias_term": True}},
        {"name": "prelu", "type": "PReLU", "bottom": "conv", "top": "conv"},
        {"name": "pool", "type": "Pooling", "bottom": "conv", "top": "pool",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "ip", "type": "InnerProduct", "bottom": "pool", "top": "ip",
         "inner_product_param": {"num_output": 3, "weight_filler": {"type": "xavier"}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"},
    ]}


def _solver(tmp_path=None, **options):
    settings = {"net_param": _net(), "base_lr": 0.05, "momentum": 0.9, "weight_decay": 0.0005,
                "lr_policy": "fixed", "max_iter": 100, "display": 0, "random_seed": 7}
    if tmp_path is not None:
        settings["snapshot_prefix"] = str(tmp_path / "snap")
    return Solver(settings, quiet=True, log=False, progress=False, **options)


def _batches(n=4, device="cpu"):
    rng = np.random.default_rng(3)
    return [{"data": torch.tensor(rng.standard_normal((6, 2, 8, 8)), dtype=torch.float32, device=device),
             "label": torch.tensor(rng.integers(0, 3, 6), dtype=torch.float32, device=device)} for _ in range(n)]


def _train(solver, batches):
    losses = []
    for feed in batches:
        solver.step(1, **feed)
        losses.append(solver.losses.window[-1])
    return losses, [p.detach().cpu().clone() for p in solver.net.parameters()]


def test_channels_last_trains_the_same_trajectory(tmp_path):
    batches = _batches()
    plain_losses, plain_params = _train(_solver(), batches)
    solver = _solver(tmp_path, channels_last=True)
    assert solver.net.channels_last and solver.net.params["conv"][0].is_contiguous(memory_format=torch.channels_last)
    losses, params = _train(solver, batches)
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-5)
    for a, b in zip(params, plain_params):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # snapshots keep Caffe's layout; a resumed channels_last solver continues the same run
    state = solver.snapshot()
    assert len(read_solverstate(state).history) == len(solver.updater.history_blobs())
    resumed = _solver(tmp_path, channels_last=True, snapshot=state)
    assert resumed.iter == solver.iter
    for a, b in zip(resumed.net.parameters(), solver.net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    more = _batches(2)
    assert _train(resumed, more)[0] == _train(solver, more)[0]


def test_amp_needs_cuda():
    with pytest.raises(SpecError, match="needs a CUDA device"):
        _solver(amp=True)
    with pytest.raises(SpecError, match="unknown amp type"):
        _solver(amp="int8")
    solver = _solver(amp=False)
    assert solver.amp is None and solver._scaler is None


@pytest.mark.slow
def test_compile_trains_the_same_trajectory():
    batches = _batches(3)
    plain_losses, plain_params = _train(_solver(), batches)
    solver = _solver(compile=True)
    losses, params = _train(solver, batches)
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-5)
    for a, b in zip(params, plain_params):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert set(solver.net.blobs) >= {"data", "conv", "pool", "ip", "loss"}  # blobs are kept as in eager


NET = """name: "cli_net"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 8 dim: 2 dim: 6 dim: 6 } shape { dim: 8 }
                     data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""

SOLVER = """net: "net.prototxt"
base_lr: 0.01
lr_policy: "fixed"
max_iter: 4
display: 2
snapshot_prefix: "out/cli"
random_seed: 1
solver_mode: CPU
"""


def _python(code: str, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tune_malloc_applies_in_its_own_process(tmp_path):
    # (a subprocess: the settings last for the whole process)
    done = _python("from caffe_like.solver.malloc import tune_malloc; print(tune_malloc())")
    assert done.returncode == 0 and done.stdout.strip() in ("True", "False"), done.stderr
    if done.stdout.strip() == "False":
        pytest.skip("no glibc mallopt in this C library")
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER)
    done = _python("import sys; from caffe_like.cli import main; "
                   "sys.exit(main(['train', '--solver', 'solver.prototxt', '--no-progress']))",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Optimization Done." in done.stdout


@pytest.mark.parametrize("flags, tuned", [([], True), (["--malloc", "tuned"], True), (["--malloc", "default"], False)])
def test_train_tunes_malloc_unless_told_not_to(tmp_path, monkeypatch, flags, tuned):
    from caffe_like.solver import malloc

    calls = []
    monkeypatch.setattr(malloc, "tune_malloc", lambda: calls.append(1) or True)
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER)
    assert main(["train", "--solver", str(tmp_path / "solver.prototxt"), "--no-progress", *flags]) == 0
    assert calls == ([1] if tuned else [])


def test_cli_speed_flags(tmp_path, capsys):
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER)
    solver = str(tmp_path / "solver.prototxt")
    assert main(["train", "--solver", solver, "--channels-last", "--no-progress"]) == 0
    assert "Optimization Done." in capsys.readouterr().out
    assert (tmp_path / "out" / "cli_iter_4.caffemodel").is_file()
    assert main(["train", "--solver", solver, "--amp", "--device", "cpu", "--no-progress"]) == 2
    assert "needs a CUDA device" in capsys.readouterr().err


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("amp", ["float16", "bfloat16"])
def test_amp_on_cuda_trains_close_to_float32(tmp_path, amp):
    batches = _batches(6, device="cuda")
    plain_losses, _ = _train(_solver(device="cuda"), batches)
    solver = _solver(tmp_path, device="cuda", amp=amp)
    assert solver.amp == getattr(torch, amp) and (solver._scaler is not None) == (amp == "float16")
    losses, params = _train(solver, batches)
    assert all(np.isfinite(losses))
    np.testing.assert_allclose(losses, plain_losses, rtol=0.05, atol=0.02)
    assert all(p.dtype == torch.float32 for p in solver.net.parameters())  # the update stays float32
    state = solver.snapshot()
    resumed = _solver(tmp_path, device="cuda", amp=amp, snapshot=state)
    if amp == "float16":
        assert resumed._scaler.get_scale() == solver._scaler.get_scale()
    more = _batches(2, device="cuda")  # (cuDNN may pick non-deterministic kernels: close, not equal)
    np.testing.assert_allclose(_train(resumed, more)[0], _train(solver, more)[0], rtol=1e-4)


@pytest.mark.gpu
@needs_cuda
def test_channels_last_and_fusion_on_cuda():
    batches = _batches(3, device="cuda")
    plain_losses, plain_params = _train(_solver(device="cuda"), batches)
    losses, params = _train(_solver(device="cuda", channels_last=True), batches)
    np.testing.assert_allclose(losses, plain_losses, rtol=5e-3)  # (cuDNN convolutions may use TF32)
    cpu_losses, _ = _train(_solver(), _batches(3))
    np.testing.assert_allclose(losses, cpu_losses, rtol=5e-3)

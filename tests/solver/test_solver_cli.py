"""``caffe-like train``, ``test`` and ``plot`` end to end, in subprocesses (exit codes, files, output).

The net reads DummyData (gaussian features, every label 1), so it needs no dataset: training drives the
accuracy of its 3-way classifier to 1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from caffe_like.cli import main
from caffe_like.layers.registry import LAYERS

REPO = Path(__file__).resolve().parents[2]
NEEDED = ("DummyData", "InnerProduct", "SoftmaxWithLoss", "Accuracy")
pytestmark = pytest.mark.skipif(not set(NEEDED) <= set(LAYERS),
                                reason=f"layer types not registered yet: {sorted(set(NEEDED) - set(LAYERS))}")

NET = """name: "cli_net"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 8 dim: 4 } shape { dim: 8 }
                     data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy" include { phase: TEST } }
"""

SOLVER = """net: "net.prototxt"
base_lr: {lr}
momentum: 0.9
lr_policy: "step"
gamma: 0.5
stepsize: 10
max_iter: 20
display: 5
test_iter: 2
test_interval: 10
snapshot: 10
snapshot_prefix: "out/cli"
random_seed: 1
solver_mode: CPU
"""


def caffe_like(*args, cwd, check_rc=None):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-m", "caffe_like.cli", *map(str, args)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    if check_rc is not None:
        assert result.returncode == check_rc, result.stdout + result.stderr
    return result


@pytest.fixture
def project(tmp_path):
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER.replace("{lr}", "0.1"))
    return tmp_path


def test_train_resume_test_and_plot(project):
    out = project / "out"
    result = caffe_like("train", "--solver", "solver.prototxt", cwd=project, check_rc=0)
    assert "Optimization Done." in result.stdout
    assert "Iteration 10, Testing net (#0)" in result.stdout
    assert "    Test net output #0: accuracy = 1" in result.stdout
    assert "Iteration 15, lr = 0.05" in result.stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == ["cli_iter_10.caffemodel", "cli_iter_10.solverstate", "cli_iter_20.caffemodel",
                     "cli_iter_20.solverstate", "cli_log.csv"]
    final = (out / "cli_iter_20.caffemodel").read_bytes()

    # resuming at 10 continues the same trajectory: the same weights at 20, to the byte
    caffe_like("train", "--solver", "solver.prototxt", "--snapshot", "out/cli_iter_10.solverstate",
               cwd=project, check_rc=0)
    assert (out / "cli_iter_20.caffemodel").read_bytes() == final

    result = caffe_like("test", "--model", "net.prototxt", "--weights", "out/cli_iter_20.caffemodel",
                        "--iterations", "3", cwd=project, check_rc=0)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Loss: ")
    assert lines[1] == "accuracy = 1"
    assert lines[2].startswith("loss = ") and "(* 1 = " in lines[2]

    result = caffe_like("plot", "out/cli_log.csv", "-o", "curves.png", cwd=project, check_rc=0)
    assert (project / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_finetune_and_max_iter(project, monkeypatch, capsys):
    monkeypatch.chdir(project)  # in-process, to save a start-up
    assert main(["train", "--solver", "solver.prototxt", "--max-iter", "10", "--no-progress"]) == 0
    assert not (project / "out" / "cli_iter_20.caffemodel").exists()
    assert main(["train", "--solver", "solver.prototxt", "--weights", "out/cli_iter_10.caffemodel",
                 "--max-iter", "5", "--log", "finetune.csv"]) == 0
    assert "Finetuning from out/cli_iter_10.caffemodel" in capsys.readouterr().out
    assert (project / "out" / "cli_iter_5.solverstate").exists() and (project / "finetune.csv").exists()


def test_bad_input_exit_codes(project, monkeypatch, capsys):
    """In-process (``cli.main``): errors are one message without a traceback, exit status 2."""
    monkeypatch.chdir(project)
    assert main(["train", "--solver", "missing.prototxt"]) == 2
    err = capsys.readouterr().err
    assert "missing.prototxt" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:  # argparse: mutually exclusive options
        main(["train", "--solver", "solver.prototxt", "--weights", "a.caffemodel", "--snapshot", "b.solverstate"])
    assert exit_info.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert main(["train", "--solver", "solver.prototxt", "--snapshot", "none.solverstate"]) == 2
    err = capsys.readouterr().err
    assert "none.solverstate" in err and "not found" in err
    assert main(["test", "--model", "net.prototxt", "--weights", "none.caffemodel"]) == 2
    assert "none.caffemodel" in capsys.readouterr().err
    (project / "log.csv").write_text("a,b\n1,2\n")
    assert main(["plot", "log.csv", "-o", "x.png"]) == 2
    assert "not a caffe_like training log" in capsys.readouterr().err


def test_nan_loss_exit_code(project):
    regression = NET.replace("dim: 8 }", "dim: 8 dim: 1 }").replace('value: 1 }', 'value: 3 }')
    regression = regression.replace("num_output: 3", "num_output: 1").replace('"SoftmaxWithLoss"', '"EuclideanLoss"')
    (project / "net.prototxt").write_text(regression.split('layer { name: "accuracy"')[0])
    (project / "solver.prototxt").write_text(SOLVER.replace("{lr}", "1e30"))
    result = caffe_like("train", "--solver", "solver.prototxt", cwd=project, check_rc=1)
    assert "loss is" in result.stderr and "at iteration" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_snapshots_then_stops(project):
    solver = SOLVER.replace("{lr}", "0.01").replace("max_iter: 20", "max_iter: 1000000").replace("display: 5",
                                                                                                   "display: 1")
    (project / "solver.prototxt").write_text(solver)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-m", "caffe_like.cli", "train", "--solver", "solver.prototxt"],
                               cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.startswith("Iteration 25,"):
                process.send_signal(signal.SIGINT)
                break
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Optimization stopped early." in out
    states = sorted((project / "out").glob("*.solverstate"))
    stopped = max(int(p.stem.rsplit("_", 1)[1]) for p in states)
    assert stopped >= 26  # the iteration it stopped at was snapshotted on the way out
    assert f"cli_iter_{stopped}.solverstate" in out.split("Optimization stopped early.")[0].splitlines()[-1]

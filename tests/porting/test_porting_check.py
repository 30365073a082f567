"""``caffe-like check``: the portability report on the project's corpus, on the L-Softmax fork's folder and on
a generated fork-style project with every kind of problem (it must never crash, and say where)."""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import caffe_like
from caffe_like.cli import main
from caffe_like.porting import check_paths
from caffe_like.weights import write_blobproto

from conftest import EXAMPLES, HERE, REPO

CORPUS = REPO / "tests" / "corpus"


def _check(capsys, *args) -> tuple[int, dict]:
    code = main(["check", *map(str, args), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _file(report: dict, name: str) -> dict:
    matches = [f for f in report["files"] if f["path"].endswith(name)]
    assert len(matches) == 1, [f["path"] for f in report["files"]]
    return matches[0]


def _messages(item: dict, status: str | None = None) -> list[str]:
    return [f["message"] for f in item["findings"] if status is None or f["status"] == status]


def test_corpus_is_portable(capsys):
    code, report = _check(capsys, CORPUS)
    assert code == 0 and report["portable"]
    kinds = report["summary"]["kinds"]
    assert kinds["net"] == 8 and kinds["solver"] == 5
    lenet = _file(report, "lenet_train_test.prototxt")
    assert [(r["name"], r["type"], r["line"]) for r in lenet["layers"][:3]] == [
        ("mnist", "Data", 3), ("mnist", "Data", 20), ("conv1", "Convolution", 37)]
    assert all(r["status"] == "ok" for r in lenet["layers"])
    # the LMDB data is not here: a warning, not a portability problem
    assert any("data not found here" in m for m in _messages(lenet, "warning"))
    v1 = _file(report, "lenet_v1_deploy.prototxt")
    assert any("legacy format upgraded" in m for m in _messages(v1, "ok"))
    assert v1["details"]["builds"]["TEST"].startswith("9 layers")
    cifar_solver = _file(report, "cifar10_quick_solver.prototxt")
    assert any("snapshot_format HDF5" in m for m in _messages(cifar_solver, "partial"))
    nesterov = _file(report, "lenet_v1_solver.prototxt")
    assert any("type Nesterov" in m for m in _messages(nesterov, "ok"))


def test_text_report_and_summary_line(capsys):
    assert main(["check", str(CORPUS / "lenet_train_test.prototxt"), str(CORPUS / "lenet_solver.prototxt")]) == 0
    out = capsys.readouterr().out
    assert "lenet_train_test.prototxt: net 'LeNet' (11 layers) -- portable" in out
    assert "     37  conv1     Convolution      ok" in out
    assert out.strip().splitlines()[-1].startswith("summary: 2 files (1 net, 1 solver); 2 portable, 0 not portable")


def test_the_fork_folder_is_not_portable(capsys):
    code, report = _check(capsys, EXAMPLES / "fork")
    assert code == 1 and not report["portable"]
    net = _file(report, "fork/mnist_train_test.prototxt")
    bn_rows = [r for r in net["layers"] if r["type"] == "BN"]
    assert len(bn_rows) == 11 and all(r["status"] == "unsupported" for r in bn_rows)
    assert bn_rows[0]["name"] == "pre_bn" and "BatchNorm + Scale" in bn_rows[0]["note"]
    blocks = [f for f in net["findings"] if f["what"] == "param_block"]
    assert len(blocks) == 11 and blocks[0]["line"] and "bn_param" in blocks[0]["message"]
    assert [r["status"] for r in net["layers"] if r["type"] == "LargeMarginInnerProduct"] == ["ok", "ok"]
    assert report["summary"]["unsupported_layer_types"] == ["BN"]
    solver = _file(report, "fork/mnist_solver.prototxt")
    assert solver["portable"]
    assert any("is not found" in m and "fork/mnist_train_test.prototxt" in m for m in _messages(solver, "warning"))


def test_the_fork_net_with_its_plugin_is_portable(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["--plugin", "fork_bn", "check", str(EXAMPLES / "lsoftmax_mnist_bn.prototxt"),
                     str(EXAMPLES / "solver_bn.prototxt"), "--no-build", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    net = _file(report, "lsoftmax_mnist_bn.prototxt")
    assert {r["note"] for r in net["layers"] if r["type"] == "BN"} == {"plugin layer fork_bn.BN"}


def test_the_batchnorm_rewrite_is_portable(capsys):
    code, report = _check(capsys, EXAMPLES / "lsoftmax_mnist_batchnorm.prototxt", EXAMPLES / "solver_batchnorm.prototxt",
                          "--no-build")
    assert code == 0, report


# -- a generated fork-style project with every kind of problem --------------------------------------------


FORK_NET = textwrap.dedent('''\
    name: "ForkDetect"
    layer { name: "data" type: "Data" top: "data" top: "label"
      data_param { source: "train_leveldb" batch_size: 4 } }
    layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
      convolution_param { num_output: 4 kernel_size: 3 engine: CUDNN weight_filler { type: "xavier" } } }
    layer { name: "relu6" type: "ReLU6" bottom: "conv1" top: "conv1" }
    layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
      pooling_param { pool: MAX kernel_size: 2 stride: 2 ceil_mode: false } }
    layer { name: "norm" type: "Normalize" bottom: "pool1" top: "norm" norm_param { across_spatial: false } }
    layer { name: "py" type: "Python" bottom: "norm" top: "py"
      python_param { module: "beside_layers" layer: "Missing" } }
    ''')

GOOD_NET = textwrap.dedent('''\
    name: "Small"
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
    layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
      convolution_param { num_output: 4 kernel_size: 3 engine: CAFFE weight_filler { type: "xavier" } } }
    layer { name: "ip1" type: "InnerProduct" bottom: "conv1" top: "ip1" inner_product_param { num_output: 5 } }
    layer { name: "py" type: "Python" bottom: "ip1" top: "py2"
      python_param { module: "beside_layers" layer: "Double" } }
    ''')

FORK_SOLVER = textwrap.dedent('''\
    net: "fork_net.prototxt"
    base_lr: 0.01
    lr_policy: "multistep"
    stepvalue: 100
    solver_type: NESTEROV
    momentum: 0.9
    snapshot_format: HDF5
    eval_type: "detection"
    debug_info: true
    ''')

BESIDE = textwrap.dedent('''\
    import caffe

    class Double(caffe.Layer):
        def setup(self, bottom, top):
            pass
        def reshape(self, bottom, top):
            top[0].reshape(*bottom[0].shape)
        def forward(self, bottom, top):
            top[0].data[...] = 2 * bottom[0].data
    ''')


@pytest.fixture
def fork_project(tmp_path) -> Path:
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "models" / "fork_net.prototxt").write_text(FORK_NET)
    (root / "models" / "small.prototxt").write_text(GOOD_NET)
    (root / "models" / "beside_layers.py").write_text(BESIDE)
    (root / "models" / "solver.prototxt").write_text(FORK_SOLVER)
    (root / "models" / "broken.prototxt").write_text('layer { name: "x" type: "ReLU" \n  bottom: [oops\n')
    (root / "models" / "binary.prototxt").write_bytes(b"\x00\xff\xfe\x01" * 10)
    (root / "README.md").write_text("# a Caffe project\n")
    (root / "config.yaml").write_text("just: some settings\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = caffe_like.Net(root / "models" / "small.prototxt", seed=0)
    small.save_weights(root / "small.caffemodel")
    other = caffe_like.Net({"name": "Other", "layer": [
        {"name": "data", "type": "Input", "top": "data", "input_param": {"shape": {"dim": [2, 3, 8, 8]}}},
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "convolution_param": {"num_output": 7, "kernel_size": 3}}]})
    other.save_weights(root / "other.caffemodel")
    (root / "empty.caffemodel").write_bytes(b"")
    (root / "junk.caffemodel").write_bytes(b"not a protobuf at all \xff\xff\xff\xff" * 3)
    (root / "snap_iter_100.caffemodel.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    write_blobproto(root / "mean.binaryproto", np.zeros((1, 3, 8, 8), np.float32))
    (root / ".git").mkdir()
    (root / ".git" / "ignored.prototxt").write_text("garbage {")
    return root


def test_fork_style_project(fork_project, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(fork_project / "models"))
    code, report = _check(capsys, fork_project)
    assert code == 1 and not report["portable"]
    net = _file(report, "fork_net.prototxt")
    rows = {r["name"]: r for r in net["layers"]}
    assert rows["relu6"]["status"] == "unsupported" and "Clip" in rows["relu6"]["note"]
    assert rows["norm"]["status"] == "unsupported"
    messages = _messages(net)
    assert any("convolution_param.engine" in m and "ignored" in m for m in messages)
    assert any("unknown field 'ceil_mode' in pooling_param" in m and "round_mode" in m for m in messages)
    assert any("unknown parameter block 'norm_param'" in m for m in messages)
    assert any("default LEVELDB" in m for m in _messages(net, "unsupported"))
    assert any("class 'Missing' is not defined" in m and "beside_layers.py" in m for m in messages)
    ceil = [f for f in net["findings"] if "ceil_mode" in f["message"]][0]
    assert ceil["line"] == 8 and ceil["name"] == "pool1"

    small = _file(report, "small.prototxt")
    assert small["portable"], small
    assert any("beside_layers.Double" in m for m in _messages(small, "ok"))
    assert small["details"]["builds"] == {"TRAIN": "4 layers, 837 parameters", "TEST": "4 layers, 837 parameters"}

    solver = _file(report, "solver.prototxt")
    assert any("unknown solver field 'eval_type'" in m for m in _messages(solver, "unsupported"))
    assert any("solver_type NESTEROV" in m for m in _messages(solver))
    assert any("debug_info" in m for m in _messages(solver, "ignored"))

    weights = _file(report, "small.caffemodel")
    assert weights["portable"]
    assert any(m.startswith("loads into") and "small.prototxt: 2 of 2 layers" in m for m in _messages(weights, "ok"))
    other = _file(report, "other.caffemodel")
    assert not other["portable"]
    assert any("does not load into" in m and "shape mismatch" in m for m in _messages(other, "unsupported"))

    assert not _file(report, "empty.caffemodel")["portable"]
    assert any("unreadable" in m for m in _messages(_file(report, "junk.caffemodel"), "error"))
    assert any("HDF5 snapshot" in m for m in _messages(_file(report, "snap_iter_100.caffemodel.h5"), "unsupported"))
    assert _file(report, "mean.binaryproto")["title"].startswith("blob [1, 3, 8, 8]")
    broken = _file(report, "broken.prototxt")
    assert broken["kind"] == "unknown" and any("cannot be parsed" in m for m in _messages(broken, "error"))
    skipped = [Path(p).name for p in report["skipped"]]
    assert "README.md" in skipped and "config.yaml" in skipped and "binary.prototxt" in skipped
    assert not any(".git" in f["path"] for f in report["files"])


def test_explicitly_named_odd_files_are_reported(fork_project, capsys):
    code, report = _check(capsys, fork_project / "README.md", fork_project / "models" / "binary.prototxt")
    assert code == 1
    assert any("neither a Caffe net" in m for m in _messages(_file(report, "README.md"), "error"))
    assert any("not a text file" in m for m in _messages(_file(report, "binary.prototxt"), "error"))


def test_missing_data_and_input_shape(tmp_path, capsys):
    net = tmp_path / "net.prototxt"
    net.write_text(textwrap.dedent('''\
        name: "NeedsData"
        layer { name: "data" type: "Data" top: "data" top: "label"
          data_param { source: "nowhere_lmdb" backend: LMDB batch_size: 2 } }
        layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
        '''))
    caffe_like.Net({"name": "w", "layer": [
        {"name": "data", "type": "Input", "top": "data", "input_param": {"shape": {"dim": [2, 1, 4, 4]}}},
        {"name": "ip", "type": "InnerProduct", "bottom": "data", "top": "ip",
         "inner_product_param": {"num_output": 3}}]}).save_weights(tmp_path / "w.caffemodel")
    code, report = _check(capsys, tmp_path)
    assert code == 0  # nothing unsupported; the weights cannot be matched without the data's shape
    assert any("--input-shape" in m for m in _messages(_file(report, "net.prototxt"), "warning"))
    assert any("no net of the scan builds" in m for m in _messages(_file(report, "w.caffemodel"), "warning"))
    code, report = _check(capsys, tmp_path, "--input-shape", "1,4,4")
    assert code == 0
    assert any("loads into" in m for m in _messages(_file(report, "w.caffemodel"), "ok"))


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "does_not_exist")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "empty")]) == 2
    assert "no Caffe nets" in capsys.readouterr().err


def test_library_api_never_raises_on_weird_files(tmp_path):
    for i, payload in enumerate([b"", b"\x00" * 100, b"layer { type: \"ReLU\" }", b"name: \"x\"",
                                 b"layer {{{{", b"layers { type: NO_SUCH_V1_TYPE }",
                                 b"net: 3\nbase_lr: \"high\"\n"]):
        (tmp_path / f"weird{i}.prototxt").write_bytes(payload)
        (tmp_path / f"weird{i}.caffemodel").write_bytes(payload)
        (tmp_path / f"weird{i}.solverstate").write_bytes(payload)
        (tmp_path / f"weird{i}.binaryproto").write_bytes(payload)
    report = check_paths([tmp_path])
    assert report.files and not report.portable
    json.dumps(report.to_dict())


def test_python_layer_files_of_this_folder_are_found(tmp_path, capsys):
    net = tmp_path / "net.prototxt"
    net.write_text('layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }\n'
                   'layer { name: "m" type: "Python" bottom: "x" top: "y" python_param { module: "pymult" '
                   'layer: "MultiplyLayer" param_str: "{factor: 2}" } }\n')
    code, report = _check(capsys, net, "--no-build")
    assert code == 0
    assert any(str(HERE / "pymult.py") in m for m in _messages(_file(report, "net.prototxt"), "ok"))

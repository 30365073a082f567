"""Caffe Python layers (``type: "Python"``) run unmodified: the caffe stand-in, the blob API, autograd,
learnable blobs through the solver and .caffemodel files, and every bad input reported clearly.

The layers are Caffe-style modules in this folder (pyloss.py, pyscale.py, pymult.py, pydata.py, pybad.py,
pybroken.py); nets are written as prototxt files into a temporary folder.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like import pycaffe_compat
from caffe_like.cli import main
from caffe_like.errors import CaffeLikeError, ExportError
from caffe_like.layers.python_layer import PythonLayerError
from caffe_like.weights import read_caffemodel, read_solverstate

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _layers_on_path(monkeypatch):
    """This folder on sys.path (as a pycaffe user's PYTHONPATH), sys.path restored afterwards."""
    monkeypatch.setattr(sys, "path", [str(HERE), *sys.path])


def _input(name: str, shape) -> str:
    dims = " ".join(f"dim: {d}" for d in shape)
    return f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param {{ shape {{ {dims} }} }} }}\n'


def _python(name, bottoms, tops, module, cls, param_str=None, extra=""):
    lines = [f'layer {{ name: "{name}" type: "Python"']
    lines += [f'  bottom: "{b}"' for b in bottoms]
    lines += [f'  top: "{t}"' for t in tops]
    ps = f" param_str: '{param_str}'" if param_str is not None else ""
    lines.append(f'  python_param {{ module: "{module}" layer: "{cls}"{ps} }}')
    if extra:
        lines.append("  " + extra)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, text: str, name: str = "net.prototxt") -> Path:
    path = tmp_path / name
    path.write_text(f'name: "pynet"\n{text}')
    return path


def _line(text: str, file: str = "pybad.py") -> int:
    """The line number of ``text`` in one of this folder's layer files."""
    lines = (HERE / file).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _bad_net(tmp_path, cls, module="pybad", shape=(2, 3, 4)):
    return _write(tmp_path, _input("x", shape) + _python("bad", ["x"], ["y"], module, cls))


# -- the caffe stand-in --------------------------------------------------------------------------------


def test_compat_module_is_installed_as_caffe():
    pycaffe_compat.install()
    import caffe

    assert caffe.TRAIN == 0 and caffe.TEST == 1
    assert issubclass(caffe.Layer, object) and caffe.Layer is pycaffe_compat.Layer
    caffe.set_mode_cpu()
    caffe.set_mode_gpu()
    caffe.set_device(0)
    from caffe.proto import caffe_pb2

    blob = caffe.io.array_to_blobproto(np.arange(6.0).reshape(1, 2, 3))
    again = caffe_pb2.BlobProto.FromString(blob.SerializeToString())
    np.testing.assert_array_equal(caffe.io.blobproto_to_array(again), np.arange(6.0).reshape(1, 2, 3))
    datum = caffe.io.array_to_datum(np.arange(12, dtype=np.uint8).reshape(3, 2, 2), label=4)
    np.testing.assert_array_equal(caffe.io.datum_to_array(datum), np.arange(12).reshape(3, 2, 2))
    assert caffe_pb2.TRAIN == 0
    with pytest.raises(CaffeLikeError, match="caffe_like.Net"):
        caffe.Net("x.prototxt", caffe.TEST)


def _is_caffe_module(name: str) -> bool:
    return name == "caffe" or name.startswith("caffe.")


@contextlib.contextmanager
def _pycaffe_on_path(tmp_path, monkeypatch, init_source: str):
    """A ``caffe`` package with ``init_source`` as its __init__.py first on sys.path, and no caffe module
    imported; afterwards sys.modules holds the caffe modules it held before, and only those."""
    fake = tmp_path / "site" / "caffe"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(init_source)
    saved = {k: v for k, v in sys.modules.items() if _is_caffe_module(k)}
    for key in saved:
        monkeypatch.delitem(sys.modules, key)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    try:
        yield
    finally:
        for key in [k for k in sys.modules if _is_caffe_module(k)]:
            del sys.modules[key]
        sys.modules.update(saved)


def test_a_real_pycaffe_is_never_shadowed(tmp_path, monkeypatch):
    monkeypatch.delenv("CAFFE_LIKE_PYCAFFE", raising=False)
    with _pycaffe_on_path(tmp_path, monkeypatch, "REAL = True\nclass Layer:\n    pass\n"):
        module = pycaffe_compat.install()
        assert getattr(module, "REAL", False) and sys.modules["caffe"] is module
        assert not pycaffe_compat.is_installed()
        forced = pycaffe_compat.install(force=True)  # CAFFE_LIKE_PYCAFFE=compat
        assert forced is pycaffe_compat and pycaffe_compat.is_installed()


def test_a_broken_pycaffe_counts_as_absent(tmp_path, monkeypatch):
    with _pycaffe_on_path(tmp_path, monkeypatch,
                          "raise ImportError('libcaffe.so: cannot open shared object file')\n"):
        assert pycaffe_compat.install() is pycaffe_compat


def test_blob_api():
    blob = pycaffe_compat.Blob()
    assert blob.shape == () and blob.count == 0
    blob.reshape(2, 3, 4, 5)
    assert blob.shape == (2, 3, 4, 5) and blob.count == 120
    assert (blob.num, blob.channels, blob.height, blob.width) == (2, 3, 4, 5)
    assert blob.data.flags.writeable and blob.data.dtype == np.float32 and not blob.data.any()
    blob.data[...] = np.arange(120).reshape(2, 3, 4, 5)
    blob.diff[...] = 1
    blob.reshape((6, 20))  # same count: Caffe keeps the memory, the values are read in the new shape
    assert blob.shape == (6, 20) and blob.data[1, 0] == 20 and (blob.num, blob.channels, blob.height) == (6, 20, 1)
    blob.reshape(7, 20)  # more memory: new, zero-filled
    assert not blob.data.any() and not blob.diff.any()
    blob.data = 3.0  # caffe_like lets an assignment copy the values in
    assert (blob.data == 3).all()
    with pytest.raises(ValueError, match="at most 4 axes"):
        _ = pycaffe_compat.Blob((1, 2, 3, 4, 5)).num
    with pytest.raises(TypeError):
        blob.reshape(2.5)
    with pytest.raises(ValueError):
        blob.reshape(-1, 2)
    vec = pycaffe_compat.BlobVec(np.float64)
    vec.add_blob(3, 2)
    assert len(vec) == 1 and vec[0].shape == (3, 2) and vec[0].data.dtype == np.float64


# -- running layers ------------------------------------------------------------------------------------


def test_param_str_phase_and_module_beside_the_net(tmp_path):
    """The module is found in the net file's folder (not on sys.path); param_str and phase are set."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "beside_net_layers.py").write_text(
        "import caffe\n\nclass Probe(caffe.Layer):\n"
        "    def setup(self, bottom, top):\n        self.seen = (self.param_str, self.phase)\n"
        "    def reshape(self, bottom, top):\n        top[0].reshape(*bottom[0].shape)\n"
        "    def forward(self, bottom, top):\n"
        "        top[0].data[...] = bottom[0].data + 10 * self.phase + len(self.param_str)\n")
    net_file = _write(folder, _input("x", (2, 3)) + _python("probe", ["x"], ["y"], "beside_net_layers", "Probe", "abc"))
    assert str(folder) not in sys.path
    for phase, code in (("TRAIN", 0), ("TEST", 1)):
        net = caffe_like.Net(net_file, phase=phase)
        layer = net.layer_dict()["probe"]
        assert layer.user.seen == ("abc", code)
        out = net(x=torch.zeros(2, 3))["y"]
        assert torch.equal(out, torch.full((2, 3), 10.0 * code + 3))
    sys.modules.pop("beside_net_layers", None)


def test_reshape_then_forward_every_batch_and_shapes_without_data(tmp_path):
    net_file = _write(tmp_path, _input("x", (4, 3, 2, 5)) + _python("m", ["x"], ["y"], "pymult", "MultiplyLayer",
                                                                     '{"factor": 2}'))
    net = caffe_like.Net(net_file)
    assert net.blob_shapes["y"] == (4, 3, 2, 5)  # from reshape() at setup, no data read
    for batch in (4, 1, 9):  # the batch axis may change between forwards, as in Caffe
        x = torch.randn(batch, 3, 2, 5)
        assert torch.allclose(net(x=x)["y"], 2 * x)


def test_python_data_layer_trains(tmp_path):
    """A Python data layer (no bottoms) feeding caffe_like layers, trained by the Solver."""
    net = (_python("data", [], ["data", "label"], "pydata", "ChannelDataLayer",
                   '{"batch_size": 32, "channels": 3, "size": 4, "seed": 1}')
           + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
             'inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }\n'
           + 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }\n'
           + 'layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" }\n')
    _write(tmp_path, net)
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\nmomentum: 0.9\nmax_iter: 60\n'
        'random_seed: 3\nsolver_mode: CPU\nsnapshot_after_train: false\n')
    solver = caffe_like.Solver(tmp_path / "solver.prototxt", log=False, quiet=True)
    solver.solve()
    with torch.no_grad():
        out = solver.net()
    assert float(out["acc"]) > 0.8 and float(out["loss"]) < 0.5


def test_learnable_blobs_are_trained_saved_and_loaded(tmp_path):
    true_scale = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    net = (_input("data", (8, 3, 2, 2)) + _input("target", (8, 3, 2, 2))
           + _python("scale", ["data"], ["scaled"], "pyscale", "ChannelScaleLayer", "init: 1.0")
           + _python("loss", ["scaled", "target"], ["loss"], "pyloss", "EuclideanLossLayer", extra="loss_weight: 1"))
    net_file = _write(tmp_path, net)
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.05\nlr_policy: "fixed"\nmax_iter: 150\ntest_iter: 1\ntest_interval: 100000\ntest_initialization: false\n'
        'snapshot_prefix: "snap/scale"\nrandom_seed: 1\nsolver_mode: CPU\n')
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 2, 2)).astype(np.float32)
    y = x * true_scale.reshape(1, 3, 1, 1)
    solver = caffe_like.Solver(tmp_path / "solver.prototxt", log=False, quiet=True)
    learned = solver.net.params["scale"][0]
    assert isinstance(learned, torch.nn.Parameter) and learned.requires_grad
    assert any(lp.param is learned for lp in solver.net.learnable_params())
    assert solver.test_nets[0].params["scale"][0] is learned  # the TEST instance shares the blob
    solver.solve(data=x, target=y)
    np.testing.assert_allclose(learned.detach().numpy(), true_scale, atol=1e-3)
    with torch.no_grad():  # (Solver.test() cannot average a [1]-shaped top yet: float() of a 1-D array)
        assert float(solver.test_nets[0](data=torch.from_numpy(x), target=torch.from_numpy(y))["loss"]) < 1e-5
    model = read_caffemodel(tmp_path / "snap" / "scale_iter_150.caffemodel")
    stored = {layer.name: layer for layer in model.layers}
    assert stored["scale"].type == "Python"
    np.testing.assert_array_equal(stored["scale"].blobs[0], learned.detach().numpy())
    fresh = caffe_like.Net(net_file, phase="TEST", weights=tmp_path / "snap" / "scale_iter_150.caffemodel")
    np.testing.assert_array_equal(fresh.params["scale"][0].detach().numpy(), learned.detach().numpy())
    out = fresh(data=torch.from_numpy(x), target=torch.from_numpy(y))
    assert float(out["loss"].detach()) < 1e-5


def test_lr_mult_zero_freezes_a_python_blob(tmp_path):
    net = (_input("data", (4, 3, 2, 2)) + _input("target", (4, 3, 2, 2))
           + _python("scale", ["data"], ["scaled"], "pyscale", "ChannelScaleLayer", "init: 1.0",
                     extra="param { lr_mult: 0 }")
           + _python("loss", ["scaled", "target"], ["loss"], "pyloss", "EuclideanLossLayer", extra="loss_weight: 1"))
    _write(tmp_path, net)
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\nmax_iter: 5\nsolver_mode: CPU\n'
        'snapshot_after_train: false\n')
    solver = caffe_like.Solver(tmp_path / "solver.prototxt", log=False, quiet=True)
    x = np.ones((4, 3, 2, 2), np.float32)
    solver.solve(data=x, target=2 * x)
    assert torch.equal(solver.net.params["scale"][0].detach(), torch.ones(3))


def test_forward_writes_to_blobs_are_kept(tmp_path):
    """A layer that keeps running statistics in self.blobs (as Caffe lets it) sees them kept."""
    (tmp_path / "running_mean_layer.py").write_text(
        "import caffe\n\nclass RunningMean(caffe.Layer):\n"
        "    def setup(self, bottom, top):\n        self.blobs.add_blob(1)\n"
        "    def reshape(self, bottom, top):\n        top[0].reshape(*bottom[0].shape)\n"
        "    def forward(self, bottom, top):\n"
        "        self.blobs[0].data[0] = 0.5 * self.blobs[0].data[0] + 0.5 * bottom[0].data.mean()\n"
        "        top[0].data[...] = bottom[0].data - self.blobs[0].data[0]\n")
    net_file = _write(tmp_path, _input("x", (2, 2)) + _python("rm", ["x"], ["y"], "running_mean_layer", "RunningMean",
                                                            extra="param { lr_mult: 0 }"))
    net = caffe_like.Net(net_file)
    for _ in range(3):
        net(x=torch.full((2, 2), 8.0))
    assert float(net.params["rm"][0]) == pytest.approx(7.0)
    sys.modules.pop("running_mean_layer", None)


# -- gradients -----------------------------------------------------------------------------------------


def _central_differences(fn, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(x)
    flat, out = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        keep = float(flat[i])
        flat[i] = keep + eps
        plus = float(fn())
        flat[i] = keep - eps
        minus = float(fn())
        flat[i] = keep
        out[i] = (plus - minus) / (2 * eps)
    return grad


def test_pyloss_gradient_by_finite_differences(tmp_path):
    net_file = _write(tmp_path, _input("a", (3, 2, 2)) + _input("b", (3, 2, 2))
                      + _python("loss", ["a", "b"], ["loss"], "pyloss", "EuclideanLossLayer", extra="loss_weight: 1"))
    net = caffe_like.Net(net_file, dtype=torch.float64, phase="TRAIN")
    a = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    net(a=a, b=b)
    net.loss.backward()
    with torch.no_grad():
        for leaf, grad in ((a, a.grad), (b, b.grad)):
            numeric = _central_differences(lambda: net(a=a, b=b)["loss"].sum(), leaf.detach())
            np.testing.assert_allclose(grad.numpy(), numeric.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(a.grad.numpy(), ((a - b) / 3).detach().numpy(), rtol=1e-12)


def test_pyloss_ignores_loss_weight_in_backward_as_in_caffe(tmp_path):
    """Caffe's pyloss never reads top[0].diff: loss_weight 2 doubles the loss but not the gradient, in
    Caffe as here (the layer's code decides, caffe_like hands it the diff Caffe would)."""
    net_file = _write(tmp_path, _input("a", (2, 2)) + _input("b", (2, 2))
                      + _python("loss", ["a", "b"], ["loss"], "pyloss", "EuclideanLossLayer", extra="loss_weight: 2"))
    net = caffe_like.Net(net_file, dtype=torch.float64, phase="TRAIN")
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, 2, dtype=torch.float64)
    net(a=a, b=b)
    assert float(net.loss.detach()) == pytest.approx(2 * 30 / 2 / 2)
    net.loss.backward()
    np.testing.assert_allclose(a.grad.numpy(), a.detach().numpy() / 2)


def test_gradcheck_float64_through_a_learnable_blob(tmp_path):
    net_file = _write(tmp_path, _input("x", (2, 3, 2)) + _python("s", ["x"], ["y"], "pyscale", "ChannelScaleLayer",
                                                                 "init: 0.5")
                      + _python("m", ["y"], ["z"], "pymult", "MultiplyLayer", "{factor: -2, bias: 0.5}"))
    net = caffe_like.Net(net_file, dtype=torch.float64, phase="TRAIN")
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    s = torch.tensor([0.5, 1.5, -2.0], dtype=torch.float64, requires_grad=True)

    def fn(x, s):
        return torch.func.functional_call(net, {"layers.1.blobs.0": s}, args=(), kwargs={"x": x})["z"]

    assert torch.autograd.gradcheck(fn, (x, s), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_iter_size_accumulates_python_blob_gradients(tmp_path):
    net_file = _write(tmp_path, _input("x", (2, 3)) + _python("s", ["x"], ["y"], "pyscale", "ChannelScaleLayer")
                      + 'layer { name: "sum" type: "Reduction" bottom: "y" top: "total" loss_weight: 1 }\n')
    net = caffe_like.Net(net_file, phase="TRAIN", dtype=torch.float64)
    x = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    for _ in range(2):  # two passes, as iter_size 2: the blob's gradient adds up
        net(x=x)
        net.loss.backward()
    np.testing.assert_allclose(net.params["s"][0].grad.numpy(), 2 * x.sum(0).numpy())


# -- bad input -----------------------------------------------------------------------------------------


def _error(tmp_path, cls, module="pybad", run=False, backward=False) -> str:
    net_file = _bad_net(tmp_path, cls, module)
    with pytest.raises(PythonLayerError) as caught:
        net = caffe_like.Net(net_file, phase="TRAIN")
        if run:
            x = torch.randn(2, 3, 4, requires_grad=backward)
            out = net(x=x)["y"]
            if backward:
                out.sum().backward()
    message = str(caught.value)
    assert "layer 'bad' (Python)" in message, message
    return message


def test_missing_module(tmp_path):
    message = _error(tmp_path, "Anything", module="no_such_layer_module")
    assert "module 'no_such_layer_module' not found" in message and str(tmp_path) in message
    assert "PYTHONPATH" in message and "net.prototxt:" in message


def test_module_that_fails_to_import(tmp_path):
    message = _error(tmp_path, "Layer", module="pybroken")
    assert "module 'pybroken' cannot be imported" in message
    assert "No module named 'this_package_does_not_exist_anywhere'" in message
    assert f"pybroken.py:{_line('import this_package', 'pybroken.py')}" in message  # the user's file and line


def test_module_with_a_syntax_error(tmp_path):
    (tmp_path / "syntax_error_layer.py").write_text("import caffe\n\nclass L(caffe.Layer)\n    pass\n")
    message = _error(tmp_path, "L", module="syntax_error_layer")
    assert "SyntaxError" in message and "syntax_error_layer.py:3" in message


def test_missing_class_suggests_one(tmp_path):
    message = _error(tmp_path, "SetupFail")
    assert "has no class 'SetupFail'" in message and "did you mean 'SetupFails'?" in message


def test_not_a_layer_class(tmp_path):
    assert "is not a caffe.Layer class" in _error(tmp_path, "NotALayer")


def test_exception_in_setup(tmp_path):
    message = _error(tmp_path, "SetupFails")
    assert "setup() of class 'SetupFails' of module 'pybad' raised ValueError: setup went wrong on purpose" in message
    assert f"pybad.py:{_line('setup went wrong')} in setup" in message and "net.prototxt:" in message


def test_exception_in_forward(tmp_path):
    message = _error(tmp_path, "ForwardFails", run=True)
    assert "forward() of class 'ForwardFails'" in message and "ZeroDivisionError" in message
    assert f"pybad.py:{_line('return 1 / 0')} in forward: return 1 / 0" in message


def test_exception_in_backward(tmp_path):
    message = _error(tmp_path, "BackwardFails", run=True, backward=True)
    assert "backward() of class 'BackwardFails'" in message and "backward went wrong on purpose" in message
    assert f"pybad.py:{_line('backward went wrong')} in backward" in message


def test_missing_backward(tmp_path):
    message = _error(tmp_path, "NoBackward", run=True, backward=True)
    assert "NotImplementedError" in message and "defines no backward" in message


def test_top_of_the_wrong_shape(tmp_path):
    message = _error(tmp_path, "WrongTopShape", run=True)
    assert "produced top 0 ('y') of shape [2, 7], but the net was built for [2, 3, 4]" in message


def test_top_without_a_shape(tmp_path):
    assert "reshape() gave top 0 ('y') no shape" in _error(tmp_path, "NoTopShape")


def test_writing_a_wrongly_shaped_array(tmp_path):
    message = _error(tmp_path, "BadAssign", run=True)
    assert "forward() of class 'BadAssign'" in message and "ValueError" in message and "broadcast" in message


def test_cli_reports_a_python_layer_error_without_traceback(tmp_path, capsys):
    net_file = _bad_net(tmp_path, "SetupFails")
    assert main(["summary", str(net_file)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "SetupFails" in err and f"pybad.py:{_line('setup went wrong')}" in err


def test_an_exception_mid_training_leaves_only_complete_snapshots(tmp_path, capsys):
    net = (_input("data", (4, 3)) + _input("target", (4, 3))
           + _python("scale", ["data"], ["scaled"], "pyscale", "ChannelScaleLayer")
           + _python("fail", ["scaled"], ["out"], "pybad", "FailAt", "fail_at: 6")
           + 'layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "target" top: "loss" }\n')
    _write(tmp_path, net)
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 10\nsnapshot: 2\n'
        'snapshot_prefix: "snap/run"\nsolver_mode: CPU\ndisplay: 1\n')
    solver = caffe_like.Solver(tmp_path / "solver.prototxt", quiet=True)
    x = np.ones((4, 3), np.float32)
    with pytest.raises(PythonLayerError, match="failing at forward 6 on purpose"):
        solver.solve(data=x, target=x)
    assert solver.iter == 5
    files = sorted(p.name for p in (tmp_path / "snap").iterdir())
    assert files == ["run_iter_2.caffemodel", "run_iter_2.solverstate", "run_iter_4.caffemodel",
                     "run_iter_4.solverstate", "run_log.csv"], files
    for it in (2, 4):
        assert read_solverstate(tmp_path / "snap" / f"run_iter_{it}.solverstate").iter == it
        assert [layer.name for layer in read_caffemodel(tmp_path / "snap" / f"run_iter_{it}.caffemodel").layers
                if layer.blobs] == ["scale"]
    # resuming from the last complete snapshot works
    resumed = caffe_like.Solver(tmp_path / "solver.prototxt", snapshot=tmp_path / "snap" / "run_iter_4.solverstate",
                                quiet=True, log=False)
    assert resumed.iter == 4


def test_cli_train_reports_the_failing_layer(tmp_path, capsys):
    net = (_python("data", [], ["data", "label"], "pydata", "ChannelDataLayer", '{"batch_size": 4}')
           + _python("fail", ["data"], ["out"], "pybad", "FailAt", "fail_at: 3")
           + 'layer { name: "ip" type: "InnerProduct" bottom: "out" top: "ip" inner_product_param { num_output: 3 } }\n'
           + 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }\n')
    _write(tmp_path, net)
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 10\nsnapshot: 1\n'
        'snapshot_prefix: "snap/cli"\nsolver_mode: CPU\n')
    code = main(["train", "--solver", str(tmp_path / "solver.prototxt"), "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "layer 'fail' (Python)" in err and "class 'FailAt' of module 'pybad'" in err and "pybad.py:" in err
    names = sorted(p.name for p in (tmp_path / "snap").iterdir() if not p.name.endswith(".csv"))
    assert names == ["cli_iter_1.caffemodel", "cli_iter_1.solverstate", "cli_iter_2.caffemodel",
                     "cli_iter_2.solverstate"]


def test_onnx_export_refuses_a_python_layer(tmp_path):
    net_file = _write(tmp_path, _input("x", (2, 3)) + _python("m", ["x"], ["y"], "pymult", "MultiplyLayer",
                                                            "{factor: 2}"))
    net = caffe_like.Net(net_file)
    with pytest.raises(ExportError) as caught:
        caffe_like.export_onnx(net, tmp_path / "m.onnx", derive=False, dynamic_batch=False, verify=False)
    message = str(caught.value)
    assert "layer 'm' (Python)" in message and "pymult.MultiplyLayer" in message and "register_layer" in message


def test_float32_nets_hand_float32_blobs(tmp_path):
    (tmp_path / "dtype_probe_layer.py").write_text(
        "import caffe\n\nclass Probe(caffe.Layer):\n"
        "    def setup(self, bottom, top):\n        self.blobs.add_blob(2)\n"
        "    def reshape(self, bottom, top):\n        top[0].reshape(*bottom[0].shape)\n"
        "    def forward(self, bottom, top):\n"
        "        assert bottom[0].data.dtype == self.blobs[0].data.dtype == top[0].data.dtype\n"
        "        self.dtype = str(bottom[0].data.dtype)\n        top[0].data[...] = bottom[0].data\n")
    net_file = _write(tmp_path, _input("x", (2, 2)) + _python("p", ["x"], ["y"], "dtype_probe_layer", "Probe"))
    for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
        net = caffe_like.Net(net_file, dtype=dtype)
        out = net(x=torch.ones(2, 2, dtype=dtype))["y"]
        assert out.dtype == dtype and net.layer_dict()["p"].user.dtype == name
    sys.modules.pop("dtype_probe_layer", None)


@pytest.mark.gpu
def test_python_layer_on_cuda(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    net_file = _write(tmp_path, _input("x", (2, 3, 2)) + _python("s", ["x"], ["y"], "pyscale", "ChannelScaleLayer",
                                                                 "init: 2"))
    net = caffe_like.Net(net_file, phase="TRAIN").to("cuda")
    x = torch.randn(2, 3, 2, device="cuda", requires_grad=True)
    out = net(x=x)["y"]
    assert out.device.type == "cuda" and torch.allclose(out, 2 * x)
    out.sum().backward()
    assert x.grad.device.type == "cuda" and torch.allclose(x.grad, torch.full_like(x, 2.0))
    assert net.params["s"][0].grad.device.type == "cuda"


def test_layer_files_are_plain_caffe_examples():
    """The example layers import caffe and nothing of caffe_like (they would run in real Caffe)."""
    for name in ("pyloss.py", "pyscale.py", "pymult.py", "pydata.py", "pybad.py"):
        text = (HERE / name).read_text()
        assert "import caffe\n" in text and "caffe_like" not in text, name

"""Round trips of a corpus of real-syntax Caffe files (tests/corpus): prototxt -> YAML -> prototxt gives
an equal definition, for nets (current and V1 syntax) and solvers, through the API and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from caffe_like.cli import main
from caffe_like.spec.net import NetSpec
from caffe_like.spec.schema import to_plain
from caffe_like.spec.solver import SolverSpec

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
NETS = sorted(p for p in CORPUS.glob("*.prototxt") if "solver" not in p.name)
SOLVERS = sorted(CORPUS.glob("*solver.prototxt"))


def test_corpus_is_there():
    assert len(NETS) >= 7 and len(SOLVERS) >= 4


@pytest.mark.parametrize("path", NETS, ids=lambda p: p.stem)
def test_net_round_trip(path, tmp_path):
    original = NetSpec.load(path)
    as_yaml = tmp_path / "net.yaml"
    original.save(as_yaml)
    from_yaml = NetSpec.load(as_yaml)
    assert to_plain(from_yaml.param) == to_plain(original.param)
    back = tmp_path / "net.prototxt"
    from_yaml.save(back)
    again = NetSpec.load(back)
    assert to_plain(again.param) == to_plain(original.param)
    assert again.to_prototxt() == original.to_prototxt()


@pytest.mark.parametrize("path", SOLVERS, ids=lambda p: p.stem)
def test_solver_round_trip(path, tmp_path):
    original = SolverSpec.load(path)
    as_yaml = tmp_path / "solver.yaml"
    original.save(as_yaml)
    from_yaml = SolverSpec.load(as_yaml)
    # paths were rebased so that they still name the corpus files from tmp_path
    assert from_yaml.resolve(from_yaml.param.net).resolve() == original.resolve(original.param.net).resolve()
    plain_a, plain_b = to_plain(original.param), to_plain(from_yaml.param)
    for key in ("net", "snapshot_prefix"):
        plain_a.pop(key, None)
        plain_b.pop(key, None)
    assert plain_a == plain_b


def test_v1_net_is_upgraded_losslessly(tmp_path):
    spec = NetSpec.load(CORPUS / "lenet_v1_deploy.prototxt")
    assert spec.notes, "the V1 upgrade must say what it changed"
    assert [layer.type for layer in spec.layers][:3] == ["Input", "Convolution", "Pooling"]
    conv2 = spec.layer("conv2")
    assert [(p.lr_mult, p.decay_mult) for p in conv2.param] == [(1.0, 1.0), (2.0, 0.0)]
    assert list(spec.layer("input").input_param.shape[0].dim) == [64, 1, 28, 28]
    text = spec.to_prototxt()
    assert "layers {" not in text and 'type: "Convolution"' in text


def test_v1_solver_type_is_upgraded():
    spec = SolverSpec.load(CORPUS / "lenet_v1_solver.prototxt")
    assert spec.param.type == "Nesterov"
    assert list(spec.param.stepvalue) == [5000, 7000]


def test_phases_filter_the_lenet_data_layers():
    spec = NetSpec.load(CORPUS / "lenet_train_test.prototxt")
    train = spec.filter("TRAIN")
    test = spec.filter("TEST")
    assert [layer.data_param.batch_size for layer in train.layers if layer.type == "Data"] == [64]
    assert [layer.data_param.batch_size for layer in test.layers if layer.type == "Data"] == [100]
    assert "accuracy" not in [layer.name for layer in train.layers]
    assert "accuracy" in [layer.name for layer in test.layers]


@pytest.mark.parametrize("path", NETS + SOLVERS, ids=lambda p: p.stem)
def test_cli_convert_both_ways(path, tmp_path, capsys):
    yaml_path = tmp_path / (path.stem + ".yaml")
    assert main(["convert", str(path), str(yaml_path)]) == 0
    proto_path = tmp_path / (path.stem + ".prototxt")
    assert main(["convert", str(yaml_path), str(proto_path)]) == 0
    loader = SolverSpec if "solver" in path.name else NetSpec
    kwargs = {"validate": False} if loader is SolverSpec else {}
    first, second = loader.load(path, **kwargs), loader.load(proto_path, **kwargs)
    a, b = to_plain(first.param), to_plain(second.param)
    for key in ("net", "snapshot_prefix"):
        a.pop(key, None)
        b.pop(key, None)
    assert a == b
    assert "wrote" in capsys.readouterr().out

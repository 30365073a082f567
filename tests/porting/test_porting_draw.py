"""``caffe-like draw``: the DOT source as Caffe's draw.py builds it (always), and rendering to PNG/SVG/PDF
when a graphviz renderer is installed (``dot``, or the graphviz-pure package)."""

from __future__ import annotations

import re

import pytest

from caffe_like.cli import main
from caffe_like.draw import DrawError, find_renderer, net_to_dot, render

from conftest import EXAMPLES, REPO

LENET = REPO / "tests" / "corpus" / "lenet_train_test.prototxt"


def _nodes(dot: str) -> dict[str, str]:
    """{label: attribute text} of every node."""
    nodes = {}
    for node_id, attributes in re.findall(r"^  (n\d+) \[(.*)\];$", dot, re.M):
        label = re.search(r'label="((?:[^"\\]|\\.)*)"', attributes).group(1)
        nodes[label] = (node_id, attributes)
    return nodes


def _edges(dot: str) -> list[tuple[str, str, str | None]]:
    return [(a, b, label or None) for a, b, label in re.findall(r"^  (n\d+) -> (n\d+)(?: \[label=\"(.*)\"\])?;$",
                                                               dot, re.M)]


def test_lenet_dot_as_draw_net():
    dot = net_to_dot(LENET)
    assert dot.startswith('digraph "LeNet" {\n  rankdir=LR;')
    nodes = _nodes(dot)
    conv1_id, conv1 = nodes[r"conv1\n(Convolution)\nkernel size: 5\nstride: 1\npad: 0"]
    assert 'shape="record"' in conv1 and 'fillcolor="#FF5050"' in conv1 and 'style="filled"' in conv1
    assert 'fillcolor="#FF9900"' in nodes[r"pool1\n(MAX Pooling)\nkernel size: 2\nstride: 2\npad: 0"][1]
    assert 'fillcolor="#CC33FF"' in nodes[r"ip1\n(InnerProduct)"][1]
    assert 'fillcolor="#6495ED"' in nodes[r"loss\n(SoftmaxWithLoss)"][1]
    blob_id, blob = nodes["ip1"]
    assert 'shape="octagon"' in blob and 'fillcolor="#E0E0E0"' in blob
    relu_id, relu = nodes[r"relu1\n(ReLU)"]
    assert 'fillcolor="#90EE90"' in relu  # in place: hangs on the ip1 blob, no new blob node
    edges = _edges(dot)
    assert (blob_id, relu_id, None) in edges and (relu_id, blob_id, None) in edges
    data_layer = nodes[r"mnist\n(Data)"][0]
    data_blob = nodes["data"][0]
    assert (data_layer, data_blob, "Batch 64") in edges and (data_layer, data_blob, "Batch 100") in edges
    assert (conv1_id, nodes["conv1"][0], "20") in edges
    assert (nodes[r"ip1\n(InnerProduct)"][0], blob_id, "500") in edges
    assert r"accuracy\n(Accuracy)" in nodes  # ALL phases


def test_phase_rankdir_and_options():
    train = net_to_dot(LENET, phase="TRAIN", rankdir="TB")
    nodes = _nodes(train)
    assert "rankdir=TB;" in train and "accuracy (Accuracy)" not in nodes and "mnist (Data)" in nodes
    assert "conv1 (Convolution) kernel size: 5 stride: 1 pad: 0" in nodes
    assert [label for _, _, label in _edges(train) if label and label.startswith("Batch")] == ["Batch 64", "Batch 64"]
    test = net_to_dot(LENET, phase="TEST")
    assert r"accuracy\n(Accuracy)" in _nodes(test)
    folded = net_to_dot(LENET, fold_inplace=True)
    assert r"relu1\n(ReLU)" not in _nodes(folded) and r"ip1\n+ relu1 (ReLU)" in _nodes(folded)
    lrm = net_to_dot(LENET, display_lrm=True)
    assert r"conv1\n(Convolution)\nkernel size: 5\nstride: 1\npad: 0\nlr mult: 1, 2" in _nodes(lrm)
    with pytest.raises(ValueError):
        net_to_dot(LENET, rankdir="UP")


def test_a_fork_net_draws_before_it_is_ported():
    dot = net_to_dot(EXAMPLES / "fork" / "mnist_train_test.prototxt", phase="TRAIN")
    nodes = _nodes(dot)
    assert r"pre_bn\n(BN)" in nodes and r"ip2\n(LargeMarginInnerProduct)" in nodes
    assert 'fillcolor="#CC33FF"' in nodes[r"ip2\n(LargeMarginInnerProduct)"][1]
    assert r"pool3\n(MAX Pooling)\nkernel size: 2\nstride: 2\npad: 0" in nodes


def test_labels_are_escaped():
    net = {"name": 'we "quote"', "layer": [
        {"name": "in", "type": "Input", "top": "a{b}", "input_param": {"shape": {"dim": [1]}}},
        {"name": 'odd|"name"<x>', "type": "ReLU", "bottom": "a{b}", "top": "c"}]}
    dot = net_to_dot(net)
    assert 'digraph "we \\"quote\\"" {' in dot
    assert r'label="odd\|\"name\"\<x\>\n(ReLU)"' in dot and r'label="a\{b\}"' in dot


def test_cli_writes_dot_without_a_renderer(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CAFFE_LIKE_DOT", str(tmp_path / "no_such_dot"))
    assert main(["draw", str(LENET), str(tmp_path / "lenet.dot"), "--phase", "TEST"]) == 0
    assert (tmp_path / "lenet.dot").read_text().startswith('digraph "LeNet"')
    assert main(["draw", str(LENET), str(tmp_path / "lenet.png")]) == 1
    err = capsys.readouterr().err
    assert "no graphviz renderer found" in err and "graphviz-pure" in err and "apt-get install graphviz" in err
    assert not (tmp_path / "lenet.png").exists()
    assert main(["draw", str(LENET), str(tmp_path / "lenet.bmp")]) == 2


def _renderer_or_skip(fmt: str):
    found = find_renderer(fmt)
    if found is None:
        pytest.skip(f"no graphviz renderer for {fmt} here (install Graphviz's dot, or pip install graphviz-pure)")
    return found


def test_render_lenet_png(tmp_path, capsys):
    _renderer_or_skip("png")
    out = tmp_path / "lenet.png"
    assert main(["draw", str(LENET), str(out), "--dot", str(tmp_path / "lenet.gv")]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 3 * height  # LR: a wide picture
    assert (tmp_path / "lenet.gv").read_text().startswith('digraph "LeNet"')
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_render_svg_tb(tmp_path):
    _renderer_or_skip("svg")
    out = tmp_path / "lenet.svg"
    assert main(["draw", str(LENET), str(out), "--rankdir", "TB", "--phase", "TRAIN"]) == 0
    svg = out.read_text()
    assert "<svg" in svg and "conv1 (Convolution) kernel size: 5 stride: 1 pad: 0" in svg


def test_render_pdf_needs_dot(tmp_path):
    found = find_renderer("pdf")
    if found is None:
        with pytest.raises(DrawError):
            render(net_to_dot(LENET), tmp_path / "lenet.pdf")
        pytest.skip("no Graphviz dot here: PDF refused with a clear error")
    render(net_to_dot(LENET), tmp_path / "lenet.pdf")
    assert (tmp_path / "lenet.pdf").read_bytes()[:5] == b"%PDF-"


def test_renderer_failure_is_reported(tmp_path, monkeypatch):
    fake = tmp_path / "fake_dot"
    fake.write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CAFFE_LIKE_DOT", str(fake))
    with pytest.raises(DrawError, match="syntax error in line 1"):
        render("digraph {", tmp_path / "x.png")
    assert not list(tmp_path.glob("x.png*"))

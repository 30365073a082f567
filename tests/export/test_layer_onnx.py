"""ONNX round trip of every layer marked ``onnx=True`` in tests/layer_db.py, for each of its samples.

Each sample's one-layer net (float32) is exported as it is (``derive=False``: its Input layers are the
inputs, the layer's tops the outputs, static shapes) with the default exporter, run with onnxruntime
(CPU) and compared with PyTorch's tops: rtol 1e-4, atol 1e-5.  Layer types registered later join
automatically.  Samples the exporter refuses by design (random layers in TRAIN) check that the refusal
names the layer; so do loss layers the exporter cannot trace (they never reach a deploy net).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

import layer_db

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript", reason="the default (torch.export-based) exporter needs onnxscript")

from caffe_like.errors import ExportError  # noqa: E402
from caffe_like.export.deploy import REMOVED_TYPES  # noqa: E402
from caffe_like.export.onnx_export import _unsupported, export_onnx  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def _cases():
    cases = []
    for info in layer_db.collect():
        if not info.onnx:
            continue
        rng = np.random.default_rng(zlib.crc32(info.type.encode()))
        for sample in info.samples(rng):
            cases.append(pytest.param(info, sample, id=f"{info.type}-{sample.desc}"))
    return cases


CASES = _cases()


@pytest.mark.parametrize("info,sample", CASES)
def test_layer_onnx_round_trip(info, sample, tmp_path):
    reason = info.xfail_reason("onnx")
    if reason:
        pytest.xfail(reason)
    net = layer_db.build(info.type, sample, "float32")
    layer = net.layer_dict()["L"]
    refused = _unsupported(layer, net.spec.layers[-1])
    if refused:
        with pytest.raises(ExportError) as caught:
            export_onnx(net, tmp_path / "m.onnx", derive=False, dynamic_batch=False, verify=False)
        assert "layer 'L'" in str(caught.value) and info.type in str(caught.value)
        pytest.skip(f"not exportable by design, refused with a clear error: {refused}")
    if not info.deterministic and sample.phase == "TRAIN":
        pytest.skip("random in TRAIN: nothing to compare")
    tops = [t.detach().numpy() for t in layer_db.run(net, sample, "float32")]
    names = [f"t{i}" for i in range(sample.n_tops)]
    feeds = {k: v.numpy() for k, v in layer_db.inputs_of(sample, "float32").items()}
    try:
        export_onnx(net, tmp_path / "m.onnx", derive=False, dynamic_batch=False, verify=False, outputs=names,
                    example_inputs=feeds)
    except ExportError as err:
        if info.type not in REMOVED_TYPES:
            raise
        # loss layers never reach a deploy net; refusing them directly must still name the layer
        assert "layer 'L'" in str(err) and info.type in str(err)
        pytest.skip(f"{info.type} is dropped from deploy nets; exporting it alone is refused: {err}")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    feeds = {k: v for k, v in feeds.items() if k in {i.name for i in session.get_inputs()}}
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    for name, want in zip(names, tops):
        np.testing.assert_allclose(got[name], want, rtol=RTOL, atol=ATOL, err_msg=f"top {name}")
        assert got[name].dtype == want.dtype or not np.issubdtype(want.dtype, np.floating)


def test_some_layers_are_exportable():
    assert CASES, "no layer of tests/layer_db.py is marked onnx=True"
    assert torch.float32  # keep torch imported first (layer_db builds nets)

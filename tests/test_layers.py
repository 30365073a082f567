"""Generic layer tests, run for every sample of every entry of tests/layer_db.py.

Checks, per (layer, sample):
* shapes: the shapes inferred at build time (no data) equal the shapes of the computed tops;
* forward: float64 tops equal the entry's NumPy reference and the sample's hand-computed values
  (tolerance per entry, float64 by default rtol 1e-9 / atol 1e-10);
* float32: float32 tops equal the float64 reference within the entry's float32 tolerance
  (default rtol 1e-4 / atol 1e-5);
* grad: torch.autograd.gradcheck in float64 (eps 1e-6, atol 1e-5, rtol 1e-3) over the differentiable
  bottoms and the trainable blobs.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from caffe_like.layers.registry import LAYERS

import layer_db

LAYER_DB = layer_db.collect()


def _cases():
    cases = []
    for info in LAYER_DB:
        rng = np.random.default_rng(zlib.crc32(info.type.encode()))
        for sample in info.samples(rng):
            cases.append(pytest.param(info, sample, id=f"{info.type}-{sample.desc}"))
    return cases


CASES = _cases()


def _maybe_xfail(info, check):
    reason = info.xfail_reason(check)
    if reason:
        pytest.xfail(reason)


def test_every_layer_has_an_entry():
    declared = {info.type for info in LAYER_DB}
    missing = sorted(set(LAYERS) - declared)
    assert not missing, f"registered layers without a LayerInfo in tests/layer_db.py: {missing}"
    unknown = sorted(declared - set(LAYERS))
    assert not unknown, f"LayerInfo entries for types that are not registered: {unknown}"


def test_entries_are_unique():
    types = [info.type for info in LAYER_DB]
    assert len(types) == len(set(types))


@pytest.mark.parametrize("info,sample", CASES)
def test_shapes(info, sample):
    _maybe_xfail(info, "shapes")
    net = layer_db.build(info.type, sample)
    tops = layer_db.run(net, sample)
    inferred = [net.blob_shapes[f"t{i}"] for i in range(sample.n_tops)]
    assert [tuple(t.shape) for t in tops] == [tuple(s) for s in inferred]


def _blobs(net):
    return [b.detach().numpy().astype(np.float64) for b in net.layer_dict()["L"].blobs]


@pytest.mark.parametrize("info,sample", CASES)
def test_forward(info, sample):
    if info.reference is None and sample.expected is None:
        pytest.skip("no reference and no hand-computed values for this sample")
    if not info.deterministic and sample.phase == "TRAIN" and sample.expected is None:
        pytest.skip("stochastic in TRAIN: covered by the layer's own tests")
    _maybe_xfail(info, "forward")
    rtol, atol = info.tol["float64"]
    net = layer_db.build(info.type, sample)
    tops = [t.detach().numpy() for t in layer_db.run(net, sample)]
    if info.reference is not None and (info.deterministic or sample.phase == "TEST"):
        expected = info.reference(sample, list(sample.bottoms), _blobs(net))
        for got, want in zip(tops, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    if sample.expected is not None:
        for got, want in zip(tops, sample.expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("info,sample", CASES)
def test_float32(info, sample):
    _maybe_xfail(info, "float32")
    rtol, atol = info.tol["float32"]
    net64 = layer_db.build(info.type, sample, "float64")
    net32 = layer_db.build(info.type, sample, "float32")
    with torch.no_grad():
        for b32, b64 in zip(net32.layer_dict()["L"].blobs, net64.layer_dict()["L"].blobs):
            b32.copy_(b64)
    tops64 = layer_db.run(net64, sample, "float64")
    tops32 = layer_db.run(net32, sample, "float32")
    for t32, t64 in zip(tops32, tops64):
        assert t32.dtype == torch.float32 or not t64.is_floating_point()
        np.testing.assert_allclose(t32.detach().double().numpy(), t64.detach().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("info,sample", [c for c in CASES if c.values[1].check_grad])
def test_gradcheck(info, sample):
    _maybe_xfail(info, "grad")
    net = layer_db.build(info.type, sample)
    layer = net.layer_dict()["L"]
    inputs = layer_db.inputs_of(sample)
    grad_bottoms = sample.grad_bottoms if sample.grad_bottoms is not None else info.grad_bottoms
    names = [f"b{i}" for i in grad_bottoms if i < len(sample.bottoms)]
    blob_names = [f"layers.{len(sample.bottoms)}.blobs.{i}" for i, b in enumerate(layer.blobs) if b.requires_grad]
    params = dict(net.named_parameters())
    leaves = [inputs[n].clone().requires_grad_(True) for n in names] + [
        params[n].detach().clone().requires_grad_(True) for n in blob_names]
    if not leaves:
        pytest.skip("nothing differentiable")

    def fn(*values):
        feed = dict(inputs)
        feed.update(zip(names, values[: len(names)]))
        overrides = dict(zip(blob_names, values[len(names):]))
        torch.manual_seed(sample.seed)
        torch.func.functional_call(net, overrides, args=(), kwargs=feed, strict=False)
        return tuple(net.blobs[f"t{i}"] for i in range(sample.n_tops) if net.blobs[f"t{i}"].is_floating_point())

    assert torch.autograd.gradcheck(fn, tuple(leaves), eps=1e-6, atol=1e-5, rtol=1e-3)

"""Whole nets against what the original Caffe computed for them (../shared/caffe_cases/layers/*).

For every case folder: build net.prototxt in the case's phase, load weights.caffemodel, feed
inputs.npz, and compare (float32, rtol 1e-4 / atol 1e-5 unless a case needs otherwise):
* every blob of forward.npz (Caffe's automatic ``*_split_*`` blobs aside; in-place blobs hold their
  final value in both);
* after one backward — loss tops seeded with their loss_weight, other outputs with topdiff.npz, as
  Caffe does — every input's diff (``in/<input>``, 0 where Caffe sends none) and every learnable blob's
  diff (``param/<layer>/<i>``);
* for cases that have it, the blobs after the forward (after_forward_params.npz: BatchNorm's moving
  averages).
Any case folder present is run, so new cases of the same kind are picked up automatically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import caffe_like
from caffe_like.layers.registry import LAYERS
from caffe_like.spec.net import NetSpec

from shared_paths import CAFFE_CASES

RTOL, ATOL = 1e-4, 1e-5


def _case_dirs():
    root = CAFFE_CASES / "layers"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "net.prototxt").exists())


CASES = _case_dirs()


def _npz(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _load_case(case: Path):
    info = json.loads((case / "case.json").read_text())
    spec = NetSpec.load(case / "net.prototxt")
    missing = sorted({layer.type for layer in spec.layers} - set(LAYERS))
    if missing:
        pytest.skip(f"layer types not implemented yet: {missing}")
    net = caffe_like.Net(spec, phase=info.get("phase", "TRAIN"))
    net.load_weights(case / "weights.caffemodel")
    inputs = _npz(case / "inputs.npz")
    return info, net, inputs


def _run(net, inputs, topdiff):
    outputs = net(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    objective = net.loss
    for name, diff in topdiff.items():
        top = outputs.get(name, net.blobs.get(name))
        if top is not None and top.requires_grad:
            objective = objective + (top * torch.from_numpy(diff).to(top.dtype)).sum()
    if objective.requires_grad:
        objective.backward()
    return outputs


pytestmark = pytest.mark.caffe_cases


@pytest.fixture(autouse=True)
def _cases_present(caffe_cases):
    return caffe_cases


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_forward_blobs(case):
    info, net, inputs = _load_case(case)
    _run(net, inputs, _npz(case / "topdiff.npz"))
    compared = 0
    for name, expected in _npz(case / "forward.npz").items():
        if "_split_" in name:
            continue
        assert name in net.blobs, f"blob '{name}' of Caffe's net is missing"
        got = net.blobs[name].detach().numpy()
        assert got.shape == expected.shape, f"blob '{name}': shape {got.shape} vs Caffe's {expected.shape}"
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=f"blob '{name}'")
        compared += 1
    assert compared > 0


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_backward_diffs(case):
    info, net, inputs = _load_case(case)
    if not info.get("has_backward", True):
        pytest.skip("Caffe computed no backward for this case")
    _run(net, inputs, _npz(case / "topdiff.npz"))
    expected = _npz(case / "backward.npz")
    params = net.params
    for key, want in expected.items():
        kind, _, rest = key.partition("/")
        if kind == "in":
            blob = net.blobs[rest]
            got = blob.grad if blob.grad is not None else torch.zeros_like(blob)
        elif kind == "param":
            layer, _, index = rest.rpartition("/")
            blob = params[layer][int(index)]
            got = blob.grad if blob.grad is not None else torch.zeros_like(blob)
        else:
            continue
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=RTOL, atol=ATOL, err_msg=key)


@pytest.mark.parametrize("case", [c for c in CASES if (c / "after_forward_params.npz").exists()],
                         ids=lambda p: p.name)
def test_blobs_after_forward(case):
    info, net, inputs = _load_case(case)
    with torch.no_grad():
        net(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    params = net.params
    for key, want in _npz(case / "after_forward_params.npz").items():
        _, layer, index = key.split("/")
        np.testing.assert_allclose(params[layer][int(index)].detach().numpy(), want, rtol=RTOL, atol=ATOL,
                                   err_msg=key)


def test_cases_were_found(caffe_cases):
    assert CASES or os.environ.get("CAFFE_LIKE_CASES"), f"no case folders under {caffe_cases / 'layers'}"

"""Fixtures of the solver tests."""

from __future__ import annotations

import pytest

from caffe_like.layers import registry
from caffe_like.spec import params as spec_params

from solver_helpers import ToyData


@pytest.fixture
def toy_layers(monkeypatch):
    """Registers ToyData (type SolverToyData) for one test, and removes it afterwards, so that the layer
    registry the other test folders see (e.g. tests/test_layers.py's completeness check) is unchanged."""
    monkeypatch.setitem(registry.LAYERS, ToyData.TYPE, ToyData)
    monkeypatch.setitem(spec_params._LAYER_TYPES, ToyData.TYPE, ("input_param",))
    return ToyData

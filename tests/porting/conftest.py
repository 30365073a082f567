"""Fixtures of the porting tests: a clean layer registry around every test, paths, MNIST."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import caffe_like
from caffe_like.layers import registry
from caffe_like.spec import params

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLES = REPO / "examples" / "porting"
_PACKAGE = str(Path(caffe_like.__file__).resolve().parent)
_PREFIXES = tuple({sys.prefix, sys.base_prefix, _PACKAGE})


def _user_module(module) -> bool:
    """A module a test imported from a user folder (a plugin, a Python layer), not a library."""
    path = getattr(module, "__file__", None)
    return bool(path) and not str(Path(path).resolve()).startswith(_PREFIXES)


@pytest.fixture(autouse=True)
def clean_registry():
    """Layers, type names and user modules registered or imported by a test are gone afterwards, so that
    plugins do not leak into other tests (tests/test_layers.py wants a LayerInfo for every registered type)."""
    layers = dict(registry.LAYERS)
    types = dict(params._LAYER_TYPES)
    loaded = registry._entry_points_loaded
    modules = set(sys.modules)
    yield
    registry.LAYERS.clear()
    registry.LAYERS.update(layers)
    params._LAYER_TYPES.clear()
    params._LAYER_TYPES.update(types)
    registry._entry_points_loaded = loaded
    for name in set(sys.modules) - modules:
        if _user_module(sys.modules[name]):
            del sys.modules[name]


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The folder holding mnist/ (the IDX files), for the walk-through."""
    from shared_paths import MNIST_DIR

    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST is not at {MNIST_DIR} (set CAFFE_LIKE_MNIST)")
    return MNIST_DIR.parent

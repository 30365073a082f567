"""Fixtures for the data tests: a clean search path and small generated datasets (helpers: datahelp.py)."""

from __future__ import annotations

import gc

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _isolated_data_root(monkeypatch, tmp_path):
    """No CAFFE_LIKE_DATA from the environment; run from an empty folder (the last search root)."""
    monkeypatch.delenv("CAFFE_LIKE_DATA", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield
    gc.collect()  # let finalizers stop prefetch threads of the nets a test built


@pytest.fixture
def make_npz(tmp_path):
    """Write an .npz dataset of ``n`` distinct uint8 images (C, H, W) with labels 0..n-1."""

    def make(n=10, shape=(1, 4, 5), name="set.npz", dtype=np.uint8):
        rng = np.random.default_rng(n)
        data = rng.integers(0, 256, size=(n, *shape)).astype(dtype)
        data[:, 0, 0, 0] = np.arange(n)  # every record identifiable by its first pixel
        path = tmp_path / name
        np.savez(path, data=data, label=np.arange(n))
        return path, data

    return make

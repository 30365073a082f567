"""Shared fixtures: where the real data and the original Caffe's numbers live (skip when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_paths import CAFFE_CASES, MNIST_DIR


@pytest.fixture(scope="session")
def caffe_cases() -> Path:
    """The folder of nets with what the original Caffe computed for them (../shared/caffe_cases)."""
    if not CAFFE_CASES.is_dir():
        pytest.skip(f"the original Caffe's reference cases are not at {CAFFE_CASES} (set CAFFE_LIKE_CASES)")
    return CAFFE_CASES


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The official MNIST IDX files (../shared/data/mnist)."""
    if not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists():
        pytest.skip(f"real MNIST is not at {MNIST_DIR} (set CAFFE_LIKE_MNIST)")
    return MNIST_DIR

"""Shared settings of the reference tests: gradient-check tolerances and the Caffe cases folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from caffe_like.reference.gradcheck import check_layer

from shared_paths import CAFFE_CASES

#: float64 finite differences: central step 1e-6, accept |a - n| <= 1e-7 * max(|a|, |n|, 1).  The truncation
#: error is O(h^2) ~ 1e-12 and the rounding error O(eps |f| / h) ~ 1e-10, so 1e-7 leaves a wide margin while
#: still catching any wrong factor or sign (Caffe's float32 tests use stepsize 1e-2, threshold 1e-2..1e-3).
TIGHT = {"stepsize": 1e-6, "threshold": 1e-7}

#: the real-Caffe cases (tests/shared_paths.py: ../shared/caffe_cases, or $CAFFE_LIKE_CASES / $CAFFE_LIKE_SHARED).
CASES_DIR = CAFFE_CASES


def assert_grad(module, bottoms, params=None, blobs=(), **kwargs) -> None:
    """check_layer with the TIGHT float64 settings (overridable), failing with the report's worst element."""
    settings = {**TIGHT, **kwargs}
    check_layer(module, bottoms, params or {}, blobs=blobs, **settings).assert_ok()


def case_dir(name: str) -> Path:
    """The folder of one Caffe case, or skip the test with the reason."""
    path = CASES_DIR / "layers" / name
    if not path.is_dir():
        pytest.skip(
            f"real-Caffe case {name!r} not found at {path} (set CAFFE_LIKE_CASES to the caffe_cases folder)"
        )
    return path


def load_npz64(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, as float64 (the Caffe numbers are float32)."""
    with np.load(path) as data:
        return {key: data[key].astype(np.float64) for key in data.files}

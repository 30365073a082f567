"""Where the real data and the original Caffe's numbers live (overridable by environment variables)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CAFFE_LIKE_SHARED", REPO.parent / "shared"))
CAFFE_CASES = Path(os.environ.get("CAFFE_LIKE_CASES", SHARED / "caffe_cases"))
MNIST_DIR = Path(os.environ.get("CAFFE_LIKE_MNIST", SHARED / "data" / "mnist"))

"""caffe_like.reference must work without torch and must not share code with the rest of caffe_like.

Each check runs in a fresh interpreter (``sys.executable``) whose import system refuses ``torch``: a meta
path finder placed first raises ImportError for ``torch`` and ``torch.*`` and records the attempt, so even
an attempt that the importing code would catch is seen.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "caffe_like"
REFERENCE = PACKAGE / "reference"

SUBMODULES = [
    "accuracy",
    "center_loss",
    "euclidean_loss",
    "gradcheck",
    "hinge_loss",
    "large_margin_inner_product",
    "multinomial_logistic_loss",
    "reciprocal_norm_loss",
    "sigmoid_cross_entropy_loss",
    "softmax",
    "softmax_with_loss",
]

SCRIPT = r"""
import importlib, importlib.abc, json, sys, types

attempts = []

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            attempts.append(name)
            raise ImportError("torch is blocked in this test (caffe_like.reference must not need it)")
        return None

sys.meta_path.insert(0, BlockTorch())
if STUB_PARENT:
    # a bare `caffe_like` package: caffe_like/__init__.py (which may import torch-based modules) does not run,
    # so only the reference code itself is under test
    parent = types.ModuleType("caffe_like")
    parent.__path__ = [PACKAGE_DIR]
    sys.modules["caffe_like"] = parent

import numpy as np
import caffe_like.reference as R
for name in SUBMODULES:
    importlib.import_module("caffe_like.reference." + name)

rng = np.random.default_rng(0)
x, W, lab = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), np.array([0.0, 4.0, 2.0, 1.0])
runs = [
    (R.softmax, [x], [], {}),
    (R.softmax_with_loss, [x, lab % 3], [], {}),
    (R.euclidean_loss, [x, x[::-1]], [], {}),
    (R.hinge_loss, [x, lab % 3], [], {}),
    (R.sigmoid_cross_entropy_loss, [x, (x > 0) * 1.0], [], {}),
    (R.multinomial_logistic_loss, [R.softmax.forward(x)[0], lab % 3], [], {}),
    (R.large_margin_inner_product, [x, lab], [W], {"m": 4, "lam": 0.5}),
    (R.center_loss, [x, lab], [W], {}),
    (R.reciprocal_norm_loss, [x, W[:4], lab % 3], [], {}),
]
ran = []
for module, bottoms, blobs, params in runs:
    tops = module.forward(*bottoms, *blobs, **params)
    diffs = tuple(np.ones_like(t) for t in tops)
    grads = module.backward(*bottoms, *blobs, top_diffs=diffs, **params)
    assert len(grads) == len(bottoms) + len(blobs)
    R.gradcheck.check_layer(module, bottoms, params, blobs=blobs, stepsize=1e-6, threshold=1e-6).assert_ok()
    ran.append(module.TYPE)
(acc,) = R.accuracy.forward(x, lab % 3)
ran.append(R.accuracy.TYPE)

print(json.dumps({
    "attempts": attempts,
    "torch_loaded": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
    "caffe_like_modules": sorted(m for m in sys.modules if m == "caffe_like" or m.startswith("caffe_like.")),
    "ran": ran,
}))
"""


def run_blocked(stub_parent: bool) -> tuple[subprocess.CompletedProcess, dict | None]:
    code = (
        f"STUB_PARENT = {stub_parent!r}\nPACKAGE_DIR = {str(PACKAGE)!r}\nSUBMODULES = {SUBMODULES!r}\n"
        + SCRIPT
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    lines = proc.stdout.strip().splitlines()
    return proc, (json.loads(lines[-1]) if proc.returncode == 0 and lines else None)


def test_reference_code_runs_with_torch_blocked_and_imports_nothing_else_from_caffe_like():
    """With a bare parent package: the reference modules alone, every forward/backward and the checker."""
    proc, result = run_blocked(stub_parent=True)
    assert proc.returncode == 0, f"the references failed with torch blocked:\n{proc.stderr[-3000:]}"
    assert result["attempts"] == [] and result["torch_loaded"] == []
    allowed = (
        {"caffe_like", "caffe_like.errors"}
        | {"caffe_like.reference"}
        | {f"caffe_like.reference.{name}" for name in [*SUBMODULES, "_common"]}
    )
    assert set(result["caffe_like_modules"]) <= allowed, set(result["caffe_like_modules"]) - allowed
    assert len(result["ran"]) == 10


def test_import_caffe_like_reference_without_torch():
    """`import caffe_like.reference` as users write it: this also runs caffe_like/__init__.py, which must
    therefore import its torch-based parts lazily (DESIGN.md §1: "a test asserts torch is never imported")."""
    proc, result = run_blocked(stub_parent=False)
    assert proc.returncode == 0, (
        "`import caffe_like.reference` needs torch.  If the traceback goes through caffe_like/__init__.py, "
        "that file imports torch-based modules eagerly; make those imports lazy (a module-level __getattr__, "
        f"PEP 562).\n{proc.stderr[-3000:]}"
    )
    assert result["attempts"] == [], f"something tried to import torch: {result['attempts']}"
    assert result["torch_loaded"] == []


IMPORT_LINE = re.compile(r"^\s*(?:from\s+(\S+)\s+import|import\s+(\S+))", re.MULTILINE)


def test_no_reference_file_imports_torch_or_other_caffe_like_code():
    files = sorted(REFERENCE.rglob("*.py"))
    assert {f.stem for f in files} >= set(SUBMODULES)
    for path in files:
        text = path.read_text()
        assert "import torch" not in text and not re.search(r"^\s*from\s+torch\b", text, re.MULTILINE), path
        for match in IMPORT_LINE.finditer(text):
            module = (match.group(1) or match.group(2)).rstrip(",")
            top = module.split(".")[0]
            if module.startswith(".."):  # relative import out of the reference package
                assert module.startswith("..errors"), f"{path.name}: imports {module}"
            elif module.startswith("."):
                continue
            elif top == "caffe_like":
                assert module in ("caffe_like.errors",) or module.startswith("caffe_like.reference"), (
                    f"{path.name}: imports {module}"
                )
            else:
                assert top in {"numpy", "__future__", "collections", "dataclasses", "types", "math"}, (
                    f"{path.name}: imports {module} (NumPy and the standard library only)"
                )

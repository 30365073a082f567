"""caffe_like.spec (formats and schema) must load and work without torch (DESIGN §1)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["torch"] = None  # any `import torch` now raises ImportError
    from caffe_like.spec.net import NetSpec
    from caffe_like.spec.solver import SolverSpec
    spec = NetSpec.from_text('name: "n" layer { name: "d" type: "Input" top: "d" '
                             'input_param { shape { dim: 1 dim: 2 } } }')
    assert "Input" in spec.to_yaml()
    SolverSpec.from_text('base_lr: 0.1 lr_policy: "fixed" net_param { name: "x" }')
    print("ok")
    """
)


def test_spec_imports_without_torch():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

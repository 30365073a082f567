#!/usr/bin/env python
"""Time the prototxt reader on a generated net of N LeNet-style layers (40 lines each).

Prints one line per measurement: the median of ``--repeat`` runs of ``textformat.parse`` and, once
``caffe_like.spec.net`` provides ``NetSpec.from_text`` or ``NetSpec.load``, of the full net load
(parse, upgrade, schema binding and validation).  The target is well under 1 s for 1,000 layers.

Example::

    python tools/bench_parse.py --layers 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from caffe_like.spec import textformat

LAYER_TEMPLATE = """\
# layer {i}: a LeNet-style convolution
layer {{
  name: "conv{i}"
  type: "Convolution"
  bottom: "{bottom}"
  top: "conv{i}"
  # learning-rate and decay multipliers of the weights, then of the bias
  param {{
    lr_mult: 1
    decay_mult: 1
  }}
  param {{
    lr_mult: 2
    decay_mult: 0
  }}
  convolution_param {{
    # geometry
    num_output: 20
    bias_term: true
    pad: 1
    kernel_size: 3
    stride: 1
    dilation: 1
    group: 1
    # initialization
    weight_filler {{
      type: "xavier"
      variance_norm: FAN_IN
    }}
    bias_filler {{
      type: "constant"
      value: 0.1
    }}
    # implementation
    engine: CAFFE
    axis: 1
    force_nd_im2col: false
  }}
}}

"""

HEADER = """\
name: "bench"
layer {
  name: "data"
  type: "Input"
  top: "data"
  input_param {
    shape {
      dim: 64
      dim: 1
      dim: 28
      dim: 28
    }
  }
}
"""


def make_prototxt(layers: int) -> str:
    """A net of an Input layer followed by ``layers`` chained Convolution layers of 40 lines each."""
    parts = [HEADER]
    bottom = "data"
    for i in range(1, layers + 1):
        parts.append(LAYER_TEMPLATE.format(i=i, bottom=bottom))
        bottom = f"conv{i}"
    return "".join(parts)


def median_seconds(func, repeat: int) -> float:
    """Median wall time of ``repeat`` calls of ``func``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def full_loader(text: str, workdir: Path):
    """A callable running the full net load, or None while ``caffe_like.spec.net`` lacks one."""
    try:
        from caffe_like.spec.net import NetSpec
    except ImportError:
        return None
    if hasattr(NetSpec, "from_text"):
        return lambda: NetSpec.from_text(text)
    if hasattr(NetSpec, "load"):
        path = workdir / "bench.prototxt"
        path.write_text(text, encoding="utf-8")
        return lambda: NetSpec.load(path)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=1000, help="number of layers (default 1000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement; the median is shown")
    args = parser.parse_args(argv)
    if args.layers < 1 or args.repeat < 1:
        parser.error("--layers must be at least 1 and --repeat at least 1")

    text = make_prototxt(args.layers)
    lines = text.count("\n")
    seconds = median_seconds(lambda: textformat.parse(text, "bench.prototxt"), args.repeat)
    print(f"textformat.parse: {args.layers} layers, {lines} lines, {len(text)} chars: "
          f"{seconds * 1000:.1f} ms (median of {args.repeat})")

    with tempfile.TemporaryDirectory() as tmp:
        load = full_loader(text, Path(tmp))
        if load is None:
            print("NetSpec load: skipped (caffe_like.spec.net has no NetSpec.from_text/load yet)")
        else:
            seconds = median_seconds(load, args.repeat)
            print(f"NetSpec load: {args.layers} layers: {seconds * 1000:.1f} ms (median of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Benchmark .caffemodel writing and reading (caffe_like.weights) on a VGG-16-like net.

Generates a weight file of about ``--mb`` megabytes with VGG-16's layer structure (13 convolutions,
3 inner products, each with weights and bias; channel widths scaled so the total size fits), writes it
``--repeat`` times and reads it ``--repeat`` times in a temporary directory, and prints the median time
and throughput of each.  The target is a read of a 250 MB file in well under 3 s on 2 CPU cores.

    python tools/bench_weights.py --mb 250
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# VGG-16 (configuration D): conv channels per stage, then fc sizes
_VGG16_CONVS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
_VGG16_FC = (4096, 4096, 1000)
_MB = 1e6


def vgg16_like_shapes(width: float) -> list[tuple[str, str, list[tuple[int, ...]]]]:
    """(name, type, blob shapes) of VGG-16 with every channel count (and fc width) times ``width``."""
    layers = []
    in_ch = 3
    for stage, (channels, count) in enumerate(_VGG16_CONVS, start=1):
        out = max(1, round(channels * width))
        for i in range(1, count + 1):
            layers.append((f"conv{stage}_{i}", "Convolution", [(out, in_ch, 3, 3), (out,)]))
            in_ch = out
    fc6, fc7, fc8 = (max(1, round(_VGG16_FC[0] * width)), max(1, round(_VGG16_FC[1] * width)), _VGG16_FC[2])
    layers.append(("fc6", "InnerProduct", [(fc6, in_ch * 7 * 7), (fc6,)]))
    layers.append(("fc7", "InnerProduct", [(fc7, fc6), (fc7,)]))
    layers.append(("fc8", "InnerProduct", [(fc8, fc7), (fc8,)]))
    return layers


def _n_bytes(layers) -> int:
    return 4 * sum(math.prod(shape) for _, _, shapes in layers for shape in shapes)


def shapes_for_mb(mb: float):
    """Pick the width multiplier whose VGG-16-like net has about ``mb`` megabytes of float32 blobs."""
    low, high = 1e-3, 8.0
    for _ in range(60):  # bisection on the (monotonic) size
        mid = (low + high) / 2
        if _n_bytes(vgg16_like_shapes(mid)) < mb * _MB:
            low = mid
        else:
            high = mid
    return vgg16_like_shapes(high)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=250.0, help="approximate file size in MB (default 250)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of write and of read (default 3; median)")
    parser.add_argument("--double", action="store_true", help="write float64 double_data instead of float32")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the temporary file (default: system temp)")
    args = parser.parse_args(argv)
    if args.mb <= 0 or args.repeat < 1:
        parser.error("--mb must be > 0 and --repeat >= 1")

    from caffe_like.weights import LayerBlobs, read_caffemodel, write_caffemodel

    rng = np.random.default_rng(0)
    dtype = np.float64 if args.double else np.float32
    spec = shapes_for_mb(args.mb / (2 if args.double else 1))
    layers = [LayerBlobs(name, type_, [rng.standard_normal(s, dtype=np.float32).astype(dtype) for s in shapes])
              for name, type_, shapes in spec]
    n_values = sum(b.size for layer in layers for b in layer.blobs)
    print(f"net: {len(layers)} layers (VGG-16-like), {n_values / 1e6:.1f}M values, "
          f"largest blob {max(b.shape for layer in layers for b in layer.blobs if b.ndim == 2)}")

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.caffemodel"
        write_times, read_times = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            write_caffemodel(path, "bench_vgg16_like", layers, double=args.double)
            write_times.append(time.perf_counter() - start)
        size = path.stat().st_size
        for _ in range(args.repeat):
            start = time.perf_counter()
            model = read_caffemodel(path)
            read_times.append(time.perf_counter() - start)
        ok = all(np.array_equal(a, b) for x, y in zip(layers, model.layers) for a, b in zip(x.blobs, y.blobs))
        del model

    w, r = statistics.median(write_times), statistics.median(read_times)
    print(f"file: {size / _MB:.1f} MB ({size} bytes), {'float64' if args.double else 'float32'}")
    print(f"write: {w:.3f} s median of {args.repeat} ({size / _MB / w:.0f} MB/s); runs: "
          + ", ".join(f"{t:.3f}" for t in write_times))
    print(f"read:  {r:.3f} s median of {args.repeat} ({size / _MB / r:.0f} MB/s); runs: "
          + ", ".join(f"{t:.3f}" for t in read_times))
    print(f"round trip identical: {ok}")
    target = 3.0 * size / (250 * _MB)
    print(f"target: read < {target:.2f} s for this size (3 s per 250 MB): {'met' if r < target else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

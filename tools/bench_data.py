#!/usr/bin/env python
"""Benchmark the MNIST data path: IDX reading + Caffe's transform (scale 1/256) + batching + prefetch.

Builds a one-layer net with a ``Data`` layer on the real MNIST training set (``backend: IDX``,
``transform_param { scale: 0.00390625 }``), runs ``--batches`` forwards after a warm-up (which absorbs the
one-time decompression of the .gz file) and prints the transformed images per second, with the
background prefetch thread (``data_param.prefetch``, Caffe's default 4) and without it (read in the
caller's thread).  The target is >= 20,000 images/s on 2 CPU cores.

``--lenet`` also times a LeNet training step (plain torch: conv 20, pool, conv 50, pool, ip 500, relu,
ip 10, softmax loss, backward, SGD with momentum) fed three ways: a fixed tensor (no data layer), the
Data layer with prefetching, and the Data layer reading in the main thread; the difference is what the
data path costs the model.

    python tools/bench_data.py                       # batch 64, prefetch 4 vs 0
    python tools/bench_data.py --batch-size 256 --mirror --crop 24 --shuffle --lenet
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(args, prefetch: int):
    import caffe_like

    transform = {"scale": 0.00390625}
    if args.mirror:
        transform["mirror"] = True
    if args.crop:
        transform["crop_size"] = args.crop
    spec = {"name": "bench_data", "layer": [{
        "name": "mnist", "type": "Data", "top": ["data", "label"], "transform_param": transform,
        "data_param": {"source": "mnist/train", "backend": "IDX", "batch_size": args.batch_size,
                       "shuffle": args.shuffle}}]}
    return caffe_like.Net(spec, phase="TRAIN", seed=1,
                          options={"data_root": str(Path(args.mnist).parent), "prefetch": prefetch})


def run(args, prefetch: int) -> float:
    """Transformed images per second of ``args.batches`` forwards of the data layer alone."""
    net = build(args, prefetch)
    for _ in range(args.warmup):
        net()
    start = time.perf_counter()
    for _ in range(args.batches):
        out = net()
    elapsed = time.perf_counter() - start
    assert out["data"].shape[0] == args.batch_size
    net.layer_dict()["mnist"].close()
    return args.batches * args.batch_size / elapsed


def lenet_steps(args, steps: int) -> dict[str, float]:
    """Seconds per LeNet training step: fixed input, Data layer prefetched, Data layer in the main thread."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    side = args.crop or 28
    flat = 50 * (((side - 4) // 2 - 4) // 2) ** 2
    model = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(flat, 500), nn.ReLU(), nn.Linear(500, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        F.cross_entropy(model(x), y.long()).backward()
        opt.step()

    fixed = (torch.rand(args.batch_size, 1, side, side), torch.randint(0, 10, (args.batch_size,)))
    times = {}
    for label, depth in (("fixed input", None), ("prefetch", args.prefetch), ("no prefetch", 0)):
        net = build(args, depth) if depth is not None else None
        feed = (lambda: fixed) if net is None else (lambda n=net: tuple(n().values()))
        for _ in range(args.warmup):
            step(*feed())
        start = time.perf_counter()
        for _ in range(steps):
            step(*feed())
        times[label] = (time.perf_counter() - start) / steps
        if net is not None:
            net.layer_dict()["mnist"].close()
    return times


def main(argv=None) -> int:
    default_mnist = Path(os.environ.get("CAFFE_LIKE_MNIST", REPO.parent / "shared" / "data" / "mnist"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(default_mnist), help=f"folder of the MNIST IDX files ({default_mnist})")
    p.add_argument("--batch-size", type=int, default=64, help="records per batch (64)")
    p.add_argument("--batches", type=int, default=3000, help="timed batches per run (3000)")
    p.add_argument("--warmup", type=int, default=20, help="untimed batches first (20)")
    p.add_argument("--repeat", type=int, default=3, help="runs per setting; the median is reported (3)")
    p.add_argument("--prefetch", type=int, default=4, help="prefetch depth of the prefetched run (4)")
    p.add_argument("--mirror", action="store_true", help="also mirror at random (draws from the MT19937)")
    p.add_argument("--crop", type=int, default=0, help="also crop (random offsets in TRAIN), e.g. 24")
    p.add_argument("--shuffle", action="store_true", help="caffe_like's per-epoch shuffle")
    p.add_argument("--lenet", action="store_true", help="also time a LeNet training step fed by the layer")
    p.add_argument("--steps", type=int, default=200, help="timed LeNet steps per setting (200)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (2)")
    args = p.parse_args(argv)
    if not (Path(args.mnist) / "train-images-idx3-ubyte.gz").exists() and not (
            Path(args.mnist) / "train-images-idx3-ubyte").exists():
        print(f"MNIST not found in {args.mnist} (fetch it with `caffe-like data mnist --root DIR`)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    print(f"MNIST data path: IDX + scale 1/256{' + mirror' if args.mirror else ''}"
          f"{f' + crop {args.crop}' if args.crop else ''}{' + shuffle' if args.shuffle else ''}, "
          f"batch {args.batch_size}, {args.batches} batches x {args.repeat} runs, {os.cpu_count()} CPUs, "
          f"torch threads {args.threads}")
    for label, depth in ((f"prefetch {args.prefetch}", args.prefetch), ("no prefetch", 0)):
        rate = statistics.median(run(args, depth) for _ in range(args.repeat))
        print(f"  {label:<12} {rate:>12,.0f} images/s")
    if args.lenet:
        runs = [lenet_steps(args, args.steps) for _ in range(args.repeat)]
        base = statistics.median(r["fixed input"] for r in runs)
        print(f"LeNet training step, batch {args.batch_size} (median of {args.repeat} x {args.steps} steps):")
        for label in ("fixed input", "prefetch", "no prefetch"):
            t = statistics.median(r[label] for r in runs)
            extra = "" if label == "fixed input" else f"  ({100 * (t - base) / base:+.1f}% vs fixed input)"
            print(f"  {label:<12} {1000 * t:>9.2f} ms/step{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Training-loop overhead of caffe_like's Solver on LeNet: ``solver.step`` against a bare loop.

Both run the same net (Caffe's MNIST LeNet, fed a fixed random batch through its Input layers) with the
same update (:class:`caffe_like.solver.updates.Updater`, SGD with momentum and weight decay):

* bare:   for each iteration: clear the gradients, forward, backward, ``updater.apply(rate, it)``;
* solver: ``solver.step(K, data=x, label=y)`` (the lr policy, loss bookkeeping and NaN check, display
          and snapshot checks, the progress hooks: everything the Solver adds).

Rounds alternate the order of the two (bare first, then solver first, ...); each round times K
iterations of each, and the reported overhead is the median over rounds of solver_time / bare_time − 1.
Target (issue 4): at most 3% at batch 64 and 256.

Example::

    python tools/bench_solver.py --batch 64 256 --rounds 15 --iters 20
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from caffe_like.solver import Solver, learning_rate


def lenet(batch: int) -> dict:
    xavier = {"type": "xavier"}
    bias = [{"lr_mult": 1}, {"lr_mult": 2}]
    conv = lambda name, bottom, n: {  # noqa: E731
        "name": name, "type": "Convolution", "bottom": bottom, "top": name, "param": bias,
        "convolution_param": {"num_output": n, "kernel_size": 5, "weight_filler": xavier}}
    pool = lambda name, bottom: {  # noqa: E731
        "name": name, "type": "Pooling", "bottom": bottom, "top": name,
        "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}}
    ip = lambda name, bottom, n: {  # noqa: E731
        "name": name, "type": "InnerProduct", "bottom": bottom, "top": name, "param": bias,
        "inner_product_param": {"num_output": n, "weight_filler": xavier}}
    return {"name": "LeNet", "layer": [
        {"name": "mnist", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [batch, 1, 28, 28]}, {"dim": [batch]}]}},
        conv("conv1", "data", 20), pool("pool1", "conv1"), conv("conv2", "pool1", 50), pool("pool2", "conv2"),
        ip("ip1", "pool2", 500), {"name": "relu1", "type": "ReLU", "bottom": "ip1", "top": "ip1"},
        ip("ip2", "ip1", 10),
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip2", "label"], "top": "loss"},
    ]}


def make_solver(batch: int, device: str, display: int) -> Solver:
    settings = {"net_param": lenet(batch), "base_lr": 0.01, "momentum": 0.9, "weight_decay": 0.0005,
                "lr_policy": "inv", "gamma": 0.0001, "power": 0.75, "max_iter": 10 ** 9, "display": display,
                "random_seed": 1}
    return Solver(settings, device=device, quiet=True, log=False, progress=False)


def bare_loop(solver: Solver, iters: int, feed: dict) -> None:
    """forward / backward / update, nothing else (the baseline)."""
    net, updater, learnables = solver.net, solver.updater, solver.net.learnable_params()
    for _ in range(iters):
        for lp in learnables:
            lp.param.grad = None
        net(**feed)
        net.loss.backward()
        rate, _ = learning_rate(solver.param, solver.iter, 0)
        updater.apply(rate, solver.iter)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(batch: int, args) -> dict:
    solver = make_solver(batch, args.device, args.display)
    rng = np.random.default_rng(0)
    feed = {"data": torch.tensor(rng.random((batch, 1, 28, 28), dtype=np.float32), device=args.device),
            "label": torch.tensor(rng.integers(0, 10, batch).astype(np.float32), device=args.device)}
    bare_loop(solver, args.warmup, feed)
    solver.step(args.warmup, **feed)
    ratios, bare_times, solver_times = [], [], []
    for round_index in range(args.rounds):
        times = {}
        order = ("bare", "solver") if round_index % 2 == 0 else ("solver", "bare")
        for kind in order:
            sync(args.device)
            start = time.perf_counter()
            if kind == "bare":
                bare_loop(solver, args.iters, feed)
            else:
                solver.step(args.iters, **feed)
            sync(args.device)
            times[kind] = time.perf_counter() - start
        ratios.append(times["solver"] / times["bare"])
        bare_times.append(times["bare"] / args.iters)
        solver_times.append(times["solver"] / args.iters)
    return {"batch": batch, "bare_ms": 1e3 * statistics.median(bare_times),
            "solver_ms": 1e3 * statistics.median(solver_times),
            "overhead_pct": 100 * (statistics.median(ratios) - 1),
            "ratio_iqr_pct": 100 * (np.percentile(ratios, 75) - np.percentile(ratios, 25))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256], help="batch sizes (default 64 256)")
    parser.add_argument("--rounds", type=int, default=15, help="paired rounds per batch size (default 15)")
    parser.add_argument("--iters", type=int, default=20, help="iterations per timing (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations first (default 5)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--display", type=int, default=0,
                        help="the solver's display interval (default 0; display values are computed, not printed)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds x {args.iters} iterations, display {args.display}")
    print(f"{'batch':>6} {'bare ms/iter':>13} {'solver ms/iter':>15} {'overhead':>9} {'IQR':>7}")
    for batch in args.batch:
        r = measure(batch, args)
        print(f"{r['batch']:>6} {r['bare_ms']:>13.2f} {r['solver_ms']:>15.2f} {r['overhead_pct']:>8.2f}% "
              f"{r['ratio_iqr_pct']:>6.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

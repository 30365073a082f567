#!/usr/bin/env python
"""Training speed on a GPU: images/s and loss of the paper's MNIST-2D and CIFAR-10 nets, fp32 and AMP.

Run by ``tools/gpu_check.sh`` (which adds nvidia-smi, torch's CUDA information and the GPU unit tests);
runnable alone, and on the CPU for a quick check of the script itself (``--device cpu --iterations 5``).

For each net (``prototxt/paper/<net>/softmax.yaml``, its data layer replaced by an Input layer; an inline
definition when the file is absent) and each mode, a :class:`caffe_like.Solver` (SGD, momentum 0.9,
weight_decay 5e-4, base_lr ``--lr``, lr_policy fixed, the config's lr_mult/decay_mult) trains
``--iterations`` steps after ``--warmup`` untimed ones on generated, learnable data: per class a fixed
random image, plus noise, so the loss falls when training works.  The device machine has no datasets.
Modes: ``fp32``; ``fp32+cl`` (channels_last); ``amp-fp16`` (autocast float16 with loss scaling);
``amp-bf16``; ``amp-bf16+cl``.  Extra rows for MNIST-2D: the same net hand-written in PyTorch
(``tools/bench.py``'s module, torch.optim.SGD) in fp32, the real prefetching Data layer reading a
generated NPZ file (pinned host memory, non-blocking copies), and, as a diagnostic, fp32 with the label
range check of the loss switched off (it reads one value back from the GPU per step).

Printed: one table (net, mode, batch, ms/iteration, images/s, loss at the first and last timed step,
peak GPU memory).  Exit status 1 when a loss is not finite or the loss did not fall in fp32 (with
``--iterations`` >= 50), 0 otherwise.

    python tools/gpu_check.py                            # on CUDA: about a minute on an H100
    python tools/gpu_check.py --device cpu --iterations 5 --nets mnist2d
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench  # noqa: E402  (tools/bench.py: nets, hand-written modules)

from caffe_like.solver import Solver  # noqa: E402

CONFIGS = {"mnist2d": (REPO / "prototxt" / "paper" / "mnist2d" / "softmax.yaml", (1, 28, 28), 256),
           "cifar10": (REPO / "prototxt" / "paper" / "cifar10" / "softmax.yaml", (3, 32, 32), 128)}
MODES = {"fp32": {}, "fp32+cl": {"channels_last": True}, "amp-fp16": {"amp": "float16"},
         "amp-bf16": {"amp": "bfloat16"}, "amp-bf16+cl": {"amp": "bfloat16", "channels_last": True}}


def _bn_block(name, bottom, n, conv=True):
    first = (bench._conv(name, bottom, n, 3, pad=1, filler="msra", param=bench._BIAS2_NODECAY) if conv
             else bench._ip(name, bottom, n, filler="msra", param=bench._BIAS2_NODECAY))
    return [first, {"name": f"{name}_bn", "type": "BatchNorm", "bottom": name, "top": name},
            {"name": f"{name}_scale", "type": "Scale", "bottom": name, "top": name, "scale_param": {"bias_term": True}},
            {"name": f"{name}_prelu", "type": "PReLU", "bottom": name, "top": name}]


def cifar10_inline(batch: int) -> dict:
    """The paper's CIFAR-10 net (Table 1): conv [3x3,64], then 4x[3x3,64], 4x[3x3,128], 4x[3x3,256], each
    stage followed by max pool 2/2, FC 512, classifier 10 (conv -> BatchNorm -> Scale -> PReLU blocks)."""
    layers = _bn_block("conv0", "data", 64)
    bottom = "conv0"
    for stage, width in ((1, 64), (2, 128), (3, 256)):
        for i in range(1, 5):
            layers += _bn_block(f"conv{stage}_{i}", bottom, width)
            bottom = f"conv{stage}_{i}"
        layers.append(bench._pool(f"pool{stage}", bottom))
        bottom = f"pool{stage}"
    layers += _bn_block("fc", bottom, 512, conv=False)
    layers += [bench._ip("classifier", "fc", 10, bias=False, filler="msra", param=[{"lr_mult": 1}]),
               bench._loss("classifier")]
    return {"name": "cifar10_inline", "layer": [bench._input(batch, (3, 32, 32))] + layers}


def net_for(name: str, batch: int) -> tuple[dict, str]:
    path, shape, _ = CONFIGS[name]
    if path.is_file():
        net = bench.config_with_input(path, batch, shape)
        if net is not None:
            return net, str(path.relative_to(REPO))
    if name == "mnist2d":
        return {"name": "mnist2d", "layer": [bench._input(batch)] + bench.mnist2d_layers()}, "inline"
    return cifar10_inline(batch), "inline"


def learnable_batches(shape, batch, count, device, seed=0):
    """``count`` batches: image = (prototype[label] + noise) / 2 (10 classes, unit normal), labels as floats (Caffe's habit)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.standard_normal((10, *shape)).astype(np.float32)
    made = []
    for _ in range(count):
        labels = rng.integers(0, 10, batch)
        images = 0.5 * prototypes[labels] + 0.5 * rng.standard_normal((batch, *shape)).astype(np.float32)
        made.append({"data": torch.tensor(images, device=device),
                     "label": torch.tensor(labels.astype(np.float32), device=device)})
    return made, prototypes


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def solver_for(net: dict, args, **options) -> Solver:
    settings = {"net_param": net, "base_lr": args.lr, "momentum": 0.9, "weight_decay": 0.0005,
                "lr_policy": "fixed", "max_iter": 10 ** 9, "display": 0, "random_seed": 1}
    return Solver(settings, device=args.device, quiet=True, log=False, progress=False, **options)


def timed_solver_run(solver: Solver, feeds, args) -> dict:
    """Warm-up, then ``args.iterations`` timed steps; losses of the first and last timed steps (read from
    the device after the timing)."""
    step = (lambda i: solver.step(1, **feeds[i % len(feeds)])) if feeds else (lambda i: solver.step(1))
    for i in range(args.warmup):
        step(i)
    if torch.device(args.device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(args.device)
    first = None
    start = time.perf_counter()
    for i in range(args.iterations):
        step(i)
        if first is None:
            first = solver.net.loss.detach().clone()
    sync(args.device)
    elapsed = time.perf_counter() - start
    solver._flush_losses()  # raises on a NaN loss
    return {"seconds": elapsed, "loss_first": float(first), "loss_last": float(solver.net.loss.detach())}


def timed_hand_run(name, net, feeds, args) -> dict:
    import torch.nn.functional as F

    solver = solver_for(net, args)
    module, optimizer = bench.make_module(name, solver, args.device, lr=args.lr)
    del solver
    pairs = [(f["data"], f["label"].long()) for f in feeds]
    losses = []

    def step(i):
        optimizer.zero_grad()
        loss = F.cross_entropy(module(pairs[i % len(pairs)][0]), pairs[i % len(pairs)][1])
        loss.backward()
        optimizer.step()
        return loss

    for i in range(args.warmup):
        step(i)
    sync(args.device)
    start = time.perf_counter()
    for i in range(args.iterations):
        loss = step(i)
        if i == 0:
            losses.append(loss.detach().clone())
    sync(args.device)
    return {"seconds": time.perf_counter() - start, "loss_first": float(losses[0]), "loss_last": float(loss)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--nets", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--iterations", type=int, default=200, help="timed steps per row (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (default 20)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 256 MNIST-2D, 128 CIFAR-10)")
    parser.add_argument("--lr", type=float, default=0.01, help="base_lr (default 0.01)")
    parser.add_argument("--no-extras", action="store_true", help="skip the hand-written, Data-layer and diagnostic rows")
    args = parser.parse_args(argv)
    cuda = torch.device(args.device).type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 1
    if cuda:
        torch.backends.cudnn.benchmark = True
    rows, failures = [], []

    def record(net_name, mode, batch, result, source):
        ms = 1e3 * result["seconds"] / args.iterations
        row = {"net": net_name, "mode": mode, "batch": batch, "ms": ms, "img_s": batch / (ms / 1e3),
               "loss_first": result["loss_first"], "loss_last": result["loss_last"],
               "mem_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else float("nan"), "source": source}
        rows.append(row)
        print(f"  {net_name:<8} {mode:<22} {batch:>5} {ms:>9.3f} ms {row['img_s']:>10.0f} img/s  loss "
              f"{row['loss_first']:.4f} -> {row['loss_last']:.4f}", flush=True)
        if not (math.isfinite(row["loss_first"]) and math.isfinite(row["loss_last"])):
            failures.append(f"{net_name} {mode}: loss not finite")
        elif mode == "fp32" and args.iterations >= 50 and not row["loss_last"] < row["loss_first"]:
            failures.append(f"{net_name} {mode}: the loss did not fall ({row['loss_first']} -> {row['loss_last']})")

    for name in args.nets:
        batch = args.batch or CONFIGS[name][2]
        net, source = net_for(name, batch)
        feeds, prototypes = learnable_batches(CONFIGS[name][1], batch, 8, args.device)
        print(f"# {name}: {source}, batch {batch}")
        for mode in args.modes:
            options = MODES[mode]
            if "amp" in options and not cuda:
                continue
            try:
                result = timed_solver_run(solver_for(net, args, **options), feeds, args)
            except Exception as err:  # noqa: BLE001 - report and go on
                failures.append(f"{name} {mode}: {type(err).__name__}: {err}")
                print(f"  {name:<8} {mode:<22} FAILED: {type(err).__name__}: {err}", flush=True)
                continue
            record(name, mode, batch, result, source)
        if name != "mnist2d" or args.no_extras:
            continue
        extras = [("hand-written fp32", timed_hand_run, (name, net, feeds, args)),
                  ("Data layer (NPZ) fp32", data_layer_run, (net, prototypes, batch, args)),
                  ("fp32, no label check", no_label_check_run, (net, feeds, args))]
        for mode, run, run_args in extras:
            try:
                record(name, mode, batch, run(*run_args), source)
            except Exception as err:  # noqa: BLE001
                failures.append(f"{name} {mode}: {type(err).__name__}: {err}")
                print(f"  {name:<8} {mode:<22} FAILED: {type(err).__name__}: {err}", flush=True)

    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"\n## caffe_like training on {device_name} (torch {torch.__version__}, {args.iterations} timed steps "
          f"after {args.warmup}, base_lr {args.lr}, generated data)\n")
    print("| net | mode | batch | ms/iter | images/s | loss first -> last | peak GPU MB |")
    print("|---|---|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['net']} | {r['mode']} | {r['batch']} | {r['ms']:.3f} | {r['img_s']:.0f} | "
              f"{r['loss_first']:.4f} -> {r['loss_last']:.4f} | {r['mem_mb']:.0f} |")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    return 0


def data_layer_run(net: dict, prototypes, batch: int, args) -> dict:
    """MNIST-2D through the prefetching Data layer reading a generated NPZ file (uint8 images)."""
    rng = np.random.default_rng(1)
    count = max(batch * 8, 2048)
    labels = rng.integers(0, 10, count)
    scale = 1 / 64
    images = np.clip(0.5 * (prototypes[labels] + rng.standard_normal((count, *prototypes.shape[1:]))) / scale + 128,
                     0, 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        np.savez(Path(folder) / "train.npz", data=images, label=labels)
        layers = [dict(layer) for layer in net["layer"]]
        layers[0] = {"name": "data", "type": "Data", "top": ["data", "label"],
                     "transform_param": {"mean_value": [128], "scale": scale},
                     "data_param": {"source": str(Path(folder) / "train.npz"), "backend": "NPZ", "batch_size": batch}}
        solver = solver_for({"name": net["name"], "layer": layers}, args)
        try:
            return timed_solver_run(solver, None, args)
        finally:
            for layer in solver.net.layers:
                if hasattr(layer, "close"):
                    layer.close()


def no_label_check_run(net: dict, feeds, args) -> dict:
    """Diagnostic: fp32 with SoftmaxWithLoss's label range check (one device-to-host read) skipped."""
    from caffe_like.layers import softmax_with_loss

    original = softmax_with_loss.labels_as_index
    softmax_with_loss.labels_as_index = lambda labels, count, layer, **_: labels.reshape(-1).long()
    try:
        return timed_solver_run(solver_for(net, args), feeds, args)
    finally:
        softmax_with_loss.labels_as_index = original


if __name__ == "__main__":
    raise SystemExit(main())

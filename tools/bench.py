#!/usr/bin/env python
"""caffe_like's training speed against a hand-written PyTorch module of the same net.

For each net (``--nets``) and batch size (``--batch``), one process builds

* **caffe_like**: the builder-made net (an ``Input`` layer for data and label) trained by
  :class:`caffe_like.Solver` (SGD, momentum 0.9, weight_decay 5e-4, lr_policy fixed, Caffe's lr_mult /
  decay_mult), one ``solver.step(1, data=x, label=y)`` per iteration, fed pre-made batches;
* **hand-written**: a plain ``torch.nn.Module`` of the same net (``nn.Conv2d``, ``nn.MaxPool2d(ceil_mode=True)``,
  ``nn.Linear``, ``nn.PReLU``, ``nn.BatchNorm2d`` (affine, standing for Caffe's BatchNorm + Scale),
  ``F.cross_entropy``) trained by ``torch.optim.SGD`` (momentum 0.9, weight_decay 5e-4, one param group
  per Caffe (lr_mult, decay_mult)) in a plain loop: zero_grad, forward, loss, backward, step;

copies caffe_like's initial weights into the module and checks that the first losses agree (the two are
the same function), then times them in alternating blocks (A B, B A, A B, ... after a warm-up), each block
``--block`` steps (default: about 0.5 s worth).  Reported per (net, batch):

* ``ratio``: the median over rounds of (hand-written time / caffe_like time) for the paired blocks, i.e.
  caffe_like's speed as a fraction of the hand-written one (>= 0.97 is the target), with its IQR;
* ms per step and images/s (medians), achieved GFLOP/s: 3 x the analytic forward FLOPs of the
  convolutions and inner products (2·MACs; training ~ forward + 2 x forward for the backward) per second,
  against the machine's peak (``--peak-ghz`` x cores x 64 fp32 FLOP/cycle with two AVX-512 FMA units);
* with ``--memory``: peak memory of each side in a fresh child process (RSS growth over the process's
  RSS after imports, from ``getrusage``; on CUDA also torch's peak allocated bytes);
* with ``--data-root DIR`` (the folder holding ``mnist/``): caffe_like trained through the real
  prefetching ``Data`` layer (IDX MNIST, scale 1/256), timed against the same hand-written loop fed
  pre-made batches (the data path's cost shows in the ratio).

The paper's MNIST net is read from ``prototxt/paper/mnist/softmax.yaml`` when that file exists and its
learnable blobs have the shapes of the hand-written module (its data layers replaced by an Input layer);
otherwise the same net is defined here (Table 1 of the paper: conv [3x3, 64] x1, then three stages of
[3x3, 64] x3 each followed by max pool 2/2, FC 256, classifier 10 without bias; conv -> BatchNorm ->
Scale -> PReLU blocks, as in the L-Softmax examples).

``scaling`` times caffe_like alone for growing batch sizes and network widths (MNIST-2D's conv widths
scaled), optionally drawing a figure.

Examples::

    python tools/bench.py compare --threads 2 --batch 64 256 --rounds 12 --memory
    python tools/bench.py compare --nets mnist2d --batch 256 --data-root ../shared/data
    python tools/bench.py scaling --threads 2 --batches 1 4 16 64 256 1024 --widths 0.5 1 2 4 \\
        --figure docs/figures/scaling.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from caffe_like.net import Net  # noqa: E402
from caffe_like.solver import Solver  # noqa: E402
from caffe_like.spec.net import NetSpec  # noqa: E402

PAPER_CONFIGS = {"mnist2d": REPO / "prototxt" / "paper" / "mnist2d" / "softmax.yaml",
                 "mnist": REPO / "prototxt" / "paper" / "mnist" / "softmax.yaml"}
NET_NAMES = ("mnist2d", "lenet", "mnist")
TITLES = {"mnist2d": "MNIST-2D", "lenet": "LeNet", "mnist": "paper MNIST"}

# -- the nets as caffe_like layer lists ------------------------------------------------------------------

_BIAS2 = [{"lr_mult": 1}, {"lr_mult": 2}]
_BIAS2_NODECAY = [{"lr_mult": 1, "decay_mult": 1}, {"lr_mult": 2, "decay_mult": 0}]


def _input(batch: int, shape=(1, 28, 28)) -> dict:
    return {"name": "data", "type": "Input", "top": ["data", "label"],
            "input_param": {"shape": [{"dim": [batch, *shape]}, {"dim": [batch]}]}}


def _conv(name, bottom, n, k, *, pad=0, filler="xavier", param=_BIAS2, bias=True) -> dict:
    cp = {"num_output": n, "kernel_size": k, "weight_filler": {"type": filler}, "bias_term": bias}
    if pad:
        cp["pad"] = pad
    return {"name": name, "type": "Convolution", "bottom": bottom, "top": name,
            "param": param if bias else param[:1], "convolution_param": cp}


def _pool(name, bottom) -> dict:
    return {"name": name, "type": "Pooling", "bottom": bottom, "top": name,
            "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}}


def _ip(name, bottom, n, *, bias=True, filler="xavier", param=_BIAS2) -> dict:
    return {"name": name, "type": "InnerProduct", "bottom": bottom, "top": name,
            "param": param if bias else param[:1],
            "inner_product_param": {"num_output": n, "weight_filler": {"type": filler}, "bias_term": bias}}


def _loss(bottom) -> dict:
    return {"name": "loss", "type": "SoftmaxWithLoss", "bottom": [bottom, "label"], "top": "loss"}


def mnist2d_layers(width: float = 1.0) -> list[dict]:
    """The paper's MNIST-2D net (Table 1): conv 5x5x20, pool, conv 5x5x50, pool, FC 2, PReLU, FC 10 (no bias)."""
    c1, c2 = max(1, round(20 * width)), max(1, round(50 * width))
    return [_conv("conv1", "data", c1, 5), _pool("pool1", "conv1"), _conv("conv2", "pool1", c2, 5),
            _pool("pool2", "conv2"), _ip("ip1", "pool2", 2),
            {"name": "prelu1", "type": "PReLU", "bottom": "ip1", "top": "ip1"},
            _ip("ip2", "ip1", 10, bias=False), _loss("ip2")]


def lenet_layers(width: float = 1.0) -> list[dict]:
    """Caffe's examples/mnist/lenet (without its Data layers)."""
    return [_conv("conv1", "data", 20, 5), _pool("pool1", "conv1"), _conv("conv2", "pool1", 50, 5),
            _pool("pool2", "conv2"), _ip("ip1", "pool2", 500),
            {"name": "relu1", "type": "ReLU", "bottom": "ip1", "top": "ip1"},
            _ip("ip2", "ip1", 10), _loss("ip2")]


def _bn_block(name, bottom, n, *, conv=True) -> list[dict]:
    """conv (or FC) -> BatchNorm -> Scale (bias) -> PReLU, all in place after the conv."""
    first = (_conv(name, bottom, n, 3, pad=1, filler="msra", param=_BIAS2_NODECAY) if conv
             else _ip(name, bottom, n, filler="msra", param=_BIAS2_NODECAY))
    return [first,
            {"name": f"{name}_bn", "type": "BatchNorm", "bottom": name, "top": name},
            {"name": f"{name}_scale", "type": "Scale", "bottom": name, "top": name,
             "scale_param": {"bias_term": True}},
            {"name": f"{name}_prelu", "type": "PReLU", "bottom": name, "top": name}]


def mnist_layers(width: float = 1.0) -> list[dict]:
    """The paper's MNIST net (Table 1): conv0 [3x3,64], 3 stages of [3x3,64] x3 + max pool, FC 256, FC 10."""
    n = max(1, round(64 * width))
    layers = _bn_block("conv0", "data", n)
    bottom = "conv0"
    for stage in (1, 2, 3):
        for i in (1, 2, 3):
            name = f"conv{stage}_{i}"
            layers += _bn_block(name, bottom, n)
            bottom = name
        layers.append(_pool(f"pool{stage}", bottom))
        bottom = f"pool{stage}"
    layers += _bn_block("ip1", bottom, 256, conv=False)
    layers += [_ip("ip2", "ip1", 10, bias=False, filler="msra", param=[{"lr_mult": 1}]), _loss("ip2")]
    return layers


LAYERS = {"mnist2d": mnist2d_layers, "lenet": lenet_layers, "mnist": mnist_layers}

# -- the hand-written modules -----------------------------------------------------------------------------


class MNIST2D(nn.Module):
    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c1, c2 = max(1, round(20 * width)), max(1, round(50 * width))
        self.conv1 = nn.Conv2d(1, c1, 5)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.ip1 = nn.Linear(c2 * 16, 2)
        self.prelu1 = nn.PReLU(2)
        self.ip2 = nn.Linear(2, 10, bias=False)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 2, 2, ceil_mode=True)
        x = F.max_pool2d(self.conv2(x), 2, 2, ceil_mode=True)
        return self.ip2(self.prelu1(self.ip1(x.flatten(1))))

    def slots(self):
        """(Caffe layer type, this module's Parameters in Caffe's blob order) in net order."""
        return [("Convolution", [self.conv1.weight, self.conv1.bias]),
                ("Convolution", [self.conv2.weight, self.conv2.bias]),
                ("InnerProduct", [self.ip1.weight, self.ip1.bias]), ("PReLU", [self.prelu1.weight]),
                ("InnerProduct", [self.ip2.weight])]


class LeNet(nn.Module):
    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.ip1 = nn.Linear(800, 500)
        self.ip2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 2, 2, ceil_mode=True)
        x = F.max_pool2d(self.conv2(x), 2, 2, ceil_mode=True)
        return self.ip2(F.relu(self.ip1(x.flatten(1))))

    def slots(self):
        return [(kind, [getattr(self, name).weight, getattr(self, name).bias])
                for kind, name in (("Convolution", "conv1"), ("Convolution", "conv2"), ("InnerProduct", "ip1"),
                                   ("InnerProduct", "ip2"))]


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, conv: bool = True) -> None:
        super().__init__()
        self.op = nn.Conv2d(cin, cout, 3, padding=1) if conv else nn.Linear(cin, cout)
        self.bn = nn.BatchNorm2d(cout) if conv else nn.BatchNorm1d(cout)
        self.prelu = nn.PReLU(cout)

    def forward(self, x):
        return self.prelu(self.bn(self.op(x)))


class PaperMNIST(nn.Module):
    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        n = max(1, round(64 * width))
        self.names = ["conv0"] + [f"conv{s}_{i}" for s in (1, 2, 3) for i in (1, 2, 3)]
        self.blocks = nn.ModuleList([_ConvBlock(1, n)] + [_ConvBlock(n, n) for _ in range(9)])
        self.ip1 = _ConvBlock(n * 16, 256, conv=False)
        self.ip2 = nn.Linear(256, 10, bias=False)

    def forward(self, x):
        x = self.blocks[0](x)
        for stage in range(3):
            for i in range(3):
                x = self.blocks[1 + 3 * stage + i](x)
            x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        return self.ip2(self.ip1(x.flatten(1)))

    def slots(self):
        slots = []
        for block in list(self.blocks) + [self.ip1]:
            slots += [("Convolution" if isinstance(block.op, nn.Conv2d) else "InnerProduct",
                       [block.op.weight, block.op.bias]),
                      ("Scale", [block.bn.weight, block.bn.bias]), ("PReLU", [block.prelu.weight])]
        return slots + [("InnerProduct", [self.ip2.weight])]


MODULES = {"mnist2d": MNIST2D, "lenet": LeNet, "mnist": PaperMNIST}

# -- building both sides ----------------------------------------------------------------------------------

_SOLVER = {"base_lr": 0.001, "momentum": 0.9, "weight_decay": 0.0005, "lr_policy": "fixed", "max_iter": 10 ** 9,
           "display": 0, "random_seed": 1, "type": "SGD"}


def config_with_input(path: Path, batch: int, shape=(1, 28, 28)):
    """A config's TRAIN net with its data layer replaced by an Input layer (tops data, label), as a dict;
    None when it cannot be read or has no single data layer with two tops."""
    try:
        spec = NetSpec.load(path)
        train = spec.filter(spec.state(phase="TRAIN")).to_dict()
    except Exception as err:  # noqa: BLE001 - a config being written may be broken: fall back
        print(f"# {path}: not usable ({type(err).__name__}: {err}); using the inline net", file=sys.stderr)
        return None
    sources = [layer for layer in train.get("layer", []) if not layer.get("bottom")]
    if len(sources) != 1 or len(sources[0].get("top", [])) != 2:
        return None
    rename = dict(zip(sources[0]["top"], ("data", "label")))
    layers = []
    for layer in train["layer"]:
        if layer is sources[0]:
            continue
        bottoms = layer["bottom"] if isinstance(layer["bottom"], list) else [layer["bottom"]]
        layer["bottom"] = [rename.get(b, b) for b in bottoms]
        layers.append(layer)
    return {"name": train.get("name", path.stem), "layer": [_input(batch, shape)] + layers}


def net_definition(name: str, batch: int, width: float = 1.0) -> tuple[dict, str]:
    """(net dict with an Input layer, where it came from): the paper's config file when it exists and
    matches the hand-written module, else the inline definition."""
    path = PAPER_CONFIGS.get(name)
    if path is not None and width == 1.0 and path.is_file():
        net = config_with_input(path, batch)
        if net is not None:
            try:
                probe = Solver({"net_param": net, **_SOLVER}, device="cpu", quiet=True, log=False, progress=False)
                make_module(name, probe, "cpu")
                return net, str(path.relative_to(REPO))
            except (SystemExit, Exception) as err:  # noqa: BLE001
                print(f"# {path} does not match the hand-written module ({err}); using the inline net",
                      file=sys.stderr)
    return {"name": name, "layer": [_input(batch)] + LAYERS[name](width)}, "inline (tools/bench.py)"


def make_solver(name: str, batch: int, device: str, width: float = 1.0, *, net: dict | None = None,
                **solver_options) -> Solver:
    net = net if net is not None else net_definition(name, batch, width)[0]
    return Solver({"net_param": net, **_SOLVER}, device=device, quiet=True, log=False, progress=False,
                  **solver_options)


def make_module(name: str, solver: Solver, device: str, width: float = 1.0, lr: float | None = None):
    """The hand-written module with caffe_like's initial weights, and its torch.optim.SGD.

    The module's ``slots()`` list its learned layers in net order; they are matched one to one with the
    net's layers that have learned blobs (by type and blob shapes), so a config file with other layer
    names still maps, and one with another structure is refused."""
    module = MODULES[name](width)
    slots = module.slots()
    settings = {(lp.layer, lp.index): lp for lp in solver.net.learnable_params()}
    groups: dict[tuple[float, float], list] = {}
    with torch.no_grad():
        for layer_name, layer in solver.net.layer_dict().items():
            if type(layer).__name__ not in ("Convolution", "InnerProduct", "Scale", "PReLU"):
                continue
            if not slots:
                raise SystemExit(f"{name}: the net has more learned layers than the hand-written module")
            kind, params = slots.pop(0)
            blobs = list(layer.blobs)
            if kind != type(layer).__name__ or [b.shape for b in blobs] != [p.shape for p in params]:
                raise SystemExit(f"{name}: layer '{layer_name}' ({type(layer).__name__}) does not match the "
                                 f"hand-written module's {kind}")
            for index, (blob, target) in enumerate(zip(blobs, params)):
                target.copy_(blob.detach())
                lp = settings[(layer_name, index)]
                if lp.lr_mult:
                    groups.setdefault((lp.lr_mult, lp.decay_mult), []).append(target)
    if slots:
        raise SystemExit(f"{name}: the hand-written module has more learned layers than the net")
    module.to(device)
    lr, wd = (_SOLVER["base_lr"] if lr is None else lr), _SOLVER["weight_decay"]
    optimizer = torch.optim.SGD([{"params": params, "lr": lr * lr_mult, "weight_decay": wd * decay_mult}
                                 for (lr_mult, decay_mult), params in groups.items()],
                                lr=lr, momentum=_SOLVER["momentum"], weight_decay=wd)
    return module, optimizer


def hand_step(module, optimizer, x, y) -> torch.Tensor:
    optimizer.zero_grad()
    loss = F.cross_entropy(module(x), y)
    loss.backward()
    optimizer.step()
    return loss


def caffe_options(args) -> dict:
    """Solver speed options from the command line."""
    options = {}
    if getattr(args, "compile", False):
        options["compile"] = True
    if getattr(args, "channels_last", False):
        options["channels_last"] = True
    if getattr(args, "amp", None):
        options["amp"] = args.amp
    return options


def forward_flops(net: Net) -> int:
    """Forward FLOPs per image of the convolutions and inner products (2 per multiply-add)."""
    total = 0
    for layer in net.layers:
        kind = type(layer).__name__
        if kind in ("Convolution", "InnerProduct"):
            weight = layer.blobs[0]
            top = layer.top_shapes[0]
            positions = int(np.prod(top[2:])) if kind == "Convolution" else 1
            total += 2 * weight.numel() * positions
    return total


def batches(batch: int, device: str, count: int = 4, seed: int = 0):
    """Pre-made batches: (caffe_like feed with float labels, hand-written (x, int64 labels))."""
    rng = np.random.default_rng(seed)
    made = []
    for _ in range(count):
        x = torch.tensor(rng.random((batch, 1, 28, 28), dtype=np.float32), device=device)
        y = torch.tensor(rng.integers(0, 10, batch), device=device)
        made.append(({"data": x, "label": y.to(torch.float32)}, (x, y)))
    return made


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


# -- machine ----------------------------------------------------------------------------------------------


def machine(peak_ghz: float | None) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags"))
        info["flags"] = " ".join(f for f in flags if f.startswith(("avx512f", "avx512_bf16", "avx512_fp16", "fma", "amx")))
        mhz = [float(line.split(":", 1)[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
        info["mhz"] = mhz[0] if mhz else None
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    try:
        info["loadavg"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        info["loadavg"] = "?"
    ghz = peak_ghz if peak_ghz else (info.get("mhz") or 2000.0) / 1000.0
    avx512 = "avx512f" in info.get("flags", "")
    per_cycle = 64 if avx512 else 32  # 2 FMA units x 16 (or 8) fp32 lanes x 2 FLOPs
    info["peak_ghz"] = ghz
    info["peak_gflops_all_cores"] = per_cycle * ghz * (os.cpu_count() or 1)
    info["peak_gflops_per_thread"] = per_cycle * ghz
    return info


# -- compare ----------------------------------------------------------------------------------------------


def _timed(fn, steps: int, device: str, clock: str = "wall") -> float:
    """Seconds per step of ``fn(steps)``: wall-clock, or the process's CPU time (``clock="cpu"``)."""
    return _timed2(fn, steps, device)[clock]


def _timed2(fn, steps: int, device: str) -> dict:
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn(steps)
    sync(device)
    return {"wall": (time.perf_counter() - wall) / steps, "cpu": (time.process_time() - cpu) / steps}


def compare_one(name: str, batch: int, args, *, data_layer: bool = False) -> dict:
    device = args.device
    torch.manual_seed(0)
    net, _ = net_definition(name, batch)
    if data_layer:
        net["layer"][0] = {"name": "mnist", "type": "Data", "top": ["data", "label"],
                           "transform_param": {"scale": 0.00390625},
                           "data_param": {"source": "mnist/train", "backend": "IDX", "batch_size": batch}}
        solver = make_solver(name, batch, device, net=net, data_root=args.data_root, **caffe_options(args))
    else:
        solver = make_solver(name, batch, device, net=net, **caffe_options(args))
    module, optimizer = make_module(name, solver, device)
    made = batches(batch, device)
    if args.hand_channels_last:
        module.to(memory_format=torch.channels_last)
        made = [(feed, (x.contiguous(memory_format=torch.channels_last), y)) for feed, (x, y) in made]
    flops = forward_flops(solver.net) * 3 * batch

    # the same function: first losses agree (before any update, with the same batch)
    if not data_layer:
        feed, (x, y) = made[0]
        with torch.no_grad():
            solver.net(**feed)
            ours = float(solver.net.loss)
            theirs = float(F.cross_entropy(module(x), y))
        if abs(ours - theirs) > 1e-4 * max(1.0, abs(theirs)):
            raise SystemExit(f"{name}: caffe_like loss {ours} != hand-written loss {theirs}: not the same net")

    counter = {"i": 0}

    def run_caffe(steps):
        for _ in range(steps):
            if data_layer:
                solver.step(1)
            else:
                solver.step(1, **made[counter["i"] % len(made)][0])
                counter["i"] += 1

    def run_hand(steps):
        for i in range(steps):
            hand_step(module, optimizer, *made[i % len(made)][1])

    # warm-up (both), then a block size of about --block-seconds
    first = _timed(run_caffe, 1, device) + _timed(run_hand, 1, device)
    warm = max(1, args.warmup)
    per_step = min(_timed(run_caffe, warm, device), _timed(run_hand, warm, device)) or first
    block = args.block or max(1, round(args.block_seconds / per_step))
    clock = args.clock or ("cpu" if torch.get_num_threads() == 1 and device == "cpu" else "wall")
    ratios = {"wall": [], "cpu": []}
    caffe_times, hand_times = [], []
    for round_index in range(args.rounds):
        order = (("caffe", run_caffe), ("hand", run_hand))
        if round_index % 2:
            order = order[::-1]
        times = {kind: _timed2(fn, block, device) for kind, fn in order}
        for which in ratios:
            ratios[which].append(times["hand"][which] / times["caffe"][which])
        caffe_times.append(times["caffe"][clock])
        hand_times.append(times["hand"][clock])
    caffe_s, hand_s = statistics.median(caffe_times), statistics.median(hand_times)
    chosen = ratios[clock]
    result = {
        "net": name, "batch": batch, "data_layer": data_layer, "block": block, "rounds": args.rounds,
        "clock": clock, "ratio": statistics.median(chosen),
        "ratio_iqr": float(np.percentile(chosen, 75) - np.percentile(chosen, 25)),
        "ratio_wall": statistics.median(ratios["wall"]), "ratio_cpu": statistics.median(ratios["cpu"]),
        "caffe_ms": 1e3 * caffe_s, "hand_ms": 1e3 * hand_s,
        "caffe_img_s": batch / caffe_s, "hand_img_s": batch / hand_s,
        "caffe_gflops": flops / caffe_s / 1e9, "hand_gflops": flops / hand_s / 1e9,
        "train_gflop_per_step": flops / 1e9,
    }
    if data_layer:
        for layer in solver.net.layers:
            if hasattr(layer, "close"):
                layer.close()
    return result


def memory_child(args) -> None:
    """(hidden) one side's peak memory in this fresh process, printed as JSON.

    The high-water mark of the resident set (``VmHWM``; ``getrusage``'s ru_maxrss would also count the
    parent's pages that a fork shared before the exec) is reset once the net is built and the batches are
    made (``/proc/self/clear_refs``), so the growth is what training itself holds at its peak:
    activations, gradients, the optimizer's history, the allocator's caches."""
    device = args.device
    torch.manual_seed(0)
    solver = make_solver(args.net, args.batch[0], device, net=net_definition(args.net, args.batch[0])[0],
                         **(caffe_options(args) if args.side == "caffe" else {}))
    made = batches(args.batch[0], device)
    if args.side == "hand":
        module, optimizer = make_module(args.net, solver, device)
        del solver
        if args.hand_channels_last:
            module.to(memory_format=torch.channels_last)
            made = [(feed, (x.contiguous(memory_format=torch.channels_last), y)) for feed, (x, y) in made]
        step = lambda i: hand_step(module, optimizer, *made[i % len(made)][1])  # noqa: E731
    else:
        step = lambda i: solver.step(1, **made[i % len(made)][0])  # noqa: E731
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    base = _status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    except OSError:
        pass
    for i in range(args.steps):
        step(i)
    sync(device)
    out = {"rss_base_mb": base / 1024, "hwm_mb": _status_kb("VmHWM") / 1024}
    out["growth_mb"] = out["hwm_mb"] - out["rss_base_mb"]
    if device.startswith("cuda"):
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(out))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_memory(name: str, batch: int, side: str, args) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "_memory", "--nets", name, "--batch", str(batch),
               "--side", side, "--steps", str(args.memory_steps), "--device", args.device,
               "--threads", str(torch.get_num_threads())]
    command += ["--channels-last"] if args.channels_last and side == "caffe" else []
    command += ["--compile"] if args.compile and side == "caffe" else []
    command += ["--amp", args.amp] if args.amp and side == "caffe" else []
    command += ["--hand-channels-last"] if args.hand_channels_last and side == "hand" else []
    command += ["--malloc", args.malloc]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(args) -> int:
    info = machine(args.peak_ghz)
    print(f"# {info['cpu']}, {info['cores']} cores, flags: {info.get('flags', '')}")
    print(f"# torch {info['torch']}, {info['threads']} thread(s), device {args.device}, load average "
          f"{info['loadavg']}; peak fp32 {info['peak_gflops_per_thread'] * info['threads']:.0f} GFLOP/s for "
          f"{info['threads']} thread(s) at {info['peak_ghz']:.2f} GHz (64 FLOP/cycle/core)")
    print(f"# caffe_like options: {caffe_options(args) or 'none'}; hand-written: "
          f"{'channels_last' if args.hand_channels_last else 'plain'}; malloc: {args.malloc}")
    results = []
    for name in args.nets:
        source = net_definition(name, args.batch[0])[1]
        print(f"# {TITLES[name]}: {source}")
        for batch in args.batch:
            row = compare_one(name, batch, args)
            if args.memory:
                row["mem_caffe"] = measure_memory(name, batch, "caffe", args)
                row["mem_hand"] = measure_memory(name, batch, "hand", args)
            results.append(row)
            _print_row(row, info)
        if args.data_root and name != "mnist" or (args.data_root and args.data_nets_all):
            for batch in args.batch:
                row = compare_one(name, batch, args, data_layer=True)
                results.append(row)
                _print_row(row, info)
    info["loadavg_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"# load average at the end: {info['loadavg_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "args": vars(args) | {"func": None},
                                               "results": results}, indent=1))
    return 0


def _print_row(r: dict, info: dict) -> None:
    if not getattr(_print_row, "header", False):
        print(f"# ratio = hand-written time / caffe_like time (median of paired blocks, clock: {r['clock']}); "
              f"ms, img/s and GFLOP/s from the same clock's medians; memory = peak RSS growth")
        print(f"{'net':<12} {'feed':<6} {'batch':>5} {'ratio':>6} {'IQR':>6} {'caffe ms':>9} {'hand ms':>8} "
              f"{'caffe img/s':>11} {'hand img/s':>10} {'caffe GF/s':>10} {'hand GF/s':>9} {'%peak':>6} "
              f"{'mem caffe MB':>12} {'mem hand MB':>11}")
        _print_row.header = True
    peak = info["peak_gflops_per_thread"] * info["threads"]
    mem = lambda m: f"{m['growth_mb']:.0f}" if m else "-"  # noqa: E731
    print(f"{TITLES[r['net']]:<12} {'Data' if r['data_layer'] else 'Input':<6} {r['batch']:>5} {r['ratio']:>6.3f} "
          f"{r['ratio_iqr']:>6.3f} {r['caffe_ms']:>9.2f} {r['hand_ms']:>8.2f} {r['caffe_img_s']:>11.0f} "
          f"{r['hand_img_s']:>10.0f} {r['caffe_gflops']:>10.1f} {r['hand_gflops']:>9.1f} "
          f"{100 * r['caffe_gflops'] / peak:>5.1f}% {mem(r.get('mem_caffe')):>12} {mem(r.get('mem_hand')):>11}",
          flush=True)


# -- scaling ----------------------------------------------------------------------------------------------


VARIANTS = {"plain": {}, "channels_last": {"channels_last": True}}


def scaling(args) -> int:
    info = machine(args.peak_ghz)
    print(f"# {info['cpu']}, torch {info['torch']}, {info['threads']} thread(s), load average {info['loadavg']}, "
          f"malloc: {args.malloc}")
    clock = args.clock or ("cpu" if torch.get_num_threads() == 1 and args.device == "cpu" else "wall")
    print(f"# caffe_like alone, {args.net}, median of {args.rounds} blocks of ~{args.block_seconds} s "
          f"(clock: {clock})")
    rows = []

    def time_config(variant, batch, width):
        solver = make_solver(args.net, batch, args.device, width, **VARIANTS[variant])
        feed = batches(batch, args.device, count=1)[0][0]
        flops = forward_flops(solver.net) * 3 * batch
        one = _timed(lambda n: solver.step(n, **feed), max(1, args.warmup), args.device)
        steps = max(2, round(args.block_seconds / one))
        times = [_timed(lambda n: solver.step(n, **feed), steps, args.device, clock) for _ in range(args.rounds)]
        t = statistics.median(times)
        row = {"variant": variant, "batch": batch, "width": width, "ms": 1e3 * t, "us_per_image": 1e6 * t / batch,
               "gflops": flops / t / 1e9, "train_gflop": flops / 1e9}
        rows.append(row)
        print(f"{variant:<14} {batch:>6} {width:>6.2f} {row['ms']:>10.2f} {row['us_per_image']:>10.1f} "
              f"{row['train_gflop']:>10.3f} {row['gflops']:>8.1f}", flush=True)

    print(f"{'variant':<14} {'batch':>6} {'width':>6} {'ms/iter':>10} {'us/image':>10} {'GFLOP/it':>10} {'GFLOP/s':>8}")
    for variant in args.variants:
        for batch in args.batches:
            time_config(variant, batch, 1.0)
        for width in args.widths:
            if width != 1.0 or args.width_batch not in args.batches:
                time_config(variant, args.width_batch, width)
    info["loadavg_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"# load average at the end: {info['loadavg_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    if args.figure:
        _figure(rows, args)
    return 0


def _figure(rows, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, variant in enumerate(args.variants):
        color = f"C{index}"
        by_batch = sorted((r for r in rows if r["width"] == 1.0 and r["variant"] == variant), key=lambda r: r["batch"])
        a.loglog([r["batch"] for r in by_batch], [r["ms"] for r in by_batch], "o-", color=color,
                 label=f"{variant}: ms / iteration")
        a.loglog([r["batch"] for r in by_batch], [r["us_per_image"] / 1e3 for r in by_batch], "s--", color=color,
                 label=f"{variant}: ms / image")
        by_width = sorted((r for r in rows if r["batch"] == args.width_batch and r["variant"] == variant),
                          key=lambda r: r["width"])
        b.loglog([r["width"] for r in by_width], [r["ms"] for r in by_width], "o-", color=color,
                 label=f"{variant}: ms / iteration")
        unit = [r for r in by_width if r["width"] == 1.0]
        if unit:  # where time would be if it grew like the FLOPs from width x1
            b.loglog([r["width"] for r in by_width], [unit[0]["ms"] * r["train_gflop"] / unit[0]["train_gflop"]
                                                      for r in by_width], ":", color=color,
                     label=f"{variant}: x1 time scaled by FLOPs")
    a.set_xlabel("batch size")
    a.set_title(f"{TITLES[args.net]} (conv widths x1)")
    a.legend(fontsize=8)
    a.grid(True, which="both", alpha=0.3)
    b.set_xlabel("conv width multiplier (x1 = 20 / 50 channels)")
    b.set_title(f"{TITLES[args.net]}, batch {args.width_batch}")
    b.legend(fontsize=8, loc="upper left")
    b.grid(True, which="both", alpha=0.3)
    info = machine(args.peak_ghz)
    fig.suptitle(f"caffe_like training step (Solver.step), {info['cpu']}, {info['threads']} thread(s), "
                 f"torch {info['torch']}", fontsize=9)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    for axis in (a.xaxis, a.yaxis, b.xaxis, b.yaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    b.set_xticks([w for w in sorted({r["width"] for r in rows if r["batch"] == args.width_batch})])
    fig.tight_layout()
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)
    print(f"# figure: {args.figure}")


# -- command line -----------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
        p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
        p.add_argument("--rounds", type=int, default=10, help="timed rounds (default 10)")
        p.add_argument("--warmup", type=int, default=3, help="untimed steps of each side first (default 3)")
        p.add_argument("--block-seconds", type=float, default=0.5,
                       help="length of a timed block when --block is not given (default 0.5 s)")
        p.add_argument("--peak-ghz", type=float, default=None,
                       help="clock for the peak FLOP rate (default: /proc/cpuinfo's cpu MHz)")
        p.add_argument("--json", help="also write the results to this JSON file")
        p.add_argument("--malloc", choices=("default", "tuned"), default="default",
                       help="glibc malloc as it is, or with caffe_like.solver.malloc.tune_malloc() (no page faults "
                            "per iteration) for both sides")
        p.add_argument("--clock", choices=("wall", "cpu"), default=None,
                       help="what a block's time is: wall-clock, or the process's CPU time, which a loaded "
                            "machine disturbs less (default: cpu with 1 thread on the CPU, else wall)")

    c = sub.add_parser("compare", help="caffe_like vs hand-written PyTorch (the table)")
    common(c)
    c.add_argument("--nets", nargs="+", choices=NET_NAMES, default=list(NET_NAMES))
    c.add_argument("--batch", type=int, nargs="+", default=[64, 256], help="batch sizes (default 64 256)")
    c.add_argument("--block", type=int, default=None, help="steps per timed block (default: ~--block-seconds)")
    c.add_argument("--memory", action="store_true", help="peak memory of each side in child processes")
    c.add_argument("--memory-steps", type=int, default=5, help="steps run by the memory probe (default 5)")
    c.add_argument("--data-root", help="folder holding mnist/ (IDX): also time the prefetching Data layer")
    c.add_argument("--data-nets-all", action="store_true",
                   help="with --data-root, time the paper MNIST net through the Data layer too")
    c.add_argument("--compile", action="store_true", help="caffe_like with torch.compile (Solver(compile=True))")
    c.add_argument("--channels-last", action="store_true", help="caffe_like with Solver(channels_last=True)")
    c.add_argument("--amp", choices=("float16", "bfloat16"), help="caffe_like with Solver(amp=...) (CUDA)")
    c.add_argument("--hand-channels-last", action="store_true",
                   help="the hand-written module and its inputs in channels_last too")
    c.set_defaults(func=compare)

    s = sub.add_parser("scaling", help="caffe_like time per iteration vs batch size and width")
    common(s)
    s.add_argument("--net", choices=NET_NAMES, default="mnist2d")
    s.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    s.add_argument("--widths", type=float, nargs="+", default=[0.5, 1, 2, 4],
                   help="conv width multipliers (default 0.5 1 2 4)")
    s.add_argument("--width-batch", type=int, default=256, help="batch size of the width sweep (default 256)")
    s.add_argument("--figure", help="draw the two curves into this PNG")
    s.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["plain"],
                   help="caffe_like settings to sweep (default plain; channels_last too)")
    s.set_defaults(func=scaling)

    m = sub.add_parser("_memory", help=argparse.SUPPRESS)
    common(m)
    m.add_argument("--nets", dest="net", choices=NET_NAMES, required=True)
    m.add_argument("--batch", type=int, nargs=1, required=True)
    m.add_argument("--side", choices=("caffe", "hand"), required=True)
    m.add_argument("--steps", type=int, default=5)
    m.add_argument("--channels-last", action="store_true")
    m.add_argument("--compile", action="store_true")
    m.add_argument("--amp", default=None)
    m.add_argument("--hand-channels-last", action="store_true")
    m.set_defaults(func=memory_child)

    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.malloc == "tuned":
        try:
            from caffe_like.solver.malloc import tune_malloc
        except ImportError:  # (a tree without it: the environment variables do the same)
            print("# --malloc tuned: set MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824",
                  file=sys.stderr)
        else:
            if not tune_malloc():
                print("# --malloc tuned: no glibc mallopt here; allocator left as it is", file=sys.stderr)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-layer timing of a net, as Caffe's ``caffe time`` reports it.

Caffe times each layer's Forward (in order) and Backward (in reverse order) separately.  Here every
layer runs on detached copies of its bottoms, so that its backward (``torch.autograd.grad`` of its own
tops, seeded with the loss weight for loss tops and ones elsewhere) is timed on its own; the
forward-backward of the whole net (``net(**inputs)`` then ``net.loss.backward()``) is timed too.
On CUDA every measurement is synchronised.  Times are milliseconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .net import Net

__all__ = ["LayerTiming", "TimingReport", "time_net", "random_inputs"]


@dataclass
class LayerTiming:
    name: str
    type: str
    forward_ms: float = 0.0
    backward_ms: float = 0.0


@dataclass
class TimingReport:
    """Averages over ``iterations`` (milliseconds)."""

    iterations: int
    layers: list[LayerTiming]
    forward_ms: float
    backward_ms: float
    forward_backward_ms: float
    total_ms: float
    per_iteration_ms: list[float] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"Iteration: {i + 1} forward-backward time: {t:.4g} ms."
                 for i, t in enumerate(self.per_iteration_ms)]
        lines.append("Average time per layer:")
        width = max((len(layer.name) for layer in self.layers), default=0)
        for layer in self.layers:
            lines.append(f"{layer.name:>{width}}\tforward: {layer.forward_ms:.5g} ms.")
            lines.append(f"{layer.name:>{width}}\tbackward: {layer.backward_ms:.5g} ms.")
        lines += [
            f"Average Forward pass: {self.forward_ms:.5g} ms.",
            f"Average Backward pass: {self.backward_ms:.5g} ms.",
            f"Average Forward-Backward: {self.forward_backward_ms:.5g} ms.",
            f"Total Time: {self.total_ms:.5g} ms.",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "iterations": self.iterations,
            "layers": [vars(layer) for layer in self.layers],
            "forward_ms": self.forward_ms,
            "backward_ms": self.backward_ms,
            "forward_backward_ms": self.forward_backward_ms,
            "total_ms": self.total_ms,
        }


def random_inputs(net: Net, *, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Inputs for every Input top: N(0, 1) data, and zeros for tops that only feed label bottoms
    (class 0 is valid for every classifier)."""
    label_only = {}
    for record in net._records:
        for index, bottom in enumerate(record.bottoms):
            is_label = index in record.layer.NO_GRAD_BOTTOMS
            label_only[bottom] = label_only.get(bottom, True) and is_label
    anchor = net._anchor
    inputs = {}
    for name in net.input_names:
        shape = net.blob_shapes[name]
        if label_only.get(name, False):
            inputs[name] = torch.zeros(shape, dtype=anchor.dtype, device=anchor.device)
        else:
            inputs[name] = torch.randn(shape, generator=generator, dtype=anchor.dtype).to(anchor.device)
    return inputs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    _sync(device)
    start = time.perf_counter()
    result = fn()
    _sync(device)
    return result, (time.perf_counter() - start) * 1000.0


def _layer_pass(net: Net, inputs: dict, timings: list[LayerTiming], device) -> None:
    """One forward (in order) and backward (reverse order) of every layer, each timed on its own."""
    blobs: dict[str, torch.Tensor] = {}
    saved = []
    for record, timing in zip(net._records, timings):
        if record.is_source:
            fed = [inputs.get(t) for t in record.tops]
            if all(v is not None for v in fed):
                tops, elapsed = _timed(lambda fed=fed: tuple(fed), device)
            else:
                tops, elapsed = _timed(record.layer, device)
            bottoms = []
        else:
            bottoms = [blobs[b].detach().requires_grad_(blobs[b].is_floating_point() and not d)
                       for b, d in zip(record.bottoms, record.detach)]
            tops, elapsed = _timed(lambda r=record, b=bottoms: r.layer(*b), device)
        tops = (tops,) if isinstance(tops, torch.Tensor) else tuple(tops)
        timing.forward_ms += elapsed
        for name, top in zip(record.tops, tops):
            blobs[name] = top
        saved.append((record, bottoms, tops))
    for (record, bottoms, tops), timing in zip(reversed(saved), reversed(timings)):
        weights = dict(record.loss_terms)
        outputs, seeds = [], []
        for index, top in enumerate(tops):
            if top.requires_grad:
                outputs.append(top)
                seeds.append(torch.full_like(top, weights.get(index, 1.0)))
        wrt = [b for b in bottoms if b.requires_grad] + [p for p in record.layer.blobs if p.requires_grad]
        if not outputs or not wrt:
            continue
        _, elapsed = _timed(lambda o=outputs, w=wrt, s=seeds: torch.autograd.grad(o, w, s, allow_unused=True),
                            device)
        timing.backward_ms += elapsed


def time_net(net: Net, iterations: int = 50, *, inputs: dict | None = None) -> TimingReport:
    """Caffe's ``time``: one warm-up, then ``iterations`` timed passes (see the module docstring)."""
    device = net._anchor.device
    inputs = inputs if inputs is not None else random_inputs(net)
    timings = [LayerTiming(name, record.spec.type) for name, record in zip(net.layer_names, net._records)]
    warmup = [LayerTiming(t.name, t.type) for t in timings]
    _layer_pass(net, inputs, warmup, device)
    net(**inputs)
    net.loss.backward()
    per_iteration = []
    start = time.perf_counter()
    for _ in range(iterations):
        _layer_pass(net, inputs, timings, device)

        def whole():
            net.zero_grad(set_to_none=True)
            net(**inputs)
            if net.loss.requires_grad:
                net.loss.backward()

        _, elapsed = _timed(whole, device)
        per_iteration.append(elapsed)
    total = (time.perf_counter() - start) * 1000.0
    for timing in timings:
        timing.forward_ms /= iterations
        timing.backward_ms /= iterations
    return TimingReport(
        iterations=iterations,
        layers=timings,
        forward_ms=sum(t.forward_ms for t in timings),
        backward_ms=sum(t.backward_ms for t in timings),
        forward_backward_ms=sum(per_iteration) / max(iterations, 1),
        total_ms=total,
        per_iteration_ms=per_iteration,
    )

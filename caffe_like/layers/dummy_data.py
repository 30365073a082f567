"""DummyData: tops of declared shapes filled by fillers (benchmarks, tests, placeholder inputs).

    top_i = filler_i(shape_i)

Shape: ``shape`` given once for every top or once per top; or the legacy ``num``, ``channels``,
``height``, ``width`` (each once or once per top, all four needed) for (num, channels, height, width).
Fillers: ``data_filler`` given 0 times (constant 0), once (for every top) or once per top.

A ``constant`` filler fills its top once, at setup; any other filler refills its top on **every
forward** (Caffe's ``refill_``; ``bilinear``, deterministic, is filled once too, which gives the same
values).  Random fills draw from torch's global CPU generator at forward time, in float64, then are cast
to the net's dtype and moved to its device: ``torch.manual_seed`` reproduces them, a seed gives the same
data in float32 and float64 and on CPU and CUDA, and a solver's saved RNG state covers them.  The tops
carry no gradient.

See: Caffe dummy_data_layer.cpp.
NOTE: unlike the net's learnable blobs, which are filled once from the build generator (the net's
seed), the per-forward draws use torch's global generator: a refill happens at run time, long after the
build, and the global generator is the one a solver snapshot saves and a test reseeds.
"""

from __future__ import annotations

import torch

from ..fillers import fill
from ..spec.params import FillerParameter
from .base import Layer
from .registry import register_layer


@register_layer
class DummyData(Layer):
    TYPE = "DummyData"
    BOTTOMS = (0, 0)
    TOPS = (1, None)

    def setup(self, bottom_shapes):
        p = self.param("dummy_data_param")
        n_tops = len(self.spec.top)
        if len(p.data_filler) not in (0, 1, n_tops):
            raise self.fail(f"{len(p.data_filler)} data_filler blocks for {n_tops} tops", shape=False,
                            fix="give no data_filler (constant 0), one for every top, or one per top")
        legacy = {name: getattr(p, name) for name in ("num", "channels", "height", "width")}
        if any(legacy.values()):
            if p.shape:
                raise self.fail("both shape and the legacy num/channels/height/width are given", shape=False,
                                fix="use shape { dim: ... } only")
            for name, values in legacy.items():
                if len(values) not in (1, n_tops):
                    raise self.fail(f"'{name}' is given {len(values)} times for {n_tops} tops", shape=False,
                                    fix=f"give '{name}' once, or once per top")
            self.shapes = [tuple(int(v[0 if len(v) == 1 else i]) for v in legacy.values()) for i in range(n_tops)]
        else:
            if len(p.shape) not in (1, n_tops):
                raise self.fail(f"{len(p.shape)} shape blocks for {n_tops} tops", shape=False,
                                fix="give shape once for every top, or once per top")
            self.shapes = [tuple(int(d) for d in p.shape[0 if len(p.shape) == 1 else i].dim) for i in range(n_tops)]
        for top, shape in zip(self.spec.top, self.shapes):
            if any(d < 0 for d in shape):
                raise self.fail(f"top '{top}' has shape {list(shape)}: dims must be >= 0", shape=False)
        if p.data_filler:
            self.fillers = [p.data_filler[0 if len(p.data_filler) == 1 else i] for i in range(n_tops)]
        else:
            self.fillers = [FillerParameter(type="constant", value=0.0)] * n_tops
        # Deterministic tops (constant; bilinear, whose refill would give the same values) are filled once
        # into buffers, which follow .to(device/dtype); the anchor gives the random tops theirs.
        self.register_buffer("_anchor", torch.zeros((), dtype=self.ctx.dtype), persistent=False)
        self._fixed = {}
        for i, (filler, shape) in enumerate(zip(self.fillers, self.shapes)):
            if filler.type in ("constant", "bilinear"):
                name = f"_top{i}"
                self.register_buffer(name, fill(filler, shape, dtype=self.ctx.dtype), persistent=False)
                self._fixed[i] = name
            else:  # check the filler now (type, sparse) without touching the global generator
                fill(filler, (1,), dtype=self.ctx.dtype, generator=torch.Generator())

    def infer_shapes(self, bottom_shapes):
        return self.shapes

    def forward(self):
        anchor = self._anchor
        tops = []
        for i, (filler, shape) in enumerate(zip(self.fillers, self.shapes)):
            if i in self._fixed:
                tops.append(getattr(self, self._fixed[i]))
            else:
                # drawn in float64 so that a seed gives the same data in every dtype and on every device
                tops.append(fill(filler, shape, dtype=torch.float64).to(device=anchor.device, dtype=anchor.dtype))
        return tuple(tops)

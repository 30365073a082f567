"""Input: the net's inputs, with their shapes declared (``input_param { shape { dim: ... } }``).

Shape: one ``shape`` for all tops, one per top, or (Caffe allows it) none — caffe_like needs the shapes
to build the layers after it, so a missing shape is an error here.  The data are given when the net
runs: ``net(data=x)``; the batch size may differ from the declared one.
"""

from __future__ import annotations

from .base import Layer
from .registry import register_layer


@register_layer
class Input(Layer):
    TYPE = "Input"
    BOTTOMS = (0, 0)
    TOPS = (1, None)

    def setup(self, bottom_shapes):
        shapes = self.param("input_param").shape
        n_tops = len(self.spec.top)
        if len(shapes) not in (1, n_tops):
            raise self.fail(
                f"input_param gives {len(shapes)} shapes for {n_tops} tops",
                fix="give one shape for all tops or exactly one per top",
                shape=False,
            )
        self.shapes = [tuple(shapes[0].dim if len(shapes) == 1 else shapes[i].dim) for i in range(n_tops)]
        for top, shape in zip(self.spec.top, self.shapes):
            if any(d <= 0 for d in shape):
                raise self.fail(f"top '{top}' has shape {list(shape)}: every dim must be > 0", shape=False,
                                fix="declare input_param { shape { dim: N dim: C ... } }")

    def infer_shapes(self, bottom_shapes):
        return self.shapes

    def forward(self):
        raise self.fail(f"net input(s) {', '.join(self.spec.top)} must be given when the net runs",
                        fix="call net(name=tensor, ...)", shape=False)

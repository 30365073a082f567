"""Eltwise: combine two or more same-shaped bottoms element by element.

    SUM:  y = Σ_i coeff_i · x_i                 dx_i = coeff_i · dy            (coeff default all 1)
    PROD: y = Π_i x_i                           dx_i = dy · Π_{j≠i} x_j        (stable_prod_grad: true)
                                                dx_i = dy · y / x_i            (stable_prod_grad: false)
    MAX:  y = max_i x_i                         dx_w = dy for the winning bottom w, 0 for the others

Shape: every bottom has exactly the same shape (BVLC master checks it); the top has that shape.

MAX picks its winner as Caffe's loop does: between bottoms 0 and 1 the test is the strict ``x0 > x1``, so
a tie goes to **bottom 1**; every later bottom must be strictly greater than the running maximum, so for
bottoms 2, 3, ... the earlier winner keeps ties.  The whole gradient goes to the winner.

See: Caffe eltwise_layer.cpp.
NOTE: unlike PyTorch, ties in MAX are not split: ``torch.maximum`` sends half of the gradient to each
tied input, Caffe (and this layer) sends all of it to one.  The winner is selected with a chain of
``torch.where``, whose gradient flows only into the selected branch.
NOTE: unlike BVLC Caffe, which rejects ``coeff`` only for PROD and silently ignores it for MAX,
``coeff`` with MAX is an error here too (it would have no effect).
"""

from __future__ import annotations

import torch

from .base import Layer
from .registry import register_layer


class _UnstableProd(torch.autograd.Function):
    """PROD with ``stable_prod_grad: false``: Caffe's gradient ``dy · y / x_i`` (inf/NaN where x_i = 0)."""

    @staticmethod
    def forward(ctx, *xs):
        y = xs[0] * xs[1]
        for x in xs[2:]:
            y = y * x
        ctx.save_for_backward(y, *xs)
        return y

    @staticmethod
    def backward(ctx, dy):
        y, *xs = ctx.saved_tensors
        return tuple(dy * y / x if ctx.needs_input_grad[i] else None for i, x in enumerate(xs))


@register_layer
class Eltwise(Layer):
    TYPE = "Eltwise"
    BOTTOMS = (2, None)

    def setup(self, bottom_shapes):
        p = self.param("eltwise_param")
        self.operation = p.operation
        n = len(bottom_shapes)
        if p.coeff and len(p.coeff) != n:
            raise self.fail(f"eltwise_param gives {len(p.coeff)} coeff values for {n} bottoms", shape=False,
                            fix="give exactly one coeff per bottom (or none)")
        if p.coeff and self.operation != "SUM":
            raise self.fail(f"coeff is only for operation SUM, not {self.operation}", shape=False,
                            fix="remove coeff, or use operation: SUM")
        self.coeffs = [float(c) for c in p.coeff] if p.coeff else [1.0] * n
        self.stable_prod_grad = p.stable_prod_grad
        self._check_shapes(bottom_shapes)

    def _check_shapes(self, shapes):
        first = tuple(shapes[0])
        for i, shape in enumerate(shapes[1:], start=1):
            if tuple(shape) != first:
                listed = ", ".join(f"bottom {j} {list(s)}" for j, s in enumerate(shapes))
                raise self.fail(f"all bottoms must have the same shape, but bottom {i} has {list(shape)} and "
                                f"bottom 0 has {list(first)} ({listed})",
                                fix="make the bottoms the same shape (Eltwise does not broadcast)")

    def infer_shapes(self, bottom_shapes):
        self._check_shapes(bottom_shapes)
        return [tuple(bottom_shapes[0])]

    def forward(self, *xs):
        if any(x.shape != xs[0].shape for x in xs[1:]):  # runtime batch sizes: never broadcast
            self._check_shapes([tuple(x.shape) for x in xs])
        if self.operation == "SUM":
            c0 = self.coeffs[0]
            y = xs[0] if c0 == 1.0 else xs[0] * c0
            for x, c in zip(xs[1:], self.coeffs[1:]):
                y = torch.add(y, x, alpha=c) if c != 1.0 else y + x
            return (y,)
        if self.operation == "PROD":
            if not self.stable_prod_grad:
                return (_UnstableProd.apply(*xs),)
            y = xs[0] * xs[1]
            for x in xs[2:]:
                y = y * x
            return (y,)
        # MAX: Caffe's winner rule; torch.where routes the whole gradient to the selected input.
        y = torch.where(xs[0] > xs[1], xs[0], xs[1])
        for x in xs[2:]:
            y = torch.where(x > y, x, y)
        return (y,)

"""Element-wise activations (Caffe's NeuronLayers): y = f(x), same shape as x.

| type      | forward                                                   | gradient dy/dx                          |
|-----------|-----------------------------------------------------------|-----------------------------------------|
| ReLU      | max(x, 0) + negative_slope * min(x, 0)                    | 1 if x > 0 else negative_slope          |
| PReLU     | max(x, 0) + a_c * min(x, 0), a_c learned per channel      | 1 if x > 0 else a_c                     |
| ELU       | x if x > 0 else alpha * (exp(x) - 1)                      | 1 if x > 0 else y + alpha               |
| Sigmoid   | 1 / (1 + exp(-x))                                         | y (1 - y)                               |
| TanH      | tanh(x)                                                   | 1 - y²                                  |
| AbsVal    | abs(x)                                                    | sign(x) (0 at 0)                        |
| Power     | (shift + scale * x) ^ power                               | scale * power * (shift + scale x)^(p-1) |
| Exp       | base ^ (shift + scale * x)  (base -1 means e)             | y * ln(base) * scale                    |
| Log       | log_base(shift + scale * x)  (base -1 means e)            | scale / (ln(base) (shift + scale x))    |
| BNLL      | x + log(1 + exp(-x)) if x > 0 else log(1 + exp(x))        | sigmoid(min(x, 50))                     |
| Threshold | 1 if x > threshold else 0                                 | none (see below)                        |
| Clip      | max(min, min(x, max))                                     | 1 if min <= x <= max else 0             |
| Swish     | x * sigmoid(beta * x)                                     | beta y + sigmoid(beta x) (1 - beta y)   |

Shape: top = bottom, any number of axes (PReLU needs >= 2: its channel axis is 1).  PReLU's blob is the
slopes [C], or shape [] with ``channel_shared``; default filler constant 0.25; their gradient is
da_c = Σ dy·x·[x <= 0] over every position of channel c (all positions when shared).

Gradients at the kinks are Caffe's: ReLU/PReLU use the negative slope at x == 0, ELU gives alpha at 0,
AbsVal 0 at 0, Clip passes the gradient at x == min and x == max (torch's relu, leaky_relu, prelu, elu,
abs and clamp have exactly these conventions; tests/layers/test_neuron.py pins them).

NOTE: unlike Caffe, Threshold has a gradient of zero (its output carries no autograd graph): Caffe's
Backward is NOT_IMPLEMENTED and aborts the program when a gradient is requested; the step function's
derivative is 0 almost everywhere, so layers below it simply receive nothing through it.
NOTE: BVLC master computes Sigmoid as 0.5 * tanh(0.5 x) + 0.5; caffe_like uses ``torch.sigmoid`` (same
function, differences at rounding level only, e.g. Caffe's float32 sigmoid(-20) is exactly 0).
NOTE: Power's backward at a zero base: Caffe divides y / (shift + scale x) and gets 0/0 = NaN; caffe_like
gives the analytic value (autograd of ``torch.pow``).  Everywhere else the gradients are Caffe's.
NOTE: unlike ``torch.clamp`` (which returns ``max`` everywhere when min > max), Clip follows Caffe's
max(min, min(x, max)) and returns ``min`` everywhere in that case.
NOTE: as Caffe, AbsVal refuses in-place use (top named like its bottom).

See: Caffe relu_layer.cpp, prelu_layer.cpp, elu_layer.cpp, sigmoid_layer.cpp, tanh_layer.cpp,
absval_layer.cpp, power_layer.cpp, exp_layer.cpp, log_layer.cpp, bnll_layer.cpp, threshold_layer.cpp,
clip_layer.cpp, swish_layer.cpp (BVLC master).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Layer
from .registry import register_layer

#: Caffe's kBNLL_THRESHOLD: above it BNLL is the identity and its gradient 1
BNLL_THRESHOLD = 50.0


def _constant_like(x: torch.Tensor, value: float) -> torch.Tensor:
    """A tensor like ``x`` filled with ``value`` whose gradient to ``x`` is exactly 0 (no NaN from inf/NaN
    inputs, unlike ``0 * x``), so a net built around it still back-propagates."""
    return torch.where(torch.zeros_like(x, dtype=torch.bool), x, torch.full_like(x, value))


class _Neuron(Layer):
    """One bottom, one top of the same shape."""

    def infer_shapes(self, bottom_shapes):
        return [bottom_shapes[0]]


@register_layer
class ReLU(_Neuron):
    TYPE = "ReLU"

    def setup(self, bottom_shapes):
        self.negative_slope = float(self.param("relu_param").negative_slope)

    def forward(self, x):
        if self.negative_slope == 0.0:
            return (F.relu(x),)
        return (F.leaky_relu(x, self.negative_slope),)


@register_layer
class PReLU(_Neuron):
    TYPE = "PReLU"

    def setup(self, bottom_shapes):
        p = self.param("prelu_param")
        shape = bottom_shapes[0]
        if len(shape) < 2:
            raise self.fail(f"PReLU needs a bottom with at least 2 axes (channels on axis 1), got {list(shape)}",
                            fix="reshape the input to (N, C, ...)")
        self.channel_shared = p.channel_shared
        self.channels = shape[1]
        self.add_blob(() if self.channel_shared else (self.channels,), p.filler, default_value=0.25)

    def infer_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) < 2 or (not self.channel_shared and shape[1] != self.channels):
            raise self.fail(f"bottom shape {list(shape)} does not match the {self.channels} channel slopes")
        return [shape]

    def forward(self, x):
        slopes = self.blobs[0]
        # a 0-d slope is fine for F.prelu, but the TorchScript ONNX exporter wants a 1-element vector
        return (F.prelu(x, slopes.reshape(1) if self.channel_shared else slopes),)


@register_layer
class ELU(_Neuron):
    TYPE = "ELU"

    def setup(self, bottom_shapes):
        self.alpha = float(self.param("elu_param").alpha)

    def forward(self, x):
        return (F.elu(x, self.alpha),)


@register_layer
class Sigmoid(_Neuron):
    TYPE = "Sigmoid"

    def forward(self, x):
        return (torch.sigmoid(x),)


@register_layer
class TanH(_Neuron):
    TYPE = "TanH"

    def forward(self, x):
        return (torch.tanh(x),)


@register_layer
class AbsVal(_Neuron):
    TYPE = "AbsVal"

    def setup(self, bottom_shapes):
        if self.spec.top and self.spec.bottom and self.spec.top[0] == self.spec.bottom[0]:
            raise self.fail("AbsVal does not allow in-place computation (as in Caffe)", shape=False,
                            fix=f"give the top a name other than '{self.spec.bottom[0]}'")

    def forward(self, x):
        return (torch.abs(x),)


@register_layer
class Power(_Neuron):
    TYPE = "Power"

    def setup(self, bottom_shapes):
        p = self.param("power_param")
        self.power, self.scale, self.shift = float(p.power), float(p.scale), float(p.shift)
        self.diff_scale = self.power * self.scale
        if self.diff_scale == 0.0:  # Caffe ignores the input: power 0 gives 1, scale 0 gives shift^power
            self.constant = 1.0 if self.power == 0.0 else _caffe_pow(self.shift, self.power)

    def forward(self, x):
        if self.diff_scale == 0.0:
            return (_constant_like(x, self.constant),)
        y = x * self.scale if self.scale != 1.0 else x
        if self.shift != 0.0:
            y = y + self.shift
        if self.power != 1.0:
            y = torch.pow(y, self.power)
        return (y,)


def _caffe_pow(base: float, power: float) -> float:
    """std::pow semantics: nan for a negative base with a non-integer power, inf for 0 ** negative and on
    overflow (Python's math.pow raises instead)."""
    odd = power == int(power) and int(power) % 2 == 1 if math.isfinite(power) else False
    if base == 0.0 and power < 0:
        return math.copysign(math.inf, base) if odd else math.inf
    try:
        return math.pow(base, power)
    except ValueError:
        return math.nan
    except (ZeroDivisionError, OverflowError):
        return -math.inf if base < 0 and odd else math.inf


def _log_of_base(layer: Layer, base: float) -> float:
    """ln(base), base -1 meaning e; Caffe's checks: base > 0 (or -1) and a finite logarithm."""
    if base == -1.0:
        return 1.0
    if not base > 0.0:
        raise layer.fail(f"base must be strictly positive (or -1 for e), got {base}", shape=False,
                         fix="use base > 0, or base: -1 for the natural exponential/logarithm")
    log_base = math.log(base)
    if not math.isfinite(log_base):
        raise layer.fail(f"log(base) = log({base}) is not finite", shape=False, fix="use a finite base > 0")
    return log_base


@register_layer
class Exp(_Neuron):
    TYPE = "Exp"

    def setup(self, bottom_shapes):
        p = self.param("exp_param")
        base, scale, shift = float(p.base), float(p.scale), float(p.shift)
        log_base = _log_of_base(self, base)
        # Caffe: y = outer_scale * exp(inner_scale * x)
        self.inner_scale = log_base * scale
        if shift == 0.0:
            self.outer_scale = 1.0
        else:
            self.outer_scale = _caffe_pow(math.e, shift) if base == -1.0 else _caffe_pow(base, shift)

    def forward(self, x):
        y = torch.exp(x if self.inner_scale == 1.0 else x * self.inner_scale)
        if self.outer_scale != 1.0:
            y = y * self.outer_scale
        return (y,)


@register_layer
class Log(_Neuron):
    TYPE = "Log"

    def setup(self, bottom_shapes):
        p = self.param("log_param")
        base = float(p.base)
        log_base = _log_of_base(self, base)
        if log_base == 0.0:
            raise self.fail("a logarithm in base 1 is undefined (1/log(base) is infinite)", shape=False,
                            fix="use base > 0 other than 1, or base: -1 for the natural logarithm")
        self.base_scale = 1.0 / log_base
        self.scale, self.shift = float(p.scale), float(p.shift)

    def forward(self, x):
        z = x * self.scale if self.scale != 1.0 else x
        if self.shift != 0.0:
            z = z + self.shift
        y = torch.log(z)
        if self.base_scale != 1.0:
            y = y * self.base_scale
        return (y,)


@register_layer
class BNLL(_Neuron):
    TYPE = "BNLL"

    def forward(self, x):
        # softplus with threshold 50 is Caffe's stable form: log1p(exp(x)) below 50, x above, and its
        # gradient sigmoid(x) (1 above 50) equals Caffe's sigmoid(min(x, 50)) in float32 and float64
        return (F.softplus(x, beta=1.0, threshold=BNLL_THRESHOLD),)


@register_layer
class Threshold(_Neuron):
    TYPE = "Threshold"

    def setup(self, bottom_shapes):
        self.threshold = float(self.param("threshold_param").threshold)

    def forward(self, x):
        return ((x > self.threshold).to(x.dtype),)


@register_layer
class Clip(_Neuron):
    TYPE = "Clip"

    def setup(self, bottom_shapes):
        p = self.param("clip_param")
        self.min, self.max = float(p.min), float(p.max)

    def forward(self, x):
        if self.min > self.max:  # Caffe: max(min, min(x, max)) == min; no x passes the gradient mask
            return (_constant_like(x, self.min),)
        return (torch.clamp(x, self.min, self.max),)


@register_layer
class Swish(_Neuron):
    TYPE = "Swish"

    def setup(self, bottom_shapes):
        self.beta = float(self.param("swish_param").beta)

    def forward(self, x):
        if self.beta == 1.0:
            return (F.silu(x),)
        return (x * torch.sigmoid(x * self.beta),)

"""caffe_like's layers: importing this package registers every built-in layer, module by module.

The import list below is the registry's table of contents (explicit on purpose: no globbing).
"""

from . import (  # noqa: F401  (registration happens on import)
    accuracy,
    argmax_reduction,
    batch_norm,
    center_loss,
    convolution,
    data_layers,
    dropout,
    dummy_data,
    eltwise,
    euclidean_loss,
    hinge_loss,
    inner_product,
    input,
    large_margin_inner_product,
    lrn,
    multinomial_logistic_loss,
    neuron,
    pooling,
    python_layer,
    reciprocal_norm_loss,
    scale_bias,
    shape,
    sigmoid_cross_entropy_loss,
    softmax,
    softmax_with_loss,
)
from .base import BuildContext, Layer, canonical_axis
from .registry import LAYERS, get_layer_class, load_plugin, register_layer

__all__ = ["Layer", "BuildContext", "LAYERS", "canonical_axis", "register_layer", "get_layer_class",
           "load_plugin"]

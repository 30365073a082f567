"""caffe_like's layers: importing this package registers every built-in layer, module by module.

The list below is the registry's table of contents (explicit on purpose: no globbing).
"""

from . import input, inner_product  # noqa: F401  (registration happens on import)
from .base import BuildContext, Layer
from .registry import LAYERS, get_layer_class, load_plugin, register_layer

__all__ = ["Layer", "BuildContext", "LAYERS", "register_layer", "get_layer_class", "load_plugin"]

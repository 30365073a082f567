"""The one layer registry: Caffe type string -> Layer class.

Built-in layers register themselves once, at the end of their module, with :func:`register_layer`;
``caffe_like/layers/__init__.py`` imports those modules explicitly.  Users add layers the same way::

    import caffe_like

    @caffe_like.register_layer
    class MyLayer(caffe_like.Layer):
        TYPE = "MyLayer"
        ...

or ship them in a package that declares a ``caffe_like.layers`` entry point (each entry point names a
module to import, which registers its layers), or load a module with ``--plugin MODULE`` on the command
line.  Registering a type twice is an error naming both classes.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from ..errors import SpecError, did_you_mean
from ..spec.params import LAYER_PARAM_FIELDS, register_layer_type
from .base import Layer

__all__ = ["LAYERS", "register_layer", "get_layer_class", "load_plugin", "load_entry_points",
           "ENTRY_POINT_GROUP"]

#: type string -> Layer class
LAYERS: dict[str, type[Layer]] = {}
ENTRY_POINT_GROUP = "caffe_like.layers"
_entry_points_loaded = False


def register_layer(cls: type[Layer] | None = None, *, replace: bool = False):
    """Register a Layer subclass under its ``TYPE`` (usable as a decorator).

    ``replace=True`` lets a user layer take over a type on purpose (for example a fork's variant of a
    built-in layer).
    """

    def _register(layer_cls: type[Layer]) -> type[Layer]:
        if not (isinstance(layer_cls, type) and issubclass(layer_cls, Layer)):
            raise TypeError(f"{layer_cls!r} is not a caffe_like Layer subclass")
        type_name = layer_cls.TYPE
        if not type_name:
            raise TypeError(f"{layer_cls.__module__}.{layer_cls.__qualname__} has no TYPE string")
        existing = LAYERS.get(type_name)
        if existing is not None and existing is not layer_cls and not replace:
            raise ValueError(
                f"layer type '{type_name}' is already registered by {existing.__module__}.{existing.__qualname__}; "
                f"{layer_cls.__module__}.{layer_cls.__qualname__} cannot register it again (pass replace=True "
                "to override on purpose)"
            )
        if type_name not in LAYER_PARAM_FIELDS:
            register_layer_type(type_name, tuple(layer_cls.EXTRA_PARAM_BLOCKS))
        LAYERS[type_name] = layer_cls
        return layer_cls

    return _register(cls) if cls is not None else _register


def load_plugin(module: str) -> None:
    """Import a module that registers layers (``--plugin MODULE``): a module name on ``sys.path``, or the
    path of a ``.py`` file."""
    path = Path(module)
    try:
        if path.suffix == ".py":
            if not path.is_file():
                raise SpecError(f"plugin file '{module}' not found", fix="check the path")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = loaded
            spec.loader.exec_module(loaded)
        else:
            importlib.import_module(module)
    except ImportError as err:
        raise SpecError(f"cannot import plugin module '{module}': {err}",
                        fix="check the module name and that its folder is on PYTHONPATH") from None


def load_entry_points() -> None:
    """Import every module declared in the ``caffe_like.layers`` entry-point group (once)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as err:  # a broken third-party package must not break caffe_like itself
            import warnings

            warnings.warn(f"layer plugin '{entry.name}' ({entry.value}) failed to load: {err}", stacklevel=2)


def get_layer_class(type_name: str, *, where: dict | None = None) -> type[Layer]:
    """The class registered for ``type_name``; an unknown type is a SpecError listing the known ones."""
    cls = LAYERS.get(type_name)
    if cls is None:
        load_entry_points()
        cls = LAYERS.get(type_name)
    if cls is None:
        known = sorted(LAYERS)
        hint = did_you_mean(type_name, known)
        unimplemented = type_name in LAYER_PARAM_FIELDS
        message = (f"layer type '{type_name}' is a Caffe layer that caffe_like does not implement"
                   if unimplemented else f"unknown layer type '{type_name}'")
        raise SpecError(
            message,
            **(where or {}),
            fix=(hint + " " if hint else "")
            + "implemented types: " + ", ".join(known)
            + ". For a layer of your own, register it with caffe_like.register_layer, load its module with "
            "--plugin MODULE, or install a package with a 'caffe_like.layers' entry point",
        )
    return cls

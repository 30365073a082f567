"""What an exported model says about itself: ONNX ``metadata_props``, one JSON value per key.

Keys (all prefixed ``caffe_like.``):

==========================  =================================================================================
``format``                  version of this metadata layout (1)
``source_net``              the Caffe net's ``name``
``source_file``             the net file's name (no folder), "" for a net given as a dict
``source_sha256``           SHA-256 of the net file (of its prototxt text when it has no file)
``weights_file``            the .caffemodel's name, "" when the net's own (filled or set) weights were exported
``weights_sha256``          SHA-256 of that file
``inputs``                  {input: [dims]}, the batch dimension written as "N" (dynamic)
``outputs``                 [blob, ...] in graph order (Caffe's outputs, then the requested ones)
``prediction``              the classifier output used for top-k (null if unknown)
``preprocessing``           {input: description} (see :mod:`caffe_like.export.preprocess`)
``labels``                  [class name, ...] when a labels file was given, else absent
``deploy_changes``          what the deploy derivation did, one line each
``exporter``                the exporter and versions used
==========================  =================================================================================

This module never imports torch or onnx at import time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = ["PREFIX", "ModelInfo", "write", "read"]

PREFIX = "caffe_like."
FORMAT = 1


@dataclass
class ModelInfo:
    """The metadata of an exported model (everything :mod:`caffe_like.export.infer` needs)."""

    source_net: str = ""
    source_file: str = ""
    source_sha256: str = ""
    weights_file: str = ""
    weights_sha256: str = ""
    inputs: dict = field(default_factory=dict)
    outputs: list = field(default_factory=list)
    prediction: str | None = None
    preprocessing: dict = field(default_factory=dict)
    labels: list | None = None
    deploy_changes: list = field(default_factory=list)
    exporter: str = ""
    format: int = FORMAT

    def as_props(self) -> dict[str, str]:
        props = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "labels" and value is None:
                continue
            props[PREFIX + name] = json.dumps(value, separators=(",", ":"))
        return props


def write(model, info: ModelInfo) -> None:
    """Set ``info`` as the metadata_props of an onnx ModelProto (replacing keys of the same name)."""
    props = info.as_props()
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    for key, value in [*kept, *props.items()]:
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = value


def read(props: dict[str, str]) -> ModelInfo:
    """ModelInfo from a {key: value} mapping (onnxruntime's ``custom_metadata_map`` or the ModelProto's);
    keys that are absent keep their defaults, so any ONNX model can be run."""
    info = ModelInfo()
    for name in info.__dataclass_fields__:
        raw = props.get(PREFIX + name)
        if raw is None:
            continue
        try:
            setattr(info, name, json.loads(raw))
        except ValueError:
            setattr(info, name, raw)
    return info

"""Deploy-net derivation: a train/test net becomes the net that runs in production (torch-free).

:func:`derive_deploy` is a pure transformation of the net definition (works from prototxt, YAML, a dict
or a NetSpec; nothing is built and torch is never imported):

1. the net is filtered for the TEST phase (``phase=`` to choose another NetState);
2. **data layers** (:data:`DATA_LAYER_TYPES`: Data, ImageData, MemoryData, HDF5Data, WindowData and
   DummyData) become an ``Input`` layer named like their first top (the data), with the shape the data
   layer produces in TEST (crop included; the batch dimension is the layer's batch size and is made
   dynamic at export).  Their other tops (labels) are dropped;
3. **loss layers** (every type in ``caffe_like.spec.params.LOSS_LAYER_TYPES``, plus ``CenterLoss``, any
   layer given a non-zero ``loss_weight``), ``Accuracy`` and the sinks ``Silence`` and ``HDF5Output`` are
   removed;
4. ``LargeMarginInnerProduct`` (L-Softmax) becomes its plain inner product: an ``InnerProduct`` of the
   same name (so the weights load: both store W as [num_output, K]) with ``bias_term: false``, the same
   ``axis`` and only the feature bottom; its optional lambda top is dropped;
5. layers whose tops are no longer consumed and that only fed removed layers are pruned, repeatedly.
   Kept whatever happens: the blobs the removed layers scored (bottom 0 of a loss or Accuracy layer,
   the scores bottom of ReciprocalNormLoss, both features of ContrastiveLoss: the classifier output),
   the outputs of the original TEST net, and every blob asked for with ``outputs=``.

The deploy net's outputs are Caffe's (blobs produced and consumed by no later layer, in the Net's
alphabetical order), then the ``outputs=`` blobs that are not among them, in the order given.

Shapes of data layers come from the definition where it says them (MemoryData, DummyData, ImageData's
``new_height``/``new_width``, WindowData's crop), else from a light look at the source (IDX headers,
NPZ archives, the first image of an ImageData list; CIFAR is 3x32x32), else from ``probe`` (a callable
``probe(layer, spec) -> shape or None``; :func:`caffe_like.export.export_onnx` passes one that builds the
data layer), else ``input_shape=`` must give it.

Example::

    deploy = derive_deploy("lenet_train_test.prototxt", outputs=["ip1"])
    deploy.spec.save("lenet_deploy.prototxt"); deploy.inputs; deploy.outputs; deploy.preprocessing
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExportError, did_you_mean
from ..spec.net import NetSpec
from ..spec.params import LOSS_LAYER_TYPES, LayerParameter
from ..spec.schema import get_or_default, has, to_plain

__all__ = [
    "DATA_LAYER_TYPES",
    "REMOVED_TYPES",
    "DeployNet",
    "derive_deploy",
    "file_sha256",
]

#: layers that read data and labels: replaced by an Input named like their first top
DATA_LAYER_TYPES = frozenset({"Data", "ImageData", "MemoryData", "HDF5Data", "WindowData", "DummyData"})
#: layers a deploy net drops: Caffe's loss layers, the paper's CenterLoss, Accuracy and the sinks
REMOVED_TYPES = frozenset(LOSS_LAYER_TYPES | {"CenterLoss", "ReciprocalNormLoss", "Accuracy", "Silence",
                                              "HDF5Output"})
#: which bottoms of a removed layer hold what the net predicts (kept as outputs)
_SCORED_BOTTOMS = {"ReciprocalNormLoss": (1,), "ContrastiveLoss": (0, 1), "CenterLoss": (), "Silence": (),
                   "HDF5Output": ()}


@dataclass
class DeployNet:
    """The result of :func:`derive_deploy`.

    Attributes:
        spec: the deploy net (Input layers, no data/loss/accuracy layers), phase TEST.
        inputs: {input top: shape} in net order; dim 0 is the batch (dynamic at export).
        outputs: the blobs to export, in order (Caffe's outputs, then the requested extras).
        prediction: the classifier output (the blob a removed loss/accuracy layer scored, or the only
            output), for top-k; None when it cannot be told.
        preprocessing: {input top: description} for inputs that replaced a data layer (see
            :func:`caffe_like.export.preprocess.describe`).
        data_layers: {input top: the data LayerParameter it replaced}.
        changes: what was done, one line each ("removed loss (SoftmaxWithLoss)", ...).
        source_file, source_sha256: the net file and its SHA-256 (of the text for nets without a file).
    """

    spec: NetSpec
    inputs: dict[str, tuple[int, ...]]
    outputs: list[str]
    prediction: str | None
    preprocessing: dict[str, dict] = field(default_factory=dict)
    data_layers: dict[str, LayerParameter] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    source_file: str | None = None
    source_sha256: str = ""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _text_sha256(spec: NetSpec) -> str:
    return hashlib.sha256(spec.to_prototxt().encode("utf-8")).hexdigest()


# -- the blob graph ----------------------------------------------------------------------------------

def _consumers(layers: Sequence[LayerParameter]) -> list[list[set[int]]]:
    """For layer i and its top j: the indices of the later layers that read that version of the blob
    (up to and including the next layer that produces the same name, e.g. an in-place layer)."""
    result = []
    for i, layer in enumerate(layers):
        per_top = []
        for top in layer.top:
            readers = set()
            for k in range(i + 1, len(layers)):
                if top in layers[k].bottom:
                    readers.add(k)
                if top in layers[k].top:
                    break
            per_top.append(readers)
        result.append(per_top)
    return result


def _natural_outputs(layers: Sequence[LayerParameter]) -> list[str]:
    """Caffe's net outputs: blobs produced and not consumed afterwards (alphabetical, as Net)."""
    available: set[str] = set()
    for layer in layers:
        available.difference_update(layer.bottom)
        available.update(layer.top)
    return sorted(available)


# -- data layer shapes -------------------------------------------------------------------------------

def _batch_size(layer: LayerParameter) -> int:
    for block in ("data_param", "image_data_param", "memory_data_param", "hdf5_data_param",
                  "window_data_param"):
        if has(layer, block) and has(getattr(layer, block), "batch_size"):
            return max(int(getattr(layer, block).batch_size), 1)
    return 1


def _crop(layer: LayerParameter) -> int:
    transform = get_or_default(layer, "transform_param")
    return int(transform.crop_size) if has(transform, "crop_size") else 0


def _idx_shape(path: Path) -> tuple[int, ...] | None:
    """The dims of an IDX file (gzip or raw), from its header."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            handle = gzip.open(raw) if head == b"\x1f\x8b" else raw
            header = handle.read(4)
            if len(header) != 4 or header[:2] != b"\0\0":
                return None
            ndim = header[3]
            dims = struct.unpack(f">{ndim}I", handle.read(4 * ndim))
    except (OSError, struct.error, EOFError):
        return None
    return tuple(int(d) for d in dims)


def _idx_image_file(source: Path) -> Path | None:
    if source.is_file():
        return source
    candidates = []
    if source.is_dir():
        candidates = sorted(p for p in source.iterdir() if "idx3" in p.name and "images" in p.name)
    else:
        candidates = sorted(source.parent.glob(source.name + "*images-idx3-ubyte*")) if source.parent.is_dir() else []
    return candidates[0] if candidates else None


def _probe_source(layer: LayerParameter, base: Path) -> tuple[int, ...] | None:
    """Per-item shape (C, H, W) of a data layer's source, read cheaply and without torch."""
    if layer.type == "Data" and has(layer, "data_param"):
        p = layer.data_param
        source = base / p.source
        if p.backend == "IDX":
            found = _idx_image_file(source)
            dims = _idx_shape(found) if found is not None else None
            if dims is not None and len(dims) == 3:
                return (1, dims[1], dims[2])
            if dims is not None and len(dims) == 4:
                return tuple(dims[1:])
        elif p.backend == "CIFAR":
            return (3, 32, 32)
        elif p.backend == "NPZ":
            try:
                import numpy as np

                with np.load(source) as archive:
                    key = "data" if "data" in archive.files else archive.files[0]
                    shape = archive[key].shape[1:]
            except (OSError, ValueError, IndexError):
                return None
            return tuple(int(d) for d in ((1, *shape) if len(shape) == 2 else shape))
        return None
    if layer.type == "ImageData" and has(layer, "image_data_param"):
        p = layer.image_data_param
        channels = 3 if p.is_color else 1
        if p.new_height and p.new_width:
            return (channels, int(p.new_height), int(p.new_width))
        try:
            first = (base / p.source).read_text().split("\n", 1)[0].strip()
            image_path = Path(p.root_folder + first.rsplit(" ", 1)[0] if " " in first else p.root_folder + first)
            if not image_path.is_absolute():
                image_path = base / image_path
            from PIL import Image

            with Image.open(image_path) as image:
                return (channels, image.height, image.width)
        except (OSError, ImportError, ValueError):
            return None
    return None


def _declared_shape(layer: LayerParameter) -> tuple[int, ...] | None:
    """The full top-0 shape when the definition states it."""
    if layer.type == "MemoryData":
        p = get_or_default(layer, "memory_data_param")
        return (max(int(p.batch_size), 1), int(p.channels), int(p.height), int(p.width))
    if layer.type == "DummyData":
        p = get_or_default(layer, "dummy_data_param")
        if p.shape:
            return tuple(int(d) for d in p.shape[0].dim)
        if p.num:
            return (int(p.num[0]), int(p.channels[0]), int(p.height[0]), int(p.width[0]))
        return None
    if layer.type == "WindowData":
        crop = _crop(layer)
        if crop:
            return (_batch_size(layer), 3, crop, crop)
    return None


def _data_shape(layer: LayerParameter, spec: NetSpec, given, probe) -> tuple[tuple[int, ...], tuple | None]:
    """(top-0 shape as the data layer produces it in TEST, the uncropped per-item shape if known)."""
    top = layer.top[0]
    declared = _declared_shape(layer)
    if given is not None:
        shape = tuple(int(d) for d in given)
        if len(shape) == 3:
            shape = (_batch_size(layer), *shape)
        return shape, None
    if declared is not None:
        return declared, None
    item = _probe_source(layer, spec.base_dir)
    if item is None and probe is not None:
        probed = probe(layer, spec)
        if probed is not None:
            return tuple(int(d) for d in probed), None
    if item is None:
        raise ExportError(
            f"cannot tell the shape of the data top '{top}' without reading the data source",
            file=spec.file, layer=layer.name, layer_type=layer.type,
            fix="give the input shape (C,H,W or N,C,H,W): input_shape= in Python, --input-shape on the command "
                "line, or a deploy net with an Input layer (--deploy)",
        )
    crop = _crop(layer)
    shape = (item[0], crop, crop) if crop and len(item) == 3 else tuple(item)
    return (_batch_size(layer), *shape), tuple(item)


# -- the transformation ------------------------------------------------------------------------------

def _plain_layer(layer: LayerParameter) -> dict:
    plain = to_plain(layer)
    for key in ("include", "exclude", "phase"):
        plain.pop(key, None)
    return plain


def _is_removed(layer: LayerParameter) -> str | None:
    if layer.type in REMOVED_TYPES:
        return "accuracy" if layer.type == "Accuracy" else "loss" if layer.type not in ("Silence", "HDF5Output") \
            else "sink"
    if any(w != 0 for w in layer.loss_weight):
        return "loss (non-zero loss_weight)"
    return None


def _l_softmax_as_inner_product(layer: LayerParameter) -> dict:
    p = get_or_default(layer, "largemargin_inner_product_param")
    inner = {"num_output": int(p.num_output), "bias_term": False}
    if has(p, "axis"):
        inner["axis"] = int(p.axis)
    if p.weight_filler is not None:
        inner["weight_filler"] = to_plain(p.weight_filler)
    plain = {"name": layer.name, "type": "InnerProduct", "bottom": layer.bottom[0], "top": layer.top[0],
             "inner_product_param": inner}
    if layer.param:
        plain["param"] = [to_plain(layer.param[0])]
    return plain


def derive_deploy(
    source,
    *,
    outputs: Iterable[str] = (),
    input_shape=None,
    phase: str = "TEST",
    level: int | None = None,
    stages: Sequence[str] | None = None,
    probe: Callable[[LayerParameter, NetSpec], Sequence[int] | None] | None = None,
    preprocess_from=None,
) -> DeployNet:
    """The deploy net of ``source`` (a path, dict, NetSpec; see the module docstring).

    Args:
        source: the train/test net, or a deploy net (then little or nothing changes).
        outputs: blobs to export besides the net's outputs (e.g. the feature ``ip1``).
        input_shape: the shape of the data input (C,H,W or N,C,H,W) or {input top: shape}, overriding
            what the data layer says.
        phase, level, stages: the NetState to filter with (default TEST).
        probe: ``probe(layer, spec) -> shape | None`` for data layers whose shape the definition does not say.
        preprocess_from: another net (train/test) whose data layers describe the preprocessing of this
            net's inputs of the same name (for a hand-written deploy net).
    Raises:
        ExportError: an unknown ``outputs`` blob, a label consumed by a layer that stays, a shape that
            cannot be told.
    """
    from .preprocess import describe

    loaded = NetSpec.load(source)
    filtered = loaded.filter(loaded.state(phase=phase, level=level, stages=stages))
    layers = list(filtered.layers)
    requested = list(dict.fromkeys(outputs))
    if isinstance(input_shape, dict):
        shapes_given = {k: v for k, v in input_shape.items()}
    else:
        shapes_given = {None: input_shape} if input_shape is not None else {}

    changes: list[str] = []
    dropped_blobs: dict[str, str] = {}  # blob -> why it no longer exists
    keep_blobs: set[str] = set(requested)
    removed = [False] * len(layers)
    for i, layer in enumerate(layers):
        why = _is_removed(layer)
        if why is None:
            continue
        removed[i] = True
        changes.append(f"removed {layer.name} ({layer.type}): {why}")
        scored = _SCORED_BOTTOMS.get(layer.type, (0,))
        keep_blobs.update(layer.bottom[j] for j in scored if j < len(layer.bottom))
        for top in layer.top:
            dropped_blobs[top] = f"the top of removed layer '{layer.name}' ({layer.type})"

    data_layers: dict[str, LayerParameter] = {}
    plain_layers: list[dict | None] = []
    inputs: dict[str, tuple[int, ...]] = {}
    uncropped: dict[str, tuple | None] = {}
    for i, layer in enumerate(layers):
        if removed[i]:
            plain_layers.append(None)
            continue
        if layer.type in DATA_LAYER_TYPES:
            if not layer.top:
                plain_layers.append(None)
                continue
            top = layer.top[0]
            given = shapes_given.get(top, shapes_given.get(None)) if shapes_given else None
            shape, item = _data_shape(layer, filtered, given, probe)
            inputs[top] = shape
            uncropped[top] = item
            data_layers[top] = layer
            for label in layer.top[1:]:
                dropped_blobs[label] = f"a label top of data layer '{layer.name}' ({layer.type})"
            plain_layers.append({"name": top, "type": "Input", "top": top,
                                 "input_param": {"shape": {"dim": list(shape)}}})
            changes.append(f"replaced {layer.name} ({layer.type}) by Input '{top}' {list(shape)}"
                           + (f", dropped label top(s) {', '.join(layer.top[1:])}" if layer.top[1:] else ""))
            continue
        if layer.type == "LargeMarginInnerProduct":
            plain_layers.append(_l_softmax_as_inner_product(layer))
            for extra in layer.top[1:]:
                dropped_blobs[extra] = f"the lambda top of L-Softmax layer '{layer.name}'"
            changes.append(f"replaced {layer.name} (LargeMarginInnerProduct) by its plain inner product "
                           "(InnerProduct, bias_term false), dropped its label bottom")
            continue
        if layer.type == "Input":
            for top, shape in zip(layer.top, _input_shapes(layer, filtered)):
                given = shapes_given.get(top) if shapes_given else None
                if given is None and len(layer.top) == 1 and None in shapes_given:
                    given = shapes_given[None]
                if given is not None:
                    shape = tuple(int(d) for d in given)
                    if len(shape) == 3 and len(layer.top) == 1:
                        shape = (1, *shape)
                inputs[top] = shape
            plain = _plain_layer(layer)
            plain["input_param"] = {"shape": [{"dim": list(inputs[t])} for t in layer.top]}
            plain_layers.append(plain)
            continue
        plain_layers.append(_plain_layer(layer))

    # prune: layers whose tops nobody reads any more, that are not outputs of the original net
    original_consumers = _consumers(layers)
    natural = set(_natural_outputs(layers))
    alive = [plain_layers[i] is not None for i in range(len(layers))]
    changed = True
    while changed:
        changed = False
        for i in range(len(layers) - 1, -1, -1):
            if not alive[i] or layers[i].type in DATA_LAYER_TYPES or layers[i].type == "Input":
                continue
            tops = plain_tops(plain_layers[i])
            used = False
            for j, top in enumerate(tops):
                readers = {k for k in original_consumers[i][j] if alive[k]}
                if readers or top in keep_blobs or (not original_consumers[i][j] and top in natural):
                    used = True
            if not used:
                alive[i] = False
                changed = True
                changes.append(f"pruned {layers[i].name} ({layers[i].type}): it only fed removed layers")
                for top in tops:
                    dropped_blobs.setdefault(top, f"the top of pruned layer '{layers[i].name}'")
    # Input tops nothing reads any more (a label fed by hand) are dropped too
    read = {b for i in range(len(layers)) if alive[i] for b in _as_list(plain_layers[i].get("bottom"))}
    for i, layer in enumerate(layers):
        if alive[i] and layer.type == "Input":
            keep = [j for j, top in enumerate(layer.top) if top in read or top in keep_blobs]
            if len(keep) == len(layer.top):
                continue
            for j, top in enumerate(layer.top):
                if j not in keep:
                    inputs.pop(top, None)
                    changes.append(f"dropped input '{top}' of {layer.name} (Input): only removed layers read it")
            if not keep:
                alive[i] = False
                continue
            plain = dict(plain_layers[i])
            plain["top"] = [layer.top[j] for j in keep]
            plain["input_param"] = {"shape": [{"dim": list(inputs[layer.top[j]])} for j in keep]}
            plain_layers[i] = plain
    kept_layers = [(i, plain_layers[i]) for i in range(len(layers)) if alive[i]]
    # labels and removed tops must not feed a layer that stays
    produced: set[str] = set()
    for i, plain in kept_layers:
        for bottom in _as_list(plain.get("bottom")):
            if bottom not in produced:
                why = dropped_blobs.get(bottom, "not produced by any layer")
                raise ExportError(
                    f"bottom '{bottom}' is {why}, which a deploy net does not have",
                    file=filtered.file, layer=layers[i].name, layer_type=layers[i].type,
                    fix="give a deploy net of your own (--deploy / deploy=) without this dependency",
                )
        produced.update(_as_list(plain.get("top")))
    for blob in requested:
        if blob not in produced:
            hint = did_you_mean(blob, produced)
            why = dropped_blobs.get(blob)
            raise ExportError(
                f"cannot export blob '{blob}': " + (f"it is {why}" if why else "no layer of the deploy net makes it"),
                file=filtered.file,
                fix=(hint + " " if hint else "") + "the deploy net's blobs are: " + ", ".join(sorted(produced)),
            )

    param = {"name": filtered.name, "layer": [plain for _, plain in kept_layers]}
    spec = NetSpec.load(param)
    spec.file = filtered.file
    deploy_layers = spec.layers
    natural_out = _natural_outputs(deploy_layers)
    all_outputs = natural_out + [b for b in requested if b not in natural_out]
    prediction = _prediction(layers, removed, all_outputs)
    pre_source = NetSpec.load(preprocess_from).filter("TEST") if preprocess_from is not None else None
    preprocessing = {}
    for top in inputs:
        layer = data_layers.get(top)
        base = filtered.base_dir
        if layer is None and pre_source is not None:
            for candidate in pre_source.layers:
                if candidate.type in DATA_LAYER_TYPES and candidate.top and candidate.top[0] == top:
                    layer, base = candidate, pre_source.base_dir
        if layer is not None:
            preprocessing[top] = describe(layer, inputs[top], uncropped.get(top), base)
    if filtered.file:
        sha = file_sha256(filtered.file)
    else:
        sha = _text_sha256(filtered)
    return DeployNet(spec=spec, inputs=inputs, outputs=all_outputs, prediction=prediction,
                     preprocessing=preprocessing, data_layers=data_layers, changes=changes,
                     source_file=filtered.file, source_sha256=sha)


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def plain_tops(plain: dict) -> list[str]:
    return _as_list(plain.get("top"))


def _input_shapes(layer: LayerParameter, spec: NetSpec) -> list[tuple[int, ...]]:
    p = get_or_default(layer, "input_param")
    shapes = []
    for j in range(len(layer.top)):
        if not p.shape:
            raise ExportError(f"Input top '{layer.top[j]}' has no shape", file=spec.file, layer=layer.name,
                              layer_type="Input", fix="give input_param { shape { dim: ... } } or input_shape=")
        shapes.append(tuple(int(d) for d in p.shape[0 if len(p.shape) == 1 else j].dim))
    return shapes


def _prediction(layers: Sequence[LayerParameter], removed: Sequence[bool], outputs: list[str]) -> str | None:
    """The blob the net's classifier produces: what the removed loss/accuracy layers scored, if exported;
    else ``prob``, else the only output."""
    for i, layer in enumerate(layers):
        if removed[i]:
            for j in _SCORED_BOTTOMS.get(layer.type, (0,)):
                if j < len(layer.bottom) and layer.bottom[j] in outputs:
                    return layer.bottom[j]
    if "prob" in outputs:
        return "prob"
    return outputs[0] if len(outputs) == 1 else None

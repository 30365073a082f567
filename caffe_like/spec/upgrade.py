"""Caffe's legacy net and solver upgrades, done on the schema-free syntax tree.

Caffe upgrades every net it reads (``UpgradeNetAsNeeded`` in ``src/caffe/util/upgrade_proto.cpp``) and
every solver (``UpgradeSolverAsNeeded``).  This module does the same on a :class:`~.tree.Node` before it
is bound to the schema, so that a V0 or V1 prototxt (or its YAML transcription) loads as the current
format, and later errors still point at the lines of the original file: every entry it creates takes
the :class:`~.tree.Pos` of the entry it comes from.

:func:`upgrade_net` runs, in Caffe's order:

1. ``UpgradeV0Net`` (when a ``layers`` entry holds a V0 ``layer { type: "conv" ... }``):
   ``UpgradeV0PaddingLayers`` folds each V0 ``padding`` layer into the ``pad`` of the conv/pool layer
   it feeds, then ``UpgradeV0LayerParameter``/``UpgradeV0LayerType`` turn each V0 layer into a V1 one
   (lowercase type -> V1 enum, flat fields -> the typed ``*_param`` blocks, see :data:`V0_FIELD_ROUTES`).
2. ``UpgradeNetDataTransformation``: ``scale``, ``mean_file``, ``crop_size`` and ``mirror`` of the
   data_param/image_data_param/window_data_param of V1 DATA/IMAGE_DATA/WINDOW_DATA layers move into
   ``transform_param``.
3. ``UpgradeV1Net``/``UpgradeV1LayerParameter``/``UpgradeV1LayerType``: ``layers`` -> ``layer``, the
   enum ``type`` -> the type string (:data:`V1_LAYER_TYPES`), ``param``/``blob_share_mode``/``blobs_lr``/
   ``weight_decay`` -> ``param { name share_mode lr_mult decay_mult }``; everything else is kept.
4. ``UpgradeNetInput``: ``input`` with ``input_shape`` or ``input_dim`` -> a first layer
   ``{name: "input", type: "Input", input_param {shape ...}}``; ``input`` without shapes is dropped.

What caffe_like does differently:

- ``UpgradeNetBatchNorm`` (Caffe deletes the ``param`` specs of a BatchNorm layer that lists exactly
  three) is **not** done: the file stays lossless and the BatchNorm layer itself decides what its
  ``param`` specs mean.
- Where Caffe dies (``LOG(FATAL)``/``CHECK``) or would build a broken net, a :class:`SpecError` names
  the file, line and layer: a net mixing ``layer`` and ``layers``, a V0 net mixing V0 and V1 layers,
  an unknown V0/V1 type, a bad padding layer, unknown V0 fields, both ``input_shape`` and
  ``input_dim`` (old Caffe's ``Net::Init`` check) or counts that do not fit the inputs.
- Where Caffe drops a field with at most a log line (a V0 field that the layer type has no place for,
  V0 ``new_num``/``new_channels``, anything but name/input/input_dim/force_backward/layers at the top
  of a V0 net, anything but ``layer``/``bottom``/``top`` in a V0 ``layers`` entry), the field is
  dropped too, and a note starting with ``ignored:`` says so.
- The tree is modified in place: :func:`upgrade_net` and :func:`upgrade_solver` return the node they
  were given, with its entries rewritten.

:func:`upgrade_solver` mirrors ``UpgradeSolverType``: the enum ``solver_type`` becomes the string
``type``.  As in Caffe, nets written inline in a solver (``net_param``, ``train_net_param``,
``test_net_param``) are *not* upgraded (Caffe's ``Solver::InitTrainNet``/``InitTestNets`` copy them
as they are); a note says when one still has legacy fields.
"""

from __future__ import annotations

from ..errors import SpecError, did_you_mean
from .tree import Entry, Leaf, Node, Pos

__all__ = [
    "upgrade_net",
    "upgrade_solver",
    "needs_upgrade",
    "V0_LAYER_TYPES",
    "V0_FIELD_ROUTES",
    "V1_LAYER_TYPES",
    "SOLVER_TYPES",
]

#: ``UpgradeV0LayerType``: V0 type string -> V1 enum name ("padding" layers are folded away first).
V0_LAYER_TYPES = {
    "accuracy": "ACCURACY",
    "bnll": "BNLL",
    "concat": "CONCAT",
    "conv": "CONVOLUTION",
    "data": "DATA",
    "dropout": "DROPOUT",
    "euclidean_loss": "EUCLIDEAN_LOSS",
    "flatten": "FLATTEN",
    "hdf5_data": "HDF5_DATA",
    "hdf5_output": "HDF5_OUTPUT",
    "im2col": "IM2COL",
    "images": "IMAGE_DATA",
    "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT",
    "lrn": "LRN",
    "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS",
    "pool": "POOLING",
    "relu": "RELU",
    "sigmoid": "SIGMOID",
    "softmax": "SOFTMAX",
    "softmax_loss": "SOFTMAX_LOSS",
    "split": "SPLIT",
    "tanh": "TANH",
    "window_data": "WINDOW_DATA",
}

_CONV_IP = {"conv": "convolution_param", "innerproduct": "inner_product_param"}
_CONV_POOL = {"conv": "convolution_param", "pool": "pooling_param"}
_DATA_SOURCES = {"data": "data_param", "hdf5_data": "hdf5_data_param", "images": "image_data_param",
                 "window_data": "window_data_param"}
_ANY = "*"

#: ``UpgradeV0LayerParameter``: V0 field -> ({V0 type or "*": typed block}, new field name, or None when
#: the V0 field is the whole block).  A field given on a type it has no entry for is dropped, as Caffe
#: does (with a logged error).
V0_FIELD_ROUTES: dict[str, tuple[dict[str, str], str | None]] = {
    "num_output": (_CONV_IP, "num_output"),
    "biasterm": (_CONV_IP, "bias_term"),
    "weight_filler": (_CONV_IP, "weight_filler"),
    "bias_filler": (_CONV_IP, "bias_filler"),
    "pad": (_CONV_POOL, "pad"),
    "kernelsize": (_CONV_POOL, "kernel_size"),
    "group": ({"conv": "convolution_param"}, "group"),
    "stride": (_CONV_POOL, "stride"),
    "pool": ({"pool": "pooling_param"}, "pool"),
    "dropout_ratio": ({"dropout": "dropout_param"}, "dropout_ratio"),
    "local_size": ({"lrn": "lrn_param"}, "local_size"),
    "alpha": ({"lrn": "lrn_param"}, "alpha"),
    "beta": ({"lrn": "lrn_param"}, "beta"),
    "k": ({"lrn": "lrn_param"}, "k"),
    "source": ({**_DATA_SOURCES, "infogain_loss": "infogain_loss_param"}, "source"),
    "scale": ({_ANY: "transform_param"}, "scale"),
    "meanfile": ({_ANY: "transform_param"}, "mean_file"),
    "batchsize": (_DATA_SOURCES, "batch_size"),
    "cropsize": ({_ANY: "transform_param"}, "crop_size"),
    "mirror": ({_ANY: "transform_param"}, "mirror"),
    "rand_skip": ({"data": "data_param", "images": "image_data_param"}, "rand_skip"),
    "shuffle_images": ({"images": "image_data_param"}, "shuffle"),
    "new_height": ({"images": "image_data_param"}, "new_height"),
    "new_width": ({"images": "image_data_param"}, "new_width"),
    "concat_dim": ({"concat": "concat_param"}, "concat_dim"),
    "det_fg_threshold": ({"window_data": "window_data_param"}, "fg_threshold"),
    "det_bg_threshold": ({"window_data": "window_data_param"}, "bg_threshold"),
    "det_fg_fraction": ({"window_data": "window_data_param"}, "fg_fraction"),
    "det_context_pad": ({"window_data": "window_data_param"}, "context_pad"),
    "det_crop_mode": ({"window_data": "window_data_param"}, "crop_mode"),
    "hdf5_output_param": ({"hdf5_output": "hdf5_output_param"}, None),
}

#: V0 fields that stay at the V1 layer level (then become ``param`` specs in step 3).
_V0_LAYER_LEVEL = ("blobs", "blobs_lr", "weight_decay")
#: V0LayerParameter fields that UpgradeV0LayerParameter silently drops.
_V0_UNMAPPED = ("new_num", "new_channels")
_V0_FIELDS = ("name", "type", *_V0_LAYER_LEVEL, *V0_FIELD_ROUTES, *_V0_UNMAPPED)
#: V0 PoolMethod (same numbers as PoolingParameter.PoolMethod).
_V0_POOL_METHODS = ("MAX", "AVE", "STOCHASTIC")
#: the NetParameter fields UpgradeV0Net copies; the rest of a V0 net is dropped.
_V0_NET_FIELDS = ("name", "layers", "input", "input_dim", "force_backward")

#: ``V1LayerParameter.LayerType``: enum name -> (number, ``UpgradeV1LayerType`` string).
V1_LAYER_TYPES: dict[str, tuple[int, str]] = {
    "ABSVAL": (35, "AbsVal"),
    "ACCURACY": (1, "Accuracy"),
    "ARGMAX": (30, "ArgMax"),
    "BNLL": (2, "BNLL"),
    "CONCAT": (3, "Concat"),
    "CONTRASTIVE_LOSS": (37, "ContrastiveLoss"),
    "CONVOLUTION": (4, "Convolution"),
    "DATA": (5, "Data"),
    "DECONVOLUTION": (39, "Deconvolution"),
    "DROPOUT": (6, "Dropout"),
    "DUMMY_DATA": (32, "DummyData"),
    "EUCLIDEAN_LOSS": (7, "EuclideanLoss"),
    "ELTWISE": (25, "Eltwise"),
    "EXP": (38, "Exp"),
    "FLATTEN": (8, "Flatten"),
    "HDF5_DATA": (9, "HDF5Data"),
    "HDF5_OUTPUT": (10, "HDF5Output"),
    "HINGE_LOSS": (28, "HingeLoss"),
    "IM2COL": (11, "Im2col"),
    "IMAGE_DATA": (12, "ImageData"),
    "INFOGAIN_LOSS": (13, "InfogainLoss"),
    "INNER_PRODUCT": (14, "InnerProduct"),
    "LRN": (15, "LRN"),
    "MEMORY_DATA": (29, "MemoryData"),
    "MULTINOMIAL_LOGISTIC_LOSS": (16, "MultinomialLogisticLoss"),
    "MVN": (34, "MVN"),
    "POOLING": (17, "Pooling"),
    "POWER": (26, "Power"),
    "RELU": (18, "ReLU"),
    "SIGMOID": (19, "Sigmoid"),
    "SIGMOID_CROSS_ENTROPY_LOSS": (27, "SigmoidCrossEntropyLoss"),
    "SILENCE": (36, "Silence"),
    "SOFTMAX": (20, "Softmax"),
    "SOFTMAX_LOSS": (21, "SoftmaxWithLoss"),
    "SPLIT": (22, "Split"),
    "SLICE": (33, "Slice"),
    "TANH": (23, "TanH"),
    "WINDOW_DATA": (24, "WindowData"),
    "THRESHOLD": (31, "Threshold"),
}
_V1_BY_NUMBER = {number: name for name, (number, _) in V1_LAYER_TYPES.items()}

#: V1 per-blob fields -> ParamSpec field, in the order UpgradeV1LayerParameter applies them.
_V1_PARAM_FIELDS = {"param": "name", "blob_share_mode": "share_mode", "blobs_lr": "lr_mult",
                    "weight_decay": "decay_mult"}
#: V1LayerParameter.DimCheckMode (same numbers as ParamSpec.DimCheckMode).
_SHARE_MODES = ("STRICT", "PERMISSIVE")

#: ``UpgradeNetDataTransformation``: V1 data layer type -> the block whose transform fields move.
_DATA_TRANSFORM_BLOCKS = {"DATA": "data_param", "IMAGE_DATA": "image_data_param",
                          "WINDOW_DATA": "window_data_param"}
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")

_INPUT_FIELDS = ("input", "input_shape", "input_dim")

#: ``UpgradeSolverType``: SolverParameter.SolverType enum name -> the ``type`` string (number = index).
SOLVER_TYPES = {"SGD": "SGD", "NESTEROV": "Nesterov", "ADAGRAD": "AdaGrad", "RMSPROP": "RMSProp",
                "ADADELTA": "AdaDelta", "ADAM": "Adam"}
_INLINE_NETS = ("net_param", "train_net_param", "test_net_param")


# -- helpers -------------------------------------------------------------------------------------------


def _error(message: str, pos: Pos, file: str | None, *, layer: str | None = None,
           layer_type: str | None = None, fix: str | None = None) -> SpecError:
    return SpecError(message, file=pos.file or file, line=pos.line, column=pos.column, layer=layer,
                     layer_type=layer_type, fix=fix)


def _at(pos: Pos) -> str:
    """`` at line N`` when the line is known (trees from a dict have no lines)."""
    return f" at line {pos.line}" if pos.line is not None else ""


def _node(entry: Entry, file: str | None, layer: str | None = None) -> Node:
    if not isinstance(entry.value, Node):
        raise _error(f"'{entry.key}' must be a message {{ ... }}, got a value", entry.pos, file, layer=layer)
    return entry.value


def _leaf(entry: Entry, file: str | None, layer: str | None = None) -> Leaf:
    if not isinstance(entry.value, Leaf):
        raise _error(f"'{entry.key}' must be a value, got a message {{ ... }}", entry.pos, file, layer=layer)
    return entry.value


def _entries(node: Node, key: str) -> list[Entry]:
    return [e for e in node.entries if e.key == key]


def _layer_name(layer: Node, index: int, file: str | None) -> str:
    """The layer's name for messages: its ``name``, or ``#index`` (1-based) when it has none."""
    entry = layer.first("name")
    return str(_leaf(entry, file).value) if entry is not None else f"#{index + 1}"


def _enum_name(leaf: Leaf, names: tuple[str, ...]) -> str | None:
    """The enum name a leaf gives (by name or by number), or None if it is not one of ``names``."""
    if leaf.kind in ("ident", "str") and leaf.value in names:
        return str(leaf.value)
    if leaf.kind == "int" and 0 <= leaf.value < len(names):
        return names[leaf.value]
    return None


def needs_upgrade(node: Node) -> bool:
    """Whether a net tree has anything :func:`upgrade_net` would change (``layers`` or input fields)."""
    return any(e.key == "layers" or e.key in _INPUT_FIELDS for e in node.entries)


# -- the net upgrade -----------------------------------------------------------------------------------


def upgrade_net(node: Node, *, file: str | None = None) -> tuple[Node, list[str]]:
    """Upgrade a V0/V1/legacy-input net tree to the current format, as Caffe's UpgradeNetAsNeeded.

    ``node`` is modified in place and returned, with the list of notes of what changed (empty for a
    current-format net).  Raises :class:`SpecError` where Caffe would fail (see the module docstring).
    """
    notes: list[str] = []
    _check_not_mixed(node, file)
    if _is_v0_net(node, file):
        _upgrade_v0_net(node, file, notes)
    _upgrade_data_transformation(node, file, notes)
    if "layers" in node:
        _upgrade_v1_net(node, file, notes)
    if any(key in node for key in _INPUT_FIELDS):
        _upgrade_input(node, file, notes)
    return node, notes


def _check_not_mixed(node: Node, file: str | None) -> None:
    current, legacy = node.first("layer"), node.first("layers")
    if current is None or legacy is None:
        return
    raise _error(
        f"the net mixes current 'layer' (first{_at(current.pos)}) and legacy V1 'layers' "
        f"(first{_at(legacy.pos)}) entries; Caffe refuses to upgrade such a net",
        legacy.pos, file,
        fix="convert the V1 part to layer { type: \"...\" } form (caffe-like convert upgrades a pure V1 "
            "file), then use 'layer' only",
    )


def _is_v0_net(node: Node, file: str | None) -> bool:
    """``NetNeedsV0ToV1Upgrade``: some ``layers`` entry holds a V0 ``layer``; then all must."""
    entries = _entries(node, "layers")
    v0 = [("layer" in _node(e, file)) for e in entries]
    if any(v0) and not all(v0):
        bad = entries[v0.index(False)]
        raise _error(
            "the net mixes V0 layers (layers { layer { ... } }) and V1 layers (layers { type: ... })",
            bad.pos, file, layer=_layer_name(bad.value, v0.index(False), file),
            fix="write every layer in one format (the current layer { type: \"...\" } form is best)",
        )
    return any(v0)


# -- step 1: V0 -> V1 ----------------------------------------------------------------------------------


def _upgrade_v0_net(node: Node, file: str | None, notes: list[str]) -> None:
    """``UpgradeV0Net``: fold padding layers, then turn each V0 layer into a V1 one."""
    dropped = [e.key for e in node.entries if e.key not in _V0_NET_FIELDS]
    if dropped:
        notes.append(f"ignored: V0 net fields {', '.join(dropped)} (Caffe's V0 upgrade keeps only "
                     f"{', '.join(_V0_NET_FIELDS)})")
    kept = _fold_padding_layers(node, file, notes)
    converted = {id(e): _v0_layer_to_v1(e, i, file, notes) for i, e in kept}
    node.entries = [
        Entry(e.key, converted[id(e)], e.pos) if e.key == "layers" else e
        for e in node.entries
        if e.key in _V0_NET_FIELDS and (e.key != "layers" or id(e) in converted)
    ]


def _v0_parts(entry: Entry, file: str | None) -> tuple[Node, Node, str]:
    """(the ``layers`` connection, its V0 ``layer``, the V0 type) of a V0 ``layers`` entry."""
    connection = _node(entry, file)
    v0_entry = connection.first("layer")
    v0 = _node(v0_entry, file)
    type_entry = v0.first("type")
    if type_entry is None:
        name = v0.first("name")
        raise _error("V0 layer without a type", v0_entry.pos, file,
                     layer=str(_leaf(name, file).value) if name is not None else None,
                     fix=f"give type: one of {', '.join(sorted(V0_LAYER_TYPES))}, padding")
    return connection, v0, str(_leaf(type_entry, file).value)


def _fold_padding_layers(node: Node, file: str | None, notes: list[str]) -> list[tuple[int, Entry]]:
    """``UpgradeV0PaddingLayers``: the ``layers`` entries (with their index) without the padding
    layers, whose ``pad`` and bottom move into the conv/pool layer each one feeds."""
    layers = _entries(node, "layers")
    producer: dict[str, int | None] = {str(_leaf(e, file).value): None for e in _entries(node, "input")}
    kept = []
    for i, entry in enumerate(layers):
        connection, v0, v0_type = _v0_parts(entry, file)
        if v0_type != "padding":
            kept.append((i, entry))
        bottoms = _entries(connection, "bottom")
        for j, bottom in enumerate(bottoms):
            blob = str(_leaf(bottom, file).value)
            if blob not in producer:
                raise _error(f"unknown bottom blob '{blob}' (no earlier layer or input produces it)",
                             bottom.pos, file, layer=_layer_name(v0, i, file), layer_type=v0_type)
            source = producer[blob]
            if source is not None and _v0_parts(layers[source], file)[2] == "padding":
                _fold_one_padding(layers, source, i, j, file, notes)
        for top in _entries(connection, "top"):
            producer[str(_leaf(top, file).value)] = i
    return kept


def _fold_one_padding(layers: list[Entry], source: int, i: int, j: int, file: str | None,
                      notes: list[str]) -> None:
    """Fold padding layer ``layers[source]`` into bottom ``j`` of conv/pool layer ``layers[i]``."""
    padding, consumer = layers[source], layers[i]
    pad_connection, pad_v0, _ = _v0_parts(padding, file)
    connection, v0, v0_type = _v0_parts(consumer, file)
    pad_name, name = _layer_name(pad_v0, source, file), _layer_name(v0, i, file)
    checks = (
        (v0_type in ("conv", "pool"), f"V0 padding layer '{pad_name}' feeds a '{v0_type}' layer; only "
                                      "conv and pool layers can absorb a padding layer"),
        (len(_entries(connection, "bottom")) == 1, "a conv/pool layer fed by a padding layer must have "
                                                   "exactly one bottom"),
        (len(_entries(pad_connection, "bottom")) == 1, f"V0 padding layer '{pad_name}' must have exactly "
                                                       "one bottom"),
        (len(_entries(pad_connection, "top")) == 1, f"V0 padding layer '{pad_name}' must have exactly "
                                                    "one top"),
    )
    for ok, message in checks:
        if not ok:
            raise _error(message, consumer.pos, file, layer=name, layer_type=v0_type)
    pad_entry = pad_v0.first("pad")
    pad = pad_entry.value if pad_entry is not None else Leaf(0, "int", pad_v0.pos)
    pad_pos = pad_entry.pos if pad_entry is not None else padding.pos
    v0.remove("pad")
    v0.add("pad", pad, pad_pos)
    source_bottom = _leaf(_entries(pad_connection, "bottom")[0], file)
    bottom = _entries(connection, "bottom")[j]
    bottom.value = Leaf(source_bottom.value, source_bottom.kind, bottom.value.pos)
    notes.append(f"V0 padding layer '{pad_name}' folded into '{name}': pad {pad.value}, "
                 f"bottom '{source_bottom.value}'")


def _v0_layer_to_v1(entry: Entry, index: int, file: str | None, notes: list[str]) -> Node:
    """``UpgradeV0LayerParameter``: one V0 ``layers { layer {...} bottom top }`` -> a V1 layer."""
    connection, v0, v0_type = _v0_parts(entry, file)
    name = _layer_name(v0, index, file)
    if v0_type not in V0_LAYER_TYPES:
        type_entry = v0.first("type")
        raise _error(f"unknown V0 layer type '{v0_type}'", type_entry.pos, file, layer=name,
                     fix=_choices_fix(v0_type, [*V0_LAYER_TYPES, "padding"], "V0 types"))
    changes = [f"type {v0_type} -> {V0_LAYER_TYPES[v0_type]}"]
    extra = [e.key for e in connection.entries if e.key not in ("layer", "bottom", "top")]
    if extra:
        notes.append(f"ignored: V0 layer '{name}': {', '.join(extra)} outside its layer {{ }} block "
                     "(Caffe's V0 upgrade keeps only bottom and top there)")
    out = Node(pos=connection.pos)
    for key in ("name", "type", "bottom", "top"):
        source = v0 if key in ("name", "type") else connection
        for e in _entries(source, key):
            value = Leaf(V0_LAYER_TYPES[v0_type], "ident", e.value.pos) if key == "type" else e.value
            out.add(key, value, e.pos)
    blocks: dict[str, Node] = {}
    for e in v0.entries:
        _move_v0_field(e, v0_type, name, out, blocks, changes, file, notes)
    notes.append(f"V0 layer '{name}': {'; '.join(changes)}")
    return out


def _move_v0_field(e: Entry, v0_type: str, name: str, out: Node, blocks: dict[str, Node],
                   changes: list[str], file: str | None, notes: list[str]) -> None:
    """Route one V0 field into the V1 layer ``out`` (its level or a typed block in ``blocks``)."""
    if e.key in ("name", "type"):
        return
    if e.key in _V0_LAYER_LEVEL:
        out.entries.append(e)
        return
    if e.key in _V0_UNMAPPED:
        notes.append(f"ignored: V0 layer '{name}': {e.key} (Caffe's V0 upgrade has no place for it)")
        return
    if e.key not in V0_FIELD_ROUTES:
        raise _error(f"unknown field '{e.key}' in a V0 layer", e.pos, file, layer=name, layer_type=v0_type,
                     fix=_choices_fix(e.key, _V0_FIELDS, "V0 layer fields"))
    routes, new_key = V0_FIELD_ROUTES[e.key]
    block = routes.get(v0_type) or routes.get(_ANY)
    if block is None:
        notes.append(f"ignored: V0 layer '{name}': {e.key} has no meaning for type '{v0_type}' "
                     "(Caffe drops it too)")
        return
    if e.key == "pool" and _enum_name(_leaf(e, file, name), _V0_POOL_METHODS) is None:
        raise _error(f"unknown pool method {e.value.value!r}", e.pos, file, layer=name, layer_type=v0_type,
                     fix=f"use one of {', '.join(_V0_POOL_METHODS)}")
    if new_key is None:
        out.add(block, _node(e, file, name), e.pos)
        changes.append(f"{e.key} kept")
        return
    if block not in blocks:
        blocks[block] = Node(pos=e.pos)
        out.add(block, blocks[block], e.pos)
    blocks[block].add(new_key, e.value, e.pos)
    changes.append(f"{e.key} -> {block}.{new_key}")


def _choices_fix(word: str, choices, what: str) -> str:
    hint = did_you_mean(word, choices)
    listing = f"the {what} Caffe knows: {', '.join(sorted(choices))}"
    return f"{hint} ({listing})" if hint else listing


# -- step 2: data transformation -----------------------------------------------------------------------


def _v1_enum(leaf: Leaf) -> str | None:
    """The V1 enum name a ``type`` leaf gives (by name or by number), or None if Caffe has no such type."""
    if leaf.kind == "int":
        return _V1_BY_NUMBER.get(leaf.value)
    if leaf.kind in ("ident", "str") and leaf.value in V1_LAYER_TYPES:
        return str(leaf.value)
    return None


def _v1_type(layer: Node) -> str | None:
    """The V1 enum name of a V1 layer's ``type``, or None (no type, or not one Caffe knows)."""
    entry = layer.first("type")
    return _v1_enum(entry.value) if entry is not None and isinstance(entry.value, Leaf) else None


def _upgrade_data_transformation(node: Node, file: str | None, notes: list[str]) -> None:
    """``UpgradeNetDataTransformation``, on V1 ``layers`` only (as Caffe's NetNeedsDataUpgrade)."""
    for index, entry in enumerate(_entries(node, "layers")):
        layer = _node(entry, file)
        block_key = _DATA_TRANSFORM_BLOCKS.get(_v1_type(layer))
        if block_key is None:
            continue
        moved = []
        for block_entry in _entries(layer, block_key):
            moved += _move_transform_fields(layer, block_entry, file)
        if moved:
            notes.append(f"layer '{_layer_name(layer, index, file)}': "
                         + "; ".join(f"{block_key}.{key} -> transform_param.{key}" for key in moved))


def _move_transform_fields(layer: Node, block_entry: Entry, file: str | None) -> list[str]:
    """Move scale/mean_file/crop_size/mirror out of one data block into ``transform_param``
    (created just before the block when missing); returns the moved field names."""
    block = _node(block_entry, file)
    moving = [e for e in block.entries if e.key in _TRANSFORM_FIELDS]
    if not moving:
        return []
    block.entries = [e for e in block.entries if e.key not in _TRANSFORM_FIELDS]
    existing = layer.first("transform_param")
    if existing is None:
        existing = Entry("transform_param", Node(pos=moving[0].pos), moving[0].pos)
        layer.entries.insert(layer.entries.index(block_entry), existing)
    transform = _node(existing, file)
    for e in moving:
        transform.remove(e.key)  # Caffe sets the field: the data block's value wins
        transform.entries.append(e)
    return [e.key for e in moving]


# -- step 3: V1 -> current -----------------------------------------------------------------------------


def _upgrade_v1_net(node: Node, file: str | None, notes: list[str]) -> None:
    """``UpgradeV1Net``: every ``layers`` entry becomes a ``layer`` entry in the same place."""
    index = 0
    for i, entry in enumerate(node.entries):
        if entry.key == "layers":
            node.entries[i] = Entry("layer", _v1_layer_to_current(_node(entry, file), index, file, notes),
                                    entry.pos)
            index += 1


def _v1_layer_to_current(layer: Node, index: int, file: str | None, notes: list[str]) -> Node:
    """``UpgradeV1LayerParameter``: name, type, bottom, top first, then the rest in source order,
    the per-blob fields replaced by ``param`` specs where the first of them was."""
    name = _layer_name(layer, index, file)
    changes: list[str] = []
    out = Node(pos=layer.pos)
    out.entries += _entries(layer, "name")
    for e in _entries(layer, "type"):
        new_type = _v1_type_string(e, name, file)
        changes.append(f"type {_leaf(e, file).value} -> {new_type}")
        out.add("type", Leaf(new_type, "str", e.value.pos), e.pos)
    out.entries += _entries(layer, "bottom") + _entries(layer, "top")
    specs = _param_specs(layer, name, file, changes)
    for e in layer.entries:
        if e.key in _V1_PARAM_FIELDS:
            out.entries += specs
            specs = []
        elif e.key not in ("name", "type", "bottom", "top"):
            out.entries.append(e)
    notes.append(f"V1 layer '{name}': {'; '.join(changes) or 'layers -> layer'}")
    return out


def _v1_type_string(entry: Entry, name: str, file: str | None) -> str:
    """``UpgradeV1LayerType``; an enum Caffe does not know is an error listing the ones it does."""
    leaf = _leaf(entry, file, name)
    enum_name = _v1_enum(leaf)
    if enum_name is not None:
        return V1_LAYER_TYPES[enum_name][1]
    current = {string: v1 for v1, (_, string) in V1_LAYER_TYPES.items()}
    if leaf.value in current:
        fix = (f"'{leaf.value}' is a current-format type: write the net with layer {{ type: \"{leaf.value}\" }}, "
               f"or use the V1 enum {current[leaf.value]} in 'layers'")
    else:
        fix = _choices_fix(str(leaf.value), V1_LAYER_TYPES, "V1 layer types")
    raise _error(f"unknown V1 layer type {leaf.value}", entry.pos, file, layer=name, fix=fix)


def _param_specs(layer: Node, name: str, file: str | None, changes: list[str]) -> list[Entry]:
    """The ``param`` entries built from V1 param/blob_share_mode/blobs_lr/weight_decay: the i-th value
    of each goes into ``param[i]``, each spec at the position of the value that created it."""
    specs: list[Entry] = []
    for v1_key, spec_key in _V1_PARAM_FIELDS.items():
        values = _entries(layer, v1_key)
        for i, e in enumerate(values):
            leaf = _leaf(e, file, name)
            if v1_key == "blob_share_mode":
                leaf = _share_mode(e, leaf, name, file)
            if i == len(specs):
                specs.append(Entry("param", Node(pos=e.pos), e.pos))
            specs[i].value.add(spec_key, leaf, e.pos)
        if values:
            changes.append(f"{v1_key} -> param.{spec_key}")
    return specs


def _share_mode(entry: Entry, leaf: Leaf, name: str, file: str | None) -> Leaf:
    mode = _enum_name(leaf, _SHARE_MODES)
    if mode is None:
        raise _error(f"unknown blob_share_mode {leaf.value!r}", entry.pos, file, layer=name,
                     fix=f"use one of {', '.join(_SHARE_MODES)}")
    return Leaf(mode, "ident", leaf.pos)


# -- step 4: net inputs --------------------------------------------------------------------------------


def _upgrade_input(node: Node, file: str | None, notes: list[str]) -> None:
    """``UpgradeNetInput``: input + input_shape/input_dim -> a first ``Input`` layer named "input"."""
    inputs, shapes, dims = (_entries(node, key) for key in _INPUT_FIELDS)
    _check_input_counts(inputs, shapes, dims, file)
    names = [str(_leaf(e, file).value) for e in inputs]
    if not shapes and not dims:
        node.entries = [e for e in node.entries if e.key not in _INPUT_FIELDS]
        notes.append(f"ignored: net input {', '.join(names)} given without input_shape/input_dim "
                     "(the legacy .caffemodel form; Caffe drops it)")
        return
    layer = Node(pos=inputs[0].pos)
    layer.add("name", Leaf("input", "str", inputs[0].pos), inputs[0].pos)
    layer.add("type", Leaf("Input", "str", inputs[0].pos), inputs[0].pos)
    for e in inputs:
        layer.entries.append(Entry("top", e.value, e.pos))
    input_param = Node(pos=(shapes or dims)[0].pos)
    for i in range(len(inputs)):
        input_param.entries.append(_input_shape(shapes, dims, i, file))
    layer.add("input_param", input_param, input_param.pos)
    first = next(i for i, e in enumerate(node.entries) if e.key == "layer" or e.key in _INPUT_FIELDS)
    entries = [e for e in node.entries[first:] if e.key not in _INPUT_FIELDS]
    node.entries = [*node.entries[:first], Entry("layer", layer, inputs[0].pos), *entries]
    source = "input_shape" if shapes else "input_dim"
    notes.append(f"net input {', '.join(names)} with {source} -> Input layer 'input' (first layer)")


def _check_input_counts(inputs: list[Entry], shapes: list[Entry], dims: list[Entry], file: str | None) -> None:
    if not inputs:
        extra = (shapes or dims)[0]
        raise _error(f"'{extra.key}' given without 'input'", extra.pos, file,
                     fix="name the input blobs with input: \"data\" (or use an Input layer)")
    if shapes and dims:
        raise _error("give either input_shape or the deprecated input_dim, not both", dims[0].pos, file,
                     fix="keep input_shape { dim: ... } and remove input_dim")
    if shapes and len(shapes) != len(inputs):
        raise _error(f"{len(inputs)} input(s) but {len(shapes)} input_shape(s); give exactly one per input",
                     shapes[0].pos, file)
    if dims and len(dims) != 4 * len(inputs):
        raise _error(f"{len(inputs)} input(s) need {4 * len(inputs)} input_dim values (4 per input: N, C, H, W), "
                     f"got {len(dims)}", dims[0].pos, file,
                     fix="give 4 input_dim values per input, or use input_shape { dim: ... } per input")


def _input_shape(shapes: list[Entry], dims: list[Entry], i: int, file: str | None) -> Entry:
    """The i-th ``shape`` entry of the Input layer: a copy of input_shape[i] or input_dim[4i:4i+4]."""
    if shapes:
        return Entry("shape", _node(shapes[i], file), shapes[i].pos)
    group = dims[4 * i:4 * i + 4]
    shape = Node(pos=group[0].pos)
    for e in group:
        shape.add("dim", _leaf(e, file), e.pos)
    return Entry("shape", shape, group[0].pos)


# -- the solver upgrade --------------------------------------------------------------------------------


def upgrade_solver(node: Node, *, file: str | None = None) -> tuple[Node, list[str]]:
    """Upgrade a solver tree as Caffe's UpgradeSolverAsNeeded: enum ``solver_type`` -> string ``type``.

    ``node`` is modified in place and returned with the notes of what changed.  Setting both
    ``solver_type`` and ``type`` is an error, as in Caffe (even when they agree).  Inline nets are left
    as written, as in Caffe.
    """
    notes: list[str] = []
    entries = _entries(node, "solver_type")
    if entries:
        _upgrade_solver_type(node, entries, file, notes)
    for e in node.entries:
        if e.key in _INLINE_NETS and isinstance(e.value, Node) and needs_upgrade(e.value):
            notes.append(f"{e.key}{_at(e.pos)} has legacy fields; Caffe does not upgrade nets "
                         "written inside a solver, so neither does caffe_like: put the net in its own file")
    return node, notes


def _upgrade_solver_type(node: Node, entries: list[Entry], file: str | None, notes: list[str]) -> None:
    type_entry = node.first("type")
    if type_entry is not None:
        raise _error("the old 'solver_type' (enum) and the new 'type' (string) are both given; Caffe "
                     f"refuses this (solver_type{_at(entries[0].pos)})", type_entry.pos, file,
                     fix="keep only type: \"SGD\" (or Nesterov, AdaGrad, RMSProp, AdaDelta, Adam)")
    if len(entries) > 1:
        raise _error("'solver_type' is given more than once", entries[1].pos, file)
    entry = entries[0]
    leaf = _leaf(entry, file)
    name = _enum_name(leaf, tuple(SOLVER_TYPES))
    if name is None:
        raise _error(f"unknown solver_type {leaf.value!r}", entry.pos, file,
                     fix=_choices_fix(str(leaf.value), SOLVER_TYPES, "solver types"))
    index = node.entries.index(entry)
    node.entries[index] = Entry("type", Leaf(SOLVER_TYPES[name], "str", leaf.pos), entry.pos)
    notes.append(f"solver_type {leaf.value} -> type \"{SOLVER_TYPES[name]}\"")

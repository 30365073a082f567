"""Caffe's legacy net/solver upgrades on the syntax tree (caffe_like.spec.upgrade).

The input trees are built directly (see :func:`tree`), so these tests do not depend on the prototxt
reader; one extra test runs real prototxt text through it when it is available.
"""

from __future__ import annotations

import itertools
import re

import pytest

from caffe_like.errors import SpecError
from caffe_like.spec.tree import Leaf, Node, Pos, node_from_plain
from caffe_like.spec.upgrade import V1_LAYER_TYPES, needs_upgrade, upgrade_net, upgrade_solver

FILE = "net.prototxt"


class I(str):  # noqa: E742 - a short marker reads best in the tree literals below
    """An identifier value (an enum name written bare in prototxt)."""


def _value(value, pos: Pos, lines):
    if isinstance(value, list):
        return _node(value, pos, lines)
    if isinstance(value, I):
        return Leaf(str(value), "ident", pos)
    kind = {bool: "bool", int: "int", float: "float", str: "str"}[type(value)]
    return Leaf(value, kind, pos)


def _node(items, pos: Pos, lines) -> Node:
    node = Node(pos=pos)
    for key, value in items:
        entry_pos = Pos(FILE, next(lines), 3)
        node.add(key, _value(value, entry_pos, lines), entry_pos)
    return node


def tree(items) -> Node:
    """A Node from ``[(key, value), ...]``; a list value is a nested message, ``I("X")`` an identifier.

    Every entry gets its own line, in the order a one-field-per-line prototxt would have them.
    """
    return _node(items, Pos(FILE, 1, 1), itertools.count(1))


def plain(value):
    """A Node as nested ``[(key, value), ...]`` lists with bare leaf values, for comparisons."""
    if isinstance(value, Leaf):
        return value.value
    return [(e.key, plain(e.value)) for e in value.entries]


def layers_of(net: Node) -> list[Node]:
    return net.get_all("layer")


def layer_named(net: Node, name: str) -> Node:
    return next(layer for layer in layers_of(net) if layer.first("name").value.value == name)


# -- V1 -------------------------------------------------------------------------------------------------

V1_LENET = [
    ("name", "LeNet"),
    ("layers", [
        ("name", "mnist"), ("type", I("DATA")), ("top", "data"), ("top", "label"),
        ("data_param", [("source", "mnist_train_lmdb"), ("backend", I("LMDB")), ("batch_size", 64),
                        ("scale", 0.00390625)]),
        ("include", [("phase", I("TRAIN"))]),
    ]),
    ("layers", [
        ("name", "conv1"), ("type", I("CONVOLUTION")), ("bottom", "data"), ("top", "conv1"),
        ("blobs_lr", 1), ("blobs_lr", 2), ("weight_decay", 1), ("weight_decay", 0),
        ("convolution_param", [("num_output", 20), ("kernel_size", 5), ("stride", 1),
                               ("weight_filler", [("type", "xavier")])]),
    ]),
    ("layers", [
        ("name", "pool1"), ("type", I("POOLING")), ("bottom", "conv1"), ("top", "pool1"),
        ("pooling_param", [("pool", I("MAX")), ("kernel_size", 2), ("stride", 2)]),
    ]),
    ("layers", [
        ("name", "ip1"), ("type", I("INNER_PRODUCT")), ("bottom", "pool1"), ("top", "ip1"),
        ("blobs_lr", 1), ("blobs_lr", 2),
        ("inner_product_param", [("num_output", 500)]),
    ]),
    ("layers", [("name", "relu1"), ("type", I("RELU")), ("bottom", "ip1"), ("top", "ip1")]),
    ("layers", [
        ("name", "accuracy"), ("type", I("ACCURACY")), ("bottom", "ip1"), ("bottom", "label"),
        ("top", "accuracy"), ("include", [("phase", I("TEST"))]),
    ]),
    ("layers", [
        ("name", "loss"), ("type", I("SOFTMAX_LOSS")), ("bottom", "ip1"), ("bottom", "label"),
        ("top", "loss"),
    ]),
]


def test_v1_lenet_becomes_current_format():
    net, notes = upgrade_net(tree(V1_LENET), file=FILE)
    assert "layers" not in net
    assert [e.key for e in net.entries] == ["name"] + ["layer"] * 7
    types = [layer.first("type").value for layer in layers_of(net)]
    assert [t.value for t in types] == ["Data", "Convolution", "Pooling", "InnerProduct", "ReLU", "Accuracy",
                                        "SoftmaxWithLoss"]
    assert {t.kind for t in types} == {"str"}

    conv1 = layer_named(net, "conv1")
    assert plain(conv1) == [
        ("name", "conv1"), ("type", "Convolution"), ("bottom", "data"), ("top", "conv1"),
        ("param", [("lr_mult", 1), ("decay_mult", 1)]),
        ("param", [("lr_mult", 2), ("decay_mult", 0)]),
        ("convolution_param", [("num_output", 20), ("kernel_size", 5), ("stride", 1),
                               ("weight_filler", [("type", "xavier")])]),
    ]
    assert plain(layer_named(net, "ip1"))[4:6] == [("param", [("lr_mult", 1)]), ("param", [("lr_mult", 2)])]

    # UpgradeNetDataTransformation: the scale moved into a transform_param before data_param
    assert plain(layer_named(net, "mnist")) == [
        ("name", "mnist"), ("type", "Data"), ("top", "data"), ("top", "label"),
        ("transform_param", [("scale", 0.00390625)]),
        ("data_param", [("source", "mnist_train_lmdb"), ("backend", "LMDB"), ("batch_size", 64)]),
        ("include", [("phase", "TRAIN")]),
    ]
    accuracy = layer_named(net, "accuracy")
    assert plain(accuracy.first("include").value) == [("phase", "TEST")]
    assert accuracy.first("include").value.first("phase").value.kind == "ident"

    assert "layer 'mnist': data_param.scale -> transform_param.scale" in notes
    assert ("V1 layer 'conv1': type CONVOLUTION -> Convolution; blobs_lr -> param.lr_mult; "
            "weight_decay -> param.decay_mult") in notes
    assert "V1 layer 'relu1': type RELU -> ReLU" in notes
    assert notes.index("layer 'mnist': data_param.scale -> transform_param.scale") < notes.index(
        "V1 layer 'mnist': type DATA -> Data")


def test_v1_upgrade_returns_the_same_node_and_keeps_net_fields():
    source = tree([("name", "n"), ("force_backward", I("true")),
                   ("layers", [("name", "s"), ("type", I("SILENCE")), ("bottom", "x")]),
                   ("state", [("phase", I("TEST"))])])
    net, _ = upgrade_net(source)
    assert net is source
    assert [e.key for e in net.entries] == ["name", "force_backward", "layer", "state"]


EXPECTED_V1_TYPES = {  # (enum number, type string): caffe.proto V1LayerParameter.LayerType, UpgradeV1LayerType
    "ABSVAL": (35, "AbsVal"), "ACCURACY": (1, "Accuracy"), "ARGMAX": (30, "ArgMax"), "BNLL": (2, "BNLL"),
    "CONCAT": (3, "Concat"), "CONTRASTIVE_LOSS": (37, "ContrastiveLoss"), "CONVOLUTION": (4, "Convolution"),
    "DATA": (5, "Data"), "DECONVOLUTION": (39, "Deconvolution"), "DROPOUT": (6, "Dropout"),
    "DUMMY_DATA": (32, "DummyData"), "EUCLIDEAN_LOSS": (7, "EuclideanLoss"), "ELTWISE": (25, "Eltwise"),
    "EXP": (38, "Exp"), "FLATTEN": (8, "Flatten"), "HDF5_DATA": (9, "HDF5Data"),
    "HDF5_OUTPUT": (10, "HDF5Output"), "HINGE_LOSS": (28, "HingeLoss"), "IM2COL": (11, "Im2col"),
    "IMAGE_DATA": (12, "ImageData"), "INFOGAIN_LOSS": (13, "InfogainLoss"),
    "INNER_PRODUCT": (14, "InnerProduct"), "LRN": (15, "LRN"), "MEMORY_DATA": (29, "MemoryData"),
    "MULTINOMIAL_LOGISTIC_LOSS": (16, "MultinomialLogisticLoss"), "MVN": (34, "MVN"),
    "POOLING": (17, "Pooling"), "POWER": (26, "Power"), "RELU": (18, "ReLU"), "SIGMOID": (19, "Sigmoid"),
    "SIGMOID_CROSS_ENTROPY_LOSS": (27, "SigmoidCrossEntropyLoss"), "SILENCE": (36, "Silence"),
    "SOFTMAX": (20, "Softmax"), "SOFTMAX_LOSS": (21, "SoftmaxWithLoss"), "SPLIT": (22, "Split"),
    "SLICE": (33, "Slice"), "TANH": (23, "TanH"), "WINDOW_DATA": (24, "WindowData"),
    "THRESHOLD": (31, "Threshold"),
}


def test_v1_type_table_is_caffes():
    assert V1_LAYER_TYPES == EXPECTED_V1_TYPES


@pytest.mark.parametrize("enum_name", sorted(EXPECTED_V1_TYPES))
def test_v1_type_by_name_and_by_number(enum_name):
    number, string = EXPECTED_V1_TYPES[enum_name]
    for value in (I(enum_name), enum_name, number):  # prototxt ident, YAML string, enum number
        net, _ = upgrade_net(tree([("layers", [("name", "x"), ("type", value)])]))
        assert layers_of(net)[0].first("type").value == Leaf(string, "str", Pos(FILE, 3, 3))


def test_data_transformation_by_type_number_and_for_image_and_window_data():
    net, notes = upgrade_net(tree([
        ("layers", [("name", "d"), ("type", 5),
                    ("data_param", [("mean_file", "m.binaryproto"), ("crop_size", 227), ("mirror", I("true"))])]),
        ("layers", [("name", "i"), ("type", I("IMAGE_DATA")),
                    ("transform_param", [("scale", 2.0), ("mirror", I("false"))]),
                    ("image_data_param", [("source", "list.txt"), ("scale", 0.5)])]),
        ("layers", [("name", "w"), ("type", I("WINDOW_DATA")), ("window_data_param", [("crop_size", 10)])]),
        ("layers", [("name", "h"), ("type", I("HDF5_DATA")), ("data_param", [("scale", 3.0)])]),
    ]))
    d, i, w, h = layers_of(net)
    assert plain(d.first("transform_param").value) == [("mean_file", "m.binaryproto"), ("crop_size", 227),
                                                      ("mirror", "true")]
    assert plain(d.first("data_param").value) == []
    # Caffe sets the field: the value from image_data_param replaces the one in transform_param
    assert plain(i.first("transform_param").value) == [("mirror", "false"), ("scale", 0.5)]
    assert plain(i.first("image_data_param").value) == [("source", "list.txt")]
    assert plain(w.first("transform_param").value) == [("crop_size", 10)]
    # only DATA/IMAGE_DATA/WINDOW_DATA layers are upgraded
    assert "transform_param" not in h and plain(h.first("data_param").value) == [("scale", 3.0)]
    assert "layer 'd': data_param.mean_file -> transform_param.mean_file; data_param.crop_size -> " \
           "transform_param.crop_size; data_param.mirror -> transform_param.mirror" in notes


def test_current_format_data_param_is_not_touched():
    source = tree([("layer", [("name", "d"), ("type", "Data"), ("data_param", [("scale", 0.5)])])])
    before = plain(source)
    net, notes = upgrade_net(source)
    assert plain(net) == before and notes == []


def test_shared_params_by_name():
    net, notes = upgrade_net(tree([
        ("layers", [("name", "ip_a"), ("type", I("INNER_PRODUCT")), ("bottom", "a"), ("top", "fa"),
                    ("param", "w"), ("param", "b"), ("blob_share_mode", I("PERMISSIVE")),
                    ("blob_share_mode", 0), ("blobs_lr", 1), ("blobs_lr", 2), ("weight_decay", 1),
                    ("inner_product_param", [("num_output", 10)])]),
        ("layers", [("name", "ip_b"), ("type", I("INNER_PRODUCT")), ("bottom", "b"), ("top", "fb"),
                    ("param", "w"), ("param", "b"), ("inner_product_param", [("num_output", 10)])]),
    ]))
    ip_a, ip_b = layers_of(net)
    assert plain(ip_a)[4:6] == [
        ("param", [("name", "w"), ("share_mode", "PERMISSIVE"), ("lr_mult", 1), ("decay_mult", 1)]),
        ("param", [("name", "b"), ("share_mode", "STRICT"), ("lr_mult", 2)]),
    ]
    assert ip_a.get_all("param")[1].first("share_mode").value.kind == "ident"
    assert plain(ip_b)[4:] == [("param", [("name", "w")]), ("param", [("name", "b")]),
                               ("inner_product_param", [("num_output", 10)])]
    assert ("V1 layer 'ip_a': type INNER_PRODUCT -> InnerProduct; param -> param.name; "
            "blob_share_mode -> param.share_mode; blobs_lr -> param.lr_mult; weight_decay -> param.decay_mult"
            ) in notes


def test_v1_keeps_other_fields_in_source_order():
    net, _ = upgrade_net(tree([
        ("layers", [("top", "loss"), ("loss_weight", 2.0), ("type", I("EUCLIDEAN_LOSS")), ("bottom", "a"),
                    ("exclude", [("stage", "deploy")]), ("blobs_lr", 0), ("name", "l2"), ("bottom", "b"),
                    ("blobs", [("data", 1.0)]), ("propagate_down", I("true")),
                    ("my_fork_param", [("x", 1)])]),
    ]))
    assert plain(layers_of(net)[0]) == [
        ("name", "l2"), ("type", "EuclideanLoss"), ("bottom", "a"), ("bottom", "b"), ("top", "loss"),
        ("loss_weight", 2.0), ("exclude", [("stage", "deploy")]), ("param", [("lr_mult", 0)]),
        ("blobs", [("data", 1.0)]), ("propagate_down", "true"), ("my_fork_param", [("x", 1)]),
    ]


def test_unknown_v1_type_names_file_line_layer_and_choices():
    source = tree([("layers", [("name", "conv1"), ("type", I("CONVOLUTON"))]),
                   ("layers", [("name", "l"), ("type", I("SMOOTH_L1_LOSS"))])])
    with pytest.raises(SpecError) as info:
        upgrade_net(source, file=FILE)
    err = info.value
    assert (err.file, err.line, err.layer) == (FILE, 3, "conv1")
    assert "unknown V1 layer type CONVOLUTON" in err.message
    assert "did you mean 'CONVOLUTION'?" in err.fix and "SOFTMAX_LOSS" in err.fix

    source = tree([("layers", [("name", "l"), ("type", I("SMOOTH_L1_LOSS"))])])
    with pytest.raises(SpecError) as info:
        upgrade_net(source, file=FILE)
    assert info.value.line == 3 and "ABSVAL, ACCURACY" in info.value.fix
    assert str(info.value).startswith(f"{FILE}:3:3: layer 'l': unknown V1 layer type SMOOTH_L1_LOSS")


@pytest.mark.parametrize("value", [0, 99, I("NONE")])
def test_unknown_v1_type_numbers(value):
    with pytest.raises(SpecError, match="unknown V1 layer type"):
        upgrade_net(tree([("layers", [("name", "x"), ("type", value)])]))


def test_current_type_string_in_v1_layers_explains_the_fix():
    with pytest.raises(SpecError) as info:
        upgrade_net(tree([("layers", [("name", "c"), ("type", "Convolution")])]))
    assert "current-format type" in info.value.fix and "CONVOLUTION" in info.value.fix


def test_unknown_blob_share_mode():
    with pytest.raises(SpecError, match="unknown blob_share_mode"):
        upgrade_net(tree([("layers", [("name", "x"), ("type", I("RELU")), ("blob_share_mode", I("LOOSE"))])]))


def test_mixed_layer_and_layers_is_an_error_with_both_lines():
    source = tree([
        ("name", "mixed"),
        ("layer", [("name", "a"), ("type", "ReLU")]),
        ("layers", [("name", "b"), ("type", I("RELU"))]),
    ])
    with pytest.raises(SpecError) as info:
        upgrade_net(source, file=FILE)
    err = info.value
    assert "mixes current 'layer' (first at line 2) and legacy V1 'layers' (first at line 5)" in err.message
    assert err.line == 5 and err.file == FILE
    assert "caffe-like convert" in err.fix and "layer" in err.fix


# -- V0 -------------------------------------------------------------------------------------------------


def v0(connection_items, layer_items):
    return ("layers", [("layer", layer_items), *connection_items])


V0_ALEXNET = [
    ("name", "CaffeNet"),
    ("input", "data"),
    ("input_dim", 10), ("input_dim", 3), ("input_dim", 227), ("input_dim", 227),
    v0([("bottom", "data"), ("top", "conv1")],
       [("name", "conv1"), ("type", "conv"), ("num_output", 96), ("kernelsize", 11), ("stride", 4),
        ("weight_filler", [("type", "gaussian"), ("std", 0.01)]),
        ("bias_filler", [("type", "constant"), ("value", 0.0)]),
        ("blobs_lr", 1.0), ("blobs_lr", 2.0), ("weight_decay", 1.0), ("weight_decay", 0.0)]),
    v0([("bottom", "conv1"), ("top", "conv1")], [("name", "relu1"), ("type", "relu")]),
    v0([("bottom", "conv1"), ("top", "pool1")],
       [("name", "pool1"), ("type", "pool"), ("pool", I("MAX")), ("kernelsize", 3), ("stride", 2)]),
    v0([("bottom", "pool1"), ("top", "norm1")],
       [("name", "norm1"), ("type", "lrn"), ("local_size", 5), ("alpha", 0.0001), ("beta", 0.75)]),
    v0([("bottom", "norm1"), ("top", "pad2")], [("name", "pad2"), ("type", "padding"), ("pad", 2)]),
    v0([("bottom", "pad2"), ("top", "conv2")],
       [("name", "conv2"), ("type", "conv"), ("num_output", 256), ("group", 2), ("kernelsize", 5),
        ("biasterm", I("false"))]),
    v0([("bottom", "conv2"), ("top", "pad_p")], [("name", "pad_p"), ("type", "padding"), ("pad", 1)]),
    v0([("bottom", "pad_p"), ("top", "pool2")],
       [("name", "pool2"), ("type", "pool"), ("pool", 1), ("kernelsize", 3), ("stride", 2)]),
    v0([("bottom", "pool2"), ("top", "fc6")],
       [("name", "fc6"), ("type", "innerproduct"), ("num_output", 4096), ("biasterm", I("true"))]),
    v0([("bottom", "fc6"), ("top", "fc6")], [("name", "drop6"), ("type", "dropout"), ("dropout_ratio", 0.5)]),
    v0([("bottom", "fc6"), ("top", "prob")], [("name", "prob"), ("type", "softmax")]),
]


def test_v0_alexnet_like_with_padding_layers_folded():
    net, notes = upgrade_net(tree(V0_ALEXNET), file=FILE)
    assert [e.key for e in net.entries] == ["name"] + ["layer"] * 10
    names = [layer.first("name").value.value for layer in layers_of(net)]
    assert names == ["input", "conv1", "relu1", "pool1", "norm1", "conv2", "pool2", "fc6", "drop6", "prob"]
    assert plain(layers_of(net)[0]) == [
        ("name", "input"), ("type", "Input"), ("top", "data"),
        ("input_param", [("shape", [("dim", 10), ("dim", 3), ("dim", 227), ("dim", 227)])]),
    ]
    assert plain(layer_named(net, "conv1")) == [
        ("name", "conv1"), ("type", "Convolution"), ("bottom", "data"), ("top", "conv1"),
        ("convolution_param", [("num_output", 96), ("kernel_size", 11), ("stride", 4),
                               ("weight_filler", [("type", "gaussian"), ("std", 0.01)]),
                               ("bias_filler", [("type", "constant"), ("value", 0.0)])]),
        ("param", [("lr_mult", 1.0), ("decay_mult", 1.0)]),
        ("param", [("lr_mult", 2.0), ("decay_mult", 0.0)]),
    ]
    assert plain(layer_named(net, "conv2")) == [
        ("name", "conv2"), ("type", "Convolution"), ("bottom", "norm1"), ("top", "conv2"),
        ("convolution_param", [("num_output", 256), ("group", 2), ("kernel_size", 5), ("bias_term", "false"),
                               ("pad", 2)]),
    ]
    assert plain(layer_named(net, "pool2")) == [
        ("name", "pool2"), ("type", "Pooling"), ("bottom", "conv2"), ("top", "pool2"),
        ("pooling_param", [("pool", 1), ("kernel_size", 3), ("stride", 2), ("pad", 1)]),
    ]
    assert plain(layer_named(net, "pool1"))[4] == ("pooling_param", [("pool", "MAX"), ("kernel_size", 3),
                                                                     ("stride", 2)])
    assert plain(layer_named(net, "norm1"))[4] == ("lrn_param", [("local_size", 5), ("alpha", 0.0001),
                                                                 ("beta", 0.75)])
    assert plain(layer_named(net, "fc6"))[1:5] == [("type", "InnerProduct"), ("bottom", "pool2"),
                                                   ("top", "fc6"),
                                                   ("inner_product_param", [("num_output", 4096),
                                                                            ("bias_term", "true")])]
    assert plain(layer_named(net, "drop6"))[4] == ("dropout_param", [("dropout_ratio", 0.5)])
    assert plain(layer_named(net, "prob")) == [("name", "prob"), ("type", "Softmax"), ("bottom", "fc6"),
                                               ("top", "prob")]

    assert "V0 padding layer 'pad2' folded into 'conv2': pad 2, bottom 'norm1'" in notes
    assert ("V0 layer 'conv1': type conv -> CONVOLUTION; num_output -> convolution_param.num_output; "
            "kernelsize -> convolution_param.kernel_size; stride -> convolution_param.stride; "
            "weight_filler -> convolution_param.weight_filler; bias_filler -> convolution_param.bias_filler"
            ) in notes
    assert "net input data with input_dim -> Input layer 'input' (first layer)" in notes
    v0_notes = [n for n in notes if n.startswith("V0 layer")]
    v1_notes = [n for n in notes if n.startswith("V1 layer")]
    assert len(v0_notes) == len(v1_notes) == 9
    assert notes.index(v0_notes[-1]) < notes.index(v1_notes[0]) < notes.index(notes[-1])


def test_v0_data_layers_fields_and_transform():
    net, notes = upgrade_net(tree([
        v0([("top", "data"), ("top", "label")],
           [("name", "data"), ("type", "data"), ("source", "train_leveldb"), ("meanfile", "mean.binaryproto"),
            ("batchsize", 256), ("cropsize", 227), ("mirror", I("true")), ("rand_skip", 10),
            ("scale", 0.5)]),
        v0([("top", "im"), ("top", "l2")],
           [("name", "images"), ("type", "images"), ("source", "list.txt"), ("new_height", 256),
            ("new_width", 256), ("shuffle_images", I("true")), ("batchsize", 8)]),
        v0([("top", "win"), ("top", "l3")],
           [("name", "win"), ("type", "window_data"), ("source", "windows.txt"), ("det_fg_threshold", 0.5),
            ("det_bg_threshold", 0.4), ("det_fg_fraction", 0.25), ("det_context_pad", 16),
            ("det_crop_mode", "square"), ("batchsize", 128)]),
        v0([("top", "h")], [("name", "h5"), ("type", "hdf5_data"), ("source", "h.txt"), ("batchsize", 4)]),
        v0([("bottom", "im"), ("bottom", "win"), ("top", "cat")],
           [("name", "cat"), ("type", "concat"), ("concat_dim", 1)]),
        v0([("bottom", "cat"), ("bottom", "label")],
           [("name", "info"), ("type", "infogain_loss"), ("source", "H.binaryproto")]),
        v0([("bottom", "h")], [("name", "out"), ("type", "hdf5_output"),
                               ("hdf5_output_param", [("file_name", "out.h5")])]),
    ]))
    data, images, win, h5, cat, info, out = layers_of(net)
    assert plain(data)[4:] == [
        ("data_param", [("source", "train_leveldb"), ("batch_size", 256), ("rand_skip", 10)]),
        ("transform_param", [("mean_file", "mean.binaryproto"), ("crop_size", 227), ("mirror", "true"),
                             ("scale", 0.5)]),
    ]
    assert plain(images)[:2] == [("name", "images"), ("type", "ImageData")]
    assert plain(images)[4:] == [("image_data_param", [("source", "list.txt"), ("new_height", 256),
                                                       ("new_width", 256), ("shuffle", "true"),
                                                       ("batch_size", 8)])]
    assert plain(win)[1] == ("type", "WindowData")
    assert plain(win)[4:] == [("window_data_param", [
        ("source", "windows.txt"), ("fg_threshold", 0.5), ("bg_threshold", 0.4), ("fg_fraction", 0.25),
        ("context_pad", 16), ("crop_mode", "square"), ("batch_size", 128)])]
    assert plain(h5)[1:] == [("type", "HDF5Data"), ("top", "h"),
                             ("hdf5_data_param", [("source", "h.txt"), ("batch_size", 4)])]
    assert plain(cat)[5:] == [("concat_param", [("concat_dim", 1)])]
    assert plain(info)[1] == ("type", "InfogainLoss")
    assert plain(info)[4:] == [("infogain_loss_param", [("source", "H.binaryproto")])]
    assert plain(out)[1:] == [("type", "HDF5Output"), ("bottom", "h"),
                              ("hdf5_output_param", [("file_name", "out.h5")])]
    assert not any(n.startswith("ignored") for n in notes)


@pytest.mark.parametrize("v0_type, v1_string", [
    ("accuracy", "Accuracy"), ("bnll", "BNLL"), ("euclidean_loss", "EuclideanLoss"), ("flatten", "Flatten"),
    ("im2col", "Im2col"), ("multinomial_logistic_loss", "MultinomialLogisticLoss"), ("sigmoid", "Sigmoid"),
    ("softmax_loss", "SoftmaxWithLoss"), ("split", "Split"), ("tanh", "TanH"),
])
def test_v0_types(v0_type, v1_string):
    net, _ = upgrade_net(tree([("input", "x"), v0([("bottom", "x")], [("name", "l"), ("type", v0_type)])]))
    assert layers_of(net)[0].first("type").value.value == v1_string


def test_v0_field_without_a_place_is_dropped_with_a_note():
    net, notes = upgrade_net(tree([
        ("input", "x"),
        v0([("bottom", "x"), ("top", "y")],
           [("name", "r"), ("type", "relu"), ("num_output", 3), ("new_num", 2)]),
        ("layers", [("layer", [("name", "s"), ("type", "softmax")]), ("bottom", "y"), ("blobs_lr", 1)]),
    ]))
    assert plain(layers_of(net)[0]) == [("name", "r"), ("type", "ReLU"), ("bottom", "x"), ("top", "y")]
    assert plain(layers_of(net)[1]) == [("name", "s"), ("type", "Softmax"), ("bottom", "y")]
    assert "ignored: V0 layer 'r': num_output has no meaning for type 'relu' (Caffe drops it too)" in notes
    assert "ignored: V0 layer 'r': new_num (Caffe's V0 upgrade has no place for it)" in notes
    assert any(n.startswith("ignored: V0 layer 's': blobs_lr outside its layer") for n in notes)


def test_v0_net_keeps_only_caffes_net_fields():
    net, notes = upgrade_net(tree([
        ("name", "old"), ("debug_info", I("true")), ("force_backward", I("true")),
        v0([("top", "d")], [("name", "d"), ("type", "data"), ("source", "s")]),
    ]))
    assert [e.key for e in net.entries] == ["name", "force_backward", "layer"]
    assert notes[0].startswith("ignored: V0 net fields debug_info")


def test_v0_padding_into_non_conv_is_an_error():
    source = tree([
        ("input", "x"),
        v0([("bottom", "x"), ("top", "p")], [("name", "pad"), ("type", "padding"), ("pad", 1)]),
        v0([("bottom", "p"), ("top", "r")], [("name", "r"), ("type", "relu")]),
    ])
    relu_line = source.entries[2].pos.line
    with pytest.raises(SpecError) as info:
        upgrade_net(source, file=FILE)
    assert info.value.layer == "r" and info.value.line == relu_line
    assert "only conv and pool layers can absorb a padding layer" in info.value.message


def test_v0_padding_without_pad_gives_pad_0_and_checks_arity():
    net, _ = upgrade_net(tree([
        ("input", "x"),
        v0([("bottom", "x"), ("top", "p")], [("name", "pad"), ("type", "padding")]),
        v0([("bottom", "p"), ("top", "c")], [("name", "c"), ("type", "conv"), ("num_output", 1)]),
    ]))
    assert plain(layers_of(net)[0].first("convolution_param").value) == [("num_output", 1), ("pad", 0)]
    with pytest.raises(SpecError, match="exactly one bottom"):
        upgrade_net(tree([
            ("input", "x"), ("input", "y"),
            v0([("bottom", "x"), ("top", "p")], [("name", "pad"), ("type", "padding")]),
            v0([("bottom", "p"), ("bottom", "y"), ("top", "c")], [("name", "c"), ("type", "conv")]),
        ]))


def test_v0_unknown_bottom_type_and_field():
    with pytest.raises(SpecError, match="unknown bottom blob 'nope'"):
        upgrade_net(tree([v0([("bottom", "nope")], [("name", "a"), ("type", "relu")])]))
    with pytest.raises(SpecError) as info:
        upgrade_net(tree([v0([("top", "a")], [("name", "a"), ("type", "innerprodcut")])]), file=FILE)
    assert info.value.line == 4 and "unknown V0 layer type 'innerprodcut'" in info.value.message
    assert "did you mean 'innerproduct'?" in info.value.fix and "window_data" in info.value.fix
    with pytest.raises(SpecError) as info:
        upgrade_net(tree([v0([("top", "a")], [("name", "a"), ("type", "conv"), ("kernel_size", 3)])]))
    assert "unknown field 'kernel_size' in a V0 layer" in info.value.message
    assert "did you mean 'kernelsize'?" in info.value.fix
    with pytest.raises(SpecError, match="unknown pool method"):
        upgrade_net(tree([v0([("top", "a")], [("name", "a"), ("type", "pool"), ("pool", I("MIN"))])]))
    with pytest.raises(SpecError, match="V0 layer without a type"):
        upgrade_net(tree([v0([("top", "a")], [("name", "a")])]))


def test_v0_and_v1_layers_mixed_is_an_error():
    with pytest.raises(SpecError, match="mixes V0 layers"):
        upgrade_net(tree([v0([("top", "a")], [("name", "a"), ("type", "data")]),
                          ("layers", [("name", "b"), ("type", I("RELU"))])]))


# -- net inputs -----------------------------------------------------------------------------------------


def test_input_dim_for_several_inputs_becomes_a_first_input_layer():
    source = tree([
        ("name", "deploy"),
        ("input", "data"), ("input", "label"),
        ("input_dim", 1), ("input_dim", 3), ("input_dim", 32), ("input_dim", 32),
        ("input_dim", 1), ("input_dim", 1), ("input_dim", 1), ("input_dim", 1),
        ("layer", [("name", "conv"), ("type", "Convolution"), ("bottom", "data"), ("top", "c")]),
    ])
    net, notes = upgrade_net(source, file=FILE)
    assert [e.key for e in net.entries] == ["name", "layer", "layer"]
    layer = layers_of(net)[0]
    assert plain(layer) == [
        ("name", "input"), ("type", "Input"), ("top", "data"), ("top", "label"),
        ("input_param", [("shape", [("dim", 1), ("dim", 3), ("dim", 32), ("dim", 32)]),
                         ("shape", [("dim", 1), ("dim", 1), ("dim", 1), ("dim", 1)])]),
    ]
    assert net.entries[1].pos.line == 2 and layer.get_all("top")[1].pos.line == 3
    assert [e.pos.line for e in layer.first("input_param").value.entries] == [4, 8]
    assert notes == ["net input data, label with input_dim -> Input layer 'input' (first layer)"]


def test_input_shape_for_several_inputs():
    net, _ = upgrade_net(tree([
        ("layer", [("name", "r"), ("type", "ReLU"), ("bottom", "a"), ("top", "a")]),
        ("input", "a"), ("input_shape", [("dim", 2), ("dim", 5)]),
        ("input", "b"), ("input_shape", [("dim", 2)]),
    ]))
    assert [plain(layer)[0] for layer in layers_of(net)] == [("name", "input"), ("name", "r")]
    assert plain(layers_of(net)[0])[2:] == [
        ("top", "a"), ("top", "b"),
        ("input_param", [("shape", [("dim", 2), ("dim", 5)]), ("shape", [("dim", 2)])]),
    ]


def test_input_without_shape_is_dropped():
    net, notes = upgrade_net(tree([("name", "n"), ("input", "data"),
                                   ("layer", [("name", "r"), ("type", "ReLU")])]))
    assert [e.key for e in net.entries] == ["name", "layer"]
    assert notes == ["ignored: net input data given without input_shape/input_dim (the legacy .caffemodel "
                     "form; Caffe drops it)"]


@pytest.mark.parametrize("items, message", [
    ([("input", "data")] + [("input_dim", 1)] * 5, "1 input(s) need 4 input_dim values"),
    ([("input", "a"), ("input", "b"), ("input_shape", [("dim", 1)])], "2 input(s) but 1 input_shape(s)"),
    ([("input", "a"), ("input_shape", [("dim", 1)])] + [("input_dim", 1)] * 4, "not both"),
    ([("input_dim", 1)] * 4, "'input_dim' given without 'input'"),
])
def test_bad_input_counts(items, message):
    with pytest.raises(SpecError, match=re.escape(message)) as info:
        upgrade_net(tree(items), file=FILE)
    assert info.value.file == FILE and info.value.line is not None


def test_v1_net_with_inputs_gets_the_input_layer_first():
    net, notes = upgrade_net(tree([
        ("layers", [("name", "r"), ("type", I("RELU")), ("bottom", "data"), ("top", "data")]),
        ("input", "data"), ("input_dim", 1), ("input_dim", 1), ("input_dim", 2), ("input_dim", 2),
    ]))
    assert [layer.first("type").value.value for layer in layers_of(net)] == ["Input", "ReLU"]
    assert notes == ["V1 layer 'r': type RELU -> ReLU",
                     "net input data with input_dim -> Input layer 'input' (first layer)"]


# -- positions, kinds, BatchNorm, YAML-like trees -------------------------------------------------------


def test_positions_are_kept():
    source = tree(V1_LENET)
    conv_v1 = source.get_all("layers")[1]
    blobs_lr = [e for e in conv_v1.entries if e.key == "blobs_lr"]
    weight_decay_pos = conv_v1.entries[6].pos
    type_entry = conv_v1.first("type")
    scale_entry = source.get_all("layers")[0].first("data_param").value.first("scale")
    conv_entry_pos = source.entries[2].pos
    net, _ = upgrade_net(source)
    conv = layer_named(net, "conv1")
    params = conv.get_all("param")
    assert conv.entries[1].pos == type_entry.pos and conv.first("type").value.pos == type_entry.value.pos
    assert [p.pos for p in params] == [blobs_lr[0].pos, blobs_lr[1].pos]
    assert params[0].first("lr_mult").pos == blobs_lr[0].pos
    assert params[0].first("decay_mult").pos == weight_decay_pos
    assert params[0].first("lr_mult").value is blobs_lr[0].value  # the leaf, with its kind and place
    assert conv.pos == conv_v1.pos and net.entries[2].pos == conv_entry_pos
    transform = layer_named(net, "mnist").first("transform_param")
    assert transform.pos == scale_entry.pos and transform.value.first("scale") is scale_entry


def test_v0_positions_are_kept():
    source = tree(V0_ALEXNET)
    conv2_v0 = source.get_all("layers")[5].first("layer").value
    pad_entry = source.get_all("layers")[4].first("layer").value.first("pad")
    kernel = conv2_v0.first("kernelsize")
    net, _ = upgrade_net(source)
    conv2 = layer_named(net, "conv2")
    param = conv2.first("convolution_param")
    assert param.pos == conv2_v0.first("num_output").pos
    assert param.value.first("kernel_size").pos == kernel.pos
    assert param.value.first("pad").pos == pad_entry.pos
    assert conv2.first("type").value.pos == conv2_v0.first("type").value.pos


def test_batchnorm_param_specs_are_kept():
    items = [("layer", [("name", "bn"), ("type", "BatchNorm"), ("bottom", "x"), ("top", "x"),
                        *[("param", [("lr_mult", 0)])] * 3])]
    net, notes = upgrade_net(tree(items))
    assert len(layers_of(net)[0].get_all("param")) == 3 and notes == []
    net, _ = upgrade_net(tree([("layers", [("name", "bn"), ("type", I("RELU")),
                                           ("blobs_lr", 0), ("blobs_lr", 0), ("blobs_lr", 0)])]))
    assert len(layers_of(net)[0].get_all("param")) == 3


def test_needs_upgrade():
    assert needs_upgrade(tree(V1_LENET))
    assert needs_upgrade(tree([("input", "x")]))
    assert not needs_upgrade(tree([("name", "n"), ("layer", [("name", "a"), ("type", "ReLU")])]))


def test_yaml_like_tree_from_plain_dict():
    source = node_from_plain({
        "name": "v1",
        "layers": [
            {"name": "conv1", "type": "CONVOLUTION", "bottom": "data", "top": "conv1", "blobs_lr": [1, 2],
             "blob_share_mode": ["STRICT"], "convolution_param": {"num_output": 4}},
            {"name": "data", "type": "DATA", "data_param": {"scale": 0.5, "source": "x"}},
        ],
    }, Pos("<dict>"))
    net, _ = upgrade_net(source)
    assert plain(net) == [
        ("name", "v1"),
        ("layer", [("name", "conv1"), ("type", "Convolution"), ("bottom", "data"), ("top", "conv1"),
                   ("param", [("share_mode", "STRICT"), ("lr_mult", 1)]), ("param", [("lr_mult", 2)]),
                   ("convolution_param", [("num_output", 4)])]),
        ("layer", [("name", "data"), ("type", "Data"), ("transform_param", [("scale", 0.5)]),
                   ("data_param", [("source", "x")])]),
    ]


def test_mixed_error_from_a_dict_has_no_line_numbers():
    source = node_from_plain({"layer": [{"name": "a"}], "layers": [{"name": "b"}]}, Pos("<dict>"))
    with pytest.raises(SpecError) as info:
        upgrade_net(source)
    assert "mixes current 'layer' (first) and legacy V1 'layers' (first)" in info.value.message


# -- solver ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (I("SGD"), "SGD"), (I("NESTEROV"), "Nesterov"), (I("ADAGRAD"), "AdaGrad"), (I("RMSPROP"), "RMSProp"),
    (I("ADADELTA"), "AdaDelta"), (I("ADAM"), "Adam"), ("ADAM", "Adam"),
    (0, "SGD"), (1, "Nesterov"), (2, "AdaGrad"), (3, "RMSProp"), (4, "AdaDelta"), (5, "Adam"),
])
def test_solver_type(value, expected):
    source = tree([("base_lr", 0.01), ("solver_type", value), ("momentum", 0.9)])
    solver_type = source.entries[1]
    solver, notes = upgrade_solver(source)
    assert solver is source
    assert [e.key for e in solver.entries] == ["base_lr", "type", "momentum"]
    assert solver.entries[1].value == Leaf(expected, "str", solver_type.value.pos)
    assert solver.entries[1].pos == solver_type.pos
    assert notes == [f"solver_type {value} -> type \"{expected}\""]


def test_solver_type_and_type_both_given_is_an_error_even_when_they_agree():
    with pytest.raises(SpecError) as info:
        upgrade_solver(tree([("solver_type", I("SGD")), ("type", "SGD")]), file="solver.prototxt")
    assert info.value.file == FILE and info.value.line == 2  # the tree's own file name comes first
    assert "both given" in info.value.message and "solver_type at line 1" in info.value.message


@pytest.mark.parametrize("value", [I("ADAMW"), 6, -1])
def test_unknown_solver_type(value):
    with pytest.raises(SpecError, match="unknown solver_type"):
        upgrade_solver(tree([("solver_type", value)]))


def test_solver_without_legacy_fields_is_unchanged_and_inline_nets_are_not_upgraded():
    source = tree([("type", "Adam"), ("net_param", [("layers", [("name", "x"), ("type", I("RELU"))])])])
    before = plain(source)
    solver, notes = upgrade_solver(source)
    assert plain(solver) == before
    assert len(notes) == 1 and notes[0].startswith("net_param at line 2 has legacy fields")
    assert upgrade_solver(tree([("base_lr", 0.1)]))[1] == []


# -- through the prototxt reader, when it is there ------------------------------------------------------

LENET_V1_TEXT = """\
name: "LeNet"
layers {
  name: "mnist"
  type: DATA
  top: "data"
  top: "label"
  data_param { source: "mnist_train_lmdb" backend: LMDB batch_size: 64 scale: 0.00390625 }
  include: { phase: TRAIN }
}
layers {
  name: "conv1"
  type: CONVOLUTION
  bottom: "data"
  top: "conv1"
  blobs_lr: 1
  blobs_lr: 2
  convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } }
}
"""


def test_through_the_prototxt_reader():
    textformat = pytest.importorskip("caffe_like.spec.textformat")
    net, notes = upgrade_net(textformat.parse(LENET_V1_TEXT, "lenet.prototxt"), file="lenet.prototxt")
    mnist, conv1 = layers_of(net)
    assert plain(mnist)[4] == ("transform_param", [("scale", 0.00390625)])
    assert plain(conv1)[:6] == [("name", "conv1"), ("type", "Convolution"), ("bottom", "data"),
                                ("top", "conv1"), ("param", [("lr_mult", 1)]), ("param", [("lr_mult", 2)])]
    assert conv1.first("type").pos.line == 12 and conv1.get_all("param")[1].pos.line == 16
    assert mnist.first("transform_param").pos.line == 7

"""The schema in caffe_like.spec.params: completeness, field numbers and defaults from BVLC caffe.proto."""

from __future__ import annotations

import dataclasses
import inspect
import math

import pytest

from caffe_like.errors import SpecError
from caffe_like.spec import params
from caffe_like.spec.params import (
    ALL_MESSAGES,
    LAYER_PARAM_FIELDS,
    LOSS_LAYER_TYPES,
    DataParameter,
    LayerParameter,
    NetParameter,
    SolverParameter,
    known_layer_types,
    layer_param_fields,
    register_layer_type,
)
from caffe_like.spec.schema import (
    EnumType,
    Message,
    bind,
    default_of,
    field_info,
    fields_of,
    get_or_default,
    has,
    to_plain,
)
from caffe_like.spec.tree import node_from_plain

_PY_TYPES = {
    "int32": int, "int64": int, "uint32": int, "uint64": int,
    "float": float, "double": float, "bool": bool, "string": str, "bytes": bytes,
}


def _all_fields():
    for cls in ALL_MESSAGES:
        for info in fields_of(cls):
            yield cls, info


def _field_id(item):
    cls, info = item
    return f"{cls.__name__}.{info.name}"


# --------------------------------------------------------------------------------------------------
# structure


def test_all_messages_lists_every_message_class_once():
    defined = {obj for _, obj in inspect.getmembers(params, inspect.isclass)
               if issubclass(obj, Message) and obj is not Message and obj.__module__ == params.__name__}
    assert set(ALL_MESSAGES) == defined
    assert len(ALL_MESSAGES) == len(set(ALL_MESSAGES))
    assert all(dataclasses.is_dataclass(cls) for cls in ALL_MESSAGES)


def test_every_referenced_message_is_in_the_schema():
    for cls, info in _all_fields():
        if info.ptype == "message":
            sub = info.message_cls()
            assert sub in ALL_MESSAGES, f"{cls.__name__}.{info.name} -> {sub}"


def test_no_legacy_layer_messages():
    names = {cls.__name__ for cls in ALL_MESSAGES}
    assert "V1LayerParameter" not in names and "V0LayerParameter" not in names
    assert "layers" not in {i.name for i in fields_of(NetParameter)}


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
def test_field_numbers_unique_and_valid(cls):
    numbers = [info.number for info in fields_of(cls)]
    assert len(numbers) == len(set(numbers)), sorted(n for n in numbers if numbers.count(n) > 1)
    for n in numbers:
        assert 1 <= n < 2**29 and not 19000 <= n <= 19999, n


@pytest.mark.parametrize("item", list(_all_fields()), ids=_field_id)
def test_field_doc_and_default(item):
    cls, info = item
    assert info.doc.strip(), "every field is documented"
    assert "\n" not in info.doc
    if info.repeated:
        assert default_of(cls, info.name) == []
        assert getattr(cls(), info.name) == []
        if info.ptype == "enum":
            assert isinstance(info.enum, EnumType)
        if info.ptype == "message":
            assert issubclass(info.message_cls(), Message)
        return
    if info.ptype == "message":
        assert info.default is None
        assert issubclass(info.message_cls(), Message)
        return
    if info.ptype == "enum":
        assert isinstance(info.enum, EnumType)
        assert info.default in info.enum
        return
    expected = _PY_TYPES[info.ptype]
    assert type(info.default) is expected, (info.ptype, info.default)
    assert not has(cls(), info.name), "a fresh message has no field given"


def test_packed_fields_are_those_of_caffe_proto():
    packed = {f"{cls.__name__}.{info.name}" for cls, info in _all_fields() if info.packed}
    assert packed == {"BlobShape.dim", "BlobProto.data", "BlobProto.diff", "BlobProto.double_data",
                      "BlobProto.double_diff"}


def test_single_as_value_names_repeated_fields():
    for cls in ALL_MESSAGES:
        for name in cls.SINGLE_AS_VALUE:
            assert field_info(cls, name).repeated, (cls.__name__, name)


# --------------------------------------------------------------------------------------------------
# enums


def _enums():
    seen = {}
    for _, info in _all_fields():
        if info.enum is not None:
            seen[id(info.enum)] = info.enum
    return list(seen.values())


def test_enum_numbers_unique_and_extensions_declared():
    for enum_type in _enums():
        numbers = list(enum_type.values.values())
        assert len(numbers) == len(set(numbers)), enum_type
        assert enum_type.extension_values <= set(enum_type.values)
    extended = {e.name: e.extension_values for e in _enums() if e.extension_values}
    assert extended == {"DB": frozenset({"IDX", "CIFAR", "NPZ"})}


@pytest.mark.parametrize("owner, name, values", [
    (params.PoolingParameter, "pool", {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}),
    (params.PoolingParameter, "round_mode", {"CEIL": 0, "FLOOR": 1}),
    (params.PoolingParameter, "engine", {"DEFAULT": 0, "CAFFE": 1, "CUDNN": 2}),
    (params.SPPParameter, "pool", {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}),
    (params.EltwiseParameter, "operation", {"PROD": 0, "SUM": 1, "MAX": 2}),
    (params.LRNParameter, "norm_region", {"ACROSS_CHANNELS": 0, "WITHIN_CHANNEL": 1}),
    (params.ReductionParameter, "operation", {"SUM": 1, "ASUM": 2, "SUMSQ": 3, "MEAN": 4}),
    (params.HingeLossParameter, "norm", {"L1": 1, "L2": 2}),
    (params.LossParameter, "normalization", {"FULL": 0, "VALID": 1, "BATCH_SIZE": 2, "NONE": 3}),
    (DataParameter, "backend", {"LEVELDB": 0, "LMDB": 1, "IDX": 100, "CIFAR": 101, "NPZ": 102}),
    (params.FillerParameter, "variance_norm", {"FAN_IN": 0, "FAN_OUT": 1, "AVERAGE": 2}),
    (params.ParamSpec, "share_mode", {"STRICT": 0, "PERMISSIVE": 1}),
    (params.NetState, "phase", {"TRAIN": 0, "TEST": 1}),
    (SolverParameter, "snapshot_format", {"HDF5": 0, "BINARYPROTO": 1}),
    (SolverParameter, "solver_mode", {"CPU": 0, "GPU": 1}),
    (SolverParameter, "solver_type", {"SGD": 0, "NESTEROV": 1, "ADAGRAD": 2, "RMSPROP": 3, "ADADELTA": 4, "ADAM": 5}),
    (params.LargeMarginInnerProductParameter, "type", {"SINGLE": 0, "DOUBLE": 1, "TRIPLE": 2, "QUADRUPLE": 3}),
])
def test_enum_values(owner, name, values):
    assert field_info(owner, name).enum.values == values


# --------------------------------------------------------------------------------------------------
# Caffe's defaults and field numbers (checked against BVLC master's caffe.proto)

DEFAULTS = [
    (params.PoolingParameter, "pool", "MAX"),
    (params.PoolingParameter, "round_mode", "CEIL"),
    (params.PoolingParameter, "stride", 1),
    (params.PoolingParameter, "pad", 0),
    (params.BatchNormParameter, "moving_average_fraction", 0.999),
    (params.BatchNormParameter, "eps", 1e-5),
    (params.LRNParameter, "local_size", 5),
    (params.LRNParameter, "alpha", 1.0),
    (params.LRNParameter, "beta", 0.75),
    (params.LRNParameter, "k", 1.0),
    (params.DropoutParameter, "dropout_ratio", 0.5),
    (params.FillerParameter, "type", "constant"),
    (params.FillerParameter, "std", 1.0),
    (params.FillerParameter, "max", 1.0),
    (params.FillerParameter, "sparse", -1),
    (params.ConvolutionParameter, "bias_term", True),
    (params.ConvolutionParameter, "group", 1),
    (params.ConvolutionParameter, "axis", 1),
    (params.InnerProductParameter, "transpose", False),
    (params.EltwiseParameter, "operation", "SUM"),
    (params.EltwiseParameter, "stable_prod_grad", True),
    (params.ScaleParameter, "bias_term", False),
    (params.ScaleParameter, "num_axes", 1),
    (params.CropParameter, "axis", 2),
    (params.FlattenParameter, "end_axis", -1),
    (params.ReshapeParameter, "num_axes", -1),
    (params.ExpParameter, "base", -1.0),
    (params.MVNParameter, "eps", 1e-9),
    (params.MVNParameter, "normalize_variance", True),
    (params.AccuracyParameter, "top_k", 1),
    (params.SoftmaxParameter, "axis", 1),
    (params.LossParameter, "normalization", "VALID"),
    (params.HingeLossParameter, "norm", "L1"),
    (DataParameter, "backend", "LEVELDB"),
    (DataParameter, "prefetch", 4),
    (params.ImageDataParameter, "batch_size", 1),
    (params.ImageDataParameter, "is_color", True),
    (params.WindowDataParameter, "crop_mode", "warp"),
    (params.WindowDataParameter, "fg_fraction", 0.25),
    (params.TransformationParameter, "scale", 1.0),
    (params.ParamSpec, "lr_mult", 1.0),
    (params.ParamSpec, "decay_mult", 1.0),
    (params.NetState, "phase", "TEST"),
    (params.NetStateRule, "phase", "TRAIN"),
    (params.SwishParameter, "beta", 1.0),
    (params.ContrastiveLossParameter, "margin", 1.0),
    (SolverParameter, "delta", 1e-8),
    (SolverParameter, "momentum2", 0.999),
    (SolverParameter, "rms_decay", 0.99),
    (SolverParameter, "average_loss", 1),
    (SolverParameter, "random_seed", -1),
    (SolverParameter, "test_initialization", True),
    (SolverParameter, "snapshot_after_train", True),
    (SolverParameter, "snapshot_format", "BINARYPROTO"),
    (SolverParameter, "solver_mode", "GPU"),
    (SolverParameter, "regularization_type", "L2"),
    (SolverParameter, "clip_gradients", -1.0),
    (SolverParameter, "iter_size", 1),
    (SolverParameter, "type", "SGD"),
    (SolverParameter, "solver_type", "SGD"),
    (SolverParameter, "layer_wise_reduce", True),
    (SolverParameter, "momentum", 0.0),
    (params.LargeMarginInnerProductParameter, "type", "SINGLE"),
    (params.LargeMarginInnerProductParameter, "base", 1.0),
    (params.LargeMarginInnerProductParameter, "gamma", 0.0),
    (params.LargeMarginInnerProductParameter, "power", 1.0),
    (params.CenterLossParameter, "axis", 1),
    (params.ReciprocalNormLossParameter, "epsilon", 1e-5),
    (DataParameter, "shuffle", False),
    (DataParameter, "cifar_label", "fine"),
]


@pytest.mark.parametrize("cls, name, expected", DEFAULTS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_caffe_defaults(cls, name, expected):
    assert default_of(cls, name) == expected
    assert getattr(cls(), name) == expected


# every *_param field of BVLC master's LayerParameter, with its number, in caffe.proto order
BVLC_LAYER_PARAM_NUMBERS = [
    ("transform_param", 100), ("loss_param", 101), ("accuracy_param", 102), ("argmax_param", 103),
    ("batch_norm_param", 139), ("bias_param", 141), ("clip_param", 148), ("concat_param", 104),
    ("contrastive_loss_param", 105), ("convolution_param", 106), ("crop_param", 144), ("data_param", 107),
    ("dropout_param", 108), ("dummy_data_param", 109), ("eltwise_param", 110), ("elu_param", 140),
    ("embed_param", 137), ("exp_param", 111), ("flatten_param", 135), ("hdf5_data_param", 112),
    ("hdf5_output_param", 113), ("hinge_loss_param", 114), ("image_data_param", 115),
    ("infogain_loss_param", 116), ("inner_product_param", 117), ("input_param", 143), ("log_param", 134),
    ("lrn_param", 118), ("memory_data_param", 119), ("mvn_param", 120), ("parameter_param", 145),
    ("pooling_param", 121), ("power_param", 122), ("prelu_param", 131), ("python_param", 130),
    ("recurrent_param", 146), ("reduction_param", 136), ("relu_param", 123), ("reshape_param", 133),
    ("scale_param", 142), ("sigmoid_param", 124), ("softmax_param", 125), ("spp_param", 132),
    ("slice_param", 126), ("swish_param", 147), ("tanh_param", 127), ("threshold_param", 128),
    ("tile_param", 138), ("window_data_param", 129),
]


def test_layer_parameter_matches_bvlc_master():
    infos = fields_of(LayerParameter)
    head = [(i.name, i.number) for i in infos[:11]]
    assert head == [("name", 1), ("type", 2), ("bottom", 3), ("top", 4), ("phase", 10), ("loss_weight", 5),
                    ("param", 6), ("blobs", 7), ("propagate_down", 11), ("include", 8), ("exclude", 9)]
    bvlc = [(i.name, i.number) for i in infos[11:] if not i.extension]
    assert bvlc == BVLC_LAYER_PARAM_NUMBERS
    extensions = {i.name: i.number for i in infos if i.extension}
    assert extensions == {"largemargin_inner_product_param": 202, "reciprocal_norm_loss_param": 8001,
                          "center_loss_param": 8002}
    # caffe-face's 147 is BVLC's swish_param: it is recorded for binary readers, not reused
    assert params.FORK_LAYER_FIELD_NUMBERS["center_loss_param"] == (147,)


@pytest.mark.parametrize("cls, name, number", [
    (NetParameter, "layer", 100),
    (NetParameter, "state", 6),
    (NetParameter, "input_dim", 4),
    (LayerParameter, "convolution_param", 106),
    (LayerParameter, "pooling_param", 121),
    (LayerParameter, "batch_norm_param", 139),
    (LayerParameter, "transform_param", 100),
    (LayerParameter, "loss_param", 101),
    (LayerParameter, "largemargin_inner_product_param", 202),
    (params.LossParameter, "normalize", 2),
    (params.LossParameter, "normalization", 3),
    (params.PoolingParameter, "round_mode", 13),
    (params.ConvolutionParameter, "dilation", 18),
    (params.SliceParameter, "axis", 3),
    (params.ConcatParameter, "concat_dim", 1),
    (DataParameter, "backend", 8),
    (DataParameter, "prefetch", 10),
    (DataParameter, "shuffle", 1000),
    (DataParameter, "cifar_label", 1001),
    (params.BlobProto, "shape", 7),
    (params.BlobProto, "double_data", 8),
    (SolverParameter, "net", 24),
    (SolverParameter, "net_param", 25),
    (SolverParameter, "train_state", 26),
    (SolverParameter, "test_state", 27),
    (SolverParameter, "snapshot_format", 37),
    (SolverParameter, "type", 40),
    (SolverParameter, "layer_wise_reduce", 41),
    (SolverParameter, "weights", 42),
    (params.SolverState, "current_step", 4),
    (params.LargeMarginInnerProductParameter, "lambda_min", 9),
    (params.CenterLossParameter, "center_filler", 2),
])
def test_field_numbers(cls, name, number):
    assert field_info(cls, name).number == number


def test_solver_parameter_types_and_order():
    infos = {i.name: i for i in fields_of(SolverParameter)}
    assert infos["net_param"].message_cls() is NetParameter
    assert infos["train_net_param"].message_cls() is NetParameter
    assert infos["test_net_param"].repeated and infos["test_net_param"].message_cls() is NetParameter
    assert infos["train_state"].message_cls() is params.NetState
    assert infos["test_state"].repeated and infos["test_state"].message_cls() is params.NetState
    assert infos["random_seed"].ptype == "int64" and infos["max_iter"].ptype == "int32"
    assert infos["weights"].repeated and infos["weights"].ptype == "string"
    assert [i.number for i in fields_of(SolverParameter)][:8] == [24, 25, 1, 2, 21, 22, 26, 27]
    assert len(infos) == 42  # BVLC master uses every id from 1 to 42
    assert sorted(i.number for i in infos.values()) == list(range(1, 43))


def test_extension_marks():
    ext = {f"{cls.__name__}.{info.name}" for cls, info in _all_fields() if info.extension}
    paper = {f"{cls.__name__}.{info.name}" for cls in (params.LargeMarginInnerProductParameter,
                                                       params.CenterLossParameter,
                                                       params.ReciprocalNormLossParameter)
             for info in fields_of(cls)}
    assert ext == paper | {
        "DataParameter.shuffle", "DataParameter.cifar_label", "DropoutParameter.scale_train", "SolverState.caffe_like_extra",
        "LayerParameter.largemargin_inner_product_param", "LayerParameter.center_loss_param",
        "LayerParameter.reciprocal_norm_loss_param",
    }
    for cls, info in _all_fields():
        if info.extension and cls is DataParameter:
            assert info.number >= 1000


def test_required_fields():
    required = {f"{cls.__name__}.{info.name}" for cls, info in _all_fields() if info.required}
    for name in ("ConvolutionParameter.num_output", "InnerProductParameter.num_output",
                 "EmbedParameter.num_output", "LargeMarginInnerProductParameter.num_output",
                 "CenterLossParameter.num_output", "ClipParameter.min", "ClipParameter.max",
                 "LayerParameter.type", "TileParameter.tiles", "RecurrentParameter.num_output"):
        assert name in required
    assert "PoolingParameter.kernel_size" not in required  # not with global_pooling or kernel_h/w
    assert "InfogainLossParameter.source" not in required  # H may be bottom 2


# --------------------------------------------------------------------------------------------------
# layer types


def test_layer_param_fields_name_layer_parameter_blocks():
    blocks = {i.name for i in fields_of(LayerParameter) if i.ptype == "message" and not i.repeated}
    for type_name, fields in LAYER_PARAM_FIELDS.items():
        assert isinstance(fields, tuple), type_name
        for name in fields:
            assert name in blocks, (type_name, name)
    used = {name for fields in LAYER_PARAM_FIELDS.values() for name in fields}
    assert used == blocks, "every *_param block is read by some layer type"


def test_layer_param_fields_examples():
    assert LAYER_PARAM_FIELDS["Convolution"] == ("convolution_param",)
    assert LAYER_PARAM_FIELDS["Deconvolution"] == ("convolution_param",)
    assert LAYER_PARAM_FIELDS["SoftmaxWithLoss"] == ("softmax_param", "loss_param")
    assert LAYER_PARAM_FIELDS["Data"] == ("data_param", "transform_param")
    assert LAYER_PARAM_FIELDS["ReLU"] == ("relu_param",)
    assert LAYER_PARAM_FIELDS["Split"] == ()
    assert LAYER_PARAM_FIELDS["HDF5Data"] == ("hdf5_data_param",)  # refuses transform_param
    assert LAYER_PARAM_FIELDS["LargeMarginInnerProduct"] == ("largemargin_inner_product_param",)
    assert LAYER_PARAM_FIELDS["CenterLoss"] == ("center_loss_param",)
    assert LAYER_PARAM_FIELDS["ReciprocalNormLoss"] == ("reciprocal_norm_loss_param", "loss_param")


def test_bvlc_layer_types_are_known():
    bvlc = {
        "AbsVal", "Accuracy", "ArgMax", "BatchNorm", "BatchReindex", "Bias", "BNLL", "Clip", "Concat",
        "ContrastiveLoss", "Convolution", "Crop", "Data", "Deconvolution", "Dropout", "DummyData", "Eltwise",
        "ELU", "Embed", "EuclideanLoss", "Exp", "Filter", "Flatten", "HDF5Data", "HDF5Output", "HingeLoss",
        "Im2col", "ImageData", "InfogainLoss", "InnerProduct", "Input", "Log", "LRN", "LSTM", "MemoryData",
        "MultinomialLogisticLoss", "MVN", "Parameter", "Pooling", "Power", "PReLU", "Python", "Recurrent",
        "Reduction", "ReLU", "Reshape", "RNN", "Scale", "Sigmoid", "SigmoidCrossEntropyLoss", "Silence",
        "Slice", "Softmax", "SoftmaxWithLoss", "Split", "SPP", "Swish", "TanH", "Threshold", "Tile",
        "WindowData",
    }
    paper = {"LargeMarginInnerProduct", "CenterLoss", "ReciprocalNormLoss"}
    assert set(LAYER_PARAM_FIELDS) == bvlc | paper
    assert bvlc | paper <= known_layer_types()


def test_loss_layer_types():
    assert LOSS_LAYER_TYPES == {"SoftmaxWithLoss", "EuclideanLoss", "HingeLoss", "SigmoidCrossEntropyLoss",
                                "MultinomialLogisticLoss", "InfogainLoss", "ContrastiveLoss",
                                "ReciprocalNormLoss"}
    assert "CenterLoss" not in LOSS_LAYER_TYPES
    assert "Accuracy" not in LOSS_LAYER_TYPES
    assert LOSS_LAYER_TYPES <= set(LAYER_PARAM_FIELDS)


def test_register_layer_type(monkeypatch):
    monkeypatch.setattr(params, "_LAYER_TYPES", dict(params._LAYER_TYPES))
    assert "MyScaler" not in known_layer_types()
    register_layer_type("MyScaler", ("scale_param",))
    assert "MyScaler" in known_layer_types()
    assert layer_param_fields("MyScaler") == ("scale_param",)
    register_layer_type("MyScaler", ("scale_param",))  # same again: fine
    with pytest.raises(ValueError, match="already known"):
        register_layer_type("MyScaler", ("power_param",))
    with pytest.raises(ValueError, match="already known"):
        register_layer_type("Convolution", ())
    register_layer_type("Convolution", ("convolution_param",))  # what Caffe's layer reads: fine
    register_layer_type("ForkLayer", ["fork_special_param"])  # a fork block, kept verbatim by the binder
    assert layer_param_fields("ForkLayer") == ("fork_special_param",)
    with pytest.raises(ValueError):
        register_layer_type("", ())
    with pytest.raises(ValueError):
        register_layer_type("Bad", "scale_param")
    with pytest.raises(KeyError):
        layer_param_fields("NoSuchLayer")
    assert "MyScaler" not in LAYER_PARAM_FIELDS  # the built-in table stays as Caffe has it


# --------------------------------------------------------------------------------------------------
# binding smoke tests (dict -> Node -> message -> dict)

LENET = {
    "name": "lenet_rn",
    "force_backward": False,
    "layer": [
        {"name": "mnist", "type": "Data", "top": ["data", "label"], "include": {"phase": "TRAIN"},
         "transform_param": {"scale": 0.00390625},
         "data_param": {"source": "mnist/train", "backend": "IDX", "batch_size": 64, "shuffle": True}},
        {"name": "mnist", "type": "Data", "top": ["data", "label"], "include": {"phase": "TEST"},
         "transform_param": {"scale": 0.00390625, "mean_value": 0.5},
         "data_param": {"source": "mnist/test", "backend": "IDX", "batch_size": 100}},
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "param": [{"lr_mult": 1}, {"lr_mult": 2, "decay_mult": 0}],
         "convolution_param": {"num_output": 20, "kernel_size": 5, "stride": 1, "pad": [1, 2],
                               "weight_filler": {"type": "xavier"}, "bias_filler": {"type": "constant"}}},
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2, "round_mode": "FLOOR"}},
        {"name": "ip1", "type": "InnerProduct", "bottom": "pool1", "top": "ip1",
         "inner_product_param": {"num_output": 2, "weight_filler": {"type": "gaussian", "std": 0.01}}},
        {"name": "relu1", "type": "ReLU", "bottom": "ip1", "top": "ip1"},
        {"name": "ip2", "type": "LargeMarginInnerProduct", "bottom": ["ip1", "label"], "top": ["ip2", "lambda"],
         "param": [{"name": "ip2_w", "lr_mult": 1}],
         "largemargin_inner_product_param": {"num_output": 10, "type": "QUADRUPLE", "base": 1000,
                                             "gamma": 2.5e-05, "power": 35, "lambda_min": 0,
                                             "weight_filler": {"type": "msra"}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip2", "label"], "top": "loss",
         "loss_param": {"normalization": "VALID", "ignore_label": -1}},
        {"name": "center", "type": "CenterLoss", "bottom": ["ip1", "label"], "top": "center_loss",
         "loss_weight": 0.01, "param": [{"lr_mult": 1, "decay_mult": 0}],
         "center_loss_param": {"num_output": 10, "center_filler": {"type": "xavier"}}},
        {"name": "incay", "type": "ReciprocalNormLoss", "bottom": ["ip1", "ip2", "label"], "top": "incay",
         "loss_weight": 0.1, "loss_param": {"normalization": "BATCH_SIZE"},
         "reciprocal_norm_loss_param": {"epsilon": 0.001}},
        {"name": "accuracy", "type": "Accuracy", "bottom": ["ip2", "label"], "top": "accuracy",
         "include": {"phase": "TEST", "stage": "val"}, "accuracy_param": {"top_k": 1}},
    ],
}

SOLVER = {
    "net": "lenet.yaml",
    "test_iter": 100,
    "test_interval": 500,
    "base_lr": 0.01,
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "lr_policy": "multistep",
    "gamma": 0.8,
    "stepvalue": [5000, 8000],
    "display": 100,
    "max_iter": 10000,
    "snapshot": 5000,
    "snapshot_prefix": "snapshots/lenet",
    "solver_mode": "CPU",
    "type": "SGD",
    "random_seed": 1701,
    "train_state": {"level": 1, "stage": ["a", "b"]},
    "weights": ["pretrained.caffemodel", "other.caffemodel"],
}


def test_bind_lenet_round_trip():
    net = bind(node_from_plain(LENET), NetParameter)
    assert isinstance(net, NetParameter)
    assert len(net.layer) == len(LENET["layer"])
    data = net.layer[0]
    assert data.data_param.backend == "IDX" and data.data_param.shuffle is True
    assert data.include[0].phase == "TRAIN"
    assert data.transform_param.scale == pytest.approx(0.00390625)
    conv = net.layer[2]
    assert conv.convolution_param.kernel_size == [5]
    assert conv.convolution_param.pad == [1, 2]
    assert has(conv.convolution_param, "num_output") and not has(conv.convolution_param, "group")
    assert conv.convolution_param.group == 1
    assert [p.lr_mult for p in conv.param] == [1.0, 2.0]
    pool = net.layer[3].pooling_param
    assert (pool.pool, pool.round_mode, pool.pad) == ("MAX", "FLOOR", 0)
    relu = net.layer[5]
    assert relu.relu_param is None
    assert get_or_default(relu, "relu_param").negative_slope == 0.0
    lm = net.layer[6].largemargin_inner_product_param
    assert lm.type == "QUADRUPLE" and lm.axis == 1 and lm.iteration == 0
    assert lm.base == 1000.0 and isinstance(lm.base, float)
    loss = net.layer[7]
    assert loss.loss_param.normalization == "VALID" and loss.loss_param.ignore_label == -1
    assert not has(loss.loss_param, "normalize")
    assert net.layer[8].center_loss_param.num_output == 10
    assert net.layer[9].reciprocal_norm_loss_param.epsilon == pytest.approx(0.001)
    assert net.layer[10].include[0].stage == ["val"]
    assert to_plain(net) == LENET


def test_bind_solver_round_trip():
    solver = bind(node_from_plain(SOLVER), SolverParameter)
    assert solver.test_iter == [100]
    assert solver.lr_policy == "multistep" and solver.stepvalue == [5000, 8000]
    assert solver.solver_mode == "CPU"
    assert solver.delta == pytest.approx(1e-8) and not has(solver, "delta")
    assert has(solver, "type")  # given, even though it equals the default
    assert solver.train_state.phase == "TEST" and not has(solver.train_state, "phase")
    assert to_plain(solver) == SOLVER


def test_bind_solver_with_inline_nets():
    plain = {"net_param": LENET, "test_net_param": [LENET, LENET], "test_iter": [10, 20],
             "test_state": [{"stage": "val"}, {"phase": "TEST", "level": 2}], "lr_policy": "fixed",
             "base_lr": 0.1, "solver_type": "NESTEROV", "snapshot_format": "HDF5"}
    solver = bind(node_from_plain(plain), SolverParameter)
    assert isinstance(solver.net_param, NetParameter) and len(solver.test_net_param) == 2
    assert solver.test_net_param[1].layer[2].convolution_param.num_output == 20
    assert solver.test_state[0].stage == ["val"]
    assert to_plain(solver) == plain


def test_bind_errors_name_the_field():
    bad = {"layer": [{"name": "pool1", "type": "Pooling", "pooling_param": {"pool": "MAXIMUM"}}]}
    with pytest.raises(SpecError, match="MAX"):
        bind(node_from_plain(bad), NetParameter)
    typo = {"layer": [{"name": "c", "type": "Convolution", "convolution_param": {"num_outputs": 3}}]}
    with pytest.raises(SpecError, match="num_output"):
        bind(node_from_plain(typo), NetParameter)
    negative = {"layer": [{"name": "c", "type": "Convolution", "convolution_param": {"num_output": -3}}]}
    with pytest.raises(SpecError, match="uint32"):
        bind(node_from_plain(negative), NetParameter)
    with pytest.raises(SpecError, match="unknown field"):
        bind(node_from_plain({"lr_polcy": "fixed"}), SolverParameter)


def test_special_float_values_and_blobs():
    layer = bind(node_from_plain({"name": "clip", "type": "Clip", "clip_param": {"min": "-inf", "max": 6},
                                  "blobs": {"shape": {"dim": [2, 3]}, "data": [1, 2, 3, 4, 5, 6]}}),
                 LayerParameter)
    assert layer.clip_param.min == -math.inf and layer.clip_param.max == 6.0
    assert layer.blobs[0].shape.dim == [2, 3] and layer.blobs[0].data == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]

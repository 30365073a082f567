"""The schema: one documented dataclass per Caffe message, with Caffe's field numbers and defaults.

This module *is* the documentation of every field: its comment states the Caffe meaning and default.
Field numbers are those of BVLC caffe.proto (they matter for binary .caffemodel files); fields that
BVLC Caffe lacks are marked ``extension=True`` and say where they come from.

SEED: this file is being completed (all of BVLC caffe.proto + the paper's blocks).
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import EnumType, Message, enum, message, repeated, scalar

PHASE = EnumType("Phase", TRAIN=0, TEST=1)
VARIANCE_NORM = EnumType("VarianceNorm", FAN_IN=0, FAN_OUT=1, AVERAGE=2)
ENGINE = EnumType("Engine", DEFAULT=0, CAFFE=1, CUDNN=2)


@dataclass
class BlobShape(Message):
    """Shape of a blob: ``dim`` from the outermost axis in."""

    dim: list = repeated(1, "int64", "size of each axis (N, C, H, W, ...)", packed=True)


@dataclass
class FillerParameter(Message):
    """How to initialise a learnable blob (Caffe's fillers, ``include/caffe/filler.hpp``)."""

    type: str = scalar(1, "string", "constant", "constant | uniform | gaussian | positive_unitball | xavier | msra | bilinear; default constant")
    value: float = scalar(2, "float", 0.0, "constant filler: the value; default 0")
    min: float = scalar(3, "float", 0.0, "uniform filler: lower bound; default 0")
    max: float = scalar(4, "float", 1.0, "uniform filler: upper bound; default 1")
    mean: float = scalar(5, "float", 0.0, "gaussian filler: mean; default 0")
    std: float = scalar(6, "float", 1.0, "gaussian filler: standard deviation; default 1")
    sparse: int = scalar(7, "int32", -1, "gaussian filler: expected non-zeros per output (-1 = dense); default -1")
    variance_norm: str = enum(8, VARIANCE_NORM, "FAN_IN", "xavier/msra: normalise by FAN_IN, FAN_OUT or AVERAGE; default FAN_IN")


@dataclass
class ParamSpec(Message):
    """Per-blob training settings of a layer (one ``param`` block per learnable blob, in blob order)."""

    name: str = scalar(1, "string", "", "share this blob with every layer naming the same param; default '' (not shared)")
    share_mode: str = enum(2, EnumType("DimCheckMode", STRICT=0, PERMISSIVE=1), "STRICT",
                           "shared blob shapes must match exactly (STRICT) or only in count (PERMISSIVE); default STRICT")
    lr_mult: float = scalar(3, "float", 1.0, "multiplier on the solver's learning rate; 0 = frozen; default 1")
    decay_mult: float = scalar(4, "float", 1.0, "multiplier on the solver's weight_decay; default 1")


@dataclass
class NetStateRule(Message):
    """An include/exclude rule: met when every given condition holds against the NetState."""

    phase: str = enum(1, PHASE, "TRAIN", "the net's phase must equal this (when given)")
    min_level: int = scalar(2, "int32", 0, "the net's level must be >= this (when given)")
    max_level: int = scalar(3, "int32", 0, "the net's level must be <= this (when given)")
    stage: list = repeated(4, "string", "the net must have all of these stages")
    not_stage: list = repeated(5, "string", "the net must have none of these stages")


@dataclass
class NetState(Message):
    """The state a net is built in; layers are filtered against it by their include/exclude rules."""

    phase: str = enum(1, PHASE, "TEST", "TRAIN or TEST; default TEST")
    level: int = scalar(2, "int32", 0, "an integer the rules' min_level/max_level compare with; default 0")
    stage: list = repeated(3, "string", "stage names the rules' stage/not_stage compare with")


@dataclass
class ConvolutionParameter(Message):
    """Convolution and Deconvolution (``conv_layer.cpp``, ``base_conv_layer.cpp``)."""

    num_output: int = scalar(1, "uint32", 0, "number of output channels (required, > 0)", required=True)
    bias_term: bool = scalar(2, "bool", True, "learn a bias blob [num_output]; default true")
    pad: list = repeated(3, "uint32", "zero padding, once for all spatial axes or once per axis; default 0")
    kernel_size: list = repeated(4, "uint32", "kernel size, once for all spatial axes or once per axis (or kernel_h/kernel_w)")
    stride: list = repeated(6, "uint32", "stride, once for all spatial axes or once per axis; default 1")
    dilation: list = repeated(18, "uint32", "dilation, once for all spatial axes or once per axis; default 1")
    pad_h: int = scalar(9, "uint32", 0, "2-D only: vertical padding (not with pad); default 0")
    pad_w: int = scalar(10, "uint32", 0, "2-D only: horizontal padding (not with pad); default 0")
    kernel_h: int = scalar(11, "uint32", 0, "2-D only: kernel height (with kernel_w, not with kernel_size)")
    kernel_w: int = scalar(12, "uint32", 0, "2-D only: kernel width")
    stride_h: int = scalar(13, "uint32", 0, "2-D only: vertical stride (not with stride)")
    stride_w: int = scalar(14, "uint32", 0, "2-D only: horizontal stride")
    group: int = scalar(5, "uint32", 1, "channel groups; input channels and num_output must divide by it; default 1")
    weight_filler: FillerParameter = message(7, FillerParameter, "filler of the weights; default constant 0 (all zeros!)")
    bias_filler: FillerParameter = message(8, FillerParameter, "filler of the bias; default constant 0")
    engine: str = enum(15, ENGINE, "DEFAULT", "implementation choice in Caffe; ignored by caffe_like")
    axis: int = scalar(16, "int32", 1, "the channel axis; spatial axes follow it; default 1")
    force_nd_im2col: bool = scalar(17, "bool", False, "Caffe implementation detail; ignored by caffe_like")


@dataclass
class LayerParameter(Message):
    """One layer of a net (``layer { ... }``)."""

    ALLOW_UNKNOWN_PARAM_BLOCKS = True
    SINGLE_AS_VALUE = frozenset({"bottom", "top", "include", "exclude", "loss_weight", "propagate_down"})

    name: str = scalar(1, "string", "", "the layer's name; weights in a .caffemodel are matched by it")
    type: str = scalar(2, "string", "", "the layer type, e.g. Convolution (required)", required=True)
    bottom: list = repeated(3, "string", "names of the input blobs")
    top: list = repeated(4, "string", "names of the output blobs; a top named like the bottom at the same index is in-place")
    phase: str = enum(10, PHASE, "TRAIN", "set by the net at setup; not normally written by hand")
    loss_weight: list = repeated(5, "float", "weight of each top in the net's objective; default 1 for top 0 of loss layers, else 0")
    param: list = repeated(6, "message", "one ParamSpec per learnable blob (lr_mult, decay_mult, sharing)", message_cls=ParamSpec)
    blobs: list = repeated(7, "message", "stored parameter blobs (in .caffemodel files)", message_cls=lambda: BlobProto)
    propagate_down: list = repeated(11, "bool", "one per bottom: force (true) or stop (false) its gradient")
    include: list = repeated(8, "message", "keep the layer only if one of these rules is met", message_cls=NetStateRule)
    exclude: list = repeated(9, "message", "drop the layer if one of these rules is met", message_cls=NetStateRule)
    convolution_param: ConvolutionParameter = message(106, ConvolutionParameter, "Convolution / Deconvolution settings")


@dataclass
class BlobProto(Message):
    """A stored blob (weights, mean files). Numbers live in ``data``/``double_data``."""

    shape: BlobShape = message(7, BlobShape, "the blob's shape")
    data: list = repeated(5, "float", "float32 values, row-major", packed=True)
    diff: list = repeated(6, "float", "float32 gradients, row-major", packed=True)
    double_data: list = repeated(8, "double", "float64 values", packed=True)
    double_diff: list = repeated(9, "double", "float64 gradients", packed=True)
    num: int = scalar(1, "int32", 0, "legacy 4-D shape: N")
    channels: int = scalar(2, "int32", 0, "legacy 4-D shape: C")
    height: int = scalar(3, "int32", 0, "legacy 4-D shape: H")
    width: int = scalar(4, "int32", 0, "legacy 4-D shape: W")


@dataclass
class NetParameter(Message):
    """A whole net (a .prototxt, or a .caffemodel with blobs)."""

    SINGLE_AS_VALUE = frozenset({"input"})

    name: str = scalar(1, "string", "", "the net's name")
    input: list = repeated(3, "string", "deprecated: net input blob names (use an Input layer)")
    input_shape: list = repeated(8, "message", "deprecated: shape of each input", message_cls=BlobShape)
    input_dim: list = repeated(4, "int32", "deprecated: 4 dims per input")
    force_backward: bool = scalar(5, "bool", False, "compute every gradient, even where no loss needs it; default false")
    state: NetState = message(6, NetState, "the NetState used to filter layers (phase default TEST)")
    debug_info: bool = scalar(7, "bool", False, "log data/diff magnitudes per layer; default false")
    layer: list = repeated(100, "message", "the layers, in order", message_cls=LayerParameter)

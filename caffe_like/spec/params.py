"""The schema: one documented dataclass per Caffe message, with Caffe's field numbers and defaults.

This module *is* the documentation of every field: each one states the Caffe meaning and default.
Field numbers, names, types, defaults and enum values are those of BVLC master's ``caffe.proto``
(``LayerParameter`` next free id 149 after ``clip_param``, ``SolverParameter`` next free id 43 after
``weights``); they matter for binary ``.caffemodel`` / ``.solverstate`` / ``.binaryproto`` files.
Messages are declared with their fields in caffe.proto declaration order.

Left out on purpose: ``V1LayerParameter`` and ``V0LayerParameter`` (legacy nets are upgraded on the
syntax tree by :mod:`caffe_like.spec.upgrade` before binding), so ``NetParameter.layers`` (field 2) is
not declared either.

Fields and enum values BVLC Caffe lacks are marked ``extension=True`` (enum values: the enum's
``extension_values``) and say where they come from:

* the paper's blocks: ``largemargin_inner_product_param`` (202, wy1iu/LargeMargin_Softmax_Loss),
  ``center_loss_param`` (ydwen/caffe-face) and ``reciprocal_norm_loss_param`` (caffe_like's own);
* ``DataParameter.backend`` values IDX / CIFAR / NPZ and DataParameter fields numbered from 1000.

``required=True`` means "Caffe fails at layer (or solver) setup without it", not a proto2 ``required``
label: only ``ClipParameter.min/max`` are proto2-required in caffe.proto.

At the end: :data:`LAYER_PARAM_FIELDS` (which ``*_param`` blocks each layer type reads),
:data:`LOSS_LAYER_TYPES`, and a torch-free registry of layer type names
(:func:`known_layer_types`, :func:`register_layer_type`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import EnumType, Message, enum, message, repeated, scalar


def _enum(name: str, extension_values: tuple[str, ...] = (), **values: int) -> EnumType:
    """An EnumType; ``extension_values`` names the values that are not in BVLC caffe.proto."""
    return EnumType(name, extension_values, **values)


# --------------------------------------------------------------------------------------------------
# enums (caffe.proto nests most of them in their message; identical ones are shared here)

PHASE = _enum("Phase", TRAIN=0, TEST=1)
#: the Engine enum of Convolution, LRN, Pooling, ReLU, Sigmoid, Softmax, TanH and SPP (same values)
ENGINE = _enum("Engine", DEFAULT=0, CAFFE=1, CUDNN=2)
VARIANCE_NORM = _enum("VarianceNorm", FAN_IN=0, FAN_OUT=1, AVERAGE=2)
DIM_CHECK_MODE = _enum("DimCheckMode", STRICT=0, PERMISSIVE=1)
SNAPSHOT_FORMAT = _enum("SnapshotFormat", HDF5=0, BINARYPROTO=1)
SOLVER_MODE = _enum("SolverMode", CPU=0, GPU=1)
SOLVER_TYPE = _enum("SolverType", SGD=0, NESTEROV=1, ADAGRAD=2, RMSPROP=3, ADADELTA=4, ADAM=5)
NORMALIZATION_MODE = _enum("NormalizationMode", FULL=0, VALID=1, BATCH_SIZE=2, NONE=3)
#: DataParameter.DB; IDX, CIFAR and NPZ are caffe_like extensions (see DataParameter.backend)
DB = _enum("DB", ("IDX", "CIFAR", "NPZ"), LEVELDB=0, LMDB=1, IDX=100, CIFAR=101, NPZ=102)
ELTWISE_OP = _enum("EltwiseOp", PROD=0, SUM=1, MAX=2)
HINGE_NORM = _enum("Norm", L1=1, L2=2)
NORM_REGION = _enum("NormRegion", ACROSS_CHANNELS=0, WITHIN_CHANNEL=1)
#: PoolingParameter.PoolMethod and SPPParameter.PoolMethod (same values)
POOL_METHOD = _enum("PoolMethod", MAX=0, AVE=1, STOCHASTIC=2)
ROUND_MODE = _enum("RoundMode", CEIL=0, FLOOR=1)
REDUCTION_OP = _enum("ReductionOp", SUM=1, ASUM=2, SUMSQ=3, MEAN=4)
LARGE_MARGIN_TYPE = _enum("LargeMarginType", SINGLE=0, DOUBLE=1, TRIPLE=2, QUADRUPLE=3)


# --------------------------------------------------------------------------------------------------
# blobs and stored data


@dataclass
class BlobShape(Message):
    """Shape of a blob: ``dim`` from the outermost axis in."""

    dim: list = repeated(1, "int64", "size of each axis, outermost first (N, C, H, W, ...); none = a scalar blob", packed=True)


@dataclass
class BlobProto(Message):
    """A stored blob (weights in .caffemodel, mean files in .binaryproto, solver history)."""

    shape: BlobShape | None = message(7, BlobShape, "the blob's shape (when absent, the legacy num/channels/height/width)")
    data: list = repeated(5, "float", "float32 values, row-major", packed=True)
    diff: list = repeated(6, "float", "float32 gradients, row-major", packed=True)
    double_data: list = repeated(8, "double", "float64 values, row-major (double-precision nets)", packed=True)
    double_diff: list = repeated(9, "double", "float64 gradients, row-major", packed=True)
    num: int = scalar(1, "int32", 0, "deprecated 4-D shape: N (use shape); default 0")
    channels: int = scalar(2, "int32", 0, "deprecated 4-D shape: C (use shape); default 0")
    height: int = scalar(3, "int32", 0, "deprecated 4-D shape: H (use shape); default 0")
    width: int = scalar(4, "int32", 0, "deprecated 4-D shape: W (use shape); default 0")


@dataclass
class BlobProtoVector(Message):
    """Several blobs in one binary file (e.g. the outputs of ``caffe.io`` helpers)."""

    blobs: list = repeated(1, "message", "the blobs, in order", message_cls=BlobProto)


@dataclass
class Datum(Message):
    """One record of a Caffe LMDB/LevelDB database: an image (raw or encoded) and its label."""

    channels: int = scalar(1, "int32", 0, "image channels C; default 0")
    height: int = scalar(2, "int32", 0, "image height H; default 0")
    width: int = scalar(3, "int32", 0, "image width W; default 0")
    data: bytes = scalar(4, "bytes", b"", "pixels as uint8, C x H x W row-major (or the encoded file when encoded); default empty")
    label: int = scalar(5, "int32", 0, "the class label; default 0")
    float_data: list = repeated(6, "float", "pixels as floats, used instead of data when data is empty")
    encoded: bool = scalar(7, "bool", False, "data holds an encoded image file (JPEG/PNG) to decode; default false")


@dataclass
class FillerParameter(Message):
    """How to initialise a learnable blob (Caffe's fillers, ``include/caffe/filler.hpp``)."""

    type: str = scalar(1, "string", "constant", "constant | uniform | gaussian | positive_unitball | xavier | msra | bilinear; default constant")
    value: float = scalar(2, "float", 0.0, "constant filler: the value; default 0")
    min: float = scalar(3, "float", 0.0, "uniform filler: lower bound; default 0")
    max: float = scalar(4, "float", 1.0, "uniform filler: upper bound; default 1")
    mean: float = scalar(5, "float", 0.0, "gaussian filler: mean; default 0")
    std: float = scalar(6, "float", 1.0, "gaussian filler: standard deviation; default 1")
    sparse: int = scalar(7, "int32", -1, "gaussian filler: expected non-zeros per output, -1 = dense; default -1")
    variance_norm: str = enum(8, VARIANCE_NORM, "FAN_IN", "xavier/msra: n is FAN_IN, FAN_OUT or their AVERAGE; default FAN_IN")


# --------------------------------------------------------------------------------------------------
# net state and per-blob settings


@dataclass
class NetState(Message):
    """The state a net is built in; layers are filtered against it by their include/exclude rules."""

    SINGLE_AS_VALUE = frozenset({"stage"})

    phase: str = enum(1, PHASE, "TEST", "TRAIN or TEST; default TEST (the solver sets TRAIN for its train net)")
    level: int = scalar(2, "int32", 0, "an integer that the rules' min_level/max_level compare with; default 0")
    stage: list = repeated(3, "string", "stage names that the rules' stage/not_stage compare with; default none")


@dataclass
class NetStateRule(Message):
    """An include/exclude rule: met when every condition it gives holds against the NetState."""

    SINGLE_AS_VALUE = frozenset({"stage", "not_stage"})

    phase: str = enum(1, PHASE, "TRAIN", "when given, the net's phase must equal it; unset = any phase")
    min_level: int = scalar(2, "int32", 0, "when given, the net's level must be >= it; unset = no bound")
    max_level: int = scalar(3, "int32", 0, "when given, the net's level must be <= it; unset = no bound")
    stage: list = repeated(4, "string", "the net must have all of these stages")
    not_stage: list = repeated(5, "string", "the net must have none of these stages")


@dataclass
class ParamSpec(Message):
    """Per-blob training settings of a layer (one ``param`` block per learnable blob, in blob order)."""

    name: str = scalar(1, "string", "", "share this blob with every layer that names the same param; default '' (not shared)")
    share_mode: str = enum(2, DIM_CHECK_MODE, "STRICT",
                           "shared blob shapes must match exactly (STRICT) or only in count (PERMISSIVE); default STRICT")
    lr_mult: float = scalar(3, "float", 1.0, "multiplier on the solver's learning rate; 0 freezes the blob; default 1")
    decay_mult: float = scalar(4, "float", 1.0, "multiplier on the solver's weight_decay; default 1")


# --------------------------------------------------------------------------------------------------
# blocks shared by several layer types


@dataclass
class TransformationParameter(Message):
    """Preprocessing of data layers (``DataTransformer``): crop, mirror, then (x - mean) * scale."""

    SINGLE_AS_VALUE = frozenset({"mean_value"})

    scale: float = scalar(1, "float", 1.0, "multiply every value by this after the mean is subtracted; default 1")
    mirror: bool = scalar(2, "bool", False, "flip images horizontally at random (in every phase); default false")
    crop_size: int = scalar(3, "uint32", 0, "square crop side: random in TRAIN, centre in TEST; default 0 = no crop")
    mean_file: str = scalar(4, "string", "", "binaryproto BlobProto mean image (uncropped size) to subtract; not with mean_value")
    mean_value: list = repeated(5, "float", "mean to subtract: one value for all channels or one per channel; not with mean_file")
    force_color: bool = scalar(6, "bool", False, "decode encoded images with 3 channels; default false")
    force_gray: bool = scalar(7, "bool", False, "decode encoded images with 1 channel; default false")


@dataclass
class LossParameter(Message):
    """Settings shared by loss layers (ignored label, how the summed loss is normalised)."""

    ignore_label: int = scalar(1, "int32", 0, "when given, positions with this label add no loss and get no gradient; unset = none")
    normalization: str = enum(3, NORMALIZATION_MODE, "VALID",
                              "divide the summed loss by FULL (all positions), VALID (non-ignored), BATCH_SIZE or NONE; "
                              "default VALID (SigmoidCrossEntropyLoss: BATCH_SIZE when unset; ReciprocalNormLoss: BATCH_SIZE)")
    normalize: bool = scalar(2, "bool", False, "deprecated, used only when normalization is unset: true = VALID, false = BATCH_SIZE")


# --------------------------------------------------------------------------------------------------
# layer-specific blocks (caffe.proto order: alphabetical, with a few exceptions)


@dataclass
class AccuracyParameter(Message):
    """Accuracy: fraction of positions whose label is among the top_k scores."""

    top_k: int = scalar(1, "uint32", 1, "a prediction is correct if the label is among the k best scores; default 1")
    axis: int = scalar(2, "int32", 1, "the class axis of the scores (negative counts from the end); default 1")
    ignore_label: int = scalar(3, "int32", 0, "when given, positions with this label are not counted; unset = none")


@dataclass
class ArgMaxParameter(Message):
    """ArgMax: indices (and optionally values) of the top_k maxima."""

    out_max_val: bool = scalar(1, "bool", False, "also output the max values (pairs of index and value); default false")
    top_k: int = scalar(2, "uint32", 1, "how many maxima to output; default 1")
    axis: int = scalar(3, "int32", 0, "when given, the axis to maximise along; unset = all axes after the first, flattened")


@dataclass
class ClipParameter(Message):
    """Clip: y = max(min, min(max, x)). Both bounds are proto2 ``required`` in caffe.proto."""

    min: float = scalar(1, "float", 0.0, "lower bound (required)", required=True)
    max: float = scalar(2, "float", 0.0, "upper bound (required)", required=True)


@dataclass
class ConcatParameter(Message):
    """Concat: join the bottoms along one axis."""

    axis: int = scalar(2, "int32", 1, "axis to join along (negative counts from the end); default 1")
    concat_dim: int = scalar(1, "uint32", 1, "deprecated alias of axis (no negative values); not with axis; default 1")


@dataclass
class BatchNormParameter(Message):
    """BatchNorm (no affine part; follow it with Scale): normalise with batch or stored statistics."""

    use_global_stats: bool = scalar(1, "bool", False, "use the stored statistics; unset = true in TEST, false in TRAIN")
    moving_average_fraction: float = scalar(2, "float", 0.999, "decay of the running sums at each TRAIN forward; default 0.999")
    eps: float = scalar(3, "float", 1e-5, "added to the variance before the square root; default 1e-5")


@dataclass
class BiasParameter(Message):
    """Bias: add a learned (one bottom) or given (bottom 1) bias, broadcast from ``axis``."""

    axis: int = scalar(1, "int32", 1, "first axis of bottom 0 the bias covers (negative counts from the end); default 1")
    num_axes: int = scalar(2, "int32", 1, "learned bias: axes it covers, -1 = all from axis, 0 = a scalar; default 1")
    filler: FillerParameter | None = message(3, FillerParameter, "learned bias: its filler; default constant 0")


@dataclass
class ContrastiveLossParameter(Message):
    """ContrastiveLoss: pull similar pairs together, push dissimilar ones beyond a margin."""

    margin: float = scalar(1, "float", 1.0, "margin for dissimilar pairs; default 1")
    legacy_version: bool = scalar(2, "bool", False, "use max(margin - d^2, 0) instead of max(margin - d, 0)^2; default false")


@dataclass
class ConvolutionParameter(Message):
    """Convolution, Deconvolution and Im2col (``base_conv_layer.cpp``, ``conv_layer.cpp``)."""

    SINGLE_AS_VALUE = frozenset({"pad", "kernel_size", "stride", "dilation"})

    num_output: int = scalar(1, "uint32", 0, "number of output channels (required, > 0)", required=True)
    bias_term: bool = scalar(2, "bool", True, "learn a bias blob [num_output]; default true")
    pad: list = repeated(3, "uint32", "zero padding, once for all spatial axes or once per axis; default 0")
    kernel_size: list = repeated(4, "uint32", "kernel size, once for all spatial axes or once per axis (required, or kernel_h/kernel_w)")
    stride: list = repeated(6, "uint32", "stride, once for all spatial axes or once per axis; default 1")
    dilation: list = repeated(18, "uint32", "kernel dilation, once for all spatial axes or once per axis; default 1")
    pad_h: int = scalar(9, "uint32", 0, "2-D only: vertical padding (not with pad); default 0")
    pad_w: int = scalar(10, "uint32", 0, "2-D only: horizontal padding (not with pad); default 0")
    kernel_h: int = scalar(11, "uint32", 0, "2-D only: kernel height (with kernel_w, not with kernel_size)")
    kernel_w: int = scalar(12, "uint32", 0, "2-D only: kernel width (with kernel_h, not with kernel_size)")
    stride_h: int = scalar(13, "uint32", 0, "2-D only: vertical stride (with stride_w, not with stride)")
    stride_w: int = scalar(14, "uint32", 0, "2-D only: horizontal stride (with stride_h, not with stride)")
    group: int = scalar(5, "uint32", 1, "channel groups; input channels and num_output must divide by it; default 1")
    weight_filler: FillerParameter | None = message(7, FillerParameter, "filler of the weights; default constant 0 (all zeros!)")
    bias_filler: FillerParameter | None = message(8, FillerParameter, "filler of the bias; default constant 0")
    engine: str = enum(15, ENGINE, "DEFAULT", "Caffe's implementation choice (CAFFE or CUDNN); ignored by caffe_like; default DEFAULT")
    axis: int = scalar(16, "int32", 1, "the channel axis; the axes after it are spatial; default 1")
    force_nd_im2col: bool = scalar(17, "bool", False, "Caffe implementation detail (N-d im2col); ignored by caffe_like; default false")


@dataclass
class CropParameter(Message):
    """Crop: cut bottom 0 to the shape of bottom 1 from ``axis`` on, at the given offsets."""

    SINGLE_AS_VALUE = frozenset({"offset"})

    axis: int = scalar(1, "int32", 2, "first axis to crop; earlier axes are kept (negative counts from the end); default 2")
    offset: list = repeated(2, "uint32", "crop offset: once for all cropped axes or once per cropped axis; default 0")


@dataclass
class DataParameter(Message):
    """Data: batches of records from a database (Caffe: LevelDB/LMDB of Datum; caffe_like: more backends)."""

    source: str = scalar(1, "string", "", "path of the database (or, for IDX/CIFAR/NPZ, of the file or folder) (required)", required=True)
    batch_size: int = scalar(4, "uint32", 0, "records per batch (top 0 axis 0); default 0")
    rand_skip: int = scalar(7, "uint32", 0, "deprecated: skip up to this many records at start; default 0")
    backend: str = enum(8, DB, "LEVELDB",
                        "LEVELDB or LMDB (Caffe Datum records); caffe_like extensions: IDX (MNIST idx files), "
                        "CIFAR (CIFAR python batches), NPZ (numpy .npz archive); default LEVELDB")
    scale: float = scalar(2, "float", 1.0, "deprecated, use transform_param.scale (moved there on upgrade); default 1")
    mean_file: str = scalar(3, "string", "", "deprecated, use transform_param.mean_file (moved there on upgrade)")
    crop_size: int = scalar(5, "uint32", 0, "deprecated, use transform_param.crop_size (moved there on upgrade); default 0")
    mirror: bool = scalar(6, "bool", False, "deprecated, use transform_param.mirror (moved there on upgrade); default false")
    force_encoded_color: bool = scalar(9, "bool", False, "decode encoded records with 3 channels; default false")
    prefetch: int = scalar(10, "uint32", 4, "batches prefetched by the reader thread; default 4")
    shuffle: bool = scalar(1000, "bool", False,
                           "caffe_like extension: shuffle the records at start and every epoch (IDX/CIFAR/NPZ); "
                           "default false (Caffe reads in order)", extension=True)
    cifar_label: str = scalar(1001, "string", "fine",
                              "caffe_like extension: CIFAR-100 label set, \"fine\" (100 classes) or \"coarse\" (20); "
                              "default \"fine\"", extension=True)


@dataclass
class DropoutParameter(Message):
    """Dropout: in TRAIN zero each value with probability dropout_ratio and scale the rest by 1/(1-ratio)."""

    dropout_ratio: float = scalar(1, "float", 0.5, "probability of dropping a value; default 0.5")
    scale_train: bool = scalar(3, "bool", True, "Caffe-fork extension (not in BVLC): true scales kept values by "
                               "1/(1-ratio) in TRAIN, false scales by (1-ratio) in TEST instead; default true",
                               extension=True)


@dataclass
class DummyDataParameter(Message):
    """DummyData: tops of given shapes, filled by fillers (constant fillers once, others every forward)."""

    SINGLE_AS_VALUE = frozenset({"data_filler", "shape"})

    data_filler: list = repeated(1, "message", "0 fillers (constant 0), 1 for every top, or 1 per top", message_cls=FillerParameter)
    shape: list = repeated(6, "message", "1 shape for every top, or 1 per top", message_cls=BlobShape)
    num: list = repeated(2, "uint32", "deprecated 4-D shape: N per top (use shape)")
    channels: list = repeated(3, "uint32", "deprecated 4-D shape: C per top (use shape)")
    height: list = repeated(4, "uint32", "deprecated 4-D shape: H per top (use shape)")
    width: list = repeated(5, "uint32", "deprecated 4-D shape: W per top (use shape)")


@dataclass
class EltwiseParameter(Message):
    """Eltwise: combine same-shaped bottoms element by element."""

    operation: str = enum(1, ELTWISE_OP, "SUM", "PROD, SUM or MAX; default SUM")
    coeff: list = repeated(2, "float", "SUM only: one coefficient per bottom; default all 1")
    stable_prod_grad: bool = scalar(3, "bool", True, "PROD: gradient as the product of the other bottoms (not y/x_i); default true")


@dataclass
class ELUParameter(Message):
    """ELU: y = x for x > 0, alpha * (exp(x) - 1) otherwise."""

    alpha: float = scalar(1, "float", 1.0, "scale of the negative part; default 1")


@dataclass
class EmbedParameter(Message):
    """Embed: a lookup table, i.e. an inner product with one-hot inputs given as integer indices."""

    num_output: int = scalar(1, "uint32", 0, "size of each embedding vector (required, > 0)", required=True)
    input_dim: int = scalar(2, "uint32", 0, "number of table rows = largest index + 1 (required, > 0)", required=True)
    bias_term: bool = scalar(3, "bool", True, "learn a bias blob [num_output]; default true")
    weight_filler: FillerParameter | None = message(4, FillerParameter, "filler of the table; default constant 0 (all zeros!)")
    bias_filler: FillerParameter | None = message(5, FillerParameter, "filler of the bias; default constant 0")


@dataclass
class ExpParameter(Message):
    """Exp: y = base ^ (shift + scale * x)."""

    base: float = scalar(1, "float", -1.0, "the base (> 0); -1 means e; default -1")
    scale: float = scalar(2, "float", 1.0, "input scale; default 1")
    shift: float = scalar(3, "float", 0.0, "input shift; default 0")


@dataclass
class FlattenParameter(Message):
    """Flatten: merge the axes axis..end_axis into one."""

    axis: int = scalar(1, "int32", 1, "first axis to merge (negative counts from the end); default 1")
    end_axis: int = scalar(2, "int32", -1, "last axis to merge (negative counts from the end); default -1")


@dataclass
class HDF5DataParameter(Message):
    """HDF5Data: batches from HDF5 files; each top reads the dataset of the same name."""

    source: str = scalar(1, "string", "", "text file listing one .h5 path per line (required)", required=True)
    batch_size: int = scalar(2, "uint32", 0, "rows per batch; default 0")
    shuffle: bool = scalar(3, "bool", False, "shuffle the file order and the rows within each file; default false")


@dataclass
class HDF5OutputParameter(Message):
    """HDF5Output: write the bottoms to an HDF5 file."""

    file_name: str = scalar(1, "string", "", "path of the HDF5 file to write (required)", required=True)


@dataclass
class HingeLossParameter(Message):
    """HingeLoss: one-vs-all hinge loss on the scores."""

    norm: str = enum(1, HINGE_NORM, "L1", "L1 (sum of hinges) or L2 (sum of squared hinges); default L1")


@dataclass
class ImageDataParameter(Message):
    """ImageData: images listed in a text file of ``path label`` lines."""

    source: str = scalar(1, "string", "", "text file of 'path label' lines (required)", required=True)
    batch_size: int = scalar(4, "uint32", 1, "images per batch; default 1")
    rand_skip: int = scalar(7, "uint32", 0, "skip up to this many lines at start; default 0")
    shuffle: bool = scalar(8, "bool", False, "shuffle the list at start and every epoch; default false")
    new_height: int = scalar(9, "uint32", 0, "resize images to this height; 0 = keep; default 0")
    new_width: int = scalar(10, "uint32", 0, "resize images to this width; 0 = keep; default 0")
    is_color: bool = scalar(11, "bool", True, "load as 3-channel BGR (true) or grayscale (false); default true")
    scale: float = scalar(2, "float", 1.0, "deprecated, use transform_param.scale (moved there on upgrade); default 1")
    mean_file: str = scalar(3, "string", "", "deprecated, use transform_param.mean_file (moved there on upgrade)")
    crop_size: int = scalar(5, "uint32", 0, "deprecated, use transform_param.crop_size (moved there on upgrade); default 0")
    mirror: bool = scalar(6, "bool", False, "deprecated, use transform_param.mirror (moved there on upgrade); default false")
    root_folder: str = scalar(12, "string", "", "prefix prepended to every image path; default ''")


@dataclass
class InfogainLossParameter(Message):
    """InfogainLoss: softmax, then a loss weighted by an infogain matrix H."""

    source: str = scalar(1, "string", "", "binaryproto file holding H (required unless H is given as bottom 2)")
    axis: int = scalar(2, "int32", 1, "the class axis of the scores; default 1")


@dataclass
class InnerProductParameter(Message):
    """InnerProduct (fully connected): y = x W^T + b over the axes from ``axis`` on, flattened."""

    num_output: int = scalar(1, "uint32", 0, "number of outputs (required)", required=True)
    bias_term: bool = scalar(2, "bool", True, "learn a bias blob [num_output]; default true")
    weight_filler: FillerParameter | None = message(3, FillerParameter, "filler of the weights; default constant 0 (all zeros!)")
    bias_filler: FillerParameter | None = message(4, FillerParameter, "filler of the bias; default constant 0")
    axis: int = scalar(5, "int32", 1, "first axis flattened into the input vector (negative counts from the end); default 1")
    transpose: bool = scalar(6, "bool", False, "store the weights as [K, num_output] instead of [num_output, K]; default false")


@dataclass
class InputParameter(Message):
    """Input: tops whose data the caller supplies; only their shapes are declared."""

    SINGLE_AS_VALUE = frozenset({"shape"})

    shape: list = repeated(1, "message", "1 shape for every top, 1 per top, or none (shaped by hand)", message_cls=BlobShape)


@dataclass
class LogParameter(Message):
    """Log: y = log_base(shift + scale * x)."""

    base: float = scalar(1, "float", -1.0, "the base (> 0); -1 means e; default -1")
    scale: float = scalar(2, "float", 1.0, "input scale; default 1")
    shift: float = scalar(3, "float", 0.0, "input shift; default 0")


@dataclass
class LRNParameter(Message):
    """LRN: local response normalisation across or within channels."""

    local_size: int = scalar(1, "uint32", 5, "window size n (odd); default 5")
    alpha: float = scalar(2, "float", 1.0, "scale of the sum of squares (divided by n, or n^2 within a channel); default 1")
    beta: float = scalar(3, "float", 0.75, "exponent; default 0.75")
    norm_region: str = enum(4, NORM_REGION, "ACROSS_CHANNELS", "ACROSS_CHANNELS or WITHIN_CHANNEL; default ACROSS_CHANNELS")
    k: float = scalar(5, "float", 1.0, "additive constant (ACROSS_CHANNELS only; WITHIN_CHANNEL always uses 1); default 1")
    engine: str = enum(6, ENGINE, "DEFAULT", "Caffe's implementation choice; ignored by caffe_like; default DEFAULT")


@dataclass
class MemoryDataParameter(Message):
    """MemoryData: batches from arrays handed over in memory."""

    batch_size: int = scalar(1, "uint32", 0, "items per batch (required, > 0)", required=True)
    channels: int = scalar(2, "uint32", 0, "C of each item (required, > 0)", required=True)
    height: int = scalar(3, "uint32", 0, "H of each item (required, > 0)", required=True)
    width: int = scalar(4, "uint32", 0, "W of each item (required, > 0)", required=True)


@dataclass
class MVNParameter(Message):
    """MVN: subtract the mean (and divide by the standard deviation) per sample."""

    normalize_variance: bool = scalar(1, "bool", True, "also divide by the standard deviation; default true")
    across_channels: bool = scalar(2, "bool", False, "statistics over C*H*W instead of per channel; default false")
    eps: float = scalar(3, "float", 1e-9, "added to the standard deviation; default 1e-9")


@dataclass
class ParameterParameter(Message):
    """Parameter: a learnable blob of the given shape as the layer's top."""

    shape: BlobShape | None = message(1, BlobShape, "shape of the blob (required)")


@dataclass
class PoolingParameter(Message):
    """Pooling (``pooling_layer.cpp``): 2-D max/average/stochastic pooling."""

    pool: str = enum(1, POOL_METHOD, "MAX", "MAX, AVE or STOCHASTIC; default MAX")
    pad: int = scalar(4, "uint32", 0, "zero padding on every side (not with pad_h/pad_w); default 0")
    pad_h: int = scalar(9, "uint32", 0, "vertical padding; default 0")
    pad_w: int = scalar(10, "uint32", 0, "horizontal padding; default 0")
    kernel_size: int = scalar(2, "uint32", 0, "square window side (required unless kernel_h/kernel_w or global_pooling)")
    kernel_h: int = scalar(5, "uint32", 0, "window height (with kernel_w, not with kernel_size)")
    kernel_w: int = scalar(6, "uint32", 0, "window width (with kernel_h, not with kernel_size)")
    stride: int = scalar(3, "uint32", 1, "stride in both directions (not with stride_h/stride_w); default 1")
    stride_h: int = scalar(7, "uint32", 0, "vertical stride (with stride_w, not with stride)")
    stride_w: int = scalar(8, "uint32", 0, "horizontal stride (with stride_h, not with stride)")
    engine: str = enum(11, ENGINE, "DEFAULT", "Caffe's implementation choice; ignored by caffe_like; default DEFAULT")
    global_pooling: bool = scalar(12, "bool", False, "pool over the whole H x W (then pad 0, stride 1); default false")
    round_mode: str = enum(13, ROUND_MODE, "CEIL", "output size rounding, CEIL or FLOOR; default CEIL")


@dataclass
class PowerParameter(Message):
    """Power: y = (shift + scale * x) ^ power."""

    power: float = scalar(1, "float", 1.0, "exponent; default 1")
    scale: float = scalar(2, "float", 1.0, "input scale; default 1")
    shift: float = scalar(3, "float", 0.0, "input shift; default 0")


@dataclass
class PythonParameter(Message):
    """Python: a layer implemented by a Python class (pycaffe's ``caffe.Layer`` interface)."""

    module: str = scalar(1, "string", "", "module to import (required)", required=True)
    layer: str = scalar(2, "string", "", "class in that module (required)", required=True)
    param_str: str = scalar(3, "string", "", "free-form string given to the layer as self.param_str before setup; default ''")
    share_in_parallel: bool = scalar(4, "bool", False, "deprecated, ignored; default false")


@dataclass
class RecurrentParameter(Message):
    """RNN and LSTM (``recurrent_layer.cpp``): unrolled recurrent nets over the time axis 0."""

    num_output: int = scalar(1, "uint32", 0, "size of the hidden state and output (required, > 0)", required=True)
    weight_filler: FillerParameter | None = message(2, FillerParameter, "filler of the weights; default constant 0")
    bias_filler: FillerParameter | None = message(3, FillerParameter, "filler of the biases; default constant 0")
    debug_info: bool = scalar(4, "bool", False, "debug_info inside the unrolled net; default false")
    expose_hidden: bool = scalar(5, "bool", False, "extra bottoms/tops for the initial/final hidden state; default false")


@dataclass
class ReductionParameter(Message):
    """Reduction: reduce all axes from ``axis`` on to one value per outer index."""

    operation: str = enum(1, REDUCTION_OP, "SUM", "SUM, ASUM (sum of |x|), SUMSQ (sum of x^2) or MEAN; default SUM")
    axis: int = scalar(2, "int32", 0, "first reduced axis; all later axes are reduced too; default 0 (a scalar)")
    coeff: float = scalar(3, "float", 1.0, "the result is multiplied by this; default 1")


@dataclass
class ReLUParameter(Message):
    """ReLU (leaky when negative_slope != 0)."""

    negative_slope: float = scalar(1, "float", 0.0, "slope for x <= 0; default 0")
    engine: str = enum(2, ENGINE, "DEFAULT", "Caffe's implementation choice; ignored by caffe_like; default DEFAULT")


@dataclass
class ReshapeParameter(Message):
    """Reshape: new dims for a range of axes (0 = copy the input dim, -1 = infer one dim)."""

    shape: BlobShape | None = message(1, BlobShape, "the new dims of the replaced axes; 0 copies, -1 infers (at most one)")
    axis: int = scalar(2, "int32", 0, "first replaced axis (negative counts from the end); default 0")
    num_axes: int = scalar(3, "int32", -1, "how many axes are replaced; -1 = all from axis on; default -1")


@dataclass
class ScaleParameter(Message):
    """Scale: multiply by a learned (one bottom) or given (bottom 1) scale, optionally add a bias."""

    axis: int = scalar(1, "int32", 1, "first axis of bottom 0 the scale covers (negative counts from the end); default 1")
    num_axes: int = scalar(2, "int32", 1, "learned scale: axes it covers, -1 = all from axis, 0 = a scalar; default 1")
    filler: FillerParameter | None = message(3, FillerParameter, "learned scale: its filler; default constant 1")
    bias_term: bool = scalar(4, "bool", False, "also learn a bias (as a Bias layer would); default false")
    bias_filler: FillerParameter | None = message(5, FillerParameter, "filler of the bias; default constant 0")


@dataclass
class SigmoidParameter(Message):
    """Sigmoid."""

    engine: str = enum(1, ENGINE, "DEFAULT", "Caffe's implementation choice; ignored by caffe_like; default DEFAULT")


@dataclass
class SliceParameter(Message):
    """Slice: split bottom 0 along one axis into the tops."""

    SINGLE_AS_VALUE = frozenset({"slice_point"})

    axis: int = scalar(3, "int32", 1, "axis to split (negative counts from the end); default 1")
    slice_point: list = repeated(2, "uint32", "increasing split indices, one fewer than the tops; none = equal parts")
    slice_dim: int = scalar(1, "uint32", 1, "deprecated alias of axis (no negative values); not with axis; default 1")


@dataclass
class SoftmaxParameter(Message):
    """Softmax and SoftmaxWithLoss: softmax along one axis."""

    engine: str = enum(1, ENGINE, "DEFAULT", "Caffe's implementation choice; ignored by caffe_like; default DEFAULT")
    axis: int = scalar(2, "int32", 1, "the class axis (negative counts from the end); other axes are independent; default 1")


@dataclass
class SwishParameter(Message):
    """Swish: y = x * sigmoid(beta * x)."""

    beta: float = scalar(1, "float", 1.0, "the beta of the sigmoid; default 1")


@dataclass
class TanHParameter(Message):
    """TanH."""

    engine: str = enum(1, ENGINE, "DEFAULT", "Caffe's implementation choice; ignored by caffe_like; default DEFAULT")


@dataclass
class TileParameter(Message):
    """Tile: repeat the bottom along one axis."""

    axis: int = scalar(1, "int32", 1, "axis to repeat along (negative counts from the end); default 1")
    tiles: int = scalar(2, "int32", 0, "number of copies (required, > 0)", required=True)


@dataclass
class ThresholdParameter(Message):
    """Threshold: y = 1 if x > threshold else 0."""

    threshold: float = scalar(1, "float", 0.0, "the threshold (strict >); default 0")


@dataclass
class WindowDataParameter(Message):
    """WindowData (R-CNN): windows cropped from images, foreground/background by overlap."""

    source: str = scalar(1, "string", "", "window file (required)", required=True)
    scale: float = scalar(2, "float", 1.0, "deprecated, use transform_param.scale (moved there on upgrade); default 1")
    mean_file: str = scalar(3, "string", "", "deprecated, use transform_param.mean_file (moved there on upgrade)")
    batch_size: int = scalar(4, "uint32", 0, "windows per batch; default 0")
    crop_size: int = scalar(5, "uint32", 0, "deprecated, use transform_param.crop_size (moved there on upgrade); default 0")
    mirror: bool = scalar(6, "bool", False, "deprecated, use transform_param.mirror (moved there on upgrade); default false")
    fg_threshold: float = scalar(7, "float", 0.5, "overlap at or above which a window is foreground; default 0.5")
    bg_threshold: float = scalar(8, "float", 0.5, "overlap below which a window is background; default 0.5")
    fg_fraction: float = scalar(9, "float", 0.25, "fraction of foreground windows per batch; default 0.25")
    context_pad: int = scalar(10, "uint32", 0, "context pixels added around each window; default 0")
    crop_mode: str = scalar(11, "string", "warp", "'warp' (stretch to the crop size) or 'square' (tightest square); default warp")
    cache_images: bool = scalar(12, "bool", False, "keep every image in memory; default false")
    root_folder: str = scalar(13, "string", "", "prefix prepended to every image path; default ''")


@dataclass
class SPPParameter(Message):
    """SPP: spatial pyramid pooling into a fixed-length vector."""

    pyramid_height: int = scalar(1, "uint32", 0, "number of pyramid levels (required)", required=True)
    pool: str = enum(2, POOL_METHOD, "MAX", "MAX, AVE or STOCHASTIC; default MAX")
    engine: str = enum(6, ENGINE, "DEFAULT", "Caffe's implementation choice; ignored by caffe_like; default DEFAULT")


@dataclass
class PReLUParameter(Message):
    """PReLU: ReLU with a learned slope for x <= 0, per channel or shared."""

    filler: FillerParameter | None = message(1, FillerParameter, "filler of the slopes; default constant 0.25")
    channel_shared: bool = scalar(2, "bool", False, "one slope for all channels (a scalar blob); default false")


# --------------------------------------------------------------------------------------------------
# the paper's blocks (not in BVLC caffe.proto)


@dataclass
class LargeMarginInnerProductParameter(Message):
    """LargeMarginInnerProduct (L-Softmax), from wy1iu/LargeMargin_Softmax_Loss; bias-free weights [N, K]."""

    num_output: int = scalar(1, "uint32", 0, "number of classes N (required)", required=True, extension=True)
    type: str = enum(2, LARGE_MARGIN_TYPE, "SINGLE",
                     "margin m: SINGLE=1 (plain inner product), DOUBLE=2, TRIPLE=3, QUADRUPLE=4; default SINGLE",
                     extension=True)
    weight_filler: FillerParameter | None = message(3, FillerParameter, "filler of W; default constant 0 (all zeros!)", extension=True)
    axis: int = scalar(4, "int32", 1, "first axis flattened into the feature vector; default 1", extension=True)
    base: float = scalar(5, "float", 1.0, "lambda schedule: lambda = max(base * (1 + gamma*iter)^-power, lambda_min); default 1", extension=True)
    gamma: float = scalar(6, "float", 0.0, "lambda schedule: rate; default 0", extension=True)
    power: float = scalar(7, "float", 1.0, "lambda schedule: exponent; default 1", extension=True)
    iteration: int = scalar(8, "int32", 0, "starting value of the layer's iteration counter; default 0", extension=True)
    lambda_min: float = scalar(9, "float", 0.0, "lower bound of lambda; default 0", extension=True)


@dataclass
class CenterLossParameter(Message):
    """CenterLoss, from ydwen/caffe-face: learned class centers [N, K] and the center update rule."""

    num_output: int = scalar(1, "uint32", 0, "number of classes N (required)", required=True, extension=True)
    center_filler: FillerParameter | None = message(2, FillerParameter, "filler of the centers; default constant 0", extension=True)
    axis: int = scalar(3, "int32", 1, "first axis flattened into the feature vector; default 1", extension=True)


@dataclass
class ReciprocalNormLossParameter(Message):
    """ReciprocalNormLoss (feature incay), caffe_like's own block: mean over the batch of h(i) / (|f_i|^2 + epsilon)."""

    epsilon: float = scalar(1, "float", 1e-5,
                            "added to the squared feature norm; the paper only says 'small', caffe_like picks 1e-5; "
                            "default 1e-5", extension=True)


# --------------------------------------------------------------------------------------------------
# layers, nets, solvers

#: LayerParameter numbers that Caffe forks used for the paper's blocks where they differ from ours.
#: ydwen/caffe-face put center_loss_param at 147, which BVLC master later gave to swish_param, so
#: caffe_like numbers it 8002.  The reference .caffemodel files in ../shared/caffe_cases were written
#: by a Caffe build with center_loss_param at 147 and largemargin_inner_product_param at 148 (BVLC's
#: clip_param); wy1iu's own repository uses 202, as caffe_like does.  Weights are matched by layer
#: name and blobs, so a reader only has to skip these numbers as unknown fields.
FORK_LAYER_FIELD_NUMBERS: dict[str, tuple[int, ...]] = {
    "center_loss_param": (147,),
    "largemargin_inner_product_param": (148,),
}


@dataclass
class LayerParameter(Message):
    """One layer of a net (``layer { ... }``): connections, training settings and its ``*_param`` block."""

    ALLOW_UNKNOWN_PARAM_BLOCKS = True
    SINGLE_AS_VALUE = frozenset({"bottom", "top", "include", "exclude", "loss_weight", "propagate_down"})

    name: str = scalar(1, "string", "", "the layer's name; weights in a .caffemodel are matched by it")
    type: str = scalar(2, "string", "", "the layer type, e.g. Convolution (required)", required=True)
    bottom: list = repeated(3, "string", "names of the input blobs")
    top: list = repeated(4, "string", "names of the output blobs; a top named like the bottom at the same index is in-place")
    phase: str = enum(10, PHASE, "TRAIN", "set by the net at setup (its NetState phase); not normally written by hand")
    loss_weight: list = repeated(5, "float", "weight of each top in the net's objective, none or one per top; "
                                             "default 1 for top 0 of loss layers, else 0")
    param: list = repeated(6, "message", "one ParamSpec per learnable blob, in blob order (lr_mult, decay_mult, sharing)",
                           message_cls=ParamSpec)
    blobs: list = repeated(7, "message", "stored parameter blobs (.caffemodel); when given in a net, fillers are skipped",
                           message_cls=BlobProto)
    propagate_down: list = repeated(11, "bool", "none or one per bottom: force (true) or stop (false) its gradient")
    include: list = repeated(8, "message", "keep the layer only if one of these rules is met (not with exclude)",
                             message_cls=NetStateRule)
    exclude: list = repeated(9, "message", "drop the layer if one of these rules is met (not with include)",
                             message_cls=NetStateRule)
    transform_param: TransformationParameter | None = message(100, TransformationParameter, "data layers: preprocessing (scale, mean, crop, mirror)")
    loss_param: LossParameter | None = message(101, LossParameter, "loss layers: ignore_label and normalization")
    accuracy_param: AccuracyParameter | None = message(102, AccuracyParameter, "Accuracy settings")
    argmax_param: ArgMaxParameter | None = message(103, ArgMaxParameter, "ArgMax settings")
    batch_norm_param: BatchNormParameter | None = message(139, BatchNormParameter, "BatchNorm settings")
    bias_param: BiasParameter | None = message(141, BiasParameter, "Bias settings")
    clip_param: ClipParameter | None = message(148, ClipParameter, "Clip settings")
    concat_param: ConcatParameter | None = message(104, ConcatParameter, "Concat settings")
    contrastive_loss_param: ContrastiveLossParameter | None = message(105, ContrastiveLossParameter, "ContrastiveLoss settings")
    convolution_param: ConvolutionParameter | None = message(106, ConvolutionParameter, "Convolution / Deconvolution / Im2col settings")
    crop_param: CropParameter | None = message(144, CropParameter, "Crop settings")
    data_param: DataParameter | None = message(107, DataParameter, "Data settings")
    dropout_param: DropoutParameter | None = message(108, DropoutParameter, "Dropout settings")
    dummy_data_param: DummyDataParameter | None = message(109, DummyDataParameter, "DummyData settings")
    eltwise_param: EltwiseParameter | None = message(110, EltwiseParameter, "Eltwise settings")
    elu_param: ELUParameter | None = message(140, ELUParameter, "ELU settings")
    embed_param: EmbedParameter | None = message(137, EmbedParameter, "Embed settings")
    exp_param: ExpParameter | None = message(111, ExpParameter, "Exp settings")
    flatten_param: FlattenParameter | None = message(135, FlattenParameter, "Flatten settings")
    hdf5_data_param: HDF5DataParameter | None = message(112, HDF5DataParameter, "HDF5Data settings")
    hdf5_output_param: HDF5OutputParameter | None = message(113, HDF5OutputParameter, "HDF5Output settings")
    hinge_loss_param: HingeLossParameter | None = message(114, HingeLossParameter, "HingeLoss settings")
    image_data_param: ImageDataParameter | None = message(115, ImageDataParameter, "ImageData settings")
    infogain_loss_param: InfogainLossParameter | None = message(116, InfogainLossParameter, "InfogainLoss settings")
    inner_product_param: InnerProductParameter | None = message(117, InnerProductParameter, "InnerProduct settings")
    input_param: InputParameter | None = message(143, InputParameter, "Input settings (the top shapes)")
    log_param: LogParameter | None = message(134, LogParameter, "Log settings")
    lrn_param: LRNParameter | None = message(118, LRNParameter, "LRN settings")
    memory_data_param: MemoryDataParameter | None = message(119, MemoryDataParameter, "MemoryData settings")
    mvn_param: MVNParameter | None = message(120, MVNParameter, "MVN settings")
    parameter_param: ParameterParameter | None = message(145, ParameterParameter, "Parameter settings")
    pooling_param: PoolingParameter | None = message(121, PoolingParameter, "Pooling settings")
    power_param: PowerParameter | None = message(122, PowerParameter, "Power settings")
    prelu_param: PReLUParameter | None = message(131, PReLUParameter, "PReLU settings")
    python_param: PythonParameter | None = message(130, PythonParameter, "Python layer settings")
    recurrent_param: RecurrentParameter | None = message(146, RecurrentParameter, "RNN / LSTM settings")
    reduction_param: ReductionParameter | None = message(136, ReductionParameter, "Reduction settings")
    relu_param: ReLUParameter | None = message(123, ReLUParameter, "ReLU settings")
    reshape_param: ReshapeParameter | None = message(133, ReshapeParameter, "Reshape settings")
    scale_param: ScaleParameter | None = message(142, ScaleParameter, "Scale settings")
    sigmoid_param: SigmoidParameter | None = message(124, SigmoidParameter, "Sigmoid settings")
    softmax_param: SoftmaxParameter | None = message(125, SoftmaxParameter, "Softmax / SoftmaxWithLoss settings (the class axis)")
    spp_param: SPPParameter | None = message(132, SPPParameter, "SPP settings")
    slice_param: SliceParameter | None = message(126, SliceParameter, "Slice settings")
    swish_param: SwishParameter | None = message(147, SwishParameter, "Swish settings")
    tanh_param: TanHParameter | None = message(127, TanHParameter, "TanH settings")
    threshold_param: ThresholdParameter | None = message(128, ThresholdParameter, "Threshold settings")
    tile_param: TileParameter | None = message(138, TileParameter, "Tile settings")
    window_data_param: WindowDataParameter | None = message(129, WindowDataParameter, "WindowData settings")
    largemargin_inner_product_param: LargeMarginInnerProductParameter | None = message(
        202, LargeMarginInnerProductParameter,
        "LargeMarginInnerProduct (L-Softmax) settings; field 202 as in wy1iu/LargeMargin_Softmax_Loss", extension=True)
    reciprocal_norm_loss_param: ReciprocalNormLossParameter | None = message(
        8001, ReciprocalNormLossParameter,
        "ReciprocalNormLoss (feature incay) settings; caffe_like's own block and field number", extension=True)
    center_loss_param: CenterLossParameter | None = message(
        8002, CenterLossParameter,
        "CenterLoss settings (ydwen/caffe-face); caffe_like's number, as caffe-face's 147 is BVLC's swish_param",
        extension=True)


@dataclass
class NetParameter(Message):
    """A whole net (a .prototxt, or a .caffemodel with blobs). Legacy ``layers`` (V1) are upgraded before binding."""

    SINGLE_AS_VALUE = frozenset({"input"})

    name: str = scalar(1, "string", "", "the net's name (written into .caffemodel files)")
    input: list = repeated(3, "string", "deprecated: net input blob names (turned into an Input layer; use one)")
    input_shape: list = repeated(8, "message", "deprecated: one shape per input (with input)", message_cls=BlobShape)
    input_dim: list = repeated(4, "int32", "deprecated: 4 dims (N, C, H, W) per input (with input)")
    force_backward: bool = scalar(5, "bool", False, "compute every gradient, even where no loss needs it; default false")
    state: NetState | None = message(6, NetState, "the NetState used to filter layers (phase default TEST, level 0)")
    debug_info: bool = scalar(7, "bool", False, "log data/diff magnitudes per layer and blob; default false")
    layer: list = repeated(100, "message", "the layers, in order", message_cls=LayerParameter)


@dataclass
class SolverParameter(Message):
    """A solver (``solver.prototxt``): the nets to train and test, the update rule and its schedule."""

    SINGLE_AS_VALUE = frozenset({"test_net", "test_net_param", "test_state", "test_iter", "weights"})

    net: str = scalar(24, "string", "", "net file for training, also tested once per test_iter entry without other test nets")
    net_param: NetParameter | None = message(25, NetParameter, "inline net, used like net")
    train_net: str = scalar(1, "string", "", "net file for training only (exactly one of net, net_param, train_net, train_net_param)")
    test_net: list = repeated(2, "string", "net files for testing, one test_iter each")
    train_net_param: NetParameter | None = message(21, NetParameter, "inline net for training only")
    test_net_param: list = repeated(22, "message", "inline nets for testing, one test_iter each (tested before test_net)",
                                    message_cls=NetParameter)
    train_state: NetState | None = message(26, NetState, "overrides the train net's state (its phase is TRAIN by default)")
    test_state: list = repeated(27, "message", "none or one per test net: overrides its state (phase TEST by default)",
                                message_cls=NetState)
    test_iter: list = repeated(3, "int32", "batches per test pass, one entry per test net (required when testing)")
    test_interval: int = scalar(4, "int32", 0, "test every this many iterations (must be > 0 when there are test nets); default 0")
    test_compute_loss: bool = scalar(19, "bool", False, "also average the test net's loss; default false")
    test_initialization: bool = scalar(32, "bool", True, "run a test pass before the first iteration; default true")
    base_lr: float = scalar(5, "float", 0.0, "the base learning rate; default 0")
    display: int = scalar(6, "int32", 0, "log the loss every this many iterations, 0 = never; default 0")
    average_loss: int = scalar(33, "int32", 1, "the logged loss is averaged over the last this many iterations (>= 1); default 1")
    max_iter: int = scalar(7, "int32", 0, "number of iterations to train; default 0")
    iter_size: int = scalar(36, "int32", 1, "forward/backward passes accumulated per update; default 1")
    lr_policy: str = scalar(8, "string", "",
                            "fixed | step | exp | inv | multistep | poly | sigmoid (required: empty or unknown is fatal)",
                            required=True)
    gamma: float = scalar(9, "float", 0.0, "lr policy parameter (step/exp/inv/multistep/sigmoid); default 0")
    power: float = scalar(10, "float", 0.0, "lr policy exponent (inv/poly); default 0")
    momentum: float = scalar(11, "float", 0.0, "momentum (beta1 for Adam, rho for AdaDelta); default 0")
    weight_decay: float = scalar(12, "float", 0.0, "regularisation strength (times each blob's decay_mult); default 0")
    regularization_type: str = scalar(29, "string", "L2", "\"L2\" or \"L1\" regularisation; default L2")
    stepsize: int = scalar(13, "int32", 0, "step policy: iterations per lr drop (sigmoid: the centre); default 0")
    stepvalue: list = repeated(34, "int32", "multistep policy: iterations at which lr is multiplied by gamma")
    clip_gradients: float = scalar(35, "float", -1.0, "scale gradients down to this global L2 norm when larger; < 0 = off; default -1")
    snapshot: int = scalar(14, "int32", 0, "snapshot every this many iterations, 0 = never; default 0")
    snapshot_prefix: str = scalar(15, "string", "", "path prefix of snapshot files; unset = the solver file's path without extension, "
                                                    "a folder = that folder plus the solver file's name")
    snapshot_diff: bool = scalar(16, "bool", False, "also store the gradients in snapshots; default false")
    snapshot_format: str = enum(37, SNAPSHOT_FORMAT, "BINARYPROTO", "HDF5 or BINARYPROTO; default BINARYPROTO")
    solver_mode: str = enum(17, SOLVER_MODE, "GPU", "CPU or GPU (caffe_like: a preference; --device overrides); default GPU")
    device_id: int = scalar(18, "int32", 0, "GPU index in GPU mode; default 0")
    random_seed: int = scalar(20, "int64", -1, "seed of the random generators; < 0 = from the clock; default -1")
    type: str = scalar(40, "string", "SGD", "SGD | Nesterov | AdaGrad | RMSProp | AdaDelta | Adam; default SGD")
    delta: float = scalar(31, "float", 1e-8, "epsilon of AdaGrad, RMSProp, AdaDelta and Adam; default 1e-8")
    momentum2: float = scalar(39, "float", 0.999, "Adam's beta2; default 0.999")
    rms_decay: float = scalar(38, "float", 0.99, "RMSProp's decay of the mean square; default 0.99")
    debug_info: bool = scalar(23, "bool", False, "log per-layer data/diff magnitudes while training; default false")
    snapshot_after_train: bool = scalar(28, "bool", True, "write a snapshot when training ends; default true")
    solver_type: str = enum(30, SOLVER_TYPE, "SGD", "deprecated, use type: SGD, NESTEROV, ADAGRAD, RMSPROP, ADADELTA, ADAM; default SGD")
    layer_wise_reduce: bool = scalar(41, "bool", True, "multi-GPU: overlap gradient reduction with backward; default true")
    weights: list = repeated(42, "string", "caffemodel files copied into the nets before training (finetuning); "
                                           "a --weights flag overrides, --snapshot ignores them")


@dataclass
class SolverState(Message):
    """What a .solverstate stores (with the learned net in a .caffemodel) to resume training."""

    iter: int = scalar(1, "int32", 0, "the iteration reached; default 0")
    learned_net: str = scalar(2, "string", "", "the .caffemodel holding the weights of that iteration")
    history: list = repeated(3, "message", "the update rule's history blobs, in learnable-param order", message_cls=BlobProto)
    current_step: int = scalar(4, "int32", 0, "multistep policy: how many stepvalues are passed; default 0")
    caffe_like_extra: bytes = scalar(1000, "bytes", b"", "caffe_like extension: what a bit-for-bit resume needs "
                                     "beyond Caffe's fields (RNG states, layer counters, data positions); Caffe "
                                     "skips it", extension=True)


#: every message class of the schema (BVLC caffe.proto without V0/V1 layers, plus the paper's blocks)
ALL_MESSAGES: tuple[type[Message], ...] = (
    BlobShape, BlobProto, BlobProtoVector, Datum, FillerParameter, NetState, NetStateRule, ParamSpec,
    TransformationParameter, LossParameter, AccuracyParameter, ArgMaxParameter, ClipParameter,
    ConcatParameter, BatchNormParameter, BiasParameter, ContrastiveLossParameter, ConvolutionParameter,
    CropParameter, DataParameter, DropoutParameter, DummyDataParameter, EltwiseParameter, ELUParameter,
    EmbedParameter, ExpParameter, FlattenParameter, HDF5DataParameter, HDF5OutputParameter,
    HingeLossParameter, ImageDataParameter, InfogainLossParameter, InnerProductParameter, InputParameter,
    LogParameter, LRNParameter, MemoryDataParameter, MVNParameter, ParameterParameter, PoolingParameter,
    PowerParameter, PythonParameter, RecurrentParameter, ReductionParameter, ReLUParameter,
    ReshapeParameter, ScaleParameter, SigmoidParameter, SliceParameter, SoftmaxParameter, SwishParameter,
    TanHParameter, TileParameter, ThresholdParameter, WindowDataParameter, SPPParameter, PReLUParameter,
    LargeMarginInnerProductParameter, CenterLossParameter, ReciprocalNormLossParameter,
    LayerParameter, NetParameter, SolverParameter, SolverState,
)


# --------------------------------------------------------------------------------------------------
# layer types

#: The ``*_param`` blocks each layer type reads (BVLC master's layer sources, plus the paper's layers).
#: Notes on the less obvious entries:
#: * data layers derived from BaseDataLayer (Data, ImageData, MemoryData, WindowData) read transform_param;
#:   HDF5Data refuses it, DummyData and Input ignore it.  The prefetching ones also take their queue
#:   length from data_param.prefetch, a Caffe performance knob not listed here;
#: * layers that build an internal Softmax/Sigmoid (InfogainLoss, SigmoidCrossEntropyLoss) only pass it the
#:   engine, which caffe_like ignores, so softmax_param/sigmoid_param are not listed for them;
#:   SoftmaxWithLoss does read softmax_param.axis;
#: * "Recurrent" is the abstract base of RNN and LSTM: Caffe registers only those two, but it is kept here
#:   so that a net naming it gets a clear error from the layer registry rather than from the validator.
LAYER_PARAM_FIELDS: dict[str, tuple[str, ...]] = {
    "AbsVal": (),
    "Accuracy": ("accuracy_param",),
    "ArgMax": ("argmax_param",),
    "BatchNorm": ("batch_norm_param",),
    "BatchReindex": (),
    "Bias": ("bias_param",),
    "BNLL": (),
    "Clip": ("clip_param",),
    "Concat": ("concat_param",),
    "ContrastiveLoss": ("contrastive_loss_param",),
    "Convolution": ("convolution_param",),
    "Crop": ("crop_param",),
    "Data": ("data_param", "transform_param"),
    "Deconvolution": ("convolution_param",),
    "Dropout": ("dropout_param",),
    "DummyData": ("dummy_data_param",),
    "Eltwise": ("eltwise_param",),
    "ELU": ("elu_param",),
    "Embed": ("embed_param",),
    "EuclideanLoss": (),
    "Exp": ("exp_param",),
    "Filter": (),
    "Flatten": ("flatten_param",),
    "HDF5Data": ("hdf5_data_param",),
    "HDF5Output": ("hdf5_output_param",),
    "HingeLoss": ("hinge_loss_param",),
    "Im2col": ("convolution_param",),
    "ImageData": ("image_data_param", "transform_param"),
    "InfogainLoss": ("infogain_loss_param", "loss_param"),
    "InnerProduct": ("inner_product_param",),
    "Input": ("input_param",),
    "Log": ("log_param",),
    "LRN": ("lrn_param",),
    "LSTM": ("recurrent_param",),
    "MemoryData": ("memory_data_param", "transform_param"),
    "MultinomialLogisticLoss": (),
    "MVN": ("mvn_param",),
    "Parameter": ("parameter_param",),
    "Pooling": ("pooling_param",),
    "Power": ("power_param",),
    "PReLU": ("prelu_param",),
    "Python": ("python_param",),
    "Recurrent": ("recurrent_param",),
    "Reduction": ("reduction_param",),
    "ReLU": ("relu_param",),
    "Reshape": ("reshape_param",),
    "RNN": ("recurrent_param",),
    "Scale": ("scale_param",),
    "Sigmoid": ("sigmoid_param",),
    "SigmoidCrossEntropyLoss": ("loss_param",),
    "Silence": (),
    "Slice": ("slice_param",),
    "Softmax": ("softmax_param",),
    "SoftmaxWithLoss": ("softmax_param", "loss_param"),
    "Split": (),
    "SPP": ("spp_param",),
    "Swish": ("swish_param",),
    "TanH": ("tanh_param",),
    "Threshold": ("threshold_param",),
    "Tile": ("tile_param",),
    "WindowData": ("window_data_param", "transform_param"),
    # the paper's layers
    "LargeMarginInnerProduct": ("largemargin_inner_product_param",),
    "CenterLoss": ("center_loss_param",),
    "ReciprocalNormLoss": ("reciprocal_norm_loss_param", "loss_param"),
}

#: Layer types derived from Caffe's LossLayer: top 0 gets loss_weight 1 when no loss_weight is given.
#: CenterLoss is deliberately absent: caffe-face's layer overrides that setup, so without an explicit
#: loss_weight it has weight 0 (reference/loss_layers.md §7); a faithful port keeps 0 (and warns).
LOSS_LAYER_TYPES: frozenset[str] = frozenset({
    "SoftmaxWithLoss",
    "EuclideanLoss",
    "HingeLoss",
    "SigmoidCrossEntropyLoss",
    "MultinomialLogisticLoss",
    "InfogainLoss",
    "ContrastiveLoss",
    "ReciprocalNormLoss",
})

# the registry: built-in types plus those registered at run time (user layers, plugins)
_LAYER_TYPES: dict[str, tuple[str, ...]] = dict(LAYER_PARAM_FIELDS)


def known_layer_types() -> frozenset[str]:
    """Every layer type name the net validator accepts: Caffe's, the paper's and registered ones."""
    return frozenset(_LAYER_TYPES)


def layer_param_fields(type_name: str) -> tuple[str, ...]:
    """The ``*_param`` blocks layer type ``type_name`` reads; KeyError for an unknown type."""
    return _LAYER_TYPES[type_name]


def register_layer_type(type_name: str, param_fields: tuple[str, ...] = ()) -> None:
    """Make ``type_name`` a known layer type that reads the ``param_fields`` blocks (torch-free).

    Registering a known type again with the same blocks does nothing; with different blocks it raises
    ValueError.  Blocks need not be LayerParameter fields: a plugin may read a fork's ``*_param`` block,
    which the binder keeps verbatim.
    """
    if not isinstance(type_name, str) or not type_name:
        raise ValueError(f"a layer type must be a non-empty string, got {type_name!r}")
    if isinstance(param_fields, str):
        raise ValueError(f"param_fields of '{type_name}' must be a tuple of block names, not the string {param_fields!r}")
    fields = tuple(param_fields)
    for name in fields:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"param_fields of '{type_name}': {name!r} is not a block name")
    existing = _LAYER_TYPES.get(type_name)
    if existing is not None and existing != fields:
        raise ValueError(
            f"layer type '{type_name}' is already known with param blocks {existing}; "
            f"cannot register it again with {fields}"
        )
    _LAYER_TYPES[type_name] = fields

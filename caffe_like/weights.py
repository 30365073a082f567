"""Caffe's binary weight and state files, read and written with NumPy (no torch, no protoc).

Formats (all binary protobuf, see ``caffe.proto``):

``.caffemodel``
    a ``NetParameter``: the net's name plus one ``layer`` (field 100) per layer, each carrying its full
    ``LayerParameter`` and its learnable blobs (``BlobProto``: ``shape`` + packed float ``data``, or
    ``double_data``).  Older files use ``layers`` (field 2, ``V1LayerParameter``: an enum ``type``,
    blobs in field 6) or even V0 (``layers { layer { type: "conv" blobs ... } }``, blobs in field 50),
    and store shapes in the legacy ``num``/``channels``/``height``/``width`` fields; all are read.
    Files are written in the current format, shapes in ``shape`` only.
``.binaryproto``
    a single ``BlobProto`` (mean files, usually 1×C×H×W).
``.solverstate``
    a ``SolverState``: ``iter`` (1), ``learned_net`` (2), ``history`` (3, one BlobProto per history
    blob) and ``current_step`` (4), plus one caffe_like extension, field **1000** (``bytes``), that
    carries whatever else a bit-for-bit resume needs (RNG states, layer counters; opaque to this
    module).  Caffe skips unknown fields, so Caffe can still read the file.
``Datum``
    one record of a Caffe LMDB/LevelDB data set (see :func:`encode_datum` / :func:`decode_datum`).

How a ``.caffemodel`` is read: the file is memory-mapped and its records are located with a few lines
of wire-format walking (tag, length: a handful of operations per field, never per value), down to each
layer's ``blobs`` and each blob's packed ``data``.  Everything that is a message (the net's fields, each
layer's definition, each blob's shape) is decoded by protobuf through the descriptors that
:mod:`caffe_like.spec.binary` builds from the schema; the packed values, which are what a ``repeated
bytes`` field of the raw descriptor variant would hold, go straight from the mapped file into one NumPy
array each (``np.frombuffer`` + one copy).  So a 250 MB file reads in a fraction of a second on 2 cores
(``tools/bench_weights.py``), each layer is decoded on its own (a truncated or corrupt file is reported
with the layer and byte offset concerned, and a layer definition from a Caffe fork that the schema cannot
decode still yields its blobs), and values stored unpacked (legal protobuf, never written by Caffe) fall
back to the plain descriptor.  Writing mirrors it: definitions serialized by protobuf, values streamed
from the arrays, the bytes identical to protobuf's serialization of the same message (a test checks).
Every failure is a :class:`~caffe_like.errors.WeightsError` (or :class:`~caffe_like.errors.DataError` for
a Datum) naming the file; protobuf's own exceptions never escape.

Writes are atomic: a temporary file in the target's directory, flushed to disk, then ``os.replace``.
"""

from __future__ import annotations

import io
import mmap
import os
import secrets
import stat
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from .errors import DataError, WeightsError, did_you_mean
from .spec import binary, params
from .spec.params import BlobProto, Datum, LayerParameter, NetParameter, NetStateRule, SolverState
from .spec.schema import EnumType, Message, enum, field_info, fields_of, has, message, repeated, scalar

__all__ = [
    "CaffeModel",
    "LayerBlobs",
    "read_caffemodel",
    "write_caffemodel",
    "match_blobs",
    "read_blobproto",
    "write_blobproto",
    "SolverStateData",
    "read_solverstate",
    "write_solverstate",
    "SOLVERSTATE_EXTRA_FIELD",
    "encode_datum",
    "encode_datum_image",
    "decode_datum",
    "V1_LAYER_TYPES",
    "V0_LAYER_TYPES",
]

# --------------------------------------------------------------------------------------------------
# legacy and auxiliary messages (caffe.proto), declared with the schema DSL; only the fields needed here

#: V1LayerParameter.LayerType number -> current layer type string (``UpgradeV1LayerType``)
V1_LAYER_TYPES: dict[int, str] = {
    0: "",  # NONE
    35: "AbsVal",
    1: "Accuracy",
    30: "ArgMax",
    2: "BNLL",
    3: "Concat",
    37: "ContrastiveLoss",
    4: "Convolution",
    39: "Deconvolution",
    5: "Data",
    6: "Dropout",
    32: "DummyData",
    7: "EuclideanLoss",
    25: "Eltwise",
    38: "Exp",
    8: "Flatten",
    9: "HDF5Data",
    10: "HDF5Output",
    28: "HingeLoss",
    11: "Im2col",
    12: "ImageData",
    13: "InfogainLoss",
    14: "InnerProduct",
    15: "LRN",
    29: "MemoryData",
    16: "MultinomialLogisticLoss",
    34: "MVN",
    17: "Pooling",
    26: "Power",
    18: "ReLU",
    19: "Sigmoid",
    27: "SigmoidCrossEntropyLoss",
    36: "Silence",
    20: "Softmax",
    21: "SoftmaxWithLoss",
    22: "Split",
    33: "Slice",
    23: "TanH",
    24: "WindowData",
    31: "Threshold",
}

_V1_LAYER_TYPE = EnumType(
    "LayerType",
    NONE=0, ABSVAL=35, ACCURACY=1, ARGMAX=30, BNLL=2, CONCAT=3, CONTRASTIVE_LOSS=37, CONVOLUTION=4,
    DATA=5, DECONVOLUTION=39, DROPOUT=6, DUMMY_DATA=32, EUCLIDEAN_LOSS=7, ELTWISE=25, EXP=38, FLATTEN=8,
    HDF5_DATA=9, HDF5_OUTPUT=10, HINGE_LOSS=28, IM2COL=11, IMAGE_DATA=12, INFOGAIN_LOSS=13,
    INNER_PRODUCT=14, LRN=15, MEMORY_DATA=29, MULTINOMIAL_LOGISTIC_LOSS=16, MVN=34, POOLING=17, POWER=26,
    RELU=18, SIGMOID=19, SIGMOID_CROSS_ENTROPY_LOSS=27, SILENCE=36, SOFTMAX=20, SOFTMAX_LOSS=21, SPLIT=22,
    SLICE=33, TANH=23, WINDOW_DATA=24, THRESHOLD=31,
)

#: V0 layer type string -> current layer type string (``UpgradeV0LayerType`` then ``UpgradeV1LayerType``)
V0_LAYER_TYPES: dict[str, str] = {
    "accuracy": "Accuracy",
    "bnll": "BNLL",
    "concat": "Concat",
    "conv": "Convolution",
    "data": "Data",
    "dropout": "Dropout",
    "euclidean_loss": "EuclideanLoss",
    "flatten": "Flatten",
    "hdf5_data": "HDF5Data",
    "hdf5_output": "HDF5Output",
    "im2col": "Im2col",
    "images": "ImageData",
    "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct",
    "lrn": "LRN",
    "multinomial_logistic_loss": "MultinomialLogisticLoss",
    "pool": "Pooling",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "softmax": "Softmax",
    "softmax_loss": "SoftmaxWithLoss",
    "split": "Split",
    "tanh": "TanH",
    "window_data": "WindowData",
}


@dataclass
class V0LayerParameterLite(Message):
    """caffe.proto's V0LayerParameter, reduced to what weight loading needs."""

    name: str = scalar(1, "string", "", "the layer name")
    type: str = scalar(2, "string", "", "the V0 type string: conv, innerproduct, pool, ...")
    blobs: list = repeated(50, "message", "the layer's blobs", message_cls=BlobProto)


@dataclass
class V1LayerParameterLite(Message):
    """caffe.proto's V1LayerParameter (``layers { type: CONVOLUTION }``), reduced to what loading needs."""

    bottom: list = repeated(2, "string", "input blobs")
    top: list = repeated(3, "string", "output blobs")
    name: str = scalar(4, "string", "", "the layer name")
    include: list = repeated(32, "message", "include rules", message_cls=NetStateRule)
    exclude: list = repeated(33, "message", "exclude rules", message_cls=NetStateRule)
    type: str = enum(5, _V1_LAYER_TYPE, "NONE", "the V1 layer type enum")
    blobs: list = repeated(6, "message", "the layer's blobs", message_cls=BlobProto)
    layer: V0LayerParameterLite = message(1, V0LayerParameterLite, "a V0 layer inside (V0 files)")


@dataclass
class LayerHeadLite(Message):
    """The fields of LayerParameter that every Caffe fork shares; used when a full decode fails."""

    name: str = scalar(1, "string", "", "the layer name")
    type: str = scalar(2, "string", "", "the layer type")
    bottom: list = repeated(3, "string", "input blobs")
    top: list = repeated(4, "string", "output blobs")
    blobs: list = repeated(7, "message", "the layer's blobs", message_cls=BlobProto)


@dataclass
class NetHeadLite(Message):
    """NetParameter's name alone; used when the full head of a fork's file cannot be decoded."""

    name: str = scalar(1, "string", "", "the net's name")


#: number of the caffe_like extension field of SolverState that holds :attr:`SolverStateData.extra`
SOLVERSTATE_EXTRA_FIELD = field_info(SolverState, "caffe_like_extra").number


# --------------------------------------------------------------------------------------------------
# public data types


@dataclass
class LayerBlobs:
    """The learnable blobs of one layer of a weight file, in Caffe's order.

    ``blobs`` are float32 (``data``) or float64 (``double_data``) arrays, as stored.  ``legacy[i]`` is
    True when blob ``i`` took its shape from the legacy num/channels/height/width fields (then it is
    4-D and :func:`match_blobs` compares it right-aligned, as Caffe does).
    """

    name: str
    type: str
    blobs: list[np.ndarray]
    legacy: list[bool] = field(default_factory=list)


@dataclass
class CaffeModel:
    """A read ``.caffemodel``: the net's name, every layer's blobs, and the net definition.

    ``net`` holds the stored layer definitions *without* their blobs (those are in ``layers``).  For
    legacy V1/V0 files it holds each layer's name, type (upgraded to the current string), bottoms, tops
    and include/exclude rules only (upgrading the rest of a V1 definition is
    :mod:`caffe_like.spec.upgrade`'s job).  ``layers`` lists every stored layer, with or without blobs,
    in file order.
    """

    name: str
    layers: list[LayerBlobs]
    net: NetParameter | None = None


@dataclass
class SolverStateData:
    """The contents of a ``.solverstate``; ``extra`` is the caffe_like extension (field 1000)."""

    iter: int
    learned_net: str = ""
    history: list[np.ndarray] = field(default_factory=list)
    current_step: int = 0
    extra: bytes = b""


# --------------------------------------------------------------------------------------------------
# reading helpers


def _open_error(path: Path, what: str, err: OSError) -> WeightsError:
    if isinstance(err, FileNotFoundError):
        hint = None
        parent = path.parent if str(path.parent) else Path(".")
        with suppress(OSError):
            if parent.is_dir():
                hint = did_you_mean(path.name, [p.name for p in parent.iterdir() if p.is_file()])
            else:
                hint = f"the directory {parent} does not exist either"
        return WeightsError(f"{what} not found", file=str(path),
                            fix=hint or "check the path (a relative path is taken from the current directory)")
    if isinstance(err, IsADirectoryError):
        return WeightsError(f"{what} expected, but this is a directory", file=str(path))
    return WeightsError(f"cannot read the {what}: {err.strerror or err}", file=str(path))


def _read_file(path: str | os.PathLike, what: str) -> bytes:
    """The whole file (small files: blobs, solver states)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise _open_error(path, what, err) from None


def _map_file(path: str | os.PathLike, what: str) -> memoryview | bytes:
    """The file's bytes without copying them: a read-only memoryview of an mmap (released with its last
    reference), or the bytes read when the file cannot be mapped (pipes, special files)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > 0:
                with suppress(OSError, ValueError):
                    return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
            return f.read()
    except OSError as err:
        raise _open_error(path, what, err) from None


def _kind_hint(data) -> str:
    """A phrase saying what a file that is not the expected protobuf seems to be."""
    head = bytes(data[:4096])
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "; it is an HDF5 file (Caffe's .h5 snapshot format), which caffe_like does not read"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x93NUMPY"):
        return "; it looks like a NumPy .npz/.npy file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    if text and printable >= 0.95 * len(text):
        return "; it looks like a text file (a .prototxt net definition?)"
    return ""


class _Malformed(Exception):
    """Invalid or truncated wire data at ``offset``; ``needed``: the size the data would need."""

    def __init__(self, message: str, offset: int, *, needed: int | None = None, number: int | None = None,
                 payload: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.needed = needed
        self.number = number
        self.payload = payload

    @property
    def truncated(self) -> bool:
        return self.needed is not None


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    start = pos
    while True:
        if pos >= end:
            raise _Malformed("the data ends inside a varint", start, needed=end + 1)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("a varint is longer than 10 bytes", start)


def _records(buf) -> Iterator[tuple[int, int, int, int, int]]:
    """The records of one protobuf message: (field number, wire type, start, payload start, end).

    Only the top level of the message is walked, so this costs a few operations per field, however
    large the payloads; the payloads themselves are left to the protobuf parser or to NumPy.
    """
    end = len(buf)
    pos = 0
    while pos < end:
        start = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0", start)
        payload = pos
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, payload = _varint(buf, pos, end)
            pos = payload + length
        elif wire == 5:
            pos += 4
        else:
            raise _Malformed(f"invalid wire type {wire} (field {number})", start)
        if pos > end:
            raise _Malformed(f"a record of field {number} at byte {start} ends past the end of the data",
                             start, needed=pos, number=number, payload=payload)
        yield number, wire, start, payload, pos


def _split(view, numbers) -> tuple[dict[int, list], bytes]:
    """Payload views of the length-delimited records whose field number is in ``numbers``, and the
    other records re-joined (a valid encoding of the message without those fields)."""
    picked: dict[int, list] = {n: [] for n in numbers}
    rest = []
    for number, wire, start, payload, end in _records(view):
        if number in picked and wire == 2:
            picked[number].append(view[payload:end])
        else:
            rest.append(view[start:end])
    return picked, b"".join(rest)


_LEGACY_DIMS = ("num", "channels", "height", "width")
_NATIVE = {"float": np.dtype(np.float32), "double": np.dtype(np.float64)}
_LITTLE = {"float": np.dtype("<f4"), "double": np.dtype("<f8")}
#: BlobProto's packed value fields: number -> (name, float|double)
_BLOB_VALUES = {info.number: (info.name, info.ptype) for info in fields_of(BlobProto) if binary.is_raw_field(info)}
_BLOB_NUMBER = {name: number for number, (name, _kind) in _BLOB_VALUES.items()}
_LAYER_BLOBS = field_info(LayerParameter, "blobs").number  # 7
_NET_LAYER = field_info(NetParameter, "layer").number  # 100
_NET_V1_LAYERS = 2  # NetParameter.layers (V1LayerParameter)
_V1_BLOBS = field_info(V1LayerParameterLite, "blobs").number  # 6
_V1_V0_LAYER = field_info(V1LayerParameterLite, "layer").number  # 1
_V0_BLOBS = field_info(V0LayerParameterLite, "blobs").number  # 50
#: the schema's knowledge of Caffe forks (params.py); empty if it has none
_FORK_NUMBERS: dict[str, tuple[int, ...]] = dict(getattr(params, "FORK_LAYER_FIELD_NUMBERS", {}))
_PARAM_FIELDS: dict[str, tuple[str, ...]] = dict(getattr(params, "LAYER_PARAM_FIELDS", {}))


def _field_number(cls: type, name: str) -> int | None:
    for info in fields_of(cls):
        if info.name == name:
            return info.number
    return None


def _values(chunks, kind: str) -> np.ndarray:
    """One native, aligned, writable array from packed little-endian payload chunks (one copy)."""
    dtype = _LITTLE[kind]
    for chunk in chunks:
        if len(chunk) % dtype.itemsize:
            raise ValueError(f"a packed {kind} payload of {len(chunk)} bytes is not a whole number of values")
    if len(chunks) == 1:
        return np.frombuffer(chunks[0], dtype=dtype).astype(_NATIVE[kind])
    out = np.empty(sum(len(c) for c in chunks) // dtype.itemsize, dtype=_NATIVE[kind])
    pos = 0
    for chunk in chunks:
        n = len(chunk) // dtype.itemsize
        out[pos:pos + n] = np.frombuffer(chunk, dtype=dtype)
        pos += n
    return out


def _shaped(pb, values: np.ndarray, where: str) -> tuple[np.ndarray, bool]:
    """Give ``values`` the shape stored in BlobProto ``pb`` (``Blob::FromProto``: legacy dims win when
    any is present), checking the count; returns (array, legacy)."""
    legacy = any(pb.HasField(dim) for dim in _LEGACY_DIMS)
    shape = tuple(int(getattr(pb, dim)) for dim in _LEGACY_DIMS) if legacy else tuple(int(d) for d in pb.shape.dim)
    if any(d < 0 for d in shape):
        raise ValueError(f"{where} has a negative dimension in its shape {list(shape)}")
    count = 1
    for d in shape:
        count *= d
    if values.size != count:
        raise ValueError(f"{where} has shape {list(shape)} ({count} values) but stores {values.size} values")
    return values.reshape(shape), legacy


def _blob_array(pb, where: str) -> tuple[np.ndarray, bool]:
    """A parsed BlobProto (raw or plain variant) as an array: ``double_data`` wins over ``data``, as
    in ``Blob::FromProto``.  Raises ValueError (the caller adds the file)."""
    if binary.raw_blob_fallback_needed(pb, BlobProto):  # values stored unpacked: read real float fields
        pb = binary.proto_class(BlobProto, raw_blobs=False).FromString(pb.SerializeToString())
    values = None
    for name, kind in (("double_data", "double"), ("data", "float")):
        field_values = getattr(pb, name)
        n = len(field_values)
        if n:
            first = field_values[0]  # each access of a bytes element copies it: take each once
            if isinstance(first, bytes):
                values = _values([first, *(field_values[i] for i in range(1, n))], kind)
            else:
                values = np.array(field_values, dtype=_NATIVE[kind])
            break
    if values is None:
        values = np.zeros(0, np.float32)
    return _shaped(pb, values, where)


def _read_blob(view, where: str) -> tuple[np.ndarray, bool]:
    """A BlobProto record's array, its packed values copied straight from ``view`` (no protobuf copy)."""
    plain = binary.proto_class(BlobProto, raw_blobs=False)
    chunks, rest = _split(view, _BLOB_VALUES)
    unpacked = any(number in _BLOB_VALUES and wire != 2 for number, wire, *_ in _records(rest))
    if unpacked:  # stored element by element (legal protobuf, never written by Caffe)
        return _blob_array(plain.FromString(bytes(view)), where)
    pb = plain.FromString(rest)
    double, single = chunks[_BLOB_NUMBER["double_data"]], chunks[_BLOB_NUMBER["data"]]
    if double:
        values = _values(double, "double")
    elif single:
        values = _values(single, "float")
    else:
        values = np.zeros(0, np.float32)
    return _shaped(pb, values, where)


def _bad(path: str, message: str, data, fix: str | None = None) -> WeightsError:
    return WeightsError(message + _kind_hint(data), file=path, fix=fix)


_CAFFEMODEL = "a binary Caffe NetParameter (.caffemodel)"
_DAMAGED = "the file is damaged or was written by a broken tool; get a fresh copy"


def _layer_name_of(view) -> str | None:
    """Best effort: the name of a (possibly truncated) layer payload, for error messages.

    The name is field 1 of LayerParameter and field 4 of V1LayerParameter; Caffe writes it first
    (after bottom (2) and top (3) in V1).
    """
    with suppress(_Malformed):
        for number, wire, _start, payload, end in _records(view[:4096]):
            if number in (1, 4) and wire == 2:
                with suppress(UnicodeDecodeError):
                    return bytes(view[payload:end]).decode("utf-8")
            if number not in (2, 3):
                return None
    return None


def read_caffemodel(path: str | os.PathLike) -> CaffeModel:
    """Read a ``.caffemodel`` (current, V1 or V0 format) into NumPy arrays.

    Arrays are float32 (``data``) or float64 (``double_data``) as stored, writable and owned (the file
    is memory-mapped and each blob copied out once).  Raises :class:`~caffe_like.errors.WeightsError`
    naming the file when it is missing, empty, truncated, corrupt or not a binary NetParameter.
    """
    path = str(path)
    buf = _map_file(path, "weights file (.caffemodel)")
    if not len(buf):
        raise WeightsError(f"the file is empty (0 bytes); expected {_CAFFEMODEL}", file=path,
                           fix="the file was not written completely; get a complete copy")
    head_parts = []
    layer_views = []
    v1_views = []
    try:
        for number, wire, start, payload, end in _records(buf):
            if number == _NET_LAYER and wire == 2:
                layer_views.append(buf[payload:end])
            elif number == _NET_V1_LAYERS and wire == 2:
                v1_views.append(buf[payload:end])
            elif number in (_NET_LAYER, _NET_V1_LAYERS):
                raise _Malformed(f"field {number} (the layers) has wire type {wire}", start)
            else:
                head_parts.append(buf[start:end])
    except _Malformed as err:
        if err.truncated:
            inside = ""
            if err.number in (_NET_LAYER, _NET_V1_LAYERS) and err.payload is not None:
                name = _layer_name_of(buf[err.payload:])
                inside = f" inside layer '{name}'" if name else " inside a layer"
            raise WeightsError(
                f"the file is truncated: it has {len(buf)} bytes, but the record at byte {err.offset}"
                f"{inside} needs {err.needed}; expected {_CAFFEMODEL}",
                file=path, fix="the file was cut short (interrupted download, copy or snapshot); get a complete copy",
            ) from None
        raise _bad(path, f"not {_CAFFEMODEL}: invalid protobuf data at byte {err.offset} ({err})", buf,
                   fix="pass the binary weights file written by Caffe or caffe-like") from None
    if layer_views and v1_views:
        raise WeightsError("the file has both 'layer' (current) and 'layers' (V1) entries; Caffe refuses such a net",
                           file=path)
    if not layer_views and not v1_views:
        raise _bad(path, f"no layers found: not {_CAFFEMODEL}", buf,
                   fix="pass the binary weights file written by Caffe or caffe-like")

    head = b"".join(head_parts)
    try:
        net = binary.decode(head, NetParameter)
    except WeightsError:
        try:
            name = binary.decode(head, NetHeadLite).name
        except WeightsError as err:
            raise _bad(path, f"not {_CAFFEMODEL}: {err.message}", buf) from None
        warnings.warn(f"{path}: the net-level fields could not be decoded (a Caffe fork's?); only the "
                      "name is kept", stacklevel=2)
        net = NetParameter(name=name)

    layers: list[LayerBlobs] = []
    specs: list[LayerParameter] = []
    read_one = _read_layer if layer_views else _read_v1_layer
    for k, view in enumerate(layer_views or v1_views):
        try:
            spec, blob_views = read_one(view, path)
            arrays, legacy = [], []
            for j, blob_view in enumerate(blob_views):
                array, is_legacy = _read_blob(blob_view, f"blob {j}")
                arrays.append(array)
                legacy.append(is_legacy)
        except (_Malformed, DecodeError, ValueError, UnicodeDecodeError) as err:
            name = _layer_name_of(view)
            label = f"layer #{k}" + (f" ('{name}')" if name else "")
            raise _bad(path, f"{label} is corrupt: {err}; expected {_CAFFEMODEL}", buf, fix=_DAMAGED) from None
        layers.append(LayerBlobs(spec.name, spec.type, arrays, legacy))
        specs.append(spec)
    net.layer = specs
    return CaffeModel(name=net.name, layers=layers, net=net)


def _fork_renumbering(rest: bytes) -> dict[int, int]:
    """Field numbers of this layer record to read as another number: a Caffe fork's block for the paper's
    layers (``params.FORK_LAYER_FIELD_NUMBERS``, e.g. center_loss_param at 147, which BVLC gave to
    swish_param), when the layer's type reads that block and not the BVLC block of the same number."""
    numbers = {n: block for block, ns in _FORK_NUMBERS.items() for n in ns}
    present = {number: wire for number, wire, *_ in _records(rest)}
    if not numbers.keys() & present.keys():
        return {}
    head = binary.decode(rest, LayerHeadLite)
    wanted = _PARAM_FIELDS.get(head.type, ())
    by_number = {info.number: info.name for info in fields_of(LayerParameter)}
    renumber = {}
    for number, block in numbers.items():
        if number not in present or present[number] != 2 or block not in wanted:
            continue
        ours = _field_number(LayerParameter, block)
        if ours is None or ours in present or by_number.get(number) in wanted:
            continue
        renumber[number] = ours
    return renumber


def _renumbered(rest: bytes, renumber: dict[int, int]) -> bytes:
    parts = []
    view = memoryview(rest)
    for number, wire, start, payload, end in _records(view):
        if number in renumber and wire == 2:
            parts.append(_key(renumber[number], 2) + _varint_bytes(end - payload))
            parts.append(view[payload:end])
        else:
            parts.append(view[start:end])
    return b"".join(parts)


def _read_layer(view, path: str) -> tuple[LayerParameter, list]:
    """A current-format layer record: its definition (without blobs) and its blob record views."""
    picked, rest = _split(view, (_LAYER_BLOBS,))
    with suppress(WeightsError):
        renumber = _fork_renumbering(rest)
        if renumber:
            rest = _renumbered(rest, renumber)
    try:
        spec = binary.decode(rest, LayerParameter)
    except WeightsError:  # a Caffe fork's fields clash with the schema: keep what every fork shares
        head = binary.decode(rest, LayerHeadLite)  # raises WeightsError when the record is corrupt
        warnings.warn(f"{path}: layer '{head.name}' ({head.type}): its definition could not be fully "
                      "decoded (fields of a Caffe fork?); only name, type, bottom and top are kept", stacklevel=4)
        spec = LayerParameter(name=head.name, type=head.type)
        if head.bottom:
            spec.bottom = list(head.bottom)
        if head.top:
            spec.top = list(head.top)
    return spec, picked[_LAYER_BLOBS]


def _read_v1_layer(view, path: str) -> tuple[LayerParameter, list]:
    """A V1 (or V0-in-V1) layer record: a minimal current definition and its blob record views."""
    picked, rest = _split(view, (_V1_BLOBS, _V1_V0_LAYER))
    v1_cls = binary.proto_class(V1LayerParameterLite)
    pb = v1_cls.FromString(rest)
    name = pb.name
    if pb.HasField("type"):
        type_ = V1_LAYER_TYPES[pb.type]
    else:
        unknown = [data for number, _wire, data in binary.unknown_fields(pb) if number == 5]
        type_ = f"V1LayerType({unknown[0]})" if unknown else ""
    blob_views = picked[_V1_BLOBS]
    if picked[_V1_V0_LAYER]:  # V0: name, type string and blobs live in the inner layer
        v0_picked, v0_rest = _split(picked[_V1_V0_LAYER][-1], (_V0_BLOBS,))
        v0 = binary.proto_class(V0LayerParameterLite).FromString(v0_rest)
        name = v0.name
        type_ = V0_LAYER_TYPES.get(v0.type, v0.type)
        blob_views = v0_picked[_V0_BLOBS]
    v1 = binary.from_proto(pb, V1LayerParameterLite, skip=("blobs", "layer", "type", "name"))
    spec = LayerParameter(name=name, type=type_)
    for field_name in ("bottom", "top", "include", "exclude"):  # copied unchanged by UpgradeV1LayerParameter
        if getattr(v1, field_name):
            setattr(spec, field_name, getattr(v1, field_name))
    return spec, blob_views


# --------------------------------------------------------------------------------------------------
# writing


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_LAYER_KEY = _varint_bytes((100 << 3) | 2)  # NetParameter.layer, length-delimited


@contextmanager
def _atomic_write(path: str | os.PathLike):
    """Open a temporary file next to ``path``; on success flush it to disk and rename it over ``path``."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    tmp = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as err:
        raise WeightsError(f"cannot write: {err.strerror or err}", file=str(path),
                           fix="check that the directory exists and is writable") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise WeightsError(f"cannot write: {err.strerror or err}", file=str(path)) from None
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        with suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def _check_numeric(array) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"blob arrays must be numeric, got dtype {array.dtype}")
    return array


def _blob_values(array, double: bool) -> np.ndarray:
    array = _check_numeric(array)
    # no copy when already so; keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d)
    return array.astype("<f8" if double else "<f4", order="C", copy=False)


def _fill_blob(pb, array, double: bool) -> None:
    """Fill a raw-variant BlobProto: ``shape`` (never the legacy dims) and packed data."""
    values = _blob_values(array, double)
    if values.ndim:  # no shape at all for a 0-d blob, as Blob::ToProto (even extend([]) would set it)
        pb.shape.dim.extend(int(d) for d in values.shape)
    if values.size:
        getattr(pb, "double_data" if double else "data").append(values.tobytes())


def _key(number: int, wire: int) -> bytes:
    return _varint_bytes((number << 3) | wire)


def _blob_record(array, double: bool) -> list:
    """The pieces of one ``blobs`` record of a LayerParameter, exactly as protobuf serializes a
    BlobProto holding ``shape`` and packed ``data`` (or ``double_data``), fields in number order.

    The values go out as a view of the array's memory: no copy for a contiguous float32 (float64) array.
    """
    values = _blob_values(array, double)
    shape_pb = binary.proto_class(BlobProto, raw_blobs=False)()
    if values.ndim:  # a 0-d blob has no shape field at all, as Blob::ToProto writes it
        shape_pb.shape.dim.extend(int(d) for d in values.shape)
    shape_record = shape_pb.SerializeToString()  # field 7 alone; empty for a 0-d blob
    parts: list = []
    if values.size:
        number = _BLOB_NUMBER["double_data" if double else "data"]
        parts = [_key(number, 2) + _varint_bytes(values.nbytes), memoryview(values).cast("B")]
    if _BLOB_NUMBER["double_data" if double else "data"] < field_info(BlobProto, "shape").number:
        parts = [*parts, shape_record]
    else:
        parts = [shape_record, *parts]
    size = sum(len(p) for p in parts)
    return [_key(_LAYER_BLOBS, 2) + _varint_bytes(size), *parts]


def _layer_definition(lb: LayerBlobs, spec: LayerParameter | None) -> bytes:
    """The serialized LayerParameter without blobs (name and type at least)."""
    if spec is None:
        return binary.proto_class(LayerParameter)(name=lb.name, type=lb.type).SerializeToString()
    if has(spec, "name") and spec.name != lb.name:
        raise ValueError(f"layer_params['{lb.name}'] is named '{spec.name}'")
    if has(spec, "type") and lb.type and spec.type != lb.type:
        raise ValueError(f"layer '{lb.name}': type '{lb.type}' but layer_params says '{spec.type}'")
    pb = binary.to_proto(spec, skip=("blobs",))
    if not has(spec, "name"):
        pb.name = lb.name
    if not has(spec, "type"):
        pb.type = lb.type
    return pb.SerializeToString()


def write_caffemodel(
    path: str | os.PathLike,
    name: str,
    layers: Sequence[LayerBlobs],
    *,
    layer_params: Mapping[str, LayerParameter] | None = None,
    double: bool = False,
) -> None:
    """Write a ``.caffemodel`` (binary NetParameter, current format) atomically.

    One ``layer`` per entry of ``layers``, in order.  Where ``layer_params`` has an entry for the layer's
    name, that LayerParameter supplies the whole definition (type, bottom/top, phase, params ...; its own
    ``blobs`` are ignored), as Caffe's ``Net::ToProto`` writes it; otherwise the layer carries its name
    and type only.  Blobs are written with ``shape`` (never the legacy 4-D fields) and float32 ``data``,
    or float64 ``double_data`` with ``double=True``.  The bytes are those protobuf's serializer (and
    Caffe's) produces for the same message; blob values are streamed from the arrays without copies.

    Raises ValueError when ``layer_params`` names a layer that ``layers`` lacks or disagrees with it on
    the name or type, TypeError for a non-numeric array, :class:`~caffe_like.errors.WeightsError` when
    the file cannot be written.
    """
    layer_params = dict(layer_params or {})
    known = {lb.name for lb in layers}
    stray = [key for key in layer_params if key not in known]
    if stray:
        raise ValueError(f"layer_params names layers that are not written: {', '.join(stray)}")
    definitions = [_layer_definition(lb, layer_params.get(lb.name)) for lb in layers]  # validate first
    for lb in layers:
        for array in lb.blobs:
            _check_numeric(array)
    head = binary.encode(NetParameter(name=name))
    with _atomic_write(path) as f:
        f.write(head)
        for lb, definition in zip(layers, definitions):
            # blobs (field 7) go where the serializer puts them: before the first field numbered above 7
            split = len(definition)
            for number, _wire, start, _payload, _end in _records(definition):
                if number > _LAYER_BLOBS:
                    split = start
                    break
            blob_parts = [part for array in lb.blobs for part in _blob_record(array, double)]
            size = len(definition) + sum(len(p) for p in blob_parts)
            f.write(_LAYER_KEY + _varint_bytes(size))
            f.write(definition[:split])
            for part in blob_parts:
                f.write(part)
            f.write(definition[split:])


# --------------------------------------------------------------------------------------------------
# copying into a net (Net::CopyTrainedLayersFrom)


def _fmt(shape) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def match_blobs(
    model: CaffeModel,
    expected: Mapping[str, Sequence[tuple[int, ...]]],
    *,
    file: str | os.PathLike | None = None,
) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """Match a weight file's layers to a net's learnable blobs, as ``Net::CopyTrainedLayersFrom``.

    ``expected`` maps each layer name of the net to the shapes of its blobs (``[]`` for a layer
    without blobs).  Source layers are matched by name; those absent from the net are skipped and
    returned in the second list (Caffe logs "Ignoring source layer"); net layers absent from the file
    are simply not in the result (they keep their fillers).  For a matched layer the blob count must
    be equal and every shape must match; a blob stored with the legacy 4-D fields is compared
    right-aligned with 1-padding (1×1×N×K loads into [N, K]) and reshaped to the expected shape.

    Returns ``({layer: [arrays in expected shapes]}, [skipped source layers])``; raises
    :class:`~caffe_like.errors.WeightsError` naming the layer, blob, shapes and ``file`` on a mismatch.
    """
    file = None if file is None else str(file)
    loaded: dict[str, list[np.ndarray]] = {}
    skipped: list[str] = []
    for source in model.layers:
        target = expected.get(source.name)
        if target is None:
            skipped.append(source.name)
            continue
        if len(target) != len(source.blobs):
            raise WeightsError(
                f"incompatible number of blobs: the file has {len(source.blobs)} "
                f"({', '.join(_fmt(b.shape) for b in source.blobs) or 'none'}), the net expects {len(target)} "
                f"({', '.join(_fmt(s) for s in target) or 'none'})",
                file=file, layer=source.name, layer_type=source.type or None,
                fix="the layer is defined differently from the net that saved the weights (bias_term?); "
                    "rename the layer to leave its weights out",
            )
        arrays = []
        for j, (array, shape) in enumerate(zip(source.blobs, target)):
            shape = tuple(int(d) for d in shape)
            legacy = j < len(source.legacy) and source.legacy[j]
            if legacy:
                ok = len(shape) <= 4 and tuple(array.shape) == (1,) * (4 - len(shape)) + shape
            else:
                ok = tuple(array.shape) == shape
            if not ok:
                stored = _fmt(array.shape) + (" (legacy 4-D)" if legacy else "")
                raise WeightsError(
                    f"cannot copy blob {j}: shape mismatch: the file has {stored}, the net expects {_fmt(shape)}",
                    file=file, layer=source.name, layer_type=source.type or None,
                    fix="the layer is defined differently from the net that saved the weights "
                        "(num_output, kernel size, input size?); rename the layer to leave its weights out",
                )
            arrays.append(array.reshape(shape) if tuple(array.shape) != shape else array)
        loaded[source.name] = arrays
    return loaded, skipped


# --------------------------------------------------------------------------------------------------
# single blobs (mean files)


def read_blobproto(path: str | os.PathLike) -> np.ndarray:
    """Read a binary ``BlobProto`` file (a mean file), with its stored shape (usually 1×C×H×W)."""
    path = str(path)
    data = _read_file(path, "blob file (.binaryproto)")
    what = "a binary Caffe BlobProto (.binaryproto)"
    if not data:
        raise WeightsError(f"the file is empty (0 bytes); expected {what}", file=path)
    try:
        pb = binary.proto_class(BlobProto).FromString(data)
    except DecodeError as err:
        raise _bad(path, f"not {what}: {err}", data) from None
    present = [f for f in ("shape", *_LEGACY_DIMS) if pb.HasField(f)]
    present += [f for f in ("data", "double_data", "diff", "double_diff") if len(getattr(pb, f))]
    if not present:
        raise _bad(path, f"not {what}: no blob shape and no values found", data)
    try:
        array, _legacy = _blob_array(pb, "the blob")
    except ValueError as err:
        raise _bad(path, f"not a valid blob: {err}", data) from None
    return array


def write_blobproto(path: str | os.PathLike, array: np.ndarray, *, double: bool = False) -> None:
    """Write ``array`` as a binary ``BlobProto`` (``shape`` + float32 ``data``, or ``double_data``), atomically."""
    pb = binary.proto_class(BlobProto)()
    _fill_blob(pb, array, double)
    payload = pb.SerializeToString()
    with _atomic_write(path) as f:
        f.write(payload)


# --------------------------------------------------------------------------------------------------
# solver state


def read_solverstate(path: str | os.PathLike) -> SolverStateData:
    """Read a ``.solverstate`` (Caffe's, or caffe_like's with the field-1000 extension)."""
    path = str(path)
    data = _read_file(path, "solver state (.solverstate)")
    what = "a binary Caffe SolverState (.solverstate)"
    if not data:
        raise WeightsError(f"the file is empty (0 bytes); expected {what}", file=path)
    try:
        pb = binary.proto_class(SolverState).FromString(data)
        history = [_blob_array(blob, f"history blob {j}")[0] for j, blob in enumerate(pb.history)]
        learned_net = pb.learned_net
    except (DecodeError, ValueError, UnicodeDecodeError) as err:
        raise _bad(path, f"not {what}: {err}", data) from None
    if not (pb.HasField("iter") or len(pb.history) or pb.HasField("learned_net")):
        raise _bad(path, f"not {what}: it has no iteration, no history and no learned_net", data)
    return SolverStateData(iter=pb.iter, learned_net=learned_net, history=history,
                           current_step=pb.current_step, extra=bytes(pb.caffe_like_extra))


def write_solverstate(path: str | os.PathLike, state: SolverStateData) -> None:
    """Write ``state`` as a ``.solverstate`` atomically.

    History blobs are written like ``Blob::ToProto``: ``shape`` plus float32 ``data``, or
    ``double_data`` for float64 arrays (so a float64 run resumes bit for bit).  ``extra`` goes into
    the caffe_like extension field 1000 (omitted when empty).
    """
    pb = binary.proto_class(SolverState)()
    pb.iter = int(state.iter)
    if state.learned_net:
        pb.learned_net = str(state.learned_net)
    for array in state.history:
        array = np.asarray(array)
        _fill_blob(pb.history.add(), array, double=array.dtype == np.float64)
    pb.current_step = int(state.current_step)
    if state.extra:
        pb.caffe_like_extra = bytes(state.extra)
    payload = pb.SerializeToString()
    with _atomic_write(path) as f:
        f.write(payload)


# --------------------------------------------------------------------------------------------------
# Datum (LMDB / LevelDB records)


def encode_datum(array: np.ndarray, label: int) -> bytes:
    """Encode one C×H×W sample as a Caffe ``Datum``.

    uint8 arrays go to ``data`` (bytes, as ``convert_imageset`` writes them; Caffe expects BGR channel
    order for color images); floating arrays go to ``float_data`` (float32).
    """
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"a Datum holds a C×H×W array, got shape {array.shape}")
    pb = binary.proto_class(Datum)()
    pb.channels, pb.height, pb.width = (int(d) for d in array.shape)
    if array.dtype == np.uint8:
        pb.data = np.ascontiguousarray(array).tobytes()
    elif array.dtype.kind == "f":
        pb.float_data.extend(np.asarray(array, dtype=np.float32).ravel().tolist())
    else:
        raise ValueError(f"a Datum holds uint8 or float pixels, got dtype {array.dtype}")
    pb.label = int(label)
    return pb.SerializeToString()


def encode_datum_image(image: bytes, label: int) -> bytes:
    """Encode an already compressed image (PNG/JPEG file bytes) as a Datum with ``encoded: true``,
    as ``convert_imageset --encoded`` does (no dimensions are stored)."""
    pb = binary.proto_class(Datum)()
    pb.data = bytes(image)
    pb.label = int(label)
    pb.encoded = True
    return pb.SerializeToString()


def _decode_image(payload: bytes, color: bool | None) -> np.ndarray | None:
    """Decode image bytes like OpenCV in Caffe: C×H×W uint8, color as BGR; None without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(payload)) as image:
            image.load()
            gray_modes = ("1", "L", "LA", "I", "I;16", "F")
            gray = image.mode in gray_modes if color is None else not color
            if gray:
                pixels = np.asarray(image.convert("L"), dtype=np.uint8)[None]
            else:
                pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)[:, :, ::-1].transpose(2, 0, 1)
    except Exception as err:  # Pillow raises many kinds (UnidentifiedImageError, OSError, ...)
        raise DataError(f"an encoded Datum holds an image that cannot be decoded: {err}") from None
    return np.ascontiguousarray(pixels)


def decode_datum(data: bytes, *, decode_images: bool = True,
                 color: bool | None = None) -> tuple[np.ndarray, int, bool]:
    """Decode a Caffe ``Datum``: ``(array, label, encoded)``.

    Plain datums give their C×H×W array: uint8 from ``data``, float32 from ``float_data``.  Encoded
    datums (``encoded: true``: PNG/JPEG bytes in ``data``) are decoded with Pillow when it is importable
    and ``decode_images`` is true, into C×H×W uint8 in OpenCV's channel order, as Caffe's
    ``DecodeDatumToCVMat`` gives them (BGR for color, 1 channel for grayscale; ``color`` forces either,
    like ``force_color``/``force_gray``).  Otherwise the raw image bytes come back as a 1-D uint8 array
    for the caller to decode.  ``encoded`` tells which case it was.  Raises
    :class:`~caffe_like.errors.DataError` for a corrupt record.
    """
    try:
        pb = binary.proto_class(Datum).FromString(data)
    except DecodeError as err:
        raise DataError(f"not a valid Caffe Datum record ({err})") from None
    label = int(pb.label)
    if pb.encoded:
        payload = bytes(pb.data)
        decoded = _decode_image(payload, color) if decode_images else None
        if decoded is None:
            return np.frombuffer(payload, dtype=np.uint8).copy(), label, True
        return decoded, label, True
    shape = (pb.channels, pb.height, pb.width)
    count = shape[0] * shape[1] * shape[2]
    if len(pb.data):
        values = np.frombuffer(pb.data, dtype=np.uint8).copy()
    else:
        values = np.array(pb.float_data, dtype=np.float32)
    if min(shape) < 0 or values.size != count:
        raise DataError(f"a Datum of shape {list(shape)} ({count} values) holds {values.size} values")
    return values.reshape(shape), label, False

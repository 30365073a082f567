"""A stand-in for pycaffe's ``caffe`` module, so that Caffe Python layers run unmodified.

A Caffe Python layer is a module that does ``import caffe`` and subclasses ``caffe.Layer``; Caffe calls its
``setup(bottom, top)``, ``reshape(bottom, top)``, ``forward(bottom, top)`` and
``backward(top, propagate_down, bottom)`` with lists of blobs.  :func:`install` makes ``import caffe``
give this module, **only when no real pycaffe can be imported** (a real one is never shadowed; set the
environment variable ``CAFFE_LIKE_PYCAFFE=compat`` to use this module even then).

What it provides, as pycaffe does:

* :class:`Layer`: the base class (``self.blobs``, ``self.param_str``, ``self.phase``, ``self.type``);
* :class:`Blob`: ``.data`` / ``.diff`` (writable NumPy arrays), ``.shape``, ``.count``,
  ``.num`` / ``.channels`` / ``.height`` / ``.width`` (legacy 4-D accessors), ``.reshape(*shape)``;
* ``self.blobs.add_blob(*shape)``: a new zero-filled learnable blob (:class:`BlobVec`);
* ``TRAIN = 0``, ``TEST = 1``;
* ``set_mode_cpu()``, ``set_mode_gpu()``, ``set_device(i)``, ``set_random_seed(s)``, ``init_log()``,
  ``set_multiprocess(b)``: accepted and ignored (caffe_like chooses the device itself);
* ``caffe.proto.caffe_pb2``: protobuf classes of caffe_like's schema (``BlobProto``, ``Datum``,
  ``NetParameter``, ``LayerParameter``, ``SolverParameter``, ..., and ``TRAIN`` / ``TEST``);
* ``caffe.io``: ``blobproto_to_array``, ``array_to_blobproto``, ``datum_to_array``, ``array_to_datum``,
  ``load_image``.

``caffe.Net``, ``caffe.SGDSolver``, ``caffe.get_solver``, ``caffe.NetSpec`` and ``caffe.layers`` are scripting
APIs, not something a layer uses: they raise an error naming the caffe_like equivalent.

NOTE: unlike pycaffe, assigning ``blob.data = array`` copies the values in (pycaffe raises
AttributeError); ``Blob.reshape`` also accepts one tuple.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
import types

import numpy as np

__all__ = ["Layer", "Blob", "BlobVec", "TRAIN", "TEST", "install", "is_installed", "set_mode_cpu",
           "set_mode_gpu", "set_device", "set_random_seed", "init_log", "set_multiprocess"]

#: pycaffe's phase values (caffe_pb2.TRAIN / caffe_pb2.TEST)
TRAIN = 0
TEST = 1
PHASES = {"TRAIN": TRAIN, "TEST": TEST}

__version__ = "1.0.0"
#: marks this module as caffe_like's stand-in (``caffe.CAFFE_LIKE_COMPAT``)
CAFFE_LIKE_COMPAT = True


# --------------------------------------------------------------------------------------------------
# blobs


def _dims(shape: tuple) -> tuple[int, ...]:
    """Blob dimensions from ``reshape``'s arguments: ints, or one tuple/list of ints."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, np.ndarray)):
        shape = tuple(shape[0])
    dims = []
    for d in shape:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer, float, np.floating)):
            raise TypeError(f"blob dimensions must be integers, got {d!r}")
        if isinstance(d, (float, np.floating)) and not float(d).is_integer():
            raise TypeError(f"blob dimensions must be integers, got {d!r}")
        if d < 0:
            raise ValueError(f"blob dimensions must be >= 0, got {list(shape)}")
        dims.append(int(d))
    return tuple(dims)


class Blob:
    """pycaffe's Blob: a shape plus ``data`` and ``diff`` arrays of the same shape.

    As Caffe's, the memory is kept when a reshape needs no more of it (the values stay, read in the new
    shape) and is new and zero-filled when it needs more.  A blob made without a shape has none yet
    (``shape == ()`` and ``count == 0``), as the tops Caffe hands to ``setup``.
    """

    def __init__(self, shape=None, dtype=np.float32) -> None:
        self._dtype = np.dtype(dtype)
        self._data_buf = np.zeros(0, dtype=self._dtype)
        self._diff_buf = np.zeros(0, dtype=self._dtype)
        self._shape: tuple[int, ...] | None = None
        if shape is not None:
            self.reshape(*tuple(shape))

    # -- shape -------------------------------------------------------------------------------------

    def reshape(self, *shape) -> None:
        """Give the blob a new shape: ``blob.reshape(n, c, h, w)`` (or one tuple)."""
        dims = _dims(shape)
        count = math.prod(dims)
        if count > self._data_buf.size:
            self._data_buf = np.zeros(count, dtype=self._dtype)
            self._diff_buf = np.zeros(count, dtype=self._dtype)
        self._shape = dims

    @property
    def shape(self) -> tuple[int, ...]:
        return () if self._shape is None else self._shape

    @property
    def count(self) -> int:
        return 0 if self._shape is None else math.prod(self._shape)

    @property
    def num_axes(self) -> int:
        return len(self.shape)

    def _legacy(self, index: int) -> int:
        shape = self.shape
        if len(shape) > 4:
            raise ValueError(f"num/channels/height/width are defined for blobs of at most 4 axes; this one has "
                             f"shape {list(shape)} (use .shape)")
        return shape[index] if index < len(shape) else 1

    @property
    def num(self) -> int:
        return self._legacy(0)

    @property
    def channels(self) -> int:
        return self._legacy(1)

    @property
    def height(self) -> int:
        return self._legacy(2)

    @property
    def width(self) -> int:
        return self._legacy(3)

    # -- values ------------------------------------------------------------------------------------

    def _view(self, buf: np.ndarray) -> np.ndarray:
        if self._shape is None:
            return buf[:0]
        return buf[: self.count].reshape(self._shape)

    @property
    def data(self) -> np.ndarray:
        """The values (a writable array viewing the blob's memory)."""
        return self._view(self._data_buf)

    @data.setter
    def data(self, value) -> None:
        self.data[...] = value

    @property
    def diff(self) -> np.ndarray:
        """The gradient (a writable array viewing the blob's memory)."""
        return self._view(self._diff_buf)

    @diff.setter
    def diff(self, value) -> None:
        self.diff[...] = value

    # -- for caffe_like ----------------------------------------------------------------------------

    def _load(self, array: np.ndarray) -> None:
        """Reshape to ``array``'s shape and copy it into ``data`` (the caller's array is not kept)."""
        self.reshape(*array.shape)
        self.data[...] = array

    def _zero_diff(self) -> None:
        self._diff_buf[: self.count] = 0

    def __repr__(self) -> str:
        return f"<caffe.Blob shape={list(self.shape)} dtype={self._dtype}>"


class BlobVec(list):
    """pycaffe's vector of blobs (a layer's ``self.blobs``), with ``add_blob(*shape)``."""

    def __init__(self, dtype=np.float32) -> None:
        super().__init__()
        self._dtype = np.dtype(dtype)

    def add_blob(self, *shape) -> None:
        """Append a new zero-filled blob of this shape (a learnable blob of the layer)."""
        self.append(Blob(_dims(shape), dtype=self._dtype))


# --------------------------------------------------------------------------------------------------
# the layer base class


class Layer:
    """pycaffe's ``caffe.Layer``: the base class of Python layers.

    Caffe constructs the class with the layer's LayerParameter, then sets ``param_str`` (before
    ``setup``) and ``phase`` (``caffe.TRAIN`` or ``caffe.TEST``).  ``self.blobs`` holds the learnable
    blobs (``self.blobs.add_blob(*shape)`` in ``setup``).
    """

    def __init__(self, param=None) -> None:
        self.layer_param = param

    @property
    def blobs(self) -> BlobVec:
        vec = self.__dict__.get("_caffe_blobs")
        if vec is None:
            vec = BlobVec(self.__dict__.get("_caffe_dtype", np.float32))
            self.__dict__["_caffe_blobs"] = vec
        return vec

    @property
    def type(self) -> str:
        return "Python"

    def setup(self, bottom, top) -> None:
        """Read ``self.param_str``, check the bottoms, create learnable blobs (override)."""

    def reshape(self, bottom, top) -> None:
        """Give every top its shape (override; Caffe calls it before every forward)."""

    def forward(self, bottom, top) -> None:
        raise NotImplementedError(f"{type(self).__name__} defines no forward(bottom, top)")

    def backward(self, top, propagate_down, bottom) -> None:
        raise NotImplementedError(f"{type(self).__name__} defines no backward(top, propagate_down, bottom)")


# --------------------------------------------------------------------------------------------------
# global settings (Caffe's singleton): accepted, ignored


def set_mode_cpu() -> None:
    """Ignored: caffe_like runs on the device the net is on (``--device``)."""


def set_mode_gpu() -> None:
    """Ignored: caffe_like runs on the device the net is on (``--device``)."""


def set_device(device_id: int) -> None:  # noqa: ARG001 - pycaffe's signature
    """Ignored: caffe_like runs on the device the net is on (``--device``)."""


def set_random_seed(seed: int) -> None:  # noqa: ARG001
    """Ignored: seed caffe_like with the solver's ``random_seed``."""


def set_multiprocess(multiprocess: bool) -> None:  # noqa: ARG001
    """Ignored."""


def init_log(*args, **kwargs) -> None:  # noqa: ARG001
    """Ignored."""


def solver_count() -> int:
    return 1


def solver_rank() -> int:
    return 0


def layer_type_list() -> list[str]:
    """The layer types caffe_like implements (pycaffe's ``caffe.layer_type_list()``)."""
    from .layers.registry import LAYERS

    return sorted(LAYERS)


class _Unsupported:
    """A pycaffe scripting API that caffe_like replaces with its own."""

    def __init__(self, name: str, instead: str) -> None:
        self._name, self._instead = name, instead

    def __call__(self, *args, **kwargs):
        from .errors import SpecError

        raise SpecError(f"caffe.{self._name} is pycaffe's scripting API, which caffe_like's stand-in for the "
                        "caffe module (for Python layers) does not provide", fix=f"use {self._instead}")

    def __getattr__(self, attr):
        return self


Net = _Unsupported("Net", "caffe_like.Net(net_file, phase=...)")
Classifier = _Unsupported("Classifier", "caffe_like.Net and caffe-like infer")
Detector = _Unsupported("Detector", "caffe_like.Net")
SGDSolver = _Unsupported("SGDSolver", "caffe_like.Solver(solver_file)")
NesterovSolver = AdaGradSolver = RMSPropSolver = AdaDeltaSolver = AdamSolver = SGDSolver
get_solver = _Unsupported("get_solver", "caffe_like.Solver(solver_file)")
NetSpec = _Unsupported("NetSpec", "a YAML or prototxt net file (caffe_like.NetSpec reads them)")
layers = _Unsupported("layers", "a YAML or prototxt net file")
params = _Unsupported("params", "a YAML or prototxt net file")


# --------------------------------------------------------------------------------------------------
# caffe.proto.caffe_pb2 and caffe.io


class _CaffePb2(types.ModuleType):
    """``caffe.proto.caffe_pb2``: protobuf classes made from caffe_like's schema, on first use."""

    TRAIN = TRAIN
    TEST = TEST

    def __getattr__(self, name: str):
        from .spec import binary, params

        for cls in params.ALL_MESSAGES:
            if cls.__name__ == name:
                proto = binary.proto_class(cls, raw_blobs=False)
                setattr(self, name, proto)
                return proto
        raise AttributeError(f"caffe_pb2 (caffe_like's stand-in) has no message '{name}'")


def _blobproto_to_array(blob, return_diff: bool = False) -> np.ndarray:
    values = np.array(blob.diff if return_diff else blob.data, dtype=np.float32)
    if len(blob.double_diff if return_diff else blob.double_data):
        values = np.array(blob.double_diff if return_diff else blob.double_data, dtype=np.float64)
    if blob.HasField("num") or blob.HasField("channels") or blob.HasField("height") or blob.HasField("width"):
        return values.reshape(blob.num, blob.channels, blob.height, blob.width)
    return values.reshape(tuple(blob.shape.dim))


def _array_to_blobproto(arr, diff=None):
    pb = sys.modules["caffe.proto.caffe_pb2"].BlobProto()
    arr = np.asarray(arr)
    pb.shape.dim.extend(arr.shape)
    pb.data.extend(arr.astype(float).flat)
    if diff is not None:
        pb.diff.extend(np.asarray(diff).astype(float).flat)
    return pb


def _array_to_datum(arr, label=None):
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError("Incorrect array shape.")
    datum = sys.modules["caffe.proto.caffe_pb2"].Datum()
    datum.channels, datum.height, datum.width = arr.shape
    if arr.dtype == np.uint8:
        datum.data = arr.tobytes()
    else:
        datum.float_data.extend(arr.astype(float).flat)
    if label is not None:
        datum.label = label
    return datum


def _datum_to_array(datum) -> np.ndarray:
    if len(datum.data):
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(datum.channels, datum.height, datum.width)
    return np.array(datum.float_data).astype(float).reshape(datum.channels, datum.height, datum.width)


def _load_image(filename, color: bool = True) -> np.ndarray:
    from PIL import Image

    with Image.open(filename) as image:
        image = image.convert("RGB" if color else "L")
        array = np.asarray(image, dtype=np.float32) / 255.0
    return array if color else array[:, :, np.newaxis]


def _make_io() -> types.ModuleType:
    io = types.ModuleType("caffe.io", "caffe.io (caffe_like's stand-in): blob/datum conversions and load_image.")
    io.blobproto_to_array = _blobproto_to_array
    io.array_to_blobproto = _array_to_blobproto
    io.array_to_datum = _array_to_datum
    io.datum_to_array = _datum_to_array
    io.load_image = _load_image
    return io


# --------------------------------------------------------------------------------------------------
# installing as ``caffe``


def is_installed() -> bool:
    """Whether ``sys.modules["caffe"]`` is this stand-in."""
    return getattr(sys.modules.get("caffe"), "CAFFE_LIKE_COMPAT", False) is True


def _real_pycaffe_importable() -> bool:
    try:
        if importlib.util.find_spec("caffe") is None:
            return False
    except (ImportError, ValueError):
        return False
    try:
        importlib.import_module("caffe")  # a real pycaffe: found and importable (libcaffe present)
    except Exception:  # noqa: BLE001 - a broken pycaffe (no libcaffe.so, ...) counts as absent
        sys.modules.pop("caffe", None)
        return False
    return True


def install(*, force: bool | None = None) -> types.ModuleType:
    """Make ``import caffe`` work for Python layers; returns the module ``import caffe`` now gives.

    A real pycaffe (importable) is never shadowed unless ``force`` (default: the environment variable
    ``CAFFE_LIKE_PYCAFFE=compat``).  Installing twice does nothing.
    """
    if force is None:
        force = os.environ.get("CAFFE_LIKE_PYCAFFE", "").lower() == "compat"
    current = sys.modules.get("caffe")
    if current is not None and (is_installed() or not force):
        return current
    if not force and _real_pycaffe_importable():
        return sys.modules["caffe"]
    module = sys.modules[__name__]
    proto = types.ModuleType("caffe.proto", "caffe.proto (caffe_like's stand-in)")
    pb2 = _CaffePb2("caffe.proto.caffe_pb2", "caffe_pb2 made from caffe_like's schema")
    proto.caffe_pb2 = pb2
    io = _make_io()
    module.proto = proto
    module.io = io
    sys.modules["caffe"] = module
    sys.modules["caffe.proto"] = proto
    sys.modules["caffe.proto.caffe_pb2"] = pb2
    sys.modules["caffe.io"] = io
    return module

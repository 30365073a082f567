"""Data layers: ``Data``, ``ImageData``, ``MemoryData``, ``HDF5Data`` (readers in :mod:`caffe_like.data`).

**Data** (``data_param``): ``source``, ``batch_size``, ``backend``:

=========  =================================================================================
LMDB       Caffe ``Datum`` records (raw or encoded PNG/JPEG), key order (``pip install lmdb``)
IDX        MNIST IDX files: ``source: mnist/train`` -> ``mnist/train-images-idx3-ubyte[.gz]`` + labels
CIFAR      CIFAR python batches: ``cifar-10-batches-py/train`` (data_batch_1..5) or ``.../test``,
           ``cifar-100-python/train|test`` with ``cifar_label: fine|coarse``
NPZ        an .npz with ``data`` (N, C, H, W) and ``label`` (N,)
LEVELDB    not supported (Caffe's default!): convert the database to LMDB
=========  =================================================================================

Records are read in order and wrap around, as Caffe; caffe_like's ``shuffle: true`` (IDX, CIFAR, NPZ)
draws a new order every epoch.  ``rand_skip`` is ignored with a warning, as BVLC Caffe's Data layer
ignores it (it is deprecated there; ImageData still honours it).  ``transform_param`` is applied by
Caffe's DataTransformer (:mod:`caffe_like.data.transform`).

**ImageData** (``image_data_param``): a list file of ``path label`` lines, ``root_folder``,
``new_height``/``new_width`` (OpenCV-style bilinear resize), ``is_color`` (3 channels, BGR) or gray,
``shuffle`` (at start and every epoch, as Caffe), ``rand_skip``, ``batch_size`` (default 1).

Tops of both: data [B, C, h, w] in the net's float type and, when a second top is declared, the labels
[B] (floats, Caffe's habit).  Shapes are known at build time from a header or the first record; nothing
else is read until the first forward, which starts a background thread that keeps ``data_param.prefetch``
(default 4; ImageData: 4) transformed batches ready.  Batches are returned on the layer's device (the
``_device_anchor`` buffer follows ``net.to(...)``); on CUDA they are staged in pinned memory.
``options["prefetch"]`` (an int; 0 = read in the caller's thread) overrides the depth.

**MemoryData** (``memory_data_param``: batch_size, channels, height, width): arrays handed over from
Python with ``layer.reset(data, labels)`` (used as given, as Caffe's ``Reset``) or
``layer.add(data, labels)`` (transformed first, as ``AddMatVector``); the count must be a multiple of
batch_size.  Each forward returns the next batch, wrapping around.  The label top is [B, 1, 1, 1], the
shape Caffe's MemoryData gives it when it runs.

**HDF5Data** (``hdf5_data_param``, needs ``h5py``): tops named like the files' datasets; see
:mod:`caffe_like.data.hdf5`.  No transform_param (Caffe refuses it).

**Resuming.**  ``get_extra_state()`` (torch's hook, also in ``state_dict()``) returns the reading state
of what the net has *consumed* — not of what the prefetch thread has read ahead — as plain values:
``{"format", "position", "order_seed", "transform_rng": {"key": [624 ints], "pos"} | None}`` (HDF5Data:
file and row counters and the seed; MemoryData: the position).  ``set_extra_state(state)`` stops the prefetching and restarts it
from there, so the batches that follow are exactly those an uninterrupted run would have read.

**Seeds.**  The transformer's MT19937, the shuffle orders and rand_skip are seeded from
``options["data_seed"]`` if given, else the net's seed (``Net(seed=...)``), else torch's initial seed,
mixed with the net's and layer's names and the phase.  Processes with the same seed read the same
shuffled order.

**Several processes** (torch.distributed): ``options["solver_rank"]`` and ``options["solver_count"]``
make the Data layer read as Caffe's multi-GPU ``DataLayer::Skip``: in TRAIN, rank r reads the records
r, r + count, r + 2·count, ... of the common sequence; in TEST every rank reads all of it.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
import weakref
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ..data import cifar as cifar_files
from ..data import hdf5 as hdf5_files
from ..data import idx, images, lmdb_source, npz
from ..data.loader import STATE_FORMAT, BatchLoader, plain_state
from ..data.prefetch import Prefetcher
from ..data.source import missing_error, resolve, search_roots
from ..data.transform import DataTransformer, mt19937
from ..errors import CaffeLikeError, DataError, SpecError
from ..spec.schema import has
from .base import Layer
from .registry import register_layer

__all__ = ["Data", "ImageData", "MemoryData", "HDF5Data"]

_LEGACY_TRANSFORM = ("scale", "mean_file", "crop_size", "mirror")


# -- helpers -----------------------------------------------------------------------------------------

def _seed(layer: Layer, purpose: str) -> int:
    """A 32-bit seed for ``purpose``, derived from the data seed and the layer's identity."""
    options = layer.ctx.options
    if options.get("data_seed") is not None:
        base = int(options["data_seed"])
    elif layer.ctx.generator is not None:
        base = int(layer.ctx.generator.initial_seed())
    else:
        base = int(torch.initial_seed())
    text = repr((base, layer.ctx.net_name, layer.layer_name, layer.phase, purpose)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "little")


def _skip(layer: Layer, rand_skip: int) -> int:
    """Caffe's ``caffe_rng_rand() % rand_skip`` (0 when rand_skip is 0)."""
    if not rand_skip:
        return 0
    return int(mt19937(_seed(layer, "rand_skip")).random_raw()) % int(rand_skip)


def _shard(layer: Layer) -> tuple[int, int]:
    """(rank, count) from options["solver_rank"] / ["solver_count"]: Caffe's multi-GPU DataLayer::Skip
    gives rank r the records r, r + count, ... in TRAIN; in TEST every rank reads everything."""
    count = int(layer.ctx.options.get("solver_count") or 1)
    rank = int(layer.ctx.options.get("solver_rank") or 0)
    if count < 1 or not 0 <= rank < count:
        raise SpecError(f"solver_rank {rank} is not in [0, solver_count {count})", layer=layer.layer_name)
    return (rank, count) if layer.phase == "TRAIN" else (0, 1)


def _np_dtype(dtype: torch.dtype):
    return np.float64 if dtype == torch.float64 else np.float32


def _transform_param(layer: Layer, legacy=None) -> SimpleNamespace:
    """The layer's transform_param, with the deprecated copies in data_param/image_data_param merged in
    (Caffe's upgrade moves them; a field given in transform_param wins)."""
    tp = layer.param("transform_param")
    merged = {name: getattr(tp, name) for name in (*_LEGACY_TRANSFORM, "mean_value", "force_color", "force_gray")}
    if legacy is not None:
        for name in _LEGACY_TRANSFORM:
            if has(legacy, name) and not has(tp, name):
                merged[name] = getattr(legacy, name)
    if merged["mean_file"] and merged["mean_value"]:
        raise DataError("mean_file and mean_value cannot both be given (Caffe refuses it)", fix="keep one of them")
    if merged["force_color"] and merged["force_gray"]:
        raise layer.fail("force_color and force_gray cannot both be set", shape=False, fix="keep one of them")
    return SimpleNamespace(**merged)


def _find(layer: Layer, source: str, probe, *, what: str, backend: str | None = None, layout: str | None = None):
    """Resolve ``source`` with ``probe`` against the search roots, or raise the 'not found' DataError."""
    if not source:
        raise layer.fail(f"{what} 'source' is empty", shape=False, fix="give the path of the data")
    found, tried = resolve(source, search_roots(layer.ctx.base_dir, layer.ctx.options), probe)
    if found is None:
        raise missing_error(what, source, tried, backend=backend, layout=layout)
    return found


def _file_probe(candidate: Path, tried: list[Path]) -> Path | None:
    tried.append(candidate)
    return candidate if candidate.is_file() else None


def _mean(layer: Layer, tp) -> np.ndarray | None:
    if not tp.mean_file:
        return None
    from ..weights import read_blobproto

    path = _find(layer, tp.mean_file, _file_probe, what="mean file")
    return read_blobproto(path)


def _produce(loader: BatchLoader, pin: bool, np_dtype):
    """Thread side: one batch as CPU tensors (pinned for a CUDA consumer)."""
    batch = loader.next_batch()
    data = torch.from_numpy(np.ascontiguousarray(batch.data, dtype=np_dtype))
    labels = None if batch.labels is None else torch.from_numpy(batch.labels.astype(np_dtype))
    if pin:
        data = data.pin_memory()
        labels = None if labels is None else labels.pin_memory()
    return data, labels, batch.state


class _Runtime:
    """The per-process part of a data layer (the prefetch thread): never copied or pickled."""

    def __init__(self) -> None:
        self.prefetcher: Prefetcher | None = None
        self.pin = False
        self.finalizer: weakref.finalize | None = None  # closes the thread when the layer goes away

    def close(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.close()
            self.prefetcher = None

    def __deepcopy__(self, memo):
        return _Runtime()

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.__init__()


class _PrefetchingData(Layer):
    """Shared machinery of Data and ImageData: a BatchLoader read through a Prefetcher."""

    BOTTOMS = (0, 0)
    TOPS = (1, 2)

    def _init_reader(self, loader: BatchLoader, depth: int) -> None:
        self.loader = loader
        option = self.ctx.options.get("prefetch")
        self.prefetch_depth = int(depth if option is None else option)
        self._consumed = loader.state(plain=False)
        self._runtime = _Runtime()
        self.register_buffer("_device_anchor", torch.zeros((), dtype=self.ctx.dtype), persistent=False)

    # -- running -----------------------------------------------------------------------------------

    def _producer(self, pin: bool):
        return functools.partial(_produce, self.loader, pin, _np_dtype(self.ctx.dtype))

    def start(self) -> None:
        """Start prefetching now (the first forward does it otherwise)."""
        if self.prefetch_depth <= 0:
            return
        runtime = self._runtime
        pin = self._device_anchor.device.type == "cuda"
        if runtime.prefetcher is not None and runtime.pin == pin:
            return
        runtime.close()  # (a running one staged for another device)
        self.loader.set_state(self._consumed)  # read on from what the net consumed
        runtime.pin = pin
        runtime.prefetcher = Prefetcher(self._producer(pin), self.prefetch_depth,
                                        name=f"caffe_like-data-{self.layer_name}")
        if runtime.finalizer is None:
            runtime.finalizer = weakref.finalize(self, runtime.close)

    def close(self) -> None:
        """Stop prefetching (the next forward restarts it from the consumed position)."""
        if self._runtime.prefetcher is not None:
            self._runtime.close()
            self.loader.set_state(self._consumed)

    def _next(self):
        try:
            if self.prefetch_depth <= 0:
                return self._producer(False)()
            self.start()
            return self._runtime.prefetcher.get()
        except CaffeLikeError as err:
            raise err.located(layer=self.layer_name, layer_type=self.TYPE) from None

    def forward(self):
        data, labels, state = self._next()
        self._consumed = state
        anchor = self._device_anchor
        data = data.to(device=anchor.device, dtype=anchor.dtype, non_blocking=True)
        if len(self.spec.top) == 1:
            return (data,)
        labels = labels.to(device=anchor.device, dtype=anchor.dtype, non_blocking=True)
        return data, labels

    # -- resumable state ---------------------------------------------------------------------------

    def get_extra_state(self):
        return plain_state(self._consumed)

    def set_extra_state(self, state) -> None:
        if not isinstance(state, dict) or state.get("format", STATE_FORMAT) != STATE_FORMAT:
            raise DataError(f"not a data layer state: {state!r:.80}", layer=self.layer_name, layer_type=self.TYPE)
        self._runtime.close()
        self.loader.set_state(state)
        self._consumed = self.loader.state(plain=False)

    def infer_shapes(self, bottom_shapes):
        return self.shapes[: len(self.spec.top)]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, source={self.loader.source.description!r}"


def _labels_check(layer: Layer, has_labels: bool, description: str) -> None:
    if len(layer.spec.top) > 1 and not has_labels:
        raise DataError(f"the layer has a label top, but {description} has no labels",
                        fix="remove the second top, or give a source with labels")


# -- Data --------------------------------------------------------------------------------------------

@register_layer
class Data(_PrefetchingData):
    TYPE = "Data"

    def setup(self, bottom_shapes):
        dp = self.param("data_param")
        tp = _transform_param(self, dp)
        if dp.batch_size <= 0:
            raise self.fail("data_param.batch_size must be > 0", shape=False, fix="set data_param { batch_size: N }")
        if dp.shuffle and dp.backend in ("LMDB", "LEVELDB"):
            raise self.fail(f"shuffle is not available for {dp.backend} (records are read in key order, as in "
                            "Caffe)", shape=False, fix="remove shuffle, or use an IDX/CIFAR/NPZ source")
        source = self._open_source(dp, tp)
        _labels_check(self, source.has_labels, source.description)
        rank, count = _shard(self)
        seed = _seed(self, "transform" if count == 1 else f"transform-rank-{rank}")  # ranks draw apart
        transformer = DataTransformer(tp, self.phase, mean=_mean(self, tp), seed=seed, dtype=_np_dtype(self.ctx.dtype))
        shape = transformer.output_shape(source.sample_shape())
        self.shapes = [(dp.batch_size, *shape), (dp.batch_size,)]
        if dp.rand_skip:
            warnings.warn(f"layer '{self.layer_name}': data_param.rand_skip is deprecated and ignored, as BVLC "
                          "Caffe's Data layer ignores it (use shuffle: true for a random order)", stacklevel=2)
        loader = BatchLoader(source, transformer, dp.batch_size, shuffle=dp.shuffle, seed=_seed(self, "shuffle"),
                             labels=len(self.spec.top) > 1, shard=(rank, count))
        self._init_reader(loader, dp.prefetch)

    def _open_source(self, dp, tp):
        backend = dp.backend
        src = dp.source
        if backend == "LEVELDB":
            found, _ = resolve(src, search_roots(self.ctx.base_dir, self.ctx.options), lmdb_source.locate)
            fix = ("this source is an LMDB: set data_param { backend: LMDB }" if found is not None else
                   "convert the database to LMDB (e.g. Caffe's convert_imageset -backend lmdb), or use an IDX, "
                   "CIFAR or NPZ source; note that LEVELDB is Caffe's default backend when none is given")
            raise self.fail("backend LEVELDB is not supported by caffe_like", shape=False, fix=fix)
        if backend == "LMDB":
            path = _find(self, src, lmdb_source.locate, what="LMDB database", backend=backend,
                         layout="a folder holding data.mdb")
            color = True if (tp.force_color or dp.force_encoded_color) else (False if tp.force_gray else None)
            return lmdb_source.LmdbSource(path, color=color)
        if backend == "IDX":
            images_path, labels_path = _find(
                self, src, idx.locate, what="IDX dataset", backend=backend,
                layout="DIR/PREFIX -> DIR/PREFIX-images-idx3-ubyte[.gz] and DIR/PREFIX-labels-idx1-ubyte[.gz]")
            return idx.IdxSource(images_path, labels_path)
        if backend == "CIFAR":
            files = _find(self, src, cifar_files.locate, what="CIFAR dataset", backend=backend,
                          layout="cifar-10-batches-py/train|test, cifar-100-python/train|test, or a batch file")
            return cifar_files.CifarSource(files, dp.cifar_label)
        if backend == "NPZ":
            path = _find(self, src, npz.locate, what="NPZ dataset", backend=backend,
                         layout="an .npz archive with arrays data (N,C,H,W) and label (N,)")
            return npz.NpzSource(path)
        raise self.fail(f"unknown data backend {backend}", shape=False)  # pragma: no cover - schema checks


# -- ImageData ---------------------------------------------------------------------------------------

@register_layer
class ImageData(_PrefetchingData):
    TYPE = "ImageData"

    def setup(self, bottom_shapes):
        ip = self.param("image_data_param")
        tp = _transform_param(self, ip)
        if ip.batch_size <= 0:
            raise self.fail("image_data_param.batch_size must be > 0", shape=False)
        list_path = _find(self, ip.source, _file_probe, what="image list")
        source = images.ImageListSource(list_path, root_folder=ip.root_folder,
                                        roots=search_roots(self.ctx.base_dir, self.ctx.options),
                                        is_color=ip.is_color, new_height=ip.new_height, new_width=ip.new_width)
        skip = _skip(self, ip.rand_skip)
        if skip >= len(source):
            raise DataError(f"rand_skip drew {skip} but the list has only {len(source)} images (Caffe refuses)",
                            file=str(list_path), fix="lower rand_skip")
        loader = BatchLoader(source, None, ip.batch_size, shuffle=ip.shuffle, seed=_seed(self, "shuffle"),
                             start=skip, labels=len(self.spec.top) > 1)
        first = int(loader.order.indices(skip, 1)[0])  # Caffe sizes the top by the image it reads first
        transformer = DataTransformer(tp, self.phase, mean=_mean(self, tp), seed=_seed(self, "transform"),
                                      dtype=_np_dtype(self.ctx.dtype))
        loader.transformer = transformer
        shape = transformer.output_shape(source.shape_of(first))
        self.shapes = [(ip.batch_size, *shape), (ip.batch_size,)]
        self._init_reader(loader, 4)


# -- MemoryData --------------------------------------------------------------------------------------

@register_layer
class MemoryData(Layer):
    TYPE = "MemoryData"
    BOTTOMS = (0, 0)
    TOPS = (2, 2)

    def setup(self, bottom_shapes):
        mp = self.param("memory_data_param")
        self.batch_size = int(mp.batch_size)
        self.item_shape = (int(mp.channels), int(mp.height), int(mp.width))
        if self.batch_size <= 0 or min(self.item_shape) <= 0:
            raise self.fail("batch_size, channels, height and width must be given and > 0 in memory_data_param",
                            shape=False)
        self._has_transform = has(self.spec, "transform_param")
        self.transformer = DataTransformer(_transform_param(self), self.phase, seed=_seed(self, "transform"),
                                           dtype=_np_dtype(self.ctx.dtype))
        self.register_buffer("_device_anchor", torch.zeros((), dtype=self.ctx.dtype), persistent=False)
        self._data: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None
        self.position = 0

    def infer_shapes(self, bottom_shapes):
        return [(self.batch_size, *self.item_shape), (self.batch_size, 1, 1, 1)]

    def _check(self, data: np.ndarray, labels: np.ndarray, item_shape) -> None:
        n = data.shape[0] if data.ndim else 0
        if data.ndim != 4 or tuple(data.shape[1:]) != tuple(item_shape):
            raise DataError(f"data must be N×{'×'.join(map(str, item_shape))}, got {list(data.shape)}",
                            layer=self.layer_name, layer_type=self.TYPE)
        if n == 0 or n % self.batch_size:
            raise DataError(f"the number of items ({n}) must be a positive multiple of batch_size "
                            f"({self.batch_size}), as Caffe requires", layer=self.layer_name, layer_type=self.TYPE)
        if labels.shape != (n,):
            raise DataError(f"labels must have shape [{n}], got {list(labels.shape)}",
                            layer=self.layer_name, layer_type=self.TYPE)

    def reset(self, data, labels) -> None:
        """Use ``data`` (N×C×H×W) and ``labels`` (N) as they are (Caffe's ``Reset``: no transformation),
        starting from the first item."""
        data = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        labels = labels.reshape(-1) if labels.ndim > 1 and labels.size == labels.shape[0] else labels
        self._check(data, labels, self.item_shape)
        if self._has_transform:
            warnings.warn(f"MemoryData '{self.layer_name}' does not transform arrays given to reset() (as Caffe); "
                          "use add() to apply transform_param", stacklevel=2)
        dtype = _np_dtype(self.ctx.dtype)
        self._data = torch.from_numpy(np.array(data, dtype=dtype))
        self._labels = torch.from_numpy(np.array(labels, dtype=dtype))
        self.position = 0

    def add(self, data, labels) -> None:
        """Transform ``data`` (N×C×H×W before cropping, uint8 or float) with transform_param, then use it
        (Caffe's ``AddMatVector`` / ``AddDatumVector``)."""
        data = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        labels = np.asarray(labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
        if data.ndim != 4:
            raise DataError(f"data must be N×C×H×W, got {list(data.shape)}", layer=self.layer_name,
                            layer_type=self.TYPE)
        try:
            out = self.transformer(data if data.dtype == np.uint8 else data.astype(np.float32))
        except CaffeLikeError as err:
            raise err.located(layer=self.layer_name, layer_type=self.TYPE) from None
        self._check(out, labels, self.item_shape)
        self._data = torch.from_numpy(out)
        self._labels = torch.from_numpy(labels.astype(_np_dtype(self.ctx.dtype)))
        self.position = 0

    def forward(self):
        if self._data is None:
            raise DataError("MemoryData has no data yet", layer=self.layer_name, layer_type=self.TYPE,
                            fix=f"call net.layer_dict()['{self.layer_name}'].reset(data, labels) (or add()) first, "
                            "or feed the tops: net(data=..., label=...)")
        start, stop = self.position, self.position + self.batch_size
        self.position = stop % self._data.shape[0]
        anchor = self._device_anchor
        data = self._data[start:stop].to(device=anchor.device, dtype=anchor.dtype)
        labels = self._labels[start:stop].reshape(-1, 1, 1, 1).to(device=anchor.device, dtype=anchor.dtype)
        return data, labels

    def get_extra_state(self):
        rng = self.transformer.rng_state() if self.transformer.uses_rng else None
        return {"format": STATE_FORMAT, "position": self.position, "transform_rng": rng}

    def set_extra_state(self, state) -> None:
        if not isinstance(state, dict) or "position" not in state:
            raise DataError(f"not a MemoryData state: {state!r:.80}", layer=self.layer_name, layer_type=self.TYPE)
        self.position = int(state["position"])
        if state.get("transform_rng") is not None:
            self.transformer.set_rng_state(state["transform_rng"])


# -- HDF5Data ----------------------------------------------------------------------------------------

@register_layer
class HDF5Data(Layer):
    TYPE = "HDF5Data"
    BOTTOMS = (0, 0)
    TOPS = (1, None)

    def setup(self, bottom_shapes):
        if has(self.spec, "transform_param"):
            raise SpecError("HDF5Data does not transform data (Caffe refuses transform_param)",
                            layer=self.layer_name, layer_type=self.TYPE, fix="remove transform_param")
        hp = self.param("hdf5_data_param")
        if hp.batch_size <= 0:
            raise self.fail("hdf5_data_param.batch_size must be > 0", shape=False)
        hdf5_files.require_h5py()
        roots = search_roots(self.ctx.base_dir, self.ctx.options)
        list_path = _find(self, hp.source, _file_probe, what="HDF5 file list")
        files = hdf5_files.read_file_list(list_path, roots)
        self.reader = hdf5_files.Hdf5Reader(files, list(self.spec.top), hp.batch_size, shuffle=hp.shuffle,
                                            seed=_seed(self, "shuffle"), dtype=_np_dtype(self.ctx.dtype))
        self.register_buffer("_device_anchor", torch.zeros((), dtype=self.ctx.dtype), persistent=False)

    def infer_shapes(self, bottom_shapes):
        return self.reader.top_shapes()

    def forward(self):
        try:
            arrays = self.reader.next_batch()
        except CaffeLikeError as err:
            raise err.located(layer=self.layer_name, layer_type=self.TYPE) from None
        anchor = self._device_anchor
        return tuple(torch.from_numpy(a).to(device=anchor.device, dtype=anchor.dtype) for a in arrays)

    def get_extra_state(self):
        return self.reader.state()

    def set_extra_state(self, state) -> None:
        self.reader.set_state(state)

"""Dataset readers, Caffe's DataTransformer, batching with a resumable position, prefetching, downloads.

One small module per concern:

========================  =====================================================================
``source``                the RecordSource interface; how ``source`` paths are found
``idx``                   MNIST IDX files (.gz or raw; header-only peek; memory-mapped)
``cifar``                 CIFAR-10/100 python batches through a restricted unpickler
``lmdb_source``           Caffe Datum records in LMDB (optional ``lmdb`` package)
``npz``                   NumPy .npz archives (``data``, ``label``)
``images``                ImageData list files, image decoding (BGR), OpenCV-style bilinear resize
``hdf5``                  HDF5Data files (optional ``h5py`` package)
``transform``             Caffe's DataTransformer (crop, mirror, (x − mean)·scale), vectorized
``loader``                reading order (in order / shuffled per epoch), batches, resumable state
``prefetch``              the background thread that keeps the next batches ready
``datasets``              ``caffe-like data``: download + checksum + unpack MNIST / CIFAR
========================  =====================================================================

The layers that use them are in :mod:`caffe_like.layers.data_layers`.
"""

from .loader import Batch, BatchLoader, Order
from .prefetch import Prefetcher
from .source import RecordSource, search_roots
from .transform import DataTransformer

__all__ = ["RecordSource", "search_roots", "DataTransformer", "Batch", "BatchLoader", "Order", "Prefetcher"]

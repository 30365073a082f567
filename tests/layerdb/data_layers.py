"""LayerInfo entries for the data layers (Data, ImageData, MemoryData, HDF5Data).

The generic harness builds one-layer nets from in-memory samples fed through Input layers; these layers
read files (or arrays handed over with ``reset``) and have no bottoms, so they declare no samples here.
They are covered by tests/data/ (readers, transformer, prefetching, resume, the layers themselves).
"""

from layer_db import LayerInfo


def _no_samples(rng):
    return []  # file-backed: covered by tests/data


INFOS = [
    LayerInfo(type="Data", samples=_no_samples, onnx=False),
    LayerInfo(type="ImageData", samples=_no_samples, onnx=False),
    LayerInfo(type="MemoryData", samples=_no_samples, onnx=False),
    LayerInfo(type="HDF5Data", samples=_no_samples, onnx=False),
]

"""Input files for inference: .npy/.npz arrays, IDX files (gzip or raw) and images (PNG, JPEG, ...).

The file kind is told by its content (magic bytes), not its name.  What each gives, per input of the model
with shape (N, C, H, W):

* ``.npy``: one array, (N, C, H, W) or (C, H, W) for one item.  **Floating-point** arrays are taken as
  the net's input (already preprocessed) and cast to float32; **uint8** arrays are raw pixels in the
  model's channel order and go through the model's preprocessing (mean, crop, scale).  Other dtypes are
  refused.
* ``.npz``: for a one-input model every array is a batch as above (items named ``file[key][i]``); for a
  model with several inputs, the arrays named like the inputs.
* IDX (MNIST's format, ``.gz`` or not): images (N, H, W) (one channel) or (N, C, H, W), raw pixels,
  preprocessed like uint8 arrays.  A label file (one dimension) is refused.
* images (anything Pillow decodes): converted to the model's channel order (gray, RGB or BGR), resized
  with bilinear interpolation (approximately Caffe's ``cv::resize``) to the size the data layer read
  (``image_size`` in the metadata, else the input's H x W), then preprocessed.

Errors are :class:`~caffe_like.errors.DataError` naming the file and the expected shape.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import preprocess

__all__ = ["Batch", "load_inputs", "read_idx", "read_image", "expected_text"]

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class Batch:
    """Items read from one file: their names and one array per model input."""

    file: str
    names: list[str] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def expected_text(shape, description: dict | None) -> str:
    dims = ", ".join(str(d) for d in shape[1:])
    text = f"float32 arrays of shape (N, {dims}) or ({dims})"
    if description and description.get("raw"):
        text += ", or raw uint8 pixels"
    return text


def read_idx(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """An IDX file (gzip-compressed or raw) as a NumPy array."""
    path = str(path)
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise DataError(f"cannot read the file: {err.strerror or err}", file=path) from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise DataError(f"corrupt gzip data: {err}", file=path) from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_TYPES:
        raise DataError("not an IDX file (bad magic number)", file=path)
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = int(np.prod(dims)) if dims else 1
    if len(data) < header + count * dtype.itemsize:
        raise DataError(f"truncated IDX file: {len(data) - header} bytes of data for dims {list(dims)}", file=path)
    return np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_image(path: str | Path, description: dict, shape, data: bytes | None = None) -> np.ndarray:
    """An image file as raw pixels (C, H, W) uint8 in the model's channel order and read size."""
    from PIL import Image, UnidentifiedImageError

    path = str(path)
    channels = int(shape[1])
    order = description.get("channel_order", "none")
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as image:
            image.load()
            gray = order == "gray" or (order == "none" and channels == 1)
            image = image.convert("L" if gray else "RGB")
            size = description.get("image_size")
            if not size and not description.get("crop_size"):
                size = [int(shape[2]), int(shape[3])]
            if size and (image.height, image.width) != tuple(size):
                image = image.resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot decode the image: {err}", file=path,
                        fix=f"give a PNG/JPEG image, or {expected_text(shape, description)} in a .npy file") from None
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    if order == "BGR":
        pixels = pixels[::-1]
    if pixels.shape[0] != channels:
        raise DataError(f"the image has {pixels.shape[0]} channels, the model expects {channels}", file=path)
    return np.ascontiguousarray(pixels)


def _to_input(array: np.ndarray, name: str, shape, description: dict | None, file: str) -> np.ndarray:
    """An array from a file to the input ``name`` (N, C, H, W) float32, preprocessed when raw."""
    want = tuple(int(d) for d in shape[1:])
    expected = expected_text(shape, description)
    if array.ndim == len(want):
        array = array[None]
    raw = array.dtype == np.uint8
    if not (raw or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"input '{name}' has dtype {array.dtype}; the model expects {expected}", file=file)
    if array.ndim != len(want) + 1:
        raise DataError(f"input '{name}' has shape {list(array.shape)}; the model expects {expected}", file=file)
    if raw and description and description.get("raw"):
        return preprocess.apply(array, description, input_shape=want, file=file)
    if tuple(array.shape[1:]) != want:
        raise DataError(f"input '{name}' has shape {list(array.shape)}; the model expects {expected}", file=file)
    return np.ascontiguousarray(array, dtype=np.float32)


def load_inputs(path: str | Path, inputs: dict[str, list], preprocessing: dict[str, dict]) -> Batch:
    """Read one input file for a model with ``inputs`` {name: [dims]} (dim 0 any) and ``preprocessing``
    {name: description}; returns a Batch of float32 arrays ready to feed."""
    file = str(path)
    try:
        data = Path(file).read_bytes()
    except OSError as err:
        raise DataError(f"cannot read the input file: {err.strerror or err}", file=file) from None
    names = list(inputs)
    first = names[0]
    description = preprocessing.get(first) or {}
    batch = Batch(file=file)
    if data[:6] == b"\x93NUMPY":
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as err:
            raise DataError(f"cannot read the .npy array: {err}", file=file) from None
        _single(batch, names, "npy", array, inputs, preprocessing)
        batch.names = [f"{file}[{i}]" for i in range(len(batch.arrays[first]))] if len(batch.arrays[first]) > 1 \
            else [file]
        return batch
    if data[:4] == b"PK\x03\x04":
        try:
            archive = np.load(io.BytesIO(data), allow_pickle=False)
            arrays = {key: archive[key] for key in archive.files}
        except (ValueError, zipfile.BadZipFile, OSError) as err:
            raise DataError(f"cannot read the .npz archive: {err}", file=file) from None
        if not arrays:
            raise DataError("the .npz archive holds no arrays", file=file)
        if len(names) > 1:
            missing = [n for n in names if n not in arrays]
            if missing:
                raise DataError(f"the .npz archive lacks the model input(s) {', '.join(missing)}", file=file,
                                fix=f"name its arrays like the model's inputs: {', '.join(names)}")
            for n in names:
                batch.arrays[n] = _to_input(arrays[n], n, inputs[n], preprocessing.get(n), file)
            count = {len(a) for a in batch.arrays.values()}
            if len(count) != 1:
                raise DataError("the .npz arrays give different batch sizes for the inputs", file=file)
            batch.names = [f"{file}[{i}]" for i in range(count.pop())]
            return batch
        parts = []
        for key, array in arrays.items():
            converted = _to_input(array, first, inputs[first], description, f"{file}[{key}]")
            parts.append(converted)
            batch.names += [f"{file}[{key}][{i}]" for i in range(len(converted))]
        batch.arrays[first] = np.concatenate(parts)
        return batch
    if data[:2] == b"\0\0" or (data[:2] == b"\x1f\x8b" and _gzip_is_idx(data)):
        array = read_idx(file, data)
        if array.ndim < 3:
            raise DataError(f"the IDX file holds an array of shape {list(array.shape)} (labels?); the model "
                            f"expects images: {expected_text(inputs[first], description)}", file=file)
        if array.ndim == 3:
            array = array[:, None]
        if array.dtype != np.uint8:
            array = array.astype(np.float32)
        _single(batch, names, "IDX", array, inputs, preprocessing)
        batch.names = [f"{file}[{i}]" for i in range(len(batch.arrays[first]))]
        return batch
    if len(names) > 1:
        raise DataError(f"the model has {len(names)} inputs; give them in one .npz archive", file=file)
    pixels = read_image(file, description, inputs[first], data)
    batch.arrays[first] = _to_input(pixels[None], first, inputs[first], description, file)
    batch.names = [file]
    return batch


def _gzip_is_idx(data: bytes) -> bool:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            head = handle.read(4)
    except (OSError, EOFError):
        return False
    return len(head) == 4 and head[:2] == b"\0\0"


def _single(batch: Batch, names, kind: str, array: np.ndarray, inputs, preprocessing) -> None:
    if len(names) > 1:
        raise DataError(f"the model has {len(names)} inputs; a {kind} file gives one array", file=batch.file,
                        fix=f"give an .npz archive with arrays named {', '.join(names)}")
    name = names[0]
    batch.arrays[name] = _to_input(array, name, inputs[name], preprocessing.get(name), batch.file)
